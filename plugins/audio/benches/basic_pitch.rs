//! Benchmark: the `basic-pitch` encoder (and `transcribe`) on 60 s of synthesized music,
//! called through the plugin ABI, in audio-seconds processed per second.
//!
//! ```sh
//! cargo bench -p commute-plugin-audio --bench basic_pitch                 # Rust only
//! cargo bench -p commute-plugin-audio --bench basic_pitch -- --out DIR    # also write the peer's inputs
//! scripts/bench-basic-pitch.sh                                            # side by side with Python
//! ```
//!
//! It also runs the generic `onnx` encoder given Basic Pitch's model and configured as Basic
//! Pitch (its windows and tensors, mean pooling) beside `basic-pitch` with the same pooling, the
//! two taking turns call by call, and prints the ratio of their speeds and their largest
//! difference.
//!
//! With `--out DIR` it writes `DIR/music.wav` (the audio, 16-bit, 22 050 Hz: the Rust timings
//! use exactly these samples), the stitched posteriorgrams `DIR/rust-{note,onset,contour}.npy`,
//! the embedding `DIR/rust-embedding.npy`, and `DIR/rust.txt` (model path, settings and speed)
//! for the Python peer to compare against.
//!
//! Environment: `BASIC_PITCH_BENCH_THREADS` (default 2), `BASIC_PITCH_BENCH_ROUNDS` (default 5),
//! `BASIC_PITCH_BENCH_BATCHES` (windows per ONNX Runtime call, comma-separated; default 8).
//! The music plugin renders the audio; its library is loaded from next to this binary, as the
//! host loads plugins.

use commute_plugin_audio::basic_pitch::embedding::{pool, Pool};
use commute_plugin_audio::basic_pitch::model::{ASSETS, NMP};
use commute_plugin_audio::basic_pitch::BasicPitch;
use commute_plugin_audio::commute_plugin;
use commute_sdk::abi::client::Plugin;
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::Harness;
use commute_sdk::{Audio, Context, Score, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seconds of music benchmarked.
const SECONDS: usize = 60;
/// The model's sample rate.
const RATE: u32 = 22_050;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The music plugin's library, from this binary's folder (`target/release/deps`).
fn music() -> Plugin {
    commute_sdk::testing::sibling_plugin("commute_plugin_music")
}

fn music_call(plugin: &Plugin, function: &str, params: &str, batch: &[Value]) -> Vec<Value> {
    let mut instance = plugin.open(function, params, &Context::default()).expect("opens");
    instance.call(batch).expect("runs").into_iter().map(|v| v.expect("item")).collect()
}

/// 60 s of music: seeded random scores (melodies, chords, several instruments) one after the
/// other, rendered at 22 050 Hz and cut to exactly 60 s.
fn sixty_seconds_of_music() -> Vec<f32> {
    let plugin = music();
    let scores = music_call(&plugin, "random-scores", "count = 30\nseed = 7\nmax-duration-s = 8.0", &[]);
    let mut all = Score::default();
    let mut offset = 0.0f32;
    for s in &scores {
        let s = s.as_score().expect("a score");
        all.notes.extend(s.notes.iter().map(|n| commute_sdk::Note { onset_s: n.onset_s + offset, ..*n }));
        offset += s.duration_s();
        if offset >= SECONDS as f32 {
            break;
        }
    }
    let audio = music_call(&plugin, "synth", &format!("sample-rate = {RATE}"), &[Value::Score(all)]);
    let mut samples = audio[0].as_audio().expect("audio").samples.clone();
    samples.resize(SECONDS * RATE as usize, 0.0);
    samples
}

/// Writes 16-bit mono WAV and reads it back, so that both sides use the same samples.
fn wav_round_trip(samples: &[f32], path: &Path) -> Vec<f32> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16).expect("write wav");
    }
    w.finalize().expect("finalize wav");
    let mut r = hound::WavReader::open(path).expect("open wav");
    r.samples::<i16>().map(|s| f32::from(s.expect("sample")) / 32768.0).collect()
}

/// Writes a little-endian f32 array as `.npy`.
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create npy"));
    f.write_all(b"\x93NUMPY\x01\x00").expect("write");
    f.write_all(&(header.len() as u16).to_le_bytes()).expect("write");
    f.write_all(header.as_bytes()).expect("write");
    for v in data {
        f.write_all(&v.to_le_bytes()).expect("write");
    }
}

/// Seconds of each of `rounds` calls of `function` on `batch` (after one warm-up call), sorted.
fn times_s(h: &Harness, function: &str, params: &str, batch: &[Value], rounds: usize) -> Vec<f64> {
    let mut instance = h.open(function, params).expect("opens");
    let _ = instance.call(batch).expect("warm-up");
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let out = instance.call(batch).expect("runs");
            assert!(out.iter().all(Result::is_ok));
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Seconds of `rounds` calls of each of two functions on `batch`, the two taking turns (after
/// one warm-up call each), sorted; and the largest difference between their outputs.
fn paired_times_s(
    h: &Harness,
    (a, a_params): (&str, &str),
    (b, b_params): (&str, &str),
    batch: &[Value],
    rounds: usize,
) -> (Vec<f64>, Vec<f64>, f32) {
    let mut first = h.open(a, a_params).expect("opens");
    let mut second = h.open(b, b_params).expect("opens");
    let tensors = |out: Vec<commute_sdk::abi::client::ItemResult>| -> Vec<Vec<f32>> {
        out.into_iter().map(|v| v.expect("item").as_tensor().expect("a tensor").data.clone()).collect()
    };
    let (x, y) =
        (tensors(first.call(batch).expect("warm-up")), tensors(second.call(batch).expect("warm-up")));
    let diff = x.iter().flatten().zip(y.iter().flatten()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    let time = |instance: &mut commute_sdk::abi::client::Instance| {
        let start = Instant::now();
        let out = instance.call(batch).expect("runs");
        assert!(out.iter().all(Result::is_ok));
        start.elapsed().as_secs_f64()
    };
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ta.push(time(&mut first));
        tb.push(time(&mut second));
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    (ta, tb, diff)
}

/// `name batch=B times=t1,t2,…` for the peer's summary.
fn times_line(name: &str, batch: usize, times: &[f64]) -> String {
    let t: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    format!("{name} batch={batch} times={}", t.join(","))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let threads: usize = env_or("BASIC_PITCH_BENCH_THREADS", 2);
    let rounds: usize = env_or("BASIC_PITCH_BENCH_ROUNDS", 5).max(1);
    let batches: Vec<usize> = std::env::var("BASIC_PITCH_BENCH_BATCHES")
        .unwrap_or_else(|_| "8".to_owned())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();

    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = out.clone().unwrap_or_else(|| scratch.path().to_owned());
    std::fs::create_dir_all(&dir).expect("output folder");
    let samples = wav_round_trip(&sixty_seconds_of_music(), &dir.join("music.wav"));
    let audio = vec![Value::Audio(Audio { sample_rate: RATE, samples })];

    let ctx = Context { threads, ..Context::default() };
    let h = Harness::new(commute_plugin()).with_context(ctx.clone());
    println!("basic-pitch bench: {SECONDS} s of synthesized music at {RATE} Hz, {threads} threads, median of {rounds}");
    let mut report = Vec::new();
    for &batch in &batches {
        let params = format!("batch-windows = {batch}");
        let encode = times_s(&h, "basic-pitch", &params, &audio, rounds);
        let transcribe = times_s(&h, "transcribe", &params, &audio, rounds);
        let rate = |t: &[f64]| SECONDS as f64 / t[t.len() / 2];
        println!(
            "rust  batch-windows = {batch:3}: basic-pitch {:6.1} audio-s/s (best {:6.1}), transcribe {:6.1} audio-s/s",
            rate(&encode),
            SECONDS as f64 / encode[0],
            rate(&transcribe),
        );
        report.push(times_line("rust-encoder", batch, &encode));
        report.push(times_line("rust-transcribe", batch, &transcribe));
    }

    // The generic encoder configured as Basic Pitch, against `basic-pitch` pooled the same way.
    let nmp = AssetStore::from_env().ensure(&NMP).expect("the Basic Pitch model");
    for &batch in &batches {
        let generic = format!(
            "model = {:?}\noutputs = [\"StatefulPartitionedCall:1\", \"StatefulPartitionedCall:2\", \"StatefulPartitionedCall:0\"]\n\
             sample-rate = 22050\nhop = 36164\nlead = 3840\ntrim = 15\nframe-rate = 86.0\nbatch-windows = {batch}",
            nmp.display().to_string()
        );
        let dedicated = format!("pool = \"mean\"\nrescale = false\nbatch-windows = {batch}");
        let (ours, theirs, diff) =
            paired_times_s(&h, ("onnx", &generic), ("basic-pitch", &dedicated), &audio, rounds);
        let rate = |t: &[f64]| SECONDS as f64 / t[t.len() / 2];
        println!(
            "generic `onnx` encoder, configured as Basic Pitch (batch-windows = {batch}): {:6.1} audio-s/s, \
             {:.2}x the dedicated `basic-pitch` ({:.1} audio-s/s, same pooling); largest difference {diff:.1e}",
            rate(&ours),
            rate(&ours) / rate(&theirs),
            rate(&theirs),
        );
    }

    if out.is_some() {
        // The frame-level outputs and the embedding, for the peer to compare against.
        let store = AssetStore::from_env();
        let mut ctx = ctx;
        for spec in ASSETS {
            ctx.assets.insert(spec.name.to_string(), store.ensure(spec).expect("asset"));
        }
        let mut model = BasicPitch::open(&ctx, batches.first().copied().unwrap_or(8)).expect("opens");
        let a = audio[0].as_audio().expect("audio");
        let p = model.posteriorgrams(&[a.as_ref()]).pop().expect("one item").expect("posteriorgrams");
        write_npy(&dir.join("rust-note.npy"), &[p.frames, 88], &p.note);
        write_npy(&dir.join("rust-onset.npy"), &[p.frames, 88], &p.onset);
        write_npy(&dir.join("rust-contour.npy"), &[p.frames, 264], &p.contour);
        let e = pool(&p, Pool::Summary, true);
        write_npy(&dir.join("rust-embedding.npy"), &[e.len()], &e);
        report.push(format!("model {}", store.path_of(&NMP).display()));
        report.push(format!("threads {threads}"));
        std::fs::write(dir.join("rust.txt"), report.join("\n") + "\n").expect("write report");
        println!("wrote {}", dir.display());
    }
}
