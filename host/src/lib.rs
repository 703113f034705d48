//! The commute host: finds and loads modality plugins, describes and calls their frozen
//! functions, and (as the project grows) runs alignment experiments declared in TOML.
//!
//! The `commute` binary is a thin layer over this library ([`cli`]).

pub mod align;
pub mod assets;
pub mod cache;
pub mod cli;
pub mod csls_large;
pub mod discover;
pub mod edge_operators;
pub mod embeddings_file;
pub mod error;
pub mod experiment;
pub mod extract;
pub mod file_params;
pub mod frames;
pub mod layer_pass;
pub mod lenient_json;
pub mod logging;
pub mod metrics;
pub mod metrics_table;
pub mod pool_preprocess;
pub mod registry;
pub mod report;
pub mod run;
pub mod run_dir;
pub mod runner;
pub mod shard;
pub mod skips;
pub mod stitch;
pub mod stitched_node;
pub mod takeoff;
pub mod token_map;
pub mod tree;
pub mod value_io;
pub mod worker;

pub use error::HostError;
pub use registry::{LoadedPlugin, Registry};
