//! End-to-end tests: the real `commute` binary and real plugin libraries loaded from disk.
//!
//! Fixture plugins live in `tests/fixtures/`; each test copies the libraries it needs into a
//! fresh plugin folder, so the cases never see each other's files.

mod assets;
mod bad_inputs;
mod call;
mod check;
mod colour;
mod csls;
mod device;
mod embeddings;
mod evidence;
mod functional;
mod guide;
mod interrupt;
mod isolation;
mod layers;
mod loading;
mod own_model;
mod resources;
mod run;
mod sequences;
mod shards;
mod stitch;
mod survival;
mod tree;
mod trust;
mod util;
