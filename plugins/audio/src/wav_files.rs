//! The `wav-files` source: every `.wav` file of a folder (optionally its subfolders), read with
//! `hound`, in file-name order, as mono audio at the file's own sample rate.
//!
//! Integer PCM (8, 16, 24 or 32 bits) is scaled to [−1, 1) by `1 / 2^(bits − 1)`; 32-bit float is
//! taken as is. Multi-channel files are mixed to mono by averaging the channels of each sample
//! frame. A file that cannot be read is an error naming it, unless `skip-invalid = true`.

use commute_sdk::folder::FolderParams;
use commute_sdk::prelude::*;
use std::path::Path;

/// The `wav-files` source.
pub struct WavFiles(FolderParams);

impl Function for WavFiles {
    const DOC: &'static str =
        "Reads every .wav file of a folder in file-name order, mixed to mono, at its own sample rate.";
    type Params = FolderParams;

    fn open(params: FolderParams, _ctx: &Context) -> Result<Self> {
        params.check()?;
        Ok(WavFiles(params))
    }
}

impl Source for WavFiles {
    type Output = Audio;

    fn items(&mut self) -> Result<Vec<Audio>> {
        self.0.read_all(&["wav"], read_wav)
    }
}

/// Reads one file as mono audio (the SDK's WAV reader: channels averaged, integers scaled to
/// [-1, 1), NaN and infinite samples refused).
pub fn read_wav(path: &Path) -> Result<Audio> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read WAV file `{}`", path.display()))?;
    commute_sdk::wav::read(&bytes).with_context(|| format!("WAV file `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dir: &Path) -> FolderParams {
        FolderParams::new(dir.display().to_string())
    }

    fn items(p: FolderParams) -> Result<Vec<Audio>> {
        WavFiles::open(p, &Context::default())?.items()
    }

    fn write(path: &Path, spec: hound::WavSpec, frames: &[Vec<f64>]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for frame in frames {
            for &x in frame {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(x as f32).expect("write"),
                    (_, 8) => w.write_sample((x * 128.0) as i8).expect("write"),
                    (_, 16) => w.write_sample((x * 32768.0) as i16).expect("write"),
                    (_, bits) => w.write_sample((x * 2f64.powi(i32::from(bits) - 1)) as i32).expect("write"),
                }
            }
        }
        w.finalize().expect("finalize");
    }

    fn spec(channels: u16, sample_rate: u32, bits: u16, float: bool) -> hound::WavSpec {
        let sample_format = if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int };
        hound::WavSpec { channels, sample_rate, bits_per_sample: bits, sample_format }
    }

    #[test]
    fn reads_formats_mixes_to_mono_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stereo = vec![vec![0.5, -0.25], vec![0.25, 0.25], vec![-1.0, 0.0]];
        write(&dir.path().join("b.wav"), spec(2, 44100, 16, false), &stereo);
        write(&dir.path().join("a.WAV"), spec(1, 8000, 24, false), &[vec![0.5], vec![-0.75]]);
        write(&dir.path().join("c.wav"), spec(1, 16000, 32, true), &[vec![0.125]]);
        write(&dir.path().join("d.wav"), spec(3, 22050, 8, false), &[vec![0.5, 0.25, -0.75]]);
        std::fs::write(dir.path().join("notes.txt"), "not audio").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        write(&dir.path().join("sub/e.wav"), spec(1, 8000, 16, false), &[vec![0.0]]);

        let got = items(params(dir.path())).expect("reads");
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Audio { sample_rate: 8000, samples: vec![0.5, -0.75] });
        assert_eq!(got[1], Audio { sample_rate: 44100, samples: vec![0.125, 0.25, -0.5] });
        assert_eq!(got[2], Audio { sample_rate: 16000, samples: vec![0.125] });
        assert_eq!(got[3].sample_rate, 22050);
        assert!(got[3].samples[0].abs() < 1e-6);

        assert_eq!(items(FolderParams { recursive: true, ..params(dir.path()) }).expect("reads").len(), 5);
        let one = items(FolderParams { limit: Some(1), ..params(dir.path()) }).expect("reads");
        assert_eq!(one, got[..1]);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it_unless_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("good.wav"), spec(1, 8000, 16, false), &[vec![0.5]]);
        std::fs::write(dir.path().join("broken.wav"), b"RIFF garbage").expect("write");
        let msg = format!("{:#}", items(params(dir.path())).expect_err("broken file"));
        assert!(msg.contains("broken.wav"), "{msg}");
        let got = items(FolderParams { skip_invalid: true, ..params(dir.path()) }).expect("skips");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn missing_or_empty_folders_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(items(params(dir.path())).is_err());
        assert!(WavFiles::open(params(&dir.path().join("nope")), &Context::default()).is_err());
    }
}
