//! A layer sweep extracted in one pass: when the nodes of a sweep (`layers = …` on a node, which
//! stands for `NAME@k` per layer) have an encoder that reads several layers at once (a `layers`
//! parameter), the first of them to need a chunk computes it at every layer of the sweep in one
//! forward pass, and the chunk is split into the layers' own chunks, each cached under the key
//! the node of that layer has. The others then find their chunks cached.
//!
//! The cache keys are those of the nodes one by one, so what is cached does not depend on which
//! way it was computed; this holds because an encoder's `layers` must give, bit for bit, what
//! `layer` gives for each (the plugins' tests check it for MiniLM on both backends, for
//! paraphrase-MiniLM and for PP-OCR). Sharded extraction (`--shard`) computes each node's chunks
//! on its own, so that a shard writes only the chunks it owns.

use crate::cache::Chunk;
use crate::experiment::layers::LAYER_PARAM;
use crate::experiment::{Encoder, Node};

/// The encoder parameter that reads several layers in one pass, their vectors side by side in
/// the order given.
pub const LAYERS_PARAM: &str = "layers";

/// How one node of a sweep is extracted with its siblings.
#[derive(Debug, Clone)]
pub struct LayerPass {
    /// The node with the encoder reading every member's layer (`layers = […]` in member order),
    /// named as the node being embedded.
    pub node: Node,
    /// The sweep's nodes that share this encoder but for `layer`, in the order of their parts.
    pub members: Vec<Node>,
    /// Which member is the node being embedded.
    pub own: usize,
}

/// The one-pass plan for `node` among the experiment's `nodes`, when `node` was expanded from a
/// sweep, at least one other node of that sweep reads the same encoder with the same parameters
/// but `layer`, on the same data and device, and the encoder takes `layers`
/// (`encoder_reads_layers`). `None` otherwise: the node is extracted alone.
pub fn plan(node: &Node, nodes: &[Node], encoder_reads_layers: bool) -> Option<LayerPass> {
    let of = node.layer_of.as_ref()?;
    let Encoder::Plugin(call) = &node.encoder else { return None };
    if !encoder_reads_layers {
        return None;
    }
    let rest = without_layer(call);
    let members: Vec<Node> = nodes
        .iter()
        .filter(|n| {
            n.layer_of.as_ref().is_some_and(|l| l.node == of.node)
                && n.data == node.data
                && n.device == node.device
                && n.isolate == node.isolate
                && n.skip_failed_items == node.skip_failed_items
                && matches!(&n.encoder, Encoder::Plugin(c)
                    if c.plugin == call.plugin && c.function == call.function && without_layer(c) == rest)
        })
        .cloned()
        .collect();
    let own = members.iter().position(|m| m.name == node.name)?;
    if members.len() < 2 {
        return None;
    }
    let layers: Vec<toml::Value> = members
        .iter()
        .filter_map(|m| m.layer_of.as_ref().map(|l| toml::Value::Integer(l.layer as i64)))
        .collect();
    let mut combined = call.clone();
    combined.params = rest;
    combined.params.insert(LAYERS_PARAM.to_owned(), toml::Value::Array(layers));
    let node = Node { encoder: Encoder::Plugin(combined), layer_of: None, ..node.clone() };
    Some(LayerPass { node, members, own })
}

fn without_layer(call: &crate::experiment::Call) -> toml::Table {
    let mut params = call.params.clone();
    params.remove(LAYER_PARAM);
    params
}

/// A chunk of `parts` layers side by side, split into one chunk per layer, in order. A skipped
/// item (a NaN row) is NaN in every part.
pub fn split(chunk: &Chunk, parts: usize) -> Vec<Chunk> {
    let parts = parts.max(1);
    let dim = chunk.dim / parts;
    (0..parts)
        .map(|p| {
            let mut data = Vec::with_capacity(chunk.rows * dim);
            for row in chunk.data.chunks(chunk.dim.max(1)) {
                data.extend_from_slice(&row[p * dim..(p + 1) * dim]);
            }
            Chunk::pooled(chunk.rows, dim, data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Call, LayerOf};

    fn swept(name: &str, layer: usize, extra: &[(&str, i64)]) -> Node {
        let mut params = toml::Table::new();
        params.insert(LAYER_PARAM.into(), toml::Value::Integer(layer as i64));
        for (k, v) in extra {
            params.insert((*k).into(), toml::Value::Integer(*v));
        }
        Node {
            name: format!("{name}@{layer}"),
            data: "words".into(),
            encoder: Encoder::Plugin(Call::new("text", "minilm", params)),
            skip_failed_items: false,
            isolate: false,
            call_timeout_s: None,
            worker_memory_mib: None,
            device: Default::default(),
            layer_of: Some(LayerOf { node: name.into(), layer }),
            layers: None,
            spans: Default::default(),
        }
    }

    #[test]
    fn a_sweep_is_read_in_one_pass_by_its_members_in_order() {
        let nodes = vec![swept("m", 0, &[]), swept("m", 3, &[]), swept("m", 6, &[]), swept("other", 3, &[])];
        let pass = plan(&nodes[1], &nodes, true).expect("a pass");
        assert_eq!(pass.own, 1);
        assert_eq!(pass.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["m@0", "m@3", "m@6"]);
        let Encoder::Plugin(call) = &pass.node.encoder else { panic!("a plugin encoder") };
        assert_eq!(call.params.get(LAYER_PARAM), None);
        assert_eq!(call.params[LAYERS_PARAM].to_string(), "[0, 3, 6]");
        assert_eq!(pass.node.name, "m@3");
        assert!(pass.node.layer_of.is_none());
    }

    #[test]
    fn a_node_alone_another_encoder_or_no_layers_parameter_is_extracted_alone() {
        let nodes = vec![swept("m", 0, &[]), swept("m", 3, &[("batch-size", 8)])];
        assert!(plan(&nodes[0], &nodes, true).is_none(), "members differ in a parameter");
        let nodes = vec![swept("m", 0, &[]), swept("m", 3, &[])];
        assert!(plan(&nodes[0], &nodes, false).is_none(), "the encoder has no `layers`");
        assert!(plan(&nodes[0], &nodes[..1], true).is_none(), "a sweep of one");
        let mut plain = nodes[0].clone();
        plain.layer_of = None;
        assert!(plan(&plain, &nodes, true).is_none(), "not from a sweep");
    }

    #[test]
    fn a_chunk_splits_into_its_layers_and_a_skipped_row_stays_skipped() {
        let nan = f32::NAN;
        let chunk = Chunk::pooled(2, 4, vec![1.0, 2.0, 3.0, 4.0, nan, nan, nan, nan]);
        let parts = split(&chunk, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].data[..2], [1.0, 2.0]);
        assert_eq!(parts[1].data[..2], [3.0, 4.0]);
        assert!(parts.iter().all(|p| p.dim == 2 && p.rows == 2 && p.data[2..].iter().all(|x| x.is_nan())));
    }
}
