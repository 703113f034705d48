//! Layer sweeps, from TOML to the report: `layers` on a node stands for one node per layer
//! (`NAME@k`), an edge between swept nodes for its layer grid, and the report gathers the grid
//! into heatmaps and names each layer's best match. MiniLM's int8 ONNX model against its fp32
//! weights run by candle is the known answer: the same network, so every layer's best match by
//! CKA is the same layer. Bad sweeps are check errors at the `layers` value.

use crate::util::{commute_with_assets, read_json, run, run_folders};
use std::path::Path;
use std::process::Command;

fn commute(home: &Path) -> Command {
    commute_with_assets(home, &["commute-plugin-text"])
}

const EXPERIMENT: &str = r#"
[experiment]
name = "layers"
seed = 3
anchors = [10]
repeats = 1
test = 14

[data.sentences]
files = "sentences"

[nodes.int8]
data = "sentences"
plugin = "text"
encoder = "minilm"
layers = [0, 3, 6]

[nodes.fp32]
data = "sentences"
plugin = "text"
encoder = "minilm"
params = { backend = "candle" }
layers = "all"

[[edges]]
parent = "int8"
child = "fp32"
methods = [{ kind = "procrustes" }]
metrics = ["cka"]
null = false
"#;

#[test]
fn a_layer_sweep_expands_into_nodes_and_a_grid_whose_best_matches_are_the_same_layers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::create_dir_all(home.join("sentences")).unwrap();
    let sentences: Vec<String> = (0..24)
        .map(|i| {
            format!("Sentence {i} tells of {} and {}.", ["rain", "music", "a cat", "trains"][i % 4], i * 7)
        })
        .collect();
    std::fs::write(home.join("sentences/lines.txt"), sentences.join("\n")).unwrap();
    std::fs::write(home.join("layers.toml"), EXPERIMENT).unwrap();

    let (code, out, err) = run(commute(home).args(["check", "layers.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10 nodes, 21 edges"), "3 + 7 nodes, a 3 × 7 grid: {out}");

    let (code, out, err) = run(commute(home).args(["-v", "run", "layers.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("layer grid int8 → fp32 (cka at 10 anchors, procrustes): 0 → 0 ("),
        "the terminal sums the grid up: {out}"
    );
    for k in [3, 6] {
        assert!(out.contains(&format!(", {k} → {k} (")), "layer {k}'s best match is layer {k}: {out}");
    }
    assert!(!out.contains("int8@3 → fp32@3 (cka"), "grid edges are summed up by the grid: {out}");

    let folder = run_folders(&home.join("runs"), "layers").pop().unwrap();
    let report = std::fs::read_to_string(folder.join("report.md")).unwrap();
    assert!(report.contains("## Layer grid: int8 → fp32"), "{report}");
    assert!(report.contains("## int8@3 → fp32@5"), "every cell is an edge of its own: {report}");
    let svg = std::fs::read_to_string(folder.join("plots/grid-int8-fp32-cka-procrustes.svg")).unwrap();
    assert_eq!(svg.matches("<rect x=").count(), 21, "one cell per edge of the grid");
    let experiment = read_json(&folder.join("experiment.json"));
    let node = experiment["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "fp32@4").unwrap();
    assert_eq!(
        (node["layer-of"]["node"].as_str(), node["layer-of"]["layer"].as_u64()),
        (Some("fp32"), Some(4))
    );
    assert_eq!(node["encoder"]["params"]["layer"], 4, "{node}");
    let metrics = read_json(&folder.join("metrics.json"));
    assert_eq!(metrics["edges"].as_array().unwrap().len(), 21);
    // One forward pass per sweep: the first layer's node computes the chunk at every layer, and
    // the other layers' nodes find theirs cached.
    let embedded = &metrics["cache"]["embedded"];
    for (sweep, layers) in [("int8", vec![0, 3, 6]), ("fp32", (0..=6).collect())] {
        let used = |k: usize, what: &str| embedded[format!("{sweep}@{k}")][what].as_u64();
        assert_eq!(
            (used(layers[0], "computed"), used(layers[0], "cached")),
            (Some(1), Some(0)),
            "{embedded}"
        );
        for &k in &layers[1..] {
            assert_eq!(
                (used(k, "computed"), used(k, "cached")),
                (Some(0), Some(1)),
                "{sweep}@{k}: {embedded}"
            );
        }
    }
    assert!(err.contains("one forward pass for every layer of the sweep"), "{err}");

    // A node of a sweep is the encoder with that `layer`: a node declared so shares its cache.
    let single = EXPERIMENT.replace("layers = [0, 3, 6]", "params = { layer = 3 }");
    std::fs::write(home.join("single.toml"), single).unwrap();
    let (code, _, err) = run(commute(home).args(["-v", "run", "single.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cache hit: every chunk of this node is cached node=\"int8\""), "{err}");

    // Bad sweeps: a layer the encoder does not have, and a layer given twice.
    let err = refused_by_check(
        home,
        &EXPERIMENT.replace("layers = [0, 3, 6]", "layers = [0, 9]").replace(
            "params = { backend = \"candle\" }\nlayers = \"all\"",
            "params = { backend = \"candle\", layer = 2 }\nlayers = \"all\"",
        ),
    );
    assert!(err.contains("`text/minilm` has no layer 9: its `layer` is within 0..=6"), "{err}");
    assert!(err.contains("`layers` sweeps `layer`, which `params` also sets"), "{err}");
    // The encoder's own `layers` (one pass over several layers) is range-checked as written.
    let err =
        refused_by_check(home, &EXPERIMENT.replace("layers = [0, 3, 6]", "params = { layers = [0, 9] }"));
    assert!(err.contains("parameter `layers` of `minilm` must be in [0, 6], found 9"), "{err}");
    assert!(err.contains("bad.toml:16:10"), "{err}");
    let err = refused_by_check(home, &EXPERIMENT.replace("null = false", "null = false\ngrid-anchors = 7"));
    assert!(err.contains("`grid-anchors = 7` is not one of the experiment's anchor counts"), "{err}");
    assert!(err.contains("bad.toml:"), "{err}");
}

/// `commute check` on `experiment` written to `bad.toml` in `home`: it must exit 1; its stderr.
fn refused_by_check(home: &Path, experiment: &str) -> String {
    std::fs::write(home.join("bad.toml"), experiment).expect("write bad.toml");
    let (code, _, err) = run(commute(home).args(["check", "bad.toml"]));
    assert_eq!(code, 1, "{err}");
    err
}

/// MiniLM cut after block 3 and resumed there, declared in TOML: a data set of token states
/// rendered from the sentences, and a node that runs the rest of the model on them.
const CUT: &str = r#"
[experiment]
name = "cut"
seed = 3
anchors = [10]
repeats = 1
test = 14

[data.sentences]
files = "sentences"

[data.states]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = 3 } }

[nodes.whole]
data = "sentences"
plugin = "text"
encoder = "minilm"
params = { backend = "candle" }

[nodes.resumed]
data = "states"
plugin = "text"
encoder = "minilm-resume"
params = { layer = 3 }

[[edges]]
parent = "whole"
child = "resumed"
methods = [{ kind = "procrustes" }, { kind = "relative" }]
metrics = ["cka", "p@1"]
null = false
"#;

#[test]
fn a_model_cut_at_a_layer_and_resumed_from_its_token_states_is_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::create_dir_all(home.join("sentences")).unwrap();
    let sentences: Vec<String> = (0..24)
        .map(|i| format!("Line {i} is about {}.", ["snow", "jazz", "a dog", "ships"][i % 4]))
        .collect();
    std::fs::write(home.join("sentences/lines.txt"), sentences.join("\n")).unwrap();
    std::fs::write(home.join("cut.toml"), CUT).unwrap();
    let (code, _, err) = run(commute(home).args(["run", "cut.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&home.join("runs"), "cut").pop().unwrap();
    let score = |folder: &Path, method: &str, metric: &str| {
        let metrics = read_json(&folder.join("metrics.json"));
        let points = metrics["edges"][0]["points"].as_array().unwrap().clone();
        let point = points.iter().find(|p| p["method"] == method).unwrap().clone();
        point["scores"][metric].as_f64().unwrap()
    };
    // CKA is blind to a rotation, so Procrustes' cell compares the two spaces themselves; each
    // side's similarities to its own anchors (relative representations) are then equal too.
    let cka = score(&folder, "procrustes", "cka");
    assert!((cka - 1.0).abs() < 1e-6, "the same space: CKA {cka}");
    assert_eq!(score(&folder, "relative", "p@1"), 1.0, "every test sentence finds itself");
    // Resuming from another block than the cut is another space.
    std::fs::write(
        home.join("cut.toml"),
        CUT.replace("params = { layer = 3 }\n\n[[edges]]", "params = { layer = 5 }\n\n[[edges]]"),
    )
    .unwrap();
    let (code, _, err) = run(commute(home).args(["run", "cut.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&home.join("runs"), "cut").pop().unwrap();
    let cka = score(&folder, "procrustes", "cka");
    assert!(cka < 0.999, "resumed from block 5 on states after block 3: CKA {cka}");
}
