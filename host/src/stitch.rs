//! Stitching: model A's token states mapped into model B's states at a layer and fed to the rest
//! of B, per repeat, anchor count and method, scored against B alone on the test items.
//!
//! The two models tokenise alike (the same vocabulary), so an item's token states in A and in B
//! are row for row the same tokens: every token of an anchor item is a pair. Per repeat the items
//! split as every edge's do (the same seed gives the same test items); per anchor count a map is
//! fitted on the anchor items' token rows, each test item's A states are mapped and resumed in
//! B, and the outputs are compared with B's own: the mean cosine, P@1 of each stitched output
//! among B's outputs of the test items, and — with a `downstream` node — the R² of a linear
//! readout fitted on B's outputs of the pool items and applied to the stitched outputs. Beside
//! them, per repeat, the references: B's own states resumed (the stitch through a perfect map,
//! which is B itself), A's states fed to B unmapped (the identity map, when the widths agree) and
//! the readout on B's own outputs (the downstream ceiling).
//!
//! A `functional` map also reads the stitch's operators: corresponding operators embedded by two
//! nodes in A's and B's spaces at the stitch's layers (mean-pooled states of, say, words and their
//! plurals). A linear map sends a mean of token rows to the mean of their images, so the pooled
//! states live in the coordinates the map is fitted in; with centring they are centred by the
//! anchors' token means, as the token rows are.

use crate::align::metrics::{retrieval, Scoring};
use crate::align::MethodSpec;
use crate::cache::{Cache, Key, KeyBuilder};
use crate::edge_operators::{EdgeOperators, EmbeddedPair, RepeatOperators, SplitCounts};
use crate::experiment::OperatorItems;
use crate::experiment::{Experiment, Stitch};
use crate::extract::{Embeddings, Extractor};
use crate::runner::{method_label, repeat_seed, rows, split_order, test_size};
use crate::token_map::{mean_row, resumed, unstacked, MapOperators, States, TokenMap};
use crate::worker::Opened;
use crate::HostError;
use commute_sdk::Value;
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reference that resumes B from its own states (a perfect map).
pub const OWN_STATES: &str = "B's own states";
/// The reference that feeds A's states to B unmapped.
pub const IDENTITY: &str = "identity (unmapped)";
/// The reference that reads the downstream score off B's own outputs.
pub const B_ALONE: &str = "B alone";

/// One evaluated stitch: a method at an anchor count in one repeat, or a reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StitchPoint {
    /// The method (its kind and options), or the reference's name.
    pub label: String,
    /// Anchor items whose token pairs the map was fitted on (0 for a reference).
    pub anchors: usize,
    /// The repeat (its split).
    pub repeat: usize,
    /// Token pairs the map was fitted on.
    pub token_pairs: usize,
    /// Mean cosine between the stitched and B's own output over the test items.
    pub cosine: f64,
    /// Share of test items whose stitched output is nearest (cosine) to B's own output of the
    /// same item among B's outputs of the test items.
    pub p_at_1: f64,
    /// R² of the downstream readout on the stitched outputs (with a `downstream` node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream: Option<f64>,
    /// Why the point has no scores (a fit that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fit's diagnostics: a functional map's chosen `lambda` and `mu`, its cross-validation
    /// folds and score (empty for the other methods and the references).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, f64>,
}

/// A stitch's sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StitchResult {
    /// The stitch's name.
    pub name: String,
    /// A's token states (a data set).
    pub source: String,
    /// B's token states, the map's targets (a data set).
    pub target: String,
    /// B from the layer on: `plugin/encoder`.
    pub resume: String,
    /// B alone (a node).
    pub reference: String,
    /// The downstream node, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
    /// Items, and test items per repeat.
    pub items: usize,
    /// Test items per repeat.
    pub test: usize,
    /// Mean token rows per item.
    pub tokens_per_item: f64,
    /// The methods' labels, in the file's order.
    pub methods: Vec<String>,
    /// The operator pairs functional maps read (label, and how many pairs each side fits its
    /// action on); empty without `operators`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<(String, SplitCounts)>,
    /// Every method at every anchor count above 0, per repeat.
    pub points: Vec<StitchPoint>,
    /// The references, per repeat.
    pub references: Vec<StitchPoint>,
    /// Points read from the cache.
    pub points_cached: usize,
    /// Points computed by this run.
    pub points_computed: usize,
    /// Whether this run rendered the token states (false when every point was cached).
    #[serde(default)]
    pub rendered: bool,
}

/// A stitch that could not be evaluated, with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedStitch {
    /// The stitch's name.
    pub name: String,
    /// What went wrong.
    pub error: String,
}

/// A linear readout (ridge with an intercept, its penalty by 5-fold cross-validation on the
/// rows it is fitted on) from B's outputs to the downstream node's vectors.
struct Readout {
    map: TokenMap,
}

const READOUT_LAMBDAS: [f64; 7] = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0];

impl Readout {
    fn fit(x: &Mat<f32>, y: &Mat<f32>) -> Result<Readout, String> {
        let n = x.nrows();
        let folds = 5.min(n);
        let mut best = (f64::INFINITY, READOUT_LAMBDAS[0]);
        for &lambda in &READOUT_LAMBDAS {
            let method = MethodSpec::Ridge { lambda };
            let mut error = 0.0;
            for f in 0..folds {
                let held: Vec<usize> = (0..n).filter(|i| i % folds == f).collect();
                let kept: Vec<usize> = (0..n).filter(|i| i % folds != f).collect();
                let fitted =
                    TokenMap::fit(&method, &rows(x.as_ref(), &kept), &rows(y.as_ref(), &kept), true, None)?;
                let predicted = fitted.apply(&rows(x.as_ref(), &held));
                let truth = rows(y.as_ref(), &held);
                error += squared_error(&predicted, &truth);
            }
            if error < best.0 {
                best = (error, lambda);
            }
        }
        Ok(Readout { map: TokenMap::fit(&MethodSpec::Ridge { lambda: best.1 }, x, y, true, None)? })
    }

    /// R² of the readout on `x` against `y`, averaged over `y`'s columns.
    fn r2(&self, x: &Mat<f32>, y: &Mat<f32>) -> f64 {
        let predicted = self.map.apply(x);
        let mean = mean_row(y);
        let cols: Vec<f64> = (0..y.ncols())
            .filter_map(|j| {
                let total: f64 =
                    (0..y.nrows()).map(|i| (f64::from(y[(i, j)]) - f64::from(mean[j])).powi(2)).sum();
                let residual: f64 = (0..y.nrows())
                    .map(|i| (f64::from(y[(i, j)]) - f64::from(predicted[(i, j)])).powi(2))
                    .sum();
                (total > 0.0).then(|| 1.0 - residual / total)
            })
            .collect();
        if cols.is_empty() {
            f64::NAN
        } else {
            cols.iter().sum::<f64>() / cols.len() as f64
        }
    }
}

fn squared_error(a: &Mat<f32>, b: &Mat<f32>) -> f64 {
    (0..a.nrows())
        .flat_map(|i| (0..a.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| f64::from(a[(i, j)] - b[(i, j)]).powi(2))
        .sum()
}

/// The scores of stitched outputs `out` against B's own outputs `own` of the same test items.
fn scores(out: &Mat<f32>, own: &Mat<f32>) -> Result<(f64, f64), String> {
    let n = out.nrows();
    let cosine = (0..n)
        .map(|i| {
            let (mut dot, mut a, mut b) = (0.0f64, 0.0f64, 0.0f64);
            for j in 0..out.ncols() {
                let (u, v) = (f64::from(out[(i, j)]), f64::from(own[(i, j)]));
                dot += u * v;
                a += u * u;
                b += v * v;
            }
            dot / (a.sqrt() * b.sqrt()).max(f64::MIN_POSITIVE)
        })
        .sum::<f64>()
        / n.max(1) as f64;
    let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
    let p1 = retrieval(out.as_ref(), own.as_ref(), &truth, Scoring::Nn).map_err(|e| e.to_string())?.p_at_1;
    Ok((cosine, p1))
}

/// What every point of a stitch reads, for the cache.
struct Inputs<'a> {
    stitch: &'a Stitch,
    source: Key,
    target: Key,
    resume: Key,
    reference: &'a Embeddings,
    downstream: Option<&'a Embeddings>,
    /// The operators' key, which only the points of methods that read operators depend on.
    operators: Option<Key>,
}

impl Inputs<'_> {
    fn key(
        &self,
        exp: &Experiment,
        method: Option<&MethodSpec>,
        label: &str,
        repeat: usize,
        anchors: usize,
        split: &KeyBuilder,
    ) -> Key {
        let operators = match (method, &self.operators) {
            (Some(m), Some(k)) if m.reads_operators() => k.as_str(),
            _ => "",
        };
        KeyBuilder::new("stitch-point")
            .text(crate::cache::code_key())
            .text(&self.source)
            .text(&self.target)
            .text(&self.resume)
            .text(&self.reference.key)
            .text(self.downstream.map_or("", |d| d.key.as_str()))
            .text(label)
            .push(&[u8::from(self.stitch.center)])
            .push(&exp.seed.to_le_bytes())
            .push(&(repeat as u64).to_le_bytes())
            .push(&(anchors as u64).to_le_bytes())
            .text(&split.finish())
            .text(operators)
            .finish()
    }
}

/// A stitch's operators, embedded: each pair's rows in A's space (the `source` operator node)
/// and B's (the `target` node), each side's items half of the operators' items (disjoint halves,
/// as on an edge, so the operators pair no item across the spaces). They do not depend on the
/// split: no operator item is a test item (they are another data set's).
fn stitch_operators(
    stitch: &Stitch,
    extractor: &mut Extractor<'_>,
) -> Result<Option<(Key, RepeatOperators)>, HostError> {
    let Some(ops) = &stitch.operators else { return Ok(None) };
    let (source, target) = (extractor.node(&ops.source)?, extractor.node(&ops.target)?);
    let mut pairs = Vec::new();
    for pair in &ops.pairs {
        let parent = extractor.operator(&ops.source, &pair.parent)?;
        let child = extractor.operator(&ops.target, &pair.child)?;
        pairs.push(EmbeddedPair { pair: pair.clone(), parent, child });
    }
    let embedded = EdgeOperators { pairs, items: OperatorItems::Disjoint, order: None, swatches: None };
    let both: Vec<usize> =
        (0..source.rows.min(target.rows)).filter(|&i| source.is_valid(i) && target.is_valid(i)).collect();
    let rows = embedded.for_repeat(&source, &target, &[], &both);
    for (label, c) in rows.labels.iter().zip(&rows.counts) {
        tracing::info!(
            stitch = stitch.name,
            operator = label,
            source = c.parent_fit,
            target = c.child_fit,
            "operator pairs each side fits its action on"
        );
    }
    Ok(Some((embedded.key(), rows)))
}

/// A stitch's token states, rendered on first need: a rerun whose points are all cached renders
/// nothing.
struct LazyStates<'a> {
    stitch: &'a Stitch,
    /// Items, as the reference node has them.
    n: usize,
    /// The operators' widths (A's, B's), checked against the states' once rendered.
    operator_widths: Option<(usize, usize)>,
    loaded: Option<(States, States)>,
}

impl LazyStates<'_> {
    fn get(
        &mut self,
        extractor: &mut Extractor<'_>,
        cache: &Cache,
        tokens: &Key,
    ) -> Result<&(States, States), HostError> {
        if self.loaded.is_none() {
            let (stitch, n) = (self.stitch, self.n);
            let what = format!("stitch {}", stitch.name);
            let source = States::read(&stitch.source, extractor.values(&stitch.source)?.1)?;
            let target = States::read(&stitch.target, extractor.values(&stitch.target)?.1)?;
            if source.rows.len() != n || target.rows.len() != n {
                return Err(HostError::Usage(format!(
                    "{what}: `{}` has {} items, `{}` {} and node `{}` {n}",
                    stitch.source,
                    source.rows.len(),
                    stitch.target,
                    target.rows.len(),
                    stitch.reference
                )));
            }
            if let Some(i) = (0..n).find(|&i| source.rows[i] != target.rows[i]) {
                return Err(HostError::Usage(format!(
                    "{what}: item {i} has {} token states in `{}` and {} in `{}`: a stitch pairs tokens row for row, so both models must tokenise it alike (same vocabulary, same length cut)",
                    source.rows[i], stitch.source, target.rows[i], stitch.target
                )));
            }
            if let (Some((a, b)), Some(ops)) = (self.operator_widths, &stitch.operators) {
                for (node, width, states, data) in
                    [(&ops.source, a, &source, &stitch.source), (&ops.target, b, &target, &stitch.target)]
                {
                    if width != states.width {
                        return Err(HostError::Usage(format!(
                            "{what}: operator node `{node}` is {width} wide and the token states of `{data}` {}: its vectors must be the same model's states at the same layer (mean-pooled)",
                            states.width
                        )));
                    }
                }
            }
            cache.put_result(tokens, &Summary::of(&source, &target))?;
            self.loaded = Some((source, target));
        }
        self.loaded.as_ref().ok_or_else(|| HostError::Usage("the token states were not rendered".to_owned()))
    }
}

/// What a rerun needs to know of the token states without rendering them.
#[derive(Serialize, Deserialize)]
struct Summary {
    tokens_per_item: f64,
    /// A's and B's widths (A's states are fed unmapped only when they agree).
    widths: (usize, usize),
}

impl Summary {
    fn of(source: &States, target: &States) -> Summary {
        Summary {
            tokens_per_item: source.rows.iter().sum::<usize>() as f64 / source.rows.len().max(1) as f64,
            widths: (source.width, target.width),
        }
    }
}

/// Runs the sweep of one stitch: every repeat × anchor count (above 0) × method, and the
/// references per repeat, each point cached by its inputs. The token states are rendered only
/// when a point is missing.
pub fn run_stitch(
    exp: &Experiment,
    stitch: &Stitch,
    extractor: &mut Extractor<'_>,
    cache: &Cache,
) -> Result<StitchResult, HostError> {
    let what = format!("stitch {}", stitch.name);
    let reference = extractor.node(&stitch.reference)?;
    let downstream = stitch.downstream.as_deref().map(|d| extractor.node(d)).transpose()?;
    let (source_key, target_key) =
        (extractor.values_key(&stitch.source)?, extractor.values_key(&stitch.target)?);
    let tokens_key = KeyBuilder::new("stitch-token-summary").text(&source_key).text(&target_key).finish();
    let summary = cache.get_result::<Summary>(&tokens_key);
    let n = reference.rows;
    let test = test_size(exp, n);
    let largest = exp.anchors.iter().copied().max().unwrap_or(0);
    if largest + test > n {
        return Err(HostError::Usage(format!(
            "{what}: {largest} anchors plus {test} test items need {} items, but there are {n}",
            largest + test
        )));
    }
    let operators = stitch_operators(stitch, extractor)?;
    let mut states = LazyStates {
        stitch,
        n,
        operator_widths: operators
            .as_ref()
            .map(|(_, rows)| (rows.graph_rows.0.ncols(), rows.graph_rows.1.ncols())),
        loaded: None,
    };
    let inputs = Inputs {
        stitch,
        source: source_key,
        target: target_key,
        resume: extractor.function_key(&stitch.resume)?,
        reference: &reference,
        downstream: downstream.as_ref(),
        operators: operators.as_ref().map(|o| o.0.clone()),
    };
    let own_all = reference.matrix();
    let down_all = downstream.as_ref().map(Embeddings::matrix);
    let mut resume: Option<Opened> = None;
    let mut resume_on = |states: Vec<Value>, extractor: &Extractor<'_>| -> Result<Mat<f32>, HostError> {
        if resume.is_none() {
            resume = Some(extractor.open_call(&stitch.resume)?);
        }
        match resume.as_mut() {
            Some(r) => resumed(r, states, &what),
            None => Err(HostError::Usage(format!("{what}: the resume could not be opened"))),
        }
    };
    let methods: Vec<(String, &MethodSpec)> = stitch.methods.iter().map(|m| (method_label(m), m)).collect();
    if let Some((label, _)) = methods.iter().find(|(_, m)| m.reads_operators() && operators.is_none()) {
        return Err(HostError::Usage(format!(
            "{what}: `{label}` reads operators, and the stitch declares none"
        )));
    }
    let (mut points, mut references) = (Vec::new(), Vec::new());
    let (mut cached, mut computed) = (0, 0);
    for repeat in 0..exp.repeats {
        let mut rng = ChaCha8Rng::seed_from_u64(repeat_seed(exp.seed, repeat));
        let order = split_order(exp.split, n, test, largest, &mut rng);
        let (test_idx, pool_idx) = order.split_at(test);
        let mut split = KeyBuilder::new("split");
        for &i in test_idx {
            split.push(&(i as u64).to_le_bytes());
        }
        let own = rows(own_all.as_ref(), test_idx);
        // The downstream readout, fitted on B's outputs of the pool.
        let readout = match &down_all {
            Some(d) => Some(
                Readout::fit(&rows(own_all.as_ref(), pool_idx), &rows(d.as_ref(), pool_idx))
                    .map_err(|e| HostError::Usage(format!("{what}: the downstream readout: {e}")))?,
            ),
            None => None,
        };
        let down_test = down_all.as_ref().map(|d| rows(d.as_ref(), test_idx));
        let downstream_of = |out: &Mat<f32>| match (&readout, &down_test) {
            (Some(r), Some(t)) => Some(r.r2(out, t)),
            _ => None,
        };
        let evaluate = |label: &str, anchors: usize, token_pairs: usize, out: Result<Mat<f32>, String>| {
            let point = |cosine, p_at_1, downstream, error| StitchPoint {
                label: label.to_owned(),
                anchors,
                repeat,
                token_pairs,
                cosine,
                p_at_1,
                downstream,
                error,
                details: BTreeMap::new(),
            };
            match out.and_then(|out| scores(&out, &own).map(|s| (s, downstream_of(&out)))) {
                Ok(((cosine, p1), down)) => point(cosine, p1, down, None),
                Err(e) => point(f64::NAN, f64::NAN, None, Some(e)),
            }
        };
        // References: B from its own states, and A's states unmapped (when the widths agree).
        for name in [OWN_STATES, IDENTITY] {
            if name == IDENTITY && summary.as_ref().is_some_and(|s| s.widths.0 != s.widths.1) {
                continue;
            }
            let key = inputs.key(exp, None, name, repeat, 0, &split);
            if let Some(p) = cache.get_result::<StitchPoint>(&key) {
                references.push(p);
                cached += 1;
                continue;
            }
            let (source, target) = states.get(extractor, cache, &tokens_key)?;
            if name == IDENTITY && source.width != target.width {
                continue;
            }
            let test_rows: Vec<usize> = test_idx.iter().map(|&i| source.rows[i]).collect();
            let fed = if name == OWN_STATES { target.stacked(test_idx) } else { source.stacked(test_idx) };
            let out = resume_on(unstacked(&fed, &test_rows), extractor)?;
            let p = evaluate(name, 0, 0, Ok(out));
            cache.put_result(&key, &p)?;
            computed += 1;
            references.push(p);
        }
        if let (Some(r), Some(t)) = (&readout, &down_test) {
            references.push(StitchPoint {
                label: B_ALONE.to_owned(),
                anchors: 0,
                repeat,
                token_pairs: 0,
                cosine: 1.0,
                p_at_1: 1.0,
                downstream: Some(r.r2(&own, t)),
                error: None,
                details: BTreeMap::new(),
            });
        }
        for &anchors in exp.anchors.iter().filter(|&&a| a > 0) {
            let anchor_items = &pool_idx[..anchors];
            let mut anchors_split = KeyBuilder::new("anchors");
            anchors_split.text(&split.finish());
            for &i in anchor_items {
                anchors_split.push(&(i as u64).to_le_bytes());
            }
            let mut pairs: Option<(Mat<f32>, Mat<f32>)> = None;
            for (label, method) in &methods {
                let key = inputs.key(exp, Some(method), label, repeat, anchors, &anchors_split);
                if let Some(p) = cache.get_result::<StitchPoint>(&key) {
                    points.push(p);
                    cached += 1;
                    continue;
                }
                let (source, target) = states.get(extractor, cache, &tokens_key)?;
                let token_pairs: usize = anchor_items.iter().map(|&i| source.rows[i]).sum();
                let test_rows: Vec<usize> = test_idx.iter().map(|&i| source.rows[i]).collect();
                let (x, y) =
                    pairs.get_or_insert_with(|| (source.stacked(anchor_items), target.stacked(anchor_items)));
                let map_operators = operators.as_ref().map(|(_, rows)| MapOperators {
                    rows,
                    seed: repeat_seed(exp.seed, repeat).wrapping_add(anchors as u64),
                });
                let mut details = BTreeMap::new();
                let out = match TokenMap::fit(method, x, y, stitch.center, map_operators.as_ref()) {
                    Ok(map) => {
                        details = map.details();
                        let mapped = map.apply(&source.stacked(test_idx));
                        Ok(resume_on(unstacked(&mapped, &test_rows), extractor)?)
                    }
                    Err(e) => Err(format!("the fit on {token_pairs} token pairs failed: {e}")),
                };
                let p = StitchPoint { details, ..evaluate(label, anchors, token_pairs, out) };
                cache.put_result(&key, &p)?;
                computed += 1;
                points.push(p);
            }
        }
        tracing::info!(stitch = stitch.name, repeat = repeat + 1, of = exp.repeats, "repeat done");
    }
    let tokens_per_item = match (&states.loaded, summary) {
        (Some((source, target)), _) => Summary::of(source, target).tokens_per_item,
        (None, Some(summary)) => summary.tokens_per_item,
        (None, None) => {
            let (source, target) = states.get(extractor, cache, &tokens_key)?;
            Summary::of(source, target).tokens_per_item
        }
    };
    Ok(StitchResult {
        name: stitch.name.clone(),
        source: stitch.source.clone(),
        target: stitch.target.clone(),
        resume: format!("{}/{}", stitch.resume.plugin, stitch.resume.function),
        reference: stitch.reference.clone(),
        downstream: stitch.downstream.clone(),
        items: n,
        test,
        tokens_per_item,
        methods: methods.into_iter().map(|(l, _)| l).collect(),
        operators: operators
            .map(|(_, rows)| rows.labels.into_iter().zip(rows.counts).collect())
            .unwrap_or_default(),
        points,
        references,
        points_cached: cached,
        points_computed: computed,
        rendered: states.loaded.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Mat::from_fn(rows, cols, |_, _| rng.random_range(-1.0f32..1.0))
    }

    #[test]
    fn the_readout_explains_a_linear_target_and_not_noise() {
        let x = random(200, 6, 3);
        let linear = Mat::from_fn(200, 1, |i, _| 2.0 * x[(i, 0)] - x[(i, 3)] + 0.5);
        let noise = random(200, 1, 4);
        let (fit, held) = ((0..150).collect::<Vec<_>>(), (150..200).collect::<Vec<_>>());
        let readout = |y: &Mat<f32>| {
            let r = Readout::fit(&rows(x.as_ref(), &fit), &rows(y.as_ref(), &fit)).expect("a readout");
            r.r2(&rows(x.as_ref(), &held), &rows(y.as_ref(), &held))
        };
        assert!(readout(&linear) > 0.999);
        assert!(readout(&noise) < 0.1);
    }
}
