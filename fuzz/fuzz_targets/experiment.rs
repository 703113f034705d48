//! Fuzz target `experiment`: the whole experiment loader (UTF-8 check, TOML, the file's shape,
//! then the checks against the plugins and as a graph) and the rendering of its errors, on
//! arbitrary bytes. Plugins to check against come from `COMMUTE_FUZZ_PLUGINS` (library paths
//! separated by `:`); without it the registry is empty and every function is unknown.

#![no_main]

use commute_host::experiment::{self, diagnostic};
use commute_host::registry::Registry;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::default();
        for path in std::env::var("COMMUTE_FUZZ_PLUGINS").unwrap_or_default().split(':') {
            if !path.is_empty() {
                registry.add(Path::new(path));
            }
        }
        registry
    })
}

fuzz_target!(|data: &[u8]| {
    // `files` folders resolve against a folder that does not exist (absolute paths still read).
    let base = Path::new("/nonexistent/commute-fuzz");
    if let Err(diags) = experiment::load(data, registry(), base) {
        assert!(!diags.is_empty(), "a failed load says why");
        let text = diagnostic::render(Path::new("fuzz.toml"), &String::from_utf8_lossy(data), &diags);
        assert!(text.contains("--> fuzz.toml:"), "every error has a position");
    }
});
