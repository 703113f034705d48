//! Benchmark: encoder and operator speed on 10-second clips, called through the plugin ABI, in
//! audio-seconds processed per second. Run: `cargo bench -p commute-plugin-audio --bench dsp`.

use commute_sdk::testing::Harness;
use commute_sdk::{Audio, Value};
use std::time::Instant;

/// Ten seconds of changing harmonic tones over a little noise (deterministic).
fn clip(sample_rate: u32, seed: u32) -> Value {
    let n = 10 * sample_rate as usize;
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let samples = (0..n)
        .map(|i| {
            let t = i as f32 / sample_rate as f32;
            let pitch = 48.0 + ((t * 2.0) as u32 * 7 + seed) as f32 % 24.0;
            let f0 = 440.0 * 2f32.powf((pitch - 69.0) / 12.0);
            let tone: f32 =
                (1..=5).map(|k| (std::f32::consts::TAU * f0 * k as f32 * t).sin() / k as f32).sum();
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = state as f32 / u32::MAX as f32 - 0.5;
            0.2 * tone + 0.01 * noise
        })
        .collect();
    Value::Audio(Audio { sample_rate, samples })
}

/// Median audio-seconds per second over `rounds` calls on `batch`.
fn speed(plugin: &Harness, function: &str, params: &str, batch: &[Value], rounds: usize) -> f64 {
    let seconds: f64 = batch.iter().filter_map(Value::as_audio).map(Audio::duration_s).sum();
    let mut instance = plugin.open(function, params).expect("opens");
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let out = instance.call(batch).expect("runs");
            assert!(out.iter().all(Result::is_ok));
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    seconds / times[times.len() / 2]
}

fn main() {
    let plugin = Harness::new(commute_plugin_audio::commute_plugin());
    for rate in [22050, 44100] {
        let batch: Vec<Value> = (0..4).map(|s| clip(rate, s)).collect();
        let note = if rate == 22050 { "no resampling" } else { "resampled to 22.05 kHz" };
        for (function, params, rounds) in [
            ("log-mel", "", 11),
            ("chroma", "", 11),
            ("loudness", "", 11),
            ("pitch-shift", "semitones = 3", 3),
            ("pitch-shift", "semitones = 3\nmethod = \"wsola\"", 3),
        ] {
            let x = speed(&plugin, function, params, &batch, rounds);
            let params = params.replace('\n', ", ");
            println!("{function} {{{params}}} at {rate} Hz ({note} for the encoders): {x:.0} audio-seconds per second");
        }
    }
}
