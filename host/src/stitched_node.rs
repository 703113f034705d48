//! Nodes computed by a stitch (`[nodes.NAME] stitch = "…"`): every item rendered to model A's
//! token states as the stitch's `source` is, mapped by one map fitted on the token pairs of the
//! node's anchor items, and resumed in model B — a stitched model as a space like any other,
//! cached chunk by chunk as a plugin encoder's embeddings are.
//!
//! The anchors are drawn from the node's data set with the experiment's seed, and left out of
//! the node (NaN rows, skipped as "anchor of the stitched map"), so that no edge fits or tests on
//! an item whose states the map has seen. The cache key holds what the vectors depend on: the
//! renders to A's and B's states, B's resume, the method, the centring and the anchors' ids (not
//! the host's build: a stitched node's vectors survive rebuilds, as a plugin's do, unless
//! [`VERSION`] changes).

use crate::cache::{Key, KeyBuilder};
use crate::experiment::{Call, Experiment, Node, Origin, Stitch, StitchedEncoder};
use crate::HostError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// The version of how a stitched node's vectors are computed, in its cache key.
pub const VERSION: u32 = 1;

/// What a stitched node needs, resolved once per run.
pub(crate) struct StitchedPlan {
    /// The cache key its chunks are keyed by (with the items' ids).
    pub(crate) key: Key,
    /// The renders from the node's data set to A's states (the stitch's `source`).
    pub(crate) source_chain: Vec<Call>,
    /// The renders from the node's data set to B's states (the stitch's `target`).
    pub(crate) target_chain: Vec<Call>,
    /// B from the layer on.
    pub(crate) resume: Call,
    /// The map's method.
    pub(crate) method: crate::align::MethodSpec,
    /// Whether the token rows are centred.
    pub(crate) center: bool,
    /// The anchors: rows of the node's data set, and their items' ids.
    pub(crate) anchor_rows: Vec<usize>,
    pub(crate) anchor_ids: HashSet<Key>,
    /// The map, fitted on first use.
    pub(crate) map: std::sync::OnceLock<Result<crate::token_map::TokenMap, String>>,
}

/// The renders that take `root`'s items to data set `data`, in order.
fn chain(exp: &Experiment, data: &str, root: &str) -> Result<Vec<Call>, HostError> {
    let names = exp
        .render_chain(data, root)
        .ok_or_else(|| HostError::Usage(format!("data set `{data}` is not rendered from `{root}`")))?;
    names
        .iter()
        .rev()
        .skip(1)
        .map(|d| match exp.data_set(d).map(|d| &d.origin) {
            Some(Origin::Render { call, .. }) => Ok(call.clone()),
            _ => Err(HostError::Usage(format!("data set `{d}` is not rendered from another"))),
        })
        .collect()
}

/// The plan of `node`, stitched by `encoder`, on items with ids `ids`; `function_key` gives a
/// plugin call's cache key.
pub(crate) fn plan(
    exp: &Experiment,
    node: &Node,
    encoder: &StitchedEncoder,
    ids: &[Key],
    function_key: &dyn Fn(&Call) -> Result<Key, HostError>,
) -> Result<StitchedPlan, HostError> {
    let stitch: &Stitch = exp.stitches.iter().find(|s| s.name == encoder.stitch).ok_or_else(|| {
        HostError::Usage(format!("node `{}`: no stitch named `{}`", node.name, encoder.stitch))
    })?;
    let method = encoder
        .method
        .clone()
        .or_else(|| stitch.methods.first().cloned())
        .ok_or_else(|| HostError::Usage(format!("stitch `{}` has no method", stitch.name)))?;
    if encoder.anchors >= ids.len() {
        return Err(HostError::Usage(format!(
            "node `{}`: {} anchors leave none of its {} items to embed",
            node.name,
            encoder.anchors,
            ids.len()
        )));
    }
    let source_chain = chain(exp, &stitch.source, &node.data)?;
    let target_chain = chain(exp, &stitch.target, &node.data)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(exp.seed ^ 0x5717_c4ed_0000_0001));
    let mut anchor_rows = order[..encoder.anchors].to_vec();
    anchor_rows.sort_unstable();
    let mut key = KeyBuilder::new("stitched-node");
    key.push(&VERSION.to_le_bytes());
    for call in source_chain.iter().chain(&target_chain).chain([&stitch.resume]) {
        key.text(&function_key(call)?);
    }
    key.push(&(source_chain.len() as u64).to_le_bytes())
        .text(&serde_json::to_string(&method).unwrap_or_default())
        .push(&[u8::from(stitch.center)]);
    for &r in &anchor_rows {
        key.text(&ids[r]);
    }
    Ok(StitchedPlan {
        key: key.finish(),
        source_chain,
        target_chain,
        resume: stitch.resume.clone(),
        method,
        center: stitch.center,
        anchor_ids: anchor_rows.iter().map(|&r| ids[r].clone()).collect(),
        anchor_rows,
        map: std::sync::OnceLock::new(),
    })
}
