//! Length bucketing: a batch of token sequences is sorted by length, cut into sub-batches that
//! waste little on padding, each padded to its own longest sequence; results go back in input order.
//!
//! Sorting first means texts of similar length share a sub-batch, so little compute goes to
//! padding (the model's cost grows with the padded length of the whole sub-batch).

/// The `[PAD]` token id of the MiniLM vocabulary.
pub const PAD_ID: u32 = 0;

/// What one more sub-batch costs, in padded tokens: the fixed work of a model call (launching
/// kernels, small matrix products that do not fill the cores). Splitting a sub-batch pays only when
/// it saves more padding than this.
pub const SUB_BATCH_COST_TOKENS: usize = 64;

/// Groups of item positions to run together: positions sorted by decreasing length (ties keep
/// input order), cut into consecutive groups of at most `batch_size` (at least 1) so that the
/// padded tokens (each group's size × its longest length) plus [`SUB_BATCH_COST_TOKENS`] per group
/// are fewest.
///
/// With similar lengths this gives full groups of `batch_size`; a few long texts among short ones
/// get groups of their own instead of padding every short text to their length. Every position
/// appears exactly once, so writing each group's results at its positions restores input order.
pub fn length_buckets(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    // cost[j]: the least cost of the first j sorted positions; cut[j]: where its last group starts.
    let n = order.len();
    let mut cost = vec![0usize; n + 1];
    let mut cut = vec![0usize; n + 1];
    for j in 1..=n {
        let (best_cost, best_start) = (j.saturating_sub(batch_size)..j)
            .map(|i| (cost[i] + (j - i) * lengths[order[i]] + SUB_BATCH_COST_TOKENS, i))
            .min_by_key(|&(c, i)| (c, std::cmp::Reverse(i)))
            .unwrap_or((0, 0));
        cost[j] = best_cost;
        cut[j] = best_start;
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        groups.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    groups.reverse();
    groups
}

/// A padded sub-batch: `rows` sequences of `len` tokens, row-major, padding on the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Number of sequences.
    pub rows: usize,
    /// Padded length (the longest sequence's length).
    pub len: usize,
    /// Token ids, `rows × len`, [`PAD_ID`] after each sequence's end.
    pub ids: Vec<u32>,
    /// The true length of each sequence (the attention mask is 1 on the first `lengths[r]` tokens).
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads sequences to the longest one.
    pub fn pad(sequences: &[&[u32]]) -> TokenBatch {
        let rows = sequences.len();
        let len = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = vec![PAD_ID; rows * len];
        for (row, sequence) in ids.chunks_exact_mut(len.max(1)).zip(sequences) {
            row[..sequence.len()].copy_from_slice(sequence);
        }
        TokenBatch { rows, len, ids, lengths: sequences.iter().map(|s| s.len()).collect() }
    }

    /// The attention mask, `rows × len`: 1 on real tokens, 0 on padding.
    pub fn mask<T: From<u8> + Copy>(&self) -> Vec<T> {
        let mut mask = Vec::with_capacity(self.rows * self.len);
        for &n in &self.lengths {
            mask.extend(std::iter::repeat_n(T::from(1), n));
            mask.extend(std::iter::repeat_n(T::from(0), self.len - n));
        }
        mask
    }

    /// The token ids as `i64` (what the ONNX model takes).
    pub fn ids_i64(&self) -> Vec<i64> {
        self.ids.iter().map(|&id| i64::from(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sort_by_length_cut_by_batch_size_and_cover_every_position_once() {
        let lengths = [30, 90, 50, 90, 20, 70, 50];
        let buckets = length_buckets(&lengths, 3);
        // Sorted: 90 90 70 | 50 50 | 30 20 — 622 padded tokens with the groups' cost, the least.
        assert_eq!(buckets, vec![vec![1, 3, 5], vec![2, 6], vec![0, 4]]);
        let mut all: Vec<usize> = buckets.concat();
        all.sort_unstable();
        assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
        assert_eq!(length_buckets(&[], 4), Vec::<Vec<usize>>::new());
        assert_eq!(length_buckets(&[1, 2], 0), vec![vec![1], vec![0]]);
    }

    #[test]
    fn a_long_text_gets_its_own_group_instead_of_padding_short_ones() {
        let mut lengths = vec![12; 11];
        lengths.insert(4, 256);
        assert_eq!(length_buckets(&lengths, 32), vec![vec![4], vec![0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]]);
        // Similar lengths: as few groups as batch-size allows.
        let similar: Vec<usize> = (0..100).map(|i| 20 + i % 7).collect();
        let groups = length_buckets(&similar, 32);
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| g.len() <= 32));
    }

    #[test]
    fn padding_goes_to_the_longest_sequence_with_a_matching_mask() {
        let batch = TokenBatch::pad(&[&[101, 7, 8, 102], &[101, 102]]);
        assert_eq!((batch.rows, batch.len), (2, 4));
        assert_eq!(batch.ids, vec![101, 7, 8, 102, 101, 102, 0, 0]);
        assert_eq!(batch.mask::<i64>(), vec![1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(batch.mask::<u32>(), vec![1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(batch.ids_i64(), vec![101, 7, 8, 102, 101, 102, 0, 0]);
        let empty = TokenBatch::pad(&[]);
        assert_eq!((empty.rows, empty.len, empty.ids.len()), (0, 0, 0));
    }
}
