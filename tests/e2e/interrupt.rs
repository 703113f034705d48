//! Interrupt and resume: runs killed with SIGKILL at random points, each followed by a rerun that
//! must complete with the metrics of an uninterrupted run, on a cache that never holds a corrupt
//! entry; and a corrupted entry that is warned about, recomputed and gives the same result.
//!
//! What is compared: `metrics.json` as a whole (every edge, point, score and null, floats
//! exactly), except `started` (a time stamp), `seconds` (a duration) and `cache` (the hit, miss
//! and write counts, which depend on what earlier runs left in the cache).
//!
//! `COMMUTE_INTERRUPT_SEED` replays a sequence of kill times (the seed is printed on stderr, with
//! each kill time); `COMMUTE_INTERRUPT_KILLS` sets their number (20). See
//! `scripts/interrupt-test.sh`.

use crate::util::{commute, library, run};
use commute_host::cache::Cache;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A real experiment that takes about 3 s in the dev profile on 2 cores: 1,500 generated scores,
/// three fast music encoders, two edges, five methods (two refined), four anchor counts.
pub const EXPERIMENT: &str = r#"
[experiment]
name = "interrupt"
seed = 11
anchors = [5, 20, 80, 300]
repeats = 3
test = 300

[data.scores]
source = { plugin = "music", function = "random-scores", params = { count = 1500, seed = 5, max-duration-s = 4.0 } }

[nodes.roll]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[nodes.chroma]
data = "scores"
plugin = "music"
encoder = "chroma"

[nodes.loud]
data = "scores"
plugin = "music"
encoder = "loudness"

[[edges]]
parent = "roll"
child = "chroma"
methods = [{ kind = "procrustes" }, { kind = "ridge", lambda = 0.1 }]
metrics = ["p@1", "mrr", "cka"]
refine = { iterations = 1 }

[[edges]]
parent = "loud"
child = "roll"
methods = [{ kind = "least-squares" }, { kind = "cca" }]
metrics = ["p@1", "mrr"]
"#;

/// `commute run interrupt.toml` in `dir` with the music plugin, the given cache and runs folder.
pub fn run_command(dir: &Path, cache: &Path, runs: &Path) -> Command {
    let mut cmd = commute();
    cmd.current_dir(dir)
        .env_remove("COMMUTE_HOME")
        .args(["--no-default-plugins", "--threads", "2", "--plugin"])
        .arg(library("commute-plugin-music"))
        .args(["run", "interrupt.toml", "--cache"])
        .arg(cache)
        .arg("--runs")
        .arg(runs);
    cmd
}

/// A folder holding `interrupt.toml`.
pub fn experiment_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("interrupt.toml"), EXPERIMENT).expect("write the experiment");
    dir
}

/// The run folder a completed run printed (`run folder: …`), relative to `dir`.
fn printed_run_folder(dir: &Path, stdout: &str) -> PathBuf {
    let line = stdout.lines().find_map(|l| l.strip_prefix("run folder: ")).expect("a run folder line");
    dir.join(line)
}

fn read_metrics(folder: &Path) -> Value {
    let bytes = std::fs::read(folder.join("metrics.json")).expect("metrics.json");
    serde_json::from_slice(&bytes).expect("metrics.json is JSON")
}

/// `metrics.json` without what may differ between runs of the same experiment (see the module doc).
pub fn comparable(mut metrics: Value) -> Value {
    let object = metrics.as_object_mut().expect("metrics.json is an object");
    for volatile in ["started", "seconds", "cache"] {
        assert!(object.remove(volatile).is_some(), "metrics.json has no `{volatile}`");
    }
    metrics
}

/// The first place where two JSON values differ, for a readable failure.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{at}.{k}")),
                (u, v) => Some(format!("{at}.{k}: {u:?} against {v:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, &format!("{at}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{at}: {a} against {b}")),
    }
}

fn assert_same_metrics(reference: &Value, found: &Value, what: &str) {
    if let Some(diff) = first_difference(reference, found, "metrics") {
        panic!("{what}: metrics differ from the uninterrupted run at {diff}");
    }
}

/// One complete run: (metrics, seconds, stderr).
fn complete_run(dir: &Path, cache: &Path, runs: &Path) -> (Value, f64, String) {
    let started = Instant::now();
    let (code, stdout, stderr) = run(&mut run_command(dir, cache, runs));
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "the run failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (read_metrics(&printed_run_folder(dir, &stdout)), seconds, stderr)
}

/// Every cache entry file (`.emb`, `.json`), sorted.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for kind in ["embeddings", "results"] {
        let Ok(prefixes) = std::fs::read_dir(cache.join(kind)) else { continue };
        for prefix in prefixes {
            let prefix = prefix.expect("entry").path();
            for file in std::fs::read_dir(&prefix).expect("prefix folder") {
                let path = file.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !name.starts_with('.') {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out
}

/// The two tests here take turns: the kill times are drawn from the reference run's duration,
/// which the other test's runs would otherwise stretch.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

#[test]
fn runs_killed_at_random_points_resume_to_the_same_metrics_and_leave_no_corrupt_entry() {
    let seed = env_number("COMMUTE_INTERRUPT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
    });
    let kills = env_number("COMMUTE_INTERRUPT_KILLS").unwrap_or(20) as usize;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    eprintln!("interrupt: seed {seed}, {kills} kills (replay with COMMUTE_INTERRUPT_SEED={seed})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let dir = experiment_dir();
    let runs = dir.path().join("runs");
    let (reference, duration, _) = complete_run(dir.path(), &dir.path().join("reference-cache"), &runs);
    let reference = comparable(reference);
    assert_eq!(reference["edges"].as_array().map(Vec::len), Some(2), "both edges evaluated");
    eprintln!("interrupt: uninterrupted run {duration:.2} s");

    let cache = dir.path().join("cache");
    let mut interrupted = 0;
    for kill in 0..kills {
        // Uniform in (0, duration): never at exactly 0.
        let at = duration * rng.random_range(0.001..1.0);
        let mut child = run_command(dir.path(), &cache, &runs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("commute starts");
        std::thread::sleep(Duration::from_secs_f64(at));
        let hit = match child.try_wait().expect("poll the run") {
            Some(_) => false,
            None => {
                child.kill().expect("SIGKILL");
                true
            }
        };
        let status = child.wait().expect("wait for the run");
        interrupted += usize::from(hit);

        let (metrics, seconds, stderr) = complete_run(dir.path(), &cache, &runs);
        let counts = metrics["cache"].clone();
        eprintln!(
            "interrupt: kill {:2} at {at:.3} s: {}; rerun {seconds:.2} s, cache {counts}",
            kill + 1,
            if hit { "killed mid-run".to_owned() } else { format!("had already finished ({status})") }
        );
        assert_eq!(counts["corrupt"], 0, "a killed run left a corrupt entry:\n{stderr}");
        assert!(!stderr.contains("corrupt cache entry"), "{stderr}");
        assert_same_metrics(&reference, &comparable(metrics), &format!("rerun after kill {}", kill + 1));

        // The rerun completed the cache; forget a random 70% of it, so that the next run has
        // work left where the kill can land, resumed from what the cache still holds.
        for entry in entries(&cache) {
            if rng.random_bool(0.7) {
                std::fs::remove_file(&entry).expect("forget an entry");
            }
        }
    }
    eprintln!("interrupt: {interrupted} of {kills} kills landed before the run finished");
    assert!(interrupted * 4 >= kills, "too few kills landed mid-run to test anything");

    let verification = Cache::new(&cache).verify().expect("the cache can be walked");
    eprintln!(
        "interrupt: cache after all runs: {} intact entries, {} temporary files of killed writes",
        verification.intact,
        verification.temporary.len()
    );
    assert!(verification.corrupt.is_empty(), "corrupt entries: {:?}", verification.corrupt);
    assert!(verification.unexpected.is_empty(), "unexpected files: {:?}", verification.unexpected);
    assert!(verification.intact > 0);

    // A killed run's folder has no metrics.json, and its log never says `done`; a complete
    // run's folder has both.
    let mut incomplete = 0;
    for folder in std::fs::read_dir(runs.join("interrupt")).expect("run folders") {
        let folder = folder.expect("entry").path();
        // (A kill between creating the folder and its log leaves no log.)
        let log = std::fs::read_to_string(folder.join("run.log")).unwrap_or_default();
        if folder.join("metrics.json").is_file() {
            assert!(folder.join("report.md").is_file(), "{}", folder.display());
            assert!(log.trim_end().ends_with(" done"), "{}:\n{log}", folder.display());
        } else {
            incomplete += 1;
            assert!(!log.contains(" done\n"), "{}:\n{log}", folder.display());
        }
    }
    assert!(incomplete <= interrupted, "{incomplete} incomplete run folders, {interrupted} kills");
}

#[test]
fn a_corrupted_entry_is_warned_about_recomputed_and_changes_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = experiment_dir();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    let (reference, _, _) = complete_run(dir.path(), &cache, &runs);
    let reference = comparable(reference);

    let all = entries(&cache);
    let embedding =
        all.iter().find(|p| p.extension().is_some_and(|e| e == "emb")).expect("an embedding").clone();
    let result = all.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("a result").clone();
    for path in [&embedding, &result] {
        let mut bytes = std::fs::read(path).expect("read the entry");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x04;
        std::fs::write(path, bytes).expect("corrupt the entry");
    }
    assert_eq!(Cache::new(&cache).verify().expect("verify").corrupt.len(), 2, "both flips are detectable");

    let (metrics, _, stderr) = complete_run(dir.path(), &cache, &runs);
    for path in [&embedding, &result] {
        let warning = stderr
            .lines()
            .find(|l| l.contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("no warning names {}:\n{stderr}", path.display()));
        assert!(
            warning.contains("WARN")
                && warning.contains("corrupt cache entry (checksum mismatch); recomputing it"),
            "{warning}"
        );
    }
    assert_eq!(metrics["cache"]["corrupt"], 2, "{}", metrics["cache"]);
    assert_same_metrics(&reference, &comparable(metrics), "rerun with two corrupted entries");
    let verification = Cache::new(&cache).verify().expect("verify");
    assert!(verification.corrupt.is_empty(), "recomputed entries are rewritten: {:?}", verification.corrupt);
}
