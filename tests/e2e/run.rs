//! `commute run`: a small experiment end to end, its run folder, and a rerun served from cache.

use crate::util::{commute, library, run};
use std::path::Path;
use std::process::Command;

const EXPERIMENT: &str = include_str!("experiments/run.toml");

fn commute_in(dir: &Path) -> Command {
    crate::util::commute_in(dir, &["commute-plugin-music", "commute-plugin-audio"])
}

fn only_run_folder(runs: &Path) -> std::path::PathBuf {
    let mut folders: Vec<_> = std::fs::read_dir(runs.join("tiny"))
        .expect("runs folder")
        .map(|e| e.expect("entry").path())
        .collect();
    folders.sort();
    folders.pop().expect("a run folder")
}

#[test]
fn a_run_writes_its_folder_and_a_rerun_recomputes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), EXPERIMENT).unwrap();

    let (code, out, err) = run(commute_in(dir.path()).args(["-v", "run", "tiny.toml", "--runs", "first"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sound → notes (p@1"), "{out}");
    let folder = only_run_folder(&dir.path().join("first"));
    for file in ["experiment.toml", "experiment.json", "plugins.json", "metrics.json", "report.md", "run.log"]
    {
        assert!(folder.join(file).is_file(), "{file} missing in {}", folder.display());
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).unwrap()).unwrap();
    let edge = &metrics["edges"][0];
    assert_eq!((edge["items"].as_u64(), edge["test"].as_u64()), (Some(130), Some(40)));
    assert_eq!(edge["parent-dim"].as_u64(), Some(32), "16 mel bands × (mean, std)");
    let points = edge["points"].as_array().unwrap();
    assert_eq!(points.len(), 4 * 3 * 2, "(methods, each alone and refined) × anchor counts × repeats");
    exports_as_tables(dir.path(), &folder, edge);
    let labels: std::collections::BTreeSet<&str> =
        points.iter().map(|p| p["method"].as_str().unwrap()).collect();
    let expected =
        ["procrustes", "procrustes + refine", "ridge (lambda = 0.1)", "ridge (lambda = 0.1) + refine"];
    assert_eq!(labels.into_iter().collect::<Vec<_>>(), expected);
    for p in points {
        let p1 = p["scores"]["p@1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p1));
        assert!(p["null"]["p@1"].as_f64().is_some(), "a null beside each score");
    }
    // More anchors help: the mean P@1 at 60 anchors beats 5 anchors for ridge.
    let mean = |method: &str, anchors: u64| {
        edge["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["method"].as_str().unwrap().starts_with(method)
                    && s["anchors"] == anchors
                    && s["metric"] == "mrr"
            })
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(mean("ridge (lambda = 0.1)", 60) > mean("ridge (lambda = 0.1)", 5), "MRR grows with anchors");
    let plugins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("plugins.json")).unwrap()).unwrap();
    assert_eq!(plugins.as_array().unwrap().len(), 2);
    assert_eq!(plugins[0]["sha256"].as_str().unwrap().len(), 64);
    let report = std::fs::read_to_string(folder.join("report.md")).unwrap();
    assert!(
        report.contains("## sound → notes") && report.contains("](plots/sound-notes-p_1.svg)"),
        "{report}"
    );
    let svg = std::fs::read_to_string(folder.join("plots/sound-notes-p_1.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");

    // The rerun finds every embedding and every point in the cache, and agrees exactly.
    let (code, _, err) = run(commute_in(dir.path()).args(["-v", "run", "tiny.toml", "--runs", "second"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cache hit: every chunk of this node is cached"), "{err}");
    let again = only_run_folder(&dir.path().join("second"));
    let metrics2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(again.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics2["cache"]["misses"], 0, "{}", metrics2["cache"]);
    assert_eq!(metrics2["cache"]["writes"], 0);
    assert_eq!(metrics2["edges"], metrics["edges"]);
}

/// `commute export RUN --metrics` writes every point's every metric as one row, in CSV and in
/// Parquet, with the scores of metrics.json.
fn exports_as_tables(dir: &Path, folder: &Path, edge: &serde_json::Value) {
    let points = edge["points"].as_array().expect("as metrics.json has it");
    let metrics = edge["metrics"].as_array().expect("as metrics.json has it");
    let expected_rows = points.len() * metrics.len();
    let (code, out, err) =
        run(commute_in(dir).arg("export").arg(folder).args(["--metrics", "-o", "metrics.csv"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("metrics.csv ({expected_rows} rows × 9 columns)")), "{out}");
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).expect("as metrics.json has it");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("experiment,parent,child,method,anchors,repeat,metric,value,null"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), expected_rows);
    // The first point's first metric, as metrics.json has it.
    let (p, m) = (&points[0], metrics[0].as_str().expect("as metrics.json has it"));
    let first: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(first[..4], ["tiny", "sound", "notes", p["method"].as_str().expect("as metrics.json has it")]);
    assert_eq!(first[4..7], [p["anchors"].to_string(), p["repeat"].to_string(), m.to_owned()]);
    assert_eq!(
        first[7].parse::<f64>().expect("as metrics.json has it"),
        p["scores"][m].as_f64().expect("as metrics.json has it")
    );
    assert_eq!(
        first[8].parse::<f64>().expect("as metrics.json has it"),
        p["null"][m].as_f64().expect("as metrics.json has it")
    );

    let (code, _, err) = run(commute_in(dir).arg("export").arg(folder.join("metrics.json")).args([
        "--metrics",
        "-o",
        "metrics.parquet",
    ]));
    assert_eq!(code, 0, "{err}");
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(dir.join("metrics.parquet")).expect("as metrics.json has it");
    let reader = SerializedFileReader::new(file).expect("as metrics.json has it");
    assert_eq!(reader.metadata().file_metadata().num_rows(), expected_rows as i64);

    let (code, _, err) = run(commute_in(dir).arg("export").arg(folder).args(["--metrics", "-o", "m.json"]));
    assert_eq!(code, 2);
    assert!(err.contains("use .csv or .parquet"), "{err}");

    // The report's notebook section: its command works as written, from the run folder.
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    let line = report
        .lines()
        .find(|l| l.starts_with("commute export . --metrics"))
        .unwrap_or_else(|| panic!("no export command in the report:\n{report}"));
    let args: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().skip(1).collect();
    let (code, out, err) = run(commute_in(folder).args(&args));
    assert_eq!(code, 0, "{line}: {err}");
    assert!(out.contains(&format!("metrics.parquet ({expected_rows} rows × 9 columns)")), "{out}");
    assert!(report.contains("pd.read_parquet(\"metrics.parquet\")"), "{report}");
    std::fs::remove_file(folder.join("metrics.parquet")).expect("written by the command");
}

#[test]
fn export_writes_a_node_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), EXPERIMENT).unwrap();
    let (code, out, err) =
        run(commute_in(dir.path()).args(["export", "tiny.toml", "--node", "notes", "-o", "notes.npy"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notes.npy (130 × 12)"), "{out}");
    let bytes = std::fs::read(dir.path().join("notes.npy")).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'shape': (130, 12)"));
}

const SKIPPING: &str = include_str!("experiments/skipping.toml");

fn echo_in(dir: &Path) -> Command {
    let mut cmd = commute();
    cmd.current_dir(dir)
        .env("COMMUTE_HOME", dir.join("cache"))
        .args(["--no-default-plugins", "--threads", "2", "--plugin"])
        .arg(library("commute-fixture-echo"));
    cmd
}

#[test]
fn items_an_encoder_fails_on_are_skipped_counted_and_left_unpaired() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("skipping.toml"), SKIPPING).expect("write experiment");
    let (code, _, stderr) = run(echo_in(dir.path()).args(["run", "skipping.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "run failed:\n{stderr}");
    let mut folders: Vec<_> = std::fs::read_dir(dir.path().join("runs/skipping"))
        .expect("runs folder")
        .map(|e| e.expect("entry").path())
        .collect();
    folders.sort();
    let folder = folders.pop().expect("a run folder");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).expect("metrics")).expect("json");
    let edge = &metrics["edges"][0];
    // 0, 7, …, 196: 29 of the 200 numbers are multiples of 7.
    assert_eq!(edge["skipped"], serde_json::json!([0, 29]), "{edge}");
    assert_eq!(edge["items"], 171);
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report");
    assert!(report.contains("Skipped items") && report.contains("29 in `picky`"), "{report}");
}

#[test]
fn without_skip_the_first_failing_item_fails_its_edge_and_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let strict = SKIPPING.replace("on-item-error = \"skip\"\n", "");
    std::fs::write(dir.path().join("strict.toml"), strict).expect("write experiment");
    let (code, _, stderr) = run(echo_in(dir.path()).args(["run", "strict.toml", "--runs", "runs"]));
    // The edge fails (recorded in the run folder); the run goes on with any other edge: exit 1.
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("failed: node `picky`"), "{stderr}");
    assert!(
        stderr.contains("node `picky`") && stderr.contains("not in vocabulary") && stderr.contains("on item"),
        "{stderr}"
    );
}

/// A 3-dimensional space (faulty `encode`) mapped into a 4-dimensional one (crashy `fine`).
const ROTATION: &str = include_str!("experiments/rotation.toml");

#[test]
fn rotation_invariant_scores_of_a_rotation_are_flagged_not_shown_beside_their_null() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rotation.toml"), ROTATION).expect("write experiment");
    let (code, _, err) =
        run(crate::util::commute_in(dir.path(), &["commute-fixture-faulty", "commute-fixture-crashy"])
            .args(["run", "rotation.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = crate::util::run_folders(&dir.path().join("runs"), "rotation").pop().expect("a run folder");
    let metrics = crate::util::read_json(&folder.join("metrics.json"));
    // metrics.json is one type, written by the run and read by swap: read back, written again,
    // the same bytes.
    let typed = commute_host::run::RunMetrics::read(&folder.join("metrics.json")).expect("typed metrics");
    let bytes = std::fs::read(folder.join("metrics.json")).expect("metrics.json");
    assert_eq!(serde_json::to_vec_pretty(&typed).expect("JSON"), bytes);
    let edge = &metrics["edges"][0];
    assert_eq!(edge["rotations"], serde_json::json!(["procrustes"]), "{edge}");
    // The fact behind the flag: for the rotation, CKA and mutual kNN equal their null exactly.
    for s in edge["summary"].as_array().expect("summary") {
        let (mean, null) = (s["mean"].as_f64().expect("mean"), s["null-mean"].as_f64().expect("null"));
        if s["method"] == "procrustes" && s["metric"] != "p@1" {
            assert!((mean - null).abs() < 1e-6, "{s}");
        }
    }
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report");
    let table = |method: &str| -> Vec<String> {
        report
            .lines()
            .filter(|l| l.starts_with(&format!("| {method} |")) && l.contains('±'))
            .map(str::to_owned)
            .collect()
    };
    let rows = table("procrustes");
    assert!(!rows.is_empty() && rows.iter().all(|r| r.matches('†').count() == 2), "{report}");
    let ridge = table("ridge");
    assert!(
        !ridge.is_empty() && ridge.iter().all(|r| !r.contains('†') && r.matches('(').count() == 3),
        "{report}"
    );
    assert!(report.contains("† The map of `procrustes` is a rotation"), "{report}");
}

#[test]
fn laplacian_reads_the_pools_unpaired_rows_on_an_edge_without_operators() {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = ROTATION.replace("name = \"rotation\"", "name = \"laplacian\"").replace(
        r#"methods = [{ kind = "procrustes" }, { kind = "ridge" }]"#,
        r#"methods = [{ kind = "laplacian", k = 5 }]"#,
    );
    std::fs::write(dir.path().join("laplacian.toml"), toml).expect("write experiment");
    let (code, _, err) =
        run(crate::util::commute_in(dir.path(), &["commute-fixture-faulty", "commute-fixture-crashy"])
            .args(["run", "laplacian.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = crate::util::run_folders(&dir.path().join("runs"), "laplacian").pop().expect("a run folder");
    let metrics = crate::util::read_json(&folder.join("metrics.json"));
    let points = metrics["edges"][0]["points"].as_array().expect("points");
    assert_eq!(points.len(), 4, "2 anchor counts × 2 repeats");
    assert!(points.iter().all(|p| p["error"].is_null() && p["scores"]["p@1"].is_f64()), "{points:?}");
}

/// Two nodes of the faulty fixture's `encode` (no faults), whichever build of it is loaded.
const REBUILT: &str = include_str!("experiments/rebuilt.toml");

/// Runs REBUILT in `dir` with the given build of the faulty plugin; returns stderr and, per node,
/// the embedding chunks (cached, computed).
fn run_build(dir: &std::path::Path, package: &str) -> (String, Vec<(u64, u64)>) {
    let (code, _, err) =
        run(crate::util::commute_in(dir, &[package]).args(["run", "rebuilt.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{package}: {err}");
    let folder = crate::util::run_folders(&dir.join("runs"), "rebuilt").pop().expect("a run folder");
    let metrics = crate::util::read_json(&folder.join("metrics.json"));
    let chunks = ["a", "b"]
        .iter()
        .map(|n| {
            let e = &metrics["cache"]["embedded"][*n];
            (e["cached"].as_u64().expect("cached"), e["computed"].as_u64().expect("computed"))
        })
        .collect();
    (err, chunks)
}

#[test]
fn a_rebuilt_plugin_keeps_its_cached_embeddings_unless_the_function_version_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rebuilt.toml"), REBUILT).expect("write experiment");
    // 150 items: 3 chunks per node.
    let (_, first) = run_build(dir.path(), "commute-fixture-faulty");
    assert_eq!(first, vec![(0, 3), (0, 3)]);
    // Another library (an unrelated function changed), the same `encode`: nothing recomputed,
    // and a warning says the results came from another build.
    let (err, rebuilt) = run_build(dir.path(), "commute-fixture-faulty-rebuilt");
    assert_eq!(rebuilt, vec![(3, 0), (3, 0)], "{err}");
    assert!(
        err.contains("computed by another build of plugin `faulty`") && err.contains("bump its `VERSION`"),
        "{err}"
    );
    // Once per function and run, not once per node (both nodes use `encode`).
    assert_eq!(err.matches("computed by another build").count(), 1, "{err}");
    // `encode` at version 2: every chunk computed again.
    let (_, bumped) = run_build(dir.path(), "commute-fixture-faulty-v2");
    assert_eq!(bumped, vec![(0, 3), (0, 3)]);
}

/// Runs `tiny.toml` with `anchors` and `split` (and the `mrr` of every null) in `dir`; returns the
/// points at 12 anchors and how many points came from the cache.
fn tiny_points(dir: &std::path::Path, anchors: &str, split: &str) -> (Vec<serde_json::Value>, u64) {
    let experiment = include_str!("experiments/tiny.toml")
        .replace("anchors = [5]", &format!("anchors = {anchors}\nsplit = \"{split}\""))
        .replace("metrics = [\"p@1\"]", "metrics = [\"p@1\", \"mrr\"]");
    std::fs::write(dir.join("tiny.toml"), experiment).expect("write experiment");
    let (code, _, err) = run(crate::util::commute_in(dir, &["commute-plugin-music"]).args([
        "run",
        "tiny.toml",
        "--runs",
        "runs",
    ]));
    assert_eq!(code, 0, "{err}");
    let folder = crate::util::run_folders(&dir.join("runs"), "tiny-trust").pop().expect("a run folder");
    let metrics = crate::util::read_json(&folder.join("metrics.json"));
    let points = metrics["edges"][0]["points"].as_array().expect("points").clone();
    let cached = metrics["cache"]["edges"][0]["points-cached"].as_u64().expect("points-cached");
    (points.into_iter().filter(|p| p["anchors"] == 12).collect(), cached)
}

#[test]
fn a_cached_point_is_the_point_whatever_else_the_file_declares() {
    let (alone, with_five) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The permutation null at 12 anchors is drawn from its own seed: declaring 5 anchors as well
    // (in a fresh cache) gives the same null, so a point cached by one file is right for the other.
    let (a, _) = tiny_points(alone.path(), "[12]", "random");
    let (b, _) = tiny_points(with_five.path(), "[5, 12]", "random");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["null"], b[0]["null"], "the null at 12 anchors depends on the other counts");
    assert_eq!(a[0]["scores"], b[0]["scores"]);
    // An ordered split takes the test items after the largest anchor count, so adding 12 to a
    // file with 5 moves them: the points at 5 are fitted again, not read back.
    let dir = tempfile::tempdir().unwrap();
    let _ = tiny_points(dir.path(), "[5]", "ordered");
    let (_, cached) = tiny_points(dir.path(), "[5, 12]", "ordered");
    assert_eq!(cached, 0, "points of another split were served from the cache");
    let (_, cached) = tiny_points(dir.path(), "[5, 12]", "ordered");
    assert_eq!(cached, 2, "a rerun reads its points back");
}

#[test]
fn a_folder_source_reads_the_folder_beside_the_experiment_from_any_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    std::fs::create_dir_all(study.join("clips")).unwrap();
    // Twelve half-second tones, 8 kHz, each its own pitch.
    for i in 0..12u32 {
        let hz = 220.0 * 2f32.powf(i as f32 / 12.0);
        let samples =
            (0..4000).map(|t| 0.5 * (2.0 * std::f32::consts::PI * hz * t as f32 / 8000.0).sin()).collect();
        let bytes = commute_sdk::wav::write(&commute_sdk::Audio { sample_rate: 8000, samples }).unwrap();
        std::fs::write(study.join("clips").join(format!("tone-{i:02}.wav")), bytes).unwrap();
    }
    let experiment = |folder: &str| {
        format!(
            "[experiment]\nname = \"folder\"\nseed = 1\nanchors = [5]\nrepeats = 1\ntest = 4\n\n\
             [data.clips]\nsource = {{ plugin = \"audio\", function = \"wav-files\", params = {{ dir = \"{folder}\" }} }}\n\n\
             [nodes.mel]\ndata = \"clips\"\nplugin = \"audio\"\nencoder = \"log-mel\"\n\n\
             [nodes.loud]\ndata = \"clips\"\nplugin = \"audio\"\nencoder = \"loudness\"\n\n\
             [[edges]]\nparent = \"mel\"\nchild = \"loud\"\nmethods = [{{ kind = \"ridge\" }}]\nmetrics = [\"p@1\"]\n"
        )
    };
    std::fs::write(study.join("folder.toml"), experiment("clips")).unwrap();
    // Run from the folder above: `clips` is the study's, not the working directory's.
    let commute = || crate::util::commute_in(dir.path(), &["commute-plugin-audio"]);
    let (code, _, err) = run(commute().args(["run", "study/folder.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = crate::util::run_folders(&dir.path().join("runs"), "folder").pop().expect("a run folder");
    let metrics = crate::util::read_json(&folder.join("metrics.json"));
    assert_eq!(metrics["edges"][0]["items"], 12, "{}", metrics["edges"][0]);
    // A folder that is not there is a check error at its value, saying where it was looked for.
    std::fs::write(study.join("missing.toml"), experiment("nowhere")).unwrap();
    let (code, _, err) = run(commute().args(["check", "study/missing.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no folder `nowhere`") && err.contains("missing.toml:9:"), "{err}");
    assert!(err.contains("read from the experiment file's folder"), "{err}");
}
