//! The SDK's conformance suite with one case per function of the audio plugin, and checks that
//! tie the audio functions to the music plugin's: rendered scores as realistic inputs, and
//! `pitch-shift` on rendered audio against `transpose` before rendering.
//!
//! The music plugin is loaded as the dynamic library cargo builds for the dev-dependency (next to
//! this test binary), exactly as the host loads plugins: two plugins' `export_plugin!` statics
//! share symbol names, so both rlibs cannot be linked into one binary.

mod common;

use common::music_call;
use commute_plugin_audio::commute_plugin;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Audio, Note, Score, Value};

fn audio_plugin() -> Harness {
    Harness::new(commute_plugin())
}

/// Seeded random scores (melodies, chords, melodies over chords) of 1.5–3 s.
fn scores(count: usize, seed: u64) -> Vec<Value> {
    music_call("random-scores", &format!("count = {count}\nseed = {seed}\nmax-duration-s = 3.0"), &[])
}

/// Renders scores with the music plugin's synth.
fn synth(scores: &[Value], sample_rate: u32) -> Vec<Value> {
    music_call("synth", &format!("sample-rate = {sample_rate}\ntail-s = 0.2"), scores)
}

/// Generated scores and their rendering.
fn rendered(count: usize, seed: u64, sample_rate: u32) -> (Vec<Value>, Vec<Value>) {
    let scores = scores(count, seed);
    let audio = synth(&scores, sample_rate);
    (scores, audio)
}

fn tensor(v: &Value) -> &[f32] {
    &v.as_tensor().expect("a tensor").data
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn sine(hz: f32, sample_rate: u32, seconds: f32) -> Value {
    let n = (seconds * sample_rate as f32) as usize;
    let samples =
        (0..n).map(|i| 0.5 * (std::f32::consts::TAU * hz * i as f32 / sample_rate as f32).sin()).collect();
    Value::Audio(Audio { sample_rate, samples })
}

fn triad(pitches: &[u8]) -> Score {
    let notes = pitches
        .iter()
        .map(|&pitch| Note { pitch, onset_s: 0.0, duration_s: 1.5, velocity: 90, program: 0 })
        .collect();
    Score { notes }
}

#[test]
fn audio_plugin_conforms() {
    let (_, mut inputs) = rendered(3, 5, 16000);
    inputs.push(sine(440.0, 44100, 0.5));
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, v) in inputs.iter().take(2).enumerate() {
        let audio = v.as_audio().expect("audio");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: audio.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.path().join(format!("{i}.wav")), spec).expect("create");
        for &x in &audio.samples {
            w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16).expect("write");
        }
        w.finalize().expect("finalize");
    }
    let dir_param = format!("dir = {:?}", dir.path().display().to_string());
    // The generic encoder on a model of our own: an identity on windows of 400 samples.
    let model = dir.path().join("identity.onnx");
    std::fs::write(&model, commute_sdk::onnx_graph::identity_model("samples", "out", &[-1, 400]))
        .expect("write the model");
    let onnx = format!("model = {:?}\nhop = 200\npooling = \"mean-max\"", model.display().to_string());

    // Basic Pitch's frames of the inputs, as the decoder's valid inputs.
    let frames = audio_plugin().call("basic-pitch", "pool = \"none\"", &inputs).expect("frames");

    Conformance::new(commute_plugin())
        .case("wav-files", &dir_param, vec![])
        .case("log-mel", "pooling = \"none\"", inputs.clone())
        .case("chroma", "pooling = \"none\"", inputs.clone())
        .case("basic-pitch", "pool = \"none\"", inputs.clone())
        .case("basic-pitch-notes", "onset-threshold = 0.6", frames)
        .case("log-mel", "n-mels = 40\nf-max = 8000.0", inputs.clone())
        .case("chroma", "norm = \"l2\"", inputs.clone())
        .case("loudness", "frame-s = 0.04\nhop-s = 0.02", inputs.clone())
        .case("gain", "db = -6.0\nclip = true", inputs.clone())
        .case("pitch-shift", "semitones = 3.5\nmethod = \"wsola\"", inputs.clone())
        .case("pitch-shift", "semitones = -7", inputs.clone())
        .case("time-stretch", "rate = 1.25", inputs.clone())
        .case("basic-pitch", "pool = \"mean-max\"\nbatch-windows = 2", inputs.clone())
        .case("transcribe", "onset-threshold = 0.6\nminimum-frequency = 60.0", inputs.clone())
        .case("onnx", &onnx, inputs)
        .run();
}

#[test]
fn manifest_lists_every_function() {
    let h = audio_plugin();
    let m = h.manifest();
    assert_eq!((m.name.as_str(), m.modality.as_str()), ("audio", "audio"));
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "wav-files",
            "log-mel",
            "chroma",
            "loudness",
            "gain",
            "pitch-shift",
            "time-stretch",
            "basic-pitch",
            "transcribe",
            "basic-pitch-notes",
            "onnx"
        ]
    );
    let dims: Vec<Option<usize>> = ["log-mel", "chroma", "loudness", "basic-pitch"]
        .iter()
        .map(|f| h.open(f, "").expect("opens with defaults").dim())
        .collect();
    assert_eq!(dims, [Some(128), Some(12), Some(11), Some(300)]);
    assert_eq!(h.open("basic-pitch", "pool = \"mean\"").expect("opens").dim(), Some(440));
    let err = h.open("transcribe", "frame-threshold = 1.5").expect_err("out of range");
    assert!(err.to_string().contains("frame-threshold"), "{err}");
    let err = h.open("basic-pitch", "batch-windows = 0").expect_err("out of range");
    assert!(err.to_string().contains("batch-windows"), "{err}");
    assert_eq!(h.open("log-mel", "n-mels = 40").expect("opens").dim(), Some(80));
    let err = h.open("pitch-shift", "semitones = 30").expect_err("out of range");
    assert!(err.to_string().contains("semitones"), "{err}");
}

#[test]
fn a_synthesised_c_major_triad_is_mostly_c_e_g() {
    let audio = synth(&[Value::Score(triad(&[60, 64, 67]))], 22050);
    let chroma = audio_plugin().call("chroma", "", &audio).expect("chroma");
    let c = tensor(&chroma[0]);
    let ceg = c[0] + c[4] + c[7];
    assert!(ceg > 0.75, "C+E+G = {ceg}: {c:?}");
    for (i, v) in c.iter().enumerate() {
        if ![0, 4, 7].contains(&i) {
            assert!(*v < c[0].min(c[4]).min(c[7]), "class {i} = {v}: {c:?}");
        }
    }
    let a = audio_plugin().call("chroma", "", &[sine(440.0, 22050, 1.0)]).expect("chroma");
    assert!(tensor(&a[0])[9] > 0.95, "{:?}", tensor(&a[0]));
}

#[test]
fn pitch_shift_on_rendered_audio_matches_transpose_before_rendering() {
    // The square that functional alignment relies on: shifting the audio by an octave and
    // transposing the score by an octave must land on nearly the same chroma.
    let h = audio_plugin();
    let (scores, audio) = rendered(6, 11, 22050);
    let transposed = music_call("transpose", "semitones = 12\nout-of-range = \"clamp\"", &scores);
    let rendered_transposed = synth(&transposed, 22050);
    let shifted = h.call("pitch-shift", "semitones = 12", &audio).expect("pitch-shift");
    let a = h.call("chroma", "", &rendered_transposed).expect("chroma");
    let b = h.call("chroma", "", &shifted).expect("chroma");
    let original = h.call("chroma", "", &audio).expect("chroma");
    for i in 0..scores.len() {
        let (x, y) = (tensor(&a[i]), tensor(&b[i]));
        let similarity = cosine(x, y);
        assert!(similarity > 0.9, "item {i}: cosine {similarity}\n{x:?}\n{y:?}");
        // And it is the pitch content that matches: other items are further away.
        let other = cosine(x, tensor(&original[(i + 1) % scores.len()]));
        assert!(similarity > other, "item {i}: {similarity} vs another item {other}");
    }
    // A fifth up is not an octave: the chroma rotates by 7 classes.
    let fifth = h.call("pitch-shift", "semitones = 7", &audio[..1]).expect("pitch-shift");
    let f = h.call("chroma", "", &fifth).expect("chroma");
    let o = tensor(&original[0]);
    let rotated: Vec<f32> = (0..12).map(|k| o[(k + 5) % 12]).collect();
    let similarity = cosine(tensor(&f[0]), &rotated);
    assert!(similarity > 0.9, "fifth: cosine {similarity}");
}

#[test]
fn six_db_of_gain_raises_the_level_dims_by_six() {
    let h = audio_plugin();
    let (_, audio) = rendered(4, 2, 22050);
    let louder = h.call("gain", "db = 6.0", &audio).expect("gain");
    let before = h.call("loudness", "", &audio).expect("loudness");
    let after = h.call("loudness", "", &louder).expect("loudness");
    for (a, b) in before.iter().zip(&after) {
        let (a, b) = (tensor(a), tensor(b));
        for i in [5, 6, 8] {
            assert!((b[i] - a[i] - 6.0).abs() < 0.1, "dim {i}: {} -> {}", a[i], b[i]);
        }
        // Frame statistics move by 6 dB unless a frame crosses the −60 dBFS silence threshold.
        if (a[10] - b[10]).abs() < 1e-6 {
            for i in [0, 2, 3, 4] {
                assert!((b[i] - a[i] - 6.0).abs() < 0.1, "dim {i}: {} -> {}", a[i], b[i]);
            }
        }
        assert!((b[7] - a[7]).abs() < 0.1, "crest factor {} -> {}", a[7], b[7]);
    }
}

#[test]
fn the_same_music_at_other_rates_gives_nearly_the_same_log_mel() {
    // The synth band-limits its voices to 0.48 × its rate, so renderings at 22.05 and 44.1 kHz
    // differ above 10.6 kHz; below 8 kHz they hold the same music.
    let h = audio_plugin();
    let params = "f-max = 8000.0";
    let (scores, low) = rendered(3, 9, 22050);
    let reference = h.call("log-mel", params, &low).expect("log-mel");
    for rate in [44100, 48000] {
        let other = h.call("log-mel", params, &synth(&scores, rate)).expect("log-mel");
        for (i, (x, y)) in reference.iter().zip(&other).enumerate() {
            let (x, y) = (tensor(x), tensor(y));
            let another = cosine(x, tensor(&reference[(i + 1) % reference.len()]));
            let mut worst = 0.0f32;
            for band in 0..64 {
                if x[band] > -60.0 {
                    worst = worst.max((x[band] - y[band]).abs()).max((x[64 + band] - y[64 + band]).abs());
                }
            }
            assert!(worst < 1.0, "{rate} Hz: bands differ by up to {worst} dB");
            assert!(cosine(x, y) > 0.999, "{rate} Hz: cosine {}", cosine(x, y));
            assert!(1.0 - cosine(x, y) < (1.0 - another) / 10.0, "{rate} Hz: another item is at {another}");
        }
    }
}

#[test]
fn wav_files_round_trip_through_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 32000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(dir.path().join("tone.wav"), spec).expect("create");
    for i in 0..32000 {
        let x = 0.5 * (std::f32::consts::TAU * 440.0 * i as f32 / 32000.0).sin();
        w.write_sample(x).expect("write");
        w.write_sample(-x).expect("write");
    }
    w.finalize().expect("finalize");
    std::fs::write(dir.path().join("z-broken.wav"), b"not a wav file").expect("write");
    let h = audio_plugin();
    let dir_param = format!("dir = {:?}", dir.path().display().to_string());
    let err = h.call("wav-files", &dir_param, &[]).expect_err("broken file");
    assert!(err.to_string().contains("z-broken.wav"), "{err}");
    let items = h.call("wav-files", &format!("{dir_param}\nskip-invalid = true"), &[]).expect("skips");
    let audio = items[0].as_audio().expect("audio");
    assert_eq!((audio.sample_rate, audio.samples.len()), (32000, 32000));
    assert!(audio.samples.iter().all(|x| x.abs() < 1e-6), "opposite channels cancel in the mono mix");
}
