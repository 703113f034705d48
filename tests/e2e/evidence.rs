//! The evidence pieces of a run, end to end on real music and audio plugins: zero-anchor starts,
//! converged refinement and robust self-learning with their round reports, the whole-vocabulary
//! gallery, and take-off in metrics.json and the report.

use crate::util::run;
use std::path::Path;

const EXPERIMENT: &str = include_str!("experiments/evidence.toml");

fn commute_in(dir: &Path) -> std::process::Command {
    crate::util::commute_in(dir, &["commute-plugin-music", "commute-plugin-audio"])
}

#[test]
fn starts_refinement_vocabulary_gallery_and_take_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evidence.toml"), EXPERIMENT).unwrap();
    let (code, out, err) = run(commute_in(dir.path()).args(["run", "evidence.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("take-off (p@1 > 0.5)"), "the terminal summary has the headline: {out}");
    let folder = std::fs::read_dir(dir.path().join("runs/evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a run folder");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).unwrap()).unwrap();
    let edge = &metrics["edges"][0];
    let points = edge["points"].as_array().unwrap();

    // Every method, alone, refined and self-learned, has an anchors = 0 point from each start
    // (the second start's labelled), beside its anchored points.
    let labels = |anchors: u64| -> std::collections::BTreeSet<String> {
        points
            .iter()
            .filter(|p| p["anchors"].as_u64() == Some(anchors))
            .map(|p| p["method"].as_str().unwrap().to_owned())
            .collect()
    };
    let base =
        ["procrustes", "procrustes + refine", "procrustes + self-learning", "vecmap", "vecmap + refine"];
    for label in base.iter().chain(&["vecmap + self-learning"]) {
        assert!(labels(5).contains(*label), "{label}: {:?}", labels(5));
        assert!(labels(0).contains(*label), "{label}: {:?}", labels(0));
        assert!(labels(0).contains(&format!("{label} (start 2: clusters)")), "{:?}", labels(0));
    }
    // `self-learning = false` in ridge's table leaves it out of that variant only.
    for label in ["ridge", "ridge + refine"] {
        assert!(labels(5).contains(label) && labels(0).contains(label), "{label}: {:?}", labels(5));
    }
    assert!(!labels(5).contains("ridge + self-learning") && !labels(0).contains("ridge + self-learning"));
    assert_eq!(points.len(), 8 * 3 * 2 + 8 * 2 * 2, "8 variants × (3 anchor counts + 2 starts) × 2 repeats");

    for p in points {
        let label = p["method"].as_str().unwrap();
        assert!(p["error"].is_null(), "{label}: {}", p["error"]);
        let (p1, vocab) = (p["scores"]["p@1"].as_f64().unwrap(), p["scores"]["vocab-p@1"].as_f64().unwrap());
        // The whole vocabulary contains the test items: nearest-neighbour retrieval among more
        // items can only lose.
        assert!(vocab <= p1 + 1e-12, "{label}: vocabulary {vocab} > test gallery {p1}");
        let refinement = &p["refinement"];
        if label.contains("+ refine") {
            assert_eq!(refinement["kind"], "refine", "{label}");
            let rounds = refinement["rounds"].as_array().unwrap();
            assert!(!rounds.is_empty() && rounds.len() <= 11, "{label}: {} rounds", rounds.len());
            assert!(rounds.iter().all(|r| r["criterion"].as_f64().is_some_and(f64::is_finite)));
            let chosen = refinement["chosen"].as_u64().unwrap() as usize;
            let best = rounds.iter().map(|r| r["criterion"].as_f64().unwrap()).fold(f64::MIN, f64::max);
            assert_eq!(rounds[chosen]["criterion"].as_f64(), Some(best), "{label}: the best criterion wins");
        } else if label.contains("+ self-learning") {
            assert_eq!(refinement["kind"], "self-learning", "{label}");
            let rounds = refinement["rounds"].as_array().unwrap();
            assert!(!rounds.is_empty() && rounds.len() <= 40, "{label}");
            let keep: Vec<f64> = rounds.iter().map(|r| r["keep_prob"].as_f64().unwrap()).collect();
            assert!(keep.windows(2).all(|w| w[0] <= w[1]), "{label}: keep probability {keep:?}");
        } else {
            assert!(refinement.is_null(), "{label}");
        }
        // Zero-anchor starts seed the fit with pseudo-pairs, never with anchors.
        if p["anchors"].as_u64() == Some(0) && label.contains("+ refine") {
            assert_eq!(refinement["seeds"].as_u64(), Some(0), "{label}: pseudo-pairs are not kept as seeds");
        }
    }

    // Take-off per method, for both galleries.
    let take_off = edge["take-off"].as_array().expect("take-off in metrics.json");
    for metric in ["p@1", "vocab-p@1"] {
        let of: Vec<&serde_json::Value> = take_off.iter().filter(|t| t["metric"] == metric).collect();
        assert_eq!(of.len(), 8 + 8, "{metric}: every method label, the second start's included");
        for t in of {
            assert_eq!(t["repeats"].as_u64(), Some(2));
            assert!(t["reached"].as_u64().unwrap() <= 2);
        }
    }
    let report = std::fs::read_to_string(folder.join("report.md")).unwrap();
    for needle in ["**Take-off**", "Refinement: rounds used", "| procrustes + self-learning | 0 |"] {
        assert!(report.contains(needle), "report lacks {needle}:\n{report}");
    }
}

#[test]
fn anchors_zero_needs_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let no_starts = EXPERIMENT.replace(
        "starts = [{ kind = \"similarity-distribution\" }, { kind = \"clusters\", clusters = 4 }]\n",
        "",
    );
    std::fs::write(dir.path().join("e.toml"), no_starts).unwrap();
    let (code, _, err) = run(commute_in(dir.path()).args(["check", "e.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("anchors = 0 needs zero-anchor `starts`, which edge 1 has not"), "{err}");
    assert!(err.contains("e.toml:4:12"), "the error points at the 0: {err}");
}
