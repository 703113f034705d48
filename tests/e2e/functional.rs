//! Functional alignment end to end: operators declared on data sets, applied by the real music
//! plugin, embedded in both spaces, split between the sides without leakage, used by the
//! `functional` method, reported with their fits and metrics.

use crate::util::run;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn experiment(items: &str) -> String {
    format!(
        r#"
[experiment]
name = "ops"
seed = 4
anchors = [5, 40]
repeats = 2
test = 30

[data.scores]
source = {{ plugin = "music", function = "random-scores", params = {{ count = 160, seed = 9, max-duration-s = 2.0 }} }}

[data.scores.operators]
up = {{ plugin = "music", function = "transpose", params = {{ semitones = 2, out-of-range = "clamp" }} }}
louder = {{ plugin = "music", function = "louder", params = {{ db = 6.0 }} }}

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[nodes.pitches]
data = "scores"
plugin = "music"
encoder = "chroma"

[[edges]]
parent = "notes"
child = "pitches"
operators = ["up", "louder"]
operator-items = "{items}"
methods = [{{ kind = "least-squares" }}, {{ kind = "functional" }}, {{ kind = "functional", shuffle-operators = true }}]
metrics = ["p@1", "transfer-p@1", "commutation"]
"#
    )
}

fn commute_in(dir: &Path) -> Command {
    crate::util::commute_in(dir, &["commute-plugin-music"])
}

/// Runs the experiment and returns its metrics and report.
fn run_ops(items: &str) -> (Value, String) {
    run_text(&experiment(items))
}

/// Runs an experiment file's text and returns its metrics and report.
fn run_text(text: &str) -> (Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ops.toml"), text).expect("write experiment");
    let (metrics, report, _) = run_file(dir.path(), &["commute-plugin-music"]);
    (metrics, report)
}

/// Runs `dir/ops.toml` (experiment `ops`) with the plugins of `packages`, and returns its
/// metrics, report and run log.
fn run_file(dir: &Path, packages: &[&str]) -> (Value, String, String) {
    let (code, stdout, stderr) = run(crate::util::commute_in(dir, packages).arg("run").arg("ops.toml"));
    assert_eq!(code, 0, "run failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let runs = dir.join("runs/ops");
    let folder = std::fs::read_dir(&runs).expect("runs").next().expect("a run folder").expect("entry").path();
    let metrics: Value =
        serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).expect("metrics.json"))
            .expect("json");
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    let log = std::fs::read_to_string(folder.join("run.log")).expect("run.log");
    (metrics, report, log)
}

#[test]
fn operators_are_fitted_on_disjoint_non_test_items_and_reported() {
    let (metrics, report) = run_ops("disjoint");
    let edge = &metrics["edges"][0];
    let ops = edge["operators"].as_array().expect("operator reports");
    assert_eq!(ops.len(), 2);
    for op in ops {
        let split = &op["split"];
        let (p, c, dropped, test) = (
            split["parent-fit"].as_u64().unwrap_or(0),
            split["child-fit"].as_u64().unwrap_or(0),
            split["dropped-test"].as_u64().unwrap_or(0),
            split["test-items"].as_u64().unwrap_or(0),
        );
        // 160 items, 30 of them test items (dropped on both sides, and so is an item whose image
        // is a test item); the other 130 are split between the sides.
        assert_eq!(test, 30, "{op}");
        // (Short generated scores repeat: a transposed one-note score can be another item.)
        assert!(dropped >= 60, "{op}");
        assert!(p + c <= 130 && p + c + (dropped - 60) >= 130, "{op}");
        assert!(p > 40 && c > 40, "an unbalanced split: {op}");
        // Transposition is a linear action on a piano roll: the fit must explain it well.
        if op["operator"] == "up" {
            let r2 = op["parent"]["r2"].as_f64().unwrap_or(f64::NAN);
            let none = op["parent"]["r2-identity"].as_f64().unwrap_or(f64::NAN);
            assert!(r2 > 0.5 && r2 > none, "transpose on the piano roll: R² {r2} (doing nothing: {none})");
        }
    }
    let points = edge["points"].as_array().expect("points");
    let functional: Vec<&Value> = points.iter().filter(|p| p["method"] == "functional").collect();
    assert_eq!(functional.len(), 4, "2 anchor counts × 2 repeats");
    for p in &functional {
        assert!(p["error"].is_null(), "{p}");
        assert!(p["details"]["lambda"].as_f64().is_some_and(|l| l > 0.0), "the fit reports its λ: {p}");
        let per = p["operators"].as_object().expect("per-operator scores");
        assert_eq!(per.len(), 2);
        let transfer = p["scores"]["transfer-p@1"].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&transfer), "{p}");
    }
    assert!(report.contains("Operator items are **disjoint**"), "{report}");
    assert!(report.contains("| up |") && report.contains("| louder |"), "{report}");
}

#[test]
fn shared_operator_items_are_a_labelled_option() {
    let (metrics, report) = run_ops("shared");
    let edge = &metrics["edges"][0];
    assert_eq!(edge["operator-items"], "shared");
    for op in edge["operators"].as_array().expect("operator reports") {
        let split = &op["split"];
        let count = |k: &str| split[k].as_u64().unwrap_or(0);
        // Every one of the 130 non-test items on both sides, less those whose image is a test item.
        assert_eq!(count("parent-fit") + count("child-fit") + count("dropped-test"), 320, "{op}");
        assert!(count("parent-fit") >= 125 && count("child-fit") >= 125, "{op}");
    }
    assert!(report.contains("**shared** (labelled option)"), "{report}");
}

/// The experiment with an `operators` start at anchors = 0, refinement, and preprocessing fitted
/// on the pool (the start has no pairs to fit it on).
fn operator_start(methods: &str) -> String {
    experiment("disjoint")
        .replace("anchors = [5, 40]", "anchors = [0, 5]")
        .replace(
            "methods = [{ kind = \"least-squares\" }, { kind = \"functional\" }, { kind = \"functional\", shuffle-operators = true }]",
            methods,
        )
        .replace(
            "metrics = [",
            "preprocess = { fit-on = \"pool\" }\nrefine = { iterations = 5 }\n\
             self-learning = { stochastic-interval = 2, max-rounds = 12 }\n\
             starts = [{ kind = \"operators\", restarts = 2 }, { kind = \"similarity-distribution\" }]\nmetrics = [",
        )
}

#[test]
fn the_operators_start_fits_functional_methods_from_the_operators_alone() {
    let methods = "methods = [{ kind = \"ridge\", self-learning = false }, { kind = \"functional\" }, \
                   { kind = \"functional\", shuffle-operators = true, self-learning = false }]";
    let (metrics, report) = run_text(&operator_start(methods));
    let points = metrics["edges"][0]["points"].as_array().expect("points");
    let labels = |anchors: u64| -> std::collections::BTreeSet<&str> {
        points
            .iter()
            .filter(|p| p["anchors"] == anchors)
            .map(|p| p["method"].as_str().unwrap_or(""))
            .collect()
    };
    // The operators start fits only the methods that read operators, and gives their curves the
    // anchors = 0 point; ridge has nothing to fit on there, and takes its 0 point from the second
    // start, which the functional methods have too, labelled.
    let functional = ["functional", "functional (shuffle-operators = true)"];
    let refined: Vec<String> = functional
        .iter()
        .chain(&["ridge"])
        .map(|l| format!("{l} + refine"))
        .chain(["functional + self-learning".to_owned()])
        .collect();
    let second: Vec<String> = functional
        .iter()
        .flat_map(|l| [l.to_string(), format!("{l} + refine")])
        .chain(["functional + self-learning".to_owned()])
        .map(|l| format!("{l} (start 2: similarity-distribution)"))
        .collect();
    let expected: std::collections::BTreeSet<&str> = functional
        .iter()
        .chain(&["ridge"])
        .copied()
        .chain(refined.iter().chain(&second).map(String::as_str))
        .collect();
    assert_eq!(labels(0), expected);
    assert!(labels(5).contains("ridge") && labels(5).contains("ridge + refine"), "{:?}", labels(5));
    for p in points {
        let label = p["method"].as_str().unwrap_or("");
        assert!(p["error"].is_null(), "{label}: {}", p["error"]);
        let p1 = p["scores"]["p@1"].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&p1), "{label}: {p1}");
        if p["anchors"] == 0 && label.starts_with("functional") && !label.contains("start 2") {
            // No pairs: nothing for a permutation null to permute, no seeds kept by refinement.
            assert!(p["null"].is_null(), "{label}: {}", p["null"]);
            if label.ends_with("+ refine") {
                assert_eq!(p["refinement"]["seeds"].as_u64(), Some(0), "{label}");
            }
            // Self-learning from this start runs twice (the start's `restarts`), and keeps the run
            // with the higher last objective.
            if label.ends_with("+ self-learning") {
                let runs = p["refinement"]["restarts"].as_array().expect("the runs' objectives");
                assert_eq!(runs.len(), 2, "{label}");
                let chosen = p["refinement"]["chosen"].as_u64().expect("the kept run") as usize;
                let objective = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
                assert!(runs.iter().all(|o| objective(o) <= objective(&runs[chosen])), "{label}: {runs:?}");
            }
        } else if label.ends_with("+ self-learning") {
            // The edge's self-learning elsewhere: one run, nothing to choose.
            assert!(p["refinement"].get("restarts").is_none(), "{label}");
            // The fit used both operator pairs and nothing else.
            assert_eq!(p["details"]["operators"].as_f64(), Some(2.0), "{label}");
        } else {
            assert!(p["null"]["p@1"].as_f64().is_some(), "{label}: points with pairs keep their null");
        }
    }
    assert!(report.contains("| functional | 0 |"), "{report}");
}

#[test]
fn an_operators_start_without_what_it_needs_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let no_functional = operator_start("methods = [{ kind = \"ridge\" }]");
    let no_pool =
        operator_start("methods = [{ kind = \"functional\" }]").replace("fit-on = \"pool\"", "center = true");
    let no_self_learning = operator_start("methods = [{ kind = \"functional\", self-learning = false }]");
    for (text, expected) in [
        (no_functional, "only functional methods can start from it, and this edge has none"),
        (no_pool, "the `operators` start has no pairs to fit the preprocessing on"),
        (no_self_learning, "the start's `restarts` are runs of self-learning, and this edge has none"),
    ] {
        std::fs::write(dir.path().join("ops.toml"), &text).expect("write experiment");
        let (code, _, err) = run(commute_in(dir.path()).args(["check", "ops.toml"]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(expected), "{err}");
        let (line, column) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("{ kind = \"operators\"").map(|c| (i + 1, c + 1)))
            .expect("the start in the file");
        assert!(err.contains(&format!("ops.toml:{line}:{column}")), "the error points at the start: {err}");
    }
}

/// Nested modalities lift operators: the scores' `up` applied to a score and synthesized again is
/// an exact transposition of the audio (no pitch-shifting algorithm in between). An edge names it
/// on the audio side as `scores.up`. And `identity` pairs an operator with nothing: quieter audio
/// is the same score.
#[test]
fn an_operator_of_the_scores_lifted_through_the_synth_acts_on_the_audio() {
    let text = r#"
[experiment]
name = "ops"
seed = 4
anchors = [10]
repeats = 1
test = 30

[data.scores]
source = { plugin = "music", function = "random-scores", params = { count = 120, seed = 9, max-duration-s = 2.0 } }

[data.scores.operators]
up = { plugin = "music", function = "transpose", params = { semitones = 2, out-of-range = "clamp" } }

[data.audio]
from = "scores"
render = { plugin = "music", function = "synth", params = { sample-rate = 16000 } }

[data.audio.operators]
softer = { plugin = "audio", function = "gain", params = { db = -6.0 } }

[nodes.sound]
data = "audio"
plugin = "audio"
encoder = "chroma"

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[[edges]]
parent = "sound"
child = "notes"
operators = { "scores.up" = "up", softer = "identity" }
methods = [{ kind = "ridge" }, { kind = "functional" }]
metrics = ["p@1", "transfer-p@1", "commutation"]
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ops.toml"), text).expect("write experiment");
    let plugins = ["commute-plugin-music", "commute-plugin-audio"];
    let (code, out, err) = run(crate::util::commute_in(dir.path(), &plugins).arg("check").arg("ops.toml"));
    assert_eq!(code, 0, "a lifted operator checks clean\n{out}{err}");
    let (metrics, _, log) = run_file(dir.path(), &plugins);
    let op = &metrics["edges"][0]["operators"][0];
    assert_eq!(op["operator"], "scores.up ↔ up", "{op}");
    assert!(op["split"]["parent-fit"].as_u64().is_some_and(|n| n > 30), "{op}");
    // Transposing a score shifts its audio's chroma by two pitch classes: a linear action that
    // the fit on the audio side explains far better than doing nothing would.
    let (r2, none) = (
        op["parent"]["r2"].as_f64().unwrap_or(f64::NAN),
        op["parent"]["r2-identity"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        r2 > 0.5 && r2 > none + 0.2,
        "the lifted transposition on the chroma: R² {r2} (doing nothing: {none})"
    );
    assert!(log.contains("operator scores.up ↔ up: defined on 120 of 120 items in sound"), "{log}");
    // `identity`, undeclared, leaves every item as it is: its action is fitted as exactly that.
    let invariance = &metrics["edges"][0]["operators"][1];
    assert_eq!(invariance["operator"], "softer ↔ identity", "{invariance}");
    let r2 = invariance["child"]["r2"].as_f64().unwrap_or(f64::NAN);
    assert!(r2 > 0.999, "the identity on the piano roll: R² {r2}");
}
