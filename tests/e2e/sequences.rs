//! Frame-level edges end to end: audio synthesized from scores, its log-mel frames mapped onto
//! the scores' piano-roll frames (the synthesizer's timing is the correspondence), whole test
//! sequences mapped at once and decoded back into notes by the music plugin's `decode-roll`.

use crate::util::{commute_in, read_json, run, run_folders};
use serde_json::Value;
use std::path::Path;

const PACKAGES: &[&str] = &["commute-plugin-music", "commute-plugin-audio"];

fn experiment(extra_node: &str, edge_level: &str) -> String {
    format!(
        r#"
[experiment]
name = "frames"
seed = 3
anchors = [2, 30]
repeats = 1
test = 20

[data.scores]
source = {{ plugin = "music", function = "random-scores", params = {{ count = 70, seed = 8, max-duration-s = 3.0 }} }}

[data.scores.operators]
up = {{ plugin = "music", function = "transpose", params = {{ semitones = 2, out-of-range = "clamp" }} }}
slower = {{ plugin = "music", function = "tempo", params = {{ ratio = 0.8 }} }}

[data.audio]
from = "scores"
render = {{ plugin = "music", function = "synth", params = {{ sample-rate = 16000 }} }}

[nodes.mel]
data = "audio"
plugin = "audio"
encoder = "log-mel"
params = {{ pooling = "none", sample-rate = 16000, n-mels = 48 }}

[nodes.roll]
data = "scores"
plugin = "music"
encoder = "piano-roll"
params = {{ pooling = "none", frame-s = 0.05, lowest-pitch = 21, highest-pitch = 108 }}
{extra_node}
[[edges]]
parent = "mel"
child = "roll"
{edge_level}
operators = {{ "scores.up" = "up", "scores.slower" = "slower" }}
methods = [{{ kind = "ridge" }}, {{ kind = "functional" }}]
preprocess = {{ unit-norm = false, center = true }}
"#
    )
}

const FRAME_EDGE: &str = r#"level = "frame"
frames = { decode = { plugin = "music", function = "decode-roll", params = { lowest-pitch = 21 } }, truth = "scores" }"#;

fn run_in(dir: &Path, text: &str) -> (i32, String, String) {
    std::fs::write(dir.join("frames.toml"), text).expect("write experiment");
    run(commute_in(dir, PACKAGES).arg("run").arg("frames.toml"))
}

fn point<'a>(edge: &'a Value, method: &str, anchors: u64) -> &'a Value {
    edge["points"]
        .as_array()
        .expect("points")
        .iter()
        .find(|p| p["method"] == method && p["anchors"] == anchors)
        .unwrap_or_else(|| panic!("no point {method} at {anchors}"))
}

#[test]
fn log_mel_frames_map_onto_piano_roll_frames_and_decode_into_the_scores_notes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run_in(dir.path(), &experiment("", FRAME_EDGE));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let folder = run_folders(&dir.path().join("runs"), "frames").pop().expect("a run folder");
    let metrics = read_json(&folder.join("metrics.json"));
    let edge = &metrics["edges"][0];
    let names: Vec<&str> =
        edge["metrics"].as_array().expect("metrics").iter().filter_map(Value::as_str).collect();
    assert_eq!(names, ["frame-p@1", "sequence-p@1", "note-f1", "note-precision", "note-recall"]);
    assert_eq!((edge["parent-dim"].as_u64(), edge["child-dim"].as_u64()), (Some(48), Some(88)));

    // The ceiling: the decoder reads the true piano roll back into (nearly) the true notes.
    let ceiling = point(edge, "decoded from the child's frames", 30);
    let f1 = |p: &Value, key: &str| p[key]["note-f1"].as_f64().unwrap_or(f64::NAN);
    assert!(ceiling["scores"]["note-f1"].as_f64().unwrap_or(0.0) > 0.9, "{ceiling}");

    for method in ["ridge", "functional"] {
        let p = point(edge, method, 30);
        assert!(p["error"].is_null(), "{p}");
        // Fitted on the 30 anchor items' frames: thousands of pairs, within `fit-frames`.
        let pairs = p["details"]["frame-pairs"].as_f64().unwrap_or(0.0);
        assert!((1000.0..=20000.0).contains(&pairs), "{method}: {pairs} frame pairs");
        let (s, null) = (&p["scores"], &p["null"]);
        let frame = |v: &Value| v["frame-p@1"].as_f64().unwrap_or(f64::NAN);
        assert!(frame(s) > 3.0 * frame(null) && frame(s) > 0.01, "{method}: frame P@1 {s} vs null {null}");
        assert!(f1(p, "scores") > f1(p, "null") + 0.05, "{method}: note F1 {s} vs null {null}");
        assert!(f1(p, "scores") < f1(ceiling, "scores"), "{method}: above the ceiling");
        assert!(s["sequence-p@1"].as_f64().unwrap_or(0.0) >= null["sequence-p@1"].as_f64().unwrap_or(1.0));
    }
    // Both operators fitted: transposition frame by frame, the tempo change along each space's
    // DTW path (the slower item has more frames).
    let used = point(edge, "functional", 30)["details"]["operators"].as_f64();
    assert_eq!(used, Some(2.0), "{}", point(edge, "functional", 30));
    // More anchor items, better notes.
    assert!(f1(point(edge, "ridge", 30), "scores") > f1(point(edge, "ridge", 2), "scores"));
    let log = std::fs::read_to_string(folder.join("run.log")).expect("run.log");
    assert!(log.contains("(frames): 70 items"), "{log}");
    // What the mapped sequences decode into: a picture in the report and MIDI files to play.
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(report.contains("plots/mel-roll-decoded.svg"), "{report}");
    let svg = std::fs::read_to_string(folder.join("plots/mel-roll-decoded.svg")).expect("the picture");
    assert!(svg.contains("true notes") && svg.contains("ridge (30 anchors)"), "{svg}");
    let example = &edge["example"];
    let truth_notes = example["truth"]["notes"].as_array().map_or(0, Vec::len);
    assert!(truth_notes > 0, "{example}");
    for file in ["truth.mid", "ridge-30.mid", "functional-30.mid"] {
        let bytes = std::fs::read(folder.join("decoded/mel-roll").join(file)).expect(file);
        assert_eq!(&bytes[..4], b"MThd", "{file} is a MIDI file");
    }

    // Again: every point and every chunk from the cache, the same edge.
    let (code, _, stderr) = run_in(dir.path(), &experiment("", FRAME_EDGE));
    assert_eq!(code, 0, "{stderr}");
    let again =
        read_json(&run_folders(&dir.path().join("runs"), "frames").pop().expect("run").join("metrics.json"));
    assert_eq!(again["edges"][0], *edge);
    let cache = &again["cache"]["edges"][0];
    assert_eq!(
        (cache["points-computed"].as_u64(), cache["points-cached"].as_u64()),
        (Some(0), Some(4)),
        "{cache}"
    );
}

#[test]
fn frames_and_pooled_vectors_do_not_mix() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A frame-level node on an item-level edge: the edge fails, named, and the run says so.
    let (code, _, stderr) = run_in(dir.path(), &experiment("", ""));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("node `mel` keeps its frames") && stderr.contains("level = \"frame\""),
        "{stderr}"
    );
    // A pooled node on a frame-level edge.
    let pooled = experiment("", FRAME_EDGE).replace(
        "params = { pooling = \"none\", sample-rate = 16000, n-mels = 48 }",
        "params = { sample-rate = 16000, n-mels = 48 }",
    );
    let (code, _, stderr) = run_in(dir.path(), &pooled);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("node `mel` pools its frames"), "{stderr}");
}

/// Basic Pitch's frames onto the piano roll, beside Basic Pitch's own note creation on the same
/// frames (`parent-decode`): the real model, fetched through the asset store.
#[test]
fn basic_pitch_frames_map_onto_the_roll_beside_its_own_transcription() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = experiment("", FRAME_EDGE)
        .replace(
            "encoder = \"log-mel\"\nparams = { pooling = \"none\", sample-rate = 16000, n-mels = 48 }",
            "encoder = \"basic-pitch\"\nparams = { pool = \"none\" }",
        )
        .replace(
            "truth = \"scores\" }",
            "parent-decode = { plugin = \"audio\", function = \"basic-pitch-notes\" }, truth = \"scores\" }",
        )
        .replace("anchors = [2, 30]", "anchors = [30]")
        .replace(
            "methods = [{ kind = \"ridge\" }, { kind = \"functional\" }]",
            "methods = [{ kind = \"ridge\" }]",
        );
    assert!(text.contains("basic-pitch-notes") && text.contains("pool = \"none\""), "{text}");
    std::fs::write(dir.path().join("frames.toml"), &text).expect("write experiment");
    let (code, stdout, stderr) =
        run(crate::util::commute_with_assets(dir.path(), PACKAGES).arg("run").arg("frames.toml"));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let folder = run_folders(&dir.path().join("runs"), "frames").pop().expect("a run folder");
    let edge = &read_json(&folder.join("metrics.json"))["edges"][0];
    assert_eq!(edge["parent-dim"].as_u64(), Some(440));
    let f1 = |p: &Value, key: &str| p[key]["note-f1"].as_f64().unwrap_or(f64::NAN);
    // Basic Pitch transcribing the synthesized audio, no map: well above chance, below the roll.
    let own = point(edge, "decoded from the parent's frames", 30);
    let ceiling = point(edge, "decoded from the child's frames", 30);
    assert!(f1(own, "scores") > 0.4 && f1(own, "scores") < f1(ceiling, "scores"), "{own}");
    let ridge = point(edge, "ridge", 30);
    assert!(f1(ridge, "scores") > f1(ridge, "null") + 0.15, "{ridge}");
}
