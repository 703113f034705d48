//! Parameters that name files or folders (a function's `ParamSpec::file`, e.g. a generic
//! encoder's model; `ParamSpec::folder`, e.g. a folder source's `dir`): a relative path is
//! resolved against the experiment's folder before the plugin sees it, so an experiment reads the
//! same files from any working directory. The cache key holds a file's sha256 in place of its
//! path, so a replaced model is never served from the cache and a moved one still is; a folder
//! keeps its path as written in the key (what a folder source reads is keyed by the items' content
//! downstream).

use crate::embeddings_file::sha256_file;
use crate::experiment::Call;
use crate::HostError;
use commute_sdk::FunctionSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A call's parameters as the plugin gets them and as the cache key reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// TOML for the plugin: file parameters as absolute paths.
    pub plugin: String,
    /// TOML for the cache key: file parameters as `sha256:<hex>` of their content.
    pub key: String,
}

/// Resolves file parameters against one folder, hashing each file once.
#[derive(Debug, Default)]
pub struct FileParams {
    base: PathBuf,
    hashes: Mutex<HashMap<PathBuf, String>>,
}

impl FileParams {
    /// Resolution against `base` (the experiment file's folder).
    pub fn new(base: &Path) -> FileParams {
        FileParams { base: base.to_path_buf(), hashes: Mutex::new(HashMap::new()) }
    }

    /// `call`'s parameters for the plugin and for the key. Without file parameters (or without a
    /// spec), both are the parameters as written, so keys of such calls never change.
    pub fn resolve(&self, call: &Call, spec: Option<&FunctionSpec>) -> Result<Resolved, HostError> {
        let written = call.params_toml();
        let named = |keep: fn(&commute_sdk::ParamSpec) -> bool| -> Vec<&str> {
            spec.map(|s| s.params.iter().filter(|p| keep(p)).map(|p| p.name.as_str()).collect())
                .unwrap_or_default()
        };
        let (files, folders) = (named(|p| p.file), named(|p| p.folder));
        if !files.iter().chain(&folders).any(|f| call.params.contains_key(*f)) {
            return Ok(Resolved { plugin: written.clone(), key: written });
        }
        let (mut plugin, mut key) = (call.params.clone(), call.params.clone());
        for name in folders {
            if let Some(toml::Value::String(value)) = call.params.get(name) {
                let path = self.base.join(value);
                plugin.insert(name.to_owned(), toml::Value::String(path.display().to_string()));
            }
        }
        for name in files {
            let Some(toml::Value::String(value)) = call.params.get(name) else { continue };
            let path = self.base.join(value);
            let sha = self.sha256(&path).map_err(|e| {
                HostError::Usage(format!(
                    "parameter `{name}` of `{}/{}`: {e} (a relative path is read from the experiment's folder, {})",
                    call.plugin,
                    call.function,
                    self.base.display()
                ))
            })?;
            plugin.insert(name.to_owned(), toml::Value::String(path.display().to_string()));
            key.insert(name.to_owned(), toml::Value::String(format!("sha256:{sha}")));
        }
        let text = |t: &toml::Table| toml::to_string(t).unwrap_or_default();
        Ok(Resolved { plugin: text(&plugin), key: text(&key) })
    }

    fn sha256(&self, path: &Path) -> Result<String, HostError> {
        if let Some(known) = self.hashes.lock().ok().and_then(|h| h.get(path).cloned()) {
            return Ok(known);
        }
        let sha = sha256_file(path)?;
        if let Ok(mut hashes) = self.hashes.lock() {
            hashes.insert(path.to_path_buf(), sha.clone());
        }
        Ok(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commute_sdk::{FunctionKind, ParamSpec, ValueKind};

    fn spec() -> FunctionSpec {
        let param = |name: &str, file: bool| ParamSpec {
            name: name.to_owned(),
            ty: "string".to_owned(),
            required: false,
            default: None,
            doc: String::new(),
            bounds: Default::default(),
            file,
            folder: name == "clips",
        };
        FunctionSpec {
            name: "onnx".to_owned(),
            kind: FunctionKind::Encoder,
            input: Some(ValueKind::Text),
            output: ValueKind::Tensor,
            doc: String::new(),
            params: vec![param("model", true), param("label", false), param("clips", false)],
            assets: Vec::new(),
            cuda: false,
            version: Some(1),
        }
    }

    fn call(params: &str) -> Call {
        Call::new("text", "onnx", params.parse().unwrap())
    }

    #[test]
    fn a_file_is_given_by_absolute_path_and_keyed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.onnx"), b"model one").unwrap();
        std::fs::write(dir.path().join("b.onnx"), b"model one").unwrap();
        let files = FileParams::new(dir.path());
        let spec = spec();
        let a = files.resolve(&call("model = \"a.onnx\"\nlabel = \"x\""), Some(&spec)).unwrap();
        let expected_path = dir.path().join("a.onnx").display().to_string();
        assert!(a.plugin.contains(&format!("model = {expected_path:?}")), "{}", a.plugin);
        assert!(a.plugin.contains("label = \"x\""));
        assert!(!a.key.contains("a.onnx") && a.key.contains("sha256:"), "{}", a.key);
        let b = files.resolve(&call("model = \"b.onnx\"\nlabel = \"x\""), Some(&spec)).unwrap();
        assert_eq!(a.key, b.key, "the same bytes under another name share the key");

        let other = FileParams::new(dir.path());
        std::fs::write(dir.path().join("a.onnx"), b"model two").unwrap();
        let changed = other.resolve(&call("model = \"a.onnx\"\nlabel = \"x\""), Some(&spec)).unwrap();
        assert_ne!(changed.key, a.key, "changed bytes, another key");
    }

    #[test]
    fn a_folder_is_given_by_absolute_path_and_keyed_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileParams::new(dir.path());
        let r = files.resolve(&call("clips = \"wavs\"\nlabel = \"x\""), Some(&spec())).unwrap();
        let expected = dir.path().join("wavs").display().to_string();
        assert!(r.plugin.contains(&format!("clips = {expected:?}")), "{}", r.plugin);
        assert_eq!(r.key, "clips = \"wavs\"\nlabel = \"x\"\n", "the key is the call as written");
        // An absolute folder stays as it is.
        let r = files.resolve(&call("clips = \"/data/wavs\""), Some(&spec())).unwrap();
        assert!(r.plugin.contains("clips = \"/data/wavs\""), "{}", r.plugin);
    }

    #[test]
    fn calls_without_file_parameters_keep_their_parameters_and_keys() {
        let files = FileParams::new(Path::new("/nonexistent"));
        let c = call("label = \"x\"");
        let r = files.resolve(&c, Some(&spec())).unwrap();
        assert_eq!((r.plugin.as_str(), r.key.as_str()), (c.params_toml().as_str(), c.params_toml().as_str()));
        assert_eq!(files.resolve(&call("model = \"m\""), None).unwrap().key, "model = \"m\"\n");
    }

    #[test]
    fn a_missing_file_names_the_parameter_and_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            FileParams::new(dir.path()).resolve(&call("model = \"gone.onnx\""), Some(&spec())).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("parameter `model` of `text/onnx`") && e.contains("gone.onnx"), "{e}");
        assert!(e.contains("experiment's folder"), "{e}");
    }
}
