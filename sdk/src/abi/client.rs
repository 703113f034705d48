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

    /// Opens `function` with parameters given as TOML text. Assets the function asks for are
    /// taken from the default asset store (fetched there when missing; needs the SDK's `fetch`
    /// feature) unless `ctx` already provides them.
    pub fn open(&self, function: &str, params_toml: &str, ctx: &Context) -> Result<Instance, CallError> {
        #[cfg(feature = "fetch")]
        {
            self.open_with(function, params_toml, ctx, Some(&crate::asset::AssetStore::from_env()))
        }
        #[cfg(not(feature = "fetch"))]
        {
            self.open_inner(function, params_toml, ctx, &mut |_| None)
        }
    }

    /// Opens `function`, providing the assets it asks for from `store`: those already verified
    /// there up front, the others fetched when `open` asks for them (so only the assets its
    /// parameters use are fetched).
    #[cfg(feature = "fetch")]
    pub fn open_with(
        &self,
        function: &str,
        params_toml: &str,
        ctx: &Context,
        store: Option<&crate::asset::AssetStore>,
    ) -> Result<Instance, CallError> {
        let mut ctx = ctx.clone();
        if let (Some(store), Some(spec)) = (store, self.manifest.function(function)) {
            for asset in &spec.assets {
                if !ctx.assets.contains_key(asset.name.as_ref())
                    && store.status(asset).is_ok_and(|s| s == crate::asset::AssetStatus::Ready)
                {
                    ctx.assets.insert(asset.name.to_string(), store.path_of(asset));
                }
            }
        }
        self.open_inner(function, params_toml, &ctx, &mut |asset| {
            Some(match store {
                Some(store) => store.ensure(asset).map_err(|e| e.to_string()),
                None => Err(format!("asset `{}` is needed and no asset store is available", asset.name)),
            })
        })
    }

    /// Opens, answering each request for a declared asset with `provide` and opening again.
    fn open_inner(
        &self,
        function: &str,
        params_toml: &str,
        ctx: &Context,
        provide: &mut dyn FnMut(&crate::AssetSpec) -> Option<Result<std::path::PathBuf, String>>,
    ) -> Result<Instance, CallError> {
        let plugin = self.manifest.name.clone();
        let Some(spec) = self.manifest.function(function).cloned() else {
            let known: Vec<&str> = self.manifest.functions.iter().map(|f| f.name.as_str()).collect();
            return Err(CallError::UnknownFunction {
                plugin,
                function: function.to_owned(),
                known: known.join(", "),
            });
        };
        let asset_error = |message: String| CallError::Asset {
            plugin: plugin.clone(),
            function: function.to_owned(),
            message,
        };
        let mut ctx = std::borrow::Cow::Borrowed(ctx);
        // Each round provides one more asset; a function asks for each at most once.
        for _ in 0..=spec.assets.len() {
            let context = serde_json::to_string(ctx.as_ref()).map_err(|e| CallError::Protocol {
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
                RResult::RErr(e) if FfiErrorKind::from_tag(e.kind) == FfiErrorKind::MissingAsset => {
                    let name = e.message.into_string();
                    let Some(asset) = spec.assets.iter().find(|a| a.name == name.as_str()) else {
                        return Err(asset_error(format!(
                            "asks for asset `{name}`, which it does not declare in `const ASSETS`"
                        )));
                    };
                    if ctx.assets.contains_key(&name) {
                        return Err(asset_error(format!("asks again for asset `{name}`, already provided")));
                    }
                    let path = match provide(asset) {
                        Some(Ok(path)) => path,
                        Some(Err(message)) => return Err(asset_error(message)),
                        None => {
                            return Err(asset_error(format!(
                                "needs asset `{name}`; build the host with commute-sdk's `fetch` feature \
                                 to fetch it, or provide its path in the context"
                            )))
                        }
                    };
                    ctx.to_mut().assets.insert(name, path);
                    continue;
                }
                RResult::RErr(e) => return Err(call_error(&plugin, function, e)),
            };
            let info: serde_json::Value = serde_json::from_str(instance.info.as_str()).unwrap_or_default();
            let dim = info.get("dim").and_then(serde_json::Value::as_u64).map(|d| d as usize);
            // Plugins built before ABI 1.2 never say: their encoders pool.
            let frame_rate = info.get("frame-rate").and_then(serde_json::Value::as_f64);
            return Ok(Instance {
                function: instance.function,
                out: RVec::new(),
                plugin,
                spec,
                dim,
                frame_rate,
            });
        }
        Err(asset_error("kept asking for assets".to_owned()))
    }
}

/// Results kept in [`Instance`]'s buffer between calls at most (a batch's worth; a source's whole
/// data set is let go).
const KEEP_RESULT_CAPACITY: usize = 4096;

/// An open function, ready to be called on batches.
pub struct Instance {
    function: FfiFunctionBox,
    /// The result buffer the plugin fills, reused from call to call.
    out: RVec<FfiItem>,
    plugin: String,
    spec: FunctionSpec,
    dim: Option<usize>,
    frame_rate: Option<f64>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin)
            .field("function", &self.spec.name)
            .field("dim", &self.dim)
            .field("frame_rate", &self.frame_rate)
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

    /// An encoder's embedding dimension (floats per frame for a frame-level encoder).
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// A frame-level encoder's frames per second: its items are [`Sequence`](crate::Sequence)s.
    pub fn frame_rate(&self) -> Option<f64> {
        self.frame_rate
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
        self.call_wire(&refs)?;
        let mut items = std::mem::take(&mut self.out);
        let results = items
            .drain(..)
            .map(|item| match item {
                RResult::ROk(v) => v.into_value().map(Ok).map_err(|e| self.protocol(format!("returned {e}"))),
                RResult::RErr(e) => Ok(Err(e.into_string())),
            })
            .collect();
        // Keep the buffer for the next batch, unless a source's whole data set made it large.
        if items.capacity() <= KEEP_RESULT_CAPACITY {
            self.out = items;
        }
        results
    }

    /// Calls the function on values already in wire form (the lowest-overhead path).
    ///
    /// The results land in a buffer the instance keeps and the plugin fills (nothing is allocated
    /// per call once it has grown); take them from the returned vector before the next call.
    pub fn call_wire(&mut self, batch: &[FfiValueRef<'_>]) -> Result<&mut RVec<FfiItem>, CallError> {
        self.out.clear();
        match self.function.call_into(RSlice::from_slice(batch), &mut self.out) {
            RResult::ROk(()) => Ok(&mut self.out),
            RResult::RErr(e) => {
                self.out.clear();
                Err(call_error(&self.plugin, &self.spec.name, e))
            }
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
        FfiErrorKind::MissingAsset => CallError::Asset {
            plugin,
            function,
            message: format!("needs asset `{message}`, which was not provided"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{FfiFunction, FfiFunction_TO, FfiValue};
    use crate::function::FunctionKind;
    use crate::value::{Tensor, ValueKind};
    use abi_stable::sabi_trait::TD_Opaque;
    use abi_stable::std_types::{RErr, ROk};

    fn tensor(x: f32) -> FfiItem {
        ROk(FfiValue::from_value(Value::Tensor(Tensor::vector(vec![x]))))
    }

    /// A function as a plugin built before ABI 1.1 has it: `call` only, so `call_into` is the
    /// trait's default.
    struct Returning;

    impl FfiFunction for Returning {
        fn call(&mut self, batch: RSlice<'_, FfiValueRef<'_>>) -> RResult<RVec<FfiItem>, FfiError> {
            if batch.len() > 2 {
                return RErr(FfiError::new(FfiErrorKind::BadInput, "at most two"));
            }
            ROk((0..batch.len()).map(|i| tensor(i as f32)).collect())
        }
    }

    /// Fills the host's buffer, and fails after pushing one item when given three.
    struct Filling;

    impl FfiFunction for Filling {
        fn call(&mut self, _: RSlice<'_, FfiValueRef<'_>>) -> RResult<RVec<FfiItem>, FfiError> {
            unreachable!("the host calls call_into")
        }

        fn call_into(
            &mut self,
            batch: RSlice<'_, FfiValueRef<'_>>,
            out: &mut RVec<FfiItem>,
        ) -> RResult<(), FfiError> {
            for i in 0..batch.len() {
                if i == 1 && batch.len() == 3 {
                    return RErr(FfiError::new(FfiErrorKind::Failed, "half way"));
                }
                out.push(tensor(10.0 + i as f32));
            }
            ROk(())
        }
    }

    fn instance(function: impl FfiFunction + 'static) -> Instance {
        let spec = FunctionSpec {
            name: "f".into(),
            kind: FunctionKind::Operator,
            input: Some(ValueKind::Tensor),
            output: ValueKind::Tensor,
            doc: String::new(),
            params: vec![],
            assets: vec![],
            cuda: false,
            version: None,
        };
        Instance {
            function: FfiFunction_TO::from_value(function, TD_Opaque),
            out: RVec::new(),
            plugin: "p".into(),
            spec,
            dim: None,
            frame_rate: None,
        }
    }

    fn firsts(results: Vec<ItemResult>) -> Vec<f32> {
        results.into_iter().map(|r| r.unwrap().as_tensor().unwrap().data[0]).collect()
    }

    #[test]
    fn a_plugin_without_call_into_is_called_through_call() {
        let mut f = instance(Returning);
        let x = Value::Tensor(Tensor::vector(vec![1.0]));
        assert_eq!(firsts(f.call(&[x.clone(), x.clone()]).unwrap()), vec![0.0, 1.0]);
        assert_eq!(firsts(f.call(std::slice::from_ref(&x)).unwrap()), vec![0.0]);
        let err = f.call(&[x.clone(), x.clone(), x]).unwrap_err();
        assert!(matches!(err, CallError::BadInput { .. }), "{err:?}");
    }

    #[test]
    fn the_reused_buffer_never_leaks_items_into_the_next_call() {
        let mut f = instance(Filling);
        let x = Value::Tensor(Tensor::vector(vec![1.0]));
        assert_eq!(firsts(f.call(&[x.clone(), x.clone()]).unwrap()), vec![10.0, 11.0]);
        // A whole-call failure after one item was pushed: nothing of it reaches the next call.
        let err = f.call(&[x.clone(), x.clone(), x.clone()]).unwrap_err();
        assert!(matches!(err, CallError::Failed { ref message, .. } if message == "half way"), "{err:?}");
        assert!(f.out.is_empty());
        assert_eq!(firsts(f.call(std::slice::from_ref(&x)).unwrap()), vec![10.0]);
        assert_eq!(f.call_wire(&[]).unwrap().len(), 0);
    }
}
