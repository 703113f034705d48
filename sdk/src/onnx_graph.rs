//! Choosing which tensors an ONNX model returns: its graph's outputs are rewritten in the
//! protobuf wire format, so that an intermediate tensor (a layer's features) can be read out.
//!
//! Only what that needs is parsed: a model (`ModelProto`) holds its graph in field 7; a graph
//! (`GraphProto`) holds nodes in field 1 (each `NodeProto` names the tensors it reads in field 1
//! and produces in field 2), initializers in field 5 (`TensorProto`, name in field 8), inputs in
//! field 11 and outputs in field 12 (`ValueInfoProto`, name in field 1). Nodes and initializers no
//! output needs are left out; every other field is copied byte for byte. The new outputs carry
//! only a name: ONNX Runtime infers their type and shape from the node that produces them.

use crate::prelude::*;

const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_OUTPUT: u64 = 12;
const NODE_OUTPUT: u64 = 2;
const NODE_INPUT: u64 = 1;
const NODE_ATTRIBUTE: u64 = 5;
const ATTRIBUTE_GRAPH: u64 = 6;
const ATTRIBUTE_GRAPHS: u64 = 11;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_INPUT: u64 = 11;
const TENSOR_NAME: u64 = 8;
const VALUE_INFO_NAME: u64 = 1;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// One field of a protobuf message: its number, wire type and the bytes of its value (for a
/// length-delimited field, without the length).
struct Field<'a> {
    number: u64,
    wire: u64,
    /// The whole field as encoded (key, length and value).
    raw: &'a [u8],
    /// The value (the payload of a length-delimited field).
    value: &'a [u8],
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or_else(|| anyhow!("truncated varint at byte {at}"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    bail!("varint longer than 10 bytes at byte {at}")
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_len_field(number: u64, value: &[u8], out: &mut Vec<u8>) {
    write_varint(number << 3 | LEN, out);
    write_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// The fields of a message, in order.
fn fields(message: &[u8]) -> Result<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let start = at;
        let key = read_varint(message, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        let value_start;
        match wire {
            VARINT => {
                value_start = at;
                read_varint(message, &mut at)?;
            }
            FIXED64 | FIXED32 => {
                value_start = at;
                at += if wire == FIXED64 { 8 } else { 4 };
            }
            LEN => {
                let len = usize::try_from(read_varint(message, &mut at)?)?;
                value_start = at;
                at = at.checked_add(len).ok_or_else(|| anyhow!("field length overflows"))?;
            }
            other => bail!("unsupported protobuf wire type {other} (field {number}) at byte {start}"),
        }
        ensure!(at <= message.len(), "field {number} at byte {start} runs past the end of its message");
        out.push(Field { number, wire, raw: &message[start..at], value: &message[value_start..at] });
    }
    Ok(out)
}

/// The model with its graph's outputs replaced by the named tensors, in that order.
///
/// Each name must be produced by a node of the graph.
pub fn with_outputs(model: &[u8], outputs: &[&str]) -> Result<Vec<u8>> {
    ensure!(!outputs.is_empty(), "a model needs at least one output");
    let mut out = Vec::with_capacity(model.len() + 64);
    let mut graphs = 0;
    for field in fields(model).context("not an ONNX model")? {
        if field.number == MODEL_GRAPH && field.wire == LEN {
            graphs += 1;
            write_len_field(MODEL_GRAPH, &graph_with_outputs(field.value, outputs)?, &mut out);
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    ensure!(graphs == 1, "an ONNX model has one graph, this one has {graphs}");
    Ok(out)
}

/// A node of a graph: the tensors it reads and makes, and whether an attribute holds a subgraph
/// (whose reads of outer tensors its inputs do not list).
struct GraphNode<'a> {
    inputs: Vec<&'a [u8]>,
    outputs: Vec<&'a [u8]>,
    subgraph: bool,
}

fn graph_node<'a>(field: &Field<'a>) -> Result<GraphNode<'a>> {
    let mut node = GraphNode { inputs: Vec::new(), outputs: Vec::new(), subgraph: false };
    for f in fields(field.value).context("unreadable ONNX node")? {
        match (f.number, f.wire) {
            (NODE_INPUT, LEN) => node.inputs.push(f.value),
            (NODE_OUTPUT, LEN) => node.outputs.push(f.value),
            (NODE_ATTRIBUTE, LEN) => {
                let graphs = fields(f.value).context("unreadable ONNX attribute")?;
                node.subgraph |=
                    graphs.iter().any(|a| [ATTRIBUTE_GRAPH, ATTRIBUTE_GRAPHS].contains(&a.number));
            }
            _ => {}
        }
    }
    Ok(node)
}

/// The graph with `outputs` as its outputs and without the nodes (and initializers) that none of
/// them needs: a layer read from inside a network costs the layers up to it, not the whole
/// network. Nothing is left out of a graph with a subgraph (an `If` or `Loop` may read any tensor
/// without naming it).
fn graph_with_outputs(graph: &[u8], outputs: &[&str]) -> Result<Vec<u8>> {
    let all = fields(graph).context("unreadable ONNX graph")?;
    let mut nodes = Vec::new();
    for field in all.iter().filter(|f| f.number == GRAPH_NODE && f.wire == LEN) {
        nodes.push(graph_node(field)?);
    }
    for name in outputs {
        ensure!(
            nodes.iter().any(|n| n.outputs.contains(&name.as_bytes())),
            "no node of the model produces a tensor named `{name}`"
        );
    }
    // Nodes are in topological order (ONNX requires it): walking back from the outputs keeps
    // every node whose product something kept reads.
    let prune = !nodes.iter().any(|n| n.subgraph);
    let mut needed: std::collections::HashSet<&[u8]> = outputs.iter().map(|o| o.as_bytes()).collect();
    // An initializer also listed as a graph input (older models) stays: without it, the input
    // would have to be fed.
    for field in all.iter().filter(|f| f.number == GRAPH_INPUT && f.wire == LEN) {
        let name = fields(field.value).context("unreadable ONNX graph input")?;
        needed.extend(name.iter().filter(|f| f.number == VALUE_INFO_NAME && f.wire == LEN).map(|f| f.value));
    }
    let mut keep = vec![!prune; nodes.len()];
    if prune {
        for (i, node) in nodes.iter().enumerate().rev() {
            if node.outputs.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(node.inputs.iter().copied());
            }
        }
    }
    let mut out = Vec::with_capacity(graph.len() + 64);
    let mut node_index = 0;
    for field in &all {
        match (field.number, field.wire) {
            (GRAPH_OUTPUT, _) => {}
            (GRAPH_NODE, LEN) => {
                if keep[node_index] {
                    out.extend_from_slice(field.raw);
                }
                node_index += 1;
            }
            (GRAPH_INITIALIZER, LEN) if prune => {
                let name = fields(field.value)
                    .context("unreadable ONNX initializer")?
                    .into_iter()
                    .find(|f| f.number == TENSOR_NAME && f.wire == LEN)
                    .map(|f| f.value);
                if name.is_none_or(|n| needed.contains(n)) {
                    out.extend_from_slice(field.raw);
                }
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    for name in outputs {
        let mut info = Vec::with_capacity(name.len() + 2);
        write_len_field(VALUE_INFO_NAME, name.as_bytes(), &mut info);
        write_len_field(GRAPH_OUTPUT, &info, &mut out);
    }
    Ok(out)
}

/// The names of the tensors the nodes of a model's graph produce, in node order: every tensor
/// [`with_outputs`] can make an output.
pub fn produced_names(model: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for field in fields(model)? {
        if field.number != MODEL_GRAPH || field.wire != LEN {
            continue;
        }
        for node in fields(field.value)? {
            if node.number == GRAPH_NODE && node.wire == LEN {
                for f in fields(node.value)? {
                    if f.number == NODE_OUTPUT && f.wire == LEN {
                        names.push(String::from_utf8_lossy(f.value).into_owned());
                    }
                }
            }
        }
    }
    Ok(names)
}

/// The names of a model's graph outputs, in order.
pub fn output_names(model: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for field in fields(model)? {
        if field.number != MODEL_GRAPH || field.wire != LEN {
            continue;
        }
        for g in fields(field.value)? {
            if g.number == GRAPH_OUTPUT && g.wire == LEN {
                for f in fields(g.value)? {
                    if f.number == VALUE_INFO_NAME && f.wire == LEN {
                        names.push(String::from_utf8_lossy(f.value).into_owned());
                    }
                }
            }
        }
    }
    Ok(names)
}

/// A minimal ONNX model, `output = Identity(input)` on a float32 tensor of `shape` (a dimension
/// of `-1` is dynamic), written field by field: for tests of functions that run any model, where
/// the output is the input exactly as the function prepared it.
pub fn identity_model(input: &str, output: &str, shape: &[i64]) -> Vec<u8> {
    one_node_model("Identity", &[(input, FLOAT, shape)], (output, FLOAT, shape), &[])
}

/// ONNX's element type of float32 tensors.
pub const FLOAT: u64 = 1;
/// ONNX's element type of int64 tensors.
pub const INT64: u64 = 7;

/// A minimal ONNX model of one node: `output = op(inputs[0])` with integer attributes
/// `attributes`, the graph declaring every input of `inputs` (name, element type such as
/// [`FLOAT`] or [`INT64`], shape; `-1` is dynamic) — those after the first are declared but not
/// used. For tests: `one_node_model("Cast", &[("ids", INT64, &[-1])], ("out", FLOAT, &[-1]),
/// &[("to", FLOAT as i64)])` hands a function's integer input back as floats.
pub fn one_node_model(
    op: &str,
    inputs: &[(&str, u64, &[i64])],
    output: (&str, u64, &[i64]),
    attributes: &[(&str, i64)],
) -> Vec<u8> {
    let varint_field = |number: u64, value: u64, out: &mut Vec<u8>| {
        write_varint(number << 3 | VARINT, out);
        write_varint(value, out);
    };
    let value_info = |name: &str, elem: u64, shape: &[i64]| {
        let mut dims = Vec::new();
        for &d in shape {
            let mut dim = Vec::new();
            if d >= 0 {
                varint_field(1, d as u64, &mut dim); // dim_value
            } else {
                write_len_field(2, b"dyn", &mut dim); // dim_param
            }
            write_len_field(1, &dim, &mut dims);
        }
        let mut tensor = Vec::new();
        varint_field(1, elem, &mut tensor); // elem_type
        write_len_field(2, &dims, &mut tensor);
        let mut ty = Vec::new();
        write_len_field(1, &tensor, &mut ty);
        let mut info = Vec::new();
        write_len_field(VALUE_INFO_NAME, name.as_bytes(), &mut info);
        write_len_field(2, &ty, &mut info);
        info
    };
    let mut node = Vec::new();
    if let Some((first, ..)) = inputs.first() {
        write_len_field(1, first.as_bytes(), &mut node);
    }
    write_len_field(NODE_OUTPUT, output.0.as_bytes(), &mut node);
    write_len_field(4, op.as_bytes(), &mut node);
    for (name, value) in attributes {
        let mut attribute = Vec::new();
        write_len_field(1, name.as_bytes(), &mut attribute); // name
        varint_field(3, *value as u64, &mut attribute); // i
        varint_field(20, 2, &mut attribute); // type INT
        write_len_field(5, &attribute, &mut node);
    }
    let mut graph = Vec::new();
    write_len_field(GRAPH_NODE, &node, &mut graph);
    write_len_field(2, op.to_lowercase().as_bytes(), &mut graph);
    for (name, elem, shape) in inputs {
        write_len_field(11, &value_info(name, *elem, shape), &mut graph);
    }
    write_len_field(GRAPH_OUTPUT, &value_info(output.0, output.1, output.2), &mut graph);
    let mut opset = Vec::new();
    varint_field(2, 17, &mut opset);
    let mut model = Vec::new();
    varint_field(1, 8, &mut model); // ir_version
    write_len_field(8, &opset, &mut model);
    write_len_field(MODEL_GRAPH, &graph, &mut model);
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(parts: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, value) in parts {
            write_len_field(*number, value, &mut out);
        }
        out
    }

    /// x → [Relu] → h → [Sigmoid] → y, with graph output y, an ir_version and a doc string.
    fn tiny_model() -> Vec<u8> {
        let node = |input: &str, output: &str, op: &str| {
            message(&[(1, input.as_bytes()), (NODE_OUTPUT, output.as_bytes()), (4, op.as_bytes())])
        };
        let graph = message(&[
            (GRAPH_NODE, &node("x", "h", "Relu")),
            (GRAPH_NODE, &node("h", "y", "Sigmoid")),
            (2, b"tiny"),
            (GRAPH_OUTPUT, &message(&[(VALUE_INFO_NAME, b"y"), (2, b"type")])),
        ]);
        let mut model = vec![0x08, 0x08]; // ir_version = 8 (field 1, varint)
        write_len_field(MODEL_GRAPH, &graph, &mut model);
        write_len_field(6, b"a doc string", &mut model);
        model
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            write_varint(v, &mut bytes);
            let mut at = 0;
            assert_eq!(read_varint(&bytes, &mut at).unwrap(), v);
            assert_eq!(at, bytes.len());
        }
        assert!(read_varint(&[0x80, 0x80], &mut 0).is_err());
    }

    #[test]
    fn outputs_are_replaced_and_everything_else_is_kept() {
        let model = tiny_model();
        assert_eq!(output_names(&model).unwrap(), ["y"]);
        let edited = with_outputs(&model, &["h", "y"]).unwrap();
        assert_eq!(output_names(&edited).unwrap(), ["h", "y"]);
        assert!(edited.starts_with(&[0x08, 0x08]));
        assert!(edited.ends_with(b"a doc string"));
        let graph = fields(&edited).unwrap().into_iter().find(|f| f.number == MODEL_GRAPH).unwrap().value;
        let kept: Vec<u64> = fields(graph).unwrap().iter().map(|f| f.number).collect();
        assert_eq!(kept, [GRAPH_NODE, GRAPH_NODE, 2, GRAPH_OUTPUT, GRAPH_OUTPUT]);
        // Editing twice gives the same bytes as editing once.
        assert_eq!(with_outputs(&edited, &["h", "y"]).unwrap(), edited);
        assert_eq!(produced_names(&model).unwrap(), ["h", "y"], "every node's output, in order");
    }

    /// The graph's fields of an edited model, as (field number, value) pairs.
    fn graph_fields(model: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let graph = fields(model).unwrap().into_iter().find(|f| f.number == MODEL_GRAPH).unwrap().value;
        fields(graph).unwrap().into_iter().map(|f| (f.number, f.value.to_vec())).collect()
    }

    #[test]
    fn what_no_output_needs_is_left_out_unless_a_subgraph_may_read_it() {
        // x → [Mul w1] → h → [Mul w2] → y; w1 and w2 are initializers, w0 an initializer that is
        // also a graph input (older models list them so).
        let node = |inputs: &[&str], output: &str, attribute: Option<&[u8]>| {
            let mut parts: Vec<(u64, &[u8])> = inputs.iter().map(|i| (NODE_INPUT, i.as_bytes())).collect();
            parts.push((NODE_OUTPUT, output.as_bytes()));
            if let Some(a) = attribute {
                parts.push((NODE_ATTRIBUTE, a));
            }
            message(&parts)
        };
        let tensor = |name: &str| message(&[(TENSOR_NAME, name.as_bytes())]);
        let model = |attribute: Option<&[u8]>| {
            let graph = message(&[
                (GRAPH_NODE, &node(&["x", "w1"], "h", None)),
                (GRAPH_NODE, &node(&["h", "w2"], "y", attribute)),
                (GRAPH_INITIALIZER, &tensor("w0")),
                (GRAPH_INITIALIZER, &tensor("w1")),
                (GRAPH_INITIALIZER, &tensor("w2")),
                (GRAPH_INPUT, &message(&[(VALUE_INFO_NAME, b"x")])),
                (GRAPH_INPUT, &message(&[(VALUE_INFO_NAME, b"w0")])),
                (GRAPH_OUTPUT, &message(&[(VALUE_INFO_NAME, b"y")])),
            ]);
            let mut model = Vec::new();
            write_len_field(MODEL_GRAPH, &graph, &mut model);
            model
        };
        let names = |fields: &[(u64, Vec<u8>)], number: u64| -> usize {
            fields.iter().filter(|(n, _)| *n == number).count()
        };
        // Reading h: the second node and its weight w2 go; w0 stays (a graph input).
        let cut = graph_fields(&with_outputs(&model(None), &["h"]).unwrap());
        assert_eq!(names(&cut, GRAPH_NODE), 1);
        let initializers: Vec<&Vec<u8>> =
            cut.iter().filter(|(n, _)| *n == GRAPH_INITIALIZER).map(|(_, v)| v).collect();
        assert_eq!(initializers, [&tensor("w0"), &tensor("w1")]);
        // Reading y keeps everything.
        let whole = graph_fields(&with_outputs(&model(None), &["y"]).unwrap());
        assert_eq!((names(&whole, GRAPH_NODE), names(&whole, GRAPH_INITIALIZER)), (2, 3));
        // A node with a subgraph attribute (`g`): nothing is left out.
        let subgraph = message(&[(1, b"then_branch"), (ATTRIBUTE_GRAPH, b"")]);
        let kept = graph_fields(&with_outputs(&model(Some(&subgraph)), &["h"]).unwrap());
        assert_eq!((names(&kept, GRAPH_NODE), names(&kept, GRAPH_INITIALIZER)), (2, 3));
    }

    #[test]
    fn unknown_tensors_and_broken_models_are_errors() {
        let err = with_outputs(&tiny_model(), &["nope"]).unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
        assert!(with_outputs(&tiny_model(), &[]).is_err());
        let model = tiny_model();
        let err = with_outputs(&model[..model.len() - 3], &["h"]).unwrap_err();
        assert!(format!("{err:#}").contains("past the end"), "{err:#}");
        assert!(with_outputs(&[0x08, 0x08], &["h"]).unwrap_err().to_string().contains("has 0"));
    }
}
