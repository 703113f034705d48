//! Tree analyses: what a tree of alignments says beyond its edges — width (which part of a
//! parent each child explains, how the children's parts overlap, what none explains), controlled
//! edits (an edit made in one child, carried to the parent, seen by every child), and depth (maps
//! composed along paths, against direct shortcuts, and round trips).
//!
//! Every analysis follows the edges' protocol: per repeat, the same seeded split into test items
//! and an anchor pool (`runner::split_order`); its maps ([`maps`]) are fitted on the
//! first `anchors` of the pool and judged on the test items; each number is reported as mean and
//! spread over the repeats ([`Stat`]).

pub mod depth;
pub mod edit;
pub mod maps;
pub mod subspace;
pub mod width;

use crate::experiment::Experiment;
use crate::extract::Embeddings;
use crate::HostError;
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where the analyses get embeddings: the run's extractor (or, in tests, fixed matrices).
pub trait Spaces {
    /// The embeddings of node `name` on its data set's items.
    fn node(&mut self, name: &str) -> Result<Embeddings, HostError>;
    /// Node `name`'s encoder on its items after operator `op` of data set `at` (its own data set
    /// or one it is rendered from) and the renders from `at` to the node's data set.
    fn edited(&mut self, name: &str, at: &str, op: &str) -> Result<Embeddings, HostError>;
}

/// Mean and sample standard deviation of one number over repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean over the repeats that gave a finite value.
    pub mean: f64,
    /// Sample standard deviation (0 with one repeat).
    pub std: f64,
    /// Repeats that gave a finite value.
    pub n: usize,
}

impl Stat {
    /// The mean and spread of the finite values.
    pub fn of(values: &[f64]) -> Stat {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len();
        if n == 0 {
            return Stat { mean: f64::NAN, std: f64::NAN, n };
        }
        let mean = finite.iter().sum::<f64>() / n as f64;
        let var =
            if n > 1 { finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        Stat { mean, std: var.sqrt(), n }
    }
}

/// Everything the tree analyses measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TreeResult {
    /// Anchors each analysis map was fitted on.
    pub anchors: usize,
    /// Repeats.
    pub repeats: usize,
    /// One entry per parent with two or more children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub width: Vec<width::WidthResult>,
    /// One entry per declared edit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<edit::EditResult>,
    /// One entry per tree path of two or more edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depth: Vec<depth::DepthResult>,
    /// Analyses that could not be made (a node failed, too few items), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

impl TreeResult {
    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.width.is_empty() && self.edits.is_empty() && self.depth.is_empty() && self.failed.is_empty()
    }
}

/// Whether the experiment asks for the tree analyses (it has a `[tree]` table) and its tree has
/// anything for them: a parent with two children, a path of two edges, a shortcut, or an edit.
pub fn has_analyses(exp: &Experiment) -> bool {
    exp.tree.declared
        && (!exp.tree.edits.is_empty()
            || exp.edges.iter().any(|e| e.shortcut)
            || exp.nodes.iter().any(|n| exp.children_of(&n.name).count() >= 2)
            || exp.tree_edges().any(|e| exp.parent_of(&e.parent).is_some()))
}

/// The rows of several embeddings that are valid in all of them, as `f64` matrices (one per
/// input, same rows in the same order).
pub(crate) fn joint_rows(spaces: &[&Embeddings]) -> Result<(Vec<usize>, Vec<Mat<f64>>), HostError> {
    let n = spaces.first().map_or(0, |e| e.rows);
    if let Some(e) = spaces.iter().find(|e| e.rows != n) {
        return Err(HostError::Usage(format!(
            "node `{}` has {} items where `{}` has {n}; the tree analyses need paired items",
            e.node, e.rows, spaces[0].node
        )));
    }
    let valid: Vec<usize> = (0..n).filter(|&i| spaces.iter().all(|e| e.is_valid(i))).collect();
    let mats = spaces
        .iter()
        .map(|e| Mat::from_fn(valid.len(), e.dim, |i, j| f64::from(e.data[valid[i] * e.dim + j])))
        .collect();
    Ok((valid, mats))
}

/// One repeat's split of `n` rows: (test rows, anchor rows), as the edges split them.
pub(crate) fn split(
    exp: &Experiment,
    n: usize,
    anchors: usize,
    repeat: usize,
) -> Result<(Vec<usize>, Vec<usize>), HostError> {
    let test = crate::runner::test_size(exp, n);
    let largest = exp.anchors.iter().copied().max().unwrap_or(0).max(anchors);
    if largest + test > n {
        return Err(HostError::Usage(format!(
            "{largest} anchors plus {test} test items need {} items, but {n} are embedded in every space involved",
            largest + test
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(crate::runner::repeat_seed(exp.seed, repeat));
    let order = crate::runner::split_order(exp.split, n, test, largest, &mut rng);
    Ok((order[..test].to_vec(), order[test..test + anchors].to_vec()))
}

/// The anchors the analysis maps use.
pub fn anchors(exp: &Experiment) -> usize {
    exp.tree.anchors.unwrap_or_else(|| exp.anchors.iter().copied().max().unwrap_or(0))
}

/// Runs every analysis the tree has. An analysis whose nodes failed is listed under `failed`
/// and the others go on; I/O errors stop.
pub fn analyse(exp: &Experiment, spaces: &mut dyn Spaces) -> Result<TreeResult, HostError> {
    let mut out = TreeResult { anchors: anchors(exp), repeats: exp.repeats, ..TreeResult::default() };
    let note = |what: String, e: HostError, out: &mut TreeResult| -> Result<(), HostError> {
        if e.fails_only_its_node() || matches!(e, HostError::Usage(_) | HostError::Fit(_)) {
            // A node that failed before was reported then: say nothing new on the terminal.
            if !matches!(e, HostError::NodeFailed { .. }) {
                tracing::warn!("tree analysis {what} failed: {e}");
            }
            out.failed.push(format!("{what}: {e}"));
            Ok(())
        } else {
            Err(e)
        }
    };
    for parent in exp.nodes.iter().map(|n| n.name.as_str()) {
        let children: Vec<&str> = exp.children_of(parent).collect();
        if children.len() < 2 {
            continue;
        }
        match width::analyse(exp, spaces, parent, &children) {
            Ok(w) => out.width.push(w),
            Err(e) => note(format!("width of `{parent}`"), e, &mut out)?,
        }
    }
    for spec in &exp.tree.edits {
        match edit::analyse(exp, spaces, spec) {
            Ok(e) => out.edits.push(e),
            Err(e) => note(format!("edit `{}` in `{}`", spec.operator, spec.child), e, &mut out)?,
        }
    }
    for path in depth::paths(exp) {
        match depth::analyse(exp, spaces, &path) {
            Ok(d) => out.depth.push(d),
            Err(e) => note(format!("path {}", path.join(" → ")), e, &mut out)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::maps::tests::gaussian;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// Fixed matrices as spaces: `node` by name, `edited` by `name ∘ op`.
    struct Fixed(HashMap<String, Mat<f64>>);

    fn embeddings(name: &str, m: &Mat<f64>) -> Embeddings {
        let (rows, dim) = (m.nrows(), m.ncols());
        Embeddings {
            node: name.to_owned(),
            key: name.to_owned(),
            rows,
            dim,
            data: (0..rows).flat_map(|i| (0..dim).map(move |j| m[(i, j)] as f32)).collect(),
            skipped: 0,
            roots: Arc::new((0..rows).map(|i| i.to_string()).collect()),
            frames: None,
        }
    }

    impl Spaces for Fixed {
        fn node(&mut self, name: &str) -> Result<Embeddings, HostError> {
            self.0
                .get(name)
                .map(|m| embeddings(name, m))
                .ok_or_else(|| HostError::Usage(format!("no {name}")))
        }
        fn edited(&mut self, name: &str, _at: &str, op: &str) -> Result<Embeddings, HostError> {
            let key = format!("{name} ∘ {op}");
            self.0.get(&key).map(|m| embeddings(&key, m)).ok_or_else(|| HostError::Usage(format!("no {key}")))
        }
    }

    const TREE: &str = r#"
[experiment]
name = "synthetic-tree"
seed = 5
anchors = [300]
repeats = 3
test = 100

[data.scores]
source = { plugin = "music", function = "random-scores" }

[data.scores.operators]
up = { plugin = "music", function = "transpose" }

[data.audio]
from = "scores"
render = { plugin = "music", function = "synth" }

[nodes.parent]
data = "audio"
plugin = "audio"
encoder = "log-mel"

[nodes.notes]
data = "scores"
plugin = "music"
encoder = "piano-roll"

[nodes.loudness]
data = "scores"
plugin = "music"
encoder = "loudness"

[nodes.deeper]
data = "scores"
plugin = "music"
encoder = "chroma"

[[edges]]
parent = "parent"
child = "notes"
methods = [{ kind = "ridge" }]

[[edges]]
parent = "parent"
child = "loudness"
methods = [{ kind = "ridge" }]

[[edges]]
parent = "notes"
child = "deeper"
methods = [{ kind = "ridge" }]

[[edges]]
parent = "parent"
child = "deeper"
methods = [{ kind = "ridge" }]
shortcut = true

[tree]
edits = [{ child = "notes", operator = "up" }]
"#;

    fn cols(m: &Mat<f64>, range: std::ops::Range<usize>) -> Mat<f64> {
        Mat::from_fn(m.nrows(), range.len(), |i, j| m[(i, range.start + j)])
    }

    fn times(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
        crate::align::kernels::matmul(a.as_ref(), b.as_ref())
    }

    /// A parent made of three independent parts — pitch (3 dims), loudness (2) and noise (2) —
    /// whose children each see one part through a random linear map; the edit shifts the pitch.
    fn synthetic() -> Fixed {
        let n = 400;
        let z = gaussian(n, 7, 1);
        let (m_notes, m_loud, m_deep) = (gaussian(3, 5, 2), gaussian(2, 3, 3), gaussian(5, 4, 4));
        let shift = [1.5, -0.5, 0.8];
        let z_up = Mat::from_fn(n, 7, |i, j| z[(i, j)] + if j < 3 { shift[j] } else { 0.0 });
        let notes = times(&cols(&z, 0..3), &m_notes);
        let mut spaces = HashMap::new();
        spaces.insert("parent".to_owned(), z.clone());
        spaces.insert("parent ∘ up".to_owned(), z_up.clone());
        spaces.insert("notes ∘ up".to_owned(), times(&cols(&z_up, 0..3), &m_notes));
        spaces.insert("loudness".to_owned(), times(&cols(&z, 3..5), &m_loud));
        spaces.insert("loudness ∘ up".to_owned(), times(&cols(&z_up, 3..5), &m_loud));
        spaces.insert("deeper".to_owned(), times(&notes, &m_deep));
        spaces.insert("notes".to_owned(), notes);
        Fixed(spaces)
    }

    #[test]
    fn known_shares_angles_edits_and_paths_of_a_synthetic_tree() {
        let exp = crate::experiment::parse::parse(TREE).unwrap();
        assert!(has_analyses(&exp));
        let result = analyse(&exp, &mut synthetic()).unwrap();
        assert!(result.failed.is_empty(), "{:?}", result.failed);
        let close = |s: &Stat, want: f64, tol: f64| {
            assert!((s.mean - want).abs() < tol, "{} is not {want} ± {tol}", s.mean);
        };

        // Width: pitch holds 3 of the parent's 7 unit-variance dimensions, loudness 2, noise 2.
        let w = &result.width[0];
        assert_eq!((w.parent.as_str(), w.children.len(), w.parent_dim), ("parent", 2, 7));
        close(&w.children[0].explained, 3.0 / 7.0, 0.06);
        close(&w.children[1].explained, 2.0 / 7.0, 0.06);
        close(&w.joint, 5.0 / 7.0, 0.06);
        close(&w.residual, 2.0 / 7.0, 0.06);
        close(&w.children[0].readable, 1.0, 1e-3);
        close(&w.children[0].subspace_dim, 3.0, 1e-9);
        close(&w.children[1].subspace_dim, 2.0, 1e-9);
        // Independent parts: orthogonal subspaces, up to the maps' sampling error from 300
        // anchors (cross terms of about 1/√300), far below chance (a 3-d and a 2-d of 7: 3/7).
        assert!(w.overlaps[0].min_angle_deg.mean > 70.0, "{:?}", w.overlaps[0].min_angle_deg);
        close(&w.overlaps[0].mean_cos2, 0.0, 0.05);
        close(&w.overlaps[0].chance_mean_cos2, 3.0 / 7.0, 1e-12);

        // The edit moves the pitch part only: it lands, and the loudness map does not move.
        let e = &result.edits[0];
        assert_eq!((e.child.as_str(), e.parent.as_str(), e.moves.len()), ("notes", "parent", 2));
        close(&e.success, 1.0, 0.02);
        close(&e.unconstrained_success, 1.0, 0.02);
        close(&e.cosine, 1.0, 0.01);
        close(&e.landed, 1.0, 0.01);
        let loud = &e.moves[1];
        assert!(!loud.edited);
        // What the loudness map sees move is sampling error of the maps: under 1 % of the edited
        // child's movement.
        assert!(loud.carried.mean < 0.01 * e.moves[0].carried.mean, "{:?}", loud.carried);
        close(loud.truth.as_ref().unwrap(), 0.0, 1e-12);
        close(&e.moves[0].carried, e.moves[0].truth.as_ref().unwrap().mean, 0.05);

        // Depth: parent → notes → deeper composes exactly (linear maps of the pitch part); the
        // shortcut agrees; the round trip back to the parent can only recover the pitch part.
        let d = result.depth.iter().find(|d| d.path == ["parent", "notes", "deeper"]).unwrap();
        close(&d.composed_r2, 1.0, 1e-3);
        let direct = d.direct.as_ref().unwrap();
        close(&direct.r2, 1.0, 1e-3);
        close(&direct.agreement, 1.0, 1e-3);
        close(&d.cycle.as_ref().unwrap().r2, 3.0 / 7.0, 0.06);
        assert!(d.composed_p_at_1.mean > 0.9);
    }

    #[test]
    fn a_missing_space_fails_its_analysis_only() {
        let exp = crate::experiment::parse::parse(TREE).unwrap();
        let mut spaces = synthetic();
        spaces.0.remove("loudness");
        let result = analyse(&exp, &mut spaces).unwrap();
        assert!(result.width.is_empty() && result.edits.is_empty());
        assert_eq!(result.failed.len(), 2, "{:?}", result.failed);
        assert!(!result.depth.is_empty(), "the path without `loudness` is still analysed");
    }
}
