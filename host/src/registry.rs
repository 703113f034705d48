//! The loaded plugins: each candidate library loaded on its own, failures kept beside successes
//! so that one bad file never hides the others. A library that other users could have replaced
//! or placed is refused (see [`crate::discover`]'s Trust section) unless the search path allows
//! it; each library is hashed before it is loaded, and the hash goes into the run manifest.

use crate::discover::{SearchPath, Untrusted};
use crate::HostError;
use commute_sdk::abi::client::Plugin;
use commute_sdk::LoadError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A plugin loaded from a library file.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The live plugin.
    pub plugin: Plugin,
    /// The library it came from.
    pub path: PathBuf,
    /// sha256 of the library file, hex (hashed just before loading).
    pub sha256: String,
    /// Why the trust checks failed, when it was loaded anyway (`--allow-insecure-plugin-dirs`).
    pub insecure: Option<String>,
}

/// Why a candidate library is not in the registry.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// It failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Another user could have replaced or placed it (see [`crate::discover`]).
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    /// The library could not be read to compute its sha256.
    #[error("{path}: cannot read the library to hash it: {reason}")]
    Unreadable {
        /// The library.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A plugin of the same name was found first.
    #[error("{skipped}: a second plugin named `{name}`; the one at {kept} takes precedence and this one is ignored. Remove or rename one of them")]
    Duplicate {
        /// The shared name.
        name: String,
        /// The library in use.
        kept: PathBuf,
        /// The library ignored.
        skipped: PathBuf,
    },
}

/// Every plugin found on a search path, and every library that failed.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    failures: Vec<LoadFailure>,
    searched: String,
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

impl Registry {
    /// Loads every candidate on the search path, refusing untrusted ones unless it allows them.
    pub fn load(search: &SearchPath) -> Registry {
        let mut registry = Registry { searched: search.describe(), ..Registry::default() };
        for candidate in search.checked_candidates() {
            match candidate.untrusted {
                None => registry.add(&candidate.path),
                Some(untrusted) if search.allow_insecure => {
                    let reason = untrusted.reason();
                    tracing::warn!(
                        "loading {} although {reason} (--allow-insecure-plugin-dirs)",
                        candidate.path.display()
                    );
                    registry.add_insecure(&candidate.path, Some(reason));
                }
                Some(untrusted) => {
                    tracing::warn!("{untrusted}");
                    registry.failures.push(untrusted.into());
                }
            }
        }
        registry
    }

    /// Loads one library into the registry, recording a failure instead of returning it. No
    /// trust checks: the caller vouches for the file.
    pub fn add(&mut self, path: &Path) {
        self.add_insecure(path, None);
    }

    fn add_insecure(&mut self, path: &Path, insecure: Option<String>) {
        let _span = tracing::debug_span!("load", path = %path.display()).entered();
        // Hashed before loading, so the recorded hash is that of the bytes about to be mapped
        // (short of a swap between the two, which the trust checks make another user's business).
        let sha256 = match sha256_file(path) {
            Ok(sha) => sha,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                self.failures.push(LoadFailure::Unreadable {
                    path: path.to_path_buf(),
                    reason: crate::error::io_reason(&e),
                });
                return;
            }
        };
        let plugin = match commute_sdk::abi::load::load(path) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "not loaded");
                self.failures.push(e.into());
                return;
            }
        };
        if let Some(first) = self.plugins.iter().find(|p| p.plugin.name() == plugin.name()) {
            self.failures.push(LoadFailure::Duplicate {
                name: plugin.name().to_owned(),
                kept: first.path.clone(),
                skipped: path.to_path_buf(),
            });
            return;
        }
        tracing::debug!(name = plugin.name(), version = %plugin.manifest().version, sha256, "loaded");
        self.plugins.push(LoadedPlugin { plugin, path: path.to_path_buf(), sha256, insecure });
    }

    /// The loaded plugins, in search order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The libraries that failed.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Result<&LoadedPlugin, HostError> {
        self.plugins.iter().find(|p| p.plugin.name() == name).ok_or_else(|| {
            let loaded: Vec<&str> = self.plugins.iter().map(|p| p.plugin.name()).collect();
            let mut searched = self.searched.clone();
            for failure in &self.failures {
                if let LoadFailure::Untrusted(u) = failure {
                    searched.push_str("\n  ");
                    searched.push_str(&u.to_string());
                }
            }
            HostError::UnknownPlugin {
                name: name.to_owned(),
                loaded: if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") },
                searched,
            }
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn an_untrusted_folder_is_refused_before_loading_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!(
            "{}commute_plugin_fake.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        );
        std::fs::write(dir.path().join(&name), b"not a library").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut search = SearchPath::from_sources(vec![], vec![dir.path().to_path_buf()], None, None);

        let refused = Registry::load(&search);
        assert!(refused.plugins().is_empty());
        assert!(
            matches!(refused.failures(), [LoadFailure::Untrusted(u)] if u.folder),
            "{:?}",
            refused.failures()
        );
        let err = refused.get("fake").unwrap_err().to_string();
        assert!(
            err.contains("refusing plugin folder") && err.contains("--allow-insecure-plugin-dirs"),
            "{err}"
        );

        // Allowed, it is loaded (and fails as the non-library it is).
        search.allow_insecure = true;
        let tried = Registry::load(&search);
        assert!(matches!(tried.failures(), [LoadFailure::Load(_)]), "{:?}", tried.failures());

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        search.allow_insecure = false;
        assert!(
            matches!(Registry::load(&search).failures(), [LoadFailure::Load(_)]),
            "a 0700 folder is trusted"
        );
    }
}
