//! Functional alignment on plain matrices: a hidden rotation between two 20-dimensional spaces,
//! recovered from 5 paired rows and three operators known only inside each space.
//!
//! `cargo run --release -p commute-align --example functional`

use commute_align::{Fit, FitData, MethodSpec, OperatorRows};
use faer::Mat;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

const D: usize = 20;

fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Mat<f32> {
    // Box–Muller: two uniforms give a standard normal.
    Mat::from_fn(n, d, |_, _| {
        let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    })
}

/// A random rotation: a product of Givens rotations in every coordinate plane.
fn rotation(rng: &mut ChaCha8Rng) -> Mat<f32> {
    let mut q = Mat::<f32>::identity(D, D);
    for i in 0..D {
        for j in i + 1..D {
            let (s, c) = rng.random_range(0.0..std::f32::consts::TAU).sin_cos();
            for r in 0..D {
                let (a, b) = (q[(r, i)], q[(r, j)]);
                q[(r, i)] = c * a - s * b;
                q[(r, j)] = s * a + c * b;
            }
        }
    }
    q
}

/// Mean distance between the mapped rows and the truth, over 200 fresh rows.
fn error(map: &dyn commute_align::Alignment, test: &Mat<f32>, q: &Mat<f32>) -> f32 {
    let (mapped, truth) = (map.map_source(test.as_ref()), test * q);
    (0..test.nrows())
        .map(|i| (0..D).map(|j| (mapped[(i, j)] - truth[(i, j)]).powi(2)).sum::<f32>().sqrt())
        .sum::<f32>()
        / test.nrows() as f32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let q = rotation(&mut rng);
    // 5 anchors: far fewer than the 20 dimensions a classic fit needs.
    let x = gaussian(&mut rng, 5, D);
    let y = &x * &q;
    // Three operators: F_k in the source, and the same operator seen from the target,
    // G_k = Qᵀ F_k Q, each known only from (row, image) pairs inside its own space.
    let mut rows = Vec::new();
    for _ in 0..3 {
        let f = Mat::<f32>::identity(D, D) + gaussian(&mut rng, D, D) * faer::Scale(0.3);
        let g = q.transpose() * &f * &q;
        let (a, b) = (gaussian(&mut rng, 100, D), gaussian(&mut rng, 100, D));
        let (fa, gb) = (&a * &f, &b * &g);
        rows.push((a, fa, b, gb));
    }
    let side = |target: bool| -> Vec<OperatorRows<'_>> {
        rows.iter()
            .enumerate()
            .map(|(k, (a, fa, b, gb))| match target {
                true => OperatorRows::new(format!("op{k}"), b.as_ref(), gb.as_ref()),
                false => OperatorRows::new(format!("op{k}"), a.as_ref(), fa.as_ref()),
            })
            .collect()
    };
    let data = FitData { source_operators: side(false), target_operators: side(true), ..FitData::default() };
    let test = gaussian(&mut rng, 200, D);

    let least_squares: MethodSpec = toml::from_str(r#"kind = "least-squares""#)?;
    let functional: MethodSpec = toml::from_str("kind = \"functional\"\nlambda = 1.0\nmu = 1e-6")?;
    let classic = Fit::new(&least_squares).run_f32(x.as_ref(), y.as_ref())?;
    let with_operators = Fit::new(&functional).data(&data).run_f32(x.as_ref(), y.as_ref())?;
    println!("5 anchors in {D} dimensions, mean error of the mapped rows (a row's norm is about 4.5):");
    println!("  least squares            {:.2e}", error(&classic, &test, &q));
    println!("  functional, 3 operators  {:.2e}", error(&with_operators, &test, &q));
    Ok(())
}
