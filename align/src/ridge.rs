//! Ridge regression, `W = (XᵀX + λI)⁻¹ XᵀY`, by a Cholesky solve of the smaller normal equations.

use super::error::AlignError;
use super::kernels::{self, c};
use super::least_squares;
use super::scalar::Real;
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

/// `argmin ‖X W − Y‖²_F + λ ‖W‖²_F`.
///
/// With at least as many pairs as source dimensions it solves the d × d normal equations
/// `(XᵀX + λI) W = XᵀY` (two products over the pairs, one Cholesky); with fewer pairs, the
/// equivalent n × n kernel form `W = Xᵀ (XXᵀ + λI)⁻¹ Y`. `λ = 0` is minimum-norm least squares.
/// Non-finite rows are caught through the products.
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    lambda: f64,
    what: &str,
    rows: &str,
) -> Result<Mat<T>, AlignError> {
    if lambda == 0.0 {
        return least_squares::solve(x, y, what, rows);
    }
    let singular = |_| AlignError::Singular {
        what: what.to_owned(),
        detail: format!(
            "the regularised normal equations are not numerically positive definite (lambda = {lambda})"
        ),
        hint: "raise lambda".to_owned(),
    };
    if x.nrows() >= x.ncols() {
        let mut g = kernels::gram(x);
        kernels::add_diagonal(&mut g, c::<T>(lambda));
        let mut w = kernels::tmatmul(x, y);
        kernels::check_product(g.as_ref(), x, y, what)?;
        kernels::check_product(w.as_ref(), x, y, what)?;
        let llt = g.llt(Side::Lower).map_err(singular)?;
        llt.solve_in_place(w.as_mut());
        Ok(w)
    } else {
        let mut k = kernels::gram(x.transpose());
        kernels::add_diagonal(&mut k, c::<T>(lambda));
        kernels::check_product(k.as_ref(), x, y, what)?;
        let mut alpha = y.to_owned();
        let llt = k.llt(Side::Lower).map_err(singular)?;
        llt.solve_in_place(alpha.as_mut());
        let w = kernels::tmatmul(x, alpha.as_ref());
        kernels::check_product(w.as_ref(), x, y, what)?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gaussian, max_diff, rng};

    /// `(XᵀX + λI)⁻¹ XᵀY` by an LU solve of the normal equations, written out independently.
    fn normal_equations(x: MatRef<'_, f64>, y: MatRef<'_, f64>, lambda: f64) -> Mat<f64> {
        let d = x.ncols();
        let mut g = Mat::<f64>::zeros(d, d);
        for i in 0..d {
            for j in 0..d {
                g[(i, j)] = (0..x.nrows()).map(|k| x[(k, i)] * x[(k, j)]).sum::<f64>()
                    + if i == j { lambda } else { 0.0 };
            }
        }
        let mut w =
            Mat::from_fn(d, y.ncols(), |i, j| (0..x.nrows()).map(|k| x[(k, i)] * y[(k, j)]).sum::<f64>());
        g.partial_piv_lu().solve_in_place(w.as_mut());
        w
    }

    #[test]
    fn matches_the_normal_equations_with_more_pairs_than_dimensions() {
        let mut r = rng(21);
        let x = gaussian(&mut r, 40, 9);
        let y = gaussian(&mut r, 40, 4);
        let w = solve(x.as_ref(), y.as_ref(), 0.7, "ridge", "source rows").unwrap();
        let expected = normal_equations(x.as_ref(), y.as_ref(), 0.7);
        assert!(max_diff(w.as_ref(), expected.as_ref()) < 1e-10);
    }

    #[test]
    fn kernel_form_matches_the_normal_equations_with_fewer_pairs() {
        let mut r = rng(22);
        let x = gaussian(&mut r, 6, 15);
        let y = gaussian(&mut r, 6, 5);
        let w = solve(x.as_ref(), y.as_ref(), 0.3, "ridge", "source rows").unwrap();
        let expected = normal_equations(x.as_ref(), y.as_ref(), 0.3);
        assert!(max_diff(w.as_ref(), expected.as_ref()) < 1e-10);
    }

    #[test]
    fn lambda_zero_is_least_squares_and_tends_to_it() {
        let mut r = rng(23);
        let x = gaussian(&mut r, 30, 6);
        let y = gaussian(&mut r, 30, 2);
        let ls = least_squares::solve(x.as_ref(), y.as_ref(), "ls", "source rows").unwrap();
        let zero = solve(x.as_ref(), y.as_ref(), 0.0, "ridge", "source rows").unwrap();
        assert_eq!(ls, zero);
        let tiny = solve(x.as_ref(), y.as_ref(), 1e-9, "ridge", "source rows").unwrap();
        assert!(max_diff(ls.as_ref(), tiny.as_ref()) < 1e-8);
    }

    #[test]
    fn shrinks_as_lambda_grows() {
        let mut r = rng(24);
        let x = gaussian(&mut r, 30, 6);
        let y = gaussian(&mut r, 30, 2);
        let norms: Vec<f64> = [0.1, 1.0, 10.0, 100.0]
            .iter()
            .map(|&l| kernels::squared_norm(solve(x.as_ref(), y.as_ref(), l, "ridge", "r").unwrap().as_ref()))
            .collect();
        assert!(norms.windows(2).all(|w| w[1] < w[0]), "{norms:?}");
    }
}
