//! `commute call` by hand: sources, operators, renderers and encoders through files.

use crate::util::{commute, library, run};
use std::process::Command;

fn with(package: &str) -> Command {
    let mut cmd = commute();
    cmd.arg("--no-default-plugins").arg("--plugin").arg(library(package));
    cmd
}

#[test]
fn a_source_writes_npy_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("n.npy");
    let (code, out, err) = run(with("commute-fixture-echo")
        .args(["call", "echo", "numbers", "--params", "count = 4", "--output"])
        .arg(&npy));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), npy.display().to_string());
    let bytes = std::fs::read(&npy).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..80]).contains("'shape': (4, 1)"));
    assert_eq!(bytes.len() % 16, 0, "header is 64-aligned and 4 floats follow");

    let (code, out, _) = run(with("commute-fixture-echo").args(["call", "echo", "numbers", "--json"]));
    assert_eq!(code, 0);
    let values: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(values.as_array().unwrap().len(), 3, "the default count is 3");
}

#[test]
fn a_panicking_call_exits_2_with_the_plugin_function_and_location() {
    let (code, out, err) =
        run(with("commute-fixture-panicky")
            .args(["call", "panicky", "explode", "--text", "a", "--text", "b"]));
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("plugin `panicky` panicked in `explode` at tests/fixtures/panicky/src/lib.rs:")
            && err.contains("item 1 (\"b\") is cursed"),
        "{err}"
    );
}

#[test]
fn bad_parameters_and_wrong_inputs_are_errors_that_say_what_was_expected() {
    let (code, _, err) =
        run(with("commute-fixture-echo").args(["call", "echo", "numbers", "--params", "cuont = 2"]));
    assert_eq!(code, 2);
    assert!(err.contains("bad parameters") && err.contains("unknown field `cuont`"), "{err}");
    assert!(err.contains("expected `count`"), "{err}");

    let (code, _, err) = run(with("commute-fixture-echo").args(["call", "echo", "peek", "--text", "words"]));
    assert_eq!(code, 2);
    assert!(err.contains("`peek` takes tensor inputs (tensor → tensor), but was given text"), "{err}");

    let (code, _, err) = run(with("commute-fixture-echo").args(["call", "echo", "numbers", "--text", "x"]));
    assert_eq!(code, 2);
    assert!(err.contains("is a source"), "{err}");

    let (code, _, err) = run(with("commute-fixture-echo").args(["call", "echo", "nope"]));
    assert_eq!(code, 2);
    assert!(err.contains("has no function `nope`; it has: echo, peek, picky, numbers"), "{err}");
}

#[test]
fn music_generate_write_midi_render_wav_and_embed() {
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("score.mid");
    let (code, out, err) = run(with("commute-plugin-music")
        .args([
            "call",
            "music",
            "random-scores",
            "--params",
            "count = 2",
            "--params",
            "seed = 11",
            "--output",
        ])
        .arg(&mid));
    assert_eq!(code, 0, "{err}");
    let written: Vec<&str> = out.lines().collect();
    assert_eq!(written.len(), 2, "two scores, two numbered files: {out}");
    let first = dir.path().join("score-0.mid");
    assert_eq!(written[0], first.display().to_string());
    assert_eq!(&std::fs::read(&first).unwrap()[..4], b"MThd");

    // The same seed gives the same score; printing it summarises it.
    let (_, summary_a, _) = run(with("commute-plugin-music").args([
        "call",
        "music",
        "random-scores",
        "--params",
        "count = 1",
        "--params",
        "seed = 11",
    ]));
    let (_, summary_b, _) = run(with("commute-plugin-music")
        .args(["call", "music", "random-scores"])
        .args(["--params", "count = 1", "--params", "seed = 11"]));
    assert!(summary_a.starts_with("score: ") && summary_a == summary_b, "{summary_a} vs {summary_b}");

    // Render to a WAV file and read it back through the same command.
    let wav = dir.path().join("score.wav");
    let (code, _, err) = run(with("commute-plugin-music")
        .args(["call", "music", "synth", "--input"])
        .arg(&first)
        .arg("--output")
        .arg(&wav));
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!((&bytes[..4], &bytes[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    let (code, loud, err) = run(with("commute-plugin-music")
        .args(["call", "music", "synth", "--params", "sample-rate = 16000", "--input"])
        .arg(&first));
    assert_eq!(code, 0, "{err}");
    assert!(loud.starts_with("audio: 16000 Hz"), "{loud}");

    // Embeddings print as numbers, one line per item, with the encoder's dimension.
    let (code, chroma, err) = run(with("commute-plugin-music")
        .args(["call", "music", "chroma", "--input"])
        .arg(&first)
        .arg(dir.path().join("score-1.mid")));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<f32>> =
        chroma.lines().map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row.len(), 12);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "chroma is L1-normalised by default: {row:?}");
    }
}

#[test]
fn an_operator_error_names_the_note_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("s.mid");
    let (code, _, err) = run(with("commute-plugin-music")
        .args(["call", "music", "random-scores", "--params", "count = 1", "--output"])
        .arg(&mid));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(with("commute-plugin-music")
        .args(["call", "music", "transpose", "--params", "semitones = 100", "--input"])
        .arg(&mid));
    assert_eq!(code, 1, "a failed item is a failed check: {err}");
    assert!(
        err.contains("error: item 0:")
            && err.contains("would move to pitch 1")
            && err.contains("outside 0..=127"),
        "{err}"
    );
}

#[test]
fn npy_files_and_inline_values_are_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("n.npy");
    let (code, _, err) = run(with("commute-fixture-faulty")
        .args(["call", "faulty", "numbers", "--params", "count = 3", "--output"])
        .arg(&npy));
    assert_eq!(code, 0, "{err}");
    // A (3, 1) array is three one-element tensors; an inline value adds a fourth.
    let (code, out, err) = run(with("commute-fixture-faulty")
        .args(["call", "faulty", "encode", "--input"])
        .arg(&npy)
        .args(["--value", r#"{"kind": "tensor", "shape": [1], "data": [3.0]}"#]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("1 0 0"), "(cos 0, sin 0, 0): {out}");
    assert_eq!(lines[1], lines[1].trim());

    let (code, _, err) = run(with("commute-fixture-faulty").args([
        "call",
        "faulty",
        "encode",
        "--value",
        r#"{"kind": "tensor"}"#,
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--value:") && err.contains("missing field"), "{err}");
}

#[test]
fn a_nan_result_is_printed_named_and_exits_1_as_run_would_refuse_it() {
    let (code, out, err) = run(with("commute-fixture-faulty").args([
        "call",
        "faulty",
        "encode",
        "--params",
        "fault = \"nan\"",
        "--params",
        "every = 2",
        "--value",
        r#"{"kind": "tensor", "shape": [1], "data": [0.0]}"#,
        "--value",
        r#"{"kind": "tensor", "shape": [1], "data": [1.0]}"#,
    ]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 2, "both results are printed: {out}");
    assert!(out.lines().nth(1).is_some_and(|l| l.contains("NaN")), "{out}");
    assert!(err.contains("item 1: returned NaN at element 2 (`commute run` refuses"), "{err}");
    assert!(!err.contains("item 0"), "{err}");
}
