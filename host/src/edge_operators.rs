//! An edge's operators: which operator items each side may fit on (never a test item; by default
//! disjoint halves), the rows handed to functional fits, the operator actions' report, and the
//! operator metrics (transfer, commutation) on test items.
//!
//! # No leakage
//! Anchors are the only paired information an edge's fit may use. Operator pairs are
//! within-space (an item and its image in the same space), but two things would still leak:
//! - **test items**: an operator pair whose item or image is a test item is dropped from fitting.
//!   Items are identified by their root value (the sha256 the extractor keys items with), and an
//!   image by its embedding: encoders are deterministic, so an image whose embedding equals a
//!   test item's embedding bit for bit *is* that test item (`cat → cats` with `cats` in the test
//!   set is dropped);
//! - **implicit pairing**: when both spaces see the same items (the same words), fitting both
//!   sides' operators on the same items pairs those items across spaces through the operators.
//!   By default ([`OperatorItems::Disjoint`]) each root item goes to one side only, by a fixed
//!   hash of its id; [`OperatorItems::Shared`] turns that off and is labelled in the report.
//!
//! The same rules apply to the unpaired rows the `laplacian` baseline builds its kNN graphs on.

use crate::align::{
    fit_action, preprocess_rows, Alignment, FitData, FittedPreprocess, OperatorRows, Preprocess,
    Preprocessed, Space,
};
use crate::cache::{Cache, Key, KeyBuilder};
use crate::experiment::{Metric, OperatorItems, OperatorPair};
use crate::extract::{Embeddings, OperatorEmbeddings};
use crate::metrics::{retrieval, Scoring};
use crate::runner::Scores;
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Largest number of unpaired rows per side given to the `laplacian` baseline's kNN graph
/// (its cost grows with the square).
pub const GRAPH_ROWS: usize = 2000;

/// One operator pair of an edge, embedded on both sides.
#[derive(Debug, Clone)]
pub struct EmbeddedPair {
    /// The correspondence, as declared.
    pub pair: OperatorPair,
    /// The parent data's operator in the parent's space.
    pub parent: OperatorEmbeddings,
    /// The child data's operator in the child's space.
    pub child: OperatorEmbeddings,
}

/// Every operator pair of an edge, and how the sides share their items.
#[derive(Debug, Clone)]
pub struct EdgeOperators {
    /// The pairs, in declared order.
    pub pairs: Vec<EmbeddedPair>,
    /// Disjoint (default) or shared operator items.
    pub items: OperatorItems,
    /// The `order` metric's ground truth, when the edge declares one.
    pub order: Option<OrderReference>,
    /// The colours of the swatch picture, when the edge declares `swatches`.
    pub swatches: Option<SwatchColours>,
}

/// The colours the swatch picture paints (`swatches = "rgb"`): each item's sRGB, and the sRGB of
/// its image under the pictured operator, per parent row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SwatchColours {
    /// The operator pair pictured (its label): the `order` operator, else the first.
    pub operator: String,
    /// sRGB in 0–1 of each row's item (NaN where the swatch node has none).
    pub items: Vec<[f32; 3]>,
    /// sRGB of each row's item under the operator (NaN where there is none).
    pub edited: Vec<[f32; 3]>,
}

impl SwatchColours {
    /// The rows `rows` only, in that order (a repeat's test items).
    pub fn select(&self, rows: &[usize]) -> SwatchColours {
        SwatchColours {
            operator: self.operator.clone(),
            items: rows.iter().map(|&i| self.items[i]).collect(),
            edited: rows.iter().map(|&i| self.edited[i]).collect(),
        }
    }
}

/// One test item of the swatch picture as a method saw it (positions among the repeat's test
/// items).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Example {
    /// The test item.
    pub item: usize,
    /// The child test item its mapped image retrieves first (cosine).
    pub retrieved: usize,
    /// What the control query retrieves first: whether it is an operator image, and of which
    /// test item.
    pub control: (bool, usize),
}

/// Number of test items the swatch picture shows.
pub const EXAMPLES: usize = 8;

/// The swatch picture's examples for one fitted alignment: the first [`EXAMPLES`] test items
/// with images under `operator`, each with what nearest-neighbour retrieval and the control
/// query (as in `control-p@1`) find first.
pub fn examples(
    alignment: &dyn Alignment,
    ops: &RepeatOperators,
    operator: &str,
    tx: MatRef<'_, f32>,
    ty: MatRef<'_, f32>,
) -> Vec<Example> {
    let Some(k) = ops.labels.iter().position(|l| l == operator) else { return Vec::new() };
    let (fa, fb, positions) = &ops.test[k];
    let n = positions.len().min(EXAMPLES);
    if n == 0 {
        return Vec::new();
    }
    let (mapped_x, mapped_y) = (alignment.map_source(tx), alignment.map_target(ty));
    let (q, g) = (alignment.map_source(fa.as_ref()), alignment.map_target(fb.as_ref()));
    let d = mapped_x.ncols();
    if mapped_y.ncols() != d || q.ncols() != d || g.ncols() != d {
        return Vec::new();
    }
    let cosine = |a: &[f32], b: MatRef<'_, f32>, j: usize| -> f64 {
        let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for (c, &x) in a.iter().enumerate() {
            let y = f64::from(b[(j, c)]);
            dot += f64::from(x) * y;
            na += f64::from(x) * f64::from(x);
            nb += y * y;
        }
        if na > 0.0 && nb > 0.0 {
            dot / (na.sqrt() * nb.sqrt())
        } else {
            f64::NEG_INFINITY
        }
    };
    // The first row of `gallery` by cosine, with its cosine.
    let best = |query: &[f32], gallery: MatRef<'_, f32>| -> (usize, f64) {
        (0..gallery.nrows())
            .map(|j| (j, cosine(query, gallery, j)))
            .fold((0, f64::NEG_INFINITY), |acc, (j, c)| if c > acc.1 { (j, c) } else { acc })
    };
    (0..n)
        .map(|r| {
            let pos = positions[r];
            let row: Vec<f32> = (0..d).map(|j| mapped_x[(pos, j)]).collect();
            let query: Vec<f32> =
                (0..d).map(|j| mapped_x[(pos, j)] + g[(r, j)] - mapped_y[(pos, j)]).collect();
            // The control gallery: the edited images first (they win ties), then the items.
            let (edited, plain) = (best(&query, q.as_ref()), best(&query, mapped_x.as_ref()));
            let control = if edited.1 >= plain.1 { (true, positions[edited.0]) } else { (false, plain.0) };
            Example { item: pos, retrieved: best(&row, mapped_y.as_ref()).0, control }
        })
        .collect()
}

/// The `order` metric's ground truth (`order = { … }`): a reference coordinate per parent row.
#[derive(Debug, Clone)]
pub struct OrderReference {
    /// The operator pair (its label) whose child displacement gives the direction.
    pub operator: String,
    /// Whether the operator lowers the coordinate.
    pub lowers: bool,
    /// The coordinate of each parent row's item (NaN where the reference has none).
    pub values: Vec<f64>,
    /// Content key of the reference node and the spec.
    pub key: Key,
}

/// Which side of an edge a root item's operator pairs go to under [`OperatorItems::Disjoint`]:
/// 0 the parent, 1 the child. A fixed hash of the item's id, so the split does not depend on the
/// experiment, the repeat or the order of items.
pub fn side_of(root: &str) -> usize {
    let h = KeyBuilder::new("operator-side").text(root).finish();
    usize::from(h.as_bytes().last().is_some_and(|b| (b & 1) == 1))
}

fn row_of(e: &Embeddings, i: usize) -> &[f32] {
    &e.data[i * e.dim..(i + 1) * e.dim]
}

/// Rows `index` of `e`, read in place (materialising all of `e` first would copy every item of an
/// operator's data set — 317,730 × 300 floats in the cross-lingual experiment — per pair and repeat).
fn select(e: &Embeddings, index: &[usize]) -> Mat<f32> {
    Mat::from_fn(index.len(), e.dim, |i, j| e.data[index[i] * e.dim + j])
}

/// The bits of a row, to recognise an image that is a test item.
fn bits(row: &[f32]) -> Vec<u32> {
    row.iter().map(|x| x.to_bits()).collect()
}

/// What one side of one operator pair may use in one repeat.
#[derive(Debug, Clone)]
pub struct SideRows {
    /// Items (rows of the operator's input).
    pub input: Mat<f32>,
    /// Their images.
    pub output: Mat<f32>,
    /// Both, preprocessed by one fitted preprocessing (its fingerprint first): see
    /// [`RepeatOperators::preprocess`].
    pub preprocessed: Option<(u64, Mat<f64>, Mat<f64>)>,
}

/// The split sizes of one operator pair in one repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SplitCounts {
    /// Pairs (item, image) the parent fits the operator on.
    pub parent_fit: usize,
    /// Pairs the child fits the operator on.
    pub child_fit: usize,
    /// Pairs dropped because the item or its image is a test item (both sides).
    pub dropped_test: usize,
    /// Test items whose image exists on both sides (the operator metrics' gallery).
    pub test_items: usize,
}

/// The operator rows of one repeat: fitting rows per side and the test items' images.
#[derive(Debug, Clone)]
pub struct RepeatOperators {
    /// Declared label of each pair.
    pub labels: Vec<String>,
    /// Parent-side fitting rows, per pair.
    pub parent: Vec<SideRows>,
    /// Child-side fitting rows, per pair.
    pub child: Vec<SideRows>,
    /// Per pair: test items with both images, as (parent image, child image, position among the
    /// repeat's test items).
    pub test: Vec<(Mat<f32>, Mat<f32>, Vec<usize>)>,
    /// Split sizes, per pair.
    pub counts: Vec<SplitCounts>,
    /// Unpaired rows for the kNN graphs of `laplacian`: parent's and child's pool rows (disjoint
    /// halves unless items are shared), at most [`GRAPH_ROWS`] each.
    pub graph_rows: (Mat<f32>, Mat<f32>),
    /// The `order` metric on this repeat: the operator's label, whether it lowers the
    /// coordinate, and the coordinate of each test item (by position).
    pub order: Option<(String, bool, Vec<f64>)>,
}

impl EdgeOperators {
    /// A content key of everything the operators contribute (for result caching).
    pub fn key(&self) -> Key {
        let mut k = KeyBuilder::new("edge-operators");
        k.text(&format!("{:?}", self.items));
        for p in &self.pairs {
            k.text(&p.pair.parent).text(&p.pair.child);
            k.text(&p.parent.input.key).text(&p.parent.output.key);
            k.text(&p.child.input.key).text(&p.child.output.key);
        }
        if let Some(order) = &self.order {
            k.text(&order.key);
        }
        if let Some(swatches) = &self.swatches {
            k.text(&swatches.operator);
        }
        k.finish()
    }

    /// The rows of one repeat. `test_idx` and `pool_idx` index the edge's items (`parent` and
    /// `child`, the nodes' embeddings, paired by row).
    pub fn for_repeat(
        &self,
        parent: &Embeddings,
        child: &Embeddings,
        test_idx: &[usize],
        pool_idx: &[usize],
    ) -> RepeatOperators {
        let test_roots: HashMap<&str, usize> =
            test_idx.iter().enumerate().map(|(pos, &i)| (parent.roots[i].as_str(), pos)).collect();
        let parent_test_rows: HashSet<Vec<u32>> = test_idx.iter().map(|&i| bits(row_of(parent, i))).collect();
        let child_test_rows: HashSet<Vec<u32>> = test_idx.iter().map(|&i| bits(row_of(child, i))).collect();
        let disjoint = self.items == OperatorItems::Disjoint;

        let mut out = RepeatOperators {
            labels: Vec::new(),
            parent: Vec::new(),
            child: Vec::new(),
            test: Vec::new(),
            counts: Vec::new(),
            graph_rows: (Mat::zeros(0, parent.dim), Mat::zeros(0, child.dim)),
            order: self
                .order
                .as_ref()
                .map(|o| (o.operator.clone(), o.lowers, test_idx.iter().map(|&i| o.values[i]).collect())),
        };
        for pair in &self.pairs {
            let mut dropped = 0usize;
            let mut side = |op: &OperatorEmbeddings, test_rows: &HashSet<Vec<u32>>, which: usize| {
                let mut keep = Vec::new();
                for i in op.valid_rows() {
                    let root = op.input.roots[i].as_str();
                    let leaks = test_roots.contains_key(root)
                        || test_rows.contains(&bits(row_of(&op.input, i)))
                        || test_rows.contains(&bits(row_of(&op.output, i)));
                    if leaks {
                        dropped += 1;
                        continue;
                    }
                    if disjoint && side_of(root) != which {
                        continue;
                    }
                    keep.push(i);
                }
                SideRows {
                    input: select(&op.input, &keep),
                    output: select(&op.output, &keep),
                    preprocessed: None,
                }
            };
            let p = side(&pair.parent, &parent_test_rows, 0);
            let c = side(&pair.child, &child_test_rows, 1);

            // Test items with an image on both sides, in test order.
            fn index(op: &OperatorEmbeddings) -> HashMap<&str, usize> {
                op.valid_rows().map(|i| (op.input.roots[i].as_str(), i)).collect()
            }
            let (pi, ci) = (index(&pair.parent), index(&pair.child));
            let mut positions = Vec::new();
            let (mut prow, mut crow) = (Vec::new(), Vec::new());
            for (pos, &i) in test_idx.iter().enumerate() {
                let root = parent.roots[i].as_str();
                if let (Some(&a), Some(&b)) = (pi.get(root), ci.get(root)) {
                    positions.push(pos);
                    prow.push(a);
                    crow.push(b);
                }
            }
            let test = (select(&pair.parent.output, &prow), select(&pair.child.output, &crow), positions);
            out.counts.push(SplitCounts {
                parent_fit: p.input.nrows(),
                child_fit: c.input.nrows(),
                dropped_test: dropped,
                test_items: test.2.len(),
            });
            out.labels.push(pair.pair.label());
            out.parent.push(p);
            out.child.push(c);
            out.test.push(test);
        }
        out.graph_rows = unpaired_rows(parent, child, pool_idx, disjoint);
        out
    }
}

/// Each side's unpaired rows for the fits that read them (`laplacian`'s graphs,
/// `select = "criterion"`): pool rows, each item on one side only when `disjoint` (by
/// [`side_of`]), at most [`GRAPH_ROWS`] per side, in pool order.
pub fn unpaired_rows(
    parent: &Embeddings,
    child: &Embeddings,
    pool_idx: &[usize],
    disjoint: bool,
) -> (Mat<f32>, Mat<f32>) {
    let graph = |e: &Embeddings, which: usize| {
        let keep: Vec<usize> = pool_idx
            .iter()
            .copied()
            .filter(|&i| !disjoint || side_of(&e.roots[i]) == which)
            .take(GRAPH_ROWS)
            .collect();
        select(e, &keep)
    };
    (graph(parent, 0), graph(child, 1))
}

impl RepeatOperators {
    /// Preprocesses every operator's rows once with the preprocessing each side's fits will use
    /// (fitted on the pool), so that the fits of the repeat read them instead of preprocessing
    /// them again (see [`Preprocessed`](crate::align::Preprocessed)). Rows that fail (not finite)
    /// are left to the fits, which report them.
    pub fn preprocess(&mut self, source: &FittedPreprocess<f64>, target: &FittedPreprocess<f64>) {
        for (sides, pre, space) in
            [(&mut self.parent, source, Space::Source), (&mut self.child, target, Space::Target)]
        {
            let by = pre.fingerprint();
            for (side, label) in sides.iter_mut().zip(&self.labels) {
                let rows = |m: &Mat<f32>| preprocess_rows(m.as_ref(), pre, space, label).ok();
                side.preprocessed = rows(&side.input).zip(rows(&side.output)).map(|(i, o)| (by, i, o));
            }
        }
    }

    /// The data functional fits may use besides the anchors.
    pub fn fit_data(&self, seed: u64) -> FitData<'_> {
        fn side<'a>(rows: &'a [SideRows], labels: &[String]) -> Vec<OperatorRows<'a>> {
            rows.iter()
                .zip(labels)
                .map(|(r, name)| OperatorRows {
                    preprocessed: r.preprocessed.as_ref().map(|(by, input, output)| Preprocessed {
                        by: *by,
                        input: input.as_ref(),
                        output: output.as_ref(),
                    }),
                    ..OperatorRows::new(name.clone(), r.input.as_ref(), r.output.as_ref())
                })
                .collect()
        }
        FitData {
            source_operators: side(&self.parent, &self.labels),
            target_operators: side(&self.child, &self.labels),
            source_rows: Some(self.graph_rows.0.as_ref()),
            target_rows: Some(self.graph_rows.1.as_ref()),
            seed,
            memo: None,
            warm: None,
        }
    }
}

/// Operator metrics of one operator pair on the test items.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorScore {
    /// Test items with an image on both sides.
    pub items: usize,
    /// Transfer P@1 (NaN with fewer than 2 items).
    pub transfer_p1: f64,
    /// Relative commutation error (NaN when the child's displacement is zero).
    pub commutation: f64,
    /// Control P@1 (`control-p@1`), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_p1: Option<f64>,
    /// The two-shades order accuracy (`order`) and the number of pairs it is over, for the
    /// operator `order` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<(f64, usize)>,
}

/// The operator metrics of a fitted alignment on the test items (`tx`, `ty`: the edge's test
/// rows): per pair, and their means over pairs as `transfer-p@1` and `commutation`.
pub fn operator_scores(
    alignment: &dyn Alignment,
    ops: &RepeatOperators,
    tx: MatRef<'_, f32>,
    ty: MatRef<'_, f32>,
    metrics: &[Metric],
) -> (Scores, BTreeMap<String, OperatorScore>) {
    let mut per = BTreeMap::new();
    if !metrics.iter().any(|m| m.needs_operators()) {
        return (Scores::new(), per);
    }
    let mapped_x = alignment.map_source(tx);
    let mapped_y = alignment.map_target(ty);
    for (label, (fa, fb, positions)) in ops.labels.iter().zip(&ops.test) {
        let n = positions.len();
        let (mut transfer, mut commutation) = (f64::NAN, f64::NAN);
        let (mut control_p1, mut order) = (None, None);
        if n >= 1 {
            let q = alignment.map_source(fa.as_ref());
            let g = alignment.map_target(fb.as_ref());
            if metrics.contains(&Metric::ControlPAt1) {
                control_p1 = Some(control(&q, &g, mapped_x.as_ref(), mapped_y.as_ref(), positions));
            }
            if let Some((name, lowers, values)) = &ops.order {
                if name == label && metrics.contains(&Metric::Order) {
                    order = Some(order_accuracy(
                        &g,
                        mapped_x.as_ref(),
                        mapped_y.as_ref(),
                        ty,
                        positions,
                        values,
                        *lowers,
                    ));
                }
            }
            if n >= 2 {
                let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
                transfer =
                    retrieval(q.as_ref(), g.as_ref(), &truth, Scoring::Nn).map_or(f64::NAN, |r| r.p_at_1);
            }
            let (mut err, mut norm) = (0.0f64, 0.0f64);
            for (r, &pos) in positions.iter().enumerate() {
                for j in 0..q.ncols().min(g.ncols()) {
                    let moved = f64::from(q[(r, j)]) - f64::from(mapped_x[(pos, j)]);
                    let target = f64::from(g[(r, j)]) - f64::from(mapped_y[(pos, j)]);
                    err += (moved - target).powi(2);
                    norm += target.powi(2);
                }
            }
            if norm > 0.0 {
                commutation = err / norm;
            }
        }
        per.insert(
            label.clone(),
            OperatorScore { items: n, transfer_p1: transfer, commutation, control_p1, order },
        );
    }
    let mean = |f: fn(&OperatorScore) -> f64| {
        let values: Vec<f64> = per.values().map(f).filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            f64::NAN
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    let mut scores = Scores::new();
    if metrics.contains(&Metric::TransferPAt1) {
        scores.insert(Metric::TransferPAt1.name().into(), mean(|s| s.transfer_p1));
    }
    if metrics.contains(&Metric::Commutation) {
        scores.insert(Metric::Commutation.name().into(), mean(|s| s.commutation));
    }
    if metrics.contains(&Metric::ControlPAt1) {
        scores.insert(Metric::ControlPAt1.name().into(), mean(|s| s.control_p1.unwrap_or(f64::NAN)));
    }
    if metrics.contains(&Metric::Order) {
        scores.insert(Metric::Order.name().into(), mean(|s| s.order.map_or(f64::NAN, |o| o.0)));
    }
    (scores, per)
}

/// `control-p@1` of one operator pair: each test item r with images on both sides, mapped, moved
/// by the child's mapped displacement of the same item (`g[r] − y_r`), retrieves among the
/// parent images `q` (hits: its own, row r) and every mapped test item `mapped_x` (the unedited
/// items: the same colour before the edit, and every other shade).
fn control(
    q: &Mat<f32>,
    g: &Mat<f32>,
    mapped_x: MatRef<'_, f32>,
    mapped_y: MatRef<'_, f32>,
    positions: &[usize],
) -> f64 {
    let d = q.ncols();
    if g.ncols() != d || mapped_x.ncols() != d || mapped_y.ncols() != d {
        return f64::NAN;
    }
    let n = positions.len();
    let queries =
        Mat::from_fn(n, d, |r, j| mapped_x[(positions[r], j)] + g[(r, j)] - mapped_y[(positions[r], j)]);
    let t = mapped_x.nrows();
    let gallery = Mat::from_fn(n + t, d, |i, j| if i < n { q[(i, j)] } else { mapped_x[(i - n, j)] });
    let truth: Vec<Option<usize>> = (0..n).map(Some).collect();
    retrieval(queries.as_ref(), gallery.as_ref(), &truth, Scoring::Nn).map_or(f64::NAN, |r| r.p_at_1)
}

/// The `order` metric of one operator pair, with the number of pairs it is over: pairs of test
/// items whose child rows `ty` are identical and whose reference `values` differ; a pair is
/// ordered right when its mapped difference, projected on the child operator's mean mapped
/// displacement, has the sign the reference gives (the item further along the operator — lower
/// when it `lowers` the coordinate — projects higher); a projection of exactly 0 counts half.
fn order_accuracy(
    g: &Mat<f32>,
    mapped_x: MatRef<'_, f32>,
    mapped_y: MatRef<'_, f32>,
    ty: MatRef<'_, f32>,
    positions: &[usize],
    values: &[f64],
    lowers: bool,
) -> (f64, usize) {
    let d = mapped_x.ncols();
    if positions.is_empty() || g.ncols() != d || mapped_y.ncols() != d {
        return (f64::NAN, 0);
    }
    let direction: Vec<f64> = (0..d)
        .map(|j| {
            positions
                .iter()
                .enumerate()
                .map(|(r, &p)| f64::from(g[(r, j)]) - f64::from(mapped_y[(p, j)]))
                .sum::<f64>()
                / positions.len() as f64
        })
        .collect();
    let project = |i: usize| (0..d).map(|j| f64::from(mapped_x[(i, j)]) * direction[j]).sum::<f64>();
    let mut groups: HashMap<Vec<u32>, Vec<usize>> = HashMap::new();
    for i in 0..ty.nrows() {
        let row: Vec<f32> = (0..ty.ncols()).map(|j| ty[(i, j)]).collect();
        if values[i].is_finite() {
            groups.entry(bits(&row)).or_default().push(i);
        }
    }
    let (mut right, mut pairs) = (0.0f64, 0usize);
    for members in groups.values() {
        for (k, &a) in members.iter().enumerate() {
            for &b in &members[k + 1..] {
                if values[a] == values[b] {
                    continue;
                }
                // Whether a is further along the operator than b, by the reference.
                let further = if lowers { values[a] < values[b] } else { values[a] > values[b] };
                let s = project(a) - project(b);
                pairs += 1;
                right += if s == 0.0 {
                    0.5
                } else if (s > 0.0) == further {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }
    if pairs == 0 {
        (f64::NAN, 0)
    } else {
        (right / pairs as f64, pairs)
    }
}

/// How well a linear action describes one operator in one space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct ActionReport {
    /// Pairs fitted on.
    pub pairs: usize,
    /// Held-out (cross-validated) R² of the fitted affine action.
    pub r2: f64,
    /// Held-out R² of the offset-only model `x ↦ x + c`.
    pub r2_offset: f64,
    /// R² of doing nothing (`x ↦ x`).
    pub r2_identity: f64,
    /// The ridge penalty chosen by cross-validation.
    pub lambda: f64,
    /// Why it could not be fitted, if it could not.
    pub error: Option<String>,
}

/// The report of one operator pair: split sizes of the first repeat and the actions' fits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OperatorReport {
    /// The pair's label.
    pub operator: String,
    /// Split sizes in the first repeat.
    pub split: SplitCounts,
    /// The parent's action.
    pub parent: ActionReport,
    /// The child's action.
    pub child: ActionReport,
}

fn action_report(pre: &Preprocess, pool: MatRef<'_, f32>, side: &SideRows, space: Space) -> ActionReport {
    let failed = |e: String| ActionReport {
        pairs: side.input.nrows(),
        r2: f64::NAN,
        r2_offset: f64::NAN,
        r2_identity: f64::NAN,
        lambda: f64::NAN,
        error: Some(e),
    };
    let to64 = |m: MatRef<'_, f32>| Mat::<f64>::from_fn(m.nrows(), m.ncols(), |i, j| f64::from(m[(i, j)]));
    let fitted = match FittedPreprocess::fit(pre, to64(pool).as_ref(), space) {
        Ok(f) => f,
        Err(e) => return failed(e.to_string()),
    };
    let (x, fx) = match (
        fitted.apply(to64(side.input.as_ref()).as_ref()),
        fitted.apply(to64(side.output.as_ref()).as_ref()),
    ) {
        (Ok(x), Ok(fx)) => (x, fx),
        (Err(e), _) | (_, Err(e)) => return failed(e.to_string()),
    };
    match fit_action(x.as_ref(), fx.as_ref()) {
        Ok(a) => ActionReport {
            pairs: a.pairs,
            r2: a.r2,
            r2_offset: a.r2_offset,
            r2_identity: a.r2_identity,
            lambda: a.lambda,
            error: None,
        },
        Err(e) => failed(e.to_string()),
    }
}

/// Fits every operator's action on each side's fitting rows of the first repeat, with the edge's
/// preprocessing fitted on that side's pool rows (unpaired), and reports how linear each operator
/// is there. Cached by content.
pub fn operator_reports(
    cache: &Cache,
    key: &Key,
    pre: &Preprocess,
    ops: &RepeatOperators,
    pool: (MatRef<'_, f32>, MatRef<'_, f32>),
    test_idx: &[usize],
) -> Vec<OperatorReport> {
    // The reports read the repeat's split (which operator rows leak into the test items, the
    // pool the preprocessing is fitted on): its test items are part of the key.
    let test: Vec<u8> = test_idx.iter().flat_map(|&i| (i as u64).to_le_bytes()).collect();
    let key = KeyBuilder::new("operator-reports")
        .text(crate::cache::code_key())
        .text(key)
        .text(&serde_json::to_string(pre).unwrap_or_default())
        .push(&test)
        .finish();
    if let Some(r) = cache.get_result::<Vec<OperatorReport>>(&key) {
        return r;
    }
    let reports: Vec<OperatorReport> = (0..ops.labels.len())
        .map(|k| OperatorReport {
            operator: ops.labels[k].clone(),
            split: ops.counts[k],
            parent: action_report(pre, pool.0, &ops.parent[k], Space::Source),
            child: action_report(pre, pool.1, &ops.child[k], Space::Target),
        })
        .collect();
    if let Err(e) = cache.put_result(&key, &reports) {
        tracing::warn!("operator reports not cached: {e}");
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn embeddings(name: &str, rows: Vec<Vec<f32>>, roots: &[String]) -> Embeddings {
        let dim = rows[0].len();
        Embeddings {
            node: name.to_owned(),
            key: KeyBuilder::new("test").text(name).finish(),
            rows: rows.len(),
            dim,
            data: rows.concat(),
            skipped: 0,
            roots: Arc::new(roots.to_vec()),
            frames: None,
        }
    }

    /// 40 items; item i is `[i, side]` in the parent and `[i, 100 + side]` in the child; the
    /// operator maps item i to `[i + 0.5, …]`, except item 7's image, which is test item 2.
    fn fixture() -> (Embeddings, Embeddings, EdgeOperators) {
        let roots: Vec<String> =
            (0..40).map(|i| KeyBuilder::new("value").text(&i.to_string()).finish()).collect();
        let node = |offset: f32| -> Vec<Vec<f32>> { (0..40).map(|i| vec![i as f32, offset]).collect() };
        let parent = embeddings("p", node(0.0), &roots);
        let child = embeddings("c", node(100.0), &roots);
        let mut images_p = node(0.0);
        for row in &mut images_p {
            row[0] += 0.5;
        }
        images_p[7] = vec![2.0, 0.0];
        let mut images_c = node(100.0);
        for row in &mut images_c {
            row[0] += 0.5;
        }
        let op = |input: &Embeddings, output: Vec<Vec<f32>>| OperatorEmbeddings {
            operator: "up".into(),
            input: input.clone(),
            output: embeddings("out", output, &roots),
        };
        let pair = EmbeddedPair {
            pair: OperatorPair { parent: "up".into(), child: "up".into() },
            parent: op(&parent, images_p),
            child: op(&child, images_c),
        };
        (
            parent,
            child,
            EdgeOperators { pairs: vec![pair], items: OperatorItems::Disjoint, order: None, swatches: None },
        )
    }

    fn mat(rows: &[[f32; 2]]) -> Mat<f32> {
        Mat::from_fn(rows.len(), 2, |i, j| rows[i][j])
    }

    #[test]
    fn order_counts_pairs_the_child_cannot_tell_apart() {
        // Items 0, 1 share a child row, as do 2, 3 (two names, two shades each); the reference
        // (L*) says 0 is darker than 1 and 3 darker than 2; the child's `darker` moves by +x.
        let ty = mat(&[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]);
        let values = [30.0, 50.0, 40.0, 20.0];
        let positions = [0, 1, 2, 3];
        let mapped_y = mat(&[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]);
        let g = mat(&[[1.0, 1.0], [1.0, 1.0], [2.0, 0.0], [2.0, 0.0]]);
        // Mapped images: the first pair in the right order (darker further along +x), the second not.
        let x = mat(&[[2.0, 0.0], [1.0, 0.0], [5.0, 0.0], [3.0, 0.0]]);
        let got = order_accuracy(&g, x.as_ref(), mapped_y.as_ref(), ty.as_ref(), &positions, &values, true);
        assert_eq!(got, (0.5, 2));
        let right = mat(&[[2.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0]]);
        let got =
            order_accuracy(&g, right.as_ref(), mapped_y.as_ref(), ty.as_ref(), &positions, &values, true);
        assert_eq!(got, (1.0, 2));
        // Raising instead of lowering flips every verdict.
        let got =
            order_accuracy(&g, right.as_ref(), mapped_y.as_ref(), ty.as_ref(), &positions, &values, false);
        assert_eq!(got, (0.0, 2));
        // The bridge through the child (its own rows): every pair ties, chance by construction.
        let got = order_accuracy(&g, ty.as_ref(), mapped_y.as_ref(), ty.as_ref(), &positions, &values, true);
        assert_eq!(got, (0.5, 2));
        // No pair shares a child row: nothing to score.
        let distinct = mat(&[[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [2.0, 0.0]]);
        let got =
            order_accuracy(&g, x.as_ref(), mapped_y.as_ref(), distinct.as_ref(), &positions, &values, true);
        assert!(got.0.is_nan() && got.1 == 0);
    }

    #[test]
    fn control_finds_the_edited_image_of_the_same_item() {
        let x = mat(&[[1.0, 0.0], [0.0, 1.0]]);
        let y = mat(&[[1.0, 0.0], [0.0, 1.0]]);
        // The child's edit moves each item by (0.2, 0.2); a map that commutes moves the parent's
        // images the same way: each edited query finds its own edited image.
        let g = mat(&[[1.2, 0.2], [0.2, 1.2]]);
        let q = g.clone();
        assert_eq!(control(&q, &g, x.as_ref(), y.as_ref(), &[0, 1]), 1.0);
        // A map that cannot see the edit (images mapped onto the unedited items): the edited
        // image ties with the unedited one, half a hit in expectation.
        let blind = x.clone();
        let got = control(&blind, &g, x.as_ref(), y.as_ref(), &[0, 1]);
        assert!((got - 0.5).abs() < 1e-12, "{got}");
    }

    fn items_of(rows: &SideRows) -> Vec<usize> {
        (0..rows.input.nrows()).map(|r| rows.input[(r, 0)] as usize).collect()
    }

    #[test]
    fn test_items_never_enter_operator_fits_and_the_sides_are_disjoint() {
        let (parent, child, mut ops) = fixture();
        let test: Vec<usize> = (0..5).collect();
        let pool: Vec<usize> = (5..40).collect();
        let r = ops.for_repeat(&parent, &child, &test, &pool);
        let (p, c) = (items_of(&r.parent[0]), items_of(&r.child[0]));
        assert!(p.iter().chain(&c).all(|i| *i >= 5), "a test item was fitted on: {p:?} {c:?}");
        assert!(!p.contains(&7), "item 7's image is test item 2: it must be dropped");
        assert!(p.iter().all(|i| !c.contains(i)), "sides share items: {p:?} {c:?}");
        let roots = &parent.roots;
        assert!(p.iter().all(|&i| side_of(&roots[i]) == 0) && c.iter().all(|&i| side_of(&roots[i]) == 1));
        let counts = r.counts[0];
        assert_eq!(counts.parent_fit + counts.child_fit + usize::from(side_of(&roots[7]) == 0), 35);
        assert_eq!(counts.dropped_test, 2 * 5 + 1);
        assert_eq!(counts.test_items, 5);
        // The test images are in test order, parent image beside the child's.
        let (fa, fb, positions) = &r.test[0];
        assert_eq!(positions, &[0, 1, 2, 3, 4]);
        assert_eq!((fa[(3, 0)], fb[(3, 1)]), (3.5, 100.0));

        ops.items = OperatorItems::Shared;
        let r = ops.for_repeat(&parent, &child, &test, &pool);
        let (p, c) = (items_of(&r.parent[0]), items_of(&r.child[0]));
        assert_eq!(c, (5..40).collect::<Vec<_>>());
        assert_eq!(p, (5..40).filter(|&i| i != 7).collect::<Vec<_>>());
        assert_eq!((r.graph_rows.0.nrows(), r.graph_rows.1.nrows()), (35, 35));
    }

    #[test]
    fn cached_operator_reports_belong_to_their_split() {
        // Two repeats (or two seeds) with other test items drop other operator rows: each gets
        // its own report, not the one cached first.
        let (parent, child, ops) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let report = |test: Vec<usize>| {
            let pool: Vec<usize> = (0..40).filter(|i| !test.contains(i)).collect();
            let r = ops.for_repeat(&parent, &child, &test, &pool);
            let (px, py) = (
                crate::runner::rows(parent.matrix().as_ref(), &pool),
                crate::runner::rows(child.matrix().as_ref(), &pool),
            );
            operator_reports(&cache, &ops.key(), &Preprocess::none(), &r, (px.as_ref(), py.as_ref()), &test)
        };
        let first = report((0..5).collect());
        let other = report((20..30).collect());
        assert_eq!(first[0].split.test_items, 5);
        assert_eq!(other[0].split.test_items, 10);
        assert_eq!(report((0..5).collect())[0].split, first[0].split);
    }

    #[test]
    fn the_side_split_is_fixed_and_balanced() {
        let roots: Vec<String> =
            (0..2000).map(|i| KeyBuilder::new("value").text(&i.to_string()).finish()).collect();
        let ones = roots.iter().filter(|r| side_of(r) == 1).count();
        assert!((900..1100).contains(&ones), "{ones} of 2000 on side 1");
        assert_eq!(side_of(&roots[3]), side_of(&roots[3].clone()));
    }
}
