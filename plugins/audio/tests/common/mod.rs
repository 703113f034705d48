//! Test helpers shared by the audio plugin's test binaries: the music plugin, loaded as the
//! dynamic library cargo builds for the dev-dependency (two plugins' `export_plugin!` statics share
//! symbol names, so both rlibs cannot be linked into one binary).

use commute_sdk::abi::client::Plugin;
use commute_sdk::{Context, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The music plugin's library, from this test binary's folder (`target/<profile>/deps`).
pub fn music() -> &'static Plugin {
    static MUSIC: OnceLock<Plugin> = OnceLock::new();
    MUSIC.get_or_init(|| {
        let name =
            format!("{}commute_plugin_music{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let exe = std::env::current_exe().expect("test binary path");
        let deps = exe.parent().map(PathBuf::from).unwrap_or_default();
        let candidates = [deps.join(&name), deps.parent().map(|p| p.join(&name)).unwrap_or_default()];
        let path = candidates
            .iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("the music plugin library is not built: looked for {candidates:?}"));
        commute_sdk::abi::load::load(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    })
}

/// Calls a music-plugin function; every item must succeed.
pub fn music_call(function: &str, params: &str, batch: &[Value]) -> Vec<Value> {
    let mut instance =
        music().open(function, params, &Context::default()).unwrap_or_else(|e| panic!("{function}: {e}"));
    let items = instance.call(batch).unwrap_or_else(|e| panic!("{function}: {e}"));
    items.into_iter().map(|item| item.unwrap_or_else(|e| panic!("{function}: {e}"))).collect()
}
