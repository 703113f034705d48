//! Mutual k-nearest-neighbour overlap: how much two representations of the same items agree on
//! each item's neighbourhood.

use super::blocked::{normalized_rows, top_k_sweep, Blocks, TopKSweep};
use super::MetricError;
use faer::MatRef;

/// Mean over items of `|N_x(i) ∩ N_y(i)| / k`, where `N_x(i)` are the `k` nearest other rows of row i
/// of `x` by cosine (and likewise in `y`). 1 when both spaces agree on every neighbourhood; about
/// `k / (n − 1)` for unrelated spaces. `k` is capped at n − 1; NaN with fewer than 2 items.
pub fn mutual_knn(x: MatRef<'_, f32>, y: MatRef<'_, f32>, k: usize) -> Result<f64, MetricError> {
    mutual_knn_with(x, y, k, Blocks::default())
}

/// [`mutual_knn`] with explicit tiling (results do not depend on it, up to floating-point ties).
pub fn mutual_knn_with(
    x: MatRef<'_, f32>,
    y: MatRef<'_, f32>,
    k: usize,
    blocks: Blocks,
) -> Result<f64, MetricError> {
    if x.nrows() != y.nrows() {
        return Err(MetricError::Length { what: "mutual-knn", left: x.nrows(), right: y.nrows() });
    }
    let n = x.nrows();
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return Ok(f64::NAN);
    }
    let neighbours = |m: MatRef<'_, f32>| {
        let m = normalized_rows(m);
        let spec = TopKSweep {
            row_k: k,
            col_k: 0,
            alpha: 1.0,
            row_penalty: None,
            col_penalty: None,
            skip_diagonal: true,
        };
        top_k_sweep(m.as_ref(), m.as_ref(), spec, blocks).0
    };
    let (nx, ny) = (neighbours(x), neighbours(y));
    let mut total = 0usize;
    for i in 0..n {
        let (_, a) = nx.entries(i);
        let (_, b) = ny.entries(i);
        total += a.iter().filter(|j| b.contains(j)).count();
    }
    Ok(total as f64 / (n * k) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{brute_cosine, gaussian, orthogonal};

    #[test]
    fn a_space_with_itself_or_rotated_is_one() {
        let x = gaussian(1, 60, 5);
        assert_eq!(mutual_knn(x.as_ref(), x.as_ref(), 10).unwrap(), 1.0);
        let y = &x * orthogonal(2, 5);
        assert_eq!(mutual_knn(x.as_ref(), y.as_ref(), 10).unwrap(), 1.0);
    }

    #[test]
    fn matches_brute_force_and_blocks() {
        let x = gaussian(3, 50, 4);
        let y = gaussian(4, 50, 4);
        let k = 5;
        let knn = |m: &faer::Mat<f32>| -> Vec<Vec<usize>> {
            let c = brute_cosine(m.as_ref(), m.as_ref());
            (0..50)
                .map(|i| {
                    let mut o: Vec<usize> = (0..50).filter(|&j| j != i).collect();
                    o.sort_by(|&a, &b| c[i][b].total_cmp(&c[i][a]));
                    o.truncate(k);
                    o
                })
                .collect()
        };
        let (a, b) = (knn(&x), knn(&y));
        let want =
            (0..50).map(|i| a[i].iter().filter(|j| b[i].contains(j)).count()).sum::<usize>() as f64 / 250.0;
        assert_eq!(mutual_knn(x.as_ref(), y.as_ref(), k).unwrap(), want);
        let tiled = mutual_knn_with(x.as_ref(), y.as_ref(), k, Blocks { rows: 7, cols: 6 }).unwrap();
        assert_eq!(tiled, want);
        assert!(want < 0.6);
    }
}
