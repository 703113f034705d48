//! The loaded plugins: each candidate library loaded on its own, failures kept beside successes
//! so that one bad file never hides the others.

use crate::discover::SearchPath;
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
    /// sha256 of the library file, hex.
    pub sha256: String,
}

/// Why a candidate library is not in the registry.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// It failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
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
    /// Loads every candidate on the search path.
    pub fn load(search: &SearchPath) -> Registry {
        let mut registry = Registry { searched: search.describe(), ..Registry::default() };
        for path in search.candidates() {
            registry.add(&path);
        }
        registry
    }

    /// Loads one library into the registry, recording a failure instead of returning it.
    pub fn add(&mut self, path: &Path) {
        let _span = tracing::debug_span!("load", path = %path.display()).entered();
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
        let sha256 = sha256_file(path).unwrap_or_default();
        tracing::debug!(name = plugin.name(), version = %plugin.manifest().version, "loaded");
        self.plugins.push(LoadedPlugin { plugin, path: path.to_path_buf(), sha256 });
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
            HostError::UnknownPlugin {
                name: name.to_owned(),
                loaded: if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") },
                searched: self.searched.clone(),
            }
        })
    }
}
