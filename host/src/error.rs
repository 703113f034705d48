//! The host's error type: every failure the `commute` command can report.

use commute_sdk::{CallError, LoadError};
use std::path::PathBuf;

/// An error of the host library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No loaded plugin has that name.
    #[error("no plugin named `{name}`; loaded: {loaded}. Searched: {searched}")]
    UnknownPlugin {
        /// The name asked for.
        name: String,
        /// Names of the loaded plugins, comma-separated (or "none").
        loaded: String,
        /// The folders searched, in order.
        searched: String,
    },
    /// A plugin library failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A call into a plugin failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A declared asset could not be fetched or verified.
    #[error(transparent)]
    Asset(#[from] commute_sdk::asset::AssetError),
    /// Two plugins declare the same asset name with different content.
    #[error("asset `{name}` is declared differently by {first} and {second}; asset names must be unique")]
    AssetConflict {
        /// The asset name.
        name: String,
        /// Who declared it first (`plugin/function`).
        first: String,
        /// Who declared it differently.
        second: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file's content is not what its extension says.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
}

impl HostError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HostError {
        HostError::Io { path: path.into(), source }
    }

    /// A format error on `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> HostError {
        HostError::Format { path: path.into(), message: message.into() }
    }
}
