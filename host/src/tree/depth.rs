//! Depth: maps compose along a path of the tree (speech → text → emotion). Per path of two or
//! more edges, the composition of the edges' maps is judged in the last node's space — and, where
//! a shortcut edge joins the path's ends, against the direct map, with a round trip out along the
//! path and back along the shortcut (cycle consistency).
//!
//! Reported on the test items, per repeat, then as mean and spread:
//! - `steps`: R² of each edge's map on its own;
//! - `composed`: R² and P@1 (cosine nearest neighbour among the test items) of the first node
//!   mapped through every edge to the last;
//! - with a shortcut: the direct map's R² and P@1, and `agreement`, the R² of the composed
//!   prediction against the direct one;
//! - `cycle`: the first node mapped along the path, then back by a map fitted from the last node
//!   to the first (the shortcut reversed): R² and P@1 against where it started.

use super::maps::{self, rows, Map};
use super::{joint_rows, split, Spaces, Stat};
use crate::experiment::Experiment;
use crate::metrics::{retrieval, Scoring};
use crate::HostError;
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

/// The direct map over a shortcut.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Direct {
    /// R² of the direct map.
    pub r2: Stat,
    /// P@1 of the direct map.
    pub p_at_1: Stat,
    /// R² of the composed prediction against the direct one.
    pub agreement: Stat,
}

/// Out along the path, back along the reversed shortcut.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cycle {
    /// R² of the round trip against the start.
    pub r2: Stat,
    /// P@1 of the round trip among the test items of the first node.
    pub p_at_1: Stat,
}

/// One path's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DepthResult {
    /// The nodes, first to last.
    pub path: Vec<String>,
    /// Items embedded in every node of the path.
    pub items: usize,
    /// R² of each edge's map alone, in path order.
    pub steps: Vec<Stat>,
    /// R² of the composed map.
    pub composed_r2: Stat,
    /// P@1 of the composed map.
    pub composed_p_at_1: Stat,
    /// The direct map, when a shortcut joins the ends.
    pub direct: Option<Direct>,
    /// The round trip, when a shortcut joins the ends.
    pub cycle: Option<Cycle>,
}

/// Every tree path of two or more edges: from each node to each descendant two or more edges
/// below it, in node order.
pub fn paths(exp: &Experiment) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for end in &exp.nodes {
        let mut up = vec![end.name.clone()];
        let mut current = end.name.as_str();
        for _ in 0..exp.edges.len() {
            let Some(parent) = exp.parent_of(current) else { break };
            up.push(parent.to_owned());
            current = parent;
            if up.len() >= 3 {
                let mut path = up.clone();
                path.reverse();
                out.push(path);
            }
        }
    }
    out.sort_by_key(|p| (exp.nodes.iter().position(|n| n.name == p[0]), p.len()));
    out
}

fn to_f32(m: MatRef<'_, f64>) -> Mat<f32> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f32)
}

/// P@1 of `queries` against `gallery` (row i ↔ row i), cosine nearest neighbour.
pub(crate) fn p_at_1(queries: MatRef<'_, f64>, gallery: MatRef<'_, f64>) -> f64 {
    let truth: Vec<Option<usize>> = (0..queries.nrows()).map(Some).collect();
    retrieval(to_f32(queries).as_ref(), to_f32(gallery).as_ref(), &truth, Scoring::Nn)
        .map_or(f64::NAN, |r| r.p_at_1)
}

/// The depth analysis of one path.
pub fn analyse(exp: &Experiment, spaces: &mut dyn Spaces, path: &[String]) -> Result<DepthResult, HostError> {
    let embeddings = path.iter().map(|n| spaces.node(n)).collect::<Result<Vec<_>, _>>()?;
    let (valid, mats) = joint_rows(&embeddings.iter().collect::<Vec<_>>())?;
    let (first, last) = (&path[0], &path[path.len() - 1]);
    let shortcut = exp.edges.iter().any(|e| e.shortcut && &e.parent == first && &e.child == last);
    let anchors = super::anchors(exp);
    let mut steps = vec![Vec::new(); path.len() - 1];
    let (mut composed_r2, mut composed_p1) = (Vec::new(), Vec::new());
    let (mut direct_r2, mut direct_p1, mut agreement) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cycle_r2, mut cycle_p1) = (Vec::new(), Vec::new());
    for repeat in 0..exp.repeats {
        let (test, train) = split(exp, valid.len(), anchors, repeat)?;
        let mut composed: Option<Map> = None;
        for s in 0..path.len() - 1 {
            let map = maps::fit(
                rows(mats[s].as_ref(), &train).as_ref(),
                rows(mats[s + 1].as_ref(), &train).as_ref(),
                exp.tree.lambda,
            )?;
            let (xt, yt) = (rows(mats[s].as_ref(), &test), rows(mats[s + 1].as_ref(), &test));
            steps[s].push(maps::r2(map.apply(xt.as_ref()).as_ref(), yt.as_ref()));
            composed = Some(match composed {
                None => map,
                Some(c) => c.then(&map),
            });
        }
        let Some(composed) = composed else { continue };
        let (start, end) = (&mats[0], &mats[path.len() - 1]);
        let (xt, zt) = (rows(start.as_ref(), &test), rows(end.as_ref(), &test));
        let predicted = composed.apply(xt.as_ref());
        composed_r2.push(maps::r2(predicted.as_ref(), zt.as_ref()));
        composed_p1.push(p_at_1(predicted.as_ref(), zt.as_ref()));
        if shortcut {
            let (xa, za) = (rows(start.as_ref(), &train), rows(end.as_ref(), &train));
            let direct = maps::fit(xa.as_ref(), za.as_ref(), exp.tree.lambda)?;
            let straight = direct.apply(xt.as_ref());
            direct_r2.push(maps::r2(straight.as_ref(), zt.as_ref()));
            direct_p1.push(p_at_1(straight.as_ref(), zt.as_ref()));
            agreement.push(maps::r2(predicted.as_ref(), straight.as_ref()));
            let back = maps::fit(za.as_ref(), xa.as_ref(), exp.tree.lambda)?;
            let round = back.apply(predicted.as_ref());
            cycle_r2.push(maps::r2(round.as_ref(), xt.as_ref()));
            cycle_p1.push(p_at_1(round.as_ref(), xt.as_ref()));
        }
    }
    Ok(DepthResult {
        path: path.to_vec(),
        items: valid.len(),
        steps: steps.iter().map(|s| Stat::of(s)).collect(),
        composed_r2: Stat::of(&composed_r2),
        composed_p_at_1: Stat::of(&composed_p1),
        direct: shortcut.then(|| Direct {
            r2: Stat::of(&direct_r2),
            p_at_1: Stat::of(&direct_p1),
            agreement: Stat::of(&agreement),
        }),
        cycle: shortcut.then(|| Cycle { r2: Stat::of(&cycle_r2), p_at_1: Stat::of(&cycle_p1) }),
    })
}
