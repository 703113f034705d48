//! Overhead of isolated mode against in-process calls on realistic batches: the music plugin's
//! `synth` (scores → audio, a large output), `piano-roll` (scores → 128-d embeddings, little data
//! either way) and, when the audio plugin is given, `log-mel` on the synthesized audio (a large
//! input). Prints the median of each call in-process and in a worker, and a worker's start-up.
//!
//! ```sh
//! scripts/bench-isolation.sh            # builds, then runs this with the libraries and `commute`
//! ```
//!
//! Arguments: `COMMUTE_EXE MUSIC_LIBRARY [AUDIO_LIBRARY]`; `ISOLATION_BENCH_REPS` (default 7).

use commute_host::discover::SearchPath;
use commute_host::worker::{WorkerInstance, WorkerOptions};
use commute_host::Registry;
use commute_sdk::{Context, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn bytes(values: &[Value]) -> usize {
    values
        .iter()
        .map(|v| match v {
            Value::Audio(a) => a.samples.len() * 4,
            Value::Tensor(t) => t.data.len() * 4,
            Value::Score(s) => s.notes.len() * 11,
            _ => 0,
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() >= 2, "usage: isolation_overhead COMMUTE_EXE MUSIC_LIBRARY [AUDIO_LIBRARY]");
    let exe = PathBuf::from(&args[0]);
    let files: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
    let reps: usize = std::env::var("ISOLATION_BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(7);
    let registry = Registry::load(&SearchPath::from_sources(files, vec![], None, None));
    anyhow::ensure!(registry.failures().is_empty(), "{:?}", registry.failures());
    let ctx = Context { threads: 1, ..Context::default() };
    let options = WorkerOptions { program: Some(exe), ..WorkerOptions::default() };
    let music = registry.get("music")?;
    let audio = registry.get("audio").ok();

    println!("isolated vs in-process, median of {reps} calls, 1 plugin thread");
    println!(
        "{:<26} {:>6} {:>10} {:>12} {:>12} {:>11} {:>9}",
        "function", "items", "data", "in-process", "isolated", "added", "overhead"
    );
    for n in [64usize, 256] {
        let params = format!("count = {n}\nseed = 11\nmax-duration-s = 4.0");
        let scores: Vec<Value> = music
            .plugin
            .open("random-scores", &params, &ctx)?
            .call(&[])?
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        let audio_items: Vec<Value> = music
            .plugin
            .open("synth", "sample-rate = 22050", &ctx)?
            .call(&scores)?
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        let mut cases = vec![
            ("music/synth (22.05 kHz)", music, "synth", "sample-rate = 22050", &scores),
            ("music/piano-roll", music, "piano-roll", "", &scores),
        ];
        if let Some(audio) = audio {
            cases.push(("audio/log-mel", audio, "log-mel", "", &audio_items));
        }
        for (label, plugin, function, params, input) in cases {
            let mut local = plugin.plugin.open(function, params, &ctx)?;
            let mut worker = WorkerInstance::open(
                &plugin.path,
                plugin.plugin.name(),
                function,
                params,
                &ctx,
                None,
                &options,
            )?;
            // One warm-up call each, then alternate so that both see the same machine state.
            let out = local.call(input)?;
            worker.call(input)?;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let t = Instant::now();
                std::hint::black_box(local.call(input)?);
                a.push(t.elapsed());
                let t = Instant::now();
                std::hint::black_box(worker.call(input)?);
                b.push(t.elapsed());
            }
            let out_values: Vec<Value> = out.into_iter().filter_map(Result::ok).collect();
            let data = (bytes(input) + bytes(&out_values)) as f64 / 1e6;
            let (a, b) = (median(a), median(b));
            println!(
                "{label:<26} {n:>6} {:>7.1} MB {:>12} {:>12} {:>+8.1} ms {:>+8.0}%",
                data,
                ms(a),
                ms(b),
                (b.as_secs_f64() - a.as_secs_f64()) * 1e3,
                (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0
            );
        }
    }
    let mut starts = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let w = WorkerInstance::open(&music.path, "music", "piano-roll", "", &ctx, None, &options)?;
        starts.push(t.elapsed());
        drop(w);
    }
    println!("worker start-up (spawn, load the library, open piano-roll): {}", ms(median(starts)));
    Ok(())
}
