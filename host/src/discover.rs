//! Where plugin libraries are found: explicit files, `--plugin-dir`, `COMMUTE_PLUGIN_PATH`, and
//! the folder of the `commute` executable, in that order of precedence.
//!
//! In a folder, only files named like a plugin crate's library are candidates:
//! `libcommute_plugin_*.so` on Linux (`.dylib` on macOS, `commute_plugin_*.dll` on Windows), so a
//! crate called `commute-plugin-foo` is found without configuration and the other shared
//! libraries that share a folder (a build folder, `/usr/lib`) are left alone.
//!
//! # Trust
//!
//! A plugin library runs with the user's rights, so one that another user can replace or add is
//! refused (on Unix; [`Untrusted`] says why and names the flag) unless the search path allows it
//! (`--allow-insecure-plugin-dirs`). "Another user" is anyone but the current user and root:
//!
//! - a library file must be owned by the current user or root and not be group- or
//!   world-writable;
//! - a folder that is searched (`--plugin-dir`, `COMMUTE_PLUGIN_PATH`) must be owned by the current user or root and not be group- or world-writable,
//!   sticky or not: in a sticky world-writable folder such as `/tmp` anyone can still *add* a
//!   `libcommute_plugin_*.so` that would then be loaded;
//! - the folder holding a library given by name (`--plugin FILE`), and every folder above a
//!   library or a searched folder, must be owned by the current user or root and either not
//!   writable by others or sticky (in a sticky folder nobody else can rename or replace what is
//!   ours), so `--plugin /tmp/mine.so` is accepted when `mine.so` is ours and not writable by
//!   others. Symbolic links are followed, and the folders of the link are checked as well.
//!
//! The folder of the running `commute` executable and the folders above it are not checked: a
//! user who can write to one of them can replace the executable itself, so refusing a plugin
//! beside it would protect nothing. The libraries there are checked like any other.

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
    /// Load libraries that other users could have replaced or added (see [Trust](self#trust)).
    pub allow_insecure: bool,
}

/// A library file to load, and why it should not be trusted, if it should not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The library.
    pub path: PathBuf,
    /// Why another user could have replaced or placed it; `None` when the checks pass.
    pub untrusted: Option<Untrusted>,
}

/// What about a path makes a plugin library untrustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Group- or world-writable (the mode, e.g. `0o40777`).
    WritableByOthers {
        /// `st_mode`.
        mode: u32,
    },
    /// Owned by a user other than the current one and root.
    OwnedByAnotherUser {
        /// The owner's uid.
        uid: u32,
    },
}

/// A plugin library refused because another user could have replaced or placed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Untrusted {
    /// The library, or the searched folder it was found in.
    pub target: PathBuf,
    /// Whether `target` is a searched folder (else a library file).
    pub folder: bool,
    /// The path at fault: the target itself or a folder above it.
    pub culprit: PathBuf,
    /// What is wrong with `culprit`.
    pub problem: Problem,
}

impl Untrusted {
    /// What is wrong, without the verdict: `/opt/plugins is writable by other users (mode 0777)`.
    pub fn reason(&self) -> String {
        let problem = match self.problem {
            Problem::WritableByOthers { mode } => format!(
                "{} by other users (mode {:04o})",
                if mode & 0o002 != 0 { "is writable" } else { "is group-writable, so writable" },
                mode & 0o7777
            ),
            Problem::OwnedByAnotherUser { uid } => format!("is owned by uid {uid}, neither you nor root"),
        };
        format!("{} {problem}", self.culprit.display())
    }

    fn message(&self) -> String {
        let what = if self.folder { "plugin folder" } else { "plugin library" };
        let culprit = self.culprit.display();
        let fix = match self.problem {
            Problem::WritableByOthers { .. } => format!("`chmod go-w {culprit}`"),
            Problem::OwnedByAnotherUser { .. } => {
                format!("`chown` it to yourself or root, or move the library elsewhere ({culprit})")
            }
        };
        let under = if self.culprit == self.target { String::new() } else { format!(" (under {culprit})") };
        let consequence = if self.folder {
            "anyone who can write there can add or replace a library that commute would load"
        } else {
            "another user could replace the library that commute would load"
        };
        format!(
            "refusing {what} {}{under}: {}, so {consequence}. Fix it with {fix}, \
             or pass --allow-insecure-plugin-dirs to load it anyway",
            self.target.display(),
            self.reason()
        )
    }
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
        let mut path = SearchPath { files, dirs: plugin_dirs, allow_insecure: false };
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
        self.checked_candidates().into_iter().map(|c| c.path).collect()
    }

    /// Candidate library files, in precedence order, each file once, each with the outcome of
    /// the trust checks (see [Trust](self#trust)). Refusing is the caller's decision.
    pub fn checked_candidates(&self) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |path: PathBuf, folder: Option<&Result<(), Untrusted>>| {
            let key = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.insert(key) {
                let untrusted = match folder {
                    Some(Err(u)) => Some(u.clone()),
                    _ => trust::check_library(&path, folder.is_some()).err(),
                };
                out.push(Candidate { path, untrusted });
            }
        };
        for f in &self.files {
            push(f.clone(), None);
        }
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                tracing::debug!(dir = %dir.display(), "plugin folder not readable; skipped");
                continue;
            };
            let mut files: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_plugin_file_name(p)).collect();
            files.sort();
            if files.is_empty() {
                continue;
            }
            let folder = trust::check_folder(dir);
            for f in files {
                push(f, Some(&folder));
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

/// The permission checks behind [Trust](self#trust).
mod trust {
    use super::{Problem, Untrusted};
    use std::path::Path;

    /// The folder of the running executable and every folder above it: whoever can write to
    /// one of them can replace the executable itself, so checking them would protect nothing
    /// (and would refuse every plugin of a build or install folder whose parents are shared).
    pub(super) fn vouched_for_by_executable(path: &Path) -> bool {
        static EXE_DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
        EXE_DIR
            .get_or_init(|| {
                let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
                exe.parent().map(Path::to_path_buf)
            })
            .as_deref()
            .is_some_and(|exe_dir| exe_dir.starts_with(path))
    }

    /// [`imp::check`], except for the folders the executable already depends on.
    fn check(path: &Path, sticky_ok: bool) -> Result<(), Problem> {
        if path.is_dir() && vouched_for_by_executable(path) {
            return Ok(());
        }
        imp::check(path, sticky_ok)
    }

    /// Checks a searched folder: itself strictly, the folders above it with the sticky exception.
    pub fn check_folder(dir: &Path) -> Result<(), Untrusted> {
        let fail = |culprit: &Path, problem| Untrusted {
            target: dir.to_path_buf(),
            folder: true,
            culprit: culprit.to_path_buf(),
            problem,
        };
        let Ok(real) = dir.canonicalize() else { return Ok(()) };
        // The target itself is named as given.
        check(&real, false).map_err(|p| fail(dir, p))?;
        ancestors(&real, &|culprit, p| fail(culprit, p))?;
        if real != dir {
            // A symbolic link: the folder holding the link matters too.
            if let Some(parent) = dir.parent().and_then(|p| p.canonicalize().ok()) {
                check(&parent, true).map_err(|p| fail(&parent, p))?;
                ancestors(&parent, &|culprit, p| fail(culprit, p))?;
            }
        }
        Ok(())
    }

    /// Checks a library file and the folders above it (the folder holding it was already checked
    /// strictly when `in_searched_folder`).
    pub fn check_library(lib: &Path, in_searched_folder: bool) -> Result<(), Untrusted> {
        let fail = |culprit: &Path, problem| Untrusted {
            target: lib.to_path_buf(),
            folder: false,
            culprit: culprit.to_path_buf(),
            problem,
        };
        // A file that cannot be resolved fails to load later, with a clearer message.
        let Ok(real) = lib.canonicalize() else { return Ok(()) };
        check(&real, false).map_err(|p| fail(lib, p))?;
        let mut folders: Vec<std::path::PathBuf> = real.parent().map(Path::to_path_buf).into_iter().collect();
        if let Some(link_folder) =
            lib.parent().filter(|p| !p.as_os_str().is_empty()).and_then(|p| p.canonicalize().ok())
        {
            if !folders.contains(&link_folder) && !in_searched_folder {
                folders.push(link_folder);
            }
        }
        for folder in folders {
            check(&folder, true).map_err(|p| fail(&folder, p))?;
            ancestors(&folder, &|culprit, p| fail(culprit, p))?;
        }
        Ok(())
    }

    fn ancestors(path: &Path, fail: &dyn Fn(&Path, Problem) -> Untrusted) -> Result<(), Untrusted> {
        for above in path.ancestors().skip(1) {
            check(above, true).map_err(|p| fail(above, p))?;
        }
        Ok(())
    }

    #[cfg(unix)]
    mod imp {
        use super::Problem;
        use std::os::unix::fs::MetadataExt as _;
        use std::path::Path;

        const STICKY: u32 = 0o1000;

        /// The effective uid: the owner of `/proc/self` on Linux, else of a file this process
        /// creates (no `libc` call, so no `unsafe`).
        pub fn euid() -> Option<u32> {
            static EUID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
            *EUID.get_or_init(|| {
                if let Ok(meta) = std::fs::metadata("/proc/self") {
                    return Some(meta.uid());
                }
                let probe = std::env::temp_dir().join(format!(".commute-uid-probe.{}", std::process::id()));
                let uid = std::fs::File::create(&probe).and_then(|f| f.metadata()).map(|m| m.uid()).ok();
                let _ = std::fs::remove_file(&probe);
                uid
            })
        }

        /// Whether `path` is owned by us or root and not writable by others (sticky folders
        /// excepted when `sticky_ok`). Unreadable metadata is no evidence either way.
        pub fn check(path: &Path, sticky_ok: bool) -> Result<(), Problem> {
            let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
            let uid = meta.uid();
            if uid != 0 && Some(uid) != euid() {
                return Err(Problem::OwnedByAnotherUser { uid });
            }
            let mode = meta.mode();
            let sticky = meta.is_dir() && mode & STICKY != 0;
            if mode & 0o022 != 0 && !(sticky_ok && sticky) {
                return Err(Problem::WritableByOthers { mode });
            }
            Ok(())
        }
    }

    #[cfg(not(unix))]
    mod imp {
        use super::Problem;
        use std::path::Path;

        /// No Unix permission bits here: nothing to check.
        pub fn check(_path: &Path, _sticky_ok: bool) -> Result<(), Problem> {
            Ok(())
        }
    }
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

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    fn checked(files: Vec<PathBuf>, dirs: Vec<PathBuf>) -> Vec<Option<Untrusted>> {
        SearchPath::from_sources(files, dirs, None, None)
            .checked_candidates()
            .into_iter()
            .map(|c| c.untrusted)
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn folders_and_libraries_writable_by_others_are_untrusted() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("plugins");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        let lib = touch(&dir, &format!("{DLL_PREFIX}commute_plugin_x.{DLL_EXTENSION}"));
        chmod(&lib, 0o644);
        assert_eq!(checked(vec![], vec![dir.clone()]), vec![None], "0755 folder, 0644 library");

        chmod(&lib, 0o664);
        let found = checked(vec![], vec![dir.clone()]);
        let u = found[0].as_ref().expect("a group-writable library is untrusted");
        assert_eq!(
            (&u.culprit, &u.problem, u.folder),
            (&lib, &Problem::WritableByOthers { mode: 0o100664 }, false)
        );
        let message = u.to_string();
        assert!(
            message.contains(&format!("refusing plugin library {}", lib.display()))
                && message.contains("group-writable")
                && message.contains("--allow-insecure-plugin-dirs"),
            "{message}"
        );
        chmod(&lib, 0o644);

        chmod(&dir, 0o777);
        let found = checked(vec![], vec![dir.clone()]);
        let u = found[0].as_ref().expect("a world-writable folder is untrusted");
        assert!(u.folder && u.culprit == dir, "{u:?}");
        assert!(u.to_string().contains(&format!("`chmod go-w {}`", dir.display())), "{u}");
        // Sticky does not help a searched folder: anyone can still add a library to it…
        chmod(&dir, 0o1777);
        assert!(checked(vec![], vec![dir.clone()])[0].is_some(), "sticky searched folder");
        // …but a library of ours, named explicitly, in a sticky folder cannot be replaced.
        assert_eq!(checked(vec![lib.clone()], vec![]), vec![None], "explicit file in a sticky folder");
        chmod(&dir, 0o777);
        assert!(checked(vec![lib.clone()], vec![])[0].is_some(), "explicit file in a world-writable folder");
        chmod(&dir, 0o755);

        // A folder above is checked too.
        chmod(root.path(), 0o777);
        let found = checked(vec![], vec![dir.clone()]);
        let u = found[0].as_ref().expect("a world-writable folder above is untrusted");
        assert_eq!(u.culprit, root.path().canonicalize().unwrap());
        assert!(u.to_string().contains(&format!("(under {})", u.culprit.display())), "{u}");
        chmod(root.path(), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn a_library_owned_by_another_user_is_untrusted() {
        let root = tempfile::tempdir().unwrap();
        let lib = touch(root.path(), &format!("{DLL_PREFIX}commute_plugin_y.{DLL_EXTENSION}"));
        chmod(&lib, 0o644);
        assert_eq!(checked(vec![lib.clone()], vec![]), vec![None]);
        // Only root can give a file away; elsewhere there is nothing to test here.
        if let Err(e) = std::os::unix::fs::chown(&lib, Some(4242), None) {
            eprintln!("skipped: cannot chown a file to another user (not root?): {e}");
            return;
        }
        let found = checked(vec![lib.clone()], vec![]);
        let u = found[0].as_ref().expect("owned by uid 4242");
        assert_eq!(u.problem, Problem::OwnedByAnotherUser { uid: 4242 });
        assert!(u.to_string().contains("is owned by uid 4242, neither you nor root"), "{u}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_in_an_open_folder_is_untrusted() {
        let root = tempfile::tempdir().unwrap();
        let (safe, open) = (root.path().join("safe"), root.path().join("open"));
        std::fs::create_dir(&safe).unwrap();
        std::fs::create_dir(&open).unwrap();
        chmod(&safe, 0o755);
        chmod(&open, 0o777);
        let lib = touch(&safe, "real.so");
        chmod(&lib, 0o644);
        let link = open.join("link.so");
        std::os::unix::fs::symlink(&lib, &link).unwrap();
        let found = checked(vec![link], vec![]);
        let u = found[0].as_ref().expect("the link's folder is world-writable");
        assert_eq!(u.culprit, open.canonicalize().unwrap());
        assert_eq!(checked(vec![lib], vec![]), vec![None]);
    }

    #[test]
    fn only_the_executables_folder_and_its_parents_go_unchecked() {
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        let exe_dir = exe.parent().unwrap();
        assert!(super::trust::vouched_for_by_executable(exe_dir));
        assert!(super::trust::vouched_for_by_executable(Path::new("/")));
        let elsewhere = tempfile::tempdir().unwrap();
        let elsewhere = elsewhere.path().canonicalize().unwrap();
        assert!(!super::trust::vouched_for_by_executable(&elsewhere));
        // A folder below the executable's is searched like any other.
        assert!(!super::trust::vouched_for_by_executable(&exe_dir.join("plugins")));
    }

    #[test]
    fn a_missing_folder_is_skipped() {
        let path = SearchPath::from_sources(vec![], vec!["/nonexistent/commute".into()], None, None);
        assert!(path.candidates().is_empty());
        assert!(path.describe().contains("/nonexistent/commute/"));
    }
}
