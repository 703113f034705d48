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

/// Each row's CSLS-nearest row of the other side, with its cosine: the translations that dictionary
/// induction and the label-free model-selection criterion read.
#[derive(Debug, Clone, PartialEq)]
pub struct CslsMatches {
    /// For each source row: its CSLS-nearest target row and their cosine (`None` when the target
    /// side is empty).
    pub forward: Vec<Option<(usize, f32)>>,
    /// For each target row: its CSLS-nearest source row and their cosine.
    pub backward: Vec<Option<(usize, f32)>>,
}

impl CslsMatches {
    /// Pairs (i, j) such that `b_j` is the CSLS-nearest target row of `a_i` and `a_i` the
    /// CSLS-nearest source row of `b_j`, sorted by i.
    pub fn mutual(&self) -> Vec<(usize, usize)> {
        self.forward
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (j, _) = (*m)?;
                let (i_back, _) = self.backward.get(j).copied().flatten()?;
                (i_back == i).then_some((i, j))
            })
            .collect()
    }

    /// MUSE's unsupervised model-selection criterion: the mean cosine between each source row and
    /// its CSLS translation (higher when the mapped spaces agree). NaN without source rows.
    pub fn mean_forward_cosine(&self) -> f64 {
        let cos: Vec<f64> = self.forward.iter().flatten().map(|&(_, c)| f64::from(c)).collect();
        if cos.is_empty() {
            f64::NAN
        } else {
            cos.iter().sum::<f64>() / cos.len() as f64
        }
    }
}

/// Each row's CSLS-nearest row of the other side, in both directions (see [`CslsMatches`]). Rows
/// L2-normalised inside; ties go to the smaller index. Two blocked passes, memory O((n_s + n_t)·k).
pub fn csls_matches(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    k: usize,
    blocks: Blocks,
) -> Result<CslsMatches, MetricError> {
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
    // The sweep ranks by 2 cos − r_b(j) (rows) and 2 cos − r_a(i) (columns): the cosine is recovered
    // from the score and the penalty.
    let forward = (0..a.nrows()).map(|i| fwd.best(i).map(|(score, j)| (j, (score + r_b[j]) / 2.0))).collect();
    let backward =
        (0..b.nrows()).map(|j| back.best(j).map(|(score, i)| (i, (score + r_a[i]) / 2.0))).collect();
    Ok(CslsMatches { forward, backward })
}

/// Pairs (i, j) such that `b_j` is the CSLS-nearest target row of `a_i` and `a_i` the CSLS-nearest
/// source row of `b_j`, sorted by i. Rows L2-normalised inside; ties go to the smaller index.
pub fn mutual_csls_pairs(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    k: usize,
    blocks: Blocks,
) -> Result<Vec<(usize, usize)>, MetricError> {
    Ok(csls_matches(a, b, k, blocks)?.mutual())
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
            let matches = csls_matches(a.as_ref(), b.as_ref(), k, blocks).unwrap();
            let mut total = 0.0;
            for (i, m) in matches.forward.iter().enumerate() {
                let (j, c) = m.unwrap();
                assert_eq!(j, argmax(29, &|j| csls(i, j)));
                assert!((f64::from(c) - cos[i][j]).abs() < 1e-5, "the cosine of the CSLS match");
                total += cos[i][j];
            }
            assert!((matches.mean_forward_cosine() - total / 37.0).abs() < 1e-5);
            for (j, m) in matches.backward.iter().enumerate() {
                let (i, c) = m.unwrap();
                assert_eq!(i, argmax(37, &|i| csls(i, j)));
                assert!((f64::from(c) - cos[i][j]).abs() < 1e-5);
            }
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
