//! Streaming top-k lists: for each of n items, the k largest scores seen so far, with their indices.

/// `n` lists, each keeping the `k` largest scores pushed to it (and where they came from).
///
/// A score enters a list only when it is strictly greater than [`TopK::threshold`]; NaN never enters.
/// Lists are unordered; [`TopK::mean`] sums in sorted order so that results do not depend on the order
/// in which scores arrived.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    vals: Vec<f32>,
    idx: Vec<u32>,
    len: Vec<u32>,
    thr: Vec<f32>,
}

impl TopK {
    /// `n` empty lists of capacity `k` (with `k = 0` nothing is ever kept).
    pub fn new(n: usize, k: usize) -> Self {
        let start = if k == 0 { f32::INFINITY } else { f32::NEG_INFINITY };
        Self {
            k,
            vals: vec![f32::NEG_INFINITY; n * k],
            idx: vec![0; n * k],
            len: vec![0; n],
            thr: vec![start; n],
        }
    }

    /// Number of lists.
    pub fn list_count(&self) -> usize {
        self.len.len()
    }

    /// The score a new entry of list `i` must exceed.
    #[inline]
    pub fn threshold(&self, i: usize) -> f32 {
        self.thr[i]
    }

    /// Offers `value` (from item `index`) to list `i`; kept when it beats the threshold.
    #[inline]
    pub fn push(&mut self, i: usize, value: f32, index: usize) {
        if value <= self.thr[i] || value.is_nan() {
            return;
        }
        let k = self.k;
        let base = i * k;
        let len = self.len[i] as usize;
        let slots = &mut self.vals[base..base + k];
        if len < k {
            slots[len] = value;
            self.idx[base + len] = index as u32;
            self.len[i] += 1;
            if len + 1 == k {
                self.thr[i] = min_of(slots).1;
            }
            return;
        }
        let (at, _) = min_of(slots);
        slots[at] = value;
        self.idx[base + at] = index as u32;
        self.thr[i] = min_of(slots).1;
    }

    /// Offers every entry of `other`'s list `j` to this list `i`.
    pub fn merge_list(&mut self, i: usize, other: &TopK, j: usize) {
        let (vals, idx) = other.entries(j);
        for (&v, &x) in vals.iter().zip(idx) {
            self.push(i, v, x as usize);
        }
    }

    /// Number of entries in list `i`.
    pub fn len(&self, i: usize) -> usize {
        self.len[i] as usize
    }

    /// The entries of list `i` (scores and indices, unordered).
    pub fn entries(&self, i: usize) -> (&[f32], &[u32]) {
        let base = i * self.k;
        let len = self.len[i] as usize;
        (&self.vals[base..base + len], &self.idx[base..base + len])
    }

    /// Mean of the entries of list `i` (NaN when empty), summed in sorted order in f64.
    pub fn mean(&self, i: usize) -> f32 {
        let (vals, _) = self.entries(i);
        if vals.is_empty() {
            return f32::NAN;
        }
        let mut sorted = vals.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        (sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64) as f32
    }

    /// The best entry of list `i` (largest score; among equal scores the smallest index).
    pub fn best(&self, i: usize) -> Option<(f32, usize)> {
        let (vals, idx) = self.entries(i);
        vals.iter().zip(idx).map(|(&v, &x)| (v, x as usize)).reduce(|a, b| {
            if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                b
            } else {
                a
            }
        })
    }
}

/// Position and value of the smallest element of a non-empty slice.
#[inline]
fn min_of(slots: &[f32]) -> (usize, f32) {
    let mut at = 0;
    let mut low = slots[0];
    for (i, &v) in slots.iter().enumerate().skip(1) {
        if v < low {
            low = v;
            at = i;
        }
    }
    (at, low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest() {
        let mut t = TopK::new(2, 3);
        for (j, v) in [0.1f32, 0.9, 0.3, 0.7, 0.5, f32::NAN, 0.2].iter().enumerate() {
            t.push(0, *v, j);
        }
        let (vals, idx) = t.entries(0);
        let mut got: Vec<(u32, f32)> = idx.iter().copied().zip(vals.iter().copied()).collect();
        got.sort_by_key(|p| p.0);
        assert_eq!(got, vec![(1, 0.9), (3, 0.7), (4, 0.5)]);
        assert_eq!(t.threshold(0), 0.5);
        assert!((t.mean(0) - 0.7).abs() < 1e-6);
        assert_eq!(t.best(0), Some((0.9, 1)));
        assert_eq!(t.len(1), 0);
        assert!(t.mean(1).is_nan());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut t = TopK::new(1, 0);
        t.push(0, 1.0, 0);
        assert_eq!(t.len(0), 0);
    }
}
