//! `--cache DIR`: the cache folder option shared by every command that reads or writes the cache,
//! resolved in one place.

use std::path::PathBuf;

/// The cache folder: embeddings, results and the asset store.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CacheDir {
    /// The cache folder: embeddings, results and assets [default: $COMMUTE_HOME, else
    /// ~/.cache/commute].
    #[arg(long = "cache", value_name = "DIR", env = "COMMUTE_HOME")]
    dir: Option<PathBuf>,
}

impl CacheDir {
    /// The folder given, or the default.
    pub fn root(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(crate::cache::default_root)
    }
}
