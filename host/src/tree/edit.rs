//! Controlled edits: an edit made in one child (transpose +2 in the notes) is carried to the
//! parent along that child's part of the parent only, and every child's map is asked whether it
//! moved — against the ground truth of rendering the edited item again and encoding it.
//!
//! Notation for one test item: `p` its parent embedding, `c_k` its embedding in child k, `c_e'`
//! the edited child's embedding of the edited item, and `p*` the parent's embedding of the edited
//! item rendered again (the truth). Maps, fitted on the anchors: `G: c_e → p` (the edited child's
//! explanation of the parent) and `T_k: p → c_k` (each edge). The carried edit is
//! `p' = p + (c_e' − c_e) G`, a move inside the edited child's subspace of the parent. Beside it,
//! the unconstrained edit `p'' = p + (c_e' − c_e) T_e⁺` (the smallest parent move that makes the
//! edited child's map move by the child's change) shows what the subspace restriction buys.
//!
//! Reported, summed over the test items:
//! - `success = 1 − Σ‖p' − p*‖² / Σ‖p − p*‖²`: the share of the true parent change the carried edit
//!   makes (1 = exactly the re-rendered item; 0 = no better than not editing); `cosine`, the mean
//!   cosine between `p' − p` and `p* − p`;
//! - `landed = 1 − Σ‖T_e(p') − c_e'‖² / Σ‖T_e(p) − c_e'‖²`: whether the edited child's map sees the
//!   edit;
//! - per child k, how far its map moves, `Σ‖T_k(p') − T_k(p)‖²`, in units of child k's test
//!   variance (`Σ‖c_k − c̄_k‖²`), beside the same for the unconstrained edit, for the true edit
//!   seen through the map (`T_k(p*) − T_k(p)`), and the child's own true change (`c_k' − c_k`, where
//!   the child's items are rendered from the edited data set). For the other children a good
//!   edit moves about as little as the truth does: that is the leakage.

use super::maps::{self, difference, rows, squared_distance, sum, total_variation};
use super::{joint_rows, split, Spaces, Stat};
use crate::align::kernels;
use crate::experiment::{EditSpec, Experiment};
use crate::HostError;
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

/// How far one child's map moves under an edit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChildMove {
    /// The child.
    pub child: String,
    /// Whether this is the edited child.
    pub edited: bool,
    /// The carried edit's move of this child's map, in units of the child's variance.
    pub carried: Stat,
    /// The unconstrained edit's move.
    pub unconstrained: Stat,
    /// The true edit (the re-rendered item) seen through this child's map.
    pub truth_mapped: Stat,
    /// The child's own true change, when its items are rendered from the edited data set.
    pub truth: Option<Stat>,
}

/// One edit's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EditResult {
    /// The child the edit is made in.
    pub child: String,
    /// The operator.
    pub operator: String,
    /// The parent it is carried to.
    pub parent: String,
    /// Items with every embedding the edit needs.
    pub items: usize,
    /// Share of the true parent change the carried edit makes.
    pub success: Stat,
    /// The same for the unconstrained edit.
    pub unconstrained_success: Stat,
    /// Mean cosine between the carried and the true parent change.
    pub cosine: Stat,
    /// Whether the edited child's map sees the edit.
    pub landed: Stat,
    /// Every child of the parent, the edited one first.
    pub moves: Vec<ChildMove>,
}

/// Mean cosine between the rows of `a` and `b` (rows where either is zero are left out).
fn mean_cosine(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut total = 0.0;
    let mut count = 0;
    for i in 0..a.nrows() {
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for j in 0..a.ncols() {
            ab += a[(i, j)] * b[(i, j)];
            aa += a[(i, j)] * a[(i, j)];
            bb += b[(i, j)] * b[(i, j)];
        }
        if aa > 0.0 && bb > 0.0 {
            total += ab / (aa * bb).sqrt();
            count += 1;
        }
    }
    if count == 0 {
        f64::NAN
    } else {
        total / count as f64
    }
}

/// `Σ‖rows‖²`.
fn energy(m: MatRef<'_, f64>) -> f64 {
    kernels::squared_norm(m)
}

/// The analysis of one declared edit.
pub fn analyse(exp: &Experiment, spaces: &mut dyn Spaces, spec: &EditSpec) -> Result<EditResult, HostError> {
    let usage = |m: String| HostError::Usage(m);
    let parent = exp
        .parent_of(&spec.child)
        .ok_or_else(|| usage(format!("node `{}` has no parent", spec.child)))?
        .to_owned();
    let at = exp
        .node(&spec.child)
        .map(|n| n.data.clone())
        .ok_or_else(|| usage(format!("no node `{}`", spec.child)))?;
    // The edited child first, then its siblings in edge order.
    let mut children = vec![spec.child.clone()];
    children.extend(exp.children_of(&parent).filter(|c| *c != spec.child).map(str::to_owned));
    let p = spaces.node(&parent)?;
    let p_star = spaces.edited(&parent, &at, &spec.operator)?;
    let mut cs = Vec::new();
    let mut truths = Vec::new();
    for c in &children {
        cs.push(spaces.node(c)?);
        let data = exp.node(c).map(|n| n.data.as_str()).unwrap_or_default();
        truths.push(match exp.render_chain(data, &at) {
            Some(_) => Some(spaces.edited(c, &at, &spec.operator)?),
            None => None,
        });
    }
    let mut all = vec![&p, &p_star];
    all.extend(cs.iter());
    all.extend(truths.iter().flatten());
    let (valid, mats) = joint_rows(&all)?;
    let k = children.len();
    let (mp, mp_star) = (&mats[0], &mats[1]);
    let mc = &mats[2..2 + k];
    // Index of each child's truth among the matrices.
    let mut truth_at = Vec::with_capacity(k);
    let mut next = 2 + k;
    for t in &truths {
        truth_at.push(t.as_ref().map(|_| {
            next += 1;
            next - 1
        }));
    }
    let edited_truth =
        truth_at[0].ok_or_else(|| usage(format!("the edited child `{}` has no truth", spec.child)))?;
    let anchors = super::anchors(exp);
    let (mut success, mut free_success, mut cosine, mut landed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut carried = vec![Vec::new(); k];
    let mut free = vec![Vec::new(); k];
    let mut truth_mapped = vec![Vec::new(); k];
    let mut truth = vec![Vec::new(); k];
    for repeat in 0..exp.repeats {
        let (test, train) = split(exp, valid.len(), anchors, repeat)?;
        let (px, pt, pt_star) =
            (rows(mp.as_ref(), &train), rows(mp.as_ref(), &test), rows(mp_star.as_ref(), &test));
        let ce = rows(mc[0].as_ref(), &train);
        let (ce_t, ce_t_star) = (rows(mc[0].as_ref(), &test), rows(mats[edited_truth].as_ref(), &test));
        let back = maps::fit(ce.as_ref(), px.as_ref(), exp.tree.lambda)?;
        let forward: Vec<maps::Map> = (0..k)
            .map(|c| maps::fit(px.as_ref(), rows(mc[c].as_ref(), &train).as_ref(), exp.tree.lambda))
            .collect::<Result<_, _>>()?;
        let dc = difference(ce_t_star.as_ref(), ce_t.as_ref());
        let dp = back.displace(dc.as_ref());
        let dp_free = kernels::matmul(dc.as_ref(), forward[0].pseudo_inverse()?.as_ref());
        let dp_true = difference(pt_star.as_ref(), pt.as_ref());
        let untouched = energy(dp_true.as_ref());
        let p_edited = sum(pt.as_ref(), dp.as_ref());
        let p_free = sum(pt.as_ref(), dp_free.as_ref());
        success.push(1.0 - squared_distance(p_edited.as_ref(), pt_star.as_ref()) / untouched);
        free_success.push(1.0 - squared_distance(p_free.as_ref(), pt_star.as_ref()) / untouched);
        cosine.push(mean_cosine(dp.as_ref(), dp_true.as_ref()));
        let before = forward[0].apply(pt.as_ref());
        let after = forward[0].apply(p_edited.as_ref());
        landed.push(
            1.0 - squared_distance(after.as_ref(), ce_t_star.as_ref())
                / squared_distance(before.as_ref(), ce_t_star.as_ref()),
        );
        for c in 0..k {
            let scale = total_variation(rows(mc[c].as_ref(), &test).as_ref());
            let moved = |d: &Mat<f64>| energy(forward[c].displace(d.as_ref()).as_ref()) / scale;
            carried[c].push(moved(&dp));
            free[c].push(moved(&dp_free));
            truth_mapped[c].push(moved(&dp_true));
            if let Some(t) = truth_at[c] {
                let change =
                    difference(rows(mats[t].as_ref(), &test).as_ref(), rows(mc[c].as_ref(), &test).as_ref());
                truth[c].push(energy(change.as_ref()) / scale);
            }
        }
    }
    Ok(EditResult {
        child: spec.child.clone(),
        operator: spec.operator.clone(),
        parent,
        items: valid.len(),
        success: Stat::of(&success),
        unconstrained_success: Stat::of(&free_success),
        cosine: Stat::of(&cosine),
        landed: Stat::of(&landed),
        moves: (0..k)
            .map(|c| ChildMove {
                child: children[c].clone(),
                edited: c == 0,
                carried: Stat::of(&carried[c]),
                unconstrained: Stat::of(&free[c]),
                truth_mapped: Stat::of(&truth_mapped[c]),
                truth: truth_at[c].map(|_| Stat::of(&truth[c])),
            })
            .collect(),
    })
}
