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
    /// Where each sequence's second segment starts (token type 1 from there to its end): its
    /// length for a single text.
    pub seconds: Vec<usize>,
}

/// One text's token ids, and where its second segment starts (its length when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// The first token of the second segment of a pair (token type 1 from there on).
    pub second: usize,
}

impl From<Vec<u32>> for Sequence {
    fn from(ids: Vec<u32>) -> Sequence {
        let second = ids.len();
        Sequence { ids, second }
    }
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
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        TokenBatch { rows, len, ids, seconds: lengths.clone(), lengths }
    }

    /// Pads sequences, pairs among them, to the longest one.
    pub fn pad_sequences(sequences: &[&Sequence]) -> TokenBatch {
        let ids: Vec<&[u32]> = sequences.iter().map(|s| s.ids.as_slice()).collect();
        let mut batch = TokenBatch::pad(&ids);
        batch.seconds = sequences.iter().map(|s| s.second.min(s.ids.len())).collect();
        batch
    }

    /// The token type ids, `rows × len`: 1 on each pair's second segment, 0 elsewhere.
    pub fn types(&self) -> Vec<i64> {
        let mut types = Vec::with_capacity(self.rows * self.len);
        for (&n, &second) in self.lengths.iter().zip(&self.seconds) {
            types.extend(std::iter::repeat_n(0, second));
            types.extend(std::iter::repeat_n(1, n - second));
            types.extend(std::iter::repeat_n(0, self.len - n));
        }
        types
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

/// Embeds tokenized texts in length-sorted sub-batches: texts whose tokenizing failed keep their
/// error; the others are cut into [`length_buckets`] of at most `batch_size` (fewer when there are
/// fewer than `workers × batch_size` texts, so that every worker gets some), padded, handed to
/// `embed_all` (one result per sub-batch, in order), and each vector goes back to its text's
/// place. A sub-batch that fails gives its error to each of its texts.
pub fn embed_texts<S: Into<Sequence>>(
    tokens: Vec<commute_sdk::Result<S>>,
    batch_size: usize,
    workers: usize,
    embed_all: impl FnOnce(&[TokenBatch]) -> Vec<commute_sdk::Result<Vec<Vec<f32>>>>,
) -> Vec<commute_sdk::Result<Vec<f32>>> {
    use commute_sdk::prelude::anyhow;
    let mut out: Vec<Option<commute_sdk::Result<Vec<f32>>>> = Vec::with_capacity(tokens.len());
    let (mut good, mut sequences) = (Vec::with_capacity(tokens.len()), Vec::with_capacity(tokens.len()));
    for (i, ids) in tokens.into_iter().enumerate() {
        match ids {
            Ok(ids) => {
                out.push(None);
                good.push(i);
                sequences.push(ids.into());
            }
            Err(e) => out.push(Some(Err(e))),
        }
    }
    let lengths: Vec<usize> = sequences.iter().map(|s: &Sequence| s.ids.len()).collect();
    let batch_size = batch_size.min(sequences.len().div_ceil(workers.max(1)).max(1));
    let buckets = length_buckets(&lengths, batch_size);
    let batches: Vec<TokenBatch> = buckets
        .iter()
        .map(|bucket| TokenBatch::pad_sequences(&bucket.iter().map(|&k| &sequences[k]).collect::<Vec<_>>()))
        .collect();
    for (bucket, result) in buckets.iter().zip(embed_all(&batches)) {
        match result {
            Ok(vectors) => {
                for (&k, vector) in bucket.iter().zip(vectors) {
                    out[good[k]] = Some(Ok(vector));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for &k in bucket {
                    out[good[k]] = Some(Err(anyhow!("{message}")));
                }
            }
        }
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow!("the model returned too few vectors")))).collect()
}

/// Runs `batches` on `workers` side by side on `pool`'s threads, each worker taking the next
/// batch in turn; the results come back in batch order. One worker (or one batch) runs in this
/// thread.
pub fn side_by_side<W: Send, T: Send>(
    workers: &mut [W],
    batches: &[TokenBatch],
    pool: &rayon::ThreadPool,
    run: impl Fn(&mut W, &TokenBatch) -> T + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    if workers.len() <= 1 || batches.len() <= 1 {
        return match workers.first_mut() {
            Some(worker) => batches.iter().map(|b| run(worker, b)).collect(),
            None => Vec::new(),
        };
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = pool.install(|| {
        workers
            .par_iter_mut()
            .flat_map_iter(|worker| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    mine.push((i, run(worker, batch)));
                }
                mine
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_texts_come_back_in_input_order_with_their_errors_in_place() {
        use commute_sdk::prelude::anyhow;
        // Text 1 failed to tokenize; the "model" returns each sequence's first id and length.
        let tokens = vec![Ok(vec![7, 1, 1]), Err(anyhow!("bad text")), Ok(vec![9]), Ok(vec![5, 2])];
        let out = embed_texts(tokens, 2, 1, |batches| {
            batches
                .iter()
                .map(|b| {
                    Ok((0..b.rows).map(|r| vec![b.ids[r * b.len] as f32, b.lengths[r] as f32]).collect())
                })
                .collect()
        });
        let shown: Vec<String> =
            out.iter().map(|r| format!("{:?}", r.as_ref().map_err(|e| e.to_string()))).collect();
        assert_eq!(shown, ["Ok([7.0, 3.0])", "Err(\"bad text\")", "Ok([9.0, 1.0])", "Ok([5.0, 2.0])"]);

        // A failing sub-batch gives its error to each of its texts, and to no other.
        let tokens = vec![Ok(vec![1, 1, 1]), Ok(vec![2]), Ok(vec![3, 3, 3])];
        let out = embed_texts(tokens, 2, 1, |batches| {
            batches
                .iter()
                .map(|b| if b.len == 3 { Err(anyhow!("too long")) } else { Ok(vec![vec![0.0]; b.rows]) })
                .collect()
        });
        assert!(out[0].is_err() && out[2].is_err() && out[1].is_ok());
    }

    #[test]
    fn side_by_side_returns_results_in_batch_order() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let batches: Vec<TokenBatch> =
            (1..=7u32).map(|n| TokenBatch::pad(&[&vec![n; n as usize][..]])).collect();
        let mut workers = vec![0usize, 0];
        let out = side_by_side(&mut workers, &batches, &pool, |count, b| {
            *count += 1;
            b.len
        });
        assert_eq!(out, (1..=7).collect::<Vec<usize>>());
        assert_eq!(workers.iter().sum::<usize>(), 7, "each batch run once");
    }

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
        assert_eq!(batch.types(), vec![0; 8], "single texts are all type 0");
        let empty = TokenBatch::pad(&[]);
        assert_eq!((empty.rows, empty.len, empty.ids.len()), (0, 0, 0));
    }

    #[test]
    fn a_pairs_second_segment_is_type_1_up_to_its_end() {
        let pair = Sequence { ids: vec![101, 7, 102, 8, 9, 102], second: 3 };
        let single = Sequence::from(vec![101, 5, 102]);
        let batch = TokenBatch::pad_sequences(&[&single, &pair]);
        assert_eq!(batch.len, 6);
        assert_eq!(batch.types(), vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(batch.mask::<i64>(), vec![1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    }
}
