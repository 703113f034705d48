//! Test helpers shared by the metric tests: seeded random matrices and brute-force similarities.

use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An n × d matrix of standard normal entries (Box–Muller), from `seed`.
pub(crate) fn gaussian(seed: u64, n: usize, d: usize) -> Mat<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = move || {
        let u: f64 = rand::Rng::random::<f64>(&mut rng).max(1e-300);
        let v: f64 = rand::Rng::random(&mut rng);
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    };
    let mut m = Mat::zeros(n, d);
    for j in 0..d {
        for i in 0..n {
            m[(i, j)] = draw();
        }
    }
    m
}

/// A random d × d orthogonal matrix (Gram–Schmidt on a Gaussian matrix).
pub(crate) fn orthogonal(seed: u64, d: usize) -> Mat<f32> {
    let g = gaussian(seed, d, d);
    let mut q: Vec<Vec<f64>> = Vec::new();
    for j in 0..d {
        let mut v: Vec<f64> = (0..d).map(|i| f64::from(g[(i, j)])).collect();
        for u in &q {
            let p: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        q.push(v);
    }
    Mat::from_fn(d, d, |i, j| q[j][i] as f32)
}

/// Cosine similarities of all row pairs, in f64.
pub(crate) fn brute_cosine(a: faer::MatRef<'_, f32>, b: faer::MatRef<'_, f32>) -> Vec<Vec<f64>> {
    let norm = |m: faer::MatRef<'_, f32>, i: usize| {
        (0..m.ncols()).map(|c| f64::from(m[(i, c)]).powi(2)).sum::<f64>().sqrt()
    };
    (0..a.nrows())
        .map(|i| {
            (0..b.nrows())
                .map(|j| {
                    let d: f64 = (0..a.ncols()).map(|c| f64::from(a[(i, c)]) * f64::from(b[(j, c)])).sum();
                    d / (norm(a, i) * norm(b, j))
                })
                .collect()
        })
        .collect()
}
