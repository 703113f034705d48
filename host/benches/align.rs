//! Benchmark: the feature-alignment solvers (orthogonal Procrustes, ridge) in Rust (`faer`) against
//! numpy, on the same matrices, in the same run.
//!
//! Run: `scripts/bench-align.sh` (installs numpy and threadpoolctl if missing, pins 2 threads). The
//! bench generates X (n × d) and Y = X Q + noise from a fixed seed, writes them as `.npy` files, times
//! `Fit::run` here and, case by case, the numpy version in a subprocess on those files (with
//! `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` removed from its environment only) and prints medians
//! and Rust/numpy ratios side by side, plus the largest difference between the two sides' maps.
//!
//! Environment: `ALIGN_BENCH_N` (default 20000), `ALIGN_BENCH_D` (768), `ALIGN_BENCH_SAMPLES` (11),
//! `ALIGN_BENCH_THREADS` (2).

use commute_host::align::{Fit, MethodSpec, Preprocess, Real};
use faer::{Mat, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SEED: u64 = 20_240_607;
const RIDGE_LAMBDA: f64 = 1.0;

/// The numpy side: the same formulations (SVD of XᵀY; normal equations), timed the same way.
const NUMPY_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

folder, threads, samples, lam, case = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
method, dtype, rows = case.split(" ")[0], case.split(" ")[1], int(sys.argv[6])
threadpool_limits(threads)
info = [f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, {p.get('num_threads')} threads)"
        for p in threadpool_info() if p.get("user_api") == "blas"]

def procrustes(x, y):
    u, _, vt = np.linalg.svd(x.T @ y)
    return u @ vt

def ridge(x, y):
    g = x.T @ x
    g.flat[:: g.shape[0] + 1] += lam
    return np.linalg.solve(g, x.T @ y)

f = {"procrustes": procrustes, "ridge": ridge}[method]
x = np.ascontiguousarray(np.load(f"{folder}/x.npy")[:rows]).astype(dtype == "f64" and np.float64 or np.float32)
y = np.ascontiguousarray(np.load(f"{folder}/y.npy")[:rows]).astype(x.dtype)
w = f(x, y)
times = []
for _ in range(samples):
    t = time.perf_counter(); f(x, y); times.append((time.perf_counter() - t) * 1e3)
times.sort()
ours = np.load(f"{folder}/w {case}.npy")
diff = float(np.max(np.abs(w - ours)) / max(np.max(np.abs(w)), 1e-30))
print(json.dumps({"numpy": np.__version__, "blas": info, "ms": times[len(times) // 2], "diff": diff}))
"#;

/// Runs the numpy side of one case; `None` (with a message) when Python or numpy is missing.
fn numpy_case(dir: &Path, threads: usize, samples: usize, case: &Case) -> Option<serde_json::Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(NUMPY_SCRIPT)
        .arg(dir)
        .arg(threads.to_string())
        .arg(samples.to_string())
        .arg(RIDGE_LAMBDA.to_string())
        .arg(&case.name)
        .arg(case.rows.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .output();
    match out {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).ok(),
        Ok(out) => {
            eprintln!("numpy side failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            None
        }
        Err(e) => {
            eprintln!("numpy side failed to start: {e}");
            None
        }
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median_ms(samples: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Writes a column-major matrix as a Fortran-ordered `.npy` file.
fn write_npy<T: Real>(path: &Path, m: MatRef<'_, T>) -> std::io::Result<()> {
    let (descr, width) = if std::mem::size_of::<T>() == 4 { ("<f4", 4) } else { ("<f8", 8) };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': True, 'shape': ({}, {}), }}", m.nrows(), m.ncols());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&u16::try_from(header.len()).unwrap_or(u16::MAX).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let v = m[(i, j)].to_f64();
            if width == 4 {
                out.write_all(&(v as f32).to_le_bytes())?;
            } else {
                out.write_all(&v.to_le_bytes())?;
            }
        }
    }
    out.flush()
}

fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Mat<f32> {
    Mat::from_fn(n, d, |_, _| {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    })
}

fn to_f64(m: MatRef<'_, f32>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| f64::from(m[(i, j)]))
}

struct Case {
    name: String,
    spec: MethodSpec,
    rows: usize,
    f64: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n = env_usize("ALIGN_BENCH_N", 20_000);
    let d = env_usize("ALIGN_BENCH_D", 768);
    let samples = env_usize("ALIGN_BENCH_SAMPLES", 11);
    let threads = env_usize("ALIGN_BENCH_THREADS", 2);
    let small = n.min(1000);
    faer::set_global_parallelism(Par::rayon(threads));

    // Data: X Gaussian, Y = X Q + 0.1 noise with Q a random rotation (f32, like embeddings).
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let x = gaussian(&mut rng, n, d);
    let q = {
        let g = to_f64(gaussian(&mut rng, d, d).as_ref());
        let svd = g.thin_svd().map_err(|e| format!("{e:?}"))?;
        let q = svd.U() * svd.V().transpose();
        Mat::from_fn(d, d, |i, j| q[(i, j)] as f32)
    };
    let noise = gaussian(&mut rng, n, d);
    let y = Mat::from_fn(n, d, |i, j| 0.1 * noise[(i, j)]) + &x * &q;
    let (x64, y64) = (to_f64(x.as_ref()), to_f64(y.as_ref()));

    let dir = tempfile::tempdir()?;
    write_npy(&dir.path().join("x.npy"), x.as_ref())?;
    write_npy(&dir.path().join("y.npy"), y.as_ref())?;

    let cases = [
        Case {
            name: "procrustes f32".into(),
            spec: MethodSpec::Procrustes { scaled: false },
            rows: n,
            f64: false,
        },
        Case {
            name: "ridge f32".into(),
            spec: MethodSpec::Ridge { lambda: RIDGE_LAMBDA },
            rows: n,
            f64: false,
        },
        Case {
            name: "procrustes f64".into(),
            spec: MethodSpec::Procrustes { scaled: false },
            rows: n,
            f64: true,
        },
        Case {
            name: "ridge f64".into(),
            spec: MethodSpec::Ridge { lambda: RIDGE_LAMBDA },
            rows: n,
            f64: true,
        },
        Case {
            name: format!("procrustes f64 n={small}"),
            spec: MethodSpec::Procrustes { scaled: false },
            rows: small,
            f64: true,
        },
        Case {
            name: format!("ridge f64 n={small}"),
            spec: MethodSpec::Ridge { lambda: RIDGE_LAMBDA },
            rows: small,
            f64: true,
        },
    ];
    let pre = Preprocess::none();
    println!(
        "align bench: n = {n}, d = {d}, {threads} threads, median of {samples}; \
         Rust = Fit::run (validation included), numpy = the same formulation"
    );
    let mut header_done = false;
    // Cases alternate Rust and numpy so that both sides see the same machine load.
    for case in &cases {
        let path = dir.path().join(format!("w {}.npy", case.name));
        let ms = if case.f64 {
            let (xs, ys) = (x64.as_ref().subrows(0, case.rows), y64.as_ref().subrows(0, case.rows));
            let w = Fit::new(&case.spec).preprocess(&pre).run(xs, ys)?.map.source.matrix;
            write_npy(&path, w.as_ref())?;
            median_ms(samples, || {
                let _ = std::hint::black_box(Fit::new(&case.spec).preprocess(&pre).run(xs, ys));
            })
        } else {
            let (xs, ys) = (x.as_ref().subrows(0, case.rows), y.as_ref().subrows(0, case.rows));
            let w = Fit::new(&case.spec).preprocess(&pre).run(xs, ys)?.map.source.matrix;
            write_npy(&path, w.as_ref())?;
            median_ms(samples, || {
                let _ = std::hint::black_box(Fit::new(&case.spec).preprocess(&pre).run(xs, ys));
            })
        };
        let numpy = numpy_case(dir.path(), threads, samples, case);
        if !header_done {
            match &numpy {
                Some(v) => println!("numpy {} with BLAS: {}", v["numpy"].as_str().unwrap_or("?"), v["blas"]),
                None => println!("numpy: unavailable (scripts/bench-align.sh installs it)"),
            }
            println!(
                "{:<24} {:>9} {:>9} {:>11} {:>9} {:>13}",
                "case", "rust ms", "numpy ms", "rust/numpy", "speed-up", "rel. max diff"
            );
            header_done = true;
        }
        let np_ms = numpy.as_ref().and_then(|v| v["ms"].as_f64());
        let diff = numpy.as_ref().and_then(|v| v["diff"].as_f64());
        let fmt = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:.p$}"));
        println!(
            "{:<24} {:>9.1} {:>9} {:>11} {:>8}x {:>13}",
            case.name,
            ms,
            fmt(np_ms, 1),
            fmt(np_ms.map(|np| ms / np), 2),
            fmt(np_ms.map(|np| np / ms), 2),
            diff.map_or("-".to_owned(), |d| format!("{d:.1e}"))
        );
    }
    Ok(())
}
