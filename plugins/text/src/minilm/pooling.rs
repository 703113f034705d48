//! Sentence vectors from token vectors, as sentence-transformers makes them for all-MiniLM-L6-v2:
//! the mean over the real (unmasked) tokens, scaled to unit length (or, on request, the plain
//! mean).

/// Mean of the first `lengths[r]` token vectors of each row of `hidden` (`rows × seq_len × dim`,
/// row-major), divided by its L2 norm (at least 1e-12, as in sentence-transformers' `Normalize`).
///
/// A row with no real token gives the zero vector.
pub fn mean_pool_normalised(hidden: &[f32], lengths: &[usize], seq_len: usize, dim: usize) -> Vec<Vec<f32>> {
    mean_pool(hidden, lengths, seq_len, dim, true)
}

/// The mean of each row's real token vectors, divided by its L2 norm when `normalise` (then
/// [`mean_pool_normalised`], bit for bit). The plain mean is what a linear map of the token
/// states commutes with: the mean of mapped rows is the mapped mean.
pub fn mean_pool(
    hidden: &[f32],
    lengths: &[usize],
    seq_len: usize,
    dim: usize,
    normalise: bool,
) -> Vec<Vec<f32>> {
    lengths
        .iter()
        .enumerate()
        .map(|(row, &n)| {
            let start = row * seq_len * dim;
            let mut sum = vec![0.0f32; dim];
            for token in hidden[start..start + n.min(seq_len) * dim].chunks_exact(dim) {
                for (s, &x) in sum.iter_mut().zip(token) {
                    *s += x;
                }
            }
            let count = (n as f32).max(1e-9);
            if !normalise {
                return sum.iter().map(|s| s / count).collect();
            }
            let norm = sum.iter().map(|s| (s / count) * (s / count)).sum::<f32>().sqrt().max(1e-12);
            sum.iter().map(|s| s / count / norm).collect()
        })
        .collect()
}

/// Per row, the vectors of each part one after another: `parts[p][r]` for p in order. One part
/// is returned as it is.
pub fn side_by_side(mut parts: Vec<Vec<Vec<f32>>>) -> Vec<Vec<f32>> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let rows = parts.first().map_or(0, Vec::len);
    (0..rows).map(|r| parts.iter().flat_map(|part| part[r].iter().copied()).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_covers_real_tokens_only_and_has_unit_length() {
        // 2 rows × 3 tokens × 2 dims; row 0 has 2 real tokens, row 1 has 3.
        let hidden = [1.0, 0.0, 3.0, 4.0, 100.0, 100.0, 0.0, 2.0, 0.0, 4.0, 0.0, 6.0];
        let out = mean_pool_normalised(&hidden, &[2, 3], 3, 2);
        // Row 0: mean (2, 2) → (0.7071, 0.7071); the padding token (100, 100) is ignored.
        assert!((out[0][0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((out[0][1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(out[1], vec![0.0, 1.0]);
        // The plain mean: (2, 2) and (0, 4).
        assert_eq!(mean_pool(&hidden, &[2, 3], 3, 2, false), vec![vec![2.0, 2.0], vec![0.0, 4.0]]);
    }

    #[test]
    fn parts_go_side_by_side_row_by_row() {
        let a = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        let b = vec![vec![5.0, 6.0], vec![7.0, 8.0]];
        assert_eq!(side_by_side(vec![a.clone()]), a);
        assert_eq!(side_by_side(vec![a, b]), vec![vec![1.0, 2.0, 5.0, 6.0], vec![3.0, 4.0, 7.0, 8.0]]);
        assert!(side_by_side(Vec::new()).is_empty());
    }

    #[test]
    fn an_all_zero_or_empty_row_gives_zeros_not_nan() {
        let out = mean_pool_normalised(&[0.0; 4], &[2, 0], 1, 2);
        assert_eq!(out, vec![vec![0.0, 0.0], vec![0.0, 0.0]]);
    }
}
