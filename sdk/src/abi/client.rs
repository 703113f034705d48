//! The host side of the ABI: a loaded plugin's root module wrapped as [`Plugin`], its open
//! functions as [`Instance`]s that take and return [`Value`]s and typed errors.

use super::{FfiError, FfiErrorKind, FfiFunctionBox, FfiItem, FfiValueRef, PluginModuleRef};
use crate::error::CallError;
use crate::manifest::{FunctionSpec, Manifest};
use crate::value::Value;
use crate::Context;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use std::sync::Arc;

/// A plugin whose root module is loaded (from a library, or linked in-process).
#[derive(Clone)]
pub struct Plugin {
    module: PluginModuleRef,
    manifest: Arc<Manifest>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.manifest.name).finish_non_exhaustive()
    }
}

/// The context with every asset the function declares: those the caller already provided, the
/// rest from the default asset store (fetched and verified there; needs the `fetch` feature).
fn provide_assets<'c>(
    plugin: &str,
    spec: &FunctionSpec,
    ctx: &'c Context,
) -> Result<std::borrow::Cow<'c, Context>, CallError> {
    let missing: Vec<_> = spec.assets.iter().filter(|a| !ctx.assets.contains_key(a.name.as_ref())).collect();
    if missing.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(ctx));
    }
    let error = |message: String| CallError::Asset {
        plugin: plugin.to_owned(),
        function: spec.name.clone(),
        message,
    };
    #[cfg(feature = "fetch")]
    {
        let store = crate::asset::AssetStore::from_env();
        let mut ctx = ctx.clone();
        for asset in missing {
            let path = store.ensure(asset).map_err(|e| error(e.to_string()))?;
            ctx.assets.insert(asset.name.to_string(), path);
        }
        Ok(std::borrow::Cow::Owned(ctx))
    }
    #[cfg(not(feature = "fetch"))]
    {
        let names: Vec<&str> = missing.iter().map(|a| a.name.as_ref()).collect();
        Err(error(format!(
            "needs the assets {} and none was provided; build with commute-sdk's `fetch` feature to              fetch them from the asset store",
            names.join(", ")
        )))
    }
}

/// Result of one item of a batch: a value, or why that item alone failed.
pub type ItemResult = Result<Value, String>;

impl Plugin {
    /// Reads the manifest of a root module. `init` is the log sink setup, done by the loader.
    pub fn from_module(module: PluginModuleRef) -> Result<Plugin, String> {
        let json = match (module.manifest())() {
            RResult::ROk(json) => json,
            RResult::RErr(e) => return Err(describe_ffi_error(&e)),
        };
        let manifest: Manifest =
            serde_json::from_str(json.as_str()).map_err(|e| format!("unreadable manifest: {e}"))?;
        Ok(Plugin { module, manifest: Arc::new(manifest) })
    }

    /// What the plugin declares.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Opens `function` with parameters given as TOML text.
    pub fn open(&self, function: &str, params_toml: &str, ctx: &Context) -> Result<Instance, CallError> {
        let plugin = self.manifest.name.clone();
        let Some(spec) = self.manifest.function(function).cloned() else {
            let known: Vec<&str> = self.manifest.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(CallError::UnknownFunction {
                plugin,
                function: function.to_owned(),
                known: known.join(", "),
            });
        };
        let ctx = provide_assets(&plugin, &spec, ctx)?;
        let context = serde_json::to_string(&ctx).map_err(|e| CallError::Protocol {
            plugin: plugin.clone(),
            function: function.to_owned(),
            message: format!("cannot serialise the context: {e}"),
        })?;
        let opened = (self.module.open())(
            RStr::from_str(function),
            RStr::from_str(params_toml),
            RStr::from_str(&context),
        );
        let instance = match opened {
            RResult::ROk(instance) => instance,
            RResult::RErr(e) => return Err(call_error(&plugin, function, e)),
        };
        let info: serde_json::Value = serde_json::from_str(instance.info.as_str()).unwrap_or_default();
        let dim = info.get("dim").and_then(serde_json::Value::as_u64).map(|d| d as usize);
        Ok(Instance { function: instance.function, plugin, spec, dim })
    }
}

/// An open function, ready to be called on batches.
pub struct Instance {
    function: FfiFunctionBox,
    plugin: String,
    spec: FunctionSpec,
    dim: Option<usize>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin)
            .field("function", &self.spec.name)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The function's signature and parameters.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// An encoder's embedding dimension.
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// Calls the function on a batch, borrowing the values (no copy of their buffers).
    ///
    /// A whole-call error means nothing was computed; otherwise there is one result per input
    /// (or, for a source called on an empty batch, one per item it produces).
    pub fn call(&mut self, batch: &[Value]) -> Result<Vec<ItemResult>, CallError> {
        // Scores travel packed; everything else is borrowed as is.
        let packed: Vec<Option<Vec<f32>>> = batch.iter().map(|v| v.as_score().map(|s| s.to_wire())).collect();
        let refs: Vec<FfiValueRef<'_>> =
            batch.iter().zip(&packed).map(|(v, p)| FfiValueRef::borrow(v, p.as_deref())).collect();
        let items = self.call_wire(&refs)?;
        items
            .into_iter()
            .map(|item| match item {
                RResult::ROk(v) => v.into_value().map(Ok).map_err(|e| self.protocol(format!("returned {e}"))),
                RResult::RErr(e) => Ok(Err(e.into_string())),
            })
            .collect()
    }

    /// Calls the function on values already in wire form (the lowest-overhead path).
    pub fn call_wire(&mut self, batch: &[FfiValueRef<'_>]) -> Result<RVec<FfiItem>, CallError> {
        match self.function.call(RSlice::from_slice(batch)) {
            RResult::ROk(items) => Ok(items),
            RResult::RErr(e) => Err(call_error(&self.plugin, &self.spec.name, e)),
        }
    }

    fn protocol(&self, message: String) -> CallError {
        CallError::Protocol { plugin: self.plugin.clone(), function: self.spec.name.clone(), message }
    }
}

fn describe_ffi_error(e: &FfiError) -> String {
    if e.location.is_empty() {
        e.message.to_string()
    } else {
        format!("panicked at {}: {}", e.location, e.message)
    }
}

fn call_error(plugin: &str, function: &str, e: FfiError) -> CallError {
    let (plugin, function) = (plugin.to_owned(), function.to_owned());
    let message = e.message.into_string();
    match FfiErrorKind::from_tag(e.kind) {
        FfiErrorKind::Panic => {
            CallError::Panicked { plugin, function, message, location: e.location.into_string() }
        }
        FfiErrorKind::Poisoned => CallError::Poisoned { plugin, function },
        FfiErrorKind::BadParams => CallError::BadParams { plugin, function, message },
        FfiErrorKind::BadInput => CallError::BadInput { plugin, function, message },
        FfiErrorKind::UnknownFunction => CallError::UnknownFunction { plugin, function, known: message },
        FfiErrorKind::Failed => CallError::Failed { plugin, function, message },
    }
}
