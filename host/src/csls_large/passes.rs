//! The two passes: pass 1 computes every row's top-k similarities (the CSLS radii), pass 2 counts
//! the hits; both stream the gallery in chunks within a memory plan, and split into shards by query
//! range.

use super::*;

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
pub(super) fn list_bytes(n: usize, k: usize) -> u64 {
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
pub(super) fn pieces(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    range.clone().step_by(size).map(move |s| s..(s + size).min(range.end))
}

/// Offers every entry of `src`'s list `j` to `dst`'s list `i`, with indices shifted by `offset`.
pub(super) fn merge_shifted(dst: &mut TopK, i: usize, src: &TopK, j: usize, offset: usize) {
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
    pub(super) near_queries: TopK,
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

pub(super) fn check_range(input: &CslsInput, queries: &Range<usize>) -> Result<(), HostError> {
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
    pub(super) queries: usize,
    pub(super) near_queries: TopK,
    pub(super) r_query: Vec<f32>,
    pub(super) covered: Vec<Range<usize>>,
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

    pub(super) fn claim(&mut self, range: Range<usize>) -> Result<(), HostError> {
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
    /// Queries whose partner ranks first under CSLS (expected count: ties broken at random).
    pub at_1: f64,
    /// Queries whose partner ranks in the top 5 (expected count).
    pub at_5: f64,
    /// Queries whose partner ranks in the top 10 (expected count).
    pub at_10: f64,
    /// Sum of the reciprocal ranks (summed in query order within a shard).
    pub reciprocal_rank_sum: f64,
}

impl Hits {
    pub(super) fn record(&mut self, rank: Rank) {
        self.queries += 1;
        self.at_1 += rank.p_within(1);
        self.at_5 += rank.p_within(5);
        self.at_10 += rank.p_within(10);
        self.reciprocal_rank_sum += rank.reciprocal();
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
        self.at_1 / self.queries as f64
    }

    /// Share of queries whose partner ranks in the top 5.
    pub fn p_at_5(&self) -> f64 {
        self.at_5 / self.queries as f64
    }

    /// Share of queries whose partner ranks in the top 10.
    pub fn p_at_10(&self) -> f64 {
        self.at_10 / self.queries as f64
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
        let mut above = vec![Rank::default(); qb.len()];
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
        above.into_iter().for_each(|c| hits.record(c));
    }
    Ok(hits)
}

/// Dot product of row `i` of `a` and row `j` of `b`, accumulated in f64 (as [`super::retrieval`]
/// scores the truth).
pub(super) fn dot(a: MatRef<'_, f32>, i: usize, b: MatRef<'_, f32>, j: usize) -> f32 {
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
