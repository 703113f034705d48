//! Loading another plugin in a plugin's tests: the library cargo builds for a dev-dependency,
//! found beside the test (or bench) binary and loaded as the host loads plugins.
//!
//! Two plugins' `export_plugin!` statics share symbol names, so a test binary cannot link a
//! second plugin's rlib; it loads that plugin's dynamic library instead.

use crate::abi::client::Plugin;
use std::path::PathBuf;

/// The plugin whose library is `lib{crate_name}.so` (per platform), from the running binary's
/// folder (`target/<profile>/deps`) or the one above it.
///
/// # Panics
/// When the library is not built (add the plugin as a dev-dependency) or does not load.
pub fn sibling_plugin(crate_name: &str) -> Plugin {
    let name = format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [deps.join(&name), deps.parent().map(|p| p.join(&name)).unwrap_or_default()];
    let path = candidates.iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} is not built (make its crate a dev-dependency): looked for {candidates:?}")
    });
    crate::abi::load::load(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}
