//! Trees end to end, with real plugins: width, edits and depth in a run's metrics and report, and
//! `commute swap`, which recomputes only what depends on the swapped node.

use crate::util::{read_json as json, run};
use std::path::{Path, PathBuf};
use std::process::Command;

const TREE: &str = include_str!("experiments/tree.toml");

fn commute_in(dir: &Path) -> Command {
    crate::util::commute_in(dir, &["commute-plugin-music", "commute-plugin-audio"])
}

/// The run folders of the tree experiment, oldest first.
fn run_folders(runs: &Path) -> Vec<PathBuf> {
    crate::util::run_folders(runs, "tree")
}

fn mean(v: &serde_json::Value) -> f64 {
    v["mean"].as_f64().unwrap_or_else(|| panic!("no mean in {v}"))
}

/// Runs the tree experiment once in a fresh folder and returns (folder, its run folder).
fn first_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("tree.toml"), TREE).expect("write the experiment");
    let (code, out, err) = run(commute_in(dir.path()).args(["run", "tree.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("width of sound:") && out.contains("edit up in notes → sound"), "{out}");
    let folder = run_folders(&dir.path().join("runs")).pop().expect("a run folder");
    (dir, folder)
}

#[test]
fn a_tree_reports_width_edits_and_depth() {
    let (_dir, folder) = first_run();
    let metrics = json(&folder.join("metrics.json"));
    let tree = &metrics["tree"];
    assert_eq!(tree["anchors"], 80, "[tree] anchors default to the largest anchor count");
    assert!(tree["failed"].is_null(), "{}", tree["failed"]);

    // Width: `sound` has two children in the tree (the shortcut does not count).
    let width = tree["width"].as_array().unwrap();
    assert_eq!(width.len(), 1);
    let w = &width[0];
    assert_eq!(w["parent"], "sound");
    let children: Vec<&str> =
        w["children"].as_array().unwrap().iter().map(|c| c["child"].as_str().unwrap()).collect();
    assert_eq!(children, ["notes", "loud"]);
    assert_eq!(w["parent-dim"], 32);
    assert!((mean(&w["residual"]) - (1.0 - mean(&w["joint"]))).abs() < 1e-9);
    for c in w["children"].as_array().unwrap() {
        assert!(mean(&c["explained"]) <= 1.0 && mean(&c["readable"]) <= 1.0);
        let dims = mean(&c["subspace-dim"]);
        assert!((1.0..=32.0).contains(&dims), "a subspace of the 32-d parent: {dims}");
    }
    let overlap = &w["overlaps"][0];
    assert!((0.0..=90.0).contains(&mean(&overlap["min-angle-deg"])));

    // Edits, against the truth of the real plugins: transposing leaves the loudness encoder's
    // view of a score exactly as it was, and making it louder changes it.
    let edits = tree["edits"].as_array().unwrap();
    assert_eq!(edits.len(), 2);
    let (up, louder) = (&edits[0], &edits[1]);
    assert_eq!((up["child"].as_str(), up["parent"].as_str()), (Some("notes"), Some("sound")));
    assert_eq!(up["items"], 160);
    let moves = |e: &serde_json::Value, child: &str| {
        e["moves"].as_array().unwrap().iter().find(|m| m["child"] == child).unwrap().clone()
    };
    assert_eq!(mean(&moves(up, "loud")["truth"]), 0.0, "transposing does not change loudness");
    assert!(mean(&moves(louder, "loud")["truth"]) > 0.0, "louder does");
    assert_eq!(moves(up, "notes")["edited"], true);
    assert!(mean(&up["success"]).is_finite() && mean(&up["landed"]).is_finite());

    // Depth: sound → notes → colour, with the shortcut sound → colour.
    let depth = tree["depth"].as_array().unwrap();
    assert_eq!(depth.len(), 1);
    let d = &depth[0];
    assert_eq!(d["path"], serde_json::json!(["sound", "notes", "colour"]));
    assert_eq!(d["steps"].as_array().unwrap().len(), 2);
    assert!(d["direct"]["r2"]["mean"].is_number() && d["cycle"]["p-at-1"]["mean"].is_number());
    // The shortcut is also an edge of its own, evaluated like the others.
    assert!(metrics["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["parent"] == "sound" && e["child"] == "colour"));

    let report = std::fs::read_to_string(folder.join("report.md")).unwrap();
    for heading in [
        "## The tree",
        "### Width: what `sound`'s children explain",
        "### Edit: `up` in `notes`",
        "### Depth",
    ] {
        assert!(report.contains(heading), "{heading} missing from the report");
    }
    for plot in ["tree-width-sound.svg", "tree-edit-notes-up.svg", "tree-edit-loud-louder.svg"] {
        let svg = std::fs::read_to_string(folder.join("plots").join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{plot}");
    }
}

#[test]
fn a_swap_recomputes_only_what_touches_the_swapped_node() {
    let (dir, old) = first_run();
    let old_metrics = json(&old.join("metrics.json"));
    let (code, out, err) = run(commute_in(dir.path()).args([
        "swap",
        old.to_str().unwrap(),
        "--node",
        "loud",
        "--encoder",
        "chroma",
        // Not `colour`'s parameters: with the very same encoder, `loud` would be `colour` and
        // everything would be read back from the cache.
        "--param",
        "velocity-weighted=false",
    ]));
    assert_eq!(code, 0, "{err}");
    let folders = run_folders(&dir.path().join("runs"));
    assert_eq!(folders.len(), 2, "a new run folder beside the old one");
    let new = folders.iter().find(|f| **f != old).unwrap();
    let swapped = std::fs::read_to_string(new.join("experiment.toml")).unwrap();
    assert!(swapped.contains("chroma") && swapped.contains("velocity-weighted = false"), "{swapped}");
    let metrics = json(&new.join("metrics.json"));

    // From the cache statistics: the edges without `loud` were read back, point for point; the
    // edge to `loud` was fitted again.
    let work = |edge: &str| {
        metrics["cache"]["edges"].as_array().unwrap().iter().find(|e| e["edge"] == edge).unwrap().clone()
    };
    for untouched in ["sound → notes", "notes → colour", "sound → colour"] {
        assert_eq!(work(untouched)["points-computed"], 0, "{untouched}");
        assert_eq!(work(untouched)["points-cached"], 2 * 2, "{untouched}: anchors × repeats");
    }
    assert_eq!(work("sound → loud")["points-computed"], 4);
    assert_eq!(work("sound → loud")["points-cached"], 0);
    // Embeddings: only the swapped node's were computed.
    let embedded = &metrics["cache"]["embedded"];
    for node in ["sound", "notes", "colour"] {
        assert_eq!(embedded[node]["computed"], 0, "{node}: {embedded}");
    }
    assert!(embedded["loud"]["computed"].as_u64().unwrap() > 0, "{embedded}");
    // Untouched edges agree exactly with the old run.
    for (a, b) in old_metrics["edges"].as_array().unwrap().iter().zip(metrics["edges"].as_array().unwrap()) {
        if a["child"] != "loud" {
            assert_eq!(a, b);
        }
    }

    let swap = json(&new.join("swap.json"));
    assert_eq!(swap["nodes"][0]["node"], "loud");
    assert_eq!(swap["nodes"][0]["after"]["encoder"], "chroma");
    let affected: Vec<&str> =
        swap["affected"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(affected, ["sound → loud"]);
    let change = &swap["affected"][0]["changes"][0];
    let (before, after) = (change["before"].as_f64().unwrap(), change["after"].as_f64().unwrap());
    assert!((change["penalty"].as_f64().unwrap() - (before - after)).abs() < 1e-12);
    assert_eq!(swap["untouched"].as_array().unwrap().len(), 3);
    assert!(out.contains("| sound → loud | ridge | 80 | p@1 |"), "{out}");
    assert!(new.join("swap.md").is_file());

    // The same swap written as TOML, on a node of a path: the path is compared too.
    std::fs::write(
        dir.path().join("swap.toml"),
        "[nodes.notes]\ndata = \"scores\"\nplugin = \"music\"\nencoder = \"loudness\"\n",
    )
    .unwrap();
    let (code, out, err) =
        run(commute_in(dir.path()).args(["swap", old.to_str().unwrap(), "--with", "swap.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sound → notes → colour"), "the path through `notes`: {out}");

    // Mistakes are named.
    let (code, _, err) = run(commute_in(dir.path()).args([
        "swap",
        old.to_str().unwrap(),
        "--node",
        "lound",
        "--encoder",
        "chroma",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("the run has no node `lound`"), "{err}");
    let (code, _, err) = run(commute_in(dir.path()).args([
        "swap",
        old.to_str().unwrap(),
        "--node",
        "loud",
        "--encoder",
        "no-such",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("no-such"), "the check names the unknown encoder: {err}");
}

#[test]
fn shards_and_status_cover_the_edits_truths() {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("tree.toml"), TREE).expect("write the experiment");
    let status = || {
        let (code, out, err) = run(commute_in(dir.path()).args(["status", "tree.toml", "--json"]));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let before = status();
    assert_eq!(before["complete"], false);
    let sets: Vec<&str> =
        before["sets"].as_array().unwrap().iter().map(|s| s["set"].as_str().unwrap()).collect();
    for set in ["sound ∘ scores.up", "sound ∘ scores.louder", "notes ∘ up", "loud ∘ up", "loud ∘ louder"]
    {
        assert!(sets.contains(&set), "{set} not in {sets:?}");
    }
    for shard in ["1/2", "2/2"] {
        let (code, _, err) = run(commute_in(dir.path()).args(["run", "tree.toml", "--shard", shard]));
        assert_eq!(code, 0, "shard {shard}: {err}");
    }
    assert_eq!(status()["complete"], true);
    // The plain run embeds nothing, the edits' truths included.
    let (code, _, err) = run(commute_in(dir.path()).args(["-v", "run", "tree.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("extracting"), "the plain run computed embeddings:\n{err}");
    let metrics =
        json(&run_folders(&dir.path().join("runs")).pop().expect("a run folder").join("metrics.json"));
    let embedded = metrics["cache"]["embedded"].as_object().unwrap();
    assert!(embedded.contains_key("sound ∘ scores.up"), "{embedded:?}");
    assert!(embedded.values().all(|e| e["computed"] == 0), "{embedded:?}");
}

/// Scores read from a folder beside the experiment file (`files = "scores"`).
const FROM_FILES: &str = include_str!("experiments/from-files.toml");

#[test]
fn a_swap_resolves_a_folder_data_set_against_the_experiments_folder_not_the_run_folder() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let exp = dir.path().join("exp");
    std::fs::create_dir_all(exp.join("scores")).expect("folders");
    let (code, _, err) = run(commute_in(dir.path())
        .args(["call", "music", "random-scores", "--params", "count = 30", "--output"])
        .arg(exp.join("scores/s.mid")));
    assert_eq!(code, 0, "{err}");
    std::fs::write(exp.join("from-files.toml"), FROM_FILES).expect("write the experiment");
    // Run from the parent folder: `scores` resolves against exp/, the experiment's folder.
    let (code, _, err) = run(commute_in(dir.path()).args(["run", "exp/from-files.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let old = crate::util::run_folders(&dir.path().join("runs"), "from-files").pop().expect("a run folder");
    let source = json(&old.join("source.json"));
    assert_eq!(
        source["base"].as_str().map(PathBuf::from),
        Some(std::fs::canonicalize(&exp).expect("exp")),
        "{source}"
    );

    let (code, _, err) = run(commute_in(dir.path()).args([
        "swap",
        old.to_str().expect("UTF-8 path"),
        "--node",
        "loud",
        "--encoder",
        "chroma",
    ]));
    assert_eq!(code, 0, "the swap reads exp/scores, not the run folder's: {err}");
    let new =
        crate::util::run_folders(&dir.path().join("runs"), "from-files").pop().expect("a new run folder");
    assert_ne!(new, old);
    assert_eq!(json(&new.join("source.json"))["base"], source["base"], "a swap of the swap resolves alike");
}
