//! Testing plugins in-process: a harness that calls through the real ABI, the conformance suite
//! every plugin runs, and other plugins loaded from their libraries.

mod conformance;
mod harness;
mod sibling;

pub use conformance::Conformance;
pub use harness::Harness;
pub use sibling::sibling_plugin;
