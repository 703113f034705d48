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
    /// A plugin function in an isolated worker crashed, hung or could not be started there.
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
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
    /// Writing a file or creating a folder failed (read-only, full disk, permissions).
    #[error("cannot {action} {path}: {}", io_reason(reason))]
    Write {
        /// What was being done: `write cache entry`, `create the run folder`, ….
        action: String,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        reason: std::io::Error,
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

    /// A node's encoder could not be opened on the node's device (`device = "cuda:0"`): the
    /// plugin was built without its `cuda` feature, the device does not exist, its runtime is
    /// missing. That node's edges fail; the others go on.
    #[error("node `{node}`: cannot open its encoder on device `{device}`: {source}")]
    Device {
        /// The node.
        node: String,
        /// Its device, `cuda:N`.
        device: String,
        /// Why the encoder did not open.
        source: Box<HostError>,
    },

    /// A node that failed earlier in the run (its first error was reported with the edge or
    /// analysis that met it): the edges and analyses after it fail without trying it again.
    #[error("node `{node}` failed earlier in this run (the error of {first} says why)")]
    NodeFailed {
        /// The node.
        node: String,
        /// What met the failure first: `edge audio → notes`, `the tree analyses`.
        first: String,
    },

    /// A fit in the tree analyses failed (too few anchors for a space, a decomposition that did
    /// not converge): that analysis is reported as failed, the others go on.
    #[error("{0}")]
    Fit(#[from] crate::align::AlignError),
}

impl HostError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HostError {
        HostError::Io { path: path.into(), source }
    }

    /// A failed write or folder creation: `action` says what was being done (`write cache entry`).
    pub fn write(action: impl Into<String>, path: impl Into<PathBuf>, reason: std::io::Error) -> HostError {
        HostError::Write { action: action.into(), path: path.into(), reason }
    }

    /// Turns an [`HostError::Io`] (as [`crate::value_io::write_atomic`] returns) into a
    /// [`HostError::Write`] that says what was being written; other errors pass unchanged.
    pub fn while_writing(self, action: &str) -> HostError {
        match self {
            HostError::Io { path, source } => HostError::write(action, path, source),
            other => other,
        }
    }

    /// Whether the error belongs to one node's extraction (a plugin failed, crashed or hung; an
    /// item or a data file was bad), so that a run records it against the edges that need that
    /// node and goes on with the others. Other errors (I/O on the run or the cache) stop the run.
    pub fn fails_only_its_node(&self) -> bool {
        if let HostError::Device { source, .. } = self {
            return source.fails_only_its_node();
        }
        matches!(
            self,
            HostError::Call(_)
                | HostError::Worker(_)
                | HostError::Load(_)
                | HostError::Asset(_)
                | HostError::UnknownPlugin { .. }
                | HostError::Format { .. }
                | HostError::Usage(_)
                | HostError::NodeFailed { .. }
        )
    }

    /// A format error on `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> HostError {
        HostError::Format { path: path.into(), message: message.into() }
    }
}

/// An I/O error as a sentence fragment: `no space left on device (os error 28)`,
/// `read-only file system (os error 30)`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}
