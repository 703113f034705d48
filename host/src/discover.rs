//! Where plugin libraries are found: explicit files, `--plugin-dir`, `COMMUTE_PLUGIN_PATH`, and
//! the folder of the `commute` executable, in that order of precedence.
//!
//! In a folder, only files named like a plugin crate's library are candidates:
//! `libcommute_plugin_*.so` on Linux (`.dylib` on macOS, `commute_plugin_*.dll` on Windows), so a
//! crate called `commute-plugin-foo` is found without configuration and the other shared
//! libraries that share a folder (a build folder, `/usr/lib`) are left alone.

use std::env::consts::{DLL_EXTENSION, DLL_PREFIX};
use std::path::{Path, PathBuf};

/// The environment variable listing extra plugin folders or files (`:`-separated, `;` on Windows).
pub const PLUGIN_PATH_VAR: &str = "COMMUTE_PLUGIN_PATH";

/// Where to look for plugins.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// Library files given explicitly (`--plugin FILE`); loaded whatever their name.
    pub files: Vec<PathBuf>,
    /// Folders, highest precedence first.
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// `--plugin` files, then `--plugin-dir` folders, then `COMMUTE_PLUGIN_PATH`, then the
    /// executable's folder (unless `no_default`).
    pub fn from_sources(
        files: Vec<PathBuf>,
        plugin_dirs: Vec<PathBuf>,
        env: Option<&str>,
        exe_dir: Option<PathBuf>,
    ) -> SearchPath {
        let mut path = SearchPath { files, dirs: plugin_dirs };
        if let Some(env) = env {
            for entry in std::env::split_paths(env).filter(|p| !p.as_os_str().is_empty()) {
                if entry.is_file() {
                    path.files.push(entry);
                } else {
                    path.dirs.push(entry);
                }
            }
        }
        path.dirs.extend(exe_dir);
        path
    }

    /// The standard search path for this process.
    pub fn standard(files: Vec<PathBuf>, plugin_dirs: Vec<PathBuf>) -> SearchPath {
        let env = std::env::var(PLUGIN_PATH_VAR).ok();
        let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
        SearchPath::from_sources(files, plugin_dirs, env.as_deref(), exe_dir)
    }

    /// Candidate library files, in precedence order, each file once.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |p: PathBuf| {
            let key = p.canonicalize().unwrap_or_else(|_| p.clone());
            if seen.insert(key) {
                out.push(p);
            }
        };
        for f in &self.files {
            push(f.clone());
        }
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                tracing::debug!(dir = %dir.display(), "plugin folder not readable; skipped");
                continue;
            };
            let mut files: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_plugin_file_name(p)).collect();
            files.sort();
            for f in files {
                push(f);
            }
        }
        out
    }

    /// The folders searched, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        parts.extend(self.dirs.iter().map(|d| format!("{}/", d.display())));
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Whether a file name looks like a plugin library: `{lib}commute_plugin_*.{so}`.
pub fn is_plugin_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let Some(stem) = name.strip_suffix(&format!(".{DLL_EXTENSION}")) else { return false };
    stem.strip_prefix(DLL_PREFIX).is_some_and(|s| s.starts_with("commute_plugin_")) && path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"").unwrap();
        p
    }

    #[test]
    fn folders_yield_plugin_named_libraries_in_precedence_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let lib = |n: &str| format!("{DLL_PREFIX}{n}.{DLL_EXTENSION}");
        let a1 = touch(a.path(), &lib("commute_plugin_music"));
        touch(a.path(), &lib("something_else"));
        touch(a.path(), "commute_plugin_notes.txt");
        let b1 = touch(b.path(), &lib("commute_plugin_audio"));
        let explicit = touch(b.path(), &lib("any_name_at_all"));
        let env = std::env::join_paths([b.path()]).unwrap();
        let path = SearchPath::from_sources(
            vec![explicit.clone()],
            vec![a.path().to_path_buf()],
            env.to_str(),
            None,
        );
        assert_eq!(path.candidates(), vec![explicit, a1, b1]);
    }

    #[test]
    fn the_same_file_reached_twice_is_listed_once() {
        let a = tempfile::tempdir().unwrap();
        let lib = touch(a.path(), &format!("{DLL_PREFIX}commute_plugin_x.{DLL_EXTENSION}"));
        let path = SearchPath::from_sources(
            vec![],
            vec![a.path().into(), a.path().into()],
            None,
            Some(a.path().into()),
        );
        assert_eq!(path.candidates(), vec![lib]);
    }

    #[test]
    fn a_missing_folder_is_skipped() {
        let path = SearchPath::from_sources(vec![], vec!["/nonexistent/commute".into()], None, None);
        assert!(path.candidates().is_empty());
        assert!(path.describe().contains("/nonexistent/commute/"));
    }
}
