//! Subspaces of an embedding space: the principal directions that carry most of a set of rows'
//! variance, and the principal angles between two subspaces.

use crate::align::kernels;
use crate::align::AlignError;
use faer::{Mat, MatRef};

/// An orthonormal basis (`d × r`, columns) of the smallest principal subspace of the centred
/// `rows` that holds at least `energy` (0–1] of their variance.
pub fn principal_basis(rows: MatRef<'_, f64>, energy: f64) -> Result<Mat<f64>, AlignError> {
    let (centred, _) = kernels::centred(rows);
    let svd = kernels::thin_svd(centred.as_ref(), "principal subspace")?;
    let total: f64 = svd.s.iter().map(|s| s * s).sum();
    let mut kept = 0;
    let mut held = 0.0;
    while kept < svd.s.len() && (held < energy * total || kept == 0) && svd.s[kept] > 0.0 {
        held += svd.s[kept] * svd.s[kept];
        kept += 1;
    }
    Ok(Mat::from_fn(rows.ncols(), kept, |i, k| svd.v[(i, k)]))
}

/// The cosines of the principal angles between the column spans of orthonormal bases `a` and
/// `b`, largest first (`min(r_a, r_b)` of them, each in [0, 1]).
pub fn principal_cosines(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Result<Vec<f64>, AlignError> {
    if a.ncols() == 0 || b.ncols() == 0 {
        return Ok(Vec::new());
    }
    let m = kernels::matmul(a.transpose(), b);
    let svd = kernels::thin_svd(m.as_ref(), "principal angles")?;
    Ok(svd.s.iter().map(|s| s.clamp(0.0, 1.0)).collect())
}

/// The mean squared cosine expected between a random `r_a`- and a random `r_b`-dimensional
/// subspace of a `d`-dimensional space: `max(r_a, r_b) / d` (the reference for "overlap").
pub fn chance_mean_cos2(r_a: usize, r_b: usize, d: usize) -> f64 {
    if d == 0 {
        return f64::NAN;
    }
    (r_a.max(r_b) as f64 / d as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::maps::tests::gaussian;

    #[test]
    fn the_basis_spans_the_rows_and_is_orthonormal() {
        // Rows in a 2-d plane of a 5-d space, plus a tiny third direction.
        let coords = gaussian(100, 3, 1);
        let rows = Mat::from_fn(100, 5, |i, j| match j {
            0 => coords[(i, 0)],
            2 => coords[(i, 1)],
            4 => 1e-4 * coords[(i, 2)],
            _ => 0.0,
        });
        let basis = principal_basis(rows.as_ref(), 0.99).unwrap();
        assert_eq!(basis.ncols(), 2);
        let gram = kernels::matmul(basis.as_ref().transpose(), basis.as_ref());
        assert!((0..2).all(|i| (0..2).all(|j| (gram[(i, j)] - f64::from(u8::from(i == j))).abs() < 1e-12)));
        for i in [1, 3, 4] {
            assert!((0..2).all(|k| basis[(i, k)].abs() < 1e-3), "no weight off the plane");
        }
        assert_eq!(principal_basis(rows.as_ref(), 1.0).unwrap().ncols(), 3);
    }

    #[test]
    fn known_angles_between_planes() {
        let e = |i: usize| Mat::from_fn(4, 1, |r, _| f64::from(u8::from(r == i)));
        let plane = |a: usize, b: usize| Mat::from_fn(4, 2, |r, c| f64::from(u8::from(r == [a, b][c])));
        // Orthogonal planes: every angle 90°. Shared axis: one cosine 1.
        assert!(principal_cosines(plane(0, 1).as_ref(), plane(2, 3).as_ref())
            .unwrap()
            .iter()
            .all(|c| *c < 1e-12));
        let shared = principal_cosines(plane(0, 1).as_ref(), plane(1, 2).as_ref()).unwrap();
        assert!((shared[0] - 1.0).abs() < 1e-12 && shared[1].abs() < 1e-12);
        // A line at 60° to the x axis: cos = 0.5.
        let line = Mat::from_fn(4, 1, |r, _| match r {
            0 => 0.5,
            1 => 3f64.sqrt() / 2.0,
            _ => 0.0,
        });
        assert!((principal_cosines(e(0).as_ref(), line.as_ref()).unwrap()[0] - 0.5).abs() < 1e-12);
        assert_eq!(chance_mean_cos2(2, 3, 12), 0.25);
    }
}
