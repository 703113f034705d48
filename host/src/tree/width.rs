//! Width: a parent with several children. Which share of the parent's variance each child's map
//! explains, whether the children's parts of the parent overlap (principal angles), and the
//! residual no child explains — the part of the parent that none of them can control.
//!
//! Per repeat, with maps fitted on the anchors and judged on the test items:
//! - `explained` of child c: R² of the parent predicted from c (`c → parent`);
//! - `readable` of child c: R² of c predicted from the parent (the edge's direction);
//! - `joint`: R² of the parent predicted from all children side by side; `residual = 1 − joint`;
//! - child c's subspace of the parent: the principal directions holding 95 % of the variance of
//!   its prediction of the parent; between two children, the cosines of the principal angles
//!   between their subspaces, summarised by the largest (the closest pair of directions) and the
//!   mean squared cosine (0 for orthogonal subspaces, 1 for one inside the other), beside what
//!   random subspaces of the same dimensions would give.

use super::maps::{self, concat_columns, rows};
use super::subspace::{chance_mean_cos2, principal_basis, principal_cosines};
use super::{joint_rows, split, Spaces, Stat};
use crate::experiment::Experiment;
use crate::HostError;
use faer::MatRef;
use serde::{Deserialize, Serialize};

/// The share of a child's predicted parent variance its subspace keeps.
pub const SUBSPACE_ENERGY: f64 = 0.95;

/// What one child explains of its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChildShare {
    /// The child node.
    pub child: String,
    /// R² of the parent predicted from this child.
    pub explained: Stat,
    /// R² of this child predicted from the parent.
    pub readable: Stat,
    /// Dimension of the child's subspace of the parent.
    pub subspace_dim: Stat,
}

/// How two children's subspaces of the parent meet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Overlap {
    /// The first child.
    pub a: String,
    /// The second child.
    pub b: String,
    /// The smallest principal angle, in degrees.
    pub min_angle_deg: Stat,
    /// The mean squared cosine of the principal angles.
    pub mean_cos2: Stat,
    /// The mean squared cosine between random subspaces of the same dimensions.
    pub chance_mean_cos2: Stat,
}

/// Width of one parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WidthResult {
    /// The parent node.
    pub parent: String,
    /// Its dimension.
    pub parent_dim: usize,
    /// Items embedded in the parent and every child.
    pub items: usize,
    /// Test items per repeat.
    pub test: usize,
    /// Per child, in edge order.
    pub children: Vec<ChildShare>,
    /// R² of the parent predicted from all children together.
    pub joint: Stat,
    /// `1 − joint`: the share of the parent's variance no child explains.
    pub residual: Stat,
    /// Per pair of children.
    pub overlaps: Vec<Overlap>,
}

/// The width analysis of `parent` with its `children`.
pub fn analyse(
    exp: &Experiment,
    spaces: &mut dyn Spaces,
    parent: &str,
    children: &[&str],
) -> Result<WidthResult, HostError> {
    let p = spaces.node(parent)?;
    let cs = children.iter().map(|c| spaces.node(c)).collect::<Result<Vec<_>, _>>()?;
    let mut all = vec![&p];
    all.extend(cs.iter());
    let (valid, mats) = joint_rows(&all)?;
    let anchors = super::anchors(exp);
    let k = children.len();
    let mut explained = vec![Vec::new(); k];
    let mut readable = vec![Vec::new(); k];
    let mut dims = vec![Vec::new(); k];
    let mut joint = Vec::new();
    let pairs: Vec<(usize, usize)> = (0..k).flat_map(|a| (a + 1..k).map(move |b| (a, b))).collect();
    let mut min_angle = vec![Vec::new(); pairs.len()];
    let mut mean_cos2 = vec![Vec::new(); pairs.len()];
    let mut chance = vec![Vec::new(); pairs.len()];
    let mut test_len = 0;
    for repeat in 0..exp.repeats {
        let (test, train) = split(exp, valid.len(), anchors, repeat)?;
        test_len = test.len();
        let (px, pt) = (rows(mats[0].as_ref(), &train), rows(mats[0].as_ref(), &test));
        let mut bases = Vec::with_capacity(k);
        for c in 0..k {
            let (cx, ct) = (rows(mats[c + 1].as_ref(), &train), rows(mats[c + 1].as_ref(), &test));
            let back = maps::fit(cx.as_ref(), px.as_ref(), exp.tree.lambda)?;
            let predicted = back.apply(ct.as_ref());
            explained[c].push(maps::r2(predicted.as_ref(), pt.as_ref()));
            let forward = maps::fit(px.as_ref(), cx.as_ref(), exp.tree.lambda)?;
            readable[c].push(maps::r2(forward.apply(pt.as_ref()).as_ref(), ct.as_ref()));
            let basis = principal_basis(predicted.as_ref(), SUBSPACE_ENERGY)?;
            dims[c].push(basis.ncols() as f64);
            bases.push(basis);
        }
        let side_by_side = |index: &[usize]| {
            let parts: Vec<_> = (0..k).map(|c| rows(mats[c + 1].as_ref(), index)).collect();
            concat_columns(&parts.iter().map(|m| m.as_ref()).collect::<Vec<MatRef<'_, f64>>>())
        };
        let all_back = maps::fit(side_by_side(&train).as_ref(), px.as_ref(), exp.tree.lambda)?;
        joint.push(maps::r2(all_back.apply(side_by_side(&test).as_ref()).as_ref(), pt.as_ref()));
        for (i, &(a, b)) in pairs.iter().enumerate() {
            let cos = principal_cosines(bases[a].as_ref(), bases[b].as_ref())?;
            let largest = cos.first().copied().unwrap_or(0.0);
            min_angle[i].push(largest.clamp(-1.0, 1.0).acos().to_degrees());
            mean_cos2[i].push(if cos.is_empty() {
                0.0
            } else {
                cos.iter().map(|c| c * c).sum::<f64>() / cos.len() as f64
            });
            chance[i].push(chance_mean_cos2(bases[a].ncols(), bases[b].ncols(), p.dim));
        }
    }
    let joint_stat = Stat::of(&joint);
    let residual: Vec<f64> = joint.iter().map(|j| 1.0 - j).collect();
    Ok(WidthResult {
        parent: parent.to_owned(),
        parent_dim: p.dim,
        items: valid.len(),
        test: test_len,
        children: (0..k)
            .map(|c| ChildShare {
                child: children[c].to_owned(),
                explained: Stat::of(&explained[c]),
                readable: Stat::of(&readable[c]),
                subspace_dim: Stat::of(&dims[c]),
            })
            .collect(),
        joint: joint_stat,
        residual: Stat::of(&residual),
        overlaps: pairs
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| Overlap {
                a: children[a].to_owned(),
                b: children[b].to_owned(),
                min_angle_deg: Stat::of(&min_angle[i]),
                mean_cos2: Stat::of(&mean_cos2[i]),
                chance_mean_cos2: Stat::of(&chance[i]),
            })
            .collect(),
    })
}
