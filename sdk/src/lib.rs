//! The one crate a commute modality plugin depends on: a stable ABI and a safe authoring API.
//!
//! A plugin is a dynamic library exposing *frozen functions* — encoders, operators, renderers and
//! sources — that the `commute` host loads, describes and calls on batches. Authors write ordinary
//! Rust: a documented parameter struct and one small trait impl per function, then one
//! [`export_plugin!`] line. No `unsafe`, no `extern "C"`, no ABI types.
//!
//! This is a complete plugin (it is compiled and run as a test):
//!
//! ```
//! use commute_sdk::prelude::*;
//!
//! /// Parameters of `shout`.
//! #[params]
//! struct ShoutParams {
//!     /// How many exclamation marks to add.
//!     #[serde(default = "one")]
//!     marks: usize,
//! }
//! fn one() -> usize { 1 }
//!
//! /// An operator: text → louder text.
//! struct Shout(ShoutParams);
//!
//! impl Function for Shout {
//!     const DOC: &'static str = "Upper-cases text and adds exclamation marks.";
//!     type Params = ShoutParams;
//!     fn open(params: ShoutParams, _ctx: &Context) -> Result<Self> {
//!         ensure!(params.marks <= 10, "at most 10 marks, got {}", params.marks);
//!         Ok(Shout(params))
//!     }
//! }
//!
//! impl Operator for Shout {
//!     type Input<'a> = &'a str;
//!     type Output = String;
//!     fn apply(&mut self, text: &str) -> Result<String> {
//!         Ok(text.to_uppercase() + &"!".repeat(self.0.marks))
//!     }
//! }
//!
//! /// An encoder: text → [length, vowel share].
//! struct Shape;
//!
//! impl Function for Shape {
//!     const DOC: &'static str = "Length and share of vowels of a text.";
//!     type Params = NoParams;
//!     fn open(_: NoParams, _ctx: &Context) -> Result<Self> { Ok(Shape) }
//! }
//!
//! impl Encoder for Shape {
//!     type Input<'a> = &'a str;
//!     fn dim(&self) -> usize { 2 }
//!     fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
//!         let n = text.chars().count().max(1) as f32;
//!         let vowels = text.chars().filter(|c| "aeiouAEIOU".contains(*c)).count() as f32;
//!         Ok(vec![n, vowels / n])
//!     }
//! }
//!
//! commute_sdk::export_plugin! {
//!     name: "shouty",
//!     modality: "text",
//!     doc: "A minimal text plugin.",
//!     functions: {
//!         operator "shout" => Shout,
//!         encoder "shape" => Shape,
//!     },
//! }
//!
//! // The in-process harness calls it through the same ABI the host uses.
//! let plugin = commute_sdk::testing::Harness::new(commute_plugin());
//! let out = plugin.call("shout", "marks = 2", &[Value::text("hi")]).unwrap();
//! assert_eq!(out, vec![Value::text("HI!!")]);
//! ```
//!
//! A plugin crate is `crate-type = ["cdylib", "rlib"]`: the host loads the cdylib, tests use the
//! rlib through [`testing::Harness`] and run [`testing::Conformance`].
//!
//! Rules the host relies on: build with `panic = "unwind"` (the default; a plugin built with
//! `"abort"` is refused), log with `tracing` (events reach the host's log), and use at most
//! [`Context::threads`] threads.

#![warn(missing_docs)]

// Lets `#[params]`, whose expansion names `::commute_sdk`, be used inside this crate too.
extern crate self as commute_sdk;

pub mod abi;
pub mod asset;
pub mod atomic;
mod context;
mod error;
pub mod folder;
mod function;
pub mod layers;
mod log_forward;
mod manifest;
#[cfg(feature = "midi")]
pub mod midi;
#[cfg(feature = "npy")]
pub mod npy;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "onnx")]
pub mod onnx_graph;
mod panic_guard;
mod params;
#[cfg(feature = "resample")]
pub mod resample;
pub mod testing;
mod value;
#[cfg(feature = "wav")]
pub mod wav;

pub use asset::AssetSpec;
pub use context::{Context, DeviceError};
pub use error::{CallError, LoadError};
pub use function::{Encoder, FromValue, Function, FunctionKind, IntoValue, Operator, Params, Render, Source};
pub use manifest::{Bounds, FunctionSpec, Manifest, ParamSpec};
pub use params::{describe as describe_params, out_of_bounds, NoParams};
pub use value::{
    Audio, AudioRef, Image, ImageRef, NonFinite, Note, Score, ScoreRef, Sequence, SequenceRef, Tensor,
    TensorRef, Value, ValueKind, ValueRef,
};

/// Makes a struct a function's parameters: derives `Deserialize` and `JsonSchema` (through this
/// crate's re-exports), rejects unknown keys and uses kebab-case keys. Field doc comments are the
/// docs `commute describe` shows; `#[serde(default = "…")]` gives a default.
pub use commute_sdk_macros::params;

/// Re-exported so plugin authors need no direct dependency: errors are `anyhow` errors.
pub use anyhow;
/// Re-exported for `#[derive(JsonSchema)]` on parameter structs.
pub use schemars;
/// Re-exported for `#[derive(Deserialize)]` on parameter structs.
pub use serde;
/// Re-exported: log with `tracing` and the host shows it.
pub use tracing;

/// The result type of plugin functions: any error converts with `?`.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// Everything a plugin author needs, in one import.
pub mod prelude {
    pub use crate::{
        export_plugin, params, tracing, AssetSpec, Audio, AudioRef, Context, Encoder, Function, Image,
        ImageRef, NoParams, Note, Operator, Render, Result, Score, Sequence, SequenceRef, Source, Tensor,
        TensorRef, Value, ValueRef,
    };
    pub use anyhow::{anyhow, bail, ensure, Context as _};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// The crate version of this SDK.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub mod __private {
    pub use crate::abi::export::{lib_header, root_module, FunctionEntry, PluginDef, PluginDefinition};
    pub use abi_stable::library::LibHeader;
}

/// Exports a plugin: its name, modality, a one-line doc and its functions.
///
/// ```text
/// commute_sdk::export_plugin! {
///     name: "music",
///     modality: "music",
///     doc: "Scores: generators, MIDI, operators and a synthesizer.",
///     functions: {
///         source "random-scores" => RandomScores,
///         encoder "piano-roll" => PianoRoll,
///         operator "transpose" => Transpose,
///         render "synth" => Synth,
///     },
/// }
/// ```
///
/// It also defines `pub fn commute_plugin()`, the root module for in-process tests.
/// Use it once per crate, at the crate root.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:literal,
        modality: $modality:literal,
        doc: $doc:literal,
        functions: { $( $kind:ident $fname:literal => $ty:ty ),* $(,)? } $(,)?
    ) => {
        #[doc(hidden)]
        pub struct __CommutePlugin;

        impl $crate::__private::PluginDefinition for __CommutePlugin {
            fn definition() -> $crate::__private::PluginDef {
                $crate::__private::PluginDef {
                    name: $name,
                    version: ::core::env!("CARGO_PKG_VERSION"),
                    modality: $modality,
                    doc: $doc,
                    functions: ::std::vec![
                        $( $crate::__private::FunctionEntry::$kind::<$ty>($fname) ),*
                    ],
                }
            }
        }

        /// This plugin's root module, for in-process use (`commute_sdk::testing::Harness`).
        pub fn commute_plugin() -> $crate::abi::PluginModuleRef {
            $crate::__private::root_module::<__CommutePlugin>()
        }

        #[doc(hidden)]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[no_mangle]
        pub static commute_plugin_declaration: $crate::abi::PluginDeclaration =
            $crate::abi::PluginDeclaration::current(cfg!(panic = "unwind"));

        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __COMMUTE_LIB_HEADER: $crate::__private::LibHeader =
            $crate::__private::lib_header::<__CommutePlugin>();
    };
}
