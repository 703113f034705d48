//! What the host tells a function when it opens it: thread budget, device, cache folder.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The host's context for one opened function.
///
/// Sent as JSON; unknown fields from a newer host are ignored, missing ones take defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Context {
    /// Threads this function may use (the host's budget; never spawn more).
    pub threads: usize,
    /// Device to run on: `"cpu"` or `"cuda:N"`.
    pub device: String,
    /// A folder this plugin may use for its own cached files.
    pub cache_dir: Option<PathBuf>,
}

impl Default for Context {
    fn default() -> Self {
        Context { threads: 1, device: "cpu".to_owned(), cache_dir: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_from_a_newer_host_are_ignored() {
        let ctx: Context = serde_json::from_str(r#"{"threads": 4, "future-field": true}"#).unwrap();
        assert_eq!(ctx, Context { threads: 4, ..Context::default() });
    }
}
