//! VecMap-style robust self-learning around any estimator: stochastic CSLS dictionary induction
//! (forward, backward or both directions), refit, repeat until the objective stops improving at
//! full keep probability.
//!
//! The algorithm follows Artetxe et al., "A robust self-learning method for fully unsupervised
//! cross-lingual mappings" (ACL 2018). Each round maps the first `cutoff` rows of each side with the
//! current alignment, scores every (source, target) pair by its CSLS-adjusted cosine
//! (`cos(x, z) − r_T(z)/2` forward, `r_T(z)` the mean cosine of `z` to its `k` nearest mapped source
//! rows; symmetrically backward), drops each score with probability `1 − keep_prob`, and pairs every
//! source row with its best remaining target row (forward), every target row with its best source
//! row (backward), or both (union). The map is refitted on that dictionary (plus the seeds). The
//! objective is the mean best adjusted similarity (without dropout); when it has not improved by
//! more than `threshold` for `stochastic-interval` rounds, `keep_prob` is multiplied by
//! `stochastic-multiplier`, and once it is 1 a further such stall ends the loop.
//!
//! With `restarts = N > 1`, the whole loop runs `N` times from the same initial map, each run with
//! its own dropout seed (the first with the seed given, so `N = 1` is the plain loop), and the run
//! whose last round has the highest objective is kept: a label-free choice, as VecMap's objective
//! needs no pairs. It pays where a start is weak and the outcome depends on the dropout's draws
//! (a zero-anchor start), at `N` times the cost.
//!
//! Compared with [`refine`](super::refine)'s MUSE refinement, which keeps only *mutual* CSLS nearest
//! neighbours, deterministically, for a fixed number of rounds (stopping when the dictionary
//! repeats), this keeps every row's best match in the chosen direction(s), so dictionaries are
//! larger and noisier; the random dropout lets early rounds escape the poor local optimum a weak
//! initial map (a few seeds) would otherwise lock in, and the number of rounds is decided by the
//! objective. Both wrap any estimator through the same [`FitFn`] closure. The similarity sweeps are
//! blocked (queries × gallery tiles), so memory stays bounded whatever `cutoff` is.

use crate::metrics::{csls_radii, normalized_rows, Blocks};
use crate::refine::{CandidateRows, FitFn};
use crate::{AlignError, Alignment};
use faer::linalg::matmul::matmul;
use faer::utils::thread::{join_raw, parallelism_degree};
use faer::{Accum, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Which nearest-neighbour pairs make up the induced dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Every source row with its best target row.
    Forward,
    /// Every target row with its best source row.
    Backward,
    /// Both sets of pairs, deduplicated.
    #[default]
    Union,
}

/// How to run robust self-learning (`self-learning = { … }` on an edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SelfLearningSpec {
    /// Vocabulary cut-off: only the first `cutoff` rows of each side (the most frequent words,
    /// when rows are sorted by frequency) take part in dictionary induction; 0 means all rows.
    /// Default 20000.
    pub cutoff: usize,
    /// Neighbourhood size of the CSLS hubness penalties. Default 10.
    pub k: usize,
    /// Which pairs are induced: `forward`, `backward` or `union`. Default `union`.
    pub direction: Direction,
    /// Initial probability of keeping each similarity entry (the others are dropped before taking
    /// the best match); in (0, 1]. Default 0.1.
    pub stochastic_initial: f64,
    /// Factor applied to the keep probability after `stochastic-interval` rounds without
    /// improvement (capped at 1); > 1. Default 2.
    pub stochastic_multiplier: f64,
    /// Rounds without improvement before the keep probability grows (or, at 1, before stopping).
    /// Default 50.
    pub stochastic_interval: usize,
    /// An objective gain larger than this counts as an improvement; finite. Default 1e-6.
    pub threshold: f64,
    /// Hard cap on the number of rounds. Default 1000.
    pub max_rounds: usize,
    /// Add the seed pairs to every induced dictionary (induced pairs that reuse a seed's source or
    /// target row are dropped). When false, refits use the induced pairs only. Default true.
    pub keep_seeds: bool,
    /// Runs of the whole loop from the initial map, each with its own dropout seed; the run whose
    /// last round has the highest objective is kept (see the module docs). At least 1. Default 1.
    pub restarts: usize,
}

impl Default for SelfLearningSpec {
    fn default() -> Self {
        Self {
            cutoff: 20000,
            k: 10,
            direction: Direction::Union,
            stochastic_initial: 0.1,
            stochastic_multiplier: 2.0,
            stochastic_interval: 50,
            threshold: 1e-6,
            max_rounds: 1000,
            keep_seeds: true,
            restarts: 1,
        }
    }
}

impl SelfLearningSpec {
    /// Checks the parameters' ranges: `k ≥ 1`, `stochastic-initial` in (0, 1],
    /// `stochastic-multiplier > 1` (unless `stochastic-initial` is 1), `threshold` finite.
    ///
    /// [`self_learn`] does not require it: there, a keep probability that is not in (0, 1] is
    /// taken as 1, and one that cannot grow to 1 just runs until `max-rounds`.
    pub fn validate(&self) -> Result<(), AlignError> {
        let invalid = |field: &str, detail: String| {
            Err(AlignError::InvalidParameter { field: format!("self-learning.{field}"), detail })
        };
        if self.k == 0 {
            return invalid("k", "must be at least 1".to_owned());
        }
        if self.restarts == 0 {
            return invalid("restarts", "must be at least 1".to_owned());
        }
        let p = self.stochastic_initial;
        if !(p > 0.0 && p <= 1.0) {
            return invalid("stochastic-initial", format!("must be in (0, 1], got {p}"));
        }
        let m = self.stochastic_multiplier;
        if p < 1.0 && !(m.is_finite() && m > 1.0) {
            return invalid("stochastic-multiplier", format!("must be a finite number > 1, got {m}"));
        }
        if !self.threshold.is_finite() {
            return invalid("threshold", format!("must be finite, got {}", self.threshold));
        }
        Ok(())
    }
}

/// One round of self-learning: a dictionary induced with the current map, then a refit on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfLearningRound {
    /// Mean best CSLS-adjusted similarity of the induction (no dropout), averaged over both
    /// directions for `union`.
    pub objective: f64,
    /// Probability of keeping each similarity entry in this round's induction.
    pub keep_prob: f64,
    /// Pairs the map was refitted on (seeds kept plus induced pairs not clashing with them).
    pub dictionary: usize,
    /// Pairs of this round's dictionary that were not in the previous round's (the first round
    /// compares with the seeds).
    pub changed: usize,
}

/// What self-learning did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfLearningReport {
    /// Seed pairs given.
    pub seeds: usize,
    /// Source rows taking part in induction (after `cutoff`).
    pub candidates_source: usize,
    /// Target rows taking part in induction (after `cutoff`).
    pub candidates_target: usize,
    /// One entry per round, in order.
    pub rounds: Vec<SelfLearningRound>,
    /// Whether it stopped by the convergence criterion (a stall at keep probability 1), not by
    /// `max-rounds` or an induction failure.
    pub converged: bool,
    /// With `restarts > 1`: the last round's objective of each run, in order (NaN for a run with
    /// no round); `rounds` and `converged` are those of the kept run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<f64>,
    /// With `restarts > 1`: the kept run (an index into `restarts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<usize>,
}

/// Fits on `seeds`, then runs self-learning from that map (see [`self_learn_from`]).
pub fn self_learn<'r, E>(
    fit: &FitFn<'_, E>,
    source: impl Into<CandidateRows<'r>>,
    target: impl Into<CandidateRows<'r>>,
    seeds: &[(usize, usize)],
    spec: &SelfLearningSpec,
    seed: u64,
) -> Result<(Box<dyn Alignment>, SelfLearningReport), E> {
    let initial = fit(seeds)?;
    self_learn_from(initial, fit, source, target, seeds, spec, seed)
}

/// Runs self-learning from an already fitted alignment, `spec.restarts` times (see the module
/// docs), and returns the kept run's map and report. Each round maps the first `cutoff` rows of
/// `source` and `target` (pairs are (source row, target row) indices into them), induces a
/// dictionary by stochastic CSLS nearest neighbours (the dropout drawn from a ChaCha8 generator
/// seeded by `seed`, the round and the direction, one stream per query row, so results do not
/// depend on threads or tiling), updates the keep probability by the schedule in the module
/// documentation, and refits with `fit` on the seeds (when kept) plus the induced pairs. Returns
/// the last refit (the initial map when no round ran) and a report. Errors of `fit` are passed
/// through; a failed induction (the mapped spaces differ in width, or a side has no rows) ends the
/// loop with the map it has.
pub fn self_learn_from<'r, E>(
    initial: Box<dyn Alignment>,
    fit: &FitFn<'_, E>,
    source: impl Into<CandidateRows<'r>>,
    target: impl Into<CandidateRows<'r>>,
    seeds: &[(usize, usize)],
    spec: &SelfLearningSpec,
    seed: u64,
) -> Result<(Box<dyn Alignment>, SelfLearningReport), E> {
    let (source, target) = (source.into(), target.into());
    let last_objective = |run: &Run| run.1.rounds.last().map_or(f64::NAN, |r| r.objective);
    let first = run_once(initial.as_ref(), fit, &source, &target, seeds, spec, seed)?;
    let mut objectives = vec![last_objective(&first)];
    let (mut kept, mut chosen) = (first, 0);
    for restart in 1..spec.restarts {
        let run_seed = round_seed(seed ^ RESTART_SALT, restart);
        let run = run_once(initial.as_ref(), fit, &source, &target, seeds, spec, run_seed)?;
        let (objective, best) = (last_objective(&run), objectives[chosen]);
        objectives.push(objective);
        // Ties and NaN keep the earlier run.
        if objective > best || (best.is_nan() && !objective.is_nan()) {
            (kept, chosen) = (run, restart);
        }
    }
    let (map, mut report) = kept;
    if spec.restarts > 1 {
        report.restarts = objectives;
        report.chosen = Some(chosen);
    }
    Ok((map.unwrap_or(initial), report))
}

/// What one run of the loop gives: its last refit (`None` when no round refitted) and report.
type Run = (Option<Box<dyn Alignment>>, SelfLearningReport);

/// Mixed into the seed of every restart after the first.
const RESTART_SALT: u64 = 0xA076_1D64_78BD_642F;

/// One run of the loop from `initial`; the map is `None` when no round refitted it.
fn run_once<E>(
    initial: &dyn Alignment,
    fit: &FitFn<'_, E>,
    source: &CandidateRows<'_>,
    target: &CandidateRows<'_>,
    seeds: &[(usize, usize)],
    spec: &SelfLearningSpec,
    seed: u64,
) -> Result<Run, E> {
    let limit = |n: usize| if spec.cutoff == 0 { n } else { n.min(spec.cutoff) };
    let (ns, nt) = (limit(source.nrows()), limit(target.nrows()));
    let mut report = SelfLearningReport {
        seeds: seeds.len(),
        candidates_source: ns,
        candidates_target: nt,
        rounds: Vec::new(),
        converged: false,
        restarts: Vec::new(),
        chosen: None,
    };
    let seed_sources: HashSet<usize> = seeds.iter().map(|p| p.0).collect();
    let seed_targets: HashSet<usize> = seeds.iter().map(|p| p.1).collect();
    let mut keep_prob = {
        let p = spec.stochastic_initial;
        if p > 0.0 && p < 1.0 {
            p
        } else {
            1.0
        }
    };
    let mut best_objective = f64::NEG_INFINITY;
    let mut last_improvement = 0usize;
    let mut previous: HashSet<(usize, usize)> = seeds.iter().copied().collect();
    let mut refitted: Option<Box<dyn Alignment>> = None;
    for round in 0..spec.max_rounds {
        let map = refitted.as_deref().unwrap_or(initial);
        let mapped_source = source.map_source(map, ns);
        let mapped_target = target.map_target(map, nt);
        let Some(induced) = induce(
            mapped_source.as_ref(),
            mapped_target.as_ref(),
            spec.k,
            spec.direction,
            keep_prob,
            round_seed(seed, round),
            TILES,
        ) else {
            break;
        };
        let mut dictionary: Vec<(usize, usize)> = Vec::new();
        if spec.keep_seeds {
            dictionary.extend_from_slice(seeds);
            dictionary.extend(
                induced
                    .pairs
                    .iter()
                    .filter(|(s, t)| !seed_sources.contains(s) && !seed_targets.contains(t))
                    .copied(),
            );
        } else {
            dictionary.extend_from_slice(&induced.pairs);
        }
        if dictionary.is_empty() {
            break;
        }
        let changed = dictionary.iter().filter(|pair| !previous.contains(pair)).count();
        report.rounds.push(SelfLearningRound {
            objective: induced.objective,
            keep_prob,
            dictionary: dictionary.len(),
            changed,
        });
        let mut stop = false;
        if induced.objective - best_objective > spec.threshold {
            best_objective = induced.objective;
            last_improvement = round;
        } else if round - last_improvement > spec.stochastic_interval {
            if keep_prob >= 1.0 {
                stop = true;
            } else {
                keep_prob = (keep_prob * spec.stochastic_multiplier).min(1.0);
                last_improvement = round;
            }
        }
        refitted = Some(fit(&dictionary)?);
        if stop {
            report.converged = true;
            break;
        }
        previous = dictionary.into_iter().collect();
    }
    Ok((refitted, report))
}

/// A seed for one round's dropout, mixing the user's seed with the round (SplitMix64 finaliser).
fn round_seed(seed: u64, round: usize) -> u64 {
    let mut z = seed ^ (round as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tile sizes of the similarity sweeps: query rows × gallery rows (1 MiB of `f32` per task).
#[derive(Debug, Clone, Copy)]
struct Tiles {
    queries: usize,
    gallery: usize,
}

const TILES: Tiles = Tiles { queries: 256, gallery: 1024 };

/// An induced dictionary and its objective.
#[derive(Debug)]
struct Induced {
    /// (source row, target row), sorted, deduplicated.
    pairs: Vec<(usize, usize)>,
    /// Mean best adjusted similarity (averaged over the directions used).
    objective: f64,
}

/// Induces a dictionary between mapped rows `a` (source) and `b` (target); `None` when their
/// widths differ or a side is empty.
fn induce(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    k: usize,
    direction: Direction,
    keep_prob: f64,
    seed: u64,
    tiles: Tiles,
) -> Option<Induced> {
    if a.nrows() == 0 || b.nrows() == 0 {
        return None;
    }
    let (r_a, r_b) = csls_radii(a, b, k.max(1), Blocks::default()).ok()?;
    let (a, b) = (normalized_rows(a), normalized_rows(b));
    let half = |r: &[f32]| r.iter().map(|v| v / 2.0).collect::<Vec<f32>>();
    let mut pairs = Vec::new();
    let mut objectives = Vec::new();
    if matches!(direction, Direction::Forward | Direction::Union) {
        let best = best_matches(a.as_ref(), b.as_ref(), &half(&r_b), keep_prob, seed, tiles);
        objectives.push(mean_score(&best));
        pairs.extend(best.iter().enumerate().filter_map(|(i, m)| m.kept.map(|j| (i, j))));
    }
    if matches!(direction, Direction::Backward | Direction::Union) {
        let best = best_matches(b.as_ref(), a.as_ref(), &half(&r_a), keep_prob, seed ^ BACKWARD, tiles);
        objectives.push(mean_score(&best));
        pairs.extend(best.iter().enumerate().filter_map(|(j, m)| m.kept.map(|i| (i, j))));
    }
    pairs.sort_unstable();
    pairs.dedup();
    let objective = objectives.iter().sum::<f64>() / objectives.len() as f64;
    Some(Induced { pairs, objective })
}

/// Distinguishes the backward direction's random streams from the forward's.
const BACKWARD: u64 = 0xB4C4_D0E5_F6A7_1829;

/// The best gallery match of one query row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Best {
    /// Best adjusted similarity over all gallery rows (no dropout).
    score: f32,
    /// Its gallery row.
    index: Option<usize>,
    /// Best adjusted similarity over the kept entries.
    kept_score: f32,
    /// Its gallery row (`None` when every entry was dropped).
    kept: Option<usize>,
}

impl Default for Best {
    fn default() -> Self {
        Best { score: f32::NEG_INFINITY, index: None, kept_score: f32::NEG_INFINITY, kept: None }
    }
}

fn mean_score(best: &[Best]) -> f64 {
    let finite: Vec<f64> = best.iter().map(|b| f64::from(b.score)).filter(|s| s.is_finite()).collect();
    if finite.is_empty() {
        f64::NEG_INFINITY
    } else {
        finite.iter().sum::<f64>() / finite.len() as f64
    }
}

/// For every row of `queries` (L2-normalised), its best row of `gallery` (L2-normalised) by
/// `cos − penalty[gallery row]`, over all entries and over the entries kept with probability
/// `keep_prob` (ties go to the smaller index). Parallel over blocks of query rows.
fn best_matches(
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    penalty: &[f32],
    keep_prob: f64,
    seed: u64,
    tiles: Tiles,
) -> Vec<Best> {
    let tiles = Tiles { queries: tiles.queries.max(1), gallery: tiles.gallery.max(1) };
    let base = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![Best::default(); queries.nrows()];
    let sweep = |first: usize, slot: &mut [Best]| {
        sweep_rows(queries, gallery, penalty, keep_prob, &base, tiles, first, slot);
    };
    split_rows(&mut out, 0, tiles.queries, faer::get_global_parallelism(), &sweep);
    out
}

/// Runs `f` on contiguous parts of `out` (global row offset, part), splitting in halves while the
/// parallelism allows and parts stay above `min_rows`.
fn split_rows(
    out: &mut [Best],
    first: usize,
    min_rows: usize,
    par: Par,
    f: &(dyn Fn(usize, &mut [Best]) + Sync),
) {
    let n = out.len();
    if parallelism_degree(par) <= 1 || n < 2 * min_rows {
        f(first, out);
        return;
    }
    let mid = n / 2;
    let (left, right) = out.split_at_mut(mid);
    join_raw(
        |p| split_rows(left, first, min_rows, p, f),
        |p| split_rows(right, first + mid, min_rows, p, f),
        par,
    );
}

/// How many of a query row's best entries the dropout discards before its first kept one.
///
/// Dropping every similarity entry independently with probability `1 − p` and taking the best
/// survivor picks the row's `(g + 1)`-th best entry, where `g` — the dropped entries that rank
/// above the first kept one — is geometric: `P(g = r) = p (1 − p)^r`, whatever the scores are.
/// So one draw per row, `g = ⌊ln u / ln(1 − p)⌋`, replaces a draw per kept entry, and the sweep
/// only has to keep each row's `g + 1` best entries. The draw comes from the row's own stream of a
/// generator seeded by the round, so it does not depend on threads or tiling.
fn dropped_above_kept(base: &ChaCha8Rng, row: usize, keep_prob: f64) -> usize {
    if keep_prob >= 1.0 {
        return 0;
    }
    let mut rng = base.clone();
    rng.set_stream(row as u64);
    let u = 1.0 - rng.random::<f64>();
    // The ratio is ≥ 0, so `as` is the floor; it saturates: with a tiny keep probability the
    // rank passes the gallery's end and nothing is kept.
    (u.ln() / (-keep_prob).ln_1p()) as usize
}

/// A query row's best gallery entries so far: at most `capacity`, best first, ties to the smaller
/// gallery row (entries arrive in gallery order and must beat the last kept one strictly).
#[derive(Debug, Clone, Default)]
struct Leaders {
    capacity: usize,
    entries: Vec<(f32, usize)>,
}

impl Leaders {
    fn new(capacity: usize) -> Self {
        Leaders { capacity, entries: Vec::with_capacity(capacity.min(64)) }
    }

    /// The score a new entry must exceed (−∞ until the list is full).
    fn threshold(&self) -> f32 {
        if self.entries.len() < self.capacity {
            f32::NEG_INFINITY
        } else {
            self.entries.last().map_or(f32::INFINITY, |e| e.0)
        }
    }

    /// Offers `score` (gallery row `index`, later than every row offered before); NaN never enters.
    fn offer(&mut self, score: f32, index: usize) {
        // `>` is false for NaN: it never enters.
        let enters = score > self.threshold();
        if !enters {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop();
        }
        // After every entry at least as good: ties keep the earlier row first.
        let at = self.entries.partition_point(|e| e.0 >= score);
        self.entries.insert(at, (score, index));
    }
}

/// [`best_matches`] for query rows `first..first + out.len()`, tile by tile: each row keeps its
/// `g + 1` best entries ([`dropped_above_kept`]); a tile whose best entry cannot enter that list is
/// skipped after one vectorised maximum.
#[allow(clippy::too_many_arguments)]
fn sweep_rows(
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    penalty: &[f32],
    keep_prob: f64,
    base: &ChaCha8Rng,
    tiles: Tiles,
    first: usize,
    out: &mut [Best],
) {
    let ng = gallery.nrows();
    let mut buf = vec![0.0f32; tiles.gallery.min(ng) * tiles.queries.min(out.len())];
    let mut r0 = 0;
    while r0 < out.len() {
        let nr = tiles.queries.min(out.len() - r0);
        let block = &mut out[r0..r0 + nr];
        let ranks: Vec<usize> =
            (0..nr).map(|i| dropped_above_kept(base, first + r0 + i, keep_prob)).collect();
        // A rank past the gallery keeps nothing: the row needs only its best entry then.
        let mut leaders: Vec<Leaders> =
            ranks.iter().map(|&g| Leaders::new(if g < ng { g + 1 } else { 1 })).collect();
        let query_block = queries.subrows(first + r0, nr);
        let mut c0 = 0;
        while c0 < ng {
            let nc = tiles.gallery.min(ng - c0);
            let tile = &mut buf[..nc * nr];
            // Column i of the tile: query i's similarities to gallery rows c0..c0 + nc.
            let dst = MatMut::from_column_major_slice_mut(&mut *tile, nc, nr);
            matmul(dst, Accum::Replace, gallery.subrows(c0, nc), query_block.transpose(), 1.0f32, Par::Seq);
            let pen = &penalty[c0..c0 + nc];
            for (col, list) in tile.chunks_exact(nc).zip(&mut leaders) {
                if max_adjusted(col, pen) > list.threshold() {
                    offer_tile(list, col, pen, c0);
                }
            }
            c0 += nc;
        }
        for ((best, list), &g) in block.iter_mut().zip(&leaders).zip(&ranks) {
            if let Some(&(score, index)) = list.entries.first() {
                best.score = score;
                best.index = Some(index);
            }
            if let Some(&(score, index)) = list.entries.get(g) {
                best.kept_score = score;
                best.kept = Some(index);
            }
        }
        r0 += nr;
    }
}

/// Offers the entries `col[j] − pen[j]` (gallery rows `c0 + j`) to `list`, eight at a time: a
/// group with no entry above the list's threshold costs one vectorised comparison.
fn offer_tile(list: &mut Leaders, col: &[f32], pen: &[f32], c0: usize) {
    let mut threshold = list.threshold();
    let (cols, pens) = (col.chunks_exact(8), pen.chunks_exact(8));
    let (col_rest, pen_rest) = (cols.remainder(), pens.remainder());
    for (g, (c, p)) in cols.zip(pens).enumerate() {
        let mut above = false;
        for k in 0..8 {
            above |= c[k] - p[k] > threshold;
        }
        if above {
            for k in 0..8 {
                let v = c[k] - p[k];
                if v > threshold {
                    list.offer(v, c0 + 8 * g + k);
                    threshold = list.threshold();
                }
            }
        }
    }
    let done = col.len() - col_rest.len();
    for (k, (&c, &p)) in col_rest.iter().zip(pen_rest).enumerate() {
        list.offer(c - p, c0 + done + k);
    }
}

/// The largest `col[j] − pen[j]` (NaN never wins; −∞ when nothing beats it), in 8 lanes so that
/// it vectorises.
fn max_adjusted(col: &[f32], pen: &[f32]) -> f32 {
    let higher = |a: f32, b: f32| if b > a { b } else { a };
    let mut lanes = [f32::NEG_INFINITY; 8];
    let (mut cols, mut pens) = (col.chunks_exact(8), pen.chunks_exact(8));
    for (c, p) in (&mut cols).zip(&mut pens) {
        for k in 0..8 {
            lanes[k] = higher(lanes[k], c[k] - p[k]);
        }
    }
    let rest = cols.remainder().iter().zip(pens.remainder()).map(|(&c, &p)| c - p);
    lanes.into_iter().chain(rest).fold(f32::NEG_INFINITY, higher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{retrieval, Scoring};
    use crate::testing::{f32s, gaussian, orthogonal, rng};
    use crate::{kernels, Fit, MethodSpec};
    use faer::Mat;

    /// Rows `x` (n × d) and `z = x Q + noise · N(0, 1)`, as `f32`.
    fn rotated(seed: u64, n: usize, d: usize, noise: f64) -> (Mat<f32>, Mat<f32>) {
        let mut r = rng(seed);
        let x = gaussian(&mut r, n, d);
        let q = orthogonal(&mut r, d);
        let e = gaussian(&mut r, n, d);
        let xq = kernels::matmul(x.as_ref(), q.as_ref());
        let z = Mat::from_fn(n, d, |i, j| xq[(i, j)] + noise * e[(i, j)]);
        (f32s(x.as_ref()), f32s(z.as_ref()))
    }

    fn gather(m: MatRef<'_, f32>, rows: impl Iterator<Item = usize>) -> Mat<f32> {
        let rows: Vec<usize> = rows.collect();
        Mat::from_fn(rows.len(), m.ncols(), |i, j| m[(rows[i], j)])
    }

    /// P@1 of nearest-neighbour retrieval of row i of `z` for row i of `x`, over all rows.
    fn p_at_1(map: &dyn Alignment, x: &Mat<f32>, z: &Mat<f32>) -> f64 {
        let truth: Vec<Option<usize>> = (0..x.nrows()).map(Some).collect();
        let (a, b) = (map.map_source(x.as_ref()), map.map_target(z.as_ref()));
        retrieval(a.as_ref(), b.as_ref(), &truth, Scoring::Nn).map_or(0.0, |s| s.p_at_1)
    }

    /// Smallest over largest singular value of the mapped source rows.
    fn conditioning(map: &dyn Alignment, x: &Mat<f32>) -> f64 {
        let mapped = map.map_source(x.as_ref());
        let mapped = Mat::from_fn(mapped.nrows(), mapped.ncols(), |i, j| f64::from(mapped[(i, j)]));
        let s = kernels::thin_svd(mapped.as_ref(), "test").unwrap().s;
        s[s.len() - 1] / s[0]
    }

    fn check_schedule(report: &SelfLearningReport, spec: &SelfLearningSpec) {
        assert!(report.converged, "{report:?}");
        assert!(report.rounds.len() < spec.max_rounds);
        let probs: Vec<f64> = report.rounds.iter().map(|r| r.keep_prob).collect();
        assert!(probs.windows(2).all(|w| w[0] <= w[1]), "{probs:?}");
        assert_eq!(probs.first().copied(), Some(spec.stochastic_initial));
        assert_eq!(probs.last().copied(), Some(1.0));
    }

    fn recovers_a_rotation_from_five_seeds(method: MethodSpec) {
        let (x, z) = rotated(21, 2000, 20, 0.05);
        let seeds: Vec<(usize, usize)> = (0..5).map(|i| (i * 41, i * 41)).collect();
        let estimator = |pairs: &[(usize, usize)]| -> Result<Box<dyn Alignment>, AlignError> {
            let xs = gather(x.as_ref(), pairs.iter().map(|p| p.0));
            let zs = gather(z.as_ref(), pairs.iter().map(|p| p.1));
            Ok(Box::new(Fit::new(&method).run_f32(xs.as_ref(), zs.as_ref())?))
        };
        let spec = SelfLearningSpec { cutoff: 1000, stochastic_interval: 3, ..SelfLearningSpec::default() };
        let start = estimator(&seeds).unwrap();
        let before = p_at_1(start.as_ref(), &x, &z);
        let (map, report) = self_learn(&estimator, x.as_ref(), z.as_ref(), &seeds, &spec, 5).unwrap();
        let after = p_at_1(map.as_ref(), &x, &z);
        if matches!(method, MethodSpec::Procrustes { .. }) {
            // Five seeds pin down 5 of the 20 directions; the rest of the rotation is arbitrary.
            assert!(before < 0.5, "{before}");
        } else {
            // VecMap's pseudo-inverse whitening keeps only the seeds' 5-dimensional span, which
            // already retrieves well here; self-learning must bring back the other 15 directions.
            assert!(conditioning(start.as_ref(), &x) < 1e-3);
            assert!(conditioning(map.as_ref(), &x) > 0.1);
        }
        assert!(after >= 0.95, "P@1 {before} -> {after}, {} rounds", report.rounds.len());
        check_schedule(&report, &spec);
        assert_eq!((report.seeds, report.candidates_source, report.candidates_target), (5, 1000, 1000));
        // At the end the union dictionary holds (nearly) every candidate row once per side.
        let last = report.rounds.last().unwrap();
        assert!(last.dictionary >= 950 && last.dictionary <= 1100, "{last:?}");
    }

    #[test]
    fn procrustes_self_learning_recovers_a_rotation_from_five_seeds() {
        recovers_a_rotation_from_five_seeds(MethodSpec::Procrustes { scaled: false });
    }

    #[test]
    fn vecmap_self_learning_recovers_a_rotation_from_five_seeds() {
        recovers_a_rotation_from_five_seeds(MethodSpec::Vecmap {
            whiten: true,
            src_reweight: 0.5,
            trg_reweight: 0.5,
            dewhiten: true,
        });
    }

    #[test]
    fn restarts_keep_the_run_with_the_highest_last_objective() {
        // One seed pair in 12 dimensions: most runs lock into a wrong dictionary (P@1 ≤ 0.1, last
        // objective about 0.46), a few find the rotation (P@1 1, objective about 0.67).
        let (x, z) = rotated(22, 600, 12, 0.05);
        let seeds = [(0, 0)];
        let method = MethodSpec::Procrustes { scaled: false };
        let estimator = |pairs: &[(usize, usize)]| -> Result<Box<dyn Alignment>, AlignError> {
            let xs = gather(x.as_ref(), pairs.iter().map(|p| p.0));
            let zs = gather(z.as_ref(), pairs.iter().map(|p| p.1));
            Ok(Box::new(Fit::new(&method).run_f32(xs.as_ref(), zs.as_ref())?))
        };
        let once = SelfLearningSpec { cutoff: 300, stochastic_interval: 2, ..SelfLearningSpec::default() };
        let six = SelfLearningSpec { restarts: 6, ..once.clone() };
        let (plain_map, plain) = self_learn(&estimator, x.as_ref(), z.as_ref(), &seeds, &once, 5).unwrap();
        assert!(plain.restarts.is_empty() && plain.chosen.is_none(), "{plain:?}");
        let alone = p_at_1(plain_map.as_ref(), &x, &z);
        assert!(alone < 0.2, "{alone}");
        let (map, report) = self_learn(&estimator, x.as_ref(), z.as_ref(), &seeds, &six, 5).unwrap();
        assert_eq!(report.restarts.len(), 6);
        // The first run is the plain one (same seed); the kept one has the highest last objective,
        // and its rounds are the ones reported.
        assert_eq!(report.restarts[0], plain.rounds.last().unwrap().objective);
        let chosen = report.chosen.unwrap();
        assert!(report.restarts.iter().all(|&o| o <= report.restarts[chosen]), "{:?}", report.restarts);
        assert_eq!(report.rounds.last().unwrap().objective, report.restarts[chosen]);
        assert!(report.rounds.len() < six.max_rounds);
        // Among six runs one finds the rotation, and its objective says so without a label.
        let kept = p_at_1(map.as_ref(), &x, &z);
        assert!(kept >= 0.95, "{kept}: {:?}, kept {chosen}", report.restarts);
        let err = SelfLearningSpec { restarts: 0, ..once }.validate().unwrap_err();
        assert!(err.to_string().contains("restarts"), "{err}");
    }

    /// Maps both sides as they are.
    struct Identity;

    impl Alignment for Identity {
        fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
            x.to_owned()
        }
        fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
            y.to_owned()
        }
    }

    #[test]
    fn forward_backward_and_union_dictionaries_have_the_sizes_they_must() {
        // 50 source rows, 80 target rows: forward pairs each source row once (50 pairs), backward
        // each target row once (80 pairs), union at least the 80.
        let mut r = rng(31);
        let a = f32s(gaussian(&mut r, 50, 8).as_ref());
        let b = f32s(gaussian(&mut r, 80, 8).as_ref());
        let estimator = |_: &[(usize, usize)]| -> Result<Box<dyn Alignment>, std::convert::Infallible> {
            Ok(Box::new(Identity))
        };
        let size = |direction: Direction| {
            let spec = SelfLearningSpec {
                direction,
                stochastic_initial: 1.0,
                max_rounds: 1,
                keep_seeds: false,
                ..SelfLearningSpec::default()
            };
            let Ok((_, report)) = self_learn(&estimator, a.as_ref(), b.as_ref(), &[], &spec, 0);
            assert_eq!(report.rounds.len(), 1);
            assert!(!report.converged);
            (report.rounds[0].dictionary, report.rounds[0].objective)
        };
        let (forward, o_f) = size(Direction::Forward);
        let (backward, o_b) = size(Direction::Backward);
        let (union, o_u) = size(Direction::Union);
        assert_eq!((forward, backward), (50, 80));
        assert!((80..130).contains(&union), "{union}");
        assert!((o_u - (o_f + o_b) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn sweeps_match_brute_force_csls_and_dropout_is_seeded_and_tiling_free() {
        let mut r = rng(32);
        let a = f32s(gaussian(&mut r, 37, 6).as_ref());
        let b = f32s(gaussian(&mut r, 29, 6).as_ref());
        let k = 4;
        let (_, r_b) = csls_radii(a.as_ref(), b.as_ref(), k, Blocks::default()).unwrap();
        let (an, bn) = (normalized_rows(a.as_ref()), normalized_rows(b.as_ref()));
        let cos = |i: usize, j: usize| (0..6).map(|t| f64::from(an[(i, t)] * bn[(j, t)])).sum::<f64>();
        let want: Vec<usize> = (0..37)
            .map(|i| {
                let score = |j: usize| cos(i, j) - f64::from(r_b[j]) / 2.0;
                (0..29).max_by(|&x, &y| score(x).total_cmp(&score(y)).then(y.cmp(&x))).unwrap()
            })
            .collect();
        let half: Vec<f32> = r_b.iter().map(|v| v / 2.0).collect();
        let small = Tiles { queries: 5, gallery: 3 };
        for tiles in [TILES, small] {
            let best = best_matches(an.as_ref(), bn.as_ref(), &half, 1.0, 0, tiles);
            assert_eq!(best.iter().map(|m| m.kept.unwrap()).collect::<Vec<_>>(), want);
            assert!(best.iter().all(|m| m.index == m.kept && m.score == m.kept_score));
        }
        let dropped =
            |seed: u64, tiles: Tiles| best_matches(an.as_ref(), bn.as_ref(), &half, 0.3, seed, tiles);
        let (one, again, tiled, other) =
            (dropped(7, TILES), dropped(7, TILES), dropped(7, small), dropped(8, TILES));
        assert_eq!(one, again);
        assert_eq!(one, tiled);
        assert_ne!(one, other);
        // The best over all entries ignores the dropout; the kept best is never better.
        assert_eq!(one.iter().map(|m| m.index.unwrap()).collect::<Vec<_>>(), want);
        assert!(one.iter().all(|m| m.kept_score <= m.score));
        assert!(one.iter().filter(|m| m.kept != m.index).count() > 10);
        // The kept entry is the row's (g + 1)-th best, g drawn for the row: the same rank in
        // every tiling, and by brute force from the scores.
        for (m, i) in one.iter().zip(0..) {
            let score = |j: usize| {
                f64::from(
                    an.row(i)
                        .transpose()
                        .iter()
                        .zip(bn.row(j).transpose().iter())
                        .map(|(x, y)| x * y)
                        .sum::<f32>(),
                ) - f64::from(half[j])
            };
            let mut order: Vec<usize> = (0..29).collect();
            order.sort_by(|&x, &y| score(y).total_cmp(&score(x)).then(x.cmp(&y)));
            let g = dropped_above_kept(&ChaCha8Rng::seed_from_u64(7), i, 0.3);
            assert_eq!(m.kept, order.get(g).copied(), "row {i}, rank {g}");
        }
    }

    #[test]
    fn a_rank_past_the_gallery_keeps_nothing_and_still_finds_the_best() {
        let mut r = rng(33);
        let a = normalized_rows(f32s(gaussian(&mut r, 40, 5).as_ref()).as_ref());
        let b = normalized_rows(f32s(gaussian(&mut r, 300, 5).as_ref()).as_ref());
        let pen = vec![0.0f32; 300];
        let all = best_matches(a.as_ref(), b.as_ref(), &pen, 1.0, 3, TILES);
        let none = best_matches(a.as_ref(), b.as_ref(), &pen, 1e-12, 3, TILES);
        assert!(none.iter().all(|m| m.kept.is_none()));
        let index = |v: &[Best]| v.iter().map(|m| m.index).collect::<Vec<_>>();
        assert_eq!(index(&none), index(&all));
    }

    #[test]
    fn the_kept_rank_is_geometric_as_independent_dropout_makes_it() {
        // Dropping each entry with probability 1 − p and keeping the best survivor picks rank r
        // (0 = the best) with probability p (1 − p)^r. Over 200,000 rows, each rank's share
        // lies within 4.5 standard errors of it, for every keep probability of the schedule.
        let rows = 200_000;
        for p in [0.1f64, 0.2, 0.4, 0.8] {
            let base = ChaCha8Rng::seed_from_u64(11);
            let mut counts = [0usize; 8];
            for row in 0..rows {
                let g = dropped_above_kept(&base, row, p);
                if g < counts.len() {
                    counts[g] += 1;
                }
            }
            for (r, &c) in counts.iter().enumerate() {
                let want = p * (1.0 - p).powi(r as i32);
                let se = (want * (1.0 - want) / rows as f64).sqrt();
                let got = c as f64 / rows as f64;
                assert!((got - want).abs() < 4.5 * se, "p = {p}, rank {r}: {got} vs {want}");
            }
        }
        // Keep probability 1 drops nothing; a tiny one passes any gallery's end.
        assert_eq!(dropped_above_kept(&ChaCha8Rng::seed_from_u64(1), 3, 1.0), 0);
        let far =
            (0..100).filter(|&row| dropped_above_kept(&ChaCha8Rng::seed_from_u64(1), row, 1e-9) > 1_000_000);
        assert!(far.count() > 95);
    }

    #[test]
    fn leaders_keep_the_best_entries_ties_to_the_earlier_row() {
        let mut list = Leaders::new(3);
        for (j, s) in [0.5f32, f32::NAN, 0.9, 0.5, 0.1, 0.9, 0.7, f32::NEG_INFINITY].into_iter().enumerate() {
            list.offer(s, j);
        }
        assert_eq!(list.entries, vec![(0.9, 2), (0.9, 5), (0.7, 6)]);
        assert_eq!(list.threshold(), 0.7);
        let mut one = Leaders::new(1);
        one.offer(f32::NEG_INFINITY, 0);
        assert!(one.entries.is_empty());
    }

    #[test]
    fn the_lane_maximum_finds_the_entry_a_scan_finds() {
        // Ties, NaNs, infinities and lengths off the lane width: the first entry a `>` scan
        // keeps is the first entry equal to the lane maximum.
        let mut r = rng(12);
        for len in [0, 1, 7, 8, 9, 31, 100] {
            for trial in 0..20 {
                let col: Vec<f32> = (0..len)
                    .map(|j| match (j * 7 + trial) % 11 {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        2 => 0.5,
                        _ => (r.random::<f32>() * 4.0).round() / 4.0,
                    })
                    .collect();
                let pen: Vec<f32> = (0..len).map(|j| if j % 5 == 0 { 0.25 } else { 0.0 }).collect();
                let mut scan = (f32::NEG_INFINITY, None);
                for (j, (&c, &p)) in col.iter().zip(&pen).enumerate() {
                    if c - p > scan.0 {
                        scan = (c - p, Some(j));
                    }
                }
                let top = max_adjusted(&col, &pen);
                let first = (top > f32::NEG_INFINITY)
                    .then(|| col.iter().zip(&pen).position(|(&c, &p)| c - p == top))
                    .flatten();
                assert_eq!((top, first), scan, "{col:?}");
            }
        }
    }

    #[test]
    fn width_mismatch_ends_the_loop_with_the_initial_map() {
        struct Narrow;
        impl Alignment for Narrow {
            fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
                x.to_owned()
            }
            fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
                y.subcols(0, 1).to_owned()
            }
        }
        let mut r = rng(33);
        let a = f32s(gaussian(&mut r, 10, 3).as_ref());
        let calls = std::cell::Cell::new(0);
        let estimator = |_: &[(usize, usize)]| -> Result<Box<dyn Alignment>, std::convert::Infallible> {
            calls.set(calls.get() + 1);
            Ok(Box::new(Narrow))
        };
        let Ok((_, report)) =
            self_learn(&estimator, a.as_ref(), a.as_ref(), &[(0, 0)], &SelfLearningSpec::default(), 0);
        assert!(report.rounds.is_empty() && !report.converged);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn spec_reads_kebab_case_with_defaults_and_rejects_unknown_keys() {
        let spec: SelfLearningSpec = serde_json::from_str(
            r#"{"cutoff": 5000, "direction": "forward", "stochastic-initial": 0.5, "keep-seeds": false}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            SelfLearningSpec {
                cutoff: 5000,
                direction: Direction::Forward,
                stochastic_initial: 0.5,
                keep_seeds: false,
                ..SelfLearningSpec::default()
            }
        );
        let defaults: SelfLearningSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(
            (
                defaults.cutoff,
                defaults.k,
                defaults.direction,
                defaults.stochastic_interval,
                defaults.max_rounds
            ),
            (20000, 10, Direction::Union, 50, 1000)
        );
        assert_eq!(
            (defaults.stochastic_initial, defaults.stochastic_multiplier, defaults.threshold),
            (0.1, 2.0, 1e-6)
        );
        assert!(defaults.keep_seeds);
        let from_toml: SelfLearningSpec =
            toml::from_str("stochastic-multiplier = 3.0\nmax-rounds = 7\ndirection = \"backward\"").unwrap();
        assert_eq!((from_toml.stochastic_multiplier, from_toml.max_rounds), (3.0, 7));
        assert_eq!(from_toml.direction, Direction::Backward);
        for bad in [r#"{"stochastic_initial": 0.5}"#, r#"{"iterations": 3}"#, r#"{"direction": "both"}"#] {
            assert!(serde_json::from_str::<SelfLearningSpec>(bad).is_err(), "{bad}");
        }
        let back: SelfLearningSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        assert!(defaults.validate().is_ok());
        for bad in [
            SelfLearningSpec { stochastic_initial: 0.0, ..SelfLearningSpec::default() },
            SelfLearningSpec { stochastic_initial: 1.5, ..SelfLearningSpec::default() },
            SelfLearningSpec { stochastic_multiplier: 1.0, ..SelfLearningSpec::default() },
            SelfLearningSpec { k: 0, ..SelfLearningSpec::default() },
            SelfLearningSpec { threshold: f64::NAN, ..SelfLearningSpec::default() },
        ] {
            assert!(matches!(bad.validate(), Err(AlignError::InvalidParameter { .. })), "{bad:?}");
        }
    }
}
