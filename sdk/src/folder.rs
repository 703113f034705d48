//! Sources that read a folder of files: their shared parameters, the ordered listing (optionally
//! recursive, bounded in depth), `limit`, and `skip-invalid`.

use crate::Result;
use anyhow::{ensure, Context as _};
use std::path::{Path, PathBuf};

/// Deepest folder nesting followed when `recursive` (guards against link cycles).
const MAX_DEPTH: usize = 32;

/// Parameters of a source that reads every file of a folder (use it as the source's `Params`).
#[crate::params]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderParams {
    /// Folder to read (a relative path is read from the experiment file's folder).
    #[schemars(extend("format" = "folder"))]
    pub dir: String,
    /// Also read subfolders (files are then ordered by their path relative to `dir`).
    #[serde(default)]
    pub recursive: bool,
    /// Skip files that cannot be read (with a logged warning) instead of failing the source.
    #[serde(default)]
    pub skip_invalid: bool,
    /// Read at most this many files (the first ones in order); all when absent.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl FolderParams {
    /// Parameters for `dir` with every option at its default.
    pub fn new(dir: impl Into<String>) -> FolderParams {
        FolderParams { dir: dir.into(), recursive: false, skip_invalid: false, limit: None }
    }

    /// Checks that `dir` is a folder (call it from `Function::open`).
    pub fn check(&self) -> Result<()> {
        let dir = Path::new(&self.dir);
        ensure!(dir.is_dir(), "dir `{}` is not a folder (or cannot be read)", dir.display());
        Ok(())
    }

    /// The files whose extension is one of `extensions` (case-insensitive, without the dot),
    /// ordered by path relative to `dir`, at most `limit` of them. None at all is an error.
    pub fn files(&self, extensions: &[&str]) -> Result<Vec<PathBuf>> {
        let root = PathBuf::from(&self.dir);
        let mut files = Vec::new();
        collect(&root, &root, self.recursive, 0, extensions, &mut files)?;
        let kinds: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
        ensure!(!files.is_empty(), "no {} files in `{}`", kinds.join(" or "), root.display());
        files.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(limit) = self.limit {
            files.truncate(limit);
        }
        Ok(files.into_iter().map(|(_, path)| path).collect())
    }

    /// Reads every listed file with `read`; a failure is an error naming the file, or, with
    /// `skip-invalid`, a logged warning.
    pub fn read_all<T>(
        &self,
        extensions: &[&str],
        mut read: impl FnMut(&Path) -> Result<T>,
    ) -> Result<Vec<T>> {
        let files = self.files(extensions)?;
        let mut items = Vec::with_capacity(files.len());
        for path in files {
            match read(&path).with_context(|| format!("cannot read `{}`", path.display())) {
                Ok(item) => items.push(item),
                Err(e) if self.skip_invalid => tracing::warn!("skipping {}: {e:#}", path.display()),
                Err(e) => return Err(e),
            }
        }
        Ok(items)
    }
}

/// Adds `(path relative to root, path)` of every matching file in `dir` to `out`.
fn collect(
    root: &Path,
    dir: &Path,
    recursive: bool,
    depth: usize,
    extensions: &[&str],
    out: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            if recursive && depth < MAX_DEPTH {
                collect(root, &path, recursive, depth + 1, extensions, out)?;
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
        {
            let relative = path.strip_prefix(root).map_or_else(|_| path.clone(), Path::to_path_buf);
            out.push((relative, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn files_are_listed_in_order_by_extension_recursively_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.wav", "a.WAV", "c.txt", "sub/d.wav"] {
            touch(&dir.path().join(name));
        }
        let p = FolderParams::new(dir.path().display().to_string());
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files.iter().map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string()).collect()
        };
        assert_eq!(names(p.files(&["wav"]).unwrap()), ["a.WAV", "b.wav"]);
        let deep = FolderParams { recursive: true, ..p.clone() };
        assert_eq!(names(deep.files(&["wav"]).unwrap()), ["a.WAV", "b.wav", "sub/d.wav"]);
        let limited = FolderParams { limit: Some(1), ..p.clone() };
        assert_eq!(names(limited.files(&["wav"]).unwrap()), ["a.WAV"]);
        let err = p.files(&["mid", "midi"]).unwrap_err().to_string();
        assert!(err.contains("no .mid or .midi files"), "{err}");
    }

    #[test]
    fn unreadable_files_fail_with_their_name_or_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("good.dat"));
        touch(&dir.path().join("bad.dat"));
        let p = FolderParams::new(dir.path().display().to_string());
        let read = |path: &Path| -> Result<String> {
            ensure!(!path.ends_with("bad.dat"), "broken");
            Ok(path.display().to_string())
        };
        let err = format!("{:#}", p.read_all(&["dat"], read).unwrap_err());
        assert!(err.contains("bad.dat") && err.contains("broken"), "{err}");
        let skipping = FolderParams { skip_invalid: true, ..p.clone() };
        assert_eq!(skipping.read_all(&["dat"], read).unwrap().len(), 1);
        assert!(FolderParams::new("/nonexistent/folder").check().is_err());
    }
}
