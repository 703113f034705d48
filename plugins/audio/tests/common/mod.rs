//! Test helpers shared by the audio plugin's test binaries: the music plugin, loaded as the
//! dynamic library cargo builds for the dev-dependency (two plugins' `export_plugin!` statics share
//! symbol names, so both rlibs cannot be linked into one binary).

use commute_sdk::abi::client::Plugin;
use commute_sdk::testing::sibling_plugin;
use commute_sdk::{Context, Value};
use std::sync::OnceLock;

/// The music plugin's library, from this test binary's folder (`target/<profile>/deps`).
pub fn music() -> &'static Plugin {
    static MUSIC: OnceLock<Plugin> = OnceLock::new();
    MUSIC.get_or_init(|| sibling_plugin("commute_plugin_music"))
}

/// Calls a music-plugin function; every item must succeed.
pub fn music_call(function: &str, params: &str, batch: &[Value]) -> Vec<Value> {
    let mut instance =
        music().open(function, params, &Context::default()).unwrap_or_else(|e| panic!("{function}: {e}"));
    let items = instance.call(batch).unwrap_or_else(|e| panic!("{function}: {e}"));
    items.into_iter().map(|item| item.unwrap_or_else(|e| panic!("{function}: {e}"))).collect()
}
