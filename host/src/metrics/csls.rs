//! CSLS neighbourhoods between two spaces: hubness radii (mean similarity to the k nearest rows of
//! the other side) and the mutual CSLS nearest-neighbour pairs used to induce dictionaries.
//!
//! `CSLS(x, y) = 2 cos(x, y) − r_S(x) − r_T(y)` with `r_S(x)` the mean cosine of x to its k nearest
//! target rows and `r_T(y)` that of y to its k nearest source rows. Both radii come from one blocked
//! pass; the nearest neighbours in each direction from a second. Memory stays O((n_s + n_t)·k).

use super::blocked::{normalized_rows, top_k_sweep, Blocks, TopKSweep};
use super::MetricError;
use faer::MatRef;

/// CSLS radii of rows `a` (source) and `b` (target), rows L2-normalised inside: `r_a[i]` is the
/// mean cosine of `a_i` to its `k` nearest rows of `b`, `r_b[j]` that of `b_j` to its `k` nearest
/// rows of `a` (fewer when the other side has fewer than `k` rows).
pub fn csls_radii(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    k: usize,
    blocks: Blocks,
) -> Result<(Vec<f32>, Vec<f32>), MetricError> {
    check_width(a, b)?;
    let (a, b) = (normalized_rows(a), normalized_rows(b));
    Ok(radii(a.as_ref(), b.as_ref(), k, blocks))
}

fn radii(a: MatRef<'_, f32>, b: MatRef<'_, f32>, k: usize, blocks: Blocks) -> (Vec<f32>, Vec<f32>) {
    let spec = TopKSweep {
        row_k: k.max(1),
        col_k: k.max(1),
        alpha: 1.0,
        row_penalty: None,
        col_penalty: None,
        skip_diagonal: false,
    };
    let (rows, cols) = top_k_sweep(a, b, spec, blocks);
    ((0..a.nrows()).map(|i| rows.mean(i)).collect(), (0..b.nrows()).map(|j| cols.mean(j)).collect())
}

/// Pairs (i, j) such that `b_j` is the CSLS-nearest target row of `a_i` and `a_i` the CSLS-nearest
/// source row of `b_j`, sorted by i. Rows L2-normalised inside; ties go to the smaller index.
pub fn mutual_csls_pairs(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    k: usize,
    blocks: Blocks,
) -> Result<Vec<(usize, usize)>, MetricError> {
    check_width(a, b)?;
    let (a, b) = (normalized_rows(a), normalized_rows(b));
    let (r_a, r_b) = radii(a.as_ref(), b.as_ref(), k, blocks);
    let spec = TopKSweep {
        row_k: 1,
        col_k: 1,
        alpha: 2.0,
        row_penalty: Some(&r_a),
        col_penalty: Some(&r_b),
        skip_diagonal: false,
    };
    let (fwd, back) = top_k_sweep(a.as_ref(), b.as_ref(), spec, blocks);
    Ok((0..a.nrows())
        .filter_map(|i| {
            let (_, j) = fwd.best(i)?;
            let (_, i_back) = back.best(j)?;
            (i_back == i).then_some((i, j))
        })
        .collect())
}

fn check_width(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Result<(), MetricError> {
    if a.ncols() == b.ncols() {
        Ok(())
    } else {
        Err(MetricError::Width { what: "csls", left: a.ncols(), right: b.ncols() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{brute_cosine, gaussian};

    #[test]
    fn radii_and_pairs_match_brute_force() {
        let a = gaussian(1, 37, 6);
        let b = gaussian(2, 29, 6);
        let k = 4;
        let cos = brute_cosine(a.as_ref(), b.as_ref());
        let mean_top = |mut v: Vec<f64>| {
            v.sort_by(|x, y| y.total_cmp(x));
            v[..k].iter().sum::<f64>() / k as f64
        };
        let r_a: Vec<f64> = (0..37).map(|i| mean_top(cos[i].clone())).collect();
        let r_b: Vec<f64> = (0..29).map(|j| mean_top((0..37).map(|i| cos[i][j]).collect())).collect();
        for blocks in [Blocks::default(), Blocks { rows: 5, cols: 3 }] {
            let (ga, gb) = csls_radii(a.as_ref(), b.as_ref(), k, blocks).unwrap();
            for (x, y) in ga.iter().zip(&r_a).chain(gb.iter().zip(&r_b)) {
                assert!((f64::from(*x) - y).abs() < 1e-5);
            }
            let csls = |i: usize, j: usize| 2.0 * cos[i][j] - r_a[i] - r_b[j];
            let argmax =
                |n: usize, f: &dyn Fn(usize) -> f64| (0..n).max_by(|&x, &y| f(x).total_cmp(&f(y))).unwrap();
            let want: Vec<(usize, usize)> = (0..37)
                .filter_map(|i| {
                    let j = argmax(29, &|j| csls(i, j));
                    (argmax(37, &|i2| csls(i2, j)) == i).then_some((i, j))
                })
                .collect();
            assert!(!want.is_empty());
            assert_eq!(mutual_csls_pairs(a.as_ref(), b.as_ref(), k, blocks).unwrap(), want);
        }
    }

    #[test]
    fn width_mismatch_is_an_error() {
        let a = gaussian(1, 3, 2);
        let b = gaussian(1, 3, 4);
        assert!(matches!(
            csls_radii(a.as_ref(), b.as_ref(), 2, Blocks::default()),
            Err(MetricError::Width { .. })
        ));
    }
}
