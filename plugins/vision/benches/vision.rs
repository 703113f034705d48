//! Benchmark: images per second of `text-image`, `ppocr` and `read` on 64 rendered words, called
//! through the plugin ABI with 1 and 2 threads. Run: `cargo bench -p commute-plugin-vision --bench vision`.

use commute_sdk::testing::Harness;
use commute_sdk::{Context, Value};
use std::time::Instant;

const WORDS: [&str; 16] = [
    "the",
    "water",
    "people",
    "government",
    "Monday",
    "sound",
    "through",
    "question",
    "boy",
    "little",
    "place",
    "different",
    "January",
    "right",
    "small",
    "follow",
];

/// Median images per second over `rounds` calls on `batch`.
fn speed(plugin: &Harness, function: &str, params: &str, batch: &[Value], rounds: usize) -> f64 {
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
    batch.len() as f64 / times[times.len() / 2]
}

fn main() {
    let texts: Vec<Value> = (0..64).map(|i| Value::text(WORDS[i % WORDS.len()])).collect();
    for threads in [1, 2] {
        let plugin = Harness::new(commute_plugin_vision::commute_plugin())
            .with_context(Context { threads, ..Context::default() });
        let images = plugin.call("text-image", "noise = 8.0", &texts).expect("renders");
        for (function, params, batch, rounds) in [
            ("text-image", "noise = 8.0", &texts, 11),
            ("ppocr", "", &images, 3),
            ("ppocr", "batch-size = 8", &images, 3),
            ("ppocr", "min-width = 64", &images, 3),
            ("read", "", &images, 3),
            ("read", "min-width = 64", &images, 3),
        ] {
            let x = speed(&plugin, function, params, batch, rounds);
            let params = params.replace('\n', ", ");
            println!("{function} {{{params}}}, {threads} thread(s): {x:.1} images per second");
        }
    }
}
