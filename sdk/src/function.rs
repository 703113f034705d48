//! The authoring API: one small trait per function kind, implemented by plugin authors.
//!
//! # Design
//!
//! A plugin is a set of named *frozen functions*. Each is a Rust type that is built from typed,
//! documented parameters ([`Function::open`]) and then called on whole batches. Four kinds exist,
//! matching the roles they play in an experiment:
//!
//! | kind | trait | signature | role |
//! |---|---|---|---|
//! | encoder | [`Encoder`] | `K → f32 vector` (or frames) | defines an embedding space |
//! | operator | [`Operator`] | `K → K` | the modality's own functions (transpose, gain…) |
//! | render | [`Render`] | `K → K'` | makes paired data for nested modalities |
//! | source | [`Source`] | `() → K…` | reads or generates the items of a data set |
//!
//! Inputs arrive as borrowed views ([`FromValue`]) of the host's buffers. Per-item methods are the
//! simple path; the `*_batch` methods can be overridden where batching pays (neural models).
//! A per-item `Err` fails that item only; the rest of the batch is kept.

use crate::value::{AudioRef, ImageRef, Score, SequenceRef, TensorRef, Value, ValueKind, ValueRef};
use crate::{AssetSpec, Context, Result};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// Parameters of a function: a struct marked [`#[params]`](crate::params), with a doc comment on
/// each field and `#[serde(default = "…")]` where there is a sensible default.
///
/// Implemented for every `DeserializeOwned + JsonSchema` type; the schema (names, types, defaults,
/// doc comments) is what `commute describe` shows.
pub trait Params: DeserializeOwned + JsonSchema {}
impl<T: DeserializeOwned + JsonSchema> Params for T {}

/// What every function kind shares: a one-line doc and construction from parameters.
pub trait Function: Sized + Send + 'static {
    /// One line describing the function, shown by `commute describe`.
    const DOC: &'static str;
    /// The function's parameters: a `#[params]` struct, or [`NoParams`](crate::NoParams) for none.
    type Params: Params;
    /// Files it needs from registry packages (models, lexicons), each declared once as a `const`
    /// [`AssetSpec`]. The host fetches and verifies them before [`open`](Function::open), which
    /// finds their local paths with [`Context::asset`].
    const ASSETS: &'static [AssetSpec] = &[];
    /// Whether the function has code for CUDA devices: it honours [`Context::device`] =
    /// `cuda:N` (directly, or through `commute_sdk::onnx::session`). The host refuses a CUDA device
    /// for an encoder that does not declare it (it would run on the CPU all the same). Whether
    /// this build of the plugin can use one (its `cuda` feature) is the function's to say when
    /// it opens, with [`Context::device_error`].
    const CUDA: bool = false;
    /// The version of what the function computes. The host's cache keys a function's results by
    /// its plugin and name, this version, its parameters and its declared assets — not by the
    /// library's bytes — so rebuilding a plugin (another function changed, a dependency updated)
    /// keeps every cached result of this one. Bump it when the same inputs and parameters would
    /// now give different outputs (a bug fix, another model, another pooling); its cached results
    /// are then computed again.
    const VERSION: u32 = 1;
    /// Builds a live instance. Errors here are reported as bad parameters, except a missing
    /// asset from [`Context::asset`] (fetched, then `open` runs again) and a
    /// [`Context::device_error`] (a failure on that device).
    fn open(params: Self::Params, ctx: &Context) -> Result<Self>;
}

/// An input type a function can receive: a borrowed view of one [`ValueKind`].
pub trait FromValue<'a>: Sized {
    /// The kind this input accepts (declared in the manifest).
    const KIND: ValueKind;
    /// Takes the view out of a value of the right kind (the SDK checks the kind first).
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String>;
}

/// An output type a function can return.
pub trait IntoValue {
    /// The kind this output produces (declared in the manifest).
    const KIND: ValueKind;
    /// Converts into an owned value.
    fn into_value(self) -> Value;
}

/// Maps an input space to embeddings. Defines a node of an experiment.
pub trait Encoder: Function {
    /// What it encodes, e.g. `&'a str` or [`Score`].
    type Input<'a>: FromValue<'a>;
    /// Embedding dimension; fixed once the instance is open. For a frame-level encoder, the
    /// floats per frame.
    fn dim(&self) -> usize;
    /// Frames per second when this instance keeps the time axis (`pooling = "none"`, say): then
    /// [`encode`](Self::encode) returns one or more frames of `dim()` floats, frame 0 starting
    /// at the item's time 0, and the host receives a [`Sequence`](crate::Sequence). `None` (the
    /// default): one vector per item.
    fn frame_rate(&self) -> Option<f64> {
        None
    }
    /// Encodes one item into `dim()` floats (frames × `dim()` with a [`frame_rate`](Self::frame_rate)).
    fn encode(&mut self, item: Self::Input<'_>) -> Result<Vec<f32>>;
    /// Encodes a batch; override where batching pays. One result per item, in order.
    #[inline]
    fn encode_batch(&mut self, items: Vec<Self::Input<'_>>) -> Vec<Result<Vec<f32>>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.encode(item));
        }
        out
    }
}

/// A modality's own function, `K → K`, with parameters (transpose by k semitones, gain by g dB…).
pub trait Operator: Function {
    /// What it reads.
    type Input<'a>: FromValue<'a>;
    /// What it returns: the same kind as its input.
    type Output: IntoValue;
    /// Applies the operator to one item.
    fn apply(&mut self, item: Self::Input<'_>) -> Result<Self::Output>;
    /// Applies it to a batch; override where batching pays.
    #[inline]
    fn apply_batch(&mut self, items: Vec<Self::Input<'_>>) -> Vec<Result<Self::Output>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.apply(item));
        }
        out
    }
}

/// Turns one kind into another (score → audio, text → image) to make paired data.
pub trait Render: Function {
    /// What it reads.
    type Input<'a>: FromValue<'a>;
    /// What it produces.
    type Output: IntoValue;
    /// Renders one item.
    fn render(&mut self, item: Self::Input<'_>) -> Result<Self::Output>;
    /// Renders a batch; override where batching pays.
    #[inline]
    fn render_batch(&mut self, items: Vec<Self::Input<'_>>) -> Vec<Result<Self::Output>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.render(item));
        }
        out
    }
}

/// Produces the items of a data set (a corpus reader or a seeded generator).
pub trait Source: Function {
    /// What it produces.
    type Output: IntoValue;
    /// All items, in a deterministic order.
    fn items(&mut self) -> Result<Vec<Self::Output>>;
}

/// The four kinds, as named in manifests and TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    /// `K → f32 vector`.
    Encoder,
    /// `K → K`.
    Operator,
    /// `K → K'`.
    Render,
    /// `() → K…`.
    Source,
}

impl FunctionKind {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            FunctionKind::Encoder => "encoder",
            FunctionKind::Operator => "operator",
            FunctionKind::Render => "render",
            FunctionKind::Source => "source",
        }
    }
}

impl std::fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn wrong_kind(expected: ValueKind, got: &ValueRef<'_>) -> String {
    format!("expected a {expected} value, got {}", got.kind())
}

impl<'a> FromValue<'a> for ValueRef<'a> {
    const KIND: ValueKind = ValueKind::Any;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        Ok(value)
    }
}

impl<'a> FromValue<'a> for &'a str {
    const KIND: ValueKind = ValueKind::Text;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Text(t) => Ok(t),
            other => Err(wrong_kind(Self::KIND, &other)),
        }
    }
}

impl<'a> FromValue<'a> for AudioRef<'a> {
    const KIND: ValueKind = ValueKind::Audio;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Audio(a) => Ok(a),
            other => Err(wrong_kind(Self::KIND, &other)),
        }
    }
}

impl<'a> FromValue<'a> for ImageRef<'a> {
    const KIND: ValueKind = ValueKind::Image;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Image(i) => Ok(i),
            other => Err(wrong_kind(Self::KIND, &other)),
        }
    }
}

impl<'a> FromValue<'a> for TensorRef<'a> {
    const KIND: ValueKind = ValueKind::Tensor;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Tensor(t) => Ok(t),
            other => Err(wrong_kind(Self::KIND, &other)),
        }
    }
}

impl<'a> FromValue<'a> for SequenceRef<'a> {
    const KIND: ValueKind = ValueKind::Sequence;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Sequence(s) => Ok(s),
            other => Err(wrong_kind(Self::KIND, &other)),
        }
    }
}

/// Scores are small: they are decoded into an owned [`Score`].
impl<'a> FromValue<'a> for Score {
    const KIND: ValueKind = ValueKind::Score;
    fn from_value(value: ValueRef<'a>) -> std::result::Result<Self, String> {
        match value {
            ValueRef::Score(s) => s.to_owned(),
            other => Err(wrong_kind(ValueKind::Score, &other)),
        }
    }
}

impl IntoValue for Value {
    const KIND: ValueKind = ValueKind::Any;
    fn into_value(self) -> Value {
        self
    }
}

impl IntoValue for String {
    const KIND: ValueKind = ValueKind::Text;
    fn into_value(self) -> Value {
        Value::Text { text: self }
    }
}

macro_rules! into_value_variant {
    ($ty:ty, $kind:ident) => {
        impl IntoValue for $ty {
            const KIND: ValueKind = ValueKind::$kind;
            fn into_value(self) -> Value {
                Value::$kind(self)
            }
        }
    };
}
into_value_variant!(crate::value::Audio, Audio);
into_value_variant!(crate::value::Image, Image);
into_value_variant!(Score, Score);
into_value_variant!(crate::value::Tensor, Tensor);
into_value_variant!(crate::value::Sequence, Sequence);
