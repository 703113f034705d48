//! Experiments declared in TOML: the file format ([`parse`]), its checks against the plugins
//! ([`validate`]), the resolved form a run records ([`spec`]) and where each value was written
//! ([`spans`]).

pub mod diagnostic;
pub mod layers;
pub mod parse;
pub mod spans;
pub mod spec;
pub mod units;
pub mod validate;

pub use diagnostic::Diagnostic;

use crate::registry::Registry;
use std::path::Path;

/// The whole loader on an experiment file's bytes: [`parse::parse_bytes`], layer sweeps expanded
/// ([`layers::expand`]), then [`validate::validate`] against `registry`, with `files` folders relative to `base_dir`.
/// `Err` holds every problem; render it with [`diagnostic::render`] over
/// `String::from_utf8_lossy(bytes)`. Never panics, whatever the bytes.
pub fn load(bytes: &[u8], registry: &Registry, base_dir: &Path) -> Result<Experiment, Vec<Diagnostic>> {
    let mut exp = parse::parse_bytes(bytes)?;
    let diags = layers::expand(&mut exp, registry);
    if !diags.is_empty() {
        return Err(diags);
    }
    let diags = validate::validate(&exp, registry, base_dir);
    if diags.is_empty() {
        Ok(exp)
    } else {
        Err(diags)
    }
}
pub use spec::{
    Call, DataSet, Device, Edge, EdgeMethod, EditSpec, EmbeddingsFile, Encoder, Experiment, FrameSpec,
    GridCell, LayerOf, Layers, MatchBy, Metric, Node, OperatorDecl, OperatorItems, OperatorPair, OperatorRef,
    OrderSpec, Origin, Split, Stitch, StitchOperators, StitchedEncoder, TreeSpec,
};
