//! An in-process harness: calls a plugin linked as an rlib through the same ABI the host uses.

use crate::abi::client::{Instance, ItemResult, Plugin};
use crate::abi::PluginModuleRef;
use crate::{CallError, Context, Manifest, Value};

/// A plugin under test, called through its root module exactly as the host calls a library.
#[derive(Debug, Clone)]
pub struct Harness {
    plugin: Plugin,
    ctx: Context,
}

impl Harness {
    /// Wraps a root module (the `commute_plugin()` that `export_plugin!` defines).
    ///
    /// # Panics
    /// If the plugin cannot describe itself (a test failure).
    pub fn new(module: PluginModuleRef) -> Harness {
        crate::panic_guard::install_chained();
        match Plugin::from_module(module) {
            Ok(plugin) => Harness { plugin, ctx: Context::default() },
            Err(e) => panic!("the plugin's manifest is unusable: {e}"),
        }
    }

    /// Uses this context for every open (threads, device, cache folder).
    pub fn with_context(mut self, ctx: Context) -> Harness {
        self.ctx = ctx;
        self
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.plugin.manifest()
    }

    /// Opens a function with parameters as TOML text.
    pub fn open(&self, function: &str, params: &str) -> Result<Instance, CallError> {
        self.plugin.open(function, params, &self.ctx)
    }

    /// Opens a function and calls it once; every item must succeed.
    pub fn call(&self, function: &str, params: &str, batch: &[Value]) -> Result<Vec<Value>, CallError> {
        let mut instance = self.open(function, params)?;
        let items = instance.call(batch)?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                item.map_err(|message| CallError::Failed {
                    plugin: self.manifest().name.clone(),
                    function: function.to_owned(),
                    message: format!("item {i}: {message}"),
                })
            })
            .collect()
    }

    /// Opens a function and calls it once, keeping per-item results.
    pub fn call_items(
        &self,
        function: &str,
        params: &str,
        batch: &[Value],
    ) -> Result<Vec<ItemResult>, CallError> {
        self.open(function, params)?.call(batch)
    }
}
