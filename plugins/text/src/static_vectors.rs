//! What the static word-vector encoders share: a word table, the out-of-vocabulary error the host
//! counts, and nearest-neighbour search for checks and analyses.

use crate::formats::npy::Matrix;

/// A table of word vectors: one row per known word.
pub trait WordVectors: Send + Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The vector of `word` as stored (no case folding), if the table has it.
    fn vector(&self, word: &str) -> Option<&[f32]>;
}

/// The per-item error for a word a table does not have: its message starts with
/// `not in vocabulary:` so that the host and reports can count such items.
pub fn not_in_vocabulary(word: &str) -> commute_sdk::anyhow::Error {
    commute_sdk::anyhow::anyhow!("not in vocabulary: {word:?}")
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

/// The `k` rows of `matrix` most cosine-similar to `query`, best first, as `(row, similarity)`,
/// leaving out the rows in `exclude` and rows for which `keep` is false.
pub fn nearest_rows(
    matrix: &Matrix,
    query: &[f32],
    k: usize,
    exclude: &[usize],
    keep: impl Fn(usize) -> bool,
) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k.min(matrix.rows) + 1);
    for row in 0..matrix.rows {
        if exclude.contains(&row) || !keep(row) {
            continue;
        }
        let s = cosine(matrix.row(row), query);
        if best.len() < k || best.last().is_some_and(|&(_, worst)| s > worst) {
            let at = best.partition_point(|&(_, b)| b >= s);
            best.insert(at, (row, s));
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rows_are_sorted_and_honour_exclusions() {
        let m = Matrix { rows: 4, cols: 2, data: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0] };
        let near = nearest_rows(&m, &[1.0, 0.1], 2, &[], |_| true);
        assert_eq!(near.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 2]);
        let near = nearest_rows(&m, &[1.0, 0.1], 2, &[0], |r| r != 2);
        assert_eq!(near.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3]);
        assert!((cosine(&[1.0, 0.0], &[-2.0, 0.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn the_oov_error_says_so_first() {
        assert_eq!(not_in_vocabulary("qwzx").to_string(), "not in vocabulary: \"qwzx\"");
    }
}
