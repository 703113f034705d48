//! Benchmark: the cost of a call through the plugin ABI, against a direct Rust call and against
//! Python calling a C function through ctypes (how a Python script would call a native library).
//!
//! Run: `cargo bench -p commute-host --bench abi`. Prints medians of 15 samples.

#[path = "../../tests/e2e/util.rs"]
#[allow(dead_code)]
mod util;

use commute_fixture_echo::{Echo, Peek};
use commute_host::discover::SearchPath;
use commute_host::Registry;
use commute_sdk::abi::FfiValueRef;
use commute_sdk::{Context, Encoder, Function, NoParams, Operator, Tensor, TensorRef, Value, ValueRef};
use std::hint::black_box;
use std::time::Instant;

/// Median nanoseconds per iteration of `f`, over 15 samples of `iters` iterations.
fn median_ns(iters: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn python_ctypes_ns(library: &std::path::Path) -> Option<f64> {
    let script = format!(
        "import ctypes, timeit\nf = ctypes.CDLL({:?}).fixture_add\nn = 200000\n\
         print(min(timeit.repeat(lambda: f(1, 2), number=n, repeat=7)) / n * 1e9)",
        library.display().to_string()
    );
    let out = std::process::Command::new("python3").arg("-c").arg(script).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let files = vec![util::library("commute-fixture-echo")];
    let registry = Registry::load(&SearchPath::from_sources(files, vec![], None, None));
    let echo = &registry.get("echo").expect("the echo fixture loads").plugin;
    let ctx = Context::default();

    // 1. A guarded call with an empty batch: the ABI's fixed cost.
    let mut instance = echo.open("echo", "", &ctx).expect("open echo");
    let through_abi = median_ns(2_000_000, || {
        black_box(instance.call_wire(black_box(&[])).expect("call"));
    });
    if std::env::var_os("COMMUTE_BENCH_EMPTY_ONLY").is_some() {
        println!("empty batch through the ABI: {through_abi:.1} ns");
        return;
    }
    let mut direct = Echo::open(NoParams {}, &ctx).expect("open");
    let direct_ns = median_ns(2_000_000, || {
        black_box(direct.apply_batch(black_box(Vec::<ValueRef<'_>>::new())));
    });

    // 2. A 1 MiB f32 tensor in, one float out: the input is borrowed, never copied.
    let mib = Value::Tensor(Tensor::vector(vec![0.5f32; 1 << 18]));
    let wire = [FfiValueRef::borrow(&mib, None)];
    let mut peek = echo.open("peek", "", &ctx).expect("open peek");
    let mib_abi = median_ns(200_000, || {
        black_box(peek.call_wire(black_box(&wire)).expect("call"));
    });
    let mib_values = median_ns(200_000, || {
        black_box(peek.call(black_box(std::slice::from_ref(&mib))).expect("call"));
    });
    let mut peek_direct = Peek::open(NoParams {}, &ctx).expect("open");
    let tensor = mib.as_tensor().expect("tensor");
    let mib_direct = median_ns(200_000, || {
        black_box(
            peek_direct.encode_batch(vec![TensorRef { shape: &tensor.shape, data: black_box(&tensor.data) }]),
        );
    });
    let copy = median_ns(2_000, || {
        black_box(black_box(&tensor.data).clone());
    });

    let python = python_ctypes_ns(&util::library("commute-fixture-not-a-plugin"));

    println!("plugin ABI call cost (median of 15 samples)");
    println!("  empty batch, through the ABI (guarded)   {through_abi:>9.1} ns");
    println!(
        "  empty batch, direct Rust call            {direct_ns:>9.1} ns   ABI/direct = {:.2}x",
        through_abi / direct_ns
    );
    println!("  1 MiB f32 in, 1 float out, wire values   {mib_abi:>9.1} ns");
    println!("  1 MiB f32 in, 1 float out, host Values   {mib_values:>9.1} ns");
    println!(
        "  1 MiB f32 in, 1 float out, direct Rust   {mib_direct:>9.1} ns   ABI/direct = {:.2}x",
        mib_abi / mib_direct
    );
    println!(
        "  copying 1 MiB (what a copying ABI adds)  {copy:>9.1} ns   copy/ABI call = {:.0}x",
        copy / mib_abi
    );
    match python {
        Some(py) => println!(
            "  Python ctypes call of a C no-op          {py:>9.1} ns   Python/ABI = {:.1}x",
            py / through_abi
        ),
        None => println!("  Python ctypes call                       (python3 not available)"),
    }
}
