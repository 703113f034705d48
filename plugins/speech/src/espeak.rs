//! eSpeak NG, the formant speech synthesizer, as a C library opened at run time: its assets (the
//! library and the English data files from the `espeakng-loader` 0.2.4 wheel, GPL-3.0-or-later)
//! and one utterance synthesized per call.
//!
//! # Determinism
//!
//! eSpeak keeps state in static variables that `espeak_Initialize` does not reset: the same text
//! spoken twice in one process gives audio a few samples apart, and what an item sounds like
//! would depend on what was spoken before it. So every utterance opens the library afresh
//! (`dlopen`), speaks, and closes it again (`dlclose`), which unloads it and its state: the audio
//! of a text depends only on the text and the voice. Opening costs about 10 ms. A process-wide
//! lock keeps one utterance at a time, since the library's state is global.
//!
//! The library is initialised with `espeakINITIALIZE_DONT_EXIT`, so a broken data folder is an
//! error instead of the library ending the process.

// The only unsafe code of the plugin: calls into the C library through its documented API.
#![allow(unsafe_code)]

use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_short, c_uint, c_void, CString};
use std::path::PathBuf;
use std::sync::Mutex;

const PACKAGE: &str = "espeakng-loader";
const VERSION: &str = "0.2.4";
const LICENCE: &str = "GPL-3.0-or-later";

/// The shared library (eSpeak NG 1.52, built without audio output: it needs only the C++ runtime).
pub const LIBRARY: AssetSpec = AssetSpec::pypi(
    "espeak-ng-library",
    PACKAGE,
    VERSION,
    "espeakng_loader/libespeak-ng.so",
    "b15ce0803b26254e8a0d088c6b9281a2637b2b02613147cc320cfdefaf2c3ccf",
    661_568,
    LICENCE,
);

/// A data file of the `espeak-ng-data` folder.
const fn data(name: &'static str, path: &'static str, sha256: &'static str, size: u64) -> AssetSpec {
    AssetSpec::pypi(name, PACKAGE, VERSION, path, sha256, size, LICENCE)
}

/// Everything `speak` needs: the library, then the data files English needs.
pub const ASSETS: &[AssetSpec] = &[
    LIBRARY,
    data(
        "espeak-ng-phontab",
        "espeakng_loader/espeak-ng-data/phontab",
        "1b40690667e1e9aa1ba5e5234773c799e7e72ea751426e5150423d53c3f24fa2",
        58_652,
    ),
    data(
        "espeak-ng-phonindex",
        "espeakng_loader/espeak-ng-data/phonindex",
        "384e5fa6f714ba5356c58008249b78699c31c1ad044b243068d263fb806b7d73",
        43_316,
    ),
    data(
        "espeak-ng-phondata",
        "espeakng_loader/espeak-ng-data/phondata",
        "a0b643b155cb6b12628d9e7865b57d9fca0d35844614f2594a5e009c80c80bb4",
        554_740,
    ),
    data(
        "espeak-ng-intonations",
        "espeakng_loader/espeak-ng-data/intonations",
        "031a105bf6bb2ebcd73a2c579ccfb42469b27266db0078af65ae298fd3588b21",
        2_312,
    ),
    data(
        "espeak-ng-en-dict",
        "espeakng_loader/espeak-ng-data/en_dict",
        "1053f74a34af38abb6fbd64b7838dacbc655a687c48ce1bb663d364a127b05de",
        168_204,
    ),
    data(
        "espeak-ng-voice-en-us",
        "espeakng_loader/espeak-ng-data/lang/gmw/en-US",
        "41534c2a22df5dd4f1052ff9e1a33a3ea7bff5a26b5c02bdad5ba8ddb7524704",
        257,
    ),
    data(
        "espeak-ng-voice-en",
        "espeakng_loader/espeak-ng-data/lang/gmw/en",
        "4605d5330801de3641c6e366d15f129ea1f5ffbce8722642aba01ace07ab9c83",
        140,
    ),
];

/// Each data asset's place inside `espeak-ng-data`, by asset name.
pub const DATA: [(&str, &str); 7] = [
    ("espeak-ng-phontab", "phontab"),
    ("espeak-ng-phonindex", "phonindex"),
    ("espeak-ng-phondata", "phondata"),
    ("espeak-ng-intonations", "intonations"),
    ("espeak-ng-en-dict", "en_dict"),
    ("espeak-ng-voice-en-us", "lang/gmw/en-US"),
    ("espeak-ng-voice-en", "lang/gmw/en"),
];

/// The voices whose files are declared: American and British English.
pub const VOICES: [&str; 2] = ["en-us", "en"];

/// The rate eSpeak synthesizes at, in Hz.
pub const SAMPLE_RATE: u32 = 22_050;

/// How an utterance is spoken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// One of [`VOICES`].
    pub name: String,
    /// Words per minute (80–450).
    pub rate: i32,
    /// Base pitch, 0–100.
    pub pitch: i32,
    /// Pitch range, 0–100 (0 is monotone).
    pub range: i32,
    /// Extra pause between words, in units of 10 ms.
    pub word_gap: i32,
}

/// The library and a data folder laid out as eSpeak expects, ready to speak.
#[derive(Debug)]
pub struct Espeak {
    library: PathBuf,
    /// Holds `espeak-ng-data/`; removed when the synthesizer is dropped.
    home: tempfile::TempDir,
}

/// One utterance at a time in the whole process: the library's state is global.
static LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// Samples the synthesis callback receives, and the most it may receive.
    static SINK: RefCell<(Vec<i16>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// eSpeak's synthesis callback: appends the samples; returns 1 (stop) once the cap is passed.
extern "C" fn collect(wav: *mut c_short, count: c_int, _events: *mut c_void) -> c_int {
    let Ok(count) = usize::try_from(count) else { return 0 };
    if wav.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: eSpeak passes `count` valid samples at `wav` for the duration of the call.
    let samples = unsafe { std::slice::from_raw_parts(wav, count) };
    SINK.with(|sink| {
        let mut sink = sink.borrow_mut();
        sink.0.extend_from_slice(samples);
        c_int::from(sink.0.len() > sink.1)
    })
}

type Initialize = unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int;
type SetCallback = unsafe extern "C" fn(extern "C" fn(*mut c_short, c_int, *mut c_void) -> c_int);
type SetVoice = unsafe extern "C" fn(*const c_char) -> c_int;
type SetParameter = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type Synth = unsafe extern "C" fn(
    *const c_void,
    usize,
    c_uint,
    c_int,
    c_uint,
    c_uint,
    *mut c_uint,
    *mut c_void,
) -> c_int;
type Terminate = unsafe extern "C" fn() -> c_int;

/// `AUDIO_OUTPUT_SYNCHRONOUS`: synthesis runs inside `espeak_Synth`, samples go to the callback.
const OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report a failed initialisation instead of exiting the process.
const DONT_EXIT: c_int = 0x8000;
/// `espeak_PARAMETER` values.
const RATE: c_int = 1;
const PITCH: c_int = 3;
const RANGE: c_int = 4;
const WORD_GAP: c_int = 7;
/// `POS_CHARACTER` and `espeakCHARS_UTF8`.
const POS_CHARACTER: c_int = 1;
const CHARS_UTF8: c_uint = 1;

impl Espeak {
    /// The synthesizer over the assets in `ctx`: the data files are copied into a fresh folder.
    pub fn open(ctx: &Context) -> Result<Espeak> {
        let library = ctx.asset(&LIBRARY.name)?.to_path_buf();
        let home = tempfile::Builder::new()
            .prefix("commute-espeak-")
            .tempdir()
            .context("cannot create a folder for eSpeak's data")?;
        for (name, place) in DATA {
            let to = home.path().join("espeak-ng-data").join(place);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::copy(ctx.asset(name)?, &to).with_context(|| format!("cannot copy {name}"))?;
        }
        Ok(Espeak { library, home })
    }

    /// Speaks `text` (plain UTF-8, no markup) with `voice`: mono 16-bit samples at
    /// [`SAMPLE_RATE`]. More than `max_samples` samples is an error.
    pub fn synthesize(&self, text: &str, voice: &Voice, max_samples: usize) -> Result<Vec<i16>> {
        ensure!(VOICES.contains(&voice.name.as_str()), "unknown voice {:?}: one of {VOICES:?}", voice.name);
        let text = CString::new(text).map_err(|_| anyhow!("the text holds a NUL character"))?;
        let name = CString::new(voice.name.as_str()).map_err(|_| anyhow!("bad voice name"))?;
        let home = CString::new(self.home.path().as_os_str().as_encoded_bytes())
            .map_err(|_| anyhow!("the data folder's path holds a NUL character"))?;
        let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        SINK.with(|sink| *sink.borrow_mut() = (Vec::new(), max_samples));
        // SAFETY: the library is eSpeak NG (its hash is verified), whose exported functions have
        // the signatures above; every pointer passed lives until the call returns, and the
        // library is unloaded only after `espeak_Terminate`.
        let status = unsafe {
            let library = libloading::Library::new(&self.library)
                .with_context(|| format!("cannot open {}", self.library.display()))?;
            let initialize: libloading::Symbol<Initialize> = library.get(b"espeak_Initialize\0")?;
            let set_callback: libloading::Symbol<SetCallback> = library.get(b"espeak_SetSynthCallback\0")?;
            let set_voice: libloading::Symbol<SetVoice> = library.get(b"espeak_SetVoiceByName\0")?;
            let set_parameter: libloading::Symbol<SetParameter> = library.get(b"espeak_SetParameter\0")?;
            let synth: libloading::Symbol<Synth> = library.get(b"espeak_Synth\0")?;
            let terminate: libloading::Symbol<Terminate> = library.get(b"espeak_Terminate\0")?;
            let rate = initialize(OUTPUT_SYNCHRONOUS, 0, home.as_ptr(), DONT_EXIT);
            let status = if rate != SAMPLE_RATE as c_int {
                Err(anyhow!(
                    "eSpeak did not initialise (returned {rate}) from {}",
                    self.home.path().display()
                ))
            } else {
                set_callback(collect);
                if set_voice(name.as_ptr()) != 0 {
                    Err(anyhow!("eSpeak has no voice {:?}", voice.name))
                } else {
                    for (parameter, value) in [
                        (RATE, voice.rate),
                        (PITCH, voice.pitch),
                        (RANGE, voice.range),
                        (WORD_GAP, voice.word_gap),
                    ] {
                        set_parameter(parameter, value, 0);
                    }
                    let bytes = text.as_bytes_with_nul();
                    let code = synth(
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        0,
                        POS_CHARACTER,
                        0,
                        CHARS_UTF8,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                    if code == 0 {
                        Ok(())
                    } else {
                        Err(anyhow!("eSpeak could not synthesize the text (error {code})"))
                    }
                }
            };
            if rate == SAMPLE_RATE as c_int {
                terminate();
            }
            drop(library);
            status
        };
        let samples = SINK.with(|sink| std::mem::take(&mut sink.borrow_mut().0));
        status?;
        ensure!(
            samples.len() <= max_samples,
            "the speech lasts longer than {:.1} s",
            max_samples as f64 / f64::from(SAMPLE_RATE)
        );
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_file_is_an_asset_with_its_place() {
        assert_eq!(ASSETS.len(), DATA.len() + 1);
        for (name, place) in DATA {
            let spec = ASSETS.iter().find(|a| a.name == name).expect("declared");
            assert!(spec.path.ends_with(&format!("espeak-ng-data/{place}")), "{} at {place}", spec.path);
        }
        let names: std::collections::HashSet<_> = ASSETS.iter().map(|a| &a.name).collect();
        assert_eq!(names.len(), ASSETS.len(), "asset names are unique");
    }
}
