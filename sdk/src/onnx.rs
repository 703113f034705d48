//! ONNX Runtime for plugins: the runtime library as a declared asset, one environment per plugin
//! library, and sessions sized to the host's thread budget (feature `onnx`).
//!
//! A function that runs an ONNX model lists [`ONNXRUNTIME`] and its model among its assets and
//! opens a session in [`Function::open`](crate::Function::open):
//!
//! ```text
//! const ASSETS: &'static [AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, MODEL];
//! fn open(params: P, ctx: &Context) -> Result<Self> {
//!     let session = commute_sdk::onnx::session(ctx, ctx.asset(MODEL.name.as_ref())?)?;
//!     …
//! }
//! ```
//!
//! `ort` is re-exported so that plugins use the same version as the SDK.

pub use ort;

use crate::{AssetSpec, Context, Result};
use anyhow::{anyhow, Context as _};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::Path;
use std::sync::OnceLock;

/// ONNX Runtime 1.31.1, the shared library from its Linux x86-64 wheel (what `ort` 2.0.0-rc.15's
/// API 31 expects).
pub const ONNXRUNTIME: AssetSpec = AssetSpec::pypi(
    "onnxruntime",
    "onnxruntime",
    "1.31.1",
    "onnxruntime/capi/libonnxruntime.so.1.31.1",
    "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    29_352_200,
    "MIT",
);

static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// This library's ONNX Runtime environment, loading the runtime from the [`ONNXRUNTIME`] asset on
/// first use.
pub fn environment(ctx: &Context) -> Result<&'static Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let library = ctx.asset(ONNXRUNTIME.name.as_ref()).map_err(|e| e.to_string())?;
        let builder = ort::init_from(library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?;
        builder
            .with_name("commute")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    });
    env.as_ref().map_err(|e| anyhow!("{e}"))
}

/// Opens an ONNX model with `ctx.threads` intra-op threads and full graph optimisation, on the
/// context's device (`cuda:N` needs the `cuda` feature and a CUDA build of the runtime).
pub fn session(ctx: &Context, model: &Path) -> Result<Session> {
    builder(ctx)?
        .commit_from_file(model)
        .with_context(|| format!("cannot load the ONNX model {}", model.display()))
}

/// Like [`session`], for a model held in memory (e.g. one edited to expose an inner tensor).
pub fn session_from_memory(ctx: &Context, model: &[u8]) -> Result<Session> {
    builder(ctx)?.commit_from_memory(model).context("cannot load the ONNX model from memory")
}

fn builder(ctx: &Context) -> Result<ort::session::builder::SessionBuilder> {
    let env = environment(ctx)?;
    let threads = ctx.threads.max(1);
    let configure = |e: ort::Error<_>| anyhow!("cannot configure an ONNX Runtime session: {e}");
    let builder = Session::builder(env)
        .map_err(|e| anyhow!("{e}"))?
        .with_intra_threads(threads)
        .map_err(configure)?
        .with_inter_threads(1)
        .map_err(configure)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(configure)?;
    with_device(builder, ctx)
}

#[cfg(feature = "cuda")]
fn with_device(
    builder: ort::session::builder::SessionBuilder,
    ctx: &Context,
) -> Result<ort::session::builder::SessionBuilder> {
    match ctx.cuda_device() {
        None => Ok(builder),
        Some(id) => builder
            .with_execution_providers([ort::ep::CUDA::default()
                .with_device_id(i32::try_from(id).unwrap_or(0))
                .build()
                .error_on_failure()])
            .map_err(|e| anyhow!("cannot use CUDA device {id} with ONNX Runtime: {e}")),
    }
}

#[cfg(not(feature = "cuda"))]
fn with_device(
    builder: ort::session::builder::SessionBuilder,
    ctx: &Context,
) -> Result<ort::session::builder::SessionBuilder> {
    match ctx.cuda_device() {
        None => Ok(builder),
        Some(_) => Err(anyhow!(
            "device `{}` asked for, but this plugin was built without the `cuda` feature",
            ctx.device
        )),
    }
}
