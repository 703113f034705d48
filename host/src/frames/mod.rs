//! Frame-level edges (`level = "frame"`): maps fitted on frame pairs of the anchor items and
//! scored on the test items' frames, whole sequences and decoded notes.
//!
//! Both nodes keep their frames (encoders with `pooling = "none"`); [`clock`] puts each item's
//! two sequences on one clock from provenance. Per repeat the items split as every edge's do (the
//! same seed gives the same test items); per anchor count every method is fitted on the anchor
//! items' frame pairs (thinned evenly to `fit-frames`), a `functional` one also on each side's
//! operator frame pairs (an item's frame `t` and its image's frame `t`, or where the operator
//! changes the length — a tempo — the frames the DTW path within that space pairs; on pool items
//! only, the two sides on different items). Test frames are never fitted on, and anchors are counted in
//! items. Scores, on the test items, in the map's comparison space:
//!
//! - `frame-p@1`: each mapped test frame (thinned evenly to `test-frames`) finds its own target
//!   frame nearest (squared Euclidean distance, ties found) among the thinned test frames;
//! - `sequence-p@1`: each mapped test sequence (the first `sequences` test items) finds its own
//!   target sequence at the lowest DTW cost ([`dtw`]);
//! - with `decode`, `note-f1`, `note-precision` and `note-recall`: each mapped test sequence,
//!   taken back to the child's own space, is decoded into a score by the target modality's
//!   decoder (a plugin render) and its notes matched against the true score's ([`notes`]),
//!   pooled over the test items. The same decoder on the child's own frames is the ceiling,
//!   reported as the reference `decoded from the child's frames`; with `parent-decode`, the
//!   parent modality's own decoder on its own frames (Basic Pitch transcribing the audio, no map)
//!   is the reference `decoded from the parent's frames`.
//!
//! Beside each fit, its permutation null: the anchor items' pairing deranged, item `a`'s parent
//! frames paired with item `π(a)`'s child frames.

pub mod clock;
pub mod dtw;
pub mod notes;

use crate::align::{Fit, FitData, FittedMap, OperatorRows};
use crate::cache::{Cache, KeyBuilder};
use crate::experiment::{Edge, Experiment, FrameSpec};
use crate::extract::{Embeddings, OperatorEmbeddings};
use crate::runner::{
    method_label, null_partners, repeat_seed, split_order, summarise, test_size, EdgeResult, Point, Scores,
};
use crate::worker::Opened;
use crate::HostError;
use clock::Clock;
use commute_sdk::{Score, Sequence, Value};
use faer::{Mat, MatRef};
use notes::NoteCounts;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The reference a decoder gives on the child's own frames (the ceiling of decoded scores).
pub const DECODED_CHILD: &str = "decoded from the child's frames";
/// The reference `parent-decode` gives on the parent's own frames (no map at all).
pub const DECODED_PARENT: &str = "decoded from the parent's frames";

/// The test item a frame-level edge's report shows decoded: the first repeat's first test item.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DecodedExample {
    /// Its index among the edge's items.
    pub item: usize,
    /// Its true score.
    pub truth: Score,
}

/// An operator pair of a frame-level edge, embedded by both nodes.
pub struct FrameOperator {
    /// `parent-op ↔ child-op`.
    pub label: String,
    /// In the parent's space.
    pub parent: OperatorEmbeddings,
    /// In the child's space.
    pub child: OperatorEmbeddings,
}

/// The target modality's decoder and the true scores, item by item.
pub struct Decoder {
    /// The render (a sequence in, a score out).
    pub render: Opened,
    /// Per item of the edge, its true score.
    pub truth: Vec<Score>,
    /// `parent-decode`: a decoder of the parent's own frames, at the parent's own rate.
    pub parent: Option<Opened>,
}

/// What a frame-level edge reads: both nodes' frames, its operators and its decoder.
pub struct FrameInputs<'a> {
    /// The parent node's frames.
    pub parent: &'a Embeddings,
    /// The child node's frames.
    pub child: &'a Embeddings,
    /// The edge's operator pairs.
    pub operators: &'a [FrameOperator],
    /// The target modality's decoder, with `frames.decode`.
    pub decoder: Option<Decoder>,
}

/// Evaluates frame-level edge `edge` between two frame-level nodes.
pub fn run_frame_edge(
    exp: &Experiment,
    edge: &Edge,
    spec: &FrameSpec,
    inputs: FrameInputs<'_>,
    cache: &Cache,
) -> Result<EdgeResult, HostError> {
    let FrameInputs { parent, child, operators, mut decoder } = inputs;
    let name = format!("edge {} → {}", edge.parent, edge.child);
    let (Some(pf), Some(cf)) = (&parent.frames, &child.frames) else {
        let pooled = if parent.frames.is_none() { &edge.parent } else { &edge.child };
        return Err(HostError::Usage(format!(
            "{name} is frame-level, but node `{pooled}` pools its frames: give its encoder \
             `pooling = \"none\"` (or `pool = \"none\"`), or leave `level = \"frame\"` out"
        )));
    };
    if parent.rows != child.rows {
        return Err(HostError::Usage(format!(
            "{name}: nodes `{}` and `{}` have {} and {} items; frame pairs need the same items",
            edge.parent, edge.child, parent.rows, child.rows
        )));
    }
    let clock = Clock::new(pf.rate, cf.rate);
    let (dp, dc) = (parent.dim, child.dim);
    // Each item's two sequences on the clock; an item either side skipped has none.
    let aligned: Vec<(Vec<f32>, Vec<f32>)> = (0..parent.rows)
        .map(|i| match parent.is_valid(i) && child.is_valid(i) {
            true => clock.align(parent.item(i), dp, child.item(i), dc),
            false => (Vec::new(), Vec::new()),
        })
        .collect();
    let usable: Vec<usize> = (0..aligned.len()).filter(|&i| !aligned[i].0.is_empty()).collect();
    let n = usable.len();
    let test = test_size(exp, n);
    let largest = exp.anchors.iter().copied().max().unwrap_or(0);
    if largest + test > n {
        return Err(HostError::Usage(format!(
            "{name}: {largest} anchor items plus {test} test items need {} items with frames on both \
             sides, but there are {n}",
            largest + test
        )));
    }
    if let Some(d) = &decoder {
        if d.truth.len() != parent.rows {
            return Err(HostError::Usage(format!(
                "{name}: the decoder's true scores are {} items, the edge's nodes {}",
                d.truth.len(),
                parent.rows
            )));
        }
    }
    let frames_total: usize = usable.iter().map(|&i| aligned[i].0.len() / dp).sum();
    tracing::info!(edge = %name, items = n, frames = frames_total, clock = clock.rate, "frame-level edge");
    let metrics = spec.metrics();
    let spec_key = serde_json::to_string(spec).unwrap_or_default();
    let mut ops_key = KeyBuilder::new("frame-operators");
    for op in operators {
        ops_key.text(&op.label).text(&op.parent.output.key).text(&op.child.output.key);
    }
    let ops_key = ops_key.finish();

    let mut points = Vec::new();
    let mut example = None;
    let (mut cached, mut computed) = (0, 0);
    for repeat in 0..exp.repeats {
        let mut rng = ChaCha8Rng::seed_from_u64(repeat_seed(exp.seed, repeat));
        let order: Vec<usize> =
            split_order(exp.split, n, test, largest, &mut rng).into_iter().map(|k| usable[k]).collect();
        let (test_items, pool) = order.split_at(test);
        let op_rows = operator_rows(operators, pool, spec.fit_frames);
        let eval = Evaluation::new(&aligned, test_items, dp, dc, spec);
        // The references, once per repeat: the decoder on the child's own frames (its ceiling)
        // and `parent-decode` on the parent's own frames, each at every anchor count.
        if let Some(d) = decoder.as_mut() {
            if repeat == 0 {
                example =
                    test_items.first().map(|&item| DecodedExample { item, truth: d.truth[item].clone() });
            }
            let mut references = vec![(
                DECODED_CHILD,
                cached_reference(cache, "ceiling", &spec_key, child, repeat, test_items, || {
                    decoded_scores(d, &eval.child, test_items, clock.rate, spec)
                })?,
            )];
            if d.parent.is_some() {
                let own: Vec<Mat<f64>> = test_items
                    .iter()
                    .map(|&i| {
                        let v = parent.item(i);
                        Mat::from_fn(v.len() / dp, dp, |r, c| f64::from(v[r * dp + c]))
                    })
                    .collect();
                let reference =
                    cached_reference(cache, "parent ceiling", &spec_key, parent, repeat, test_items, || {
                        decoded_scores_with(d, true, &own, test_items, pf.rate, spec)
                    })?;
                references.push((DECODED_PARENT, reference));
            }
            for (label, (scores, decoded)) in references {
                for &anchors in &exp.anchors {
                    let mut p = reference_point(label, scores.clone(), anchors, repeat);
                    p.decoded = decoded.clone().filter(|_| repeat == 0 && anchors == largest);
                    points.push(p);
                }
            }
        }
        for &anchors in &exp.anchors {
            let anchor_items = &pool[..anchors.min(pool.len())];
            let seed = exp.seed ^ (repeat as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ anchors as u64;
            let partners = null_partners(anchors, pool.len(), seed ^ 0x6c8e_9cf5_7093_2bd5);
            for method in &edge.methods {
                let label = method_label(&method.spec);
                let key = KeyBuilder::new("frame-point")
                    .text(crate::cache::code_key())
                    .text(&parent.key)
                    .text(&child.key)
                    .text(&serde_json::to_string(&method.spec).unwrap_or_default())
                    .text(&serde_json::to_string(&edge.preprocess).unwrap_or_default())
                    .text(&spec_key)
                    .text(&ops_key)
                    .push(&[u8::from(edge.null)])
                    .text(&point_key(&[], repeat, anchors, anchor_items))
                    .text(&point_key(&[], repeat, anchors, test_items))
                    .finish();
                if let Some(p) = cache.get_result::<Point>(&key) {
                    cached += 1;
                    points.push(p);
                    continue;
                }
                let fit = |pairs: &[(usize, usize)]| -> Result<FittedMap, String> {
                    let (x, y) = fit_rows(&aligned, pairs, dp, dc, spec.fit_frames);
                    let data = FitData {
                        source_operators: op_rows
                            .iter()
                            .map(|o| OperatorRows::new(&o.0, o.1.as_ref(), o.2.as_ref()))
                            .collect(),
                        target_operators: op_rows
                            .iter()
                            .map(|o| OperatorRows::new(&o.0, o.3.as_ref(), o.4.as_ref()))
                            .collect(),
                        seed,
                        ..FitData::default()
                    };
                    Fit::new(&method.spec)
                        .preprocess(&edge.preprocess)
                        .data(&data)
                        .run_f32(x.as_ref(), y.as_ref())
                        .map_err(|e| e.to_string())
                };
                let mut point = Point::new(label, anchors, repeat);
                if anchors < method.spec.min_pairs().max(1) {
                    point.error =
                        Some(format!("{} needs anchor items; this point has {anchors}", method.spec.kind()));
                } else {
                    let pairs: Vec<(usize, usize)> = anchor_items.iter().map(|&i| (i, i)).collect();
                    match fit(&pairs)
                        .and_then(|map| eval.scores(&map, decoder.as_mut(), clock.rate).map(|s| (map, s)))
                    {
                        Ok((map, (scores, decoded))) => {
                            point.scores = scores;
                            point.decoded = decoded.filter(|_| repeat == 0 && anchors == largest);
                            point.details = map.details.clone();
                            point.details.insert(
                                "frame-pairs".into(),
                                fit_count(&aligned, &pairs, dp, spec.fit_frames) as f64,
                            );
                        }
                        Err(e) => point.error = Some(e),
                    }
                    if edge.null && point.error.is_none() {
                        let null: Vec<(usize, usize)> =
                            (0..anchor_items.len()).map(|a| (anchor_items[a], pool[partners[a]])).collect();
                        point.null = fit(&null)
                            .and_then(|map| eval.scores(&map, decoder.as_mut(), clock.rate))
                            .ok()
                            .map(|s| s.0);
                    }
                }
                cache.put_result(&key, &point)?;
                computed += 1;
                points.push(point);
            }
        }
    }
    let mut labels: Vec<String> = Vec::new();
    for p in &points {
        if !labels.contains(&p.method) {
            labels.push(p.method.clone());
        }
    }
    let summary = summarise(&points, &metrics);
    Ok(EdgeResult {
        parent: edge.parent.clone(),
        child: edge.child.clone(),
        items: n,
        skipped: [parent.skipped, child.skipped],
        test,
        parent_dim: dp,
        child_dim: dc,
        metrics,
        points,
        summary,
        operator_items: edge.operator_items,
        operators: Vec::new(),
        take_off: Vec::new(),
        rotations: Vec::new(),
        swatches: None,
        example,
        points_cached: cached,
        points_computed: computed,
    })
}

/// A key naming a repeat, an anchor count and a list of items.
fn point_key(parts: &[&str], repeat: usize, anchors: usize, items: &[usize]) -> String {
    let mut k = KeyBuilder::new("frame-split");
    for p in parts {
        k.text(p);
    }
    k.push(&(repeat as u64).to_le_bytes()).push(&(anchors as u64).to_le_bytes());
    for &i in items {
        k.push(&(i as u64).to_le_bytes());
    }
    k.finish()
}

/// A reference's decoded scores for one repeat's test items, from the cache or computed (keyed
/// by the host's code, the edge's frame options, the node decoded, and the test items).
fn cached_reference(
    cache: &Cache,
    what: &str,
    spec_key: &str,
    node: &Embeddings,
    repeat: usize,
    test_items: &[usize],
    compute: impl FnOnce() -> Result<Decoded, HostError>,
) -> Result<Decoded, HostError> {
    let key = point_key(&[what, crate::cache::code_key(), spec_key, &node.key], repeat, 0, test_items);
    if let Some(found) = cache.get_result::<Decoded>(&key) {
        return Ok(found);
    }
    let computed = compute()?;
    cache.put_result(&key, &computed)?;
    Ok(computed)
}

fn reference_point(label: &str, scores: Scores, anchors: usize, repeat: usize) -> Point {
    Point { scores, ..Point::new(label, anchors, repeat) }
}

/// The stride that thins `total` rows to at most `cap`.
fn stride(total: usize, cap: usize) -> usize {
    total.div_ceil(cap.max(1)).max(1)
}

/// How many frame pairs [`fit_rows`] gives.
fn fit_count(aligned: &[(Vec<f32>, Vec<f32>)], pairs: &[(usize, usize)], dp: usize, cap: usize) -> usize {
    let lens: Vec<usize> = pairs.iter().map(|&(a, b)| pair_len(aligned, a, b, dp)).collect();
    let s = stride(lens.iter().sum(), cap);
    lens.iter().map(|l| l.div_ceil(s)).sum()
}

/// Frames of item `a`'s parent side paired with item `b`'s child side (the same item, or the
/// null's partner): as many as the shorter has.
fn pair_len(aligned: &[(Vec<f32>, Vec<f32>)], a: usize, b: usize, dp: usize) -> usize {
    // Both sides of an item have as many frames on the clock: count the parent's.
    (aligned[a].0.len() / dp).min(aligned[b].0.len() / dp)
}

/// The frame pairs of `pairs` (parent item, child item), every `stride`-th frame of each item so
/// that at most about `cap` rows are kept.
fn fit_rows(
    aligned: &[(Vec<f32>, Vec<f32>)],
    pairs: &[(usize, usize)],
    dp: usize,
    dc: usize,
    cap: usize,
) -> (Mat<f32>, Mat<f32>) {
    let lens: Vec<usize> = pairs.iter().map(|&(a, b)| pair_len(aligned, a, b, dp)).collect();
    let s = stride(lens.iter().sum(), cap);
    let rows: usize = lens.iter().map(|l| l.div_ceil(s)).sum();
    let (mut x, mut y) = (Mat::<f32>::zeros(rows, dp), Mat::<f32>::zeros(rows, dc));
    let mut r = 0;
    for (&(a, b), &len) in pairs.iter().zip(&lens) {
        for t in (0..len).step_by(s) {
            for j in 0..dp {
                x[(r, j)] = aligned[a].0[t * dp + j];
            }
            for j in 0..dc {
                y[(r, j)] = aligned[b].1[t * dc + j];
            }
            r += 1;
        }
    }
    (x, y)
}

/// Per operator pair: its label and the (input, image) frame rows of each side — the parent's on
/// the even pool positions' items, the child's on the odd ones (never a test item), each thinned
/// to `cap` rows.
#[allow(clippy::type_complexity)]
fn operator_rows(
    operators: &[FrameOperator],
    pool_in_order: &[usize],
    cap: usize,
) -> Vec<(String, Mat<f32>, Mat<f32>, Mat<f32>, Mat<f32>)> {
    let side = |e: &OperatorEmbeddings, parity: usize| -> (Mat<f32>, Mat<f32>) {
        let d = e.input.dim;
        let items: Vec<usize> = pool_in_order
            .iter()
            .enumerate()
            .filter(|(k, &i)| k % 2 == parity && e.input.is_valid(i) && e.output.is_valid(i))
            .map(|(_, &i)| i)
            .collect();
        // Per item, its (item frame, image frame) pairs: frame t with frame t where the operator
        // keeps time, along the DTW path (within this space) where it does not (a tempo).
        let pairs: Vec<Vec<(usize, usize)>> = items
            .iter()
            .map(|&i| {
                let (a, b) = (e.input.item(i), e.output.item(i));
                let (n, m) = (a.len() / d, b.len() / d);
                if n.abs_diff(m) <= 1 {
                    (0..n.min(m)).map(|t| (t, t)).collect()
                } else {
                    dtw::dtw_path(a, b, d)
                }
            })
            .collect();
        let s = stride(pairs.iter().map(Vec::len).sum(), cap);
        let rows: usize = pairs.iter().map(|p| p.len().div_ceil(s)).sum();
        let (mut x, mut y) = (Mat::<f32>::zeros(rows, d), Mat::<f32>::zeros(rows, d));
        let mut r = 0;
        for (&i, item_pairs) in items.iter().zip(&pairs) {
            let (a, b) = (e.input.item(i), e.output.item(i));
            for &(t, u) in item_pairs.iter().step_by(s) {
                for j in 0..d {
                    x[(r, j)] = a[t * d + j];
                    y[(r, j)] = b[u * d + j];
                }
                r += 1;
            }
        }
        (x, y)
    };
    operators
        .iter()
        .map(|op| {
            let (pi, po) = side(&op.parent, 0);
            let (ci, co) = side(&op.child, 1);
            (op.label.clone(), pi, po, ci, co)
        })
        .collect()
}

/// The test items' frames as every fit of a repeat reads them.
struct Evaluation<'s> {
    /// Per test item, the parent's frames on the clock (f64, for the map).
    parent: Vec<Mat<f64>>,
    /// Per test item, the child's frames on the clock.
    child: Vec<Mat<f64>>,
    /// The frame-retrieval gallery: (test item position, frame) pairs, evenly thinned.
    gallery: Vec<(usize, usize)>,
    /// The test items (indices of the edge's items), in order.
    test: Vec<usize>,
    spec: &'s FrameSpec,
}

impl<'s> Evaluation<'s> {
    fn new(
        aligned: &[(Vec<f32>, Vec<f32>)],
        test: &[usize],
        dp: usize,
        dc: usize,
        spec: &'s FrameSpec,
    ) -> Self {
        let mat = |v: &[f32], d: usize| {
            let n = v.len() / d;
            Mat::from_fn(n, d, |i, j| f64::from(v[i * d + j]))
        };
        let parent: Vec<Mat<f64>> = test.iter().map(|&i| mat(&aligned[i].0, dp)).collect();
        let child: Vec<Mat<f64>> = test.iter().map(|&i| mat(&aligned[i].1, dc)).collect();
        let all: Vec<(usize, usize)> =
            parent.iter().enumerate().flat_map(|(k, m)| (0..m.nrows()).map(move |t| (k, t))).collect();
        let s = stride(all.len(), spec.test_frames);
        let gallery = all.into_iter().step_by(s).collect();
        Evaluation { parent, child, gallery, test: test.to_vec(), spec }
    }

    /// A fitted map's scores on the test items.
    fn scores(&self, map: &FittedMap, decoder: Option<&mut Decoder>, rate: f64) -> Result<Decoded, String> {
        let mapped: Vec<Mat<f64>> = self
            .parent
            .iter()
            .map(|p| map.try_map_source(p.as_ref()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let targets: Vec<Mat<f64>> = self
            .child
            .iter()
            .map(|c| map.try_map_target(c.as_ref()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let mut scores = Scores::new();
        let mut first = None;
        scores.insert("frame-p@1".into(), frame_p_at_1(&mapped, &targets, &self.gallery));
        let k = self.spec.sequences.min(mapped.len());
        let flat = |m: &Mat<f64>| -> Vec<f32> {
            (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32)).collect()
        };
        let (q, t): (Vec<Vec<f32>>, Vec<Vec<f32>>) =
            (mapped[..k].iter().map(flat).collect(), targets[..k].iter().map(flat).collect());
        let (q, t): (Vec<&[f32]>, Vec<&[f32]>) =
            (q.iter().map(Vec::as_slice).collect(), t.iter().map(Vec::as_slice).collect());
        scores.insert("sequence-p@1".into(), dtw::sequence_p_at_1(&q, &t, map.output_dim()));
        if let Some(d) = decoder {
            // Back in the child's own space, where its decoder reads frames.
            let own: Option<Vec<Mat<f64>>> = mapped
                .iter()
                .map(|m| match &map.map.target {
                    None => map.target_preprocess.invert(m.as_ref()),
                    Some(_) => None,
                })
                .collect();
            match own {
                Some(own) => {
                    let (s, example) =
                        decoded_scores(d, &own, &self.test, rate, self.spec).map_err(|e| e.to_string())?;
                    scores.extend(s);
                    first = example;
                }
                None => {
                    for m in ["note-f1", "note-precision", "note-recall"] {
                        scores.insert(m.into(), f64::NAN);
                    }
                }
            }
        }
        Ok((scores, first))
    }
}

/// Frame P@1 over the gallery: a query is found when no gallery target is strictly nearer than
/// its own.
fn frame_p_at_1(mapped: &[Mat<f64>], targets: &[Mat<f64>], gallery: &[(usize, usize)]) -> f64 {
    if gallery.is_empty() {
        return f64::NAN;
    }
    let dist = |a: MatRef<'_, f64>, i: usize, b: MatRef<'_, f64>, j: usize| -> f64 {
        (0..a.ncols()).map(|c| (a[(i, c)] - b[(j, c)]).powi(2)).sum()
    };
    let hits = gallery
        .iter()
        .filter(|&&(k, t)| {
            let own = dist(mapped[k].as_ref(), t, targets[k].as_ref(), t);
            gallery.iter().all(|&(k2, t2)| {
                (k2, t2) == (k, t) || dist(mapped[k].as_ref(), t, targets[k2].as_ref(), t2) >= own
            })
        })
        .count();
    hits as f64 / gallery.len() as f64
}

/// Decodes each sequence (frames in the child's space on the clock, those of `test[k]`) with the
/// decoder and scores its notes against the true scores, pooled over the items. An item the
/// decoder fails on decodes to no notes.
fn decoded_scores(
    decoder: &mut Decoder,
    sequences: &[Mat<f64>],
    test: &[usize],
    rate: f64,
    spec: &FrameSpec,
) -> Result<Decoded, HostError> {
    decoded_scores_with(decoder, false, sequences, test, rate, spec)
}

/// The first item's decoded score is kept beside the scores.
type Decoded = (Scores, Option<Score>);

/// [`decoded_scores`] with the child's decoder, or (`parent`) with `parent-decode`.
fn decoded_scores_with(
    decoder: &mut Decoder,
    parent: bool,
    sequences: &[Mat<f64>],
    test: &[usize],
    rate: f64,
    spec: &FrameSpec,
) -> Result<Decoded, HostError> {
    let values: Vec<Value> = sequences
        .iter()
        .map(|m| {
            let data = (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32)).collect();
            Value::Sequence(Sequence { frame_rate: rate, dim: m.ncols(), data })
        })
        .collect();
    let render = match (parent, decoder.parent.as_mut()) {
        (true, Some(p)) => p,
        _ => &mut decoder.render,
    };
    let out = render.call(&values)?;
    let (plugin, function) = (render.plugin().to_owned(), render.spec().name.clone());
    let mut counts = NoteCounts::default();
    let mut first = None;
    for (k, r) in out.into_iter().enumerate() {
        let truth = &decoder.truth[test[k]].notes;
        match r {
            Ok(Value::Score(s)) => {
                counts.add(notes::match_notes(&s.notes, truth, spec.onset_tolerance));
                if k == 0 {
                    first = Some(s);
                }
            }
            Ok(other) => {
                return Err(HostError::Usage(format!(
                    "the decoder `{plugin}/{function}` returned a {}, not a score",
                    other.kind()
                )))
            }
            Err(e) => {
                tracing::debug!("the decoder failed on a test item: {e}");
                counts.add(notes::match_notes(&[], truth, spec.onset_tolerance));
            }
        }
    }
    let mut scores = Scores::new();
    scores.insert("note-f1".into(), counts.f1());
    scores.insert("note-precision".into(), counts.precision());
    scores.insert("note-recall".into(), counts.recall());
    Ok((scores, first))
}
