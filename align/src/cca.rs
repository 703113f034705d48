//! Canonical correlation analysis: projections of both spaces onto maximally correlated directions.

use super::error::{AlignError, Space};
use super::kernels::{self, c};
use super::linear::{AffineMap, LinearMap};
use super::method::DEFAULT_CCA_REG;
use super::operator::select_rows;
use super::scalar::Real;
use faer::{Mat, MatRef};
use std::collections::BTreeMap;

/// The values an unset `reg` is chosen from: ridges relative to each covariance's mean variance,
/// from almost none (whitening the anchors' span exactly) to strong (close to the SVD of the
/// cross-covariance).
pub const CCA_REG_GRID: [f64; 7] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];

/// Folds of the cross-validation of `reg`, at most (fewer with few anchors, so that each fold
/// holds at least 2 anchors).
const CV_FOLDS: usize = 5;

/// [`solve`] with `reg` chosen from [`CCA_REG_GRID`] by cross-validation on the pairs, and what
/// was chosen (`reg`, `cv-folds`, `cv-score`: the mean held-out reciprocal rank).
///
/// Anchor i falls in fold `i mod k` (`k = min(5, ⌊n / 2⌋)`; the anchors arrive in a random order).
/// Each fold's held-out pairs are mapped by the fit on the other folds and scored as retrieval, the
/// way the map is judged: the mean reciprocal rank, by cosine in the canonical space, of each
/// held-out source row's pair among the fold's held-out target rows. The grid value with the best
/// mean over the folds wins (the smaller on a tie); a value whose fit fails on a fold is out. With
/// fewer than 4 pairs `reg` is 1e-3.
pub(crate) fn solve_cv<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    dim: Option<usize>,
    what: &str,
) -> Result<(LinearMap<T>, BTreeMap<String, f64>), AlignError> {
    kernels::check_pair_finite(x, y)?;
    let n = x.nrows();
    let folds = CV_FOLDS.min(n / 2);
    let mut details = BTreeMap::new();
    if folds < 2 {
        details.insert("reg".to_owned(), DEFAULT_CCA_REG);
        return Ok((solve(x, y, dim, DEFAULT_CCA_REG, what)?, details));
    }
    // Each fold's training and held-out rows, gathered once for the whole grid.
    let fold_rows: Vec<[Mat<T>; 4]> = (0..folds)
        .map(|fold| {
            let split = |held_out: bool| -> Vec<usize> {
                (0..n).filter(|i| (i % folds == fold) == held_out).collect()
            };
            let (train, test) = (split(false), split(true));
            [select_rows(x, &train), select_rows(y, &train), select_rows(x, &test), select_rows(y, &test)]
        })
        .collect();
    let mut best: Option<(f64, f64)> = None;
    for reg in CCA_REG_GRID {
        let mut total = 0.0;
        let mut complete = true;
        for [xt, yt, xh, yh] in &fold_rows {
            // A fixed `dim` larger than a fold allows is capped there.
            let fold_dim = dim.map(|k| k.min(xt.nrows() - 1));
            let Ok(map) = solve(xt.as_ref(), yt.as_ref(), fold_dim, reg, what) else {
                complete = false;
                break;
            };
            let a = map.source.apply(xh.as_ref());
            let b = map.target.as_ref().map(|t| t.apply(yh.as_ref()));
            total += b.map_or(f64::NEG_INFINITY, |b| reciprocal_rank(a, b));
        }
        let score = total / folds as f64;
        if complete && score.is_finite() && best.is_none_or(|(_, s)| score > s) {
            best = Some((reg, score));
        }
    }
    let Some((reg, score)) = best else {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: format!("no value of reg in {CCA_REG_GRID:?} fits every fold of the anchors"),
            hint: "set cca.reg, reduce the dimension with preprocess.pca, or add pairs".to_owned(),
        });
    };
    details.insert("reg".to_owned(), reg);
    details.insert("cv-folds".to_owned(), folds as f64);
    details.insert("cv-score".to_owned(), score);
    Ok((solve(x, y, dim, reg, what)?, details))
}

/// Mean over rows i of `1 / rank` of row i of `b` among all rows of `b`, by cosine with row i of
/// `a` (rank 1 + the rows strictly closer; a NaN cosine counts as far, a NaN pair as last).
fn reciprocal_rank<T: Real>(mut a: Mat<T>, mut b: Mat<T>) -> f64 {
    kernels::normalise_rows(&mut a);
    kernels::normalise_rows(&mut b);
    let m = a.nrows();
    let s = kernels::matmul(a.as_ref(), b.as_ref().transpose());
    let total: f64 = (0..m)
        .map(|i| {
            let own = s[(i, i)].to_f64();
            if own.is_nan() {
                return 1.0 / m as f64;
            }
            let closer = (0..m).filter(|&j| j != i && s[(i, j)].to_f64() > own).count();
            1.0 / (1 + closer) as f64
        })
        .sum();
    total / m.max(1) as f64
}

/// Regularised CCA of `x` (n × d_a) and `y` (n × d_b) keeping `dim` canonical pairs (default
/// `min(d_a, d_b, n − 1)`).
///
/// With centred rows and covariances `C_xx`, `C_yy`, `C_xy` (divided by `n − 1`), each ridged by
/// `reg · (mean variance) · I`: whiten each side with `C^{-1/2}`, take the SVD
/// `C_xx^{-1/2} C_xy C_yy^{-1/2} = U Σ Vᵀ`, and map `x ↦ (x − x̄) C_xx^{-1/2} U_k`,
/// `y ↦ (y − ȳ) C_yy^{-1/2} V_k`. The singular values are the canonical correlations. On the
/// anchors, each canonical coordinate has unit variance and coordinates are uncorrelated.
pub(crate) fn solve<T: Real>(
    x: MatRef<'_, T>,
    y: MatRef<'_, T>,
    dim: Option<usize>,
    reg: f64,
    what: &str,
) -> Result<LinearMap<T>, AlignError> {
    let (n, d_a, d_b) = (x.nrows(), x.ncols(), y.ncols());
    let max_dim = d_a.min(d_b);
    if let Some(k) = dim {
        if k > max_dim {
            return Err(AlignError::InvalidParameter {
                field: "cca.dim".to_owned(),
                detail: format!("must be at most min(d_a, d_b) = {max_dim}, got {k}"),
            });
        }
    }
    if n < 2 {
        return Err(AlignError::TooFewPairs { what: what.to_owned(), needed: 2, got: n });
    }
    let k = dim.unwrap_or(max_dim.min(n - 1));
    if n < k + 1 {
        return Err(AlignError::TooFewPairs {
            what: format!("{what} with dim = {k}"),
            needed: k + 1,
            got: n,
        });
    }
    kernels::check_pair_finite(x, y)?;
    let (xc, x_mean) = kernels::centred(x);
    let (yc, y_mean) = kernels::centred(y);
    let scale = c::<T>(1.0 / (n - 1) as f64);
    let mut cov_xy = kernels::tmatmul(xc.as_ref(), yc.as_ref());
    scale_in_place(&mut cov_xy, scale);
    let wx = inv_sqrt_cov(xc.as_ref(), scale, reg, Space::Source, what)?;
    let wy = inv_sqrt_cov(yc.as_ref(), scale, reg, Space::Target, what)?;
    let t = kernels::matmul(kernels::matmul(wx.as_ref(), cov_xy.as_ref()).as_ref(), wy.as_ref());
    let svd = kernels::thin_svd(t.as_ref(), what)?;
    let mut u = svd.u.as_ref().subcols(0, k).to_owned();
    let mut v = svd.v.as_ref().subcols(0, k).to_owned();
    kernels::fix_signs(&mut u, Some(&mut v));
    let a = kernels::matmul(wx.as_ref(), u.as_ref());
    let b = kernels::matmul(wy.as_ref(), v.as_ref());
    Ok(LinearMap {
        source: AffineMap { shift: Some(x_mean), matrix: a, bias: None },
        target: Some(AffineMap { shift: Some(y_mean), matrix: b, bias: None }),
        scale: None,
        correlations: Some(svd.s[..k].to_vec()),
    })
}

fn scale_in_place<T: Real>(a: &mut Mat<T>, s: T) {
    for j in 0..a.ncols() {
        for v in a.col_as_slice_mut(j) {
            *v *= s;
        }
    }
}

/// `(C + reg · (tr C / d) · I)^{-1/2}` for the covariance `C` of the centred rows `zc`.
fn inv_sqrt_cov<T: Real>(
    zc: MatRef<'_, T>,
    scale: T,
    reg: f64,
    space: Space,
    what: &str,
) -> Result<Mat<T>, AlignError> {
    let d = zc.ncols();
    let mut cov = kernels::gram(zc);
    scale_in_place(&mut cov, scale);
    let mean_variance = kernels::trace(cov.as_ref()) / d as f64;
    if mean_variance <= 0.0 {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: format!("the {space} rows have zero variance"),
            hint: "check the anchors and the preprocessing".to_owned(),
        });
    }
    kernels::add_diagonal(&mut cov, c::<T>(reg * mean_variance));
    let rel_tol = (zc.nrows().max(d) as f64) * T::EPSILON;
    let (w, rank, _) = kernels::inv_sqrt_psd(cov.as_ref(), rel_tol, what)?;
    if rank < d {
        return Err(AlignError::Singular {
            what: what.to_owned(),
            detail: format!(
                "the {space} covariance has rank {rank} < {d} (with {} pairs it is at most {})",
                zc.nrows(),
                zc.nrows() - 1
            ),
            hint: "raise cca.reg (e.g. 1e-3), reduce the dimension with preprocess.pca, or add pairs"
                .to_owned(),
        });
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{covariance, gaussian, max_diff, rng};

    /// Correlated 2-D pairs: y = x M + noise.
    fn pairs(seed: u64, n: usize) -> (Mat<f64>, Mat<f64>) {
        let mut r = rng(seed);
        let x = gaussian(&mut r, n, 2);
        let noise = gaussian(&mut r, n, 2);
        let y = Mat::from_fn(n, 2, |i, j| {
            let mix = if j == 0 { 0.9 * x[(i, 0)] + 0.2 * x[(i, 1)] } else { -0.3 * x[(i, 1)] };
            mix + 0.6 * noise[(i, j)] + 1.5
        });
        (x, y)
    }

    /// `n` pairs in `d` dimensions sharing a 5-dimensional latent signal, with noise.
    fn latent_pairs(seed: u64, n: usize, d: usize) -> (Mat<f64>, Mat<f64>) {
        let mut r = rng(seed);
        let z = gaussian(&mut r, n, 5);
        let (a, b) = (gaussian(&mut r, 5, d), gaussian(&mut r, 5, d));
        let (ex, ey) = (gaussian(&mut r, n, d), gaussian(&mut r, n, d));
        let (zx, zy) = (kernels::matmul(z.as_ref(), a.as_ref()), kernels::matmul(z.as_ref(), b.as_ref()));
        (
            Mat::from_fn(n, d, |i, j| zx[(i, j)] + ex[(i, j)]),
            Mat::from_fn(n, d, |i, j| zy[(i, j)] + ey[(i, j)]),
        )
    }

    #[test]
    fn cross_validation_picks_a_ridge_that_generalises_when_pairs_are_few() {
        // 40 pairs in 60 dimensions: with almost no ridge CCA whitens the anchors' span exactly
        // and new rows land anywhere; held-out pairs say so.
        let (x, y) = latent_pairs(43, 340, 60);
        let (xa, ya) = (x.as_ref().subrows(0, 40), y.as_ref().subrows(0, 40));
        let (xt, yt) = (x.as_ref().subrows(40, 300), y.as_ref().subrows(40, 300));
        let (chosen, details) = solve_cv(xa, ya, None, "cca").unwrap();
        assert_eq!(details["cv-folds"], 5.0);
        assert!(details["cv-score"].is_finite());
        let reg = details["reg"];
        assert!(CCA_REG_GRID.contains(&reg) && reg > DEFAULT_CCA_REG, "{details:?}");
        let held_out = |map: &LinearMap<f64>| {
            reciprocal_rank(map.source.apply(xt), map.target.as_ref().unwrap().apply(yt))
        };
        let fixed = solve(xa, ya, None, DEFAULT_CCA_REG, "cca").unwrap();
        let (cv, old) = (held_out(&chosen), held_out(&fixed));
        assert!(cv > old + 0.05, "held-out MRR {cv} with reg = {reg}, {old} with 1e-3");
        // The map is the plain fit at the chosen value.
        assert_eq!(chosen, solve(xa, ya, None, reg, "cca").unwrap());
        // In both regimes the choice is as good on new pairs as the best value of the grid.
        for (seed, anchors, d) in [(43, 40, 60), (44, 1000, 8)] {
            let (x, y) = latent_pairs(seed, anchors + 300, d);
            let (xa, ya) = (x.as_ref().subrows(0, anchors), y.as_ref().subrows(0, anchors));
            let (xt, yt) = (x.as_ref().subrows(anchors, 300), y.as_ref().subrows(anchors, 300));
            let held_out = |map: &LinearMap<f64>| {
                reciprocal_rank(map.source.apply(xt), map.target.as_ref().unwrap().apply(yt))
            };
            let (chosen, _) = solve_cv(xa, ya, None, "cca").unwrap();
            let best = CCA_REG_GRID
                .iter()
                .map(|&reg| held_out(&solve(xa, ya, None, reg, "cca").unwrap()))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(held_out(&chosen) > best - 0.02, "{} vs the grid's best {best}", held_out(&chosen));
        }
        // Too few pairs to cross-validate: the fallback, without folds.
        let (_, details) = solve_cv(xa.subrows(0, 3), ya.subrows(0, 3), None, "cca").unwrap();
        assert_eq!(details.get("reg"), Some(&DEFAULT_CCA_REG));
        assert!(!details.contains_key("cv-folds"));
    }

    #[test]
    fn the_reciprocal_rank_counts_the_rows_closer_than_the_pair() {
        // Rows of `a`: (1, 0), (0, 1), (1, 1); of `b`: (0, 1), (1, 0), (1, 1). Row 0's pair (0, 1)
        // is behind (1, 0) and (1, 1): rank 3; row 1's pair (1, 0) likewise: rank 3; row 2's pair
        // (1, 1) is first: rank 1. Ties do not count against the pair.
        let a = Mat::from_fn(3, 2, |i, j| [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]][i][j]);
        let b = Mat::from_fn(3, 2, |i, j| [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]][i][j]);
        assert!((reciprocal_rank(a.clone(), b) - (1.0 / 3.0 + 1.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(reciprocal_rank(a.clone(), a), 1.0);
    }

    #[test]
    fn one_dimensional_cca_is_the_absolute_pearson_correlation() {
        let mut r = rng(41);
        let x = gaussian(&mut r, 50, 1);
        let noise = gaussian(&mut r, 50, 1);
        let y = Mat::from_fn(50, 1, |i, _| -2.0 * x[(i, 0)] + noise[(i, 0)]);
        let cxy = covariance(
            faer::mat::Mat::from_fn(50, 2, |i, j| if j == 0 { x[(i, 0)] } else { y[(i, 0)] }).as_ref(),
        );
        let pearson = cxy[(1, 0)] / (cxy[(0, 0)] * cxy[(1, 1)]).sqrt();
        let map = solve(x.as_ref(), y.as_ref(), None, 0.0, "cca").unwrap();
        let rho = map.correlations.unwrap();
        assert_eq!(rho.len(), 1);
        assert!((rho[0] - pearson.abs()).abs() < 1e-12, "{rho:?} vs {pearson}");
    }

    #[test]
    fn two_dimensional_cca_matches_the_closed_form() {
        let (x, y) = pairs(42, 80);
        let joint = Mat::from_fn(80, 4, |i, j| if j < 2 { x[(i, j)] } else { y[(i, j - 2)] });
        let c = covariance(joint.as_ref());
        let block = |r0: usize, c0: usize| Mat::from_fn(2, 2, |i, j| c[(r0 + i, c0 + j)]);
        let inv2 = |m: &Mat<f64>| {
            let det = m[(0, 0)] * m[(1, 1)] - m[(0, 1)] * m[(1, 0)];
            Mat::from_fn(2, 2, |i, j| match (i, j) {
                (0, 0) => m[(1, 1)] / det,
                (1, 1) => m[(0, 0)] / det,
                _ => -m[(i, j)] / det,
            })
        };
        let (cxx, cyy, cxy, cyx) = (block(0, 0), block(2, 2), block(0, 2), block(2, 0));
        // ρ² are the eigenvalues of C_xx⁻¹ C_xy C_yy⁻¹ C_yx (a 2 × 2 matrix: trace and determinant).
        let k = kernels::matmul(
            kernels::matmul(inv2(&cxx).as_ref(), cxy.as_ref()).as_ref(),
            kernels::matmul(inv2(&cyy).as_ref(), cyx.as_ref()).as_ref(),
        );
        let (tr, det) = (k[(0, 0)] + k[(1, 1)], k[(0, 0)] * k[(1, 1)] - k[(0, 1)] * k[(1, 0)]);
        let disc = (tr * tr / 4.0 - det).sqrt();
        let expected = [(tr / 2.0 + disc).sqrt(), (tr / 2.0 - disc).sqrt()];

        let map = solve(x.as_ref(), y.as_ref(), None, 0.0, "cca").unwrap();
        let rho = map.correlations.clone().unwrap();
        assert_eq!(rho.len(), 2);
        for (got, want) in rho.iter().zip(expected) {
            assert!((got - want).abs() < 1e-10, "{rho:?} vs {expected:?}");
        }
        // The canonical variates: unit variance, uncorrelated, cross-covariance diag(ρ).
        let u = map.source.apply(x.as_ref());
        let v = map.target.as_ref().unwrap().apply(y.as_ref());
        let joint = Mat::from_fn(80, 4, |i, j| if j < 2 { u[(i, j)] } else { v[(i, j - 2)] });
        let c = covariance(joint.as_ref());
        let expected_c = Mat::from_fn(4, 4, |i, j| match (i, j) {
            _ if i == j => 1.0,
            (0, 2) | (2, 0) => rho[0],
            (1, 3) | (3, 1) => rho[1],
            _ => 0.0,
        });
        assert!(max_diff(c.as_ref(), expected_c.as_ref()) < 1e-10);
        // Mapped means are zero (CCA centres with its own means).
        assert!(kernels::column_means(u.as_ref()).iter().all(|m| m.abs() < 1e-12));
    }

    #[test]
    fn an_exact_linear_relation_has_unit_correlations() {
        let mut r = rng(43);
        let x = gaussian(&mut r, 30, 4);
        let m = gaussian(&mut r, 4, 4);
        let y = kernels::matmul(x.as_ref(), m.as_ref());
        let map = solve(x.as_ref(), y.as_ref(), Some(3), 0.0, "cca").unwrap();
        let rho = map.correlations.unwrap();
        assert_eq!(rho.len(), 3);
        assert!(rho.iter().all(|p| (p - 1.0).abs() < 1e-9), "{rho:?}");
        assert_eq!(map.source.dim_out(), 3);
    }

    #[test]
    fn regularisation_shrinks_correlations_and_handles_few_pairs() {
        let (x, y) = pairs(44, 80);
        let plain = solve(x.as_ref(), y.as_ref(), None, 0.0, "cca").unwrap().correlations.unwrap();
        let ridged = solve(x.as_ref(), y.as_ref(), None, 0.5, "cca").unwrap().correlations.unwrap();
        assert!(ridged[0] < plain[0]);
        // 4 pairs in 10 dimensions: singular without reg, fine with it (dim defaults to n - 1 = 3).
        let mut r = rng(45);
        let (x, y) = (gaussian(&mut r, 4, 10), gaussian(&mut r, 4, 8));
        let err = solve(x.as_ref(), y.as_ref(), None, 0.0, "cca").unwrap_err();
        assert!(err.to_string().contains("raise cca.reg"), "{err}");
        let map = solve(x.as_ref(), y.as_ref(), None, 1e-3, "cca").unwrap();
        assert_eq!(map.correlations.unwrap().len(), 3);
    }

    #[test]
    fn bad_dimensions_are_reported() {
        let (x, y) = pairs(46, 10);
        let err = solve(x.as_ref(), y.as_ref(), Some(3), 0.0, "cca").unwrap_err();
        assert!(matches!(err, AlignError::InvalidParameter { ref field, .. } if field == "cca.dim"), "{err}");
        let (x, y) = pairs(47, 2);
        let err = solve(x.as_ref(), y.as_ref(), Some(2), 0.1, "cca").unwrap_err();
        assert_eq!(err, AlignError::TooFewPairs { what: "cca with dim = 2".to_owned(), needed: 3, got: 2 });
        let constant = Mat::from_fn(10, 2, |_, j| j as f64);
        let (_, y) = pairs(48, 10);
        let err = solve(constant.as_ref(), y.as_ref(), None, 0.1, "cca").unwrap_err();
        assert!(err.to_string().contains("source rows have zero variance"), "{err}");
    }
}
