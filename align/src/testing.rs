//! Test helpers for the alignment tests: seeded random matrices and comparisons.

use super::kernels;
use faer::{Mat, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator.
pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// An n × d matrix of independent standard normals (Box–Muller).
pub(crate) fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Mat<f64> {
    Mat::from_fn(n, d, |_, _| {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    })
}

/// A uniformly random d × d orthogonal matrix (polar factor of a Gaussian matrix).
pub(crate) fn orthogonal(rng: &mut ChaCha8Rng, d: usize) -> Mat<f64> {
    let g = gaussian(rng, d, d);
    let svd = kernels::thin_svd(g.as_ref(), "test").unwrap();
    kernels::matmul(svd.u.as_ref(), svd.v.as_ref().transpose())
}

/// An n × d matrix with orthonormal, centred columns (n > d).
pub(crate) fn centred_orthonormal(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Mat<f64> {
    let (g, _) = kernels::centred(gaussian(rng, n, d).as_ref());
    kernels::thin_svd(g.as_ref(), "test").unwrap().u
}

/// Largest absolute entry-wise difference.
pub(crate) fn max_diff(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()), "shapes differ");
    let mut worst = 0.0f64;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            worst = worst.max((a[(i, j)] - b[(i, j)]).abs());
        }
    }
    worst
}

/// The sample covariance (divided by n − 1) of the rows of `z`.
pub(crate) fn covariance(z: MatRef<'_, f64>) -> Mat<f64> {
    let (zc, _) = kernels::centred(z);
    let scale = 1.0 / (z.nrows() - 1) as f64;
    let g = kernels::gram(zc.as_ref());
    Mat::from_fn(g.nrows(), g.ncols(), |i, j| g[(i, j)] * scale)
}

/// Converts to `f32`.
pub(crate) fn f32s(a: MatRef<'_, f64>) -> Mat<f32> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] as f32)
}
