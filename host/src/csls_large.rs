//! Million-scale CSLS retrieval (P@1 and friends) in bounded memory: queries against a gallery that
//! is streamed block by block — copied from matrices or generated from a seed, never held whole —
//! in two passes that split into shards by query range and merge exactly through state files.
//!
//! `CSLS(x, y) = 2 cos(x, y) − r_q(x) − r_g(y)`, with `r_q(x)` the mean cosine of query x to its k
//! nearest gallery rows and `r_g(y)` that of gallery row y to its k nearest queries (Conneau et al.
//! 2018; k = 10). Query i's true partner is gallery row i.
//!
//! - **Pass 1** (per query range): tiles of queries × gallery ([`super::Blocks`], the same sweep as
//!   [`super::retrieval`]) feed streaming top-k lists: each query's k best gallery rows (→ `r_q`) and
//!   each gallery row's k best queries *of the range*. A shard writes its queries' `r_q` and its
//!   partial gallery lists (`n_g × k` scores).
//! - **Merge 1**: the partial gallery lists merge elementwise (the k largest of their union) into
//!   `r_g`. The k largest scores of a set do not depend on how the set was split, and means are
//!   summed in sorted order, so `r_g` is bit-identical however the queries were sharded.
//! - **Pass 2** (per query range): the truth scores `2 cos(x_i, y_i) − r_g(y_i)` and, tile by tile,
//!   how many other gallery rows score strictly above it (`r_q(x)` is the same along a query's row
//!   and changes no rank). Rank 1 is a hit, ties going to the truth, exactly as in
//!   [`super::retrieval`]; a shard writes its hit counts, and merge 2 sums them.
//!
//! Memory is `O((n_q + n_g)·k)` for the lists plus one query block, one gallery chunk and one tile
//! per thread ([`CslsPlan::memory`]); a shard holds `n_g·k` gallery lists and its own queries' lists.
//! With [`Synthetic`] rows nothing of the inputs is resident beyond those blocks: each gallery chunk
//! is regenerated from the seed for every query block. A generated row costs about `2·dim²` flops
//! (its rotation) against `2·dim` per query of the block for the product, so regenerating adds about
//! `dim / query block` to the product's cost: 12 % for 2,500-query shards at d = 300, 2 % for the
//! default 16,384-query blocks.

use crate::shard::Shard;
use crate::HostError;
use commute_align::metrics::blocked::{
    count_above, normalized_rows, par_ranges, top_k_sweep, Blocks, TopKSweep,
};
use commute_align::metrics::topk::TopK;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Rows generated per seeded block of [`Synthetic`]: row i depends only on the seed and `i / 256`.
pub const SYNTHETIC_BLOCK: usize = 256;

/// Which side of the comparison rows belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The queries (rows x).
    Queries,
    /// The gallery (rows y).
    Gallery,
}

/// Parameters of a [`Synthetic`] data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Number of queries (query i's partner is gallery row i).
    pub queries: usize,
    /// Number of gallery rows (at least `queries`; rows past the queries are distractors).
    pub gallery: usize,
    /// Width of every row.
    pub dim: usize,
    /// Noise level σ: the cosine of a true pair is about `1 / √(1 + σ²)`.
    pub noise: f32,
    /// Seed of every random draw.
    pub seed: u64,
}

/// Synthetic query and gallery rows, generated block by block from a seed.
///
/// With `x_i` and `n_i` vectors of independent uniform entries of unit variance (ChaCha8, streams
/// `2b` and `2b + 1` for block `b` of [`SYNTHETIC_BLOCK`] rows) and `Q` a random orthogonal
/// `dim × dim` matrix (Gram–Schmidt on Gaussian entries, stream `u64::MAX`):
/// query i is `x_i·Q` and gallery row i is `(x_i + σ n_i)·Q`, each L2-normalised. The rotation makes
/// the coordinates (sums of many uniforms) close to Gaussian at the cost of one small product per
/// block; it acts on both sides, as if the queries had already been mapped into the gallery's space
/// — a rotation between the two sides alone would leave cosine retrieval at chance.
#[derive(Debug, Clone)]
pub struct Synthetic {
    spec: SyntheticSpec,
    rotation: Mat<f32>,
}

impl Synthetic {
    /// The data set `spec` describes; an error when its sizes or noise make no sense.
    pub fn new(spec: SyntheticSpec) -> Result<Self, HostError> {
        if spec.dim == 0 || spec.queries == 0 {
            return Err(HostError::Usage(
                "synthetic CSLS data needs at least one query and one column".into(),
            ));
        }
        if spec.gallery < spec.queries {
            return Err(HostError::Usage(format!(
                "the gallery ({}) must have at least as many rows as the queries ({}): query i's partner is gallery row i",
                spec.gallery, spec.queries
            )));
        }
        check_index_range(spec.gallery)?;
        if !(spec.noise.is_finite() && spec.noise >= 0.0) {
            return Err(HostError::Usage(format!(
                "noise must be finite and not negative, not {}",
                spec.noise
            )));
        }
        Ok(Self { spec, rotation: random_rotation(spec.seed, spec.dim) })
    }

    /// The parameters.
    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// Rows `range` of `side`, not normalised (as a caller would pass them to [`super::retrieval`]).
    pub fn raw_rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        self.collect(side, range, false)
    }

    /// Rows `range` of `side`, L2-normalised exactly as [`super::normalized_rows`] does.
    pub fn rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        self.collect(side, range, true)
    }

    fn collect(&self, side: Side, range: Range<usize>, normalise: bool) -> Mat<f32> {
        let d = self.spec.dim;
        let first = range.start / SYNTHETIC_BLOCK;
        let last = range.end.div_ceil(SYNTHETIC_BLOCK);
        // Each thread generates whole blocks and keeps the rows of `range` among them.
        let parts = par_ranges(last.saturating_sub(first), 1, &|blocks: Range<usize>| {
            let lo = ((first + blocks.start) * SYNTHETIC_BLOCK).max(range.start);
            let hi = ((first + blocks.end) * SYNTHETIC_BLOCK).min(range.end);
            let mut part = Mat::<f32>::zeros(hi.saturating_sub(lo), d);
            for b in blocks {
                let b = first + b;
                let mut block = self.raw_block(side, b);
                if normalise {
                    normalise_rows_in_place(&mut block);
                }
                let (from, to) = ((b * SYNTHETIC_BLOCK).max(lo), ((b + 1) * SYNTHETIC_BLOCK).min(hi));
                part.as_mut()
                    .subrows_mut(from - lo, to - from)
                    .copy_from(block.as_ref().subrows(from - b * SYNTHETIC_BLOCK, to - from));
            }
            part
        });
        if parts.len() == 1 {
            return parts.into_iter().next().unwrap_or_else(|| Mat::zeros(0, d));
        }
        let mut out = Mat::<f32>::zeros(range.len(), d);
        let mut at = 0;
        for part in &parts {
            out.as_mut().subrows_mut(at, part.nrows()).copy_from(part.as_ref());
            at += part.nrows();
        }
        out
    }

    /// The raw rows of generation block `b` of `side` (all [`SYNTHETIC_BLOCK`] of them): the block's
    /// uniforms fill `x` (and `n`) in column-major order.
    fn raw_block(&self, side: Side, b: usize) -> Mat<f32> {
        let d = self.spec.dim;
        let mut bits = vec![0u32; SYNTHETIC_BLOCK * d];
        stream(self.spec.seed, 2 * b as u64).fill(&mut bits[..]);
        let mut e: Vec<f32> = bits.iter().map(|&r| uniform(r)).collect();
        if side == Side::Gallery && self.spec.noise > 0.0 {
            stream(self.spec.seed, 2 * b as u64 + 1).fill(&mut bits[..]);
            let noise = self.spec.noise;
            e.iter_mut().zip(&bits).for_each(|(x, &r)| *x += noise * uniform(r));
        }
        let e = MatRef::from_column_major_slice(&e, SYNTHETIC_BLOCK, d);
        let mut out = Mat::<f32>::zeros(SYNTHETIC_BLOCK, d);
        matmul(out.as_mut(), Accum::Replace, e, self.rotation.as_ref(), 1.0f32, Par::Seq);
        out
    }
}

/// Scales every row of `m` to unit L2 norm with exactly the arithmetic of [`normalized_rows`]
/// (squares summed in f64 in column order, one f32 scale per row), in place.
fn normalise_rows_in_place(m: &mut Mat<f32>) {
    let mut norms = vec![0.0f64; m.nrows()];
    for j in 0..m.ncols() {
        for (n, &v) in norms.iter_mut().zip(m.col_as_slice(j)) {
            let v = f64::from(v);
            *n += v * v;
        }
    }
    let scale: Vec<f32> =
        norms.iter().map(|&n| if n > 0.0 { (1.0 / n.sqrt()) as f32 } else { 0.0 }).collect();
    for j in 0..m.ncols() {
        for (v, &s) in m.col_as_slice_mut(j).iter_mut().zip(&scale) {
            *v *= s;
        }
    }
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Uniform on (−√3, √3) from 24 random bits: zero mean, unit variance.
#[inline]
fn uniform(bits: u32) -> f32 {
    const SCALE: f32 = 2.0 * 1.732_050_8 / (1u32 << 24) as f32;
    ((bits >> 8) as f32 + 0.5) * SCALE - 1.732_050_8
}

/// A random `d × d` orthogonal matrix: modified Gram–Schmidt, in f64, on Gaussian columns.
fn random_rotation(seed: u64, d: usize) -> Mat<f32> {
    let mut rng = stream(seed, u64::MAX);
    let mut gaussian = move || {
        let u: f64 = rng.random::<f64>().max(1e-300);
        let v: f64 = rng.random();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(d);
    while q.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| gaussian()).collect();
        for u in &q {
            let p: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-6 {
            v.iter_mut().for_each(|x| *x /= n);
            q.push(v);
        }
    }
    Mat::from_fn(d, d, |i, j| q[j][i] as f32)
}

fn check_index_range(n: usize) -> Result<(), HostError> {
    if n > u32::MAX as usize {
        Err(HostError::Usage(format!("{n} rows: at most {} rows per side", u32::MAX)))
    } else {
        Ok(())
    }
}

/// Where the rows of a large CSLS comparison come from.
#[derive(Debug, Clone)]
pub enum CslsInput {
    /// Matrices held in memory (L2-normalised copies).
    Matrices {
        /// Normalised queries.
        queries: Mat<f32>,
        /// Normalised gallery.
        gallery: Mat<f32>,
    },
    /// Rows generated from a seed as they are needed.
    Synthetic(Synthetic),
}

impl CslsInput {
    /// Queries and gallery from matrices (one item per row; rows normalised inside); query i's
    /// partner is gallery row i, so the gallery needs at least as many rows as the queries.
    pub fn from_matrices(queries: MatRef<'_, f32>, gallery: MatRef<'_, f32>) -> Result<Self, HostError> {
        if queries.ncols() != gallery.ncols() {
            return Err(HostError::Usage(format!(
                "csls: width mismatch, {} columns vs {} columns",
                queries.ncols(),
                gallery.ncols()
            )));
        }
        if gallery.nrows() < queries.nrows() {
            return Err(HostError::Usage(format!(
                "csls: {} queries but {} gallery rows; query i's partner is gallery row i",
                queries.nrows(),
                gallery.nrows()
            )));
        }
        check_index_range(gallery.nrows())?;
        Ok(Self::Matrices { queries: normalized_rows(queries), gallery: normalized_rows(gallery) })
    }

    /// Number of queries.
    pub fn queries(&self) -> usize {
        match self {
            Self::Matrices { queries, .. } => queries.nrows(),
            Self::Synthetic(s) => s.spec.queries,
        }
    }

    /// Number of gallery rows.
    pub fn gallery(&self) -> usize {
        match self {
            Self::Matrices { gallery, .. } => gallery.nrows(),
            Self::Synthetic(s) => s.spec.gallery,
        }
    }

    /// Width of the rows.
    pub fn dim(&self) -> usize {
        match self {
            Self::Matrices { queries, .. } => queries.ncols(),
            Self::Synthetic(s) => s.spec.dim,
        }
    }

    /// What the rows are, in words (recorded in state files, so that shards of different data
    /// never merge).
    pub fn describe(&self) -> String {
        match self {
            Self::Matrices { .. } => "matrices".to_owned(),
            Self::Synthetic(s) => {
                format!(
                    "synthetic(seed = {}, noise = {}, block = {SYNTHETIC_BLOCK})",
                    s.spec.seed, s.spec.noise
                )
            }
        }
    }

    /// Normalised rows `range` of `side`.
    pub fn rows(&self, side: Side, range: Range<usize>) -> Mat<f32> {
        match (self, side) {
            (Self::Matrices { queries, .. }, Side::Queries) => {
                queries.as_ref().subrows(range.start, range.len()).to_owned()
            }
            (Self::Matrices { gallery, .. }, Side::Gallery) => {
                gallery.as_ref().subrows(range.start, range.len()).to_owned()
            }
            (Self::Synthetic(s), side) => s.rows(side, range),
        }
    }

    /// The job these rows make with `plan` (what state files record).
    pub fn job(&self, plan: &CslsPlan) -> Job {
        Job {
            input: self.describe(),
            queries: self.queries(),
            gallery: self.gallery(),
            dim: self.dim(),
            k: plan.k.max(1),
        }
    }
}

/// Tuning of the blocked passes; the results do not depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CslsPlan {
    /// Neighbourhood size of the hubness radii (10 in the literature).
    pub k: usize,
    /// Tiles of the similarity sweeps.
    pub blocks: Blocks,
    /// Queries held at a time; every query block streams the whole gallery once per pass.
    pub query_block: usize,
    /// Gallery rows held (or generated) at a time.
    pub gallery_chunk: usize,
}

impl Default for CslsPlan {
    /// k = 10, default tiles, 16384-row query blocks and gallery chunks (19 MiB each at d = 300).
    fn default() -> Self {
        Self { k: 10, blocks: Blocks::default(), query_block: 16_384, gallery_chunk: 16_384 }
    }
}

/// Which step of the computation a memory estimate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Both passes in one process.
    Whole,
    /// Pass 1 of one shard.
    Pass1,
    /// Merging the pass-1 shards into the radii.
    Merge1,
    /// Pass 2 of one shard.
    Pass2,
    /// Summing the pass-2 hit counts.
    Merge2,
}

/// The memory a step plans for, in bytes, besides the program itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MemoryPlan {
    /// Row buffers: a query block (and its truth rows), a gallery chunk, generation blocks.
    pub rows: u64,
    /// Similarity tiles, one per thread.
    pub tiles: u64,
    /// Top-k lists of a sweep over one query block × gallery chunk (per thread, and merged).
    pub sweep: u64,
    /// State kept across the whole step: top-k lists, radii.
    pub state: u64,
}

impl MemoryPlan {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.rows + self.tiles + self.sweep + self.state
    }
}

/// Bytes of `n` top-k lists of capacity k: scores, indices, lengths and thresholds.
fn list_bytes(n: usize, k: usize) -> u64 {
    n as u64 * (8 * k as u64 + 8)
}

impl CslsPlan {
    /// The memory `step` plans for on `input`, for a shard of `shard_queries` queries, with
    /// `threads` threads.
    pub fn memory(&self, input: &CslsInput, step: Step, shard_queries: usize, threads: usize) -> MemoryPlan {
        let (n_q, n_g, d, k) = (input.queries(), input.gallery(), input.dim() as u64, self.k.max(1));
        let threads = threads.max(1) as u64;
        let qb = self.query_block.max(1).min(shard_queries.max(1));
        let gc = self.gallery_chunk.max(1).min(n_g);
        let generated = match input {
            CslsInput::Synthetic(_) => 3 * threads * SYNTHETIC_BLOCK as u64 * d * 4 + gc as u64 * d * 4,
            CslsInput::Matrices { .. } => 0,
        };
        let rows = 4 * d * (2 * qb as u64 + gc as u64) + generated;
        let tiles = threads * 4 * self.blocks.rows.min(qb) as u64 * self.blocks.cols.min(gc) as u64;
        let sweep = (threads + 1) * (list_bytes(qb, k) + list_bytes(gc, k));
        let resident = match input {
            CslsInput::Matrices { .. } => 4 * d * (n_q + n_g) as u64,
            CslsInput::Synthetic(_) => 0,
        };
        match step {
            Step::Whole => MemoryPlan {
                rows,
                tiles,
                sweep,
                state: resident + list_bytes(n_q + n_g, k) + 4 * (n_q + 2 * n_g) as u64,
            },
            Step::Pass1 => MemoryPlan {
                rows,
                tiles,
                sweep,
                state: resident + list_bytes(shard_queries + n_g, k) + 4 * shard_queries as u64,
            },
            Step::Merge1 => MemoryPlan {
                rows: 4 * READ_FLOATS as u64,
                tiles: 0,
                sweep: 0,
                state: list_bytes(n_g, k) + 4 * (n_q + n_g) as u64,
            },
            Step::Pass2 => MemoryPlan { rows, tiles, sweep: 0, state: resident + 4 * (n_q + n_g) as u64 },
            Step::Merge2 => MemoryPlan::default(),
        }
    }
}

/// The contiguous pieces of `range`, `size` items each (the last may be shorter).
fn pieces(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    range.clone().step_by(size).map(move |s| s..(s + size).min(range.end))
}

/// Offers every entry of `src`'s list `j` to `dst`'s list `i`, with indices shifted by `offset`.
fn merge_shifted(dst: &mut TopK, i: usize, src: &TopK, j: usize, offset: usize) {
    let (vals, idx) = src.entries(j);
    for (&v, &x) in vals.iter().zip(idx) {
        dst.push(i, v, x as usize + offset);
    }
}

/// What pass 1 leaves for one query range.
#[derive(Debug, Clone)]
pub struct Pass1 {
    /// The query range.
    pub queries: Range<usize>,
    /// `r_q` of each query of the range.
    pub r_query: Vec<f32>,
    /// Each gallery row's k best cosines to the queries of the range.
    near_queries: TopK,
}

/// Pass 1 over the queries `queries`: their radii `r_q`, and every gallery row's k nearest queries
/// among them. `progress` is called with the number of gallery rows done after each chunk.
pub fn pass1(
    input: &CslsInput,
    plan: &CslsPlan,
    queries: Range<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Pass1, HostError> {
    check_range(input, &queries)?;
    let k = plan.k.max(1);
    let n_g = input.gallery();
    let mut near_gallery = TopK::new(queries.len(), k);
    let mut near_queries = TopK::new(n_g, k);
    let spec = TopKSweep {
        row_k: k,
        col_k: k,
        alpha: 1.0,
        row_penalty: None,
        col_penalty: None,
        skip_diagonal: false,
    };
    for qb in pieces(queries.clone(), plan.query_block) {
        let q = input.rows(Side::Queries, qb.clone());
        for gc in pieces(0..n_g, plan.gallery_chunk) {
            let g = input.rows(Side::Gallery, gc.clone());
            let (rows, cols) = top_k_sweep(q.as_ref(), g.as_ref(), spec, plan.blocks);
            for i in 0..qb.len() {
                merge_shifted(&mut near_gallery, qb.start - queries.start + i, &rows, i, gc.start);
            }
            for j in 0..gc.len() {
                merge_shifted(&mut near_queries, gc.start + j, &cols, j, qb.start);
            }
            progress(gc.len() as u64);
        }
    }
    let r_query = (0..queries.len()).map(|i| near_gallery.mean(i)).collect();
    Ok(Pass1 { queries, r_query, near_queries })
}

fn check_range(input: &CslsInput, queries: &Range<usize>) -> Result<(), HostError> {
    if queries.start > queries.end || queries.end > input.queries() {
        Err(HostError::Usage(format!(
            "query range {}..{} is outside the {} queries",
            queries.start,
            queries.end,
            input.queries()
        )))
    } else {
        Ok(())
    }
}

/// The hubness radii of every query and gallery row.
#[derive(Debug, Clone, PartialEq)]
pub struct Radii {
    /// `r_q`: mean cosine of each query to its k nearest gallery rows.
    pub r_query: Vec<f32>,
    /// `r_g`: mean cosine of each gallery row to its k nearest queries.
    pub r_gallery: Vec<f32>,
    /// Whether every query range contributed (false only for a deliberately partial merge).
    pub complete: bool,
}

impl Radii {
    /// Mean of `r_q` over the queries, in f64 (see [`mean_radius`]).
    pub fn mean_query(&self) -> f64 {
        mean_radius(&self.r_query)
    }

    /// Mean of `r_g` over the gallery, in f64 (see [`mean_radius`]).
    pub fn mean_gallery(&self) -> f64 {
        mean_radius(&self.r_gallery)
    }
}

/// Mean of the known radii in `v`, in f64: a partial merge leaves the missing shards' queries
/// without one (NaN), and they are skipped. NaN when none is known.
pub fn mean_radius(v: &[f32]) -> f64 {
    let (sum, n) =
        v.iter().filter(|x| !x.is_nan()).fold((0.0f64, 0usize), |(s, n), &x| (s + f64::from(x), n + 1));
    sum / n as f64
}

/// Merge 1: combines pass-1 results of disjoint query ranges into the radii.
#[derive(Debug)]
pub struct RadiiMerger {
    queries: usize,
    near_queries: TopK,
    r_query: Vec<f32>,
    covered: Vec<Range<usize>>,
}

impl RadiiMerger {
    /// An empty merge for `queries` queries, `gallery` rows and neighbourhood size `k`.
    pub fn new(queries: usize, gallery: usize, k: usize) -> Self {
        Self {
            queries,
            near_queries: TopK::new(gallery, k.max(1)),
            r_query: vec![f32::NAN; queries],
            covered: Vec::new(),
        }
    }

    /// Adds one query range's pass-1 result.
    pub fn add(&mut self, part: &Pass1) -> Result<(), HostError> {
        self.claim(part.queries.clone())?;
        self.r_query[part.queries.clone()].copy_from_slice(&part.r_query);
        for j in 0..self.near_queries.list_count() {
            self.near_queries.merge_list(j, &part.near_queries, j);
        }
        Ok(())
    }

    fn claim(&mut self, range: Range<usize>) -> Result<(), HostError> {
        if range.end > self.queries || range.start > range.end {
            return Err(HostError::Usage(format!(
                "query range {}..{} is outside the {} queries",
                range.start, range.end, self.queries
            )));
        }
        if let Some(c) = self.covered.iter().find(|c| c.start < range.end && range.start < c.end) {
            return Err(HostError::Usage(format!(
                "query ranges {}..{} and {}..{} overlap: the same shard merged twice?",
                c.start, c.end, range.start, range.end
            )));
        }
        self.covered.push(range);
        Ok(())
    }

    /// Queries not yet covered by any added range.
    pub fn missing(&self) -> usize {
        self.queries - self.covered.iter().map(|r| r.len()).sum::<usize>()
    }

    /// The radii; an error when queries are missing, unless `allow_incomplete` (then the radii
    /// are those of the queries seen, and marked incomplete).
    pub fn finish(self, allow_incomplete: bool) -> Result<Radii, HostError> {
        let missing = self.missing();
        if missing > 0 && !allow_incomplete {
            return Err(HostError::Usage(format!(
                "{missing} of {} queries are in no merged shard: run the missing pass-1 shards first",
                self.queries
            )));
        }
        let r_gallery = (0..self.near_queries.list_count()).map(|j| self.near_queries.mean(j)).collect();
        Ok(Radii { r_query: self.r_query, r_gallery, complete: missing == 0 })
    }
}

/// Hit counts of pass 2 over some queries.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Hits {
    /// Queries counted.
    pub queries: u64,
    /// Queries whose partner ranks first under CSLS.
    pub at_1: u64,
    /// Queries whose partner ranks in the top 5.
    pub at_5: u64,
    /// Queries whose partner ranks in the top 10.
    pub at_10: u64,
    /// Sum of the reciprocal ranks (summed in query order within a shard).
    pub reciprocal_rank_sum: f64,
}

impl Hits {
    fn record(&mut self, rank: u64) {
        self.queries += 1;
        self.at_1 += u64::from(rank <= 1);
        self.at_5 += u64::from(rank <= 5);
        self.at_10 += u64::from(rank <= 10);
        self.reciprocal_rank_sum += 1.0 / rank as f64;
    }

    /// Adds another range's counts.
    pub fn add(&mut self, other: &Hits) {
        self.queries += other.queries;
        self.at_1 += other.at_1;
        self.at_5 += other.at_5;
        self.at_10 += other.at_10;
        self.reciprocal_rank_sum += other.reciprocal_rank_sum;
    }

    /// Share of queries whose partner ranks first.
    pub fn p_at_1(&self) -> f64 {
        self.at_1 as f64 / self.queries as f64
    }

    /// Share of queries whose partner ranks in the top 5.
    pub fn p_at_5(&self) -> f64 {
        self.at_5 as f64 / self.queries as f64
    }

    /// Share of queries whose partner ranks in the top 10.
    pub fn p_at_10(&self) -> f64 {
        self.at_10 as f64 / self.queries as f64
    }

    /// Mean reciprocal rank.
    pub fn mrr(&self) -> f64 {
        self.reciprocal_rank_sum / self.queries as f64
    }
}

/// Pass 2 over the queries `queries`, given every gallery row's radius: the rank of each query's
/// partner under CSLS, counted into [`Hits`]. `progress` as for [`pass1`].
pub fn pass2(
    input: &CslsInput,
    plan: &CslsPlan,
    queries: Range<usize>,
    r_gallery: &[f32],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hits, HostError> {
    check_range(input, &queries)?;
    let n_g = input.gallery();
    if r_gallery.len() != n_g {
        return Err(HostError::Usage(format!(
            "{} gallery radii for {n_g} gallery rows: the radii belong to another job",
            r_gallery.len()
        )));
    }
    let mut hits = Hits::default();
    for qb in pieces(queries, plan.query_block) {
        let q = input.rows(Side::Queries, qb.clone());
        let partners = input.rows(Side::Gallery, qb.clone());
        let targets: Vec<f32> = (0..qb.len())
            .map(|i| 2.0 * dot(q.as_ref(), i, partners.as_ref(), i) - r_gallery[qb.start + i])
            .collect();
        drop(partners);
        let mut above = vec![0u64; qb.len()];
        for gc in pieces(0..n_g, plan.gallery_chunk) {
            let g = input.rows(Side::Gallery, gc.clone());
            let excluded: Vec<Option<usize>> =
                qb.clone().map(|t| gc.contains(&t).then(|| t - gc.start)).collect();
            let counts = count_above(
                q.as_ref(),
                g.as_ref(),
                2.0,
                Some(&r_gallery[gc.clone()]),
                &targets,
                &excluded,
                plan.blocks,
            );
            above.iter_mut().zip(counts).for_each(|(a, c)| *a += c);
            progress(gc.len() as u64);
        }
        above.into_iter().for_each(|c| hits.record(c + 1));
    }
    Ok(hits)
}

/// Dot product of row `i` of `a` and row `j` of `b`, accumulated in f64 (as [`super::retrieval`]
/// scores the truth).
fn dot(a: MatRef<'_, f32>, i: usize, b: MatRef<'_, f32>, j: usize) -> f32 {
    (0..a.ncols()).map(|c| f64::from(a[(i, c)]) * f64::from(b[(j, c)])).sum::<f64>() as f32
}

/// Both passes over all queries in one process.
#[derive(Debug, Clone, PartialEq)]
pub struct CslsLarge {
    /// Hit counts over all queries.
    pub hits: Hits,
    /// The radii of both sides.
    pub radii: Radii,
}

/// CSLS retrieval of every query in one process, in bounded memory (see the module docs).
/// `progress` gets gallery rows done (the whole job is `2 · ⌈n_q / query_block⌉ · n_g`).
pub fn csls_large(
    input: &CslsInput,
    plan: &CslsPlan,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<CslsLarge, HostError> {
    let all = 0..input.queries();
    // One part: its gallery lists are the merged lists (a merge would copy them into equal ones).
    let Pass1 { r_query, near_queries, .. } = pass1(input, plan, all.clone(), progress)?;
    let r_gallery = (0..input.gallery()).map(|j| near_queries.mean(j)).collect();
    drop(near_queries);
    let radii = Radii { r_query, r_gallery, complete: true };
    let hits = pass2(input, plan, all, &radii.r_gallery, progress)?;
    Ok(CslsLarge { hits, radii })
}

/// What a state file belongs to: shards of different jobs never merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The rows, in words ([`CslsInput::describe`]).
    pub input: String,
    /// Number of queries.
    pub queries: usize,
    /// Number of gallery rows.
    pub gallery: usize,
    /// Width of the rows.
    pub dim: usize,
    /// Neighbourhood size.
    pub k: usize,
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} queries × {} gallery, d = {}, k = {}, {}",
            self.queries, self.gallery, self.dim, self.k, self.input
        )
    }
}

const FORMAT: &str = "commute-csls-state";
const VERSION: u32 = 1;
/// Floats read at a time from a state file.
const READ_FLOATS: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Pass1,
    Radii,
    Pass2,
}

/// The first line of every state file (JSON); a body of little-endian f32 may follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    kind: Kind,
    job: Job,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<Shard>,
    /// The query range (pass 1, pass 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queries: Option<Range<usize>>,
    /// Whether the radii used (or made) came from every query.
    complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hits: Option<Hits>,
}

impl Header {
    fn new(kind: Kind, job: &Job) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            kind,
            job: job.clone(),
            shard: None,
            queries: None,
            complete: true,
            hits: None,
        }
    }

    /// Floats in the body.
    fn body_len(&self) -> usize {
        let range = self.queries.as_ref().map_or(0, |r| r.len());
        match self.kind {
            Kind::Pass1 => range + self.job.gallery * self.job.k,
            Kind::Radii => self.job.queries + self.job.gallery,
            Kind::Pass2 => 0,
        }
    }
}

/// The file of shard `shard`'s pass-1 state in `dir`.
pub fn pass1_path(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(format!("csls-pass1-{}-of-{}.bin", shard.index(), shard.count()))
}

/// The file of the merged radii in `dir`.
pub fn radii_path(dir: &Path) -> PathBuf {
    dir.join("csls-radii.bin")
}

/// The file of shard `shard`'s pass-2 hit counts in `dir`.
pub fn pass2_path(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(format!("csls-pass2-{}-of-{}.json", shard.index(), shard.count()))
}

/// Writes a state file atomically, so that a reader (a merge) never sees a partial one.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), HostError> {
    commute_sdk::atomic::write_with(path, write).map_err(|e| HostError::write("write CSLS state", path, e))
}

fn write_header(out: &mut impl std::io::Write, header: &Header) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")
}

fn write_floats(out: &mut impl std::io::Write, values: &[f32]) -> std::io::Result<()> {
    for chunk in values.chunks(READ_FLOATS) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// Writes shard `shard`'s pass-1 state for `job` into `dir`: its queries' `r_q`, then each gallery
/// row's k best scores (descending, padded with −∞). Returns the file written.
pub fn write_pass1(dir: &Path, job: &Job, shard: Shard, part: &Pass1) -> Result<PathBuf, HostError> {
    if part.queries != shard.range(job.queries) || part.near_queries.list_count() != job.gallery {
        return Err(HostError::Usage(format!("pass-1 state does not match shard {shard} of the job")));
    }
    let mut header = Header::new(Kind::Pass1, job);
    header.shard = Some(shard);
    header.queries = Some(part.queries.clone());
    let path = pass1_path(dir, shard);
    let k = job.k;
    write_atomically(&path, |out| {
        write_header(out, &header)?;
        write_floats(out, &part.r_query)?;
        let mut list = vec![f32::NEG_INFINITY; k];
        let mut buf = Vec::with_capacity(READ_FLOATS * 4);
        for j in 0..job.gallery {
            let (vals, _) = part.near_queries.entries(j);
            list.fill(f32::NEG_INFINITY);
            list[..vals.len()].copy_from_slice(vals);
            list.sort_by(|a, b| b.total_cmp(a));
            buf.extend(list.iter().flat_map(|v| v.to_le_bytes()));
            if buf.len() >= READ_FLOATS * 4 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    })?;
    Ok(path)
}

/// An open state file: its header, and a reader positioned at its body (whose size is checked).
struct StateFile {
    path: PathBuf,
    header: Header,
    body: BufReader<File>,
}

fn open_state(path: &Path, kind: Kind, job: &Job) -> Result<StateFile, HostError> {
    let file = File::open(path).map_err(|e| HostError::io(path, e))?;
    let size = file.metadata().map_err(|e| HostError::io(path, e))?.len();
    let mut body = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    (&mut body).take(1 << 20).read_until(b'\n', &mut line).map_err(|e| HostError::io(path, e))?;
    if line.last() != Some(&b'\n') {
        return Err(HostError::format(path, "not a CSLS state file (no header line)"));
    }
    let header: Header = serde_json::from_slice(&line)
        .map_err(|e| HostError::format(path, format!("not a CSLS state file: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(HostError::format(
            path,
            format!(
                "state format {} version {}, expected {FORMAT} version {VERSION}",
                header.format, header.version
            ),
        ));
    }
    if header.kind != kind {
        return Err(HostError::format(
            path,
            format!("a {:?} state file where {kind:?} was expected", header.kind),
        ));
    }
    if &header.job != job {
        return Err(HostError::format(
            path,
            format!("belongs to another job ({}), not this one ({job})", header.job),
        ));
    }
    let expected = line.len() as u64 + 4 * header.body_len() as u64;
    if size != expected {
        return Err(HostError::format(
            path,
            format!("{size} bytes where its header promises {expected}: truncated or damaged"),
        ));
    }
    Ok(StateFile { path: path.to_owned(), header, body })
}

impl StateFile {
    /// Reads `n` floats of the body, `READ_FLOATS` at a time, handing each piece to `f`.
    fn floats(&mut self, n: usize, mut f: impl FnMut(&[f32])) -> Result<(), HostError> {
        let mut bytes = vec![0u8; 4 * READ_FLOATS.min(n)];
        let mut vals = Vec::with_capacity(READ_FLOATS.min(n));
        let mut left = n;
        while left > 0 {
            let m = left.min(READ_FLOATS);
            self.body.read_exact(&mut bytes[..4 * m]).map_err(|e| HostError::io(&self.path, e))?;
            vals.clear();
            vals.extend(bytes[..4 * m].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            f(&vals);
            left -= m;
        }
        Ok(())
    }
}

/// The state files of `kind` in `dir` (by name), sorted.
fn state_files(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>, HostError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| HostError::io(dir, e))? {
        let entry = entry.map_err(|e| HostError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str() {
            if name.starts_with(prefix) && name.ends_with(suffix) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What a merge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// Shard files merged.
    pub files: usize,
    /// Shards in the job (N of `I/N`).
    pub shards: usize,
    /// Whether every shard was there (and, for merge 2, whether the radii were complete).
    pub complete: bool,
}

/// Checks one shard file's header against the others and returns its shard.
fn check_shard(
    file: &StateFile,
    job: &Job,
    shards: &mut Option<usize>,
    seen: &mut Vec<bool>,
) -> Result<Shard, HostError> {
    let bad = |m: String| Err(HostError::format(&file.path, m));
    let Some(shard) = file.header.shard else { return bad("no shard in the header".into()) };
    // A header's shard was checked as it was read (1 ≤ I ≤ N), like one from the command line.
    let (index, count) = (shard.index() as usize, shard.count() as usize);
    match *shards {
        None => {
            *shards = Some(count);
            *seen = vec![false; count];
        }
        Some(n) if n != count => {
            return bad(format!(
                "shard {shard} of a {count}-shard split, but other files are of a {n}-shard split"
            ))
        }
        Some(_) => {}
    }
    if file.header.queries.as_ref() != Some(&shard.range(job.queries)) {
        return bad(format!("its query range is not shard {shard}'s"));
    }
    if std::mem::replace(&mut seen[index - 1], true) {
        return bad(format!("shard {shard} appears twice"));
    }
    Ok(shard)
}

fn missing_shards(seen: &[bool]) -> String {
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, &s)| !s).map(|(i, _)| (i + 1).to_string()).collect();
    let shown = missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    if missing.len() > 10 {
        format!("{shown}, … ({} in all)", missing.len())
    } else {
        shown
    }
}

/// Merge 1: reads every pass-1 state file of `job` in `dir`, merges them into the radii and writes
/// them to [`radii_path`]. An error when a shard is missing, unless `allow_incomplete` (the radii are
/// then marked incomplete, and so is every result computed from them).
pub fn merge_pass1_files(
    dir: &Path,
    job: &Job,
    allow_incomplete: bool,
) -> Result<(Radii, MergeReport), HostError> {
    let files = state_files(dir, "csls-pass1-", ".bin")?;
    if files.is_empty() {
        return Err(HostError::Usage(format!(
            "no pass-1 state files (csls-pass1-*.bin) in {}",
            dir.display()
        )));
    }
    let mut merger = RadiiMerger::new(job.queries, job.gallery, job.k);
    let (mut shards, mut seen) = (None, Vec::new());
    let k = job.k;
    for path in &files {
        let mut file = open_state(path, Kind::Pass1, job)?;
        let shard = check_shard(&file, job, &mut shards, &mut seen)?;
        let range = shard.range(job.queries);
        merger.claim(range.clone())?;
        let mut at = range.start;
        file.floats(range.len(), |v| {
            merger.r_query[at..at + v.len()].copy_from_slice(v);
            at += v.len();
        })?;
        let mut next = 0usize;
        let lists = &mut merger.near_queries;
        file.floats(job.gallery * k, |v| {
            for &x in v {
                lists.push(next / k, x, range.start);
                next += 1;
            }
        })?;
    }
    let count = shards.unwrap_or(0);
    let complete_shards = seen.iter().all(|&s| s);
    if !complete_shards && !allow_incomplete {
        return Err(HostError::Usage(format!(
            "pass-1 shards missing in {}: {} of {count}",
            dir.display(),
            missing_shards(&seen)
        )));
    }
    let radii = merger.finish(allow_incomplete)?;
    let mut header = Header::new(Kind::Radii, job);
    header.complete = radii.complete;
    write_atomically(&radii_path(dir), |out| {
        write_header(out, &header)?;
        write_floats(out, &radii.r_query)?;
        write_floats(out, &radii.r_gallery)
    })?;
    let report = MergeReport { files: files.len(), shards: count, complete: radii.complete };
    Ok((radii, report))
}

/// Reads the radii that merge 1 wrote into `dir` for `job`.
pub fn read_radii(dir: &Path, job: &Job) -> Result<Radii, HostError> {
    let mut file = open_state(&radii_path(dir), Kind::Radii, job)?;
    let mut r_query = Vec::with_capacity(job.queries);
    file.floats(job.queries, |v| r_query.extend_from_slice(v))?;
    let mut r_gallery = Vec::with_capacity(job.gallery);
    file.floats(job.gallery, |v| r_gallery.extend_from_slice(v))?;
    Ok(Radii { r_query, r_gallery, complete: file.header.complete })
}

/// Writes shard `shard`'s pass-2 hit counts for `job` into `dir`; `complete` says whether the
/// radii they used were. Returns the file written.
pub fn write_pass2(
    dir: &Path,
    job: &Job,
    shard: Shard,
    hits: &Hits,
    complete: bool,
) -> Result<PathBuf, HostError> {
    let mut header = Header::new(Kind::Pass2, job);
    header.shard = Some(shard);
    header.queries = Some(shard.range(job.queries));
    header.complete = complete;
    header.hits = Some(*hits);
    let path = pass2_path(dir, shard);
    write_atomically(&path, |out| write_header(out, &header))?;
    Ok(path)
}

/// Merge 2: sums the hit counts of every pass-2 state file of `job` in `dir` (summed in shard
/// order). An error when a shard is missing.
pub fn merge_pass2_files(dir: &Path, job: &Job) -> Result<(Hits, MergeReport), HostError> {
    let files = state_files(dir, "csls-pass2-", ".json")?;
    if files.is_empty() {
        return Err(HostError::Usage(format!(
            "no pass-2 state files (csls-pass2-*.json) in {}",
            dir.display()
        )));
    }
    let (mut shards, mut seen) = (None, Vec::new());
    let mut parts: Vec<(usize, Hits)> = Vec::new();
    let mut complete = true;
    for path in &files {
        let file = open_state(path, Kind::Pass2, job)?;
        let shard = check_shard(&file, job, &mut shards, &mut seen)?;
        let Some(hits) = file.header.hits else {
            return Err(HostError::format(path, "no hit counts in the header"));
        };
        if hits.queries != shard.range(job.queries).len() as u64 {
            return Err(HostError::format(
                path,
                "hit counts over another number of queries than the shard has",
            ));
        }
        complete &= file.header.complete;
        parts.push((shard.index() as usize, hits));
    }
    let count = shards.unwrap_or(0);
    if !seen.iter().all(|&s| s) {
        return Err(HostError::Usage(format!(
            "pass-2 shards missing in {}: {} of {count}",
            dir.display(),
            missing_shards(&seen)
        )));
    }
    parts.sort_by_key(|p| p.0);
    let mut total = Hits::default();
    parts.iter().for_each(|(_, h)| total.add(h));
    Ok((total, MergeReport { files: files.len(), shards: count, complete }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{csls_radii, retrieval, Scoring};

    const NONE: &(dyn Fn(u64) + Sync) = &|_| {};

    fn synthetic(n: usize, gallery: usize, noise: f32) -> Synthetic {
        Synthetic::new(SyntheticSpec { queries: n, gallery, dim: 300, noise, seed: 7 }).unwrap()
    }

    fn small_plan() -> CslsPlan {
        CslsPlan { k: 10, blocks: Blocks { rows: 64, cols: 300 }, query_block: 450, gallery_chunk: 700 }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn synthetic_rows_depend_only_on_seed_and_index() {
        let s = synthetic(600, 700, 1.0);
        let all = s.rows(Side::Gallery, 0..700);
        let part = s.rows(Side::Gallery, 255..513);
        for i in 0..258 {
            for j in 0..300 {
                assert_eq!(part[(i, j)].to_bits(), all[(255 + i, j)].to_bits());
            }
        }
        // Normalised exactly as the other metrics normalise.
        let raw = s.raw_rows(Side::Gallery, 0..700);
        assert_eq!(normalized_rows(raw.as_ref()), all);
        // Unit rows; true pairs at cosine ≈ 1/√(1 + σ²); other pairs near 0.
        let q = s.rows(Side::Queries, 0..600);
        let cos = |i: usize, j: usize| dot(q.as_ref(), i, all.as_ref(), j);
        assert!((dot(q.as_ref(), 5, q.as_ref(), 5) - 1.0).abs() < 1e-5);
        let truth: f64 = (0..600).map(|i| f64::from(cos(i, i))).sum::<f64>() / 600.0;
        let other: f64 = (0..600).map(|i| f64::from(cos(i, (i + 1) % 600))).sum::<f64>() / 600.0;
        assert!((truth - 1.0 / 2f64.sqrt()).abs() < 0.01, "{truth}");
        assert!(other.abs() < 0.01, "{other}");
        // Another seed, other rows.
        let t = Synthetic::new(SyntheticSpec { seed: 8, ..*s.spec() }).unwrap();
        assert_ne!(t.rows(Side::Queries, 0..1), s.rows(Side::Queries, 0..1));
    }

    #[test]
    fn the_rotation_is_orthogonal() {
        let q = random_rotation(3, 40);
        for a in 0..40 {
            for b in 0..40 {
                let p: f64 = (0..40).map(|i| f64::from(q[(i, a)]) * f64::from(q[(i, b)])).sum();
                assert!((p - f64::from(u8::from(a == b))).abs() < 1e-5);
            }
        }
    }

    /// The known answer: the exact, in-memory `retrieval` (CSLS, k = 10) and `csls_radii` on the
    /// same 3000 × 3000 rows; the blocked computation, whole and in 3 shards merged through state
    /// files, must agree exactly.
    #[test]
    fn shards_merged_through_files_equal_the_exact_retrieval() {
        let n = 3000;
        let s = synthetic(n, n, 4.5);
        let (raw_q, raw_g) = (s.raw_rows(Side::Queries, 0..n), s.raw_rows(Side::Gallery, 0..n));
        let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
        let exact = retrieval(raw_q.as_ref(), raw_g.as_ref(), &truth, Scoring::CSLS10).unwrap();
        assert!(exact.p_at_1 > 0.2 && exact.p_at_1 < 0.8, "P@1 = {} should be informative", exact.p_at_1);
        let (r_q, r_g) = csls_radii(raw_q.as_ref(), raw_g.as_ref(), 10, Blocks::default()).unwrap();

        let input = CslsInput::Synthetic(s.clone());
        let whole = csls_large(&input, &CslsPlan::default(), NONE).unwrap();
        assert_eq!(bits(&whole.radii.r_query), bits(&r_q));
        assert_eq!(bits(&whole.radii.r_gallery), bits(&r_g));
        let h = whole.hits;
        assert_eq!(
            (h.p_at_1(), h.p_at_5(), h.p_at_10(), h.mrr()),
            (exact.p_at_1, exact.p_at_5, exact.p_at_10, exact.mrr)
        );
        assert_eq!(h.queries, n as u64);

        // The same rows from memory, with other tiles and chunks.
        let from_memory = CslsInput::from_matrices(raw_q.as_ref(), raw_g.as_ref()).unwrap();
        assert_eq!(csls_large(&from_memory, &small_plan(), NONE).unwrap(), whole);

        // 3 shards of each pass, through files.
        let dir = tempfile::tempdir().unwrap();
        let plan = small_plan();
        let job = input.job(&plan);
        for i in [3, 1, 2] {
            let shard = Shard::new(i, 3).unwrap();
            let part = pass1(&input, &plan, shard.range(n), NONE).unwrap();
            write_pass1(dir.path(), &job, shard, &part).unwrap();
        }
        let (radii, report) = merge_pass1_files(dir.path(), &job, false).unwrap();
        assert_eq!(report, MergeReport { files: 3, shards: 3, complete: true });
        assert_eq!(radii, whole.radii);
        assert_eq!(read_radii(dir.path(), &job).unwrap(), whole.radii);
        for i in 1..=3 {
            let shard = Shard::new(i, 3).unwrap();
            let r = read_radii(dir.path(), &job).unwrap();
            let hits = pass2(&input, &plan, shard.range(n), &r.r_gallery, NONE).unwrap();
            write_pass2(dir.path(), &job, shard, &hits, r.complete).unwrap();
        }
        let (total, report) = merge_pass2_files(dir.path(), &job).unwrap();
        assert!(report.complete);
        assert_eq!(
            (total.queries, total.at_1, total.at_5, total.at_10),
            (h.queries, h.at_1, h.at_5, h.at_10)
        );
        assert_eq!(total.p_at_1(), exact.p_at_1);
        assert!((total.mrr() - exact.mrr).abs() < 1e-12);
    }

    #[test]
    fn uneven_shards_smaller_than_k_merge_exactly() {
        // 7 shards (some smaller than k) of 40 queries against 53 gallery rows, tiny tiles.
        let s = synthetic(40, 53, 10.0);
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan { k: 10, blocks: Blocks { rows: 3, cols: 5 }, query_block: 4, gallery_chunk: 9 };
        let whole = csls_large(&input, &CslsPlan::default(), NONE).unwrap();
        let mut merger = RadiiMerger::new(40, 53, 10);
        let mut hits = Hits::default();
        for i in (1..=7).rev() {
            let range = Shard::new(i, 7).unwrap().range(40);
            merger.add(&pass1(&input, &plan, range, NONE).unwrap()).unwrap();
        }
        let radii = merger.finish(false).unwrap();
        assert_eq!(radii, whole.radii);
        for i in 1..=7 {
            let range = Shard::new(i, 7).unwrap().range(40);
            hits.add(&pass2(&input, &plan, range, &radii.r_gallery, NONE).unwrap());
        }
        assert_eq!((hits.at_1, hits.at_5, hits.queries), (whole.hits.at_1, whole.hits.at_5, 40));
        assert!(whole.hits.at_1 < 40 && whole.hits.at_1 > 0, "{:?}", whole.hits);
    }

    #[test]
    fn merges_refuse_missing_foreign_and_damaged_shards() {
        let s = synthetic(30, 30, 1.0);
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan::default();
        let job = input.job(&plan);
        let dir = tempfile::tempdir().unwrap();
        let write = |i: u32| {
            let shard = Shard::new(i, 3).unwrap();
            let part = pass1(&input, &plan, shard.range(30), NONE).unwrap();
            write_pass1(dir.path(), &job, shard, &part).unwrap()
        };
        write(1);
        let last = write(3);
        let err = merge_pass1_files(dir.path(), &job, false).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains(": 2 of 3"), "{err}");
        let (partial, report) = merge_pass1_files(dir.path(), &job, true).unwrap();
        assert!(!partial.complete && !report.complete);
        assert!(!read_radii(dir.path(), &job).unwrap().complete);
        write(2);
        assert!(merge_pass1_files(dir.path(), &job, false).unwrap().0.complete);

        let other = Job { k: 5, ..job.clone() };
        let err = merge_pass1_files(dir.path(), &other, false).unwrap_err();
        assert!(matches!(err, HostError::Format { .. }) && err.to_string().contains("another job"), "{err}");

        let bytes = std::fs::read(&last).unwrap();
        std::fs::write(&last, &bytes[..bytes.len() - 4]).unwrap();
        let err = merge_pass1_files(dir.path(), &job, false).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&last, b"not json\n").unwrap();
        assert!(matches!(merge_pass1_files(dir.path(), &job, false), Err(HostError::Format { .. })));

        let empty = tempfile::tempdir().unwrap();
        assert!(merge_pass2_files(empty.path(), &job).unwrap_err().to_string().contains("no pass-2"));
    }

    #[test]
    fn the_mean_radius_skips_the_queries_a_partial_merge_left_without_one() {
        assert_eq!(mean_radius(&[0.25, f32::NAN, 0.75]), 0.5);
        assert_eq!(mean_radius(&[0.25, 0.75]), 0.5);
        assert!(mean_radius(&[f32::NAN]).is_nan() && mean_radius(&[]).is_nan());
    }

    #[test]
    fn impossible_synthetic_data_is_refused() {
        assert!(
            Synthetic::new(SyntheticSpec { queries: 5, gallery: 4, dim: 3, noise: 1.0, seed: 1 }).is_err()
        );
        assert!(Synthetic::new(SyntheticSpec { queries: 5, gallery: 5, dim: 3, noise: f32::NAN, seed: 1 })
            .is_err());
    }

    #[test]
    fn the_memory_plan_does_not_grow_with_the_product() {
        let s = Synthetic::new(SyntheticSpec {
            queries: 2_500_000,
            gallery: 2_500_000,
            dim: 300,
            noise: 3.0,
            seed: 1,
        })
        .unwrap();
        let input = CslsInput::Synthetic(s);
        let plan = CslsPlan::default();
        let whole = plan.memory(&input, Step::Whole, 2_500_000, 2);
        // Lists: 5M × (10 × 8 + 8) bytes = 440 MB, plus radii; everything else is tens of MB.
        assert!(whole.state > 440_000_000 && whole.state < 500_000_000, "{whole:?}");
        assert!(whole.total() < 600_000_000, "{whole:?}");
        let shard = plan.memory(&input, Step::Pass1, 2_500, 2);
        assert!(shard.total() < 300_000_000, "{shard:?}");
    }
}
