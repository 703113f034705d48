//! Bad input at scale: malformed MIDI, WAV and image files through `commute call` and a `files`
//! data set through `commute run`, and plugins whose embeddings have the wrong dimension, NaN or
//! ±∞ (the `faulty` fixture). Every case is a clear error naming the file (or the node and item),
//! or a per-item skip the report counts — never a panic.
//!
//! The malformed files are generated here, one realistic defect each, so the bytes and what is
//! wrong with them sit side by side. Files under `bad-inputs/` are inputs the fuzzers found (see
//! `fuzz/README.md`), kept as regression cases.

use crate::util::{commute, library, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a malformed file must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exit 2 with an error naming the file.
    Error,
    /// A lenient reader may accept it: exit 0, or exit 2 naming the file; never a panic.
    ErrorOrValue,
}

fn chunk(kind: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A format 0 MIDI header (96 ticks per quarter) and one track with these events plus its end.
fn midi_with_track(events: &[u8]) -> Vec<u8> {
    let mut track = events.to_vec();
    track.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
    cat(&[&chunk(b"MThd", &[0, 0, 0, 1, 0, 96]), &chunk(b"MTrk", &track)])
}

/// Malformed Standard MIDI Files.
fn bad_midi() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::{Error, ErrorOrValue};
    let note = [0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0];
    vec![
        ("empty.mid", Vec::new(), Error),
        ("text.mid", b"this is not a MIDI file\n".to_vec(), Error),
        ("wav-renamed.mid", cat(&[b"RIFF\x24\x00\x00\x00WAVEfmt ", &[0; 24]]), Error),
        ("magic-only.mid", b"MThd".to_vec(), Error),
        ("header-truncated.mid", b"MThd\x00\x00\x00\x06\x00\x01".to_vec(), Error),
        ("header-length-huge.mid", b"MThd\xff\xff\xff\xff\x00\x00\x00\x01\x00\x60".to_vec(), Error),
        (
            "zero-ticks-per-quarter.mid",
            {
                let mut f = midi_with_track(&note);
                f[12] = 0;
                f[13] = 0;
                f
            },
            Error,
        ),
        (
            "zero-ticks-per-frame.mid",
            {
                let mut f = midi_with_track(&note);
                f[12] = 0xE7; // −25 frames per second
                f[13] = 0;
                f
            },
            Error,
        ),
        (
            "track-length-huge.mid",
            cat(&[&chunk(b"MThd", &[0, 0, 0, 1, 0, 96]), b"MTrk\xff\xff\xff\xf0", &note]),
            ErrorOrValue,
        ),
        ("tracks-missing.mid", chunk(b"MThd", &[0, 1, 0xff, 0xff, 0, 96]), Error),
        ("format-7.mid", cat(&[&chunk(b"MThd", &[0, 7, 0, 1, 0, 96]), &chunk(b"MTrk", &note)]), ErrorOrValue),
        (
            "event-truncated.mid",
            cat(&[&chunk(b"MThd", &[0, 0, 0, 1, 0, 96]), &chunk(b"MTrk", &[0x00, 0x90, 60])]),
            ErrorOrValue,
        ),
        ("running-status-first.mid", midi_with_track(&[0x00, 60, 100]), ErrorOrValue),
        ("delta-too-long.mid", midi_with_track(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x90, 60, 100]), ErrorOrValue),
        ("sysex-length-huge.mid", midi_with_track(&[0x00, 0xF0, 0x8f, 0xff, 0xff, 0x7f, 0x01]), ErrorOrValue),
        (
            "meta-length-huge.mid",
            midi_with_track(&[0x00, 0xFF, 0x51, 0x8f, 0xff, 0xff, 0x7f, 0x07]),
            ErrorOrValue,
        ),
        (
            "tempo-zero.mid",
            midi_with_track(&[0x00, 0xFF, 0x51, 0x03, 0, 0, 0, 0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0]),
            ErrorOrValue,
        ),
    ]
}

/// A WAV file: RIFF/WAVE, a `fmt ` chunk with these fields, and a `data` chunk declaring
/// `data_len` bytes followed by `data`.
fn wav(
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    block_align: u16,
    data_len: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&format.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    let mut body = b"WAVEfmt ".to_vec();
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&data_len.to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Malformed WAV files.
fn bad_wav() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::{Error, ErrorOrValue};
    let pcm = [0u8, 0, 0xff, 0x7f, 0, 0x80, 0x10, 0x00];
    let good = wav(1, 1, 8000, 16, 2, 8, &pcm);
    vec![
        ("empty.wav", Vec::new(), Error),
        ("riff-only.wav", b"RIFF".to_vec(), Error),
        ("wrong-magic.wav", cat(&[b"RIFX", &good[4..]]), Error),
        ("avi-not-wave.wav", cat(&[&good[..8], b"AVI ", &good[12..]]), Error),
        ("midi-renamed.wav", midi_with_track(&[]), Error),
        ("no-fmt-chunk.wav", cat(&[b"RIFF\x10\x00\x00\x00WAVEdata", &[4, 0, 0, 0], &[0; 4]]), Error),
        ("header-truncated.wav", good[..30].to_vec(), Error),
        ("zero-channels.wav", wav(1, 0, 8000, 16, 2, 8, &pcm), Error),
        ("zero-sample-rate.wav", wav(1, 1, 0, 16, 2, 8, &pcm), Error),
        ("bits-0.wav", wav(1, 1, 8000, 0, 2, 8, &pcm), Error),
        ("bits-7.wav", wav(1, 1, 8000, 7, 1, 8, &pcm), Error),
        ("bits-64-int.wav", wav(1, 1, 8000, 64, 8, 8, &pcm), Error),
        ("float-16-bit.wav", wav(3, 1, 8000, 16, 2, 8, &pcm), Error),
        ("mp3-format-tag.wav", wav(0x55, 1, 8000, 16, 2, 8, &pcm), Error),
        ("block-align-0.wav", wav(1, 1, 8000, 16, 0, 8, &pcm), ErrorOrValue),
        ("channels-65535.wav", wav(1, 65535, 8000, 16, 2, 8, &pcm), ErrorOrValue),
        ("data-length-huge.wav", wav(1, 1, 8000, 16, 2, 0xffff_fff0, &pcm), ErrorOrValue),
        ("data-odd-length.wav", wav(1, 1, 8000, 16, 2, 7, &pcm[..7]), ErrorOrValue),
        (
            "fmt-length-huge.wav",
            {
                let mut f = good.clone();
                f[16..20].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
                f
            },
            Error,
        ),
    ]
}

/// Malformed images. The host reads images from `.json` values; an image file format (PNG…) is
/// refused by its extension with a pointer to that.
fn bad_images() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::Error;
    let image = |w: &str, h: &str, c: &str, pixels: &str| {
        format!(r#"{{"kind": "image", "width": {w}, "height": {h}, "channels": {c}, "pixels": {pixels}}}"#)
            .into_bytes()
    };
    vec![
        ("pixels-short.json", image("2", "2", "3", "[0, 0, 0]"), Error),
        ("pixels-long.json", image("1", "1", "1", "[0, 0]"), Error),
        ("channels-0.json", image("1", "1", "0", "[]"), Error),
        ("channels-2.json", image("1", "1", "2", "[0, 0]"), Error),
        ("dims-huge.json", image("4294967295", "4294967295", "4", "[]"), Error),
        ("width-too-large.json", image("10000000000", "1", "1", "[0]"), Error),
        ("width-negative.json", image("-1", "1", "1", "[0]"), Error),
        ("pixel-300.json", image("1", "1", "1", "[300]"), Error),
        ("truncated.json", br#"{"kind": "image", "width": 2"#.to_vec(), Error),
        (
            "second-item-bad.json",
            {
                let mut v = b"[".to_vec();
                v.extend(image("1", "1", "1", "[7]"));
                v.extend(b", ");
                v.extend(image("1", "1", "3", "[7]"));
                v.extend(b"]");
                v
            },
            Error,
        ),
        (
            "tensor-shape-mismatch.json",
            br#"{"kind": "tensor", "shape": [2, 3], "data": [1.0]}"#.to_vec(),
            Error,
        ),
        ("audio-rate-0.json", br#"{"kind": "audio", "sample_rate": 0, "samples": [0.0]}"#.to_vec(), Error),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01".to_vec(), Error),
        ("image.jpg", b"\xff\xd8\xff\xe0".to_vec(), Error),
    ]
}

fn with(package: &str) -> Command {
    let mut cmd = commute();
    cmd.arg("--no-default-plugins").arg("--plugin").arg(library(package));
    cmd
}

/// Calls `plugin function` on each file; checks what each gives. Returns the failures.
fn call_each(
    dir: &Path,
    package: &str,
    call: [&str; 2],
    cases: &[(&str, Vec<u8>, Expect)],
    what: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, bytes, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write the case");
        let (code, _, err) = run(with(package).args(["call", call[0], call[1], "--input"]).arg(&path));
        let named = err.contains(&path.display().to_string());
        let ok = match (expect, code) {
            _ if err.contains("panicked") => false,
            (_, 2) => named && err.contains(what),
            (Expect::ErrorOrValue, 0) => true,
            _ => false,
        };
        if !ok {
            problems.push(format!("{name} ({expect:?}): exit {code}\n{err}"));
        }
    }
    problems
}

#[test]
fn malformed_midi_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = bad_midi();
    assert!(cases.len() >= 15);
    let problems = call_each(
        dir.path(),
        "commute-plugin-music",
        ["music", "piano-roll"],
        &cases,
        "not a readable MIDI file",
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn malformed_wav_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = bad_wav();
    assert!(cases.len() >= 15);
    let problems = call_each(
        dir.path(),
        "commute-plugin-audio",
        ["audio", "log-mel"],
        &cases,
        "not a readable WAV file",
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The well-formed file the cases are made from reads.
    let good = dir.path().join("good.wav");
    std::fs::write(&good, wav(1, 1, 8000, 16, 2, 8, &[0, 0, 0xff, 0x7f, 0, 0x80, 0x10, 0x00]))
        .expect("write");
    let (code, _, err) =
        run(with("commute-plugin-audio").args(["call", "audio", "log-mel", "--input"]).arg(&good));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn malformed_images_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = bad_images();
    let problems = call_each(dir.path(), "commute-fixture-echo", ["echo", "echo"], &cases, "");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let (_, _, err) = run(with("commute-fixture-echo")
        .args(["call", "echo", "echo", "--input"])
        .arg(dir.path().join("pixels-short.json")));
    assert!(err.contains("item 0: a 2×2×3 image needs 12 bytes of pixels, this one has 3"), "{err}");
    let (_, _, err) = run(with("commute-fixture-echo")
        .args(["call", "echo", "echo", "--input"])
        .arg(dir.path().join("second-item-bad.json")));
    assert!(err.contains("item 1: a 1×1×3 image needs 3 bytes"), "{err}");
    let (_, _, err) = run(with("commute-fixture-echo")
        .args(["call", "echo", "echo", "--input"])
        .arg(dir.path().join("image.png")));
    assert!(
        err.contains("unknown input extension `.png`") && err.contains("images are read from .json"),
        "{err}"
    );
}

/// Files the fuzzers found, kept under `bad-inputs/`: each reads or is an error, never a panic.
#[test]
fn inputs_the_fuzzers_found_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/bad-inputs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "mid" || e == "wav"));
    files.sort();
    for file in &files {
        let (package, call) = if file.extension().is_some_and(|e| e == "mid") {
            ("commute-plugin-music", ["music", "piano-roll"])
        } else {
            ("commute-plugin-audio", ["audio", "log-mel"])
        };
        let (code, _, err) = run(with(package).args(["call", call[0], call[1], "--input"]).arg(file));
        assert!(code == 0 || code == 2, "{}: exit {code}\n{err}", file.display());
        assert!(!err.contains("panicked"), "{}: {err}", file.display());
        if code == 2 {
            assert!(err.contains(&file.display().to_string()), "{}: {err}", file.display());
        }
    }
}

#[test]
fn a_broken_file_in_a_files_data_set_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let midi = dir.path().join("midi");
    std::fs::create_dir(&midi).expect("mkdir");
    let (code, _, err) = run(with("commute-plugin-music")
        .args(["call", "music", "random-scores", "--params", "count = 30", "--output"])
        .arg(midi.join("s.mid")));
    assert_eq!(code, 0, "{err}");
    std::fs::write(midi.join("s-99.mid"), b"MThd\x00\x00\x00\x06\x00\x01").expect("write");
    let experiment = r#"
[experiment]
name = "files"
anchors = [5]
repeats = 1
test = 5

[data.scores]
files = "midi"

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[nodes.chroma]
data = "scores"
plugin = "music"
encoder = "chroma"

[[edges]]
parent = "notes"
child = "chroma"
methods = [{ kind = "ridge" }]
metrics = ["p@1"]
"#;
    std::fs::write(dir.path().join("files.toml"), experiment).expect("write experiment");
    let (code, _, err) = run(with("commute-plugin-music")
        .current_dir(dir.path())
        .env("COMMUTE_HOME", dir.path().join("cache"))
        .args(["run", "files.toml", "--runs", "runs"]));
    assert!(code == 1 || code == 2, "exit {code}: {err}");
    assert!(err.contains("s-99.mid") && err.contains("not a readable MIDI file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An experiment over the `faulty` fixture: `clean` never faults, `broken` (and with `both`,
/// `clean` too) faults on items `every - 1`, `2·every - 1`, ….
fn faulty_experiment(fault: &str, skip: bool, parent_fault: Option<(&str, usize)>) -> String {
    let skip_line = if skip { "on-item-error = \"skip\"\n" } else { "" };
    let parent_params = match parent_fault {
        Some((f, every)) => format!("params = {{ fault = \"{f}\", every = {every} }}\n{skip_line}"),
        None => String::new(),
    };
    format!(
        r#"
[experiment]
name = "faulty"
seed = 1
anchors = [5, 20]
repeats = 2
test = 30

[data.numbers]
source = {{ plugin = "faulty", function = "numbers", params = {{ count = 120 }} }}

[nodes.clean]
data = "numbers"
plugin = "faulty"
encoder = "encode"
{parent_params}
[nodes.broken]
data = "numbers"
plugin = "faulty"
encoder = "encode"
params = {{ fault = "{fault}", every = 7 }}
{skip_line}
[[edges]]
parent = "clean"
child = "broken"
methods = [{{ kind = "ridge", lambda = 0.1 }}]
metrics = ["p@1"]
"#
    )
}

/// Runs an experiment over the faulty fixture (items in 2 chunks of 64). With one thread the
/// chunks are encoded in order, so the first faulty item stops the run.
fn run_faulty(toml: &str, threads: &str) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("faulty.toml"), toml).expect("write experiment");
    let (code, err) = rerun_faulty(&dir, threads);
    (code, err, dir)
}

fn metrics_and_report(dir: &Path) -> (serde_json::Value, String) {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir.join("runs/faulty"))
        .expect("runs folder")
        .map(|e| e.expect("entry").path())
        .collect();
    folders.sort();
    let folder = folders.pop().expect("a run folder");
    let metrics = serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).expect("metrics"))
        .expect("metrics.json is JSON");
    (metrics, std::fs::read_to_string(folder.join("report.md")).expect("report.md"))
}

/// (fault, what the error says)
const FAULTS: [(&str, &str); 4] = [
    ("wrong-dim", "returned 4 floats, but its dimension is 3"),
    ("nan", "the embedding has NaN at element"),
    ("inf", "the embedding has an infinite value at element"),
    ("neg-inf", "the embedding has an infinite value at element"),
];

#[test]
fn bad_embeddings_stop_the_run_naming_node_item_and_problem() {
    for (fault, problem) in FAULTS {
        let (code, err, _dir) = run_faulty(&faulty_experiment(fault, false, None), "1");
        // The edge fails (a run with other edges still evaluates those, and exits non-zero).
        assert!(code == 1 || code == 2, "{fault}: exit {code}: {err}");
        assert!(!err.contains("panicked"), "{fault}: {err}");
        // Item 6 is the first faulty one (every = 7).
        assert!(
            err.contains("node `broken`") && err.contains(problem) && err.contains("item 6"),
            "{fault}: {err}"
        );
    }
}

#[test]
fn with_skip_bad_embeddings_are_skipped_and_counted_exactly() {
    for (fault, _) in FAULTS {
        let (code, err, dir) = run_faulty(&faulty_experiment(fault, true, None), "2");
        assert_eq!(code, 0, "{fault}: {err}");
        let (metrics, report) = metrics_and_report(dir.path());
        let edge = &metrics["edges"][0];
        // Items 6, 13, …, 118: the 17 numbers below 120 whose successor is a multiple of 7.
        assert_eq!(edge["skipped"], serde_json::json!([0, 17]), "{fault}: {edge}");
        assert_eq!(edge["items"], 103, "{fault}: {edge}");
        assert!(report.contains("17 in `broken`") && report.contains("0 in `clean`"), "{fault}: {report}");
        // One warning per node, with the reason and the first items.
        let reason = match fault {
            "wrong-dim" => "17 error (items 6, 13, 20, 27, 34, …; first: `faulty/encode` failed: ",
            "nan" => "17 NaN (items 6, 13, 20, 27, 34, …)",
            _ => "17 infinite (items 6, 13, 20, 27, 34, …)",
        };
        assert!(err.contains(&format!("node `broken`: 17 of 120 items skipped: {reason}")), "{fault}: {err}");
        assert_eq!(err.matches("items skipped").count(), 1, "{fault}: {err}");
        let points = edge["points"].as_array().expect("points");
        assert!(
            !points.is_empty()
                && points.iter().all(|p| p.get("error").is_none_or(serde_json::Value::is_null)),
            "{fault}: {edge}"
        );
    }
}

#[test]
fn skips_on_both_sides_are_counted_per_side_and_pairs_need_both() {
    let (code, err, dir) = run_faulty(&faulty_experiment("nan", true, Some(("wrong-dim", 5))), "2");
    assert_eq!(code, 0, "{err}");
    let (metrics, report) = metrics_and_report(dir.path());
    let edge = &metrics["edges"][0];
    // Parent: x + 1 a multiple of 5 (24 items); child: of 7 (17); both: of 35 (3).
    assert_eq!(edge["skipped"], serde_json::json!([24, 17]), "{edge}");
    assert_eq!(edge["items"], 120 - (24 + 17 - 3), "{edge}");
    assert!(report.contains("24 in `clean`, 17 in `broken`"), "{report}");
}

#[test]
fn with_skip_a_panic_or_a_crash_loses_only_its_items_not_the_batch() {
    // `panic` in process; `abort` takes the process down, so that node runs in a worker.
    for (fault, isolate, reason) in [("panic", "", "panic"), ("abort", "isolate = true\n", "crash")] {
        let toml = faulty_experiment(fault, true, None)
            .replace("on-item-error = \"skip\"\n", &format!("on-item-error = \"skip\"\n{isolate}"));
        let (code, err, dir) = run_faulty(&toml, "2");
        assert_eq!(code, 0, "{fault}: {err}");
        let (metrics, _) = metrics_and_report(dir.path());
        let edge = &metrics["edges"][0];
        assert_eq!(edge["skipped"], serde_json::json!([0, 17]), "{fault}: {edge}");
        assert_eq!(edge["items"], 103, "{fault}: {edge}");
        assert!(
            err.contains(&format!("node `broken`: 17 of 120 items skipped: 17 {reason} (items 6, 13,")),
            "{fault}: {err}"
        );
        // A rerun reads the chunks from the cache, and the reasons with them.
        let (code, again) = rerun_faulty(&dir, "2");
        assert_eq!(code, 0, "{fault}: {again}");
        assert!(again.contains(&format!("17 of 120 items skipped: 17 {reason}")), "{fault}: {again}");
    }
}

/// Runs `faulty.toml` in `dir` (again, after [`run_faulty`]), with its cache in `dir/cache`.
fn rerun_faulty(dir: &tempfile::TempDir, threads: &str) -> (i32, String) {
    let (code, _, err) = run(with("commute-fixture-faulty")
        .current_dir(dir.path())
        .env("COMMUTE_HOME", dir.path().join("cache"))
        .args(["--threads", threads, "run", "faulty.toml", "--runs", "runs"]));
    (code, err)
}

/// `broken` (NaN on every 7th item, no skip) is the parent of two edges.
fn two_children(tree: &str) -> String {
    format!(
        r#"
[experiment]
name = "faulty"
seed = 1
anchors = [5, 20]
repeats = 2
test = 30

[data.numbers]
source = {{ plugin = "faulty", function = "numbers", params = {{ count = 120 }} }}

[nodes.broken]
data = "numbers"
plugin = "faulty"
encoder = "encode"
params = {{ fault = "nan", every = 7 }}

[nodes.a]
data = "numbers"
plugin = "faulty"
encoder = "encode"

[nodes.b]
data = "numbers"
plugin = "faulty"
encoder = "encode"

[[edges]]
parent = "broken"
child = "a"
methods = [{{ kind = "ridge" }}]

[[edges]]
parent = "broken"
child = "b"
methods = [{{ kind = "ridge" }}]
{tree}"#
    )
}

#[test]
fn a_failed_node_is_reported_once_with_its_cause_and_later_uses_point_back_to_it() {
    let (code, err, dir) = run_faulty(&two_children("\n[tree]\n"), "1");
    assert_eq!(code, 1, "{err}");
    let cause = "the embedding has NaN at element 2";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    assert!(
        err.contains("edge broken → b failed: node `broken` failed earlier in this run (the error of edge broken → a says why)"),
        "{err}"
    );
    let (metrics, report) = metrics_and_report(dir.path());
    let failed = metrics["tree"]["failed"].as_array().expect("the width analysis failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].as_str().is_some_and(|f| f.contains("failed earlier") && !f.contains(cause)),
        "{failed:?}"
    );
    assert_eq!(report.matches(cause).count(), 1, "{report}");
}

#[test]
fn without_a_tree_table_no_tree_analysis_runs() {
    let (code, err, dir) = run_faulty(&two_children(""), "1");
    assert_eq!(code, 1, "{err}");
    let (metrics, report) = metrics_and_report(dir.path());
    assert!(metrics["tree"].is_null(), "{}", metrics["tree"]);
    assert!(!report.contains("width") && !err.contains("tree analysis"), "{report}\n{err}");
}
