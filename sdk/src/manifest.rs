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
}
