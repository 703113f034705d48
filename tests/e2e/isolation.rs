//! Isolated mode: plugin functions in `commute worker` child processes. A segfault, an abort,
//! running out of memory, an exit or a hang fails the node that uses the function — with an
//! error naming plugin, function and cause — while the host survives and evaluates the other
//! edges; results are bit for bit those of in-process calls.

use crate::util::{library, read_json, run, run_folders};
use commute_host::discover::SearchPath;
use commute_host::worker::{WorkerError, WorkerInstance, WorkerOptions};
use commute_host::Registry;
use commute_sdk::{Context, Tensor, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn options(timeout: Duration) -> WorkerOptions {
    WorkerOptions { timeout, memory_mib: None, program: Some(PathBuf::from(env!("CARGO_BIN_EXE_commute"))) }
}

fn open(
    library: &Path,
    plugin: &str,
    function: &str,
    params: &str,
    o: &WorkerOptions,
) -> Result<WorkerInstance, WorkerError> {
    WorkerInstance::open(library, plugin, function, params, &Context::default(), None, o)
}

fn numbers(n: usize) -> Vec<Value> {
    (0..n).map(|i| Value::Tensor(Tensor::vector(vec![i as f32]))).collect()
}

/// An experiment with two well-behaved nodes `a`, `b` and node `bad`, isolated, whose encoder is
/// `bad_encoder`; edges a → b and a → bad.
fn crash_experiment(bad_encoder: &str, bad_node_extra: &str) -> String {
    format!(
        r#"
[experiment]
name = "crash"
seed = 1
anchors = [5, 10]
repeats = 2
test = 10

[data.numbers]
source = {{ plugin = "crashy", function = "numbers", params = {{ count = 40 }} }}

[nodes.a]
data = "numbers"
plugin = "crashy"
encoder = "fine"

[nodes.b]
data = "numbers"
plugin = "crashy"
encoder = "fine"
params = {{ scale = 3.0 }}

[nodes.bad]
data = "numbers"
plugin = "crashy"
encoder = "{bad_encoder}"
isolate = true
{bad_node_extra}

[[edges]]
parent = "a"
child = "bad"
methods = [{{ kind = "ridge" }}]

[[edges]]
parent = "a"
child = "b"
methods = [{{ kind = "ridge" }}, {{ kind = "procrustes" }}]
"#
    )
}

fn commute_in(dir: &Path) -> Command {
    crate::util::commute_in(dir, &["commute-fixture-crashy", "commute-plugin-music"])
}

/// The newest run folder under `runs/<name>/`.
fn run_folder(runs: &Path, name: &str) -> PathBuf {
    run_folders(runs, name).pop().expect("a run folder")
}

/// Runs the crash experiment; checks that the run went on past the bad edge and returns its
/// stderr and the failed edge's recorded error.
fn run_crash(bad_encoder: &str, extra: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("crash.toml"), crash_experiment(bad_encoder, extra)).expect("write");
    let (code, out, err) = run(commute_in(dir.path()).args(["run", "crash.toml", "--runs", "runs"]));
    assert_eq!(
        code, 1,
        "a failed edge is a failed check (exit 1), not an error\nstdout: {out}\nstderr: {err}"
    );
    assert!(err.contains("edge a → bad failed"), "{err}");
    assert!(err.contains("1 of 2 edges failed"), "{err}");
    assert!(out.contains("a → bad: FAILED"), "{out}");
    assert!(out.contains("a → b (p@1"), "the other edge is evaluated and summarised: {out}");
    let folder = run_folder(&dir.path().join("runs"), "crash");
    let metrics = read_json(&folder.join("metrics.json"));
    let edges = metrics["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{metrics}");
    assert_eq!((edges[0]["parent"].as_str(), edges[0]["child"].as_str()), (Some("a"), Some("b")));
    assert_eq!(edges[0]["items"].as_u64(), Some(40));
    assert!(!edges[0]["summary"].as_array().expect("summary").is_empty());
    let failed = metrics["failed-edges"].as_array().expect("failed-edges");
    assert_eq!(failed.len(), 1, "{metrics}");
    assert_eq!((failed[0]["parent"].as_str(), failed[0]["child"].as_str()), (Some("a"), Some("bad")));
    assert_eq!(metrics["isolated-nodes"], serde_json::json!(["bad"]));
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(report.contains("## a → bad — failed"), "{report}");
    assert!(
        report.contains("Isolated nodes (each plugin function in its own worker process): `bad`."),
        "{report}"
    );
    let log = std::fs::read_to_string(folder.join("run.log")).expect("run.log");
    assert!(log.contains("node bad: isolated"), "{log}");
    (err, failed[0]["error"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn a_segfault_fails_its_edge_naming_plugin_function_and_signal_and_the_run_goes_on() {
    let (err, recorded) = run_crash("segfault", "");
    let expected = "plugin `crashy` function `segfault` crashed in its isolated worker during a call on";
    assert!(err.contains(expected), "{err}");
    assert!(err.contains("killed by signal 11 (SIGSEGV"), "{err}");
    assert!(recorded.contains(expected) && recorded.contains("SIGSEGV"), "{recorded}");
}

#[test]
fn an_abort_fails_its_edge_and_says_it_may_be_out_of_memory() {
    let (err, _) = run_crash("abort", "");
    assert!(err.contains("plugin `crashy` function `abort` crashed in its isolated worker"), "{err}");
    assert!(
        err.contains("killed by signal 6 (SIGABRT: the plugin aborted, possibly out of memory)"),
        "{err}"
    );
    // The worker's stderr passes through, and its last words are quoted.
    assert!(err.contains("its last words on stderr: crashy: about to abort"), "{err}");
}

#[test]
fn running_out_of_a_worker_memory_cap_is_an_abort_that_names_the_allocation() {
    let (err, _) = run_crash("hog", "worker-memory = \"512MiB\"");
    assert!(err.contains("plugin `crashy` function `hog` crashed in its isolated worker"), "{err}");
    assert!(err.contains("SIGABRT"), "{err}");
    assert!(err.contains("memory allocation of"), "Rust's own out-of-memory message is quoted: {err}");
}

#[test]
fn a_worker_that_exits_is_reported_with_its_status() {
    let (err, _) = run_crash("exit", "");
    assert!(
        err.contains("plugin `crashy` function `exit` crashed in its isolated worker during a call on")
            && err.contains("the worker exited with status 3"),
        "{err}"
    );
}

#[test]
fn a_hang_is_killed_after_the_call_timeout() {
    let started = Instant::now();
    let (err, recorded) = run_crash("hang", "call-timeout = \"1s\"");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    let expected = "plugin `crashy` function `hang` did not answer within 1 s during a call on";
    assert!(err.contains(expected) && err.contains("the worker was killed"), "{err}");
    assert!(recorded.contains(expected), "{recorded}");
}

#[test]
fn a_crash_in_a_render_or_while_opening_names_that_function() {
    // An operator used as a render in the isolated node's chain.
    let dir = tempfile::tempdir().unwrap();
    let toml = crash_experiment("fine", "").replace(
        "[nodes.bad]\ndata = \"numbers\"",
        "[data.mangled]\nfrom = \"numbers\"\nrender = { plugin = \"crashy\", function = \"mangle\", params = { how = \"segfault\" } }\n\n[nodes.bad]\ndata = \"mangled\"",
    );
    std::fs::write(dir.path().join("crash.toml"), toml).unwrap();
    let (code, _, err) = run(commute_in(dir.path()).args(["run", "crash.toml", "--runs", "runs"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("plugin `crashy` function `mangle` crashed in its isolated worker"), "{err}");

    let (err, _) = run_crash("segfault", "params = { in-open = true }");
    assert!(err.contains("function `segfault` crashed in its isolated worker while opening it"), "{err}");
}

#[test]
fn without_isolation_a_plugin_error_still_fails_only_its_edges() {
    // `hog` stops itself with an error at its limit: an ordinary plugin error, in-process.
    let (err, recorded) = {
        let dir = tempfile::tempdir().unwrap();
        let toml = crash_experiment("hog", "params = { limit-mib = 64 }").replace("isolate = true\n", "");
        std::fs::write(dir.path().join("crash.toml"), toml).unwrap();
        let (code, out, err) = run(commute_in(dir.path()).args(["run", "crash.toml", "--runs", "runs"]));
        assert_eq!(code, 1, "{out}{err}");
        let metrics = read_json(&run_folder(&dir.path().join("runs"), "crash").join("metrics.json"));
        assert_eq!(metrics["edges"].as_array().map(Vec::len), Some(1));
        (err, metrics["failed-edges"][0]["error"].as_str().unwrap_or_default().to_owned())
    };
    assert!(err.contains("allocated 64 MiB and nothing stopped it"), "{err}");
    assert!(recorded.contains("`crashy/hog` failed"), "{recorded}");
}

/// Music: random scores → piano roll and chroma, and the same scores rendered by the synth →
/// loudness: in-process and isolated runs give identical metrics.
const MUSIC: &str = include_str!("experiments/isolation-music.toml");

#[test]
fn isolated_and_in_process_runs_give_identical_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("same.toml"), MUSIC).unwrap();
    let mut metrics = Vec::new();
    for (cache, flags) in [("cache-in", vec![]), ("cache-iso", vec!["--isolate-all"])] {
        let runs = format!("runs-{cache}");
        let mut cmd = commute_in(dir.path());
        cmd.env("COMMUTE_HOME", dir.path().join(cache))
            .args(["run", "same.toml", "--runs", &runs])
            .args(&flags);
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "{flags:?}: {out}{err}");
        let m = read_json(&run_folder(&dir.path().join(&runs), "same").join("metrics.json"));
        assert_eq!(m["cache"]["hits"].as_u64(), Some(0), "each run computes its embeddings: {m}");
        metrics.push(m);
    }
    assert_eq!(metrics[0]["isolated-nodes"], serde_json::json!([]));
    assert_eq!(metrics[1]["isolated-nodes"], serde_json::json!(["roll", "chroma"]));
    assert!(!metrics[0]["edges"][0]["points"].as_array().expect("points").is_empty());
    assert_eq!(metrics[0]["edges"], metrics[1]["edges"], "isolated results differ from in-process ones");
}

fn registry() -> Registry {
    let files = vec![library("commute-plugin-music"), library("commute-fixture-crashy")];
    let registry = Registry::load(&SearchPath::from_sources(files, vec![], None, None));
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());
    registry
}

#[test]
fn a_worker_returns_bit_identical_values_to_an_in_process_instance() {
    let registry = registry();
    let music = registry.get("music").unwrap();
    let ctx = Context::default();
    let o = options(Duration::from_secs(120));
    let scores = music.plugin.open("random-scores", "count = 12\nseed = 9", &ctx).unwrap().call(&[]).unwrap();
    let scores: Vec<Value> = scores.into_iter().map(Result::unwrap).collect();
    for (function, params, input) in [
        ("random-scores", "count = 12\nseed = 9", Vec::new()),
        ("piano-roll", "", scores.clone()),
        ("synth", "sample-rate = 8000", scores.clone()),
    ] {
        let mut local = music.plugin.open(function, params, &ctx).unwrap();
        let mut isolated =
            WorkerInstance::open(&music.path, "music", function, params, &ctx, None, &o).unwrap();
        assert_eq!(isolated.spec(), local.spec());
        assert_eq!(isolated.dim(), local.dim());
        let (a, b) = (local.call(&input).unwrap(), isolated.call(&input).unwrap());
        assert_eq!(a.len(), b.len());
        assert!(!a.is_empty());
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            // Bits, not just values: compare every float's representation.
            let bits = |v: &Value| -> Vec<u32> {
                match v {
                    Value::Tensor(t) => t.data.iter().map(|f| f.to_bits()).collect(),
                    Value::Audio(a) => a.samples.iter().map(|f| f.to_bits()).collect(),
                    other => serde_json::to_string(other).unwrap().bytes().map(u32::from).collect(),
                }
            };
            assert_eq!(bits(x), bits(y), "{function}");
            assert_eq!(x, y, "{function}");
        }
    }
}

#[test]
fn the_host_survives_every_crash_and_a_dead_worker_refuses_further_calls() {
    let registry = registry();
    let crashy = registry.get("crashy").unwrap();
    let o = options(Duration::from_secs(60));
    for (function, cause) in [("segfault", "SIGSEGV"), ("abort", "SIGABRT"), ("exit", "status 3")] {
        let mut worker = open(&crashy.path, "crashy", function, "", &o).unwrap();
        let err = worker.call(&numbers(3)).unwrap_err();
        assert!(matches!(err, WorkerError::Crashed { .. }), "{err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("plugin `crashy` function `{function}` crashed in its isolated worker during a call on 3 items: ")), "{text}");
        assert!(text.contains(cause), "{text}");
        let again = worker.call(&numbers(1)).unwrap_err();
        assert!(matches!(again, WorkerError::Gone { .. }), "{again}");
        assert!(again.to_string().contains(cause), "{again}");
    }
    // Still here: a new worker of the same plugin works.
    let mut fine = open(&crashy.path, "crashy", "fine", "", &o).unwrap();
    assert_eq!(fine.call(&numbers(5)).unwrap().len(), 5);

    let short = options(Duration::from_millis(500));
    let mut hang = open(&crashy.path, "crashy", "hang", "", &short).unwrap();
    let started = Instant::now();
    let err = hang.call(&numbers(1)).unwrap_err();
    assert!(matches!(err, WorkerError::TimedOut { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(err.to_string().contains("did not answer within 500 ms during a call on 1 item;"), "{err}");
}

#[test]
fn a_plugin_printing_on_stdout_does_not_break_the_protocol() {
    let registry = registry();
    let crashy = registry.get("crashy").unwrap();
    let o = options(Duration::from_secs(60));
    let mut noisy = open(&crashy.path, "crashy", "noisy", "", &o).unwrap();
    let mut fine = crashy.plugin.open("fine", "", &Context::default()).unwrap();
    assert_eq!(noisy.call(&numbers(20)).unwrap(), fine.call(&numbers(20)).unwrap());
}

#[test]
fn plugin_errors_in_a_worker_are_the_same_typed_errors_as_in_process() {
    let registry = registry();
    let crashy = registry.get("crashy").unwrap();
    let o = options(Duration::from_secs(60));
    let local = crashy.plugin.open("mangle", "how = \"bogus\"", &Context::default()).unwrap_err();
    match open(&crashy.path, "crashy", "mangle", "how = \"bogus\"", &o).unwrap_err() {
        WorkerError::Call(e) => assert_eq!(e, local),
        other => panic!("expected the plugin's own error, got {other}"),
    }
    match open(&crashy.path, "crashy", "no-such-function", "", &o).unwrap_err() {
        WorkerError::Call(e) => assert!(e.to_string().contains("has no function `no-such-function`"), "{e}"),
        other => panic!("{other}"),
    }
    // A per-item failure stays per item.
    let mut worker = open(&crashy.path, "crashy", "hog", "limit-mib = 64", &o).unwrap();
    let items = worker.call(&numbers(1)).unwrap();
    assert!(items[0].as_ref().is_err_and(|e| e.contains("allocated 64 MiB")), "{items:?}");
}

#[test]
fn commute_call_isolated_prints_what_in_process_prints_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (code, local, err) =
        run(commute_in(dir.path()).args(["call", "crashy", "numbers", "--params", "count = 4"]));
    assert_eq!(code, 0, "{err}");
    let (code, isolated, err) = run(commute_in(dir.path()).args([
        "call",
        "--isolate-all",
        "crashy",
        "numbers",
        "--params",
        "count = 4",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(local, isolated);
    assert_eq!(local.lines().count(), 4);

    std::fs::write(dir.path().join("x.json"), r#"[{"kind": "tensor", "shape": [1], "data": [1.0]}]"#)
        .unwrap();
    let (code, out, err) = run(commute_in(dir.path()).args([
        "call",
        "--isolate-all",
        "crashy",
        "segfault",
        "--input",
        "x.json",
    ]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("error: plugin `crashy` function `segfault` crashed in its isolated worker during a call on 1 item: killed by signal 11 (SIGSEGV"), "{err}");
}
