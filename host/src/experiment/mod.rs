//! Experiments declared in TOML: the file format ([`parse`]), its checks against the plugins
//! ([`validate`]), and the resolved form a run records ([`spec`]).

pub mod diagnostic;
pub mod parse;
pub mod spec;
pub mod validate;

pub use diagnostic::Diagnostic;
pub use spec::{
    Call, DataSet, Edge, Experiment, Metric, Node, OperatorDecl, OperatorItems, OperatorPair, Origin, Split,
};
