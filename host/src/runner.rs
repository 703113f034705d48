//! The sweep: for every edge, every repeat and anchor count, fit every method on the anchors and
//! evaluate it on held-out test items, beside a permutation null. Each evaluated point is cached
//! by content, so an interrupted run resumes where it stopped.
//!
//! Protocol, per edge and repeat r: the items are shuffled with a seed drawn from the experiment
//! seed and r; the first `test` are the test items (never anchors), the rest the pool; the first
//! `a` of the pool are the anchors for anchor count `a` (so anchor sets grow by nesting). With
//! `split = "ordered"` the test items are instead the `test` items after the first `max(anchors)`,
//! and the pool is those first items, shuffled per repeat. The null
//! fits the same method on the same anchors with the child's rows shuffled among them, drawn from
//! a seed of its own (experiment seed, repeat, anchor count, start). A point's cache key holds
//! everything its fit reads (the split's test items and anchors included), never the other points
//! a file declares, so adding or removing anchor counts, methods or edges reuses the rest.

use crate::align::refine::{refine_from, CandidateRows, RefineReport, RefineSpec};
use crate::align::self_learning::{self_learn_from, SelfLearningReport, SelfLearningSpec};
use crate::align::unsupervised::{unsupervised_pairs, StartSpec};
use crate::align::{
    ActionMemo, AlignError, Alignment, Fit, FitData, FitOn, MethodSpec, Preprocess, WarmStart,
};
use crate::cache::{Cache, KeyBuilder};
use crate::edge_operators::{
    operator_reports, operator_scores, EdgeOperators, Example, OperatorReport, OperatorScore, SwatchColours,
};
use crate::experiment::{Edge, Experiment, Metric, OperatorItems, Split};
use crate::extract::Embeddings;
use crate::metrics::{cka_linear, cka_unbiased, mutual_knn, retrieval, Scoring};
use crate::pool_preprocess::PoolPreprocess;
use crate::takeoff::{self, take_offs, TakeOff};
use crate::HostError;
use faer::{Mat, MatRef};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Scores by metric name (`NaN` where a fit failed).
pub type Scores = BTreeMap<String, f64>;

/// One evaluated point of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Point {
    /// Method label (`procrustes`, `ridge (lambda = 1)`, `procrustes + refine`).
    pub method: String,
    /// Anchors given.
    pub anchors: usize,
    /// Repeat index.
    pub repeat: usize,
    /// Scores on the test items.
    pub scores: Scores,
    /// Scores of the permutation null (shuffled anchors), when asked for.
    pub null: Option<Scores>,
    /// Why the fit failed, if it did.
    pub error: Option<String>,
    /// What the fit chose (functional: `lambda`, `mu`, solver iterations…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, f64>,
    /// Operator metrics per operator pair, when the edge has operators.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operators: BTreeMap<String, OperatorScore>,
    /// What refinement or self-learning did, round by round, when the method was refined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refinement: Option<Refinement>,
    /// The swatch picture's test items as this fit saw them (`swatches`: first repeat, largest
    /// anchor count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
    /// A frame-level edge's first test item as this fit's mapped frames decode (`frames.decode`:
    /// first repeat, largest anchor count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<commute_sdk::Score>,
}

impl Point {
    /// A point with no scores yet: `method` at `anchors` in `repeat`.
    pub fn new(method: impl Into<String>, anchors: usize, repeat: usize) -> Point {
        Point {
            method: method.into(),
            anchors,
            repeat,
            scores: Scores::new(),
            null: None,
            error: None,
            details: BTreeMap::new(),
            operators: BTreeMap::new(),
            refinement: None,
            examples: Vec::new(),
            decoded: None,
        }
    }
}

/// What a refinement stage did on one point (see [`RefineReport`] and [`SelfLearningReport`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Refinement {
    /// MUSE-style refinement.
    Refine(RefineReport),
    /// VecMap-style robust self-learning.
    SelfLearning(SelfLearningReport),
}

impl Refinement {
    /// Dictionary sizes, one per round (round 0: induced by the seed fit).
    pub fn dictionary_sizes(&self) -> Vec<usize> {
        match self {
            Refinement::Refine(r) => r.rounds.iter().map(|r| r.dictionary).collect(),
            Refinement::SelfLearning(r) => r.rounds.iter().map(|r| r.dictionary).collect(),
        }
    }

    /// Whether it stopped by its criterion rather than at its cap.
    pub fn converged(&self) -> bool {
        match self {
            Refinement::Refine(r) => r.converged,
            Refinement::SelfLearning(r) => r.converged,
        }
    }
}

/// Mean and spread of one metric over repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// Method label.
    pub method: String,
    /// Anchors given.
    pub anchors: usize,
    /// Metric name.
    pub metric: String,
    /// Mean over repeats.
    pub mean: f64,
    /// Standard deviation over repeats.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean of the null, when computed.
    pub null_mean: Option<f64>,
    /// Largest null value, when computed.
    pub null_max: Option<f64>,
    /// Repeats that produced a number.
    pub repeats: usize,
}

/// Everything measured on one edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EdgeResult {
    /// Parent node (the map's source).
    pub parent: String,
    /// Child node (the map's target).
    pub child: String,
    /// Paired items available.
    pub items: usize,
    /// Items skipped by the parent's and the child's extraction (`on-item-error = "skip"`);
    /// `items` counts only those embedded on both sides.
    pub skipped: [usize; 2],
    /// Test items per repeat (the retrieval gallery).
    pub test: usize,
    /// Dimension of the parent's space.
    pub parent_dim: usize,
    /// Dimension of the child's space.
    pub child_dim: usize,
    /// Metrics reported, in declared order.
    pub metrics: Vec<String>,
    /// Every evaluated point.
    pub points: Vec<Point>,
    /// Mean and spread per method, anchor count and metric.
    pub summary: Vec<Summary>,
    /// How the sides share operator items (when the edge has operators).
    #[serde(default)]
    pub operator_items: OperatorItems,
    /// Per operator pair: split sizes and how well a linear action fits it on each side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorReport>,
    /// Per method and P@1 metric (test items, whole vocabulary): the anchor count at which P@1
    /// first exceeds 0.5, over repeats (see [`crate::takeoff`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub take_off: Vec<TakeOff>,
    /// Methods whose map is a rotation into a space of at least the parent's dimension (see
    /// [`MethodSpec::maps_by_rotation`]): their rotation-invariant scores (`cka`,
    /// `cka-unbiased`, `mutual-knn`) measure the two spaces, not the map, and equal their null
    /// by construction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<String>,
    /// The swatch picture's colours for the first repeat's test items (`swatches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swatches: Option<SwatchColours>,
    /// A frame-level edge with a decoder: the first repeat's first test item, its true score
    /// (the methods' decodings are their points' `decoded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<crate::frames::DecodedExample>,
    /// Points of the sweep found in the cache (from an earlier or interrupted run); recorded
    /// under `cache` in metrics.json, not here, so that reruns give identical edges.
    #[serde(skip)]
    pub points_cached: usize,
    /// Points of the sweep fitted and evaluated by this run (likewise under `cache`).
    #[serde(skip)]
    pub points_computed: usize,
}

/// The refinement stage around a base estimator.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Stage<'a> {
    /// MUSE-style refinement (`refine = { … }` on the edge).
    Refine(&'a RefineSpec),
    /// VecMap-style robust self-learning (`self-learning = { … }` on the edge).
    SelfLearning(&'a SelfLearningSpec),
}

/// A method as evaluated: a base estimator, optionally wrapped by a refinement stage.
#[derive(Debug, Clone, Serialize)]
struct Variant<'a> {
    method: &'a MethodSpec,
    refine: Option<Stage<'a>>,
}

impl Variant<'_> {
    /// [`method_label`], followed by ` + refine` or ` + self-learning`.
    fn label(&self) -> String {
        let mut label = method_label(self.method);
        match self.refine {
            Some(Stage::Refine(_)) => label.push_str(" + refine"),
            Some(Stage::SelfLearning(_)) => label.push_str(" + self-learning"),
            None => {}
        }
        label
    }
}

/// `ridge`, or `ridge (lambda = 0.1)` when a parameter differs from its default.
pub fn method_label(method: &MethodSpec) -> String {
    let json = serde_json::to_value(method).unwrap_or_default();
    let kind = json.get("kind").and_then(|k| k.as_str()).unwrap_or("method").to_owned();
    let defaults = serde_json::from_value::<MethodSpec>(serde_json::json!({ "kind": kind }))
        .ok()
        .and_then(|d| serde_json::to_value(d).ok())
        .unwrap_or_default();
    let params: Vec<String> = json
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| k.as_str() != "kind" && !v.is_null() && defaults.get(k.as_str()) != Some(v))
                .map(|(k, v)| format!("{k} = {v}"))
                .collect()
        })
        .unwrap_or_default();
    if params.is_empty() {
        kind
    } else {
        format!("{kind} ({})", params.join(", "))
    }
}

/// Rows of `m` at `index`, in that order.
pub fn rows<T: Copy>(m: MatRef<'_, T>, index: &[usize]) -> Mat<T> {
    Mat::from_fn(index.len(), m.ncols(), |i, j| m[(index[i], j)])
}

/// The test-set size for `n` items.
pub fn test_size(exp: &Experiment, n: usize) -> usize {
    exp.test.unwrap_or_else(|| (n / 5).min(1000)).min(n)
}

/// One fit's evaluation.
struct Evaluated {
    scores: Scores,
    error: Option<String>,
    details: BTreeMap<String, f64>,
    operators: BTreeMap<String, OperatorScore>,
    refinement: Option<Refinement>,
    examples: Vec<Example>,
}

/// Scores of mapped test queries against their mapped counterparts (`gallery`, row i matching
/// query i), and, when given, against the whole vocabulary: every item of the child's space
/// mapped, with `truth[i]` the row of query i's counterpart.
fn scores(
    metrics: &[Metric],
    queries: MatRef<'_, f32>,
    gallery: MatRef<'_, f32>,
    vocabulary: Option<(MatRef<'_, f32>, &[Option<usize>])>,
) -> Scores {
    let truth: Vec<Option<usize>> = (0..queries.nrows()).map(Some).collect();
    let mut out = Scores::new();
    let needs = |ms: &[Metric]| metrics.iter().any(|m| ms.contains(m));
    let nan = f64::NAN;
    for (scoring, prefix, group) in [
        (Scoring::Nn, "", [Metric::PAt1, Metric::PAt5, Metric::PAt10, Metric::Mrr]),
        (
            Scoring::Csls { k: 10 },
            "csls-",
            [Metric::CslsPAt1, Metric::CslsPAt5, Metric::CslsPAt10, Metric::CslsMrr],
        ),
    ] {
        if !needs(&group) {
            continue;
        }
        let r = retrieval(queries, gallery, &truth, scoring);
        if let Err(e) = &r {
            tracing::warn!("retrieval failed: {e}");
        }
        let r = r.ok();
        out.insert(format!("{prefix}p@1"), r.as_ref().map_or(nan, |r| r.p_at_1));
        out.insert(format!("{prefix}p@5"), r.as_ref().map_or(nan, |r| r.p_at_5));
        out.insert(format!("{prefix}p@10"), r.as_ref().map_or(nan, |r| r.p_at_10));
        out.insert(format!("{prefix}mrr"), r.as_ref().map_or(nan, |r| r.mrr));
    }
    if let Some((all, truth)) = vocabulary {
        for (scoring, metric) in [(Scoring::Nn, Metric::VocabPAt1), (Scoring::CSLS10, Metric::VocabCslsPAt1)]
        {
            if metrics.contains(&metric) {
                let r = retrieval(queries, all, truth, scoring);
                if let Err(e) = &r {
                    tracing::warn!("retrieval over the vocabulary failed: {e}");
                }
                out.insert(metric.name().into(), r.map_or(nan, |r| r.p_at_1));
            }
        }
    }
    if metrics.contains(&Metric::Cka) {
        out.insert("cka".into(), cka_linear(queries, gallery).unwrap_or(nan));
    }
    if metrics.contains(&Metric::CkaUnbiased) {
        out.insert("cka-unbiased".into(), cka_unbiased(queries, gallery).unwrap_or(nan));
    }
    if metrics.contains(&Metric::MutualKnn) {
        out.insert("mutual-knn".into(), mutual_knn(queries, gallery, 10).unwrap_or(nan));
    }
    out.retain(|k, _| metrics.iter().any(|m| m.name() == k));
    out
}

fn failed(metrics: &[Metric]) -> Scores {
    metrics.iter().map(|m| (m.name().to_owned(), f64::NAN)).collect()
}

/// `method` (its weights fixed by [`with_chosen_weights`]) for a refit on `pairs` pairs after a
/// first fit on `seeds`: the functional family's `lambda` and `mu` are relative to the anchors'
/// squared norm, which grows with the number of pairs, so they are scaled by `seeds / pairs` to
/// keep the absolute weight of the operators and of the ridge the first fit chose. An induced
/// dictionary of thousands of pairs then outweighs them as it grows, as it outweighs ridge's fixed
/// `lambda`; kept relative, a `mu` chosen on 25 anchors shrank every self-learning refit towards
/// zero (P@1 0.08 against ridge + self-learning's 0.62 on the word task).
fn for_refit(method: &MethodSpec, seeds: usize, pairs: usize) -> MethodSpec {
    let scale = seeds.max(1) as f64 / pairs.max(1) as f64;
    let mut method = method.clone();
    if let MethodSpec::Functional { lambda, mu, .. } | MethodSpec::Laplacian { lambda, mu, .. } = &mut method
    {
        *lambda = lambda.map(|w| w * scale);
        *mu = mu.map(|w| w * scale);
    }
    method
}

/// `method` with its unset `lambda`, `mu` and `reg` fixed to the values a fit chose (functional and
/// Laplacian methods cross-validate unset weights, CCA an unset `reg`).
fn with_chosen_weights(method: &MethodSpec, details: &BTreeMap<String, f64>) -> MethodSpec {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(method) else {
        return method.clone();
    };
    for key in ["lambda", "mu", "reg"] {
        if let (Some(slot), Some(v)) = (fields.get_mut(key), details.get(key)) {
            if slot.is_null() {
                *slot = serde_json::json!(v);
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_else(|_| method.clone())
}

/// `variant` with its self-learning replaced by `restarted` (a start's own runs), if it has any.
fn with_restarts<'v>(variant: &Variant<'v>, restarted: Option<&'v SelfLearningSpec>) -> Variant<'v> {
    match (restarted, &variant.refine) {
        (Some(spec), Some(Stage::SelfLearning(_))) => {
            Variant { method: variant.method, refine: Some(Stage::SelfLearning(spec)) }
        }
        _ => variant.clone(),
    }
}

/// Whether `variant` can be fitted from `start`: a start from the operators alone gives no
/// pairs, so only the methods that read operators can.
fn fits_from(start: &StartSpec, variant: &Variant<'_>) -> bool {
    !start.from_operators() || variant.method.reads_operators()
}

/// What a fit starts from: the anchor pairs, or pseudo-pairs from a zero-anchor start.
struct Seeds {
    /// (source row, target row) pairs into the candidate matrices.
    pairs: Vec<(usize, usize)>,
    /// Whether the pairs are true anchors (kept in every refit) or a start's pseudo-pairs
    /// (only the first fit's input, as in VecMap's unsupervised mode).
    anchors: bool,
}

/// The seeds of one anchor count: the anchors, or one zero-anchor start's pseudo-pairs (or why
/// the start found none), with the pairs the permutation null is fitted on.
struct SeedSet<'a> {
    /// The start (its position among the edge's starts), `None` for anchors.
    start: Option<(usize, &'a StartSpec)>,
    /// Computed by the first point that is not in the cache: a start's search costs minutes on
    /// a large vocabulary, and a resumed run whose points are all cached should not pay it.
    seeds: std::cell::OnceCell<(Result<Seeds, String>, Seeds)>,
}

/// Fits one variant on `seeds` (rows of `cx` and `cy`, the repeat's anchor pool in item order)
/// and returns the alignment, with what its refinement stage did. `pool_preprocess`: each
/// side's preprocessing fitted on its pool rows (`fit-on = "pool"`), used instead of fitting it on
/// the pairs.
#[allow(clippy::too_many_arguments)]
fn fit_variant(
    variant: &Variant<'_>,
    pre: &Preprocess,
    cx: MatRef<'_, f32>,
    cy: MatRef<'_, f32>,
    seeds: &Seeds,
    data: &FitData<'_>,
    seed: u64,
    pool_preprocess: Option<&PoolPreprocess>,
) -> Result<(Box<dyn Alignment>, Option<Refinement>), String> {
    // A refined point is a chain of fits on growing dictionaries: each functional solve starts
    // where the previous one ended.
    let warm = WarmStart::with_refit_tolerance(REFIT_TOLERANCE);
    let chained;
    let data = match variant.refine {
        Some(_) => {
            chained = FitData { warm: Some(&warm), ..data.clone() };
            &chained
        }
        None => data,
    };
    // Preprocessing fitted on the anchors (per fit) or on each side's pool (once, shared, with
    // the pool's rows transformed once).
    let fit_on_pairs = |method: &MethodSpec,
                        pairs: &[(usize, usize)]|
     -> Result<Box<dyn Alignment>, AlignError> {
        let (xi, yi): (Vec<usize>, Vec<usize>) = pairs.iter().copied().unzip();
        let fitted = match pool_preprocess {
            None => {
                let fit = Fit::new(method).preprocess(pre).data(data);
                fit.run_f32(rows(cx, &xi).as_ref(), rows(cy, &yi).as_ref())?
            }
            Some(pool) => {
                let (source, target) = (&pool.source, &pool.target);
                let fit = Fit::new(method).preprocessed(source.preprocess.clone(), target.preprocess.clone());
                fit.data(data).run_transformed(source.rows(&xi).as_ref(), target.rows(&yi).as_ref())?
            }
        };
        Ok(Box::new(fitted))
    };
    let base = fit_on_pairs(variant.method, &seeds.pairs).map_err(|e| e.to_string())?;
    let Some(stage) = variant.refine else {
        return Ok((base, None));
    };
    // Refits keep the weights the first fit chose on the anchors (cross-validating again on an
    // induced dictionary would tune them to the dictionary's own errors, and cost a grid of
    // solves per round), as absolute weights: see `for_refit`.
    let method = with_chosen_weights(variant.method, &base.details());
    let fit_pairs =
        |pairs: &[(usize, usize)]| fit_on_pairs(&for_refit(&method, seeds.pairs.len(), pairs.len()), pairs);
    let kept: &[(usize, usize)] = if seeds.anchors { &seeds.pairs } else { &[] };
    let (cx, cy): (CandidateRows<'_>, CandidateRows<'_>) = match pool_preprocess {
        Some(pool) => (pool.source.candidates(cx), pool.target.candidates(cy)),
        None => (cx.into(), cy.into()),
    };
    match stage {
        Stage::Refine(spec) => refine_from(base, &fit_pairs, cx, cy, kept, spec)
            .map(|(a, r)| (a, Some(Refinement::Refine(r))))
            .map_err(|e| e.to_string()),
        Stage::SelfLearning(spec) => self_learn_from(base, &fit_pairs, cx, cy, kept, spec, seed)
            .map(|(a, r)| (a, Some(Refinement::SelfLearning(r))))
            .map_err(|e| e.to_string()),
    }
}

/// The relative residual at which a functional refit inside refinement or self-learning stops
/// (the first fit of a point solves to the solver's `1e-10`): each round starts from the previous
/// round's map, and a round that only induces the next dictionary does not need the last digits.
/// Measured on Basic Pitch → piano roll (`experiments/nested-music.toml`, 25 anchors, functional +
/// self-learning): see docs/benchmarks.md.
const REFIT_TOLERANCE: f64 = 1e-6;

/// The seed of repeat `repeat`'s split.
pub(crate) fn repeat_seed(seed: u64, repeat: usize) -> u64 {
    seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(repeat as u64 + 1))
}

/// One repeat's order of the `n` items: the first `test` are the test items, the rest the anchor
/// pool, in the order anchors are taken (see the module docs).
pub(crate) fn split_order(
    split: Split,
    n: usize,
    test: usize,
    largest: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    match split {
        Split::Random => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            order
        }
        Split::Ordered => {
            let mut pool: Vec<usize> = (0..largest).collect();
            pool.shuffle(rng);
            (largest..largest + test).chain(pool).collect()
        }
    }
}

/// Runs the sweep of one edge. `ops` are the edge's operators embedded on both sides (for
/// functional methods and the operator metrics).
pub fn run_edge(
    exp: &Experiment,
    edge: &Edge,
    parent: &Embeddings,
    child: &Embeddings,
    ops: Option<&EdgeOperators>,
    cache: &Cache,
) -> Result<EdgeResult, HostError> {
    if parent.rows != child.rows {
        return Err(HostError::Usage(format!(
            "nodes `{}` and `{}` have {} and {} items; an edge needs paired items",
            edge.parent, edge.child, parent.rows, child.rows
        )));
    }
    let n = parent.rows;
    let test = test_size(exp, n);
    let largest = exp.anchors.iter().copied().max().unwrap_or(0);
    if largest + test > n {
        return Err(HostError::Usage(format!(
            "edge {} → {}: {largest} anchors plus {test} test items need {} items, but there are {n}",
            edge.parent,
            edge.child,
            largest + test
        )));
    }
    let (x, y) = (parent.matrix(), child.matrix());
    let mut variants: Vec<Variant<'_>> =
        edge.methods.iter().map(|m| Variant { method: &m.spec, refine: None }).collect();
    if let Some(r) = &edge.refine {
        variants.extend(
            edge.methods
                .iter()
                .filter(|m| m.refine)
                .map(|m| Variant { method: &m.spec, refine: Some(Stage::Refine(r)) }),
        );
    }
    if let Some(r) = &edge.self_learning {
        variants.extend(
            edge.methods
                .iter()
                .filter(|m| m.self_learning)
                .map(|m| Variant { method: &m.spec, refine: Some(Stage::SelfLearning(r)) }),
        );
    }
    let wants_vocabulary = edge.metrics.iter().any(|m| m.whole_vocabulary());
    // A rotation keeps every inner product when it maps into a space of at least the source's
    // dimension (PCA makes both sides equal); then CKA and mutual kNN cannot see the map.
    let isometric = edge.preprocess.pca.is_some() || parent.dim <= child.dim;
    let mut rotations: Vec<String> = Vec::new();

    let ops_key = ops.map(EdgeOperators::key).unwrap_or_default();
    let mut reports = Vec::new();
    let mut swatches = None;
    let largest_anchors = exp.anchors.iter().copied().max().unwrap_or(0);
    let mut points = Vec::new();
    let (mut points_cached, mut points_computed) = (0, 0);
    for repeat in 0..exp.repeats {
        let mut rng = ChaCha8Rng::seed_from_u64(repeat_seed(exp.seed, repeat));
        let order = split_order(exp.split, n, test, largest, &mut rng);
        let (test_idx, pool_idx) = order.split_at(test);
        // What a point's fit reads of the split: the test items, in order (the pool is the
        // rest); each anchor count adds its anchors below. In the point's key, so that a cached
        // point is never served for another split (an `ordered` split moves with the largest
        // anchor count).
        let mut split_key = KeyBuilder::new("split");
        for &i in test_idx {
            split_key.push(&(i as u64).to_le_bytes());
        }
        let (tx, ty) = (rows(x.as_ref(), test_idx), rows(y.as_ref(), test_idx));
        let (px, py) = (rows(x.as_ref(), pool_idx), rows(y.as_ref(), pool_idx));
        // The anchor pool in item order (most frequent first where the data set is ordered by
        // frequency): what refinement's `max-rank`, self-learning's `cutoff` and the starts'
        // `vocabulary` count from. `rank[p]` is pool position p's row there.
        let mut by_item: Vec<usize> = (0..pool_idx.len()).collect();
        by_item.sort_by_key(|&p| pool_idx[p]);
        let mut rank = vec![0; pool_idx.len()];
        for (r, &p) in by_item.iter().enumerate() {
            rank[p] = r;
        }
        let (cx, cy) = (rows(px.as_ref(), &by_item), rows(py.as_ref(), &by_item));
        let pool_preprocess = match edge.preprocess.fit_on {
            FitOn::Anchors => None,
            FitOn::Pool => match PoolPreprocess::fit(&edge.preprocess, cx.as_ref(), cy.as_ref()) {
                Ok(pool) => Some(pool),
                Err(e) => {
                    return Err(HostError::Usage(format!(
                        "edge {} → {}: preprocessing on the pool: {e}",
                        edge.parent, edge.child
                    )))
                }
            },
        };
        // With the preprocessing fitted once on the pool, every fit of this repeat sees the same
        // operator rows (and graph rows): each action is fitted once, by the first fit that
        // needs it. Fitted on each anchor set, the rows differ from fit to fit: nothing to keep.
        let memo = pool_preprocess.as_ref().map(|_| ActionMemo::new(2 * edge.operators.len() + 2));
        let vocabulary_truth: Vec<Option<usize>> = test_idx.iter().map(|&i| Some(i)).collect();
        let mut repeat_ops = ops.map(|o| o.for_repeat(parent, child, test_idx, pool_idx));
        if let (Some(r), Some(pool)) = (&mut repeat_ops, &pool_preprocess) {
            r.preprocess(&pool.source.preprocess, &pool.target.preprocess);
        }
        if repeat == 0 {
            swatches = ops.and_then(|o| o.swatches.as_ref()).map(|s| s.select(test_idx));
        }
        if let (0, Some(r)) = (repeat, &repeat_ops) {
            reports =
                operator_reports(cache, &ops_key, &edge.preprocess, r, (px.as_ref(), py.as_ref()), test_idx);
        }
        // Without operators, the fits that read unpaired rows (`laplacian`, a criterion) take
        // them from the pool as they would with operators.
        let pool_rows = repeat_ops.is_none().then(|| {
            crate::edge_operators::unpaired_rows(
                parent,
                child,
                pool_idx,
                edge.operator_items == crate::experiment::OperatorItems::Disjoint,
            )
        });
        for &anchors in &exp.anchors {
            let fit_seed = exp.seed ^ (repeat as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ anchors as u64;
            let mut data = match (&repeat_ops, &pool_rows) {
                (Some(r), _) => r.fit_data(fit_seed),
                (None, Some((px, py))) => FitData {
                    source_rows: Some(px.as_ref()),
                    target_rows: Some(py.as_ref()),
                    seed: fit_seed,
                    ..FitData::default()
                },
                (None, None) => FitData::default(),
            };
            data.memo = memo.as_ref();
            let mut anchors_key = split_key.clone();
            for &i in &pool_idx[..anchors] {
                anchors_key.push(&(i as u64).to_le_bytes());
            }
            let anchors_key = anchors_key.finish();
            // Each null pairing is drawn from its own seed (repeat, anchor count, start), so that
            // a cached point's null does not depend on which other anchor counts or starts the
            // file declares.
            let null_rng = |salt: u64| ChaCha8Rng::seed_from_u64(fit_seed ^ NULL_SEED.wrapping_mul(salt + 1));
            let partners = null_partners(anchors, pool_idx.len(), fit_seed ^ NULL_SEED);
            // With anchors, one set of seeds; with none, one per declared zero-anchor start.
            let starts: Vec<SeedSet<'_>> = if anchors > 0 {
                vec![SeedSet { start: None, seeds: std::cell::OnceCell::new() }]
            } else {
                edge.starts
                    .iter()
                    .enumerate()
                    .map(|(s, start)| SeedSet { start: Some((s, start)), seeds: std::cell::OnceCell::new() })
                    .collect()
            };
            // The swatch picture: the first repeat at the largest anchor count.
            let pictured: Option<&str> = ops
                .and_then(|o| o.swatches.as_ref())
                .filter(|_| repeat == 0 && anchors == largest_anchors)
                .map(|s| s.operator.as_str());
            let make_seeds = |start: Option<(usize, &StartSpec)>| -> (Result<Seeds, String>, Seeds) {
                let Some((s, start)) = start else {
                    let pairs = (0..anchors).map(|i| (rank[i], rank[i])).collect();
                    let null = (0..anchors).map(|i| (rank[i], rank[partners[i]])).collect();
                    return (Ok(Seeds { pairs, anchors: true }), Seeds { pairs: null, anchors: true });
                };
                let found = unsupervised_pairs(start, cx.as_ref(), cy.as_ref(), fit_seed)
                    .map(|(pairs, _)| Seeds { pairs, anchors: false })
                    .map_err(|e| format!("zero-anchor start `{}`: {e}", start.kind()));
                // The start's null pairs each source row with a random one of the start's
                // target rows.
                let null = found.as_ref().map_or_else(
                    |_| Vec::new(),
                    |f| {
                        let mut targets: Vec<usize> = f.pairs.iter().map(|p| p.1).collect();
                        targets.shuffle(&mut null_rng(s as u64 + 1));
                        f.pairs.iter().map(|p| p.0).zip(targets).collect()
                    },
                );
                (found, Seeds { pairs: null, anchors: false })
            };
            for SeedSet { start, seeds: lazy } in &starts {
                // A start may set its own runs of self-learning.
                let restarted = start.and_then(|(_, spec)| spec.restarts()).and_then(|restarts| {
                    edge.self_learning.as_ref().map(|sl| SelfLearningSpec { restarts, ..sl.clone() })
                });
                for variant in variants.iter().filter(|v| start.is_none_or(|(_, spec)| fits_from(spec, v))) {
                    let variant = &with_restarts(variant, restarted.as_ref());
                    // The first start a method can be fitted from gives its curve the anchors = 0
                    // point; the others are labelled.
                    let first = edge.starts.iter().position(|spec| fits_from(spec, variant));
                    let mut label = variant.label();
                    if let Some((s, spec)) = start.filter(|(s, _)| Some(*s) != first) {
                        label.push_str(&format!(" (start {}: {})", s + 1, spec.kind()));
                    }
                    if isometric && variant.method.maps_by_rotation() && !rotations.contains(&label) {
                        rotations.push(label.clone());
                    }
                    let key = KeyBuilder::new("point")
                        .text(crate::cache::code_key())
                        .text(&parent.key)
                        .text(&child.key)
                        .text(&serde_json::to_string(variant).unwrap_or_default())
                        .text(&serde_json::to_string(&start.map(|s| s.1)).unwrap_or_default())
                        .text(&serde_json::to_string(&edge.preprocess).unwrap_or_default())
                        .text(&serde_json::to_string(&edge.metrics).unwrap_or_default())
                        .push(&exp.seed.to_le_bytes())
                        .push(&(repeat as u64).to_le_bytes())
                        .push(&(anchors as u64).to_le_bytes())
                        .push(&(test as u64).to_le_bytes())
                        .push(&[u8::from(edge.null)])
                        .text(&ops_key)
                        .text(&anchors_key)
                        .finish();
                    if let Some(point) = cache.get_result::<Point>(&key) {
                        points.push(point);
                        points_cached += 1;
                        continue;
                    }
                    points_computed += 1;
                    let (seeds, null_seeds) = lazy.get_or_init(|| make_seeds(*start));
                    // `pictured`: the operator whose examples the swatch picture shows (the fit's
                    // own, never its null's).
                    let evaluate = |seeds: &Seeds, pictured: Option<&str>| -> Evaluated {
                        match fit_variant(
                            variant,
                            &edge.preprocess,
                            cx.as_ref(),
                            cy.as_ref(),
                            seeds,
                            &data,
                            fit_seed,
                            pool_preprocess.as_ref(),
                        ) {
                            Ok((a, refinement)) => {
                                let vocabulary = wants_vocabulary.then(|| a.map_target(y.as_ref()));
                                let mut s = scores(
                                    &edge.metrics,
                                    a.map_source(tx.as_ref()).as_ref(),
                                    a.map_target(ty.as_ref()).as_ref(),
                                    vocabulary.as_ref().map(|v| (v.as_ref(), vocabulary_truth.as_slice())),
                                );
                                let per_operator = match &repeat_ops {
                                    Some(r) => {
                                        let (extra, per) = operator_scores(
                                            a.as_ref(),
                                            r,
                                            tx.as_ref(),
                                            ty.as_ref(),
                                            &edge.metrics,
                                        );
                                        s.extend(extra);
                                        per
                                    }
                                    None => BTreeMap::new(),
                                };
                                let examples = match (&repeat_ops, pictured) {
                                    (Some(r), Some(op)) => crate::edge_operators::examples(
                                        a.as_ref(),
                                        r,
                                        op,
                                        tx.as_ref(),
                                        ty.as_ref(),
                                    ),
                                    _ => Vec::new(),
                                };
                                Evaluated {
                                    scores: s,
                                    error: None,
                                    details: a.details(),
                                    operators: per_operator,
                                    refinement,
                                    examples,
                                }
                            }
                            Err(e) => Evaluated {
                                scores: failed(&edge.metrics),
                                error: Some(e),
                                details: BTreeMap::new(),
                                operators: BTreeMap::new(),
                                refinement: None,
                                examples: Vec::new(),
                            },
                        }
                    };
                    let (evaluated, null) = match seeds {
                        // The fit and its null are independent and deterministic: run side by
                        // side, each fills what the other's sequential parts leave idle.
                        // With no pairs (the operators start) there is nothing to permute: the
                        // shuffled-operator control is that start's null.
                        Ok(seeds) if edge.null && !seeds.pairs.is_empty() => std::thread::scope(|s| {
                            let null = s.spawn(|| evaluate(null_seeds, None).scores);
                            let evaluated = evaluate(seeds, pictured);
                            let null = null.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                            (evaluated, Some(null))
                        }),
                        Ok(seeds) => (evaluate(seeds, pictured), None),
                        Err(e) => (
                            Evaluated {
                                scores: failed(&edge.metrics),
                                error: Some(e.clone()),
                                details: BTreeMap::new(),
                                operators: BTreeMap::new(),
                                refinement: None,
                                examples: Vec::new(),
                            },
                            edge.null.then(|| failed(&edge.metrics)),
                        ),
                    };
                    if let Some(e) = &evaluated.error {
                        tracing::warn!(edge = %format!("{} → {}", edge.parent, edge.child), method = %label, anchors, "fit failed: {e}");
                    }
                    let point = Point {
                        method: label,
                        anchors,
                        repeat,
                        scores: evaluated.scores,
                        null,
                        error: evaluated.error,
                        details: evaluated.details,
                        operators: evaluated.operators,
                        refinement: evaluated.refinement,
                        examples: evaluated.examples,
                        decoded: None,
                    };
                    cache.put_result(&key, &point)?;
                    points.push(point);
                }
            }
        }
        if let Some(memo) = &memo {
            tracing::debug!(hits = memo.hits(), fitted = memo.misses(), "operator actions");
        }
        tracing::info!(edge = %format!("{} → {}", edge.parent, edge.child), repeat = repeat + 1, of = exp.repeats, "repeat done");
    }
    let metrics: Vec<String> = edge.metrics.iter().map(|m| m.name().to_owned()).collect();
    let summary = summarise(&points, &metrics);
    let take_off = ["p@1", "vocab-p@1"]
        .iter()
        .filter(|m| metrics.iter().any(|x| x == *m))
        .flat_map(|m| take_offs(&points, m, takeoff::LEVEL))
        .collect();
    Ok(EdgeResult {
        parent: edge.parent.clone(),
        child: edge.child.clone(),
        items: n,
        skipped: [0, 0],
        test,
        parent_dim: parent.dim,
        child_dim: child.dim,
        metrics,
        points,
        summary,
        operator_items: edge.operator_items,
        operators: reports,
        take_off,
        rotations,
        swatches,
        example: None,
        points_cached,
        points_computed,
    })
}

/// Mean, std, min and max over repeats of every (method, anchors, metric).
pub fn summarise(points: &[Point], metrics: &[String]) -> Vec<Summary> {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for p in points {
        if !groups.contains(&(p.method.as_str(), p.anchors)) {
            groups.push((&p.method, p.anchors));
        }
    }
    let mut out = Vec::new();
    for (method, anchors) in groups {
        let group: Vec<&Point> =
            points.iter().filter(|p| p.method == method && p.anchors == anchors).collect();
        for metric in metrics {
            let values: Vec<f64> = group
                .iter()
                .filter_map(|p| p.scores.get(metric))
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let nulls: Vec<f64> = group
                .iter()
                .filter_map(|p| p.null.as_ref().and_then(|n| n.get(metric)))
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let (mean, std) = mean_std(&values);
            out.push(Summary {
                method: method.to_owned(),
                anchors,
                metric: metric.clone(),
                mean,
                std,
                min: values.iter().copied().fold(f64::NAN, f64::min),
                max: values.iter().copied().fold(f64::NAN, f64::max),
                null_mean: (!nulls.is_empty()).then(|| mean_std(&nulls).0),
                null_max: (!nulls.is_empty()).then(|| nulls.iter().copied().fold(f64::NAN, f64::max)),
                repeats: values.len(),
            });
        }
    }
    out
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Mixed into a fit's seed to draw its permutation null (the anchors' derangement, and each
/// zero-anchor start's shuffle).
const NULL_SEED: u64 = 0x6c8e_9cf5_7093_2bd5;

/// The permutation null's pairing: for each anchor (pool positions `0..anchors`), the pool
/// position whose target it is paired with. A derangement of the anchors, so that no anchor keeps
/// its partner: a uniform shuffle keeps one in place on average (both of 2 anchors half the time),
/// and a method that takes off from one or two correct pairs then looks as if it took off from
/// none. A single anchor is paired with the first pool item that is not an anchor (in a pool of
/// one item there is none, and the null is the fit itself).
pub(crate) fn null_partners(anchors: usize, pool: usize, seed: u64) -> Vec<usize> {
    match anchors {
        1 if pool > 1 => vec![1],
        _ => commute_align::functional::derangement(anchors, seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_pairs_no_anchor_with_its_own_partner() {
        for anchors in 2..30 {
            for seed in 0..50u64 {
                let partners = null_partners(anchors, 100, seed);
                let mut sorted = partners.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..anchors).collect::<Vec<_>>(), "a permutation of the anchors");
                assert!(
                    partners.iter().enumerate().all(|(i, &p)| i != p),
                    "{anchors} anchors, seed {seed}: {partners:?}"
                );
                assert_eq!(partners, null_partners(anchors, 100, seed), "seeded");
            }
        }
        // Two anchors have one derangement; one anchor is paired outside the anchors.
        assert_eq!(null_partners(2, 10, 7), vec![1, 0]);
        assert_eq!(null_partners(1, 10, 7), vec![1]);
        assert_eq!(null_partners(0, 10, 7), Vec::<usize>::new());
    }

    fn point(method: &str, anchors: usize, repeat: usize, p1: f64, null: f64) -> Point {
        Point {
            scores: [("p@1".to_owned(), p1)].into(),
            null: Some([("p@1".to_owned(), null)].into()),
            ..Point::new(method, anchors, repeat)
        }
    }

    #[test]
    fn summaries_give_mean_sample_std_range_and_null() {
        let points = vec![
            point("ridge", 5, 0, 0.2, 0.0),
            point("ridge", 5, 1, 0.4, 0.1),
            point("ridge", 10, 0, 0.9, 0.05),
        ];
        let s = summarise(&points, &["p@1".to_owned()]);
        assert_eq!(s.len(), 2);
        assert!((s[0].mean - 0.3).abs() < 1e-12);
        assert!((s[0].std - (0.02f64).sqrt()).abs() < 1e-12);
        assert_eq!((s[0].min, s[0].max, s[0].repeats), (0.2, 0.4, 2));
        assert_eq!(s[0].null_mean, Some(0.05));
        assert_eq!((s[1].anchors, s[1].std), (10, 0.0));
    }

    #[test]
    fn ordered_splits_test_on_the_items_after_the_anchor_pool() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let order = split_order(Split::Ordered, 100, 15, 50, &mut rng);
        assert_eq!(&order[..15], &(50..65).collect::<Vec<_>>()[..]);
        let mut pool = order[15..].to_vec();
        assert_ne!(pool, (0..50).collect::<Vec<_>>(), "the pool is shuffled per repeat");
        pool.sort_unstable();
        assert_eq!(pool, (0..50).collect::<Vec<_>>());
        let random = split_order(Split::Random, 100, 15, 50, &mut rng);
        let mut all = random.clone();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_ne!(&random[..15], &order[..15]);
    }

    #[test]
    fn refits_keep_the_first_fits_absolute_weights() {
        let chosen: MethodSpec = toml::from_str("kind = \"functional\"\nlambda = 1.0\nmu = 10.0").unwrap();
        let MethodSpec::Functional { lambda, mu, .. } = for_refit(&chosen, 25, 10_000) else { panic!() };
        assert_eq!((lambda, mu), (Some(0.0025), Some(0.025)));
        let laplacian: MethodSpec = toml::from_str("kind = \"laplacian\"\nmu = 2.0").unwrap();
        let MethodSpec::Laplacian { lambda, mu, k } = for_refit(&laplacian, 50, 100) else { panic!() };
        assert_eq!((lambda, mu, k), (None, Some(1.0), 10));
        // Methods whose weights are absolute already (ridge) or scale-free (CCA's reg) are kept.
        for kept in [MethodSpec::Ridge { lambda: 0.5 }, MethodSpec::Cca { dim: None, reg: Some(0.1) }] {
            assert_eq!(for_refit(&kept, 25, 10_000), kept);
        }
    }

    #[test]
    fn refits_keep_the_weights_the_first_fit_chose() {
        let unset: MethodSpec = serde_json::from_str(r#"{"kind":"functional"}"#).unwrap();
        let chosen: BTreeMap<String, f64> = [("lambda".to_owned(), 100.0), ("mu".to_owned(), 0.1)].into();
        let fixed = serde_json::to_value(with_chosen_weights(&unset, &chosen)).unwrap();
        assert_eq!((fixed["lambda"].as_f64(), fixed["mu"].as_f64()), (Some(100.0), Some(0.1)));
        let set: MethodSpec = serde_json::from_str(r#"{"kind":"functional","lambda":1.0}"#).unwrap();
        let kept = serde_json::to_value(with_chosen_weights(&set, &chosen)).unwrap();
        assert_eq!((kept["lambda"].as_f64(), kept["mu"].as_f64()), (Some(1.0), Some(0.1)));
        let ridge = MethodSpec::Ridge { lambda: 2.0 };
        assert_eq!(with_chosen_weights(&ridge, &chosen), ridge);
    }

    #[test]
    fn failed_fits_are_left_out_of_the_mean() {
        let points = vec![point("cca", 5, 0, f64::NAN, f64::NAN), point("cca", 5, 1, 0.5, 0.0)];
        let s = summarise(&points, &["p@1".to_owned()]);
        assert_eq!((s[0].mean, s[0].repeats), (0.5, 1));
    }
}
