//! Benchmark: CSLS (and NN) retrieval over a 50k × 50k gallery at d = 300, against the time of the
//! matrix product it needs (queries × galleryᵀ, blocked, faer f32).
//!
//! Run through `scripts/bench-retrieval.sh`, which also times a plain numpy implementation on the same
//! data and prints the ratio. This binary writes the data as `.npy` files into
//! `$RETRIEVAL_BENCH_DIR` (default: the system temp folder) together with `rust.json` (its medians).
//! `RETRIEVAL_BENCH_N` overrides the number of items (default 50000), `RETRIEVAL_BENCH_SAMPLES` the
//! number of timed runs (default 3).

use commute_host::metrics::{retrieval, Scoring};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const D: usize = 300;
const NOISE: f32 = 3.0;

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// Writes `m` as a little-endian f32, C-order `.npy` file.
fn write_npy(path: &Path, m: MatRef<'_, f32>) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", m.nrows(), m.ncols());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.write_all(&m[(i, j)].to_le_bytes())?;
        }
    }
    out.flush()
}

fn median_s(samples: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::var("RETRIEVAL_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let samples: usize =
        std::env::var("RETRIEVAL_BENCH_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = std::env::var_os("RETRIEVAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("commute-bench-retrieval"));
    std::fs::create_dir_all(&dir)?;

    // Queries X; gallery Y = X + noise (cosine of true pairs ≈ 0.32): hard enough that many truths
    // are not first, so CSLS's second pass has work to do.
    let mut rng = ChaCha8Rng::seed_from_u64(20240601);
    let mut x = Mat::<f32>::zeros(n, D);
    let mut y = Mat::<f32>::zeros(n, D);
    for i in 0..n {
        for j in 0..D {
            let v = gaussian(&mut rng);
            x[(i, j)] = v;
            y[(i, j)] = v + NOISE * gaussian(&mut rng);
        }
    }
    write_npy(&dir.join("queries.npy"), x.as_ref())?;
    write_npy(&dir.join("gallery.npy"), y.as_ref())?;
    let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
    let threads = faer::utils::thread::parallelism_degree(faer::get_global_parallelism());
    println!("retrieval bench: {n} queries x {n} gallery, d = {D}, {threads} threads, {samples} samples");

    // The product alone: 4096-row blocks of X times Yᵀ into one reused buffer.
    let rows = 4096.min(n);
    let mut buf = Mat::<f32>::zeros(rows, n);
    let product = median_s(samples, || {
        let mut r0 = 0;
        while r0 < n {
            let nr = rows.min(n - r0);
            let dst = buf.as_mut().subrows_mut(0, nr);
            matmul(
                dst,
                Accum::Replace,
                x.as_ref().subrows(r0, nr),
                y.as_ref().transpose(),
                1.0,
                Par::rayon(0),
            );
            r0 += nr;
        }
        std::hint::black_box(&buf);
    });
    drop(buf);
    println!("rust  matmul X·Yᵀ (blocked)     median {product:8.3} s");

    let mut csls_p1 = f64::NAN;
    let csls = median_s(samples, || {
        csls_p1 = retrieval(x.as_ref(), y.as_ref(), &truth, Scoring::CSLS10).map_or(f64::NAN, |s| s.p_at_1);
    });
    println!(
        "rust  CSLS retrieval (k = 10)   median {csls:8.3} s  P@1 = {csls_p1:.4}  ({:.2}x the product)",
        csls / product
    );
    let mut nn_p1 = f64::NAN;
    let nn = median_s(samples, || {
        nn_p1 = retrieval(x.as_ref(), y.as_ref(), &truth, Scoring::Nn).map_or(f64::NAN, |s| s.p_at_1);
    });
    println!(
        "rust  NN retrieval              median {nn:8.3} s  P@1 = {nn_p1:.4}  ({:.2}x the product)",
        nn / product
    );

    let json = format!(
        "{{\"n\": {n}, \"d\": {D}, \"threads\": {threads}, \"matmul_s\": {product}, \"csls_s\": {csls}, \"csls_p1\": {csls_p1}, \"nn_s\": {nn}, \"nn_p1\": {nn_p1}}}\n"
    );
    std::fs::write(dir.join("rust.json"), json)?;
    Ok(())
}
