//! Layer sweeps: a node declared with `layers = "all"` (or a list) stands for one node per layer,
//! `NAME@k`, each its encoder with `layer = k`; an edge that names a swept node stands for the
//! edges of its layer grid.
//!
//! [`expand`] rewrites a parsed experiment before it is validated, so that everything after it —
//! checks, extraction and its cache, fits, swaps, exports — sees plain nodes and edges. A grid's
//! edges carry their [`GridCell`], which the report gathers into layer × layer heatmaps; they are
//! evaluated like any edge but are not tree edges (a child may be the grid's target from every
//! layer of its parent).

use super::diagnostic::Diagnostic;
use super::spec::{Encoder, Experiment, GridCell, LayerOf, Layers, Node};
use crate::registry::Registry;

/// The parameter a swept encoder must have.
pub const LAYER_PARAM: &str = "layer";

/// Replaces every swept node by its layers' nodes and every edge naming one by its grid's edges.
/// Problems — a sweep on an encoder without a `layer` parameter, a layer outside its range, a
/// `layer` also given in `params` — are diagnostics at the `layers` value. A node whose plugin or
/// encoder is unknown is left for [`super::validate`] to report.
pub fn expand(exp: &mut Experiment, registry: &Registry) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // Swept node → its layers, in order.
    let mut sweeps: Vec<(String, Vec<usize>)> = Vec::new();
    let mut nodes = Vec::with_capacity(exp.nodes.len());
    for node in std::mem::take(&mut exp.nodes) {
        let Some((layers, span)) = node.layers.clone() else {
            nodes.push(node);
            continue;
        };
        let Encoder::Plugin(call) = &node.encoder else {
            nodes.push(node);
            continue;
        };
        let Some(spec) = registry
            .get(&call.plugin)
            .ok()
            .and_then(|p| p.plugin.manifest().function(&call.function).cloned())
        else {
            // Reported by validation as an unknown plugin or encoder.
            nodes.push(Node { layers: None, ..node });
            continue;
        };
        let label = format!("{}/{}", call.plugin, call.function);
        let Some(param) = spec.params.iter().find(|p| p.name == LAYER_PARAM) else {
            diags.push(
                Diagnostic::new(span.clone(), format!("`{label}` has no `{LAYER_PARAM}` parameter to sweep"))
                    .with_help("`layers` sweeps an encoder's `layer`; `commute describe` lists each encoder's parameters"),
            );
            nodes.push(Node { layers: None, ..node });
            continue;
        };
        if let Some((key, _)) = call.params.get_key_value(LAYER_PARAM) {
            diags.push(
                Diagnostic::new(span.clone(), format!("`layers` sweeps `{key}`, which `params` also sets"))
                    .with_help("give either `layers` or `params.layer`"),
            );
            nodes.push(Node { layers: None, ..node });
            continue;
        }
        let (lo, hi) = (param.bounds.minimum, param.bounds.maximum);
        let list = match (layers, lo, hi) {
            (Layers::List(list), ..) => list,
            (Layers::All, Some(lo), Some(hi)) if lo >= 0.0 && hi >= lo && hi - lo < 1000.0 => {
                (lo as usize..=hi as usize).collect()
            }
            (Layers::All, ..) => {
                diags.push(Diagnostic::new(
                    span.clone(),
                    format!("`{label}` does not declare the range of its `{LAYER_PARAM}`, so \"all\" is unknown"),
                ).with_help("list the layers, e.g. `layers = [0, 1, 2]`"));
                nodes.push(Node { layers: None, ..node });
                continue;
            }
        };
        if let Some(bad) = list.iter().find(|&&k| !param.bounds.contains(k as f64)) {
            let range = match (lo, hi) {
                (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
                _ => "its declared range".to_owned(),
            };
            diags.push(
                Diagnostic::new(
                    span.clone(),
                    format!("`{label}` has no layer {bad}: its `{LAYER_PARAM}` is within {range}"),
                )
                .with_help("`layers = \"all\"` sweeps every layer it has"),
            );
            nodes.push(Node { layers: None, ..node });
            continue;
        }
        for &k in &list {
            let mut call = call.clone();
            call.params.insert(LAYER_PARAM.to_owned(), toml::Value::Integer(k as i64));
            nodes.push(Node {
                name: format!("{}@{k}", node.name),
                encoder: Encoder::Plugin(call),
                layer_of: Some(LayerOf { node: node.name.clone(), layer: k }),
                layers: None,
                ..node.clone()
            });
        }
        sweeps.push((node.name.clone(), list));
    }
    exp.nodes = nodes;
    let swept = |name: &str| sweeps.iter().any(|(n, _)| n == name);
    for edge in exp.edges.iter().filter(|e| e.grid_anchors.is_some()) {
        let anchors = edge.grid_anchors.unwrap_or_default();
        if !swept(&edge.parent) && !swept(&edge.child) {
            diags.push(
                Diagnostic::new(
                    edge.spans.grid_anchors.clone(),
                    "`grid-anchors` applies to an edge that names a node with `layers`",
                )
                .with_help("remove it, or sweep the parent's or the child's layers"),
            );
        } else if !exp.anchors.contains(&anchors) {
            let list: Vec<String> = exp.anchors.iter().map(usize::to_string).collect();
            diags.push(
                Diagnostic::new(
                    edge.spans.grid_anchors.clone(),
                    format!("`grid-anchors = {anchors}` is not one of the experiment's anchor counts"),
                )
                .with_help(format!("pick one of [{}]", list.join(", "))),
            );
        }
    }
    if sweeps.is_empty() {
        return diags;
    }
    let layers_of = |name: &str| -> Vec<(String, Option<usize>)> {
        match sweeps.iter().find(|(n, _)| n == name) {
            Some((_, list)) => list.iter().map(|&k| (format!("{name}@{k}"), Some(k))).collect(),
            None => vec![(name.to_owned(), None)],
        }
    };
    let mut edges = Vec::with_capacity(exp.edges.len());
    for edge in std::mem::take(&mut exp.edges) {
        let (parents, children) = (layers_of(&edge.parent), layers_of(&edge.child));
        if parents.len() == 1 && children.len() == 1 && parents[0].1.is_none() && children[0].1.is_none() {
            edges.push(edge);
            continue;
        }
        for (parent, parent_layer) in &parents {
            for (child, child_layer) in &children {
                edges.push(super::spec::Edge {
                    parent: parent.clone(),
                    child: child.clone(),
                    grid: Some(GridCell {
                        parent: edge.parent.clone(),
                        child: edge.child.clone(),
                        parent_layer: *parent_layer,
                        child_layer: *child_layer,
                    }),
                    ..edge.clone()
                });
            }
        }
    }
    exp.edges = edges;
    diags
}
