//! `commute run --shard I/N` and `commute status`: a real experiment extracted as three shard
//! processes at once into one cache, each chunk computed by exactly one of them, then fitted by a
//! plain run that extracts nothing and agrees with a single process on a fresh cache.

use crate::util::run;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const EXPERIMENT: &str = include_str!("experiments/shards.toml");

/// 300 items are 5 chunks of 64; roll, chroma and loudness, and roll and chroma on the images of
/// `up` and `louder` (the operators' items are the nodes' own): 7 sets.
const CHUNKS: u64 = 7 * 5;

fn commute_in(dir: &Path) -> Command {
    crate::util::commute_in(dir, &["commute-plugin-music"])
}

/// (computed, cached, left to other shards, cache writes) from a shard's summary line.
fn summary(stdout: &str) -> (u64, u64, u64, u64) {
    let line =
        stdout.lines().find(|l| l.starts_with("shard ")).unwrap_or_else(|| panic!("no summary: {stdout}"));
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = line.split([' ', '(', ')', ',']).filter(|w| !w.is_empty()).collect();
        let at = words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("no `{word}` in {line}"));
        words[at - 1].parse().unwrap_or_else(|_| panic!("no number before `{word}` in {line}"))
    };
    (number_before("chunks"), number_before("cached"), number_before("left"), number_before("writes"))
}

fn status(dir: &Path) -> Value {
    let (code, out, err) = run(commute_in(dir).args(["status", "sharded.toml", "--json"]));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn embedding_files(cache: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in std::fs::read_dir(cache.join("embeddings")).expect("embeddings folder") {
        for entry in std::fs::read_dir(prefix.expect("entry").path()).expect("prefix folder") {
            names.push(entry.expect("entry").file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

fn metrics(runs: &Path) -> Value {
    let folder =
        std::fs::read_dir(runs.join("sharded")).expect("runs").next().expect("a run").expect("entry").path();
    serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).expect("metrics.json")).expect("json")
}

/// The metrics without what differs between runs of the same experiment: when, how long, and
/// how the cache served it (`embedded`: chunks read and computed per set).
fn comparable(mut metrics: Value) -> Value {
    if let Some(m) = metrics.as_object_mut() {
        for key in ["started", "seconds", "cache", "embedded"] {
            m.remove(key);
        }
    }
    metrics
}

#[test]
fn three_shards_compute_every_chunk_once_and_the_plain_run_only_fits() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sharded.toml"), EXPERIMENT).expect("write experiment");

    // Before anything: every chunk missing, per set and in total.
    let before = status(dir.path());
    assert_eq!(before["total"]["chunks"], CHUNKS, "{before}");
    assert_eq!(
        (before["total"]["cached-chunks"].as_u64(), before["complete"].as_bool()),
        (Some(0), Some(false))
    );
    let sets: Vec<&str> =
        before["sets"].as_array().expect("sets").iter().map(|s| s["set"].as_str().unwrap()).collect();
    assert_eq!(
        sets,
        ["roll", "chroma", "roll ∘ up", "chroma ∘ up", "roll ∘ louder", "chroma ∘ louder", "loudness"]
    );
    assert!(before["sets"].as_array().unwrap().iter().all(|s| s["items"] == 300 && s["missing-chunks"] == 5));

    // Shard 1 alone first: status then shows exactly its chunks.
    let (code, out, err) = run(commute_in(dir.path()).args(["run", "sharded.toml", "--shard", "1/3"]));
    assert_eq!(code, 0, "{err}");
    let (first, cached, elsewhere, writes) = summary(&out);
    assert!(first > 0 && first < CHUNKS, "{out}");
    assert_eq!((cached, elsewhere, writes), (0, CHUNKS - first, first), "{out}");
    assert!(!dir.path().join("runs").exists(), "a shard writes no run folder");
    let partial = status(dir.path());
    assert_eq!(partial["total"]["cached-chunks"], first, "{partial}");
    let per_set: u64 =
        partial["sets"].as_array().unwrap().iter().map(|s| s["cached-chunks"].as_u64().unwrap()).sum();
    assert_eq!(per_set, first, "no set shares chunks with another here");

    // Shards 2 and 3, and shard 1 again, at the same time on the same cache.
    let children: Vec<_> = ["1/3", "2/3", "3/3"]
        .iter()
        .map(|shard| {
            commute_in(dir.path())
                .args(["run", "sharded.toml", "--shard", shard])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a shard")
        })
        .collect();
    let mut computed = 0;
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("shard runs");
        let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "shard {}: {err}", i + 1);
        let (c, cached, elsewhere, writes) = summary(&out);
        assert_eq!(c, writes, "every chunk computed is written once: {out}");
        if i == 0 {
            assert_eq!((c, cached), (0, first), "shard 1 again finds its chunks cached: {out}");
        } else {
            assert_eq!(cached, 0, "{out}");
            assert!(c > 0, "{out}");
        }
        assert_eq!(c + cached + elsewhere, CHUNKS, "each shard meets every chunk once: {out}");
        computed += c;
    }
    assert_eq!(first + computed, CHUNKS, "together the shards computed every chunk exactly once");
    let files = embedding_files(&dir.path().join("cache"));
    assert_eq!(files.len() as u64, CHUNKS, "one entry per chunk and no temporary files: {files:?}");
    let after = status(dir.path());
    assert_eq!(
        (after["total"]["cached-chunks"].as_u64(), after["complete"].as_bool()),
        (Some(CHUNKS), Some(true))
    );
    let (code, table, err) = run(commute_in(dir.path()).args(["status", "sharded.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(&format!("total: {CHUNKS} of {CHUNKS} chunks cached, 0 missing")), "{table}");

    // The plain run extracts nothing: every node and operator set is a cache hit.
    let (code, _, err) = run(commute_in(dir.path()).args(["-v", "run", "sharded.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("extracting"), "the plain run computed embeddings:\n{err}");
    // Each set at least once (a node is read again for each edge and operator that uses it).
    assert!(err.matches("cache hit: every chunk of this node is cached").count() >= 7, "{err}");
    assert_eq!(embedding_files(&dir.path().join("cache")), files, "no embedding written");
    let sharded = metrics(&dir.path().join("runs"));

    // A single process on a fresh cache agrees with it exactly.
    let single = tempfile::tempdir().expect("temp dir");
    std::fs::write(single.path().join("sharded.toml"), EXPERIMENT).expect("write experiment");
    let (code, _, err) = run(commute_in(single.path()).args(["run", "sharded.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let plain = metrics(&single.path().join("runs"));
    assert_eq!(embedding_files(&single.path().join("cache")).len() as u64, CHUNKS);
    assert_eq!(comparable(sharded), comparable(plain));
}

#[test]
fn a_shard_must_be_i_of_n_counted_from_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sharded.toml"), EXPERIMENT).expect("write experiment");
    for (shard, message) in [
        ("0/3", "shard `0/3`: shards are counted from 1, so I must be between 1 and 3"),
        ("4/3", "shard `4/3`: shards are counted from 1, so I must be between 1 and 3"),
        ("1/0", "shard `1/0`: the number of shards N must be at least 1"),
        ("2", "`2` is not a shard: write I/N"),
    ] {
        let (code, _, err) = run(commute_in(dir.path()).args(["run", "sharded.toml", "--shard", shard]));
        assert_eq!(code, 2, "{shard}: {err}");
        assert!(err.contains(message), "{shard}: {err}");
    }
    assert!(!dir.path().join("cache/embeddings").exists(), "nothing computed");
}

const FAILING: &str = include_str!("experiments/shards-failing.toml");

#[test]
fn a_node_that_fails_in_a_shard_is_named_and_the_others_are_computed() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("failing.toml"), FAILING).expect("write experiment");
    let mut cmd = crate::util::commute_in(dir.path(), &["commute-fixture-echo"]);
    let (code, out, err) = run(cmd.args(["run", "failing.toml", "--shard", "1/1"]));
    // `picky` fails on multiples of 7 (no on-item-error = "skip"): exit 1, `all` still computed.
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("\nfailed: picky: node `picky`") && out.contains("not in vocabulary"), "{out}");
    let (computed, cached, elsewhere, _) = summary(&out);
    assert_eq!((computed, cached, elsewhere), (4, 0, 0), "the 4 chunks of `all` (200 items): {out}");
    let status = {
        let mut cmd = crate::util::commute_in(dir.path(), &["commute-fixture-echo"]);
        let (code, out, err) = run(cmd.args(["status", "failing.toml", "--json"]));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).expect("json")
    };
    let cached: Vec<u64> = status["sets"]
        .as_array()
        .expect("sets")
        .iter()
        .map(|s| s["cached-chunks"].as_u64().unwrap())
        .collect();
    assert_eq!(cached, [4, 0], "all cached, picky missing: {status}");
}
