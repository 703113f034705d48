//! Minimum-norm least squares, `W = X⁺ Y`, by a thin SVD of `X` (exact for any shape and rank).

use super::error::AlignError;
use super::kernels::{self, c};
use super::scalar::Real;
use faer::{Mat, MatRef};

/// `argmin ‖X W − Y‖²_F` of smallest `‖W‖_F`: `W = V Σ⁺ Uᵀ Y` from `X = U Σ Vᵀ`, with singular values
/// below `max(n, d) · ε · σ_max` treated as zero (numpy's `lstsq`/`pinv` default).
///
/// `rows` names the rows in an error (e.g. "source rows", "centred source rows").
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    what: &str,
    rows: &str,
) -> Result<Mat<T>, AlignError> {
    kernels::check_pair_finite(x, y)?;
    let svd = kernels::thin_svd(x, what)?;
    let top = svd.s.first().map_or(0.0, |s| s.to_f64());
    if top <= 0.0 {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: format!("the {rows} are all zero"),
            hint: "check the anchors and the preprocessing".to_owned(),
        });
    }
    let tol = (x.nrows().max(x.ncols()) as f64) * T::EPSILON * top;
    let rank = svd.s.iter().take_while(|s| s.to_f64() > tol).count();
    let mut uty = kernels::tmatmul(svd.u.as_ref().subcols(0, rank), y);
    let inv: Vec<T> = svd.s[..rank].iter().map(|s| c::<T>(1.0 / s.to_f64())).collect();
    for j in 0..uty.ncols() {
        for (v, s) in uty.col_as_slice_mut(j).iter_mut().zip(&inv) {
            *v *= *s;
        }
    }
    Ok(kernels::matmul(svd.v.as_ref().subcols(0, rank), uty.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gaussian, max_diff, rng};
    use faer::linalg::solvers::SolveLstsq;

    #[test]
    fn overdetermined_matches_a_qr_solution() {
        let mut r = rng(11);
        let x = gaussian(&mut r, 50, 8);
        let y = gaussian(&mut r, 50, 3);
        let w = solve(x.as_ref(), y.as_ref(), "least-squares", "source rows").unwrap();
        let mut rhs = y.clone();
        x.qr().solve_lstsq_in_place(rhs.as_mut());
        let expected = rhs.as_ref().subrows(0, 8).to_owned();
        assert!(max_diff(w.as_ref(), expected.as_ref()) < 1e-10);
    }

    #[test]
    fn underdetermined_gives_the_minimum_norm_interpolant() {
        let mut r = rng(12);
        let x = gaussian(&mut r, 4, 10);
        let y = gaussian(&mut r, 4, 3);
        let w = solve(x.as_ref(), y.as_ref(), "least-squares", "source rows").unwrap();
        // Interpolates the anchors…
        let fitted = kernels::matmul(x.as_ref(), w.as_ref());
        assert!(max_diff(fitted.as_ref(), y.as_ref()) < 1e-10);
        // …and equals Xᵀ (X Xᵀ)⁻¹ Y, the minimum-norm solution.
        let mut alpha = y.clone();
        kernels::matmul(x.as_ref(), x.as_ref().transpose()).partial_piv_lu().solve_in_place(alpha.as_mut());
        let expected = kernels::tmatmul(x.as_ref(), alpha.as_ref());
        assert!(max_diff(w.as_ref(), expected.as_ref()) < 1e-10);
    }

    #[test]
    fn rank_deficient_rows_are_handled() {
        // Two identical columns: the minimum-norm solution splits the weight equally.
        let x = Mat::from_fn(6, 2, |i, _| (i + 1) as f64);
        let y = Mat::from_fn(6, 1, |i, _| 2.0 * (i + 1) as f64);
        let w = solve(x.as_ref(), y.as_ref(), "least-squares", "source rows").unwrap();
        assert!((w[(0, 0)] - 1.0).abs() < 1e-10 && (w[(1, 0)] - 1.0).abs() < 1e-10, "{w:?}");
    }

    #[test]
    fn all_zero_rows_are_singular() {
        let err = solve(
            Mat::<f64>::zeros(3, 2).as_ref(),
            Mat::<f64>::zeros(3, 2).as_ref(),
            "least-squares",
            "source rows",
        )
        .unwrap_err();
        assert!(err.to_string().contains("source rows are all zero"), "{err}");
    }

    use faer::linalg::solvers::Solve;
}
