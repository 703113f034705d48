//! A plugin's self-description: its functions, their kinds, signatures and parameters.

use crate::asset::AssetSpec;
use crate::function::FunctionKind;
use crate::value::ValueKind;
use serde::{Deserialize, Serialize};

/// What a plugin declares about itself. Sent as JSON, so fields can be added without breaking
/// plugins or hosts of other versions (unknown fields are ignored, missing ones default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    /// Unique plugin name, e.g. `music`.
    pub name: String,
    /// The plugin crate's version.
    pub version: String,
    /// The modality it serves, e.g. `music`, `text`.
    pub modality: String,
    /// One line about the plugin.
    #[serde(default)]
    pub doc: String,
    /// The `commute-sdk` version it was built with.
    #[serde(default)]
    pub sdk_version: String,
    /// Its functions, in declaration order.
    pub functions: Vec<FunctionSpec>,
}

impl Manifest {
    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// One function's signature and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FunctionSpec {
    /// Name, unique within the plugin, kebab-case.
    pub name: String,
    /// Encoder, operator, render or source.
    pub kind: FunctionKind,
    /// Input kind (`None` for sources).
    pub input: Option<ValueKind>,
    /// Output kind (`tensor` for encoders).
    pub output: ValueKind,
    /// One line about the function.
    #[serde(default)]
    pub doc: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    /// Files it needs from registry packages; the host provides them before opening it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<AssetSpec>,
    /// Whether it can run on a CUDA device (`device = "cuda:N"`); see
    /// [`Function::CUDA`](crate::Function::CUDA). Absent (false) in older manifests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cuda: bool,
    /// The version of what it computes ([`Function::VERSION`](crate::Function::VERSION)); absent
    /// in manifests of plugins built before functions had versions (the host then keys their
    /// results by the library's bytes, as it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

impl FunctionSpec {
    /// `score → audio`, `() → score`.
    pub fn signature(&self) -> String {
        match self.input {
            Some(input) => format!("{input} → {}", self.output),
            None => format!("() → {}", self.output),
        }
    }
}

/// One parameter, from the parameter struct's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ParamSpec {
    /// Key as written in TOML.
    pub name: String,
    /// Type as shown to users: `integer`, `float`, `string`, `boolean`, `array of float`, `one of a | b`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it must be given.
    pub required: bool,
    /// The default, when it has one.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// The field's doc comment.
    #[serde(default)]
    pub doc: String,
    /// The values a number may take, when the field declares them.
    #[serde(default, skip_serializing_if = "Bounds::is_none")]
    pub bounds: Bounds,
    /// Whether the value names a file (`#[schemars(extend("format" = "path"))]` on a string
    /// field): the host resolves a relative path against the experiment's folder, and keys cached
    /// results by the file's content rather than its name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub file: bool,
    /// Whether the value names a folder (`#[schemars(extend("format" = "folder"))]` on a string
    /// field, as [`crate::FolderParams`]'s `dir`): the host resolves a relative path against the
    /// experiment's folder. Absent from the manifests of plugins built before it: read as false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folder: bool,
}

/// The range a numeric parameter declares in its schema: `#[schemars(range(min = 1, max = 512))]`
/// (inclusive), `#[schemars(extend("exclusiveMinimum" = 0))]` (strict); unsigned integers get a
/// minimum of 0 from their type. The SDK refuses values outside it when a function opens, and
/// `commute check` refuses them before anything runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Bounds {
    /// The least value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// The greatest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Values must be greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<f64>,
    /// Values must be less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<f64>,
}

impl Bounds {
    /// Whether no bound is declared.
    pub fn is_none(&self) -> bool {
        *self == Bounds::default()
    }

    /// Whether `x` lies within the bounds.
    pub fn contains(&self, x: f64) -> bool {
        self.minimum.is_none_or(|m| x >= m)
            && self.maximum.is_none_or(|m| x <= m)
            && self.exclusive_minimum.is_none_or(|m| x > m)
            && self.exclusive_maximum.is_none_or(|m| x < m)
    }
}

impl std::fmt::Display for Bounds {
    /// `in [1, 512]`, `in (0, 4]`, `≥ 0`, `> 0`, `≤ 1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let low = self.exclusive_minimum.map(|m| ('(', m)).or(self.minimum.map(|m| ('[', m)));
        let high = self.exclusive_maximum.map(|m| (')', m)).or(self.maximum.map(|m| (']', m)));
        match (low, high) {
            (Some((a, lo)), Some((b, hi))) => write!(f, "in {a}{lo}, {hi}{b}"),
            (Some(('(', lo)), None) => write!(f, "> {lo}"),
            (Some((_, lo)), None) => write!(f, "≥ {lo}"),
            (None, Some((')', hi))) => write!(f, "< {hi}"),
            (None, Some((_, hi))) => write!(f, "≤ {hi}"),
            (None, None) => f.write_str("any value"),
        }
    }
}
