//! The SDK's conformance suite, with one case per function of the music plugin.

use commute_plugin_music::commute_plugin;
use commute_sdk::midi::write_smf;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::Value;

/// A few generated scores, as the suite's valid inputs.
fn scores() -> Vec<Value> {
    Harness::new(commute_plugin())
        .call("random-scores", "count = 4\nseed = 3\nmax-duration-s = 4.0", &[])
        .expect("random-scores works")
}

#[test]
fn music_plugin_conforms() {
    let scores = scores();
    assert_eq!(scores.len(), 4);
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, v) in scores.iter().take(2).enumerate() {
        let score = v.as_score().expect("a score");
        std::fs::write(dir.path().join(format!("{i}.mid")), write_smf(score)).expect("write");
    }
    let dir_param = format!("dir = {:?}", dir.path().display().to_string());
    // The scores' piano-roll frames, as the decoder's valid inputs.
    let rolls = Harness::new(commute_plugin())
        .call("piano-roll", "pooling = \"none\"\nlowest-pitch = 21\nhighest-pitch = 108", &scores)
        .expect("piano-roll frames");
    assert!(rolls.iter().all(|r| r.as_sequence().is_some_and(|s| s.dim == 88 && s.frame_rate == 20.0)));

    Conformance::new(commute_plugin())
        .case("random-scores", "count = 5\nseed = 7", vec![])
        .case("midi-files", &dir_param, vec![])
        .case("piano-roll", "frame-s = 0.05", scores.clone())
        .case("chroma", "norm = \"l2\"", scores.clone())
        .case("loudness", "", scores.clone())
        .case("transpose", "semitones = 2\nout-of-range = \"clamp\"", scores.clone())
        .case("louder", "db = 6.0", scores.clone())
        .case("tempo", "ratio = 1.5", scores.clone())
        .case("synth", "sample-rate = 16000\ntail-s = 0.5", scores.clone())
        .case("decode-roll", "lowest-pitch = 21", rolls)
        .run();
}

#[test]
fn the_pipeline_works_through_the_abi() {
    let h = Harness::new(commute_plugin());
    let scores = scores();
    // Loudness edits survive rendering: −6 dB never clamps velocities, so the audio is 6 dB
    // quieter (up to velocity rounding); +6 dB clamps loud notes at 127 but still adds level.
    let audio = h.call("synth", "", &scores).expect("synth");
    let rms = |v: &Value| {
        let a = v.as_audio().expect("audio");
        (a.samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / a.samples.len() as f64).sqrt()
    };
    for (db, low, high) in [(-6.0, -6.6, -5.4), (6.0, 0.5, 6.6)] {
        let edited = h.call("louder", &format!("db = {db}"), &scores).expect("louder");
        let edited_audio = h.call("synth", "", &edited).expect("synth");
        for (a, b) in audio.iter().zip(&edited_audio) {
            let change = 20.0 * (rms(b) / rms(a)).log10();
            assert!(change > low && change < high, "louder by {db} dB changed the audio by {change:.2} dB");
        }
    }
    let roll = h.call("piano-roll", "", &scores).expect("piano-roll");
    assert_eq!(roll[0].as_tensor().expect("tensor").shape, [136]);
    let chroma = h.call("chroma", "", &scores).expect("chroma");
    assert_eq!(chroma[0].as_tensor().expect("tensor").shape, [12]);
    let loudness = h.call("loudness", "", &scores).expect("loudness");
    assert_eq!(loudness[0].as_tensor().expect("tensor").shape, [10]);
    let err = h.call("transpose", "semitones = 127", &scores).expect_err("out of range");
    assert!(err.to_string().contains("outside 0..=127"), "{err}");
    assert!(h.open("tempo", "ratio = 0").is_err());
}

#[test]
fn manifest_lists_every_function_and_shows_defaults() {
    let h = Harness::new(commute_plugin());
    let m = h.manifest();
    assert_eq!((m.name.as_str(), m.modality.as_str()), ("music", "music"));
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "random-scores",
            "midi-files",
            "piano-roll",
            "chroma",
            "loudness",
            "transpose",
            "louder",
            "tempo",
            "synth",
            "decode-roll"
        ]
    );
    for f in &m.functions {
        for p in &f.params {
            // Every optional parameter except `limit` (absent = all files) shows its default.
            assert!(
                p.required || p.default.is_some() || p.name == "limit",
                "{} {} has no default",
                f.name,
                p.name
            );
        }
    }
}
