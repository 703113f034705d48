//! Affine map with an unpenalised bias: `x ↦ x W + b`, fitted by centring both sides.

use super::error::AlignError;
use super::kernels;
use super::ridge;
use super::scalar::Real;
use faer::{Mat, MatRef};

/// `argmin ‖X W + 1 bᵀ − Y‖²_F + λ ‖W‖²_F` over `W` and `b`: fit `W` on the centred rows (ridge, or
/// minimum-norm least squares when `λ = 0`), then `b = ȳ − x̄ W`. Returns `(W, b)`.
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    lambda: f64,
    what: &str,
) -> Result<(Mat<T>, Vec<T>), AlignError> {
    kernels::check_pair_finite(x, y)?;
    let (xc, x_mean) = kernels::centred(x);
    let (yc, y_mean) = kernels::centred(y);
    let w = ridge::solve(xc.as_ref(), yc.as_ref(), lambda, what, "centred source rows (all anchors equal)")?;
    let bias = (0..w.ncols())
        .map(|j| {
            let mut b = y_mean[j];
            for (m, v) in x_mean.iter().zip(w.col_as_slice(j)) {
                b -= *m * *v;
            }
            b
        })
        .collect();
    Ok((w, bias))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gaussian, max_diff, rng};

    #[test]
    fn recovers_a_linear_map_and_a_bias() {
        let mut r = rng(31);
        let x = gaussian(&mut r, 25, 7);
        let a = gaussian(&mut r, 7, 4);
        let b = [3.0, -1.0, 0.5, 10.0];
        let mut y = kernels::matmul(x.as_ref(), a.as_ref());
        kernels::add_row(&mut y, &b);
        let (w, bias) = solve(x.as_ref(), y.as_ref(), 0.0, "affine").unwrap();
        assert!(max_diff(w.as_ref(), a.as_ref()) < 1e-10);
        for (got, want) in bias.iter().zip(b) {
            assert!((got - want).abs() < 1e-10, "{bias:?}");
        }
    }

    #[test]
    fn the_bias_is_not_penalised() {
        // With a huge penalty W vanishes and the bias becomes the target mean.
        let mut r = rng(32);
        let x = gaussian(&mut r, 20, 5);
        let y = gaussian(&mut r, 20, 3);
        let (w, bias) = solve(x.as_ref(), y.as_ref(), 1e12, "affine").unwrap();
        assert!(kernels::squared_norm(w.as_ref()) < 1e-18);
        let mean = kernels::column_means(y.as_ref());
        for (got, want) in bias.iter().zip(mean) {
            assert!((got - want).abs() < 1e-9);
        }
    }

    #[test]
    fn identical_anchors_are_singular_without_a_penalty() {
        let x = Mat::from_fn(4, 3, |_, j| j as f64);
        let y = Mat::from_fn(4, 2, |i, _| i as f64);
        let err = solve(x.as_ref(), y.as_ref(), 0.0, "affine").unwrap_err();
        assert!(err.to_string().contains("all anchors equal"), "{err}");
    }
}
