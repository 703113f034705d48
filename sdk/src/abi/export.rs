//! The plugin side of the ABI: turns the authoring traits into a root module, with every entry
//! point guarded against panics. Used through [`export_plugin!`](crate::export_plugin).

use super::{
    FfiError, FfiErrorKind, FfiFunction_TO, FfiHost, FfiInstance, FfiItem, FfiValue, FfiValueRef,
    PluginModule, PluginModuleRef,
};
use crate::function::{Encoder, FromValue, Function, FunctionKind, IntoValue, Operator, Render, Source};
use crate::manifest::{FunctionSpec, Manifest};
use crate::panic_guard::{guard, CaughtPanic};
use crate::value::{Sequence, Tensor, Value, ValueKind};
use crate::{params, Context};
use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RString, RVec};

/// What `export_plugin!` declares: the plugin's identity and its functions.
#[doc(hidden)]
pub struct PluginDef {
    pub name: &'static str,
    pub version: &'static str,
    pub modality: &'static str,
    pub doc: &'static str,
    pub functions: Vec<FunctionEntry>,
}

/// Implemented by the type `export_plugin!` generates.
#[doc(hidden)]
pub trait PluginDefinition: 'static {
    fn definition() -> PluginDef;
}

type OpenFn = fn(&str, &Context, Names) -> Result<FfiInstance, FfiError>;

/// Plugin and function names, carried by each instance for its messages.
#[derive(Clone, Copy)]
struct Names {
    plugin: &'static str,
    function: &'static str,
}

/// One registered function: its name, how to describe it, how to open it.
#[doc(hidden)]
pub struct FunctionEntry {
    name: &'static str,
    spec: fn(&'static str) -> FunctionSpec,
    open: OpenFn,
}

/// Why a whole call failed, boxed so that the hot path moves a pointer-sized result, not an
/// error's three fields (the full [`FfiError`] is built only at the boundary, on failure).
type CallFailure = Box<FfiError>;

/// A live function of one of the four kinds, seen the same way.
trait Erased: Send + 'static {
    /// Appends one result per input (or a source's items) to `out`.
    fn call_into(&mut self, batch: &[FfiValueRef<'_>], out: &mut RVec<FfiItem>) -> Result<(), CallFailure>;
    fn info(&self) -> serde_json::Value;
}

fn spec_of<F: Function>(
    name: &'static str,
    kind: FunctionKind,
    input: Option<ValueKind>,
    output: ValueKind,
) -> FunctionSpec {
    FunctionSpec {
        name: name.to_owned(),
        kind,
        input,
        output,
        doc: F::DOC.to_owned(),
        params: params::describe::<F::Params>(),
        assets: F::ASSETS.to_vec(),
        cuda: F::CUDA,
        version: Some(F::VERSION),
    }
}

fn open_with<F: Function>(text: &str, ctx: &Context) -> Result<F, FfiError> {
    let params = params::parse::<F::Params>(text).map_err(|e| FfiError::new(FfiErrorKind::BadParams, e))?;
    F::open(params, ctx).map_err(|e| {
        if let Some(missing) = e.downcast_ref::<crate::context::MissingAsset>() {
            FfiError::new(FfiErrorKind::MissingAsset, missing.0.clone())
        } else if e.downcast_ref::<crate::context::DeviceError>().is_some() {
            // Not the parameters' fault: the same parameters open on another device.
            FfiError::new(FfiErrorKind::Failed, format!("{e:#}"))
        } else {
            FfiError::new(FfiErrorKind::BadParams, format!("{e:#}"))
        }
    })
}

#[inline]
fn views<'a, I: FromValue<'a>>(batch: &[FfiValueRef<'a>]) -> Result<Vec<I>, CallFailure> {
    let mut out = Vec::with_capacity(batch.len());
    for (i, v) in batch.iter().enumerate() {
        let view = v.view().and_then(|view| {
            if I::KIND.accepts(view.kind()) {
                I::from_value(view)
            } else {
                Err(format!("expected a {} value, got {}", I::KIND, view.kind()))
            }
        });
        out.push(view.map_err(|e| FfiError::new(FfiErrorKind::BadInput, format!("item {i}: {e}")))?);
    }
    Ok(out)
}

#[inline]
fn check_count<T>(results: &[T], expected: usize) -> Result<(), CallFailure> {
    if results.len() == expected {
        Ok(())
    } else {
        Err(FfiError::new(
            FfiErrorKind::Failed,
            format!("returned {} results for a batch of {expected} items", results.len()),
        )
        .into())
    }
}

#[inline]
fn item<O: IntoValue>(result: crate::Result<O>) -> FfiItem {
    match result {
        Ok(v) => ROk(FfiValue::from_value(v.into_value())),
        Err(e) => RErr(RString::from(format!("{e:#}"))),
    }
}

/// Appends results to the wire batch `out`, converted in place (no intermediate vector).
#[inline]
fn wire_items<T>(out: &mut RVec<FfiItem>, results: Vec<T>, mut convert: impl FnMut(T) -> FfiItem) {
    out.reserve(results.len());
    for r in results {
        out.push(convert(r));
    }
}

struct EncoderFn<E>(E);

impl<E: Encoder> Erased for EncoderFn<E> {
    #[inline]
    fn call_into(&mut self, batch: &[FfiValueRef<'_>], out: &mut RVec<FfiItem>) -> Result<(), CallFailure> {
        let items = views::<E::Input<'_>>(batch)?;
        let dim = self.0.dim();
        let frame_rate = self.0.frame_rate();
        let results = self.0.encode_batch(items);
        check_count(&results, batch.len())?;
        wire_items(out, results, |r| match (r, frame_rate) {
            (Ok(v), None) if v.len() == dim => ROk(FfiValue::from_value(Value::Tensor(Tensor::vector(v)))),
            (Ok(v), None) => {
                RErr(RString::from(format!("returned {} floats, but its dimension is {dim}", v.len())))
            }
            (Ok(data), Some(frame_rate)) => match Sequence::check(frame_rate, dim, data.len()) {
                Ok(()) => ROk(FfiValue::from_value(Value::Sequence(Sequence { frame_rate, dim, data }))),
                Err(e) => RErr(RString::from(format!("returned a bad sequence: {e}"))),
            },
            (Err(e), _) => RErr(RString::from(format!("{e:#}"))),
        });
        Ok(())
    }

    fn info(&self) -> serde_json::Value {
        match self.0.frame_rate() {
            None => serde_json::json!({ "dim": self.0.dim() }),
            Some(rate) => serde_json::json!({ "dim": self.0.dim(), "frame-rate": rate }),
        }
    }
}

struct OperatorFn<O>(O);

impl<O: Operator> Erased for OperatorFn<O> {
    #[inline]
    fn call_into(&mut self, batch: &[FfiValueRef<'_>], out: &mut RVec<FfiItem>) -> Result<(), CallFailure> {
        let items = views::<O::Input<'_>>(batch)?;
        let results = self.0.apply_batch(items);
        check_count(&results, batch.len())?;
        wire_items(out, results, item);
        Ok(())
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

struct RenderFn<R>(R);

impl<R: Render> Erased for RenderFn<R> {
    #[inline]
    fn call_into(&mut self, batch: &[FfiValueRef<'_>], out: &mut RVec<FfiItem>) -> Result<(), CallFailure> {
        let items = views::<R::Input<'_>>(batch)?;
        let results = self.0.render_batch(items);
        check_count(&results, batch.len())?;
        wire_items(out, results, item);
        Ok(())
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

struct SourceFn<S>(S);

impl<S: Source> Erased for SourceFn<S> {
    #[inline]
    fn call_into(&mut self, batch: &[FfiValueRef<'_>], out: &mut RVec<FfiItem>) -> Result<(), CallFailure> {
        if !batch.is_empty() {
            return Err(FfiError::new(
                FfiErrorKind::BadInput,
                format!("a source takes no inputs, got {}", batch.len()),
            )
            .into());
        }
        let items = self.0.items().map_err(|e| FfiError::new(FfiErrorKind::Failed, format!("{e:#}")))?;
        wire_items(out, items, |v| ROk(FfiValue::from_value(v.into_value())));
        Ok(())
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

fn input_kind<'a, I: FromValue<'a>>() -> ValueKind {
    I::KIND
}

impl FunctionEntry {
    /// Registers an encoder.
    pub fn encoder<E: Encoder>(name: &'static str) -> FunctionEntry {
        FunctionEntry {
            name,
            spec: |n| {
                spec_of::<E>(
                    n,
                    FunctionKind::Encoder,
                    Some(input_kind::<E::Input<'static>>()),
                    ValueKind::Tensor,
                )
            },
            open: |p, c, names| Ok(instance(EncoderFn(open_with::<E>(p, c)?), names)),
        }
    }

    /// Registers an operator.
    pub fn operator<O: Operator>(name: &'static str) -> FunctionEntry {
        FunctionEntry {
            name,
            spec: |n| {
                spec_of::<O>(
                    n,
                    FunctionKind::Operator,
                    Some(input_kind::<O::Input<'static>>()),
                    O::Output::KIND,
                )
            },
            open: |p, c, names| Ok(instance(OperatorFn(open_with::<O>(p, c)?), names)),
        }
    }

    /// Registers a render function.
    pub fn render<R: Render>(name: &'static str) -> FunctionEntry {
        FunctionEntry {
            name,
            spec: |n| {
                spec_of::<R>(
                    n,
                    FunctionKind::Render,
                    Some(input_kind::<R::Input<'static>>()),
                    R::Output::KIND,
                )
            },
            open: |p, c, names| Ok(instance(RenderFn(open_with::<R>(p, c)?), names)),
        }
    }

    /// Registers a source.
    pub fn source<S: Source>(name: &'static str) -> FunctionEntry {
        FunctionEntry {
            name,
            spec: |n| spec_of::<S>(n, FunctionKind::Source, None, S::Output::KIND),
            open: |p, c, names| Ok(instance(SourceFn(open_with::<S>(p, c)?), names)),
        }
    }
}

/// An open function behind the FFI trait: guards each call, and poisons itself after a panic.
/// Generic over the function, so that a call compiles to one function with no dynamic dispatch
/// beyond the FFI vtable.
struct Guarded<E> {
    names: Names,
    inner: Option<E>,
    poisoned: bool,
}

fn instance<E: Erased>(inner: E, names: Names) -> FfiInstance {
    let info = inner.info().to_string();
    let guarded = Guarded { names, inner: Some(inner), poisoned: false };
    FfiInstance { function: FfiFunction_TO::from_value(guarded, TD_Opaque), info: RString::from(info) }
}

fn panic_error(caught: CaughtPanic) -> FfiError {
    FfiError {
        kind: FfiErrorKind::Panic as u8,
        message: caught.message.into(),
        location: caught.location.into(),
    }
}

impl<E: Erased> Guarded<E> {
    /// The guarded call both ABI entries share: poisoned instances refuse, panics poison.
    #[inline]
    fn guarded_into(
        &mut self,
        batch: &[FfiValueRef<'_>],
        out: &mut RVec<FfiItem>,
    ) -> Result<(), CallFailure> {
        let Some(inner) = self.inner.as_mut().filter(|_| !self.poisoned) else {
            return Err(FfiError::new(
                FfiErrorKind::Poisoned,
                format!("`{}/{}` panicked earlier", self.names.plugin, self.names.function),
            )
            .into());
        };
        match guard(|| inner.call_into(batch, out)) {
            Ok(result) => result,
            Err(caught) => {
                self.poisoned = true;
                Err(panic_error(caught).into())
            }
        }
    }
}

impl<E: Erased> super::FfiFunction for Guarded<E> {
    fn call(&mut self, batch: RSlice<'_, FfiValueRef<'_>>) -> RResult<RVec<FfiItem>, FfiError> {
        let mut out = RVec::new();
        match self.guarded_into(batch.as_slice(), &mut out) {
            Ok(()) => ROk(out),
            Err(e) => RErr(*e),
        }
    }

    fn call_into(
        &mut self,
        batch: RSlice<'_, FfiValueRef<'_>>,
        out: &mut RVec<FfiItem>,
    ) -> RResult<(), FfiError> {
        match self.guarded_into(batch.as_slice(), out) {
            Ok(()) => ROk(()),
            Err(e) => RErr(*e),
        }
    }
}

impl<E> Drop for Guarded<E> {
    fn drop(&mut self) {
        // A panicking destructor must not unwind into the host either.
        let inner = self.inner.take();
        let _ = guard(move || drop(inner));
    }
}

fn flatten<T>(result: Result<Result<T, FfiError>, CaughtPanic>) -> RResult<T, FfiError> {
    match result {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(e),
        Err(caught) => RErr(panic_error(caught)),
    }
}

extern "C" fn init(host: FfiHost) -> RResult<(), FfiError> {
    crate::panic_guard::install_in_library();
    flatten(guard(|| {
        let forwarder = crate::log_forward::Forwarder {
            sink: move |level: u8, target: &str, message: &str| {
                (host.log)(level, target.into(), message.into())
            },
            max_level: host.max_level,
        };
        // Only the first init of this library's own `tracing` copy can install it.
        let _ = tracing::subscriber::set_global_default(forwarder);
        Ok(())
    }))
}

/// Builds the manifest of a plugin definition.
pub(crate) fn manifest_of<P: PluginDefinition>() -> Manifest {
    let def = P::definition();
    Manifest {
        name: def.name.to_owned(),
        version: def.version.to_owned(),
        modality: def.modality.to_owned(),
        doc: def.doc.to_owned(),
        sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        functions: def.functions.iter().map(|f| (f.spec)(f.name)).collect(),
    }
}

extern "C" fn manifest<P: PluginDefinition>() -> RResult<RString, FfiError> {
    flatten(guard(|| {
        serde_json::to_string(&manifest_of::<P>())
            .map(RString::from)
            .map_err(|e| FfiError::new(FfiErrorKind::Failed, format!("cannot serialise the manifest: {e}")))
    }))
}

extern "C" fn open<P: PluginDefinition>(
    function: RStr<'_>,
    params: RStr<'_>,
    context: RStr<'_>,
) -> RResult<FfiInstance, FfiError> {
    flatten(guard(|| {
        let def = P::definition();
        let Some(entry) = def.functions.iter().find(|f| f.name == function.as_str()) else {
            let known: Vec<&str> = def.functions.iter().map(|f| f.name).collect();
            return Err(FfiError::new(
                FfiErrorKind::UnknownFunction,
                format!("no function `{function}`; known: {}", known.join(", ")),
            ));
        };
        let ctx: Context = serde_json::from_str(context.as_str()).map_err(|e| {
            FfiError::new(FfiErrorKind::Failed, format!("unreadable context from the host: {e}"))
        })?;
        (entry.open)(params.as_str(), &ctx, Names { plugin: def.name, function: entry.name })
    }))
}

/// The root module of plugin `P` (leaked once per call; the loader calls it once).
#[doc(hidden)]
pub fn root_module<P: PluginDefinition>() -> PluginModuleRef {
    PluginModule { init, manifest: manifest::<P>, open: open::<P> }.leak_into_prefix()
}

extern "C" fn load_root_module<P: PluginDefinition>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<P>)
}

/// The header abi_stable's loader reads, pointing at plugin `P`'s root module.
#[doc(hidden)]
#[allow(unsafe_code)]
pub const fn lib_header<P: PluginDefinition>() -> LibHeader {
    // SAFETY: the constructor returns a `PrefixRef` made from a `PluginModuleRef`, as required.
    unsafe { LibHeader::from_constructor::<PluginModuleRef>(load_root_module::<P>, CheckTypeLayout::Yes) }
}
