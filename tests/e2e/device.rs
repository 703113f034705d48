//! Devices (`device = "cuda:0"` on a node), as far as a machine without a GPU can test them: the
//! plugins here are built without their `cuda` feature, so a node on a CUDA device must fail with
//! its node, its device and the missing feature named — in-process and in an isolated worker,
//! which shows that the device crosses the worker protocol — while the other edges are evaluated;
//! and `device = "cpu"` must change nothing at all (same cache entries, same bytes, same metrics).
//!
//! Basic Pitch opens ONNX Runtime before it looks at the device, so the first test needs the
//! `basic-pitch-nmp-onnx` and `onnxruntime` assets: it uses the default asset store (where the
//! plugin tests put them) and fetches them with the registry client where they are missing.

use crate::util::{commute_with_assets, read_json as json, run, run_folders};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: [&str; 2] = ["commute-plugin-music", "commute-plugin-audio"];

fn commute(dir: &Path) -> Command {
    commute_with_assets(dir, &PACKAGES)
}

/// The only run folder under `runs/<name>/`.
fn run_folder(runs: &Path, name: &str) -> PathBuf {
    let folders = run_folders(runs, name);
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders[0].clone()
}

/// Three separate edges (no node with two children, no path of two edges: no tree analyses):
/// one on the CPU, one whose child's encoder asks for `cuda:0` in-process, one whose child asks
/// for `cuda:1` in an isolated worker.
const ON_A_GPU: &str = include_str!("experiments/on-a-gpu.toml");

#[test]
fn a_cuda_node_without_the_cuda_feature_fails_its_edges_naming_node_device_and_feature() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("gpu.toml"), ON_A_GPU).expect("write the experiment");
    let (code, out, err) = run(commute(dir.path()).args(["run", "gpu.toml"]));
    assert_eq!(code, 1, "a failed edge is a failed check, not an error:\n{out}\n{err}");

    // Each failing node is named with its own device: `cuda:1` could only reach the plugin's
    // message through the worker protocol.
    for (parent, node, device) in
        [("dynamics", "pitch", "cuda:0"), ("dynamics-too", "pitch-isolated", "cuda:1")]
    {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("error: edge {parent} → {node} failed: ")))
            .unwrap_or_else(|| panic!("no error line for {node}:\n{err}"));
        assert!(
            line.contains(&format!("node `{node}`: cannot open its encoder on device `{device}`")),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "failed: cannot run on device `{device}`: this plugin was built without the `cuda` feature"
            )),
            "the plugin's own words, a failure on the device and not bad parameters: {line}"
        );
    }
    assert!(err.contains("error: 2 of 3 edges failed"), "{err}");
    assert!(out.contains("roll → chroma (p@1"), "the CPU edge is evaluated:\n{out}");
    assert!(out.contains("dynamics → pitch: FAILED: node `pitch`"), "{out}");

    let folder = run_folder(&dir.path().join("runs"), "gpu");
    let metrics = json(&folder.join("metrics.json"));
    let evaluated: Vec<(&str, &str)> = metrics["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e["parent"].as_str().unwrap_or("?"), e["child"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(evaluated, [("roll", "chroma")]);
    let failed = metrics["failed-edges"].as_array().expect("failed edges");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0]["error"].as_str().unwrap_or_default().contains("`cuda` feature"), "{failed:?}");
    // The run manifest: every node's device in metrics.json, the non-CPU ones in experiment.json
    // and in the report's header.
    let devices: BTreeMap<String, String> =
        serde_json::from_value(metrics["devices"].clone()).expect("a devices map");
    let expected: BTreeMap<String, String> = [
        ("roll", "cpu"),
        ("chroma", "cpu"),
        ("dynamics", "cpu"),
        ("pitch", "cuda:0"),
        ("dynamics-too", "cpu"),
        ("pitch-isolated", "cuda:1"),
    ]
    .into_iter()
    .map(|(n, d)| (n.to_owned(), d.to_owned()))
    .collect();
    assert_eq!(devices, expected);
    let experiment = json(&folder.join("experiment.json"));
    let recorded: Vec<Option<&str>> = experiment["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n.get("device").map(|d| d.as_str().unwrap_or("?")))
        .collect();
    assert_eq!(recorded, [None, None, None, Some("cuda:0"), None, Some("cuda:1")]);
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(
        report.contains("Devices (each node's encoder; the data and the other nodes on the CPU): `pitch` on `cuda:0`, `pitch-isolated` on `cuda:1`."),
        "{report}"
    );
    let log = std::fs::read_to_string(folder.join("run.log")).expect("run.log");
    assert!(log.contains("node pitch: encoder on device cuda:0"), "{log}");
}

/// One edge; `{device}` is replaced by a `device` line (or nothing) on both nodes.
const ON_THE_CPU: &str = include_str!("experiments/on-the-cpu.toml");

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read a cache entry");
                out.insert(path.strip_prefix(dir).expect("under dir").to_path_buf(), bytes);
            }
        }
    }
    out
}

#[test]
fn device_cpu_is_exactly_no_device_same_cache_entries_same_bytes_same_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut runs = Vec::new();
    for (name, line) in [("plain", ""), ("explicit", "device = \"cpu\"")] {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("cpu.toml"), ON_THE_CPU.replace("{device}", line)).expect("write");
        // Each in its own empty cache (`<folder>/cache`), so that both compute everything.
        let (code, out, err) = run(commute(&folder).args(["run", "cpu.toml"]));
        assert_eq!(code, 0, "{name}:\n{out}\n{err}");
        runs.push((folder.clone(), run_folder(&folder.join("runs"), "cpu")));
    }
    let [(plain_dir, plain), (explicit_dir, explicit)] = &runs[..] else { unreachable!() };

    let (a, b) = (files(&plain_dir.join("cache/embeddings")), files(&explicit_dir.join("cache/embeddings")));
    assert_eq!(a.len(), 4, "2 nodes × 2 chunks of 64 items: {:?}", a.keys());
    assert_eq!(a, b, "the same cache entries (names are keys) with the same bytes");

    let (ma, mb) = (json(&plain.join("metrics.json")), json(&explicit.join("metrics.json")));
    assert_eq!(ma["edges"], mb["edges"], "the same points and summaries");
    assert_eq!(ma["devices"], serde_json::json!({ "roll": "cpu", "chroma": "cpu" }));
    assert_eq!(ma["devices"], mb["devices"]);
    assert_eq!(json(&plain.join("experiment.json")), json(&explicit.join("experiment.json")));
    let report = std::fs::read_to_string(explicit.join("report.md")).expect("report.md");
    assert!(!report.contains("Devices ("), "nothing about devices when every node is on the CPU:\n{report}");

    // And the explicit file, run again on the plain run's cache, computes nothing.
    let (code, _, err) = run(commute(plain_dir)
        .args(["-v", "run", "cpu.toml", "--runs", "again"])
        .env("COMMUTE_HOME", plain_dir.join("cache"))
        .current_dir(explicit_dir));
    assert_eq!(code, 0, "{err}");
    let again = json(&run_folder(&explicit_dir.join("again"), "cpu").join("metrics.json"));
    assert_eq!((again["cache"]["misses"].as_u64(), again["cache"]["writes"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn call_takes_a_device_and_refuses_one_for_a_function_without_gpu_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = run(commute(dir.path()).args([
        "call",
        "music",
        "random-scores",
        "--params",
        "count = 1",
        "--device",
        "cuda:0",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`random-scores` of plugin `music` runs on the CPU only, not on `cuda:0`"), "{err}");

    let (code, _, err) = run(commute(dir.path()).args(["call", "audio", "basic-pitch", "--device", "gpu"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected `cpu` or `cuda:N`"), "{err}");

    // Basic Pitch has GPU code, but this build of the plugin has no `cuda` feature.
    let (code, _, err) =
        run(commute(dir.path()).args(["call", "audio", "basic-pitch", "--device", "cuda:0"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`basic-pitch` failed: cannot run on device `cuda:0`: this plugin was built without the `cuda` feature"),
        "{err}"
    );
    assert!(!err.contains("bad parameters"), "the parameters are fine: {err}");
}
