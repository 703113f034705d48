//! Centred kernel alignment (linear kernel) between two representations of the same items: the
//! classic (biased HSIC) estimator and the unbiased one (debiased HSIC, Song et al. 2012).
//!
//! Both are computed in feature space from the cross-covariances XᵀX, XᵀY, YᵀY, accumulated in f64 over
//! blocks of rows (memory O(d_x² + d_y² + d_x·d_y), whatever the number of items).

use super::MetricError;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef};

/// Rows converted to f64 per block.
const BLOCK: usize = 2048;

/// The sums CKA needs, from centred data.
struct Moments {
    n: usize,
    /// ‖XᵀX‖²_F = tr(KK), ‖YᵀY‖²_F = tr(LL), ‖XᵀY‖²_F = tr(KL).
    kk: f64,
    ll: f64,
    kl: f64,
    /// Σᵢ ‖xᵢ‖² Σᵢ ‖yᵢ‖², Σᵢ ‖xᵢ‖⁴, Σᵢ ‖yᵢ‖⁴, Σᵢ ‖xᵢ‖²‖yᵢ‖² (diagonals of K and L).
    sum_k: f64,
    sum_l: f64,
    k2: f64,
    l2: f64,
    kdl: f64,
}

fn column_means(m: MatRef<'_, f32>) -> Vec<f64> {
    (0..m.ncols())
        .map(|j| (0..m.nrows()).map(|i| f64::from(m[(i, j)])).sum::<f64>() / m.nrows().max(1) as f64)
        .collect()
}

fn moments(x: MatRef<'_, f32>, y: MatRef<'_, f32>) -> Result<Moments, MetricError> {
    if x.nrows() != y.nrows() {
        return Err(MetricError::Length { what: "cka", left: x.nrows(), right: y.nrows() });
    }
    let (mx, my) = (column_means(x), column_means(y));
    let (dx, dy) = (x.ncols(), y.ncols());
    let mut xx = Mat::<f64>::zeros(dx, dx);
    let mut yy = Mat::<f64>::zeros(dy, dy);
    let mut xy = Mat::<f64>::zeros(dx, dy);
    let mut m = Moments {
        n: x.nrows(),
        kk: 0.0,
        ll: 0.0,
        kl: 0.0,
        sum_k: 0.0,
        sum_l: 0.0,
        k2: 0.0,
        l2: 0.0,
        kdl: 0.0,
    };
    let par = faer::get_global_parallelism();
    let mut r0 = 0;
    while r0 < x.nrows() {
        let nr = BLOCK.min(x.nrows() - r0);
        let xb = Mat::from_fn(nr, dx, |i, j| f64::from(x[(r0 + i, j)]) - mx[j]);
        let yb = Mat::from_fn(nr, dy, |i, j| f64::from(y[(r0 + i, j)]) - my[j]);
        matmul(xx.as_mut(), Accum::Add, xb.transpose(), xb.as_ref(), 1.0, par);
        matmul(yy.as_mut(), Accum::Add, yb.transpose(), yb.as_ref(), 1.0, par);
        matmul(xy.as_mut(), Accum::Add, xb.transpose(), yb.as_ref(), 1.0, par);
        for i in 0..nr {
            let kx: f64 = (0..dx).map(|j| xb[(i, j)] * xb[(i, j)]).sum();
            let ly: f64 = (0..dy).map(|j| yb[(i, j)] * yb[(i, j)]).sum();
            m.sum_k += kx;
            m.sum_l += ly;
            m.k2 += kx * kx;
            m.l2 += ly * ly;
            m.kdl += kx * ly;
        }
        r0 += nr;
    }
    let sq = |a: &Mat<f64>| {
        let mut s = 0.0;
        for j in 0..a.ncols() {
            for i in 0..a.nrows() {
                s += a[(i, j)] * a[(i, j)];
            }
        }
        s
    };
    m.kk = sq(&xx);
    m.ll = sq(&yy);
    m.kl = sq(&xy);
    Ok(m)
}

/// Linear CKA of two representations of the same n items (rows): `‖XᶜᵀYᶜ‖²_F / (‖XᶜᵀXᶜ‖_F ‖YᶜᵀYᶜ‖_F)`
/// with Xᶜ, Yᶜ column-centred. In [0, 1]; invariant to orthogonal maps and isotropic scaling of either
/// side. NaN when a side has no variance. Biased upwards for few items relative to the dimensions.
pub fn cka_linear(x: MatRef<'_, f32>, y: MatRef<'_, f32>) -> Result<f64, MetricError> {
    let m = moments(x, y)?;
    Ok(m.kl / (m.kk * m.ll).sqrt())
}

/// Unbiased linear CKA: CKA built from the unbiased HSIC estimator
/// `HSIC_u(K, L) ∝ tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1` (K̃, L̃: Gram matrices with
/// zeroed diagonals), which is near 0 for independent representations whatever n and d. Can be
/// slightly negative. NaN with fewer than 4 items or a side with no variance.
pub fn cka_unbiased(x: MatRef<'_, f32>, y: MatRef<'_, f32>) -> Result<f64, MetricError> {
    let m = moments(x, y)?;
    if m.n < 4 {
        return Ok(f64::NAN);
    }
    let n = m.n as f64;
    // Centred data: K1 = 0, so 1ᵀK̃1 = −tr K and K̃1 = −diag K.
    let hsic = |tr_kl: f64, diag_kl: f64, sum_k: f64, sum_l: f64| {
        (tr_kl - diag_kl) + sum_k * sum_l / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * diag_kl
    };
    let kl = hsic(m.kl, m.kdl, m.sum_k, m.sum_l);
    let kk = hsic(m.kk, m.k2, m.sum_k, m.sum_k);
    let ll = hsic(m.ll, m.l2, m.sum_l, m.sum_l);
    let denom = (kk * ll).sqrt();
    Ok(if kk > 0.0 && ll > 0.0 { kl / denom } else { f64::NAN })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{gaussian, orthogonal};

    fn times(a: &Mat<f32>, b: &Mat<f32>) -> Mat<f32> {
        a * b
    }

    #[test]
    fn invariant_to_rotation_and_scale() {
        let x = gaussian(3, 200, 12);
        let q = orthogonal(4, 12);
        let y = times(&x, &q) * faer::Scale(3.5f32);
        assert!((cka_linear(x.as_ref(), y.as_ref()).unwrap() - 1.0).abs() < 1e-5);
        assert!((cka_unbiased(x.as_ref(), y.as_ref()).unwrap() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn independent_is_near_zero_and_unbiased_is_closer() {
        let x = gaussian(5, 100, 40);
        let y = gaussian(6, 100, 40);
        let biased = cka_linear(x.as_ref(), y.as_ref()).unwrap();
        let unbiased = cka_unbiased(x.as_ref(), y.as_ref()).unwrap();
        assert!(biased > 0.0 && biased < 0.5, "{biased}");
        assert!(unbiased.abs() < 0.05, "{unbiased}");
        assert!(unbiased.abs() < biased);
    }

    #[test]
    fn unbiased_matches_the_gram_form() {
        // Direct formula on Gram matrices of a small uncentred case.
        let x = gaussian(7, 9, 3);
        let y = gaussian(8, 9, 2);
        let gram = |m: &Mat<f32>| {
            let mut k = vec![vec![0.0f64; 9]; 9];
            for i in 0..9 {
                for j in 0..9 {
                    if i != j {
                        k[i][j] = (0..m.ncols()).map(|c| f64::from(m[(i, c)]) * f64::from(m[(j, c)])).sum();
                    }
                }
            }
            k
        };
        let hsic = |k: &Vec<Vec<f64>>, l: &Vec<Vec<f64>>| {
            let n = 9.0;
            let tr: f64 =
                (0..9).flat_map(|i| (0..9).map(move |j| (i, j))).map(|(i, j)| k[i][j] * l[j][i]).sum();
            let sk: f64 = k.iter().flatten().sum();
            let sl: f64 = l.iter().flatten().sum();
            let k1: Vec<f64> = k.iter().map(|r| r.iter().sum()).collect();
            let l1: Vec<f64> = l.iter().map(|r| r.iter().sum()).collect();
            let kl1: f64 = k1.iter().zip(&l1).map(|(a, b)| a * b).sum();
            (tr + sk * sl / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * kl1) / (n * (n - 3.0))
        };
        let (k, l) = (gram(&x), gram(&y));
        let want = hsic(&k, &l) / (hsic(&k, &k) * hsic(&l, &l)).sqrt();
        let got = cka_unbiased(x.as_ref(), y.as_ref()).unwrap();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn several_blocks_and_length_check() {
        let x = gaussian(9, 5000, 4);
        let y = times(&x, &orthogonal(10, 4)) + gaussian(11, 5000, 4);
        let c = cka_linear(x.as_ref(), y.as_ref()).unwrap();
        assert!(c > 0.2 && c < 0.9);
        let short = gaussian(1, 10, 4);
        assert!(cka_linear(x.as_ref(), short.as_ref()).is_err());
    }
}
