//! Shared helpers: building the fixture plugins, placing them in plugin folders, running `commute`.

use std::env::consts::{DLL_EXTENSION, DLL_PREFIX};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The target folder root and the profile folder this test binary was built into.
fn target_dirs() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let root = profile_dir.parent().expect("target root").to_path_buf();
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("profile name").to_owned();
    (root, profile)
}

fn cargo(command: &str, args: &[&str]) {
    let (root, _) = target_dirs();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .arg(command)
        .arg("--quiet")
        .arg("--target-dir")
        .arg(&root)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building fixtures with cargo {args:?} failed");
}

/// The packages whose libraries the tests load.
const PLUGIN_PACKAGES: &[&str] = &[
    "commute-plugin-music",
    "commute-plugin-audio",
    "commute-plugin-text",
    "commute-plugin-vision",
    "commute-plugin-colours",
    "commute-plugin-speech",
    "commute-fixture-echo",
    "commute-fixture-panicky",
    "commute-fixture-old-abi",
    "commute-fixture-not-a-plugin",
    "commute-fixture-faulty",
    "commute-fixture-crashy",
    "commute-fixture-colour",
    "commute-fixture-faulty-rebuilt",
    "commute-fixture-faulty-v2",
];

fn profile_args(profile: &str) -> Vec<&str> {
    match profile {
        "debug" => vec![],
        "release" => vec!["--release"],
        other => vec!["--profile", other],
    }
}

/// The library of a workspace package, built (once per test run) with this test's profile. The
/// package must be one of [`PLUGIN_PACKAGES`]: a library left over from an earlier build would
/// otherwise pass here and fail on a clean checkout.
pub fn library(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    assert!(PLUGIN_PACKAGES.contains(&package), "{package} is not in PLUGIN_PACKAGES (tests/e2e/util.rs)");
    let (root, profile) = target_dirs();
    BUILT.get_or_init(|| {
        let mut args: Vec<&str> = PLUGIN_PACKAGES.iter().flat_map(|p| ["-p", p]).collect();
        args.extend(profile_args(&profile));
        cargo("build", &args);
    });
    root.join(&profile).join(lib_file_name(package))
}

/// The `abort` fixture, built with `-C panic=abort` (its dependencies stay as they are, as when a
/// plugin author sets `panic = "abort"` for their own crate). Returns a copy, since a normal
/// workspace build later rebuilds the same file with unwinding.
pub fn abort_library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let (root, profile) = target_dirs();
            let mut args = vec!["-p", "commute-fixture-abort", "--lib", "--crate-type", "cdylib"];
            args.extend(profile_args(&profile));
            args.extend(["--", "-C", "panic=abort"]);
            cargo("rustc", &args);
            let keep = root.join("e2e-fixtures");
            std::fs::create_dir_all(&keep).expect("create target/e2e-fixtures");
            let copy = keep.join(lib_file_name("commute-fixture-abort"));
            std::fs::copy(root.join(&profile).join(lib_file_name("commute-fixture-abort")), &copy)
                .expect("copy the abort fixture");
            copy
        })
        .clone()
}

/// `libcommute_plugin_music.so` for `commute-plugin-music` (per platform).
pub fn lib_file_name(package: &str) -> String {
    format!("{DLL_PREFIX}{}.{DLL_EXTENSION}", package.replace('-', "_"))
}

/// A plugin-folder file name that discovery picks up: `libcommute_plugin_<name>.so`.
pub fn plugin_file_name(name: &str) -> String {
    format!("{DLL_PREFIX}commute_plugin_{name}.{DLL_EXTENSION}")
}

/// A fresh folder holding copies of libraries under plugin names: `[("echo", path), …]`.
pub fn plugin_dir(entries: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in entries {
        std::fs::copy(source, dir.path().join(plugin_file_name(name))).expect("copy plugin library");
    }
    dir
}

/// The `commute` binary with a clean plugin environment (no folder but those given).
pub fn commute() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_commute"));
    cmd.env_remove("COMMUTE_PLUGIN_PATH").env_remove("RUST_LOG");
    cmd
}

/// `commute` run in `dir`, its cache in `dir/cache`, two threads, and only the libraries of the
/// given packages.
pub fn commute_in(dir: &Path, packages: &[&str]) -> Command {
    let mut cmd = commute();
    cmd.current_dir(dir).env("COMMUTE_HOME", dir.join("cache")).args([
        "--no-default-plugins",
        "--threads",
        "2",
    ]);
    for package in packages {
        cmd.arg("--plugin").arg(library(package));
    }
    cmd
}

/// [`commute_in`] with the assets of the default asset store (where the plugin tests put the
/// models; fetched with the registry client where missing), so that real models are fetched once.
pub fn commute_with_assets(dir: &Path, packages: &[&str]) -> Command {
    let mut cmd = commute_in(dir, packages);
    cmd.env("COMMUTE_ASSETS", commute_sdk::asset::AssetStore::from_env().root());
    cmd
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("commute runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The run folders under `runs/<name>/`, oldest first (their names are UTC times).
pub fn run_folders(runs: &Path, name: &str) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> =
        std::fs::read_dir(runs.join(name)).expect("runs folder").map(|e| e.expect("entry").path()).collect();
    folders.sort();
    folders
}

/// A JSON file (metrics.json, swap.json…), naming the file when it is missing or not JSON.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sha256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
