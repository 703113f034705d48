//! `commute csls` through the real binary: a job split into shards — pass 1 per shard, merge 1,
//! pass 2 per shard, merge 2, each a separate process sharing only the state folder — gives the
//! P@1, P@5, P@10 and radii of the whole job in one process; merges refuse missing shards and
//! out-of-order phases; bad shards are usage errors.

use crate::util::{commute, run};
use serde_json::Value;
use std::path::Path;

const QUERIES: &str = "1500";
const GALLERY: &str = "1800"; // 300 distractors

fn csls(args: &[&str]) -> (i32, String, String) {
    let base = ["--threads", "2", "csls", "--synthetic", QUERIES, "--gallery", GALLERY, "--json"];
    run(commute().args(base).args(args))
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn phase(state: &Path, phase: &str, shard: &str) -> Value {
    let state = state.to_str().expect("utf-8 temp path");
    let (code, out, err) = csls(&["--phase", phase, "--shard", shard, "--state", state]);
    assert_eq!(code, 0, "phase {phase} shard {shard}:\n{err}");
    json(&out)
}

fn merge(state: &Path, phase: &str, extra: &[&str]) -> (i32, String, String) {
    let state = state.to_str().expect("utf-8 temp path");
    csls(&[&["--phase", phase, "--merge", "--state", state], extra].concat())
}

#[test]
fn a_sharded_job_gives_the_whole_jobs_numbers_and_merges_refuse_what_is_missing() {
    let (code, out, err) = csls(&[]);
    assert_eq!(code, 0, "{err}");
    let whole = json(&out);
    assert_eq!(whole["step"], "whole");
    assert_eq!(whole["hits"]["queries"], 1500);
    // Hit counts are expected counts (ties broken at random in expectation): whole numbers
    // here, where no two scores tie.
    let at_1 = whole["hits"]["at_1"].as_f64().expect("at_1");
    assert!(at_1 > 1000.0 && at_1 < 1500.0, "σ = 3 makes some misses, most hits: {at_1}");
    assert_eq!(at_1.fract(), 0.0, "no ties among Gaussian scores: {at_1}");

    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");

    // Pass 2 needs merge 1's radii.
    let (code, _, err) = csls(&["--phase", "2", "--shard", "1/3", "--state", state.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");

    // Merge 1 with shard 2 missing: refused, naming it; allowed only as an incomplete merge.
    phase(&state, "1", "1/3");
    phase(&state, "1", "3/3");
    let (code, _, err) = merge(&state, "1", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing") && err.contains("2 of 3"), "{err}");
    let (code, out, err) = merge(&state, "1", &["--allow-incomplete"]);
    assert_eq!(code, 0, "{err}");
    let partial = json(&out);
    assert_eq!(partial["complete"], false);
    let known = partial["mean_r_query"].as_f64();
    assert!(known.is_some_and(|r| r > 0.0 && r < 1.0), "over the merged shards' queries: {known:?}");

    // The complete job.
    let second = phase(&state, "1", "2/3");
    assert_eq!(second["shard_queries"], serde_json::json!([500, 1000]));
    let (code, out, err) = merge(&state, "1", &[]);
    assert_eq!(code, 0, "{err}");
    let radii = json(&out);
    assert_eq!(radii["complete"], true);
    for shard in ["3/3", "1/3", "2/3"] {
        phase(&state, "2", shard);
    }
    let (code, out, err) = merge(&state, "2", &[]);
    assert_eq!(code, 0, "{err}");
    let merged = json(&out);
    assert_eq!(merged["complete"], true);
    for key in ["queries", "at_1", "at_5", "at_10"] {
        assert!(whole["hits"][key].is_number(), "{key}");
        assert_eq!(merged["hits"][key], whole["hits"][key], "{key}");
    }
    let rr = |v: &Value| v["hits"]["reciprocal_rank_sum"].as_f64().expect("reciprocal_rank_sum");
    assert!((rr(&merged) - rr(&whole)).abs() < 1e-9 * rr(&whole), "MRR: summed in another order only");
    // Radii are means of the same top-k lists, summed in sorted order: identical to the bit.
    for key in ["mean_r_query", "mean_r_gallery"] {
        assert!(whole[key].as_f64().is_some_and(|r| r > 0.0 && r < 1.0), "{key}: {}", whole[key]);
        assert_eq!(merged[key], whole[key], "{key}");
        assert_eq!(radii[key], whole[key], "{key}");
    }
}

#[test]
fn a_shard_outside_its_split_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().to_str().expect("utf-8 temp path");
    for (shard, says) in
        [("4/3", "I must be between 1 and 3"), ("1/0", "N must be at least 1"), ("two/3", "write I/N")]
    {
        let (code, _, err) = csls(&["--phase", "1", "--shard", shard, "--state", state]);
        assert_eq!(code, 2, "{shard}: {err}");
        assert!(err.contains(says), "{shard}: {err}");
    }
    let (code, _, err) = csls(&["--phase", "1", "--state", state]);
    assert_eq!(code, 2, "a pass without --shard: {err}");
    assert!(err.contains("--shard"), "{err}");
}
