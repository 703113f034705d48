//! Retrieval metrics: P@1/5/10 and MRR of finding each query's true match in a gallery, scored by
//! cosine (nearest neighbour) or CSLS, in bounded memory.
//!
//! Ranks are exact and computed without sorting rows: the standing of the true match is the number
//! of gallery items scoring above it and the number tying with it (within
//! [`TIE_TOLERANCE`](super::blocked::TIE_TOLERANCE)). Ties are broken at random *in expectation*:
//! a truth tied with `t` others at `a` items below the top counts as each rank `a+1 … a+t+1` with
//! probability `1/(t+1)`. A map that sends every item to the same point (or to zero) therefore
//! scores chance, not a perfect hit for every query.
//!
//! - **NN**: one blocked pass over `queries · galleryᵀ` counts, per query, the items above the truth.
//! - **CSLS** (`2 cos(x, y) − r_S(x) − r_T(y)`, where r_T(y) is the mean cosine of gallery item y to its
//!   k nearest queries and r_S(x) that of query x to its k nearest gallery items): r_S(x) is the same
//!   for every item of a query's row, so it does not change ranks and is not needed. A first pass
//!   computes r_T for every gallery item (streaming top-k per gallery item) and keeps each query's
//!   `candidates` best items by cosine. Items outside that list score at most
//!   `2 m − min r_T` (m: the list's lowest cosine); when that cannot beat the truth, the rank follows
//!   from the list alone. The remaining queries (truth far down the ranking) get a second, counting
//!   pass restricted to their rows.

pub use super::blocked::Standing as Rank;
use super::blocked::{
    count_above, gather_rows, normalized_rows, top_k_sweep, Blocks, TopKSweep, TIE_TOLERANCE,
};
use super::MetricError;
use faer::MatRef;
use serde::Serialize;

/// How queries rank gallery items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Scoring {
    /// Cosine similarity (nearest neighbour).
    Nn,
    /// Cross-domain similarity local scaling with neighbourhood size `k` (10 in the literature).
    Csls {
        /// Neighbourhood size for the hubness penalties r_S and r_T.
        k: usize,
    },
}

impl Scoring {
    /// CSLS with the customary k = 10.
    pub const CSLS10: Scoring = Scoring::Csls { k: 10 };
}

/// Tuning of [`retrieval_with`]; results do not depend on it (up to floating-point ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrievalOptions {
    /// Tile sizes of the blocked similarity passes.
    pub blocks: Blocks,
    /// CSLS: cosine candidates kept per query in the first pass. More candidates let more queries
    /// skip the second pass, at a small cost per item scanned.
    pub candidates: usize,
}

impl Default for RetrievalOptions {
    fn default() -> Self {
        Self { blocks: Blocks::default(), candidates: 32 }
    }
}

/// Retrieval quality of a set of queries against a gallery.
///
/// Precision and MRR are averaged over the *covered* queries (those whose true match is in the
/// gallery); `coverage` says what share of all queries that is, so that `p_at_1 × coverage` is the
/// precision over all queries. With no covered query the averages are NaN (null in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalScores {
    /// Share of covered queries whose true match ranks first.
    pub p_at_1: f64,
    /// Share of covered queries whose true match ranks in the top 5.
    pub p_at_5: f64,
    /// Share of covered queries whose true match ranks in the top 10.
    pub p_at_10: f64,
    /// Mean reciprocal rank of the true match over covered queries.
    pub mrr: f64,
    /// Number of queries (covered or not).
    pub queries: usize,
    /// Number of gallery items.
    pub gallery: usize,
    /// Share of queries whose true match is in the gallery.
    pub coverage: f64,
}

impl Rank {
    /// A rank with no ties: `rank` = 1 for the first place.
    pub fn exact(rank: usize) -> Self {
        Self { above: rank.saturating_sub(1) as u64, tied: 0 }
    }

    /// The probability that the truth lands in the top `k` when its ties are broken at random.
    pub fn p_within(&self, k: usize) -> f64 {
        let k = k as u64;
        if k <= self.above {
            return 0.0;
        }
        ((k - self.above).min(self.tied + 1)) as f64 / (self.tied + 1) as f64
    }

    /// The expected reciprocal rank when the truth's ties are broken at random.
    pub fn reciprocal(&self) -> f64 {
        let first = self.above + 1;
        (first..=first + self.tied).map(|r| 1.0 / r as f64).sum::<f64>() / (self.tied + 1) as f64
    }
}

impl RetrievalScores {
    /// Summarises per-query ranks (`None` = true match not in the gallery), each tie broken at
    /// random in expectation.
    pub fn from_ranks(ranks: &[Option<Rank>], gallery: usize) -> Self {
        let covered: Vec<Rank> = ranks.iter().flatten().copied().collect();
        let n = covered.len() as f64;
        let share = |k: usize| covered.iter().map(|r| r.p_within(k)).sum::<f64>() / n;
        let mrr = covered.iter().map(Rank::reciprocal).sum::<f64>() / n;
        Self {
            p_at_1: share(1),
            p_at_5: share(5),
            p_at_10: share(10),
            mrr,
            queries: ranks.len(),
            gallery,
            coverage: if ranks.is_empty() { f64::NAN } else { n / ranks.len() as f64 },
        }
    }
}

/// Retrieval scores of `queries` (rows) against `gallery` (rows), where `truth[i]` is the gallery row
/// matching query i (`None`: not in the gallery). Rows are L2-normalised inside. Default tiling.
pub fn retrieval(
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    truth: &[Option<usize>],
    scoring: Scoring,
) -> Result<RetrievalScores, MetricError> {
    retrieval_with(queries, gallery, truth, scoring, &RetrievalOptions::default())
}

/// [`retrieval`] with explicit tuning.
pub fn retrieval_with(
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    truth: &[Option<usize>],
    scoring: Scoring,
    options: &RetrievalOptions,
) -> Result<RetrievalScores, MetricError> {
    let ranks = retrieval_ranks(queries, gallery, truth, scoring, options)?;
    Ok(RetrievalScores::from_ranks(&ranks, gallery.nrows()))
}

/// Where each query's true match stands among the gallery items (items above it, items tied with
/// it), `None` where the truth is `None`. A query whose own score is not a number (a map that
/// produced NaN) stands below every other item.
pub fn retrieval_ranks(
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    truth: &[Option<usize>],
    scoring: Scoring,
    options: &RetrievalOptions,
) -> Result<Vec<Option<Rank>>, MetricError> {
    if queries.ncols() != gallery.ncols() {
        return Err(MetricError::Width { what: "retrieval", left: queries.ncols(), right: gallery.ncols() });
    }
    if truth.len() != queries.nrows() {
        return Err(MetricError::Length {
            what: "retrieval truth vs queries",
            left: truth.len(),
            right: queries.nrows(),
        });
    }
    let n_g = gallery.nrows();
    if let Some((query, &Some(index))) = truth.iter().enumerate().find(|(_, t)| t.is_some_and(|t| t >= n_g)) {
        return Err(MetricError::TruthOutOfRange { query, index, gallery: n_g });
    }
    let q = normalized_rows(queries);
    let g = normalized_rows(gallery);
    let covered: Vec<usize> = (0..truth.len()).filter(|&i| truth[i].is_some()).collect();
    let mut ranks = vec![None; truth.len()];
    if covered.is_empty() {
        return Ok(ranks);
    }
    let truth_of = |i: usize| truth[i].unwrap_or(0);
    let cos_truth: Vec<f32> = covered.iter().map(|&i| dot(q.as_ref(), i, g.as_ref(), truth_of(i))).collect();
    match scoring {
        Scoring::Nn => {
            let rows = gather_rows(q.as_ref(), &covered);
            let excluded: Vec<Option<usize>> = covered.iter().map(|&i| truth[i]).collect();
            let counts =
                count_above(rows.as_ref(), g.as_ref(), 1.0, None, &cos_truth, &excluded, options.blocks);
            for (&i, c) in covered.iter().zip(counts) {
                ranks[i] = Some(c);
            }
        }
        Scoring::Csls { k } => {
            let spec = TopKSweep {
                row_k: options.candidates.max(1),
                col_k: k.max(1),
                alpha: 1.0,
                row_penalty: None,
                col_penalty: None,
                skip_diagonal: false,
            };
            let (cands, near) = top_k_sweep(q.as_ref(), g.as_ref(), spec, options.blocks);
            let r_t: Vec<f32> = (0..n_g).map(|j| near.mean(j)).collect();
            let r_min = r_t.iter().copied().fold(f32::INFINITY, f32::min);
            let mut pending = Vec::new();
            let mut targets = Vec::new();
            for (&i, &c) in covered.iter().zip(&cos_truth) {
                let t = truth_of(i);
                let target = 2.0 * c - r_t[t];
                let (vals, idx) = cands.entries(i);
                let complete = cands.len(i) < spec.row_k || {
                    let low = vals.iter().copied().fold(f32::INFINITY, f32::min);
                    2.0 * low - r_min < target - TIE_TOLERANCE
                };
                if complete {
                    let mut rank = Rank::default();
                    for (&v, &j) in vals.iter().zip(idx).filter(|&(_, &j)| j as usize != t) {
                        let score = 2.0 * v - r_t[j as usize];
                        rank.above += u64::from(score > target + TIE_TOLERANCE);
                        rank.tied += u64::from((score - target).abs() <= TIE_TOLERANCE);
                    }
                    ranks[i] = Some(rank);
                } else {
                    pending.push(i);
                    targets.push(target);
                }
            }
            if !pending.is_empty() {
                let rows = gather_rows(q.as_ref(), &pending);
                let excluded: Vec<Option<usize>> = pending.iter().map(|&i| truth[i]).collect();
                let counts = count_above(
                    rows.as_ref(),
                    g.as_ref(),
                    2.0,
                    Some(&r_t),
                    &targets,
                    &excluded,
                    options.blocks,
                );
                for (&i, c) in pending.iter().zip(counts) {
                    ranks[i] = Some(c);
                }
            }
        }
    }
    for (&i, c) in covered.iter().zip(&cos_truth) {
        if c.is_nan() {
            ranks[i] = Some(Rank { above: n_g.saturating_sub(1) as u64, tied: 0 });
        }
    }
    Ok(ranks)
}

/// Dot product of row `i` of `a` and row `j` of `b`, accumulated in f64.
fn dot(a: MatRef<'_, f32>, i: usize, b: MatRef<'_, f32>, j: usize) -> f32 {
    (0..a.ncols()).map(|c| f64::from(a[(i, c)]) * f64::from(b[(j, c)])).sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::{brute_cosine, gaussian};
    use faer::Mat;

    fn all(n: usize) -> Vec<Option<usize>> {
        (0..n).map(Some).collect()
    }

    #[test]
    fn identity_is_perfect() {
        let x = gaussian(1, 300, 16);
        for scoring in [Scoring::Nn, Scoring::CSLS10] {
            let s = retrieval(x.as_ref(), x.as_ref(), &all(300), scoring).unwrap();
            assert_eq!((s.p_at_1, s.p_at_5, s.p_at_10, s.mrr), (1.0, 1.0, 1.0, 1.0));
            assert_eq!((s.queries, s.gallery, s.coverage), (300, 300, 1.0));
        }
    }

    #[test]
    fn hand_made_ranks() {
        // Query 0 ≈ gallery 0; query 1 is closest to gallery 0, then 2, then 1; query 2 sits between.
        let q = Mat::from_fn(3, 2, |i, j| [[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]][i][j]);
        let g = Mat::from_fn(3, 2, |i, j| [[1.0, 0.1], [-1.0, 0.3], [0.6, 0.8]][i][j]);
        let truth = [Some(0), Some(1), Some(2)];
        let ranks =
            retrieval_ranks(q.as_ref(), g.as_ref(), &truth, Scoring::Nn, &RetrievalOptions::default())
                .unwrap();
        assert_eq!(ranks, vec![Some(Rank::exact(1)), Some(Rank::exact(3)), Some(Rank::exact(1))]);
        let s = RetrievalScores::from_ranks(&ranks, 3);
        assert!((s.p_at_1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.mrr - (1.0 + 1.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(s.p_at_5, 1.0);
    }

    #[test]
    fn coverage_counts_missing_truths() {
        let x = gaussian(2, 10, 4);
        let mut truth = all(10);
        truth[3] = None;
        truth[7] = None;
        let s = retrieval(x.as_ref(), x.as_ref(), &truth, Scoring::Nn).unwrap();
        assert_eq!((s.coverage, s.p_at_1, s.queries), (0.8, 1.0, 10));
        let none = retrieval(x.as_ref(), x.as_ref(), &[None; 10], Scoring::CSLS10).unwrap();
        assert_eq!(none.coverage, 0.0);
        assert!(none.p_at_1.is_nan());
        let bad = retrieval(x.as_ref(), x.as_ref(), &[Some(10); 10], Scoring::Nn);
        assert!(matches!(bad, Err(MetricError::TruthOutOfRange { index: 10, .. })));
        assert!(retrieval(x.as_ref(), x.as_ref(), &truth[..9], Scoring::Nn).is_err());
    }

    /// Ranks under CSLS computed from the full similarity matrix, in f64.
    fn brute_csls_ranks(q: &Mat<f32>, g: &Mat<f32>, truth: &[Option<usize>], k: usize) -> Vec<Option<Rank>> {
        let cos = brute_cosine(q.as_ref(), g.as_ref());
        let (nq, ng) = (q.nrows(), g.nrows());
        let top_mean = |mut v: Vec<f64>| {
            v.sort_by(|a, b| b.total_cmp(a));
            let k = k.min(v.len());
            v[..k].iter().sum::<f64>() / k as f64
        };
        let r_t: Vec<f64> = (0..ng).map(|j| top_mean((0..nq).map(|i| cos[i][j]).collect())).collect();
        let r_s: Vec<f64> = (0..nq).map(|i| top_mean(cos[i].clone())).collect();
        (0..nq)
            .map(|i| {
                let t = truth[i]?;
                let score = |j: usize| 2.0 * cos[i][j] - r_s[i] - r_t[j];
                Some(Rank::exact(1 + (0..ng).filter(|&j| j != t && score(j) > score(t)).count()))
            })
            .collect()
    }

    #[test]
    fn csls_matches_brute_force_with_any_tiling() {
        // A noisy rotation: truths at all sorts of ranks, so both CSLS passes are exercised.
        let x = gaussian(3, 120, 10);
        let y = &x + gaussian(5, 120, 10) * faer::Scale(0.9f32);
        let g =
            Mat::from_fn(150, 10, |i, j| if i < 120 { y[(i, j)] } else { gaussian(6, 30, 10)[(i - 120, j)] });
        let mut truth = all(120);
        truth[5] = None;
        let want = brute_csls_ranks(&x, &g, &truth, 10);
        assert!(want.iter().flatten().any(|r| r.above >= 40), "some truths rank far down");
        assert!(want.iter().flatten().any(|r| r.above == 0));
        for (blocks, candidates) in [
            (Blocks::default(), 32),
            (Blocks { rows: 7, cols: 11 }, 32),
            (Blocks { rows: 1000, cols: 1000 }, 1),
            (Blocks { rows: 16, cols: 64 }, 200),
        ] {
            let options = RetrievalOptions { blocks, candidates };
            let got = retrieval_ranks(x.as_ref(), g.as_ref(), &truth, Scoring::CSLS10, &options).unwrap();
            assert_eq!(got, want, "{blocks:?} {candidates}");
        }
    }

    #[test]
    fn nn_matches_brute_force_with_any_tiling() {
        let x = gaussian(7, 90, 6);
        let g = &x + gaussian(9, 90, 6);
        let cos = brute_cosine(x.as_ref(), g.as_ref());
        let truth = all(90);
        let want: Vec<Option<Rank>> = (0..90)
            .map(|i| Some(Rank::exact(1 + (0..90).filter(|&j| j != i && cos[i][j] > cos[i][i]).count())))
            .collect();
        for blocks in [Blocks::default(), Blocks { rows: 4, cols: 9 }] {
            let options = RetrievalOptions { blocks, ..Default::default() };
            assert_eq!(retrieval_ranks(x.as_ref(), g.as_ref(), &truth, Scoring::Nn, &options).unwrap(), want);
        }
        let one = RetrievalScores::from_ranks(&want, 90);
        let tiled = retrieval_with(
            x.as_ref(),
            g.as_ref(),
            &truth,
            Scoring::Nn,
            &RetrievalOptions { blocks: Blocks { rows: 3, cols: 5 }, candidates: 4 },
        )
        .unwrap();
        assert_eq!(tiled, one);
    }

    #[test]
    fn csls_demotes_hubs() {
        // A hub gallery item close to every query wins NN for most queries but not CSLS.
        let x = gaussian(10, 60, 8);
        let mut g = x.clone() + gaussian(11, 60, 8) * faer::Scale(0.8f32);
        let mean: Vec<f32> = (0..8).map(|j| (0..60).map(|i| x[(i, j)]).sum::<f32>() / 60.0).collect();
        for j in 0..8 {
            g[(0, j)] = mean[j] * 4.0 + 0.01;
        }
        let truth = all(60);
        let nn = retrieval(x.as_ref(), g.as_ref(), &truth, Scoring::Nn).unwrap();
        let csls = retrieval(x.as_ref(), g.as_ref(), &truth, Scoring::CSLS10).unwrap();
        assert!(csls.p_at_1 >= nn.p_at_1, "{csls:?} vs {nn:?}");
    }

    #[test]
    fn ties_count_as_chance_not_as_hits() {
        // One-dimensional rows: every cosine is ±1, so each query ties with every gallery row of
        // its sign. Queries 0–3 are positive, 4–5 negative; the gallery has 4 positive rows, 2 negative.
        let q = Mat::from_fn(6, 1, |i, _| if i < 4 { 1.0 + i as f32 } else { -1.0 });
        let g = Mat::from_fn(6, 1, |i, _| if i < 4 { 0.5 } else { -2.0 });
        let truth = all(6);
        for scoring in [Scoring::Nn, Scoring::CSLS10] {
            let ranks =
                retrieval_ranks(q.as_ref(), g.as_ref(), &truth, scoring, &RetrievalOptions::default())
                    .unwrap();
            let s = RetrievalScores::from_ranks(&ranks, 6);
            if scoring == Scoring::Nn {
                assert_eq!(ranks[0], Some(Rank { above: 0, tied: 3 }));
                assert_eq!(ranks[5], Some(Rank { above: 0, tied: 1 }));
                // 4 queries with 1-in-4 chances, 2 with 1-in-2: expected P@1 (4/4 + 2/2) / 6.
                assert!((s.p_at_1 - 2.0 / 6.0).abs() < 1e-12, "{s:?}");
                let mrr = (4.0 * (1.0 + 0.5 + 1.0 / 3.0 + 0.25) / 4.0 + 2.0 * 0.75) / 6.0;
                assert!((s.mrr - mrr).abs() < 1e-12, "{s:?}");
                assert_eq!(s.p_at_5, 1.0);
            }
            assert!(s.p_at_1 < 0.5, "{scoring:?}: ties must not count as hits: {s:?}");
        }
    }

    #[test]
    fn a_collapsed_map_scores_chance() {
        // Every query mapped to zero (or to one point): nothing distinguishes the truth.
        let g = gaussian(12, 50, 8);
        for q in [Mat::<f32>::zeros(50, 8), Mat::from_fn(50, 8, |_, j| j as f32)] {
            let s = retrieval(q.as_ref(), g.as_ref(), &all(50), Scoring::Nn).unwrap();
            // Zero queries tie everywhere (1/50); a constant query ranks the gallery the same way
            // for every query, so exactly one truth can come first.
            assert!(s.p_at_1 <= 1.0 / 50.0 + 1e-12, "{s:?}");
        }
    }

    #[test]
    fn nan_queries_rank_last() {
        let g = gaussian(13, 20, 4);
        let mut q = g.clone();
        q[(3, 0)] = f32::NAN;
        let ranks =
            retrieval_ranks(q.as_ref(), g.as_ref(), &all(20), Scoring::Nn, &RetrievalOptions::default())
                .unwrap();
        assert_eq!(ranks[3], Some(Rank { above: 19, tied: 0 }));
        assert_eq!(ranks[0], Some(Rank::exact(1)));
    }

    #[test]
    fn expected_ranks_under_random_tie_breaking() {
        let r = Rank { above: 2, tied: 3 };
        assert_eq!(
            (r.p_within(1), r.p_within(2), r.p_within(3), r.p_within(4), r.p_within(6)),
            (0.0, 0.0, 0.25, 0.5, 1.0)
        );
        assert!((r.reciprocal() - (1.0 / 3.0 + 0.25 + 0.2 + 1.0 / 6.0) / 4.0).abs() < 1e-15);
        assert_eq!(Rank::exact(1).p_within(1), 1.0);
        assert_eq!(Rank::exact(7).reciprocal(), 1.0 / 7.0);
    }
}
