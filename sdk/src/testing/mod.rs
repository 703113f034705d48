//! Testing plugins in-process: a harness that calls through the real ABI, and the conformance
//! suite every plugin runs.

mod conformance;
mod harness;

pub use conformance::Conformance;
pub use harness::Harness;
