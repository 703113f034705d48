//! Basic Pitch, a small polyphonic note-transcription network (`nmp.onnx` from the `basic-pitch`
//! 0.4.0 package, Apache-2.0) run with ONNX Runtime: the `basic-pitch` encoder and the
//! `transcribe` render.
//!
//! The model reads 2-second windows of mono audio at 22 050 Hz and writes, for each of 172
//! frames (about 86 per second), three posteriorgrams: *note* activations of the 88 piano keys,
//! *onset* activations of the same keys, and a pitch *contour* at a third of a semitone (264
//! bins). The parts:
//!
//! - [`windows`]: cutting audio into the model's overlapping windows and stitching the outputs,
//!   with the exact time of every frame;
//! - [`model`]: the declared assets and batched inference ([`BasicPitch::posteriorgrams`], a
//!   public API for the frame-level outputs);
//! - [`posteriorgram`]: the frame-level result ([`Posteriorgrams`]);
//! - [`embedding`]: the `basic-pitch` encoder, posteriorgrams pooled over time;
//! - [`notes`] and [`transcribe`]: note creation as the package does it, and the `transcribe`
//!   render (audio → score);
//! - [`decode`]: the same note creation on frames (`basic-pitch-notes`: a sequence → score).
//!
//! Both functions need the assets [`model::ASSETS`] (ONNX Runtime and the model), which the host
//! fetches and verifies before opening them.

pub mod decode;
pub mod embedding;
pub mod model;
pub mod notes;
pub mod posteriorgram;
pub mod transcribe;
pub mod windows;

pub use embedding::{BasicPitchEncoder, BasicPitchParams, Pool};
pub use model::{BasicPitch, NMP};
pub use notes::{note_events, NoteCreation, NoteEvent};
pub use posteriorgram::Posteriorgrams;
pub use transcribe::{Transcribe, TranscribeParams};
