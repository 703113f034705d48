//! Nodes whose vectors come from files (`embeddings = …`): matched to a plugin's items by index,
//! to words and their operator images by text; cached by the file's content, recorded in the
//! run folder, and items without a row skipped or refused as the node says.

use crate::util::{commute_in, read_json, run, run_folders};
use commute_sdk::npy;
use std::path::Path;
use std::process::Command;

fn music_in(dir: &Path) -> Command {
    commute_in(dir, &["commute-plugin-music"])
}

/// A signed permutation of the columns: an exact rotation, so Procrustes must recover it.
fn rotate(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let d = rows[0].len();
    rows.iter()
        .map(|r| (0..d).map(|j| if j % 2 == 0 { 1.0 } else { -1.0 } * r[(j * 5 + 3) % d]).collect())
        .collect()
}

fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    std::fs::write(path, npy::encode_f32(&[rows.len(), rows[0].len()], &flat)).expect("write .npy");
}

const EXPORT: &str = r#"
[experiment]
name = "export"
anchors = [5]

[data.scores]
source = { plugin = "music", function = "random-scores", params = { count = 80, seed = 4, max-duration-s = 4.0 } }

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "chroma"

[nodes.roll]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[[edges]]
parent = "notes"
child = "roll"
methods = [{ kind = "procrustes" }]
"#;

const MINE: &str = r#"
[experiment]
name = "mine"
seed = 1
anchors = [20]
repeats = 1
test = 30

[data.scores]
source = { plugin = "music", function = "random-scores", params = { count = 80, seed = 4, max-duration-s = 4.0 } }

[nodes.mine]
data = "scores"
embeddings = "mine.npy"
SKIP

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "chroma"

[[edges]]
parent = "mine"
child = "notes"
methods = [{ kind = "procrustes" }]
metrics = ["p@1"]
"#;

#[test]
fn own_vectors_meet_a_plugin_node_by_index_and_are_cached_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("export.toml"), EXPORT).unwrap();
    let (code, _, err) =
        run(music_in(d).args(["export", "export.toml", "--node", "notes", "-o", "notes.npy"]));
    assert_eq!(code, 0, "{err}");
    let notes = npy::decode(&std::fs::read(d.join("notes.npy")).unwrap()).unwrap();
    let dim = notes.shape[1];
    let rows: Vec<Vec<f32>> = notes.data.chunks(dim).map(<[f32]>::to_vec).collect();
    // The researcher's own vectors: the same scores, rotated.
    write_npy(&d.join("mine.npy"), &rotate(&rows));
    std::fs::write(d.join("mine.toml"), MINE.replace("SKIP", "")).unwrap();

    let (code, _, err) = run(music_in(d).args(["-v", "run", "mine.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&d.join("runs"), "mine").pop().unwrap();
    let metrics = read_json(&folder.join("metrics.json"));
    let edge = &metrics["edges"][0];
    assert_eq!(edge["items"], 80);
    assert_eq!(edge["parent-dim"], dim);
    let p1 = edge["points"][0]["scores"]["p@1"].as_f64().unwrap();
    assert_eq!(p1, 1.0, "Procrustes recovers an exact rotation of the plugin's own vectors");
    let source = read_json(&folder.join("source.json"));
    let sha = crate::util::sha256_hex(&std::fs::read(d.join("mine.npy")).unwrap());
    assert_eq!(source["embeddings"]["mine"]["sha256"], sha, "the run folder records the file's content");

    // Same bytes: every chunk from the cache. Other bytes: recomputed.
    let (code, _, err) = run(music_in(d).args(["-v", "run", "mine.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cache hit: every chunk of this node is cached node=\"mine\""), "{err}");
    write_npy(&d.join("mine.npy"), &rotate(&rows)[..70]);
    let (code, out, err) = run(music_in(d).args(["run", "mine.toml", "--runs", "runs"]));
    assert_eq!(code, 1, "items without a row fail the node's edges by default\n{out}{err}");
    let folder = run_folders(&d.join("runs"), "mine").pop().unwrap();
    let failed = read_json(&folder.join("metrics.json"))["failed-edges"][0]["error"].to_string();
    assert!(failed.contains("node `mine`: `mine.npy` has no row for this item on item 70"), "{failed}");

    std::fs::write(d.join("mine.toml"), MINE.replace("SKIP", "on-item-error = \"skip\"")).unwrap();
    let (code, _, err) = run(music_in(d).args(["run", "mine.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&d.join("runs"), "mine").pop().unwrap();
    let edge = &read_json(&folder.join("metrics.json"))["edges"][0];
    assert_eq!((edge["items"].as_u64(), edge["skipped"][0].as_u64()), (Some(70), Some(10)));
}

const WORDS: &str = r#"
[experiment]
name = "words"
seed = 2
anchors = [10]
repeats = 1
test = 12

[data.words]
files = "words"

[data.words.operators]
plural = { plugin = "text", function = "inflect", params = { language = "en", form = "plural" } }

[nodes.a]
data = "words"
embeddings = "a.npy"
keys = "a.txt"
on-item-error = "skip"

[nodes.b]
data = "words"
embeddings = "b.safetensors"
keys = "b.txt"
on-item-error = "skip"

[[edges]]
parent = "a"
child = "b"
operators = ["plural"]
methods = [{ kind = "procrustes" }, { kind = "functional" }]
metrics = ["p@1"]
"#;

const NOUNS: [&str; 30] = [
    "cat", "dog", "car", "tree", "book", "bird", "chair", "lamp", "door", "road", "hill", "lake", "star",
    "ship", "coat", "shoe", "cup", "pen", "desk", "bell", "drum", "horn", "ring", "rock", "seed", "wall",
    "song", "game", "bike", "card",
];

/// A number in [-1, 1) from a counter (SplitMix64's finaliser): distinct vectors for distinct words.
fn noise(n: u64) -> f32 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// A `.safetensors` file holding one F32 tensor `vectors`.
fn safetensors(rows: &[Vec<f32>]) -> Vec<u8> {
    let data: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    let header = serde_json::json!({
        "vectors": { "dtype": "F32", "shape": [rows.len(), rows[0].len()], "data_offsets": [0, data.len()] }
    })
    .to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn words_and_their_operator_images_find_their_rows_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("words")).unwrap();
    std::fs::write(d.join("words/nouns.txt"), NOUNS.join("\n")).unwrap();
    // Every noun and its plural, in 8 dimensions (a fixed pseudo-random pattern); `b` is `a`
    // rotated. `a` lacks the plurals of the first 5 nouns, `b` lacks the noun "card".
    let keys: Vec<String> = NOUNS.iter().flat_map(|n| [n.to_string(), format!("{n}s")]).collect();
    let vector = |i: usize| -> Vec<f32> { (0..8).map(|j| noise((i * 8 + j) as u64)).collect() };
    let a: Vec<(String, Vec<f32>)> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| !(i % 2 == 1 && i / 2 < 5))
        .map(|(i, k)| (k.clone(), vector(i)))
        .collect();
    let a_rows: Vec<Vec<f32>> = a.iter().map(|(_, v)| v.clone()).collect();
    let b: Vec<(String, Vec<f32>)> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.as_str() != "card")
        .map(|(i, k)| (k.clone(), rotate(&[vector(i)]).remove(0)))
        .collect();
    write_npy(&d.join("a.npy"), &a_rows);
    std::fs::write(d.join("a.txt"), a.iter().map(|(k, _)| format!("{k}\n")).collect::<String>()).unwrap();
    let b_rows: Vec<Vec<f32>> = b.iter().map(|(_, v)| v.clone()).collect();
    std::fs::write(d.join("b.safetensors"), safetensors(&b_rows)).unwrap();
    std::fs::write(d.join("b.txt"), b.iter().map(|(k, _)| format!("{k}\n")).collect::<String>()).unwrap();
    std::fs::write(d.join("words.toml"), WORDS).unwrap();

    let (code, _, err) =
        run(commute_in(d, &["commute-plugin-text"]).args(["run", "words.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&d.join("runs"), "words").pop().unwrap();
    let edge = &read_json(&folder.join("metrics.json"))["edges"][0];
    assert_eq!(edge["items"], 29, "every noun but `card`, which `b` lacks");
    assert_eq!(edge["skipped"], serde_json::json!([0, 1]));
    // The plurals were looked up by their text in both files: `a` lacks 5 of them; in `b` the
    // noun `card` has no row, so its plural pairs with nothing.
    let log = std::fs::read_to_string(folder.join("run.log")).unwrap();
    assert!(log.contains("operator plural: defined on 25 of 30 items in a, 29 of 30 in b"), "{log}");
    for point in edge["points"].as_array().unwrap() {
        assert_eq!(
            point["scores"]["p@1"], 1.0,
            "{}: an exact rotation ({})",
            point["method"], point["error"]
        );
    }
}
