//! Permutation nulls: seeded shuffles of correspondences and the distribution of a metric under
//! them, to tell a real alignment from chance.
//!
//! The experiment runner refits alignments on shuffled anchors itself; these are the reusable pieces:
//! a seeded permutation, rows reordered by it, truth lists re-pointed by it, and a driver that
//! evaluates any metric under many seeded shuffles.

use faer::{Mat, MatRef};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A uniformly random permutation of `0..n` (Fisher–Yates) drawn from `rng`.
pub fn permuted<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

/// The rows of `m` reordered by `perm`: row i of the result is row `perm[i]` of `m`.
/// Pairing `x` with `permute_rows(y, perm)` breaks the correspondence between x and y.
pub fn permute_rows(m: MatRef<'_, f32>, perm: &[usize]) -> Mat<f32> {
    Mat::from_fn(perm.len(), m.ncols(), |i, j| m[(perm[i], j)])
}

/// A truth list under shuffled correspondences: query i is now said to match `truth[perm[i]]`.
pub fn permute_truth(truth: &[Option<usize>], perm: &[usize]) -> Vec<Option<usize>> {
    perm.iter().map(|&p| truth[p]).collect()
}

/// The generator for shuffle number `repeat` of a null seeded by `seed` (independent streams, so a
/// repeat can be recomputed alone).
pub fn null_rng(seed: u64, repeat: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(repeat);
    rng
}

/// A metric's values under shuffled correspondences, with the observed value they are compared to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NullDistribution {
    /// The metric on the real correspondences.
    pub observed: f64,
    /// The metric under each shuffle, in repeat order.
    pub null: Vec<f64>,
    /// Mean of `null`.
    pub mean: f64,
    /// Sample standard deviation of `null` (0 with one repeat).
    pub std: f64,
    /// One-sided permutation p-value that the observed value is this high by chance:
    /// `(1 + #{null ≥ observed}) / (1 + repeats)`.
    pub p_value: f64,
}

impl NullDistribution {
    /// Summarises null values against an observed one (larger = better).
    pub fn new(observed: f64, null: Vec<f64>) -> Self {
        let n = null.len() as f64;
        let mean = null.iter().sum::<f64>() / n;
        let var = if null.len() > 1 {
            null.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let at_least = null.iter().filter(|&&v| v >= observed).count() as f64;
        Self { observed, mean, std: var.sqrt(), p_value: (1.0 + at_least) / (1.0 + n), null }
    }
}

/// Evaluates `metric` under `repeats` seeded shuffles of `0..n`: repeat r calls `metric(perm)` with
/// `perm = permuted(&mut null_rng(seed, r), n)`. The identity permutation gives the observed value.
pub fn permutation_null(
    seed: u64,
    n: usize,
    repeats: usize,
    mut metric: impl FnMut(&[usize]) -> f64,
) -> NullDistribution {
    let identity: Vec<usize> = (0..n).collect();
    let observed = metric(&identity);
    let null = (0..repeats as u64).map(|r| metric(&permuted(&mut null_rng(seed, r), n))).collect();
    NullDistribution::new(observed, null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::gaussian;
    use crate::metrics::{retrieval, Scoring};

    #[test]
    fn permutations_are_seeded_and_valid() {
        let a = permuted(&mut null_rng(7, 0), 50);
        let b = permuted(&mut null_rng(7, 0), 50);
        let c = permuted(&mut null_rng(7, 1), 50);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn shuffled_retrieval_is_at_chance() {
        let x = gaussian(1, 80, 8);
        let truth: Vec<Option<usize>> = (0..80).map(Some).collect();
        let null = permutation_null(3, 80, 20, |perm| {
            let y = permute_rows(x.as_ref(), perm);
            // Query i still claims gallery row i, but the gallery rows were shuffled.
            retrieval(x.as_ref(), y.as_ref(), &truth, Scoring::Nn).map(|s| s.p_at_1).unwrap_or(f64::NAN)
        });
        assert_eq!(null.observed, 1.0);
        assert!(null.mean < 0.1, "{}", null.mean);
        assert!((null.p_value - 1.0 / 21.0).abs() < 1e-12);
        assert_eq!(permute_truth(&[Some(4), None], &[1, 0]), vec![None, Some(4)]);
    }
}
