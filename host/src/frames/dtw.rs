//! Dynamic time warping between two sequences of frames, and sequence retrieval by its cost.
//!
//! The cost of a pair of frames is their squared Euclidean distance (defined for silent, all-zero
//! frames, where a cosine is not); a path runs from the first frames to the last with steps that
//! advance one side or both, and the DTW cost is the path's total divided by the lengths' sum, so
//! that sequences of different lengths compare. Two rows of the cost table are kept: memory is
//! O(m), time O(n·m·d).

/// The DTW cost of `a` (frames of `d` floats) against `b`, per frame (total / (n + m)).
pub fn dtw(a: &[f32], b: &[f32], d: usize) -> f64 {
    let (n, m) = (a.len() / d.max(1), b.len() / d.max(1));
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    let cost = |i: usize, j: usize| -> f64 {
        a[i * d..(i + 1) * d].iter().zip(&b[j * d..(j + 1) * d]).map(|(x, y)| f64::from(x - y).powi(2)).sum()
    };
    let mut prev = vec![f64::INFINITY; m];
    let mut row = vec![f64::INFINITY; m];
    for i in 0..n {
        for j in 0..m {
            let best = match (i, j) {
                (0, 0) => 0.0,
                (0, _) => row[j - 1],
                (_, 0) => prev[0],
                _ => prev[j].min(prev[j - 1]).min(row[j - 1]),
            };
            row[j] = best + cost(i, j);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[m - 1] / (n + m) as f64
}

/// The DTW path between `a` and `b` (frames of `d` floats): the frame pairs `(i, j)` of the
/// cheapest monotone path from the first frames to the last, in order. Keeps the n × m table of
/// steps (a byte a cell): for pairing an item's frames with its image's under an operator that
/// changes time (a tempo), within one space.
pub fn dtw_path(a: &[f32], b: &[f32], d: usize) -> Vec<(usize, usize)> {
    let (n, m) = (a.len() / d.max(1), b.len() / d.max(1));
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let cost = |i: usize, j: usize| -> f64 {
        a[i * d..(i + 1) * d].iter().zip(&b[j * d..(j + 1) * d]).map(|(x, y)| f64::from(x - y).powi(2)).sum()
    };
    // step: 0 = diagonal, 1 = from above (i − 1), 2 = from the left (j − 1).
    let mut steps = vec![0u8; n * m];
    let mut prev = vec![f64::INFINITY; m];
    let mut row = vec![f64::INFINITY; m];
    for i in 0..n {
        for j in 0..m {
            let (best, step) = match (i, j) {
                (0, 0) => (0.0, 0),
                (0, _) => (row[j - 1], 2),
                (_, 0) => (prev[0], 1),
                _ => {
                    let (diag, up, left) = (prev[j - 1], prev[j], row[j - 1]);
                    if diag <= up && diag <= left {
                        (diag, 0)
                    } else if up <= left {
                        (up, 1)
                    } else {
                        (left, 2)
                    }
                }
            };
            row[j] = best + cost(i, j);
            steps[i * m + j] = step;
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let (mut i, mut j) = (n - 1, m - 1);
    let mut path = vec![(i, j)];
    while (i, j) != (0, 0) {
        match steps[i * m + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
        path.push((i, j));
    }
    path.reverse();
    path
}

/// Sequence retrieval: the share of queries whose own target (same index) has the lowest DTW
/// cost among all targets (ties count as found). Queries are split over the machine's threads.
pub fn sequence_p_at_1(queries: &[&[f32]], targets: &[&[f32]], d: usize) -> f64 {
    if queries.is_empty() {
        return f64::NAN;
    }
    let found = |i: usize| {
        let own = dtw(queries[i], targets[i], d);
        targets.iter().enumerate().all(|(j, t)| j == i || dtw(queries[i], t, d) >= own)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(queries.len());
    let hits: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|w| s.spawn(move || (w..queries.len()).step_by(threads).filter(|&i| found(i)).count()))
            .collect();
        workers.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).sum()
    });
    hits as f64 / queries.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_is_at_cost_zero_from_itself_and_from_a_time_stretched_copy() {
        let a: Vec<f32> = vec![0.0, 1.0, 2.0, 3.0];
        assert_eq!(dtw(&a, &a, 1), 0.0);
        // Every frame held twice: warping absorbs it.
        let slow: Vec<f32> = a.iter().flat_map(|&x| [x, x]).collect();
        assert_eq!(dtw(&a, &slow, 1), 0.0);
        // Known answer: [0, 0] against [1]: both frames pay 1, over 3 frames.
        assert!((dtw(&[0.0, 0.0], &[1.0], 1) - 2.0 / 3.0).abs() < 1e-12);
        // Frames of two floats: squared distance per pair.
        assert!((dtw(&[0.0, 0.0], &[3.0, 4.0], 2) - 25.0 / 2.0).abs() < 1e-12);
        assert_eq!(dtw(&[], &a, 1), f64::INFINITY);
    }

    #[test]
    fn the_path_of_a_time_stretched_copy_pairs_each_frame_with_its_copies() {
        // A ramp and the same ramp with every frame held twice: frame i pairs with 2i and 2i + 1.
        let a: Vec<f32> = (0..6).map(|t| t as f32).collect();
        let slow: Vec<f32> = a.iter().flat_map(|&x| [x, x]).collect();
        let path = dtw_path(&a, &slow, 1);
        assert_eq!(path.first(), Some(&(0, 0)));
        assert_eq!(path.last(), Some(&(5, 11)));
        assert!(path.iter().all(|&(i, j)| j / 2 == i), "{path:?}");
        assert_eq!(path.len(), 12);
        assert!(path.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1), "monotone");
        assert_eq!(dtw_path(&a, &a, 1), (0..6).map(|t| (t, t)).collect::<Vec<_>>());
        assert!(dtw_path(&[], &a, 1).is_empty());
    }

    #[test]
    fn retrieval_finds_each_sequence_among_others_and_misses_a_swapped_pair() {
        let seqs: Vec<Vec<f32>> =
            (0..4).map(|k| (0..6).map(|t| ((t * (k + 1)) % 5) as f32).collect()).collect();
        let refs: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
        assert_eq!(sequence_p_at_1(&refs, &refs, 1), 1.0);
        let swapped = vec![refs[1], refs[0], refs[2], refs[3]];
        assert_eq!(sequence_p_at_1(&refs, &swapped, 1), 0.5);
    }
}
