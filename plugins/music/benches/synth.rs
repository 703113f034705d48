//! Benchmark: synthesizer speed on the busiest of 50 generated 10-second scores, called through
//! the plugin ABI. Run: `cargo bench -p commute-plugin-music --bench synth`.

use commute_sdk::testing::Harness;
use commute_sdk::Value;
use std::time::Instant;

fn main() {
    let plugin = Harness::new(commute_plugin_music::commute_plugin());
    let scores = plugin
        .call("random-scores", "count = 50\nseed = 3\nmax-duration-s = 10.0\nmax-notes = 1000", &[])
        .expect("generate scores");
    let busiest = scores
        .into_iter()
        .max_by_key(|s| s.as_score().map_or(0, |s| s.notes.len()))
        .expect("at least one score");
    let notes = busiest.as_score().map_or(0, |s| s.notes.len());
    let mut synth = plugin.open("synth", "").expect("open synth");
    let batch = [busiest];
    let mut times = Vec::new();
    let mut seconds = 0.0;
    for _ in 0..21 {
        let start = Instant::now();
        let out = synth.call(&batch).expect("render");
        times.push(start.elapsed().as_secs_f64());
        if let Some(Ok(Value::Audio(a))) = out.first() {
            seconds = a.duration_s();
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "synth: {notes} notes, {seconds:.1} s of audio at 22.05 kHz: median {:.2} ms per render ({:.0}x real time)",
        median * 1e3,
        seconds / median
    );
}
