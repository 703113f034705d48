//! Choosing which tensors an ONNX model returns: its graph's outputs are rewritten in the
//! protobuf wire format, so that an intermediate tensor (a layer's features) can be read out.
//!
//! Only what that needs is parsed: a model (`ModelProto`) holds its graph in field 7; a graph
//! (`GraphProto`) holds nodes in field 1 (each `NodeProto` names the tensors it produces in field
//! 2) and its outputs in field 12 (`ValueInfoProto`, name in field 1). Every other field is copied
//! byte for byte. The new outputs carry only a name: ONNX Runtime infers their type and shape from
//! the node that produces them.

use crate::prelude::*;

const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_OUTPUT: u64 = 12;
const NODE_OUTPUT: u64 = 2;
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

fn graph_with_outputs(graph: &[u8], outputs: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(graph.len() + 64);
    let mut produced: Vec<&[u8]> = Vec::new();
    for field in fields(graph).context("unreadable ONNX graph")? {
        match (field.number, field.wire) {
            (GRAPH_OUTPUT, _) => {}
            (GRAPH_NODE, LEN) => {
                for f in fields(field.value).context("unreadable ONNX node")? {
                    if f.number == NODE_OUTPUT && f.wire == LEN {
                        produced.push(f.value);
                    }
                }
                out.extend_from_slice(field.raw);
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    for name in outputs {
        ensure!(produced.contains(&name.as_bytes()), "no node of the model produces a tensor named `{name}`");
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
