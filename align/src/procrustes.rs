//! Orthogonal Procrustes (optionally scaled): `W = U Vᵀ` from the SVD of the cross-covariance `XᵀY`.

use super::error::AlignError;
use super::kernels::{self, c};
use super::scalar::Real;
use faer::{Mat, MatRef};

/// `argmin ‖X W − Y‖_F` over `W` (d_a × d_b) with orthonormal columns (rows when `d_a < d_b`),
/// and, when `scaled`, the best global scale `s = tr Σ / ‖X‖²_F` folded into `W`.
///
/// One product over the pairs (`XᵀY`, d_a × d_b) and one SVD of that small matrix, whatever `n`.
/// Non-finite rows are caught through that product.
/// Returns `W` and the scale (when `scaled`).
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    scaled: bool,
    what: &str,
) -> Result<(Mat<T>, Option<T>), AlignError> {
    let m = kernels::tmatmul(x, y);
    kernels::check_product(m.as_ref(), x, y, what)?;
    let svd = kernels::thin_svd(m.as_ref(), what)?;
    let mut w = kernels::matmul(svd.u.as_ref(), svd.v.as_ref().transpose());
    if !scaled {
        return Ok((w, None));
    }
    let norm = kernels::squared_norm(x);
    if norm <= 0.0 {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: "the source rows are all zero, so no scale fits".to_owned(),
            hint: "check the anchors and the preprocessing, or use scaled = false".to_owned(),
        });
    }
    let s = c::<T>(svd.s.iter().map(|v| v.to_f64()).sum::<f64>() / norm);
    for j in 0..w.ncols() {
        for v in w.col_as_slice_mut(j) {
            *v *= s;
        }
    }
    Ok((w, Some(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{f32s, gaussian, max_diff, orthogonal, rng};
    use faer::Mat;

    #[test]
    fn recovers_a_random_orthogonal_map_from_noiseless_pairs() {
        let mut r = rng(1);
        let x = gaussian(&mut r, 60, 24);
        let q = orthogonal(&mut r, 24);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let (w, scale) = solve(x.as_ref(), y.as_ref(), false, "procrustes").unwrap();
        assert!(scale.is_none());
        assert!(max_diff(w.as_ref(), q.as_ref()) < 1e-5, "{}", max_diff(w.as_ref(), q.as_ref()));
        assert!(max_diff(w.as_ref(), q.as_ref()) < 1e-10);
    }

    #[test]
    fn fewer_pairs_than_dimensions_still_fit_the_anchors_with_an_orthogonal_map() {
        let mut r = rng(2);
        let x = gaussian(&mut r, 5, 20);
        let q = orthogonal(&mut r, 20);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let (w, _) = solve(x.as_ref(), y.as_ref(), false, "procrustes").unwrap();
        let fitted = kernels::matmul(x.as_ref(), w.as_ref());
        assert!(max_diff(fitted.as_ref(), y.as_ref()) < 1e-9);
        let wtw = kernels::tmatmul(w.as_ref(), w.as_ref());
        assert!(max_diff(wtw.as_ref(), Mat::<f64>::identity(20, 20).as_ref()) < 1e-10);
    }

    #[test]
    fn scaled_procrustes_recovers_the_scale() {
        let mut r = rng(3);
        let x = gaussian(&mut r, 40, 12);
        let q = orthogonal(&mut r, 12);
        let y = Mat::from_fn(40, 12, |i, j| 2.5 * kernels::matmul(x.as_ref(), q.as_ref())[(i, j)]);
        let (w, scale) = solve(x.as_ref(), y.as_ref(), true, "procrustes").unwrap();
        assert!((scale.unwrap() - 2.5).abs() < 1e-10);
        let expected = Mat::from_fn(12, 12, |i, j| 2.5 * q[(i, j)]);
        assert!(max_diff(w.as_ref(), expected.as_ref()) < 1e-9);
    }

    #[test]
    fn rectangular_maps_have_orthonormal_columns_or_rows() {
        let mut r = rng(4);
        let x = gaussian(&mut r, 30, 16);
        let y = gaussian(&mut r, 30, 6);
        let (w, _) = solve(x.as_ref(), y.as_ref(), false, "procrustes").unwrap();
        assert_eq!((w.nrows(), w.ncols()), (16, 6));
        let wtw = kernels::tmatmul(w.as_ref(), w.as_ref());
        assert!(max_diff(wtw.as_ref(), Mat::<f64>::identity(6, 6).as_ref()) < 1e-10);
        let (w, _) = solve(y.as_ref(), x.as_ref(), false, "procrustes").unwrap();
        let wwt = kernels::matmul(w.as_ref(), w.as_ref().transpose());
        assert!(max_diff(wwt.as_ref(), Mat::<f64>::identity(6, 6).as_ref()) < 1e-10);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut r = rng(5);
        let x = gaussian(&mut r, 200, 32);
        let q = orthogonal(&mut r, 32);
        let noise = gaussian(&mut r, 200, 32);
        let y = Mat::from_fn(200, 32, |i, j| {
            kernels::matmul(x.as_ref(), q.as_ref())[(i, j)] + 0.1 * noise[(i, j)]
        });
        let (w64, _) = solve(x.as_ref(), y.as_ref(), false, "procrustes").unwrap();
        let (w32, _) =
            solve(f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref(), false, "procrustes").unwrap();
        let w32 = Mat::from_fn(32, 32, |i, j| f64::from(w32[(i, j)]));
        assert!(max_diff(w32.as_ref(), w64.as_ref()) < 1e-4);
    }

    #[test]
    fn scaled_procrustes_on_zero_rows_is_singular() {
        let x = Mat::<f64>::zeros(4, 3);
        let y = Mat::<f64>::identity(4, 3);
        let err = solve(x.as_ref(), y.as_ref(), true, "procrustes").unwrap_err();
        assert!(matches!(err, AlignError::Singular { .. }), "{err}");
        assert!(solve(x.as_ref(), y.as_ref(), false, "procrustes").is_ok());
    }
}
