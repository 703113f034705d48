//! What the host tells a function when it opens it: thread budget, device, cache folder, assets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Local paths of the function's declared assets, verified by the host, by asset name.
    pub assets: BTreeMap<String, PathBuf>,
}

impl Default for Context {
    fn default() -> Self {
        Context { threads: 1, device: "cpu".to_owned(), cache_dir: None, assets: BTreeMap::new() }
    }
}

impl Context {
    /// The local path of a declared asset (see [`Function::ASSETS`](crate::Function::ASSETS)).
    ///
    /// Call it in `open` and pass its error on with `?`: when the host has not fetched that asset
    /// yet, it does so and opens the function again, so a function fetches only the assets its
    /// parameters actually use.
    pub fn asset(&self, name: &str) -> crate::Result<&Path> {
        match self.assets.get(name) {
            Some(path) => Ok(path),
            None => Err(anyhow::Error::new(MissingAsset(name.to_owned()))),
        }
    }

    /// Whether the function should run on a CUDA device.
    pub fn cuda_device(&self) -> Option<usize> {
        self.device.strip_prefix("cuda").map(|rest| rest.trim_start_matches(':').parse().unwrap_or(0))
    }

    /// The error for `open` when the function cannot run on [`Context::device`] (a build without
    /// GPU code, a runtime without a CUDA provider, no driver, no such device). The host reports it
    /// as a failure on that device, not as bad parameters; return it with `?` or `Err(...)`.
    pub fn device_error(&self, why: impl std::fmt::Display) -> anyhow::Error {
        anyhow::Error::new(DeviceError { device: self.device.clone(), message: why.to_string() })
    }
}

/// A function could not be opened on its device; made by [`Context::device_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    /// The device asked for, e.g. `cuda:0`.
    pub device: String,
    /// Why it cannot be used.
    pub message: String,
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot run on device `{}`: {}", self.device, self.message)
    }
}

impl std::error::Error for DeviceError {}

/// A declared asset that the host has not provided (yet). Raised by [`Context::asset`]; the SDK
/// turns it into a request for the host to provide the asset and open the function again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingAsset(pub(crate) String);

impl std::fmt::Display for MissingAsset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the host provided no asset `{}`; list it in the function's `const ASSETS` so that the \
             host can fetch it",
            self.0
        )
    }
}

impl std::error::Error for MissingAsset {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn unknown_fields_from_a_newer_host_are_ignored() {
        let ctx: Context = serde_json::from_str(r#"{"threads": 4, "future-field": true}"#).unwrap();
        assert_eq!(ctx, Context { threads: 4, ..Context::default() });
    }

    #[test]
    fn a_missing_asset_is_an_error_that_says_how_to_declare_it() {
        let ctx = Context::default();
        let err = ctx.asset("glove-50d").unwrap_err();
        assert_eq!(err.downcast_ref::<MissingAsset>(), Some(&MissingAsset("glove-50d".to_owned())));
        let message = err.to_string();
        assert!(message.contains("`glove-50d`") && message.contains("const ASSETS"), "{message}");
        let ctx = Context { assets: [("glove-50d".to_owned(), PathBuf::from("/x"))].into(), ..ctx };
        assert_eq!(ctx.asset("glove-50d").unwrap(), Path::new("/x"));
    }

    #[test]
    fn a_device_error_names_the_device_and_is_typed() {
        let ctx = Context { device: "cuda:3".to_owned(), ..Context::default() };
        let err = ctx.device_error("no driver");
        assert_eq!(err.to_string(), "cannot run on device `cuda:3`: no driver");
        let wrapped = Err::<(), _>(err).context("opening the model").unwrap_err();
        assert!(wrapped.downcast_ref::<DeviceError>().is_some(), "found through a context layer");
    }

    #[test]
    fn devices_are_read_from_their_names() {
        let on = |d: &str| Context { device: d.to_owned(), ..Context::default() }.cuda_device();
        assert_eq!(on("cpu"), None);
        assert_eq!(on("cuda"), Some(0));
        assert_eq!(on("cuda:1"), Some(1));
    }
}
