//! Blocked similarity sweeps: the product A·Bᵀ computed one (row block × column block) tile at a
//! time, so that memory stays bounded however large A and B are, and each tile is scanned while hot.
//!
//! Work is split into contiguous ranges of A's rows, one per thread of the global (rayon) pool used
//! by faer; within a range, tiles are computed with a sequential faer matrix product into a reused
//! buffer. Everything here works on rows that the caller has already L2-normalised when cosine
//! similarity is meant.

use super::topk::TopK;
use faer::linalg::matmul::matmul;
use faer::utils::thread::{join_raw, par_split_indices, parallelism_degree};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use std::ops::Range;

/// Tile sizes of a blocked sweep: `rows` rows of the first matrix (queries) times `cols` rows of the
/// second (gallery). Memory for one tile is `rows × cols × 4` bytes per thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Rows of the first matrix per tile.
    pub rows: usize,
    /// Rows of the second matrix per tile.
    pub cols: usize,
}

impl Default for Blocks {
    /// 256 × 4096 (4 MiB per thread): sized for a core's share of cache, large enough for the
    /// matrix product to run near peak.
    fn default() -> Self {
        Self { rows: 256, cols: 4096 }
    }
}

impl Blocks {
    fn clamped(self) -> Self {
        Self { rows: self.rows.max(1), cols: self.cols.max(1) }
    }
}

/// A copy of `m` with every row scaled to unit L2 norm (rows of zeros stay zero).
pub fn normalized_rows(m: MatRef<'_, f32>) -> Mat<f32> {
    let mut norms = vec![0.0f64; m.nrows()];
    for j in 0..m.ncols() {
        for (i, n) in norms.iter_mut().enumerate() {
            let v = f64::from(m[(i, j)]);
            *n += v * v;
        }
    }
    let scale: Vec<f32> =
        norms.iter().map(|&n| if n > 0.0 { (1.0 / n.sqrt()) as f32 } else { 0.0 }).collect();
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] * scale[i])
}

/// The rows of `m` listed in `rows`, in that order.
pub fn gather_rows(m: MatRef<'_, f32>, rows: &[usize]) -> Mat<f32> {
    Mat::from_fn(rows.len(), m.ncols(), |i, j| m[(rows[i], j)])
}

/// Runs `f` on contiguous ranges covering `0..n` (one per thread of the global pool, at most one per
/// `min_chunk` items), in parallel, and returns the results in range order.
pub fn par_ranges<T: Send>(n: usize, min_chunk: usize, f: &(dyn Fn(Range<usize>) -> T + Sync)) -> Vec<T> {
    let par = faer::get_global_parallelism();
    let parts = parallelism_degree(par).min(n.div_ceil(min_chunk.max(1))).max(1);
    let mut slots: Vec<Option<T>> = (0..parts).map(|_| None).collect();
    fill(&mut slots, 0, n, parts, par, f);
    slots.into_iter().flatten().collect()
}

fn fill<T: Send>(
    slots: &mut [Option<T>],
    first: usize,
    n: usize,
    parts: usize,
    par: Par,
    f: &(dyn Fn(Range<usize>) -> T + Sync),
) {
    match slots.len() {
        0 => {}
        1 => {
            let (start, len) = par_split_indices(n, first, parts);
            slots[0] = Some(f(start..start + len));
        }
        len => {
            let mid = len / 2;
            let (left, right) = slots.split_at_mut(mid);
            join_raw(
                |p| fill(left, first, n, parts, p, f),
                |p| fill(right, first + mid, n, parts, p, f),
                par,
            );
        }
    }
}

/// Visits the tiles of `a[rows] · bᵀ`, sequentially: `visit(row0, col0, tile)` gets the tile whose
/// top-left entry is (`row0`, `col0`) in global indices, as a column-major slice of
/// `tile_rows × tile_cols` (entry (i, j) at `j * tile_rows + i`) that it may modify.
pub fn for_each_tile(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    rows: Range<usize>,
    blocks: Blocks,
    mut visit: impl FnMut(usize, usize, usize, &mut [f32]),
) {
    let blocks = blocks.clamped();
    let mut buf = vec![0.0f32; blocks.rows.min(rows.len()) * blocks.cols.min(b.nrows())];
    let mut r0 = rows.start;
    while r0 < rows.end {
        let nr = blocks.rows.min(rows.end - r0);
        let a_tile = a.subrows(r0, nr);
        let mut c0 = 0;
        while c0 < b.nrows() {
            let nc = blocks.cols.min(b.nrows() - c0);
            let tile = &mut buf[..nr * nc];
            let dst = MatMut::from_column_major_slice_mut(&mut *tile, nr, nc);
            matmul(dst, Accum::Replace, a_tile, b.subrows(c0, nc).transpose(), 1.0f32, Par::Seq);
            visit(r0, c0, nr, tile);
            c0 += nc;
        }
        r0 += nr;
    }
}

/// What a top-k sweep collects. Scores are `alpha · s_ij` minus an optional penalty: row lists rank
/// the columns j by `alpha · s_ij − col_penalty[j]`, column lists rank the rows i by
/// `alpha · s_ij − row_penalty[i]`.
#[derive(Debug, Clone, Copy)]
pub struct TopKSweep<'p> {
    /// Capacity of each row's list (0: no row lists).
    pub row_k: usize,
    /// Capacity of each column's list (0: no column lists).
    pub col_k: usize,
    /// Scale of the similarity.
    pub alpha: f32,
    /// Per row of A, subtracted from the scores offered to column lists.
    pub row_penalty: Option<&'p [f32]>,
    /// Per row of B, subtracted from the scores offered to row lists.
    pub col_penalty: Option<&'p [f32]>,
    /// Skip the pairs (i, i): for a matrix swept against itself.
    pub skip_diagonal: bool,
}

/// Sweeps `a · bᵀ` once and returns, for every row of `a`, its best `row_k` columns and, for every
/// row of `b`, its best `col_k` rows of `a` (see [`TopKSweep`]).
pub fn top_k_sweep(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    spec: TopKSweep<'_>,
    blocks: Blocks,
) -> (TopK, TopK) {
    let n_b = b.nrows();
    let parts = par_ranges(a.nrows(), blocks.rows.max(1), &|range: Range<usize>| {
        let mut rows = TopK::new(range.len(), spec.row_k);
        let mut cols = TopK::new(n_b, spec.col_k);
        let start = range.start;
        for_each_tile(a, b, range, blocks, |r0, c0, nr, tile| {
            if spec.skip_diagonal {
                for i in 0..nr {
                    let g = r0 + i;
                    if g >= c0 && g < c0 + tile.len() / nr {
                        tile[(g - c0) * nr + i] = f32::NAN;
                    }
                }
            }
            scan_top_k(&spec, r0, r0 - start, c0, nr, tile, &mut rows, &mut cols);
        });
        (rows, cols)
    });
    let mut all_rows = TopK::new(a.nrows(), spec.row_k);
    let mut all_cols = TopK::new(n_b, spec.col_k);
    let mut offset = 0;
    for (rows, cols) in &parts {
        let n = rows.list_count();
        for i in 0..n {
            all_rows.merge_list(offset + i, rows, i);
        }
        offset += n;
        for j in 0..n_b {
            all_cols.merge_list(j, cols, j);
        }
    }
    (all_rows, all_cols)
}

const CHUNK: usize = 16;

#[allow(clippy::too_many_arguments)]
fn scan_top_k(
    spec: &TopKSweep<'_>,
    r0: usize,
    local0: usize,
    c0: usize,
    nr: usize,
    tile: &[f32],
    rows: &mut TopK,
    cols: &mut TopK,
) {
    let alpha = spec.alpha;
    let zeros = vec![0.0f32; nr];
    let row_pen: &[f32] = match spec.row_penalty {
        Some(p) => &p[r0..r0 + nr],
        None => &zeros,
    };
    let mut row_thr: Vec<f32> = (0..nr).map(|i| rows.threshold(local0 + i)).collect();
    for (jj, col) in tile.chunks_exact(nr).enumerate() {
        let j = c0 + jj;
        let cp = spec.col_penalty.map_or(0.0, |p| p[j]);
        let mut ct = cols.threshold(j);
        let mut i0 = 0;
        while i0 < nr {
            let n = CHUNK.min(nr - i0);
            let s = &col[i0..i0 + n];
            let rt = &row_thr[i0..i0 + n];
            let rp = &row_pen[i0..i0 + n];
            let mut hit = false;
            for t in 0..n {
                let v = alpha * s[t];
                hit |= (v - cp > rt[t]) | (v - rp[t] > ct);
            }
            if hit {
                for (t, &sv) in s.iter().enumerate() {
                    let v = alpha * sv;
                    let i = i0 + t;
                    if v - cp > row_thr[i] {
                        rows.push(local0 + i, v - cp, j);
                        row_thr[i] = rows.threshold(local0 + i);
                    }
                    if v - row_pen[i] > ct {
                        cols.push(j, v - row_pen[i], r0 + i);
                        ct = cols.threshold(j);
                    }
                }
            }
            i0 += n;
        }
    }
}

/// Scores closer to a query's target than this are ties with it. The target (the true partner's
/// score) is accumulated in f64 while tiles are f32 products of unit rows, which in a few hundred
/// dimensions agree to about 1e-6: a gap below the tolerance is rounding, not a ranking.
pub const TIE_TOLERANCE: f32 = 1e-5;

/// Where a query's true partner stands among the other gallery rows: how many score above it and
/// how many tie with it (within [`TIE_TOLERANCE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Rows scoring above the target by more than the tolerance.
    pub above: u64,
    /// Rows scoring within the tolerance of the target.
    pub tied: u64,
}

impl std::ops::AddAssign for Standing {
    fn add_assign(&mut self, other: Self) {
        self.above += other.above;
        self.tied += other.tied;
    }
}

/// For every row i of `a`: where its target stands among the rows j of `b` (other than
/// `excluded[i]`) scored `alpha · s_ij − col_penalty[j]` against `targets[i]`.
pub fn count_above(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    alpha: f32,
    col_penalty: Option<&[f32]>,
    targets: &[f32],
    excluded: &[Option<usize>],
    blocks: Blocks,
) -> Vec<Standing> {
    let parts = par_ranges(a.nrows(), blocks.rows.max(1), &|range: Range<usize>| {
        let start = range.start;
        let mut counts = vec![Standing::default(); range.len()];
        let (mut above, mut at_least): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for_each_tile(a, b, range, blocks, |r0, c0, nr, tile| {
            let nc = tile.len() / nr;
            for i in 0..nr {
                if let Some(t) = excluded[r0 + i] {
                    if t >= c0 && t < c0 + nc {
                        tile[(t - c0) * nr + i] = f32::NAN;
                    }
                }
            }
            above.clear();
            above.resize(nr, 0);
            at_least.clear();
            at_least.resize(nr, 0);
            let target = &targets[r0..r0 + nr];
            for (jj, col) in tile.chunks_exact(nr).enumerate() {
                let cp = col_penalty.map_or(0.0, |p| p[c0 + jj]);
                for (((hi, lo), &s), &t) in above.iter_mut().zip(at_least.iter_mut()).zip(col).zip(target) {
                    let score = alpha * s - cp;
                    *hi += u32::from(score > t + TIE_TOLERANCE);
                    *lo += u32::from(score >= t - TIE_TOLERANCE);
                }
            }
            for ((total, &hi), &lo) in
                counts[r0 - start..r0 - start + nr].iter_mut().zip(&above).zip(&at_least)
            {
                *total += Standing { above: u64::from(hi), tied: u64::from(lo - hi) };
            }
        });
        counts
    });
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_in_order() {
        let got = par_ranges(103, 10, &|r: Range<usize>| r.collect::<Vec<_>>());
        assert_eq!(got.into_iter().flatten().collect::<Vec<_>>(), (0..103).collect::<Vec<_>>());
        assert!(par_ranges(0, 10, &|r: Range<usize>| r.len()).iter().all(|&n| n == 0));
    }

    #[test]
    fn tiles_reproduce_the_product() {
        let a = Mat::from_fn(7, 3, |i, j| (i * 3 + j) as f32 * 0.1);
        let b = Mat::from_fn(5, 3, |i, j| (i + 2 * j) as f32 * 0.2 - 0.3);
        let mut full = [f32::NAN; 35];
        for_each_tile(a.as_ref(), b.as_ref(), 0..7, Blocks { rows: 3, cols: 2 }, |r0, c0, nr, tile| {
            for (jj, col) in tile.chunks_exact(nr).enumerate() {
                for (i, &v) in col.iter().enumerate() {
                    full[(r0 + i) * 5 + c0 + jj] = v;
                }
            }
        });
        for i in 0..7 {
            for j in 0..5 {
                let want: f32 = (0..3).map(|k| a[(i, k)] * b[(j, k)]).sum();
                assert!((full[i * 5 + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn normalised_rows_have_unit_norm() {
        let m = Mat::from_fn(3, 2, |i, j| if i == 2 { 0.0 } else { (i + j + 1) as f32 });
        let n = normalized_rows(m.as_ref());
        assert!((n[(0, 0)].powi(2) + n[(0, 1)].powi(2) - 1.0).abs() < 1e-6);
        assert_eq!((n[(2, 0)], n[(2, 1)]), (0.0, 0.0));
    }
}
