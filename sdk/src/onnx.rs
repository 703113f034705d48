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
//!
//! On a CUDA device (`ctx.device = "cuda:N"`, feature `cuda`) sessions use ONNX Runtime's CUDA
//! execution provider, which the [`ONNXRUNTIME`] asset (the CPU build) does not have. The GPU
//! build comes as the `onnxruntime-gpu` wheel of the same version, whose
//! `onnxruntime/capi/` folder holds `libonnxruntime.so.1.31.1` with
//! `libonnxruntime_providers_cuda.so` and `libonnxruntime_providers_shared.so` beside it. The
//! wheel is built for CUDA 13: its CUDA provider loads CUDA 13's runtime, cuBLAS, cuFFT, cuRAND
//! and cuDNN 9 (the wheels its `cuda` and `cudnn` extras bring, or a system install) through the
//! dynamic loader's search path.
//! Point [`GPU_RUNTIME_ENV`] at that `libonnxruntime.so.1.31.1` (`scripts/bench-gpu.sh` installs
//! it all with pip into a virtual environment and sets the variables).

pub use ort;

use crate::{AssetSpec, Context, Result};
use anyhow::{anyhow, Context as _};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
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

/// The environment variable naming a GPU build of the ONNX Runtime library: the
/// `onnxruntime/capi/libonnxruntime.so.1.31.1` of the `onnxruntime-gpu` 1.31.1 wheel, with its
/// provider libraries beside it. A plugin built with the `cuda` feature loads it instead of the
/// [`ONNXRUNTIME`] asset (for every session, CPU ones included); other builds ignore it.
pub const GPU_RUNTIME_ENV: &str = "COMMUTE_ONNXRUNTIME_GPU";

static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The ONNX Runtime library to load: the GPU build [`GPU_RUNTIME_ENV`] names (feature `cuda`),
/// else the [`ONNXRUNTIME`] asset. A missing asset is the SDK's "missing asset" error, so that
/// the host fetches it and opens the function again.
fn runtime_library(ctx: &Context) -> Result<PathBuf> {
    if cfg!(feature = "cuda") {
        if let Some(path) = std::env::var_os(GPU_RUNTIME_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
    }
    Ok(ctx.asset(ONNXRUNTIME.name.as_ref())?.to_path_buf())
}

/// What to do when the CUDA provider cannot be used: name the GPU build when it is not loaded.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn gpu_runtime_hint() -> String {
    match std::env::var_os(GPU_RUNTIME_ENV).filter(|p| !p.is_empty()) {
        Some(path) => {
            format!(" (ONNX Runtime loaded from {GPU_RUNTIME_ENV}={})", PathBuf::from(path).display())
        }
        None => format!(
            " (the `onnxruntime` asset is ONNX Runtime's CPU build: set {GPU_RUNTIME_ENV} to \
             onnxruntime/capi/libonnxruntime.so.1.31.1 of the `onnxruntime-gpu` 1.31.1 wheel, with \
             CUDA 13 and cuDNN 9 on the library path; see scripts/bench-gpu.sh)"
        ),
    }
}

/// This library's ONNX Runtime environment, loading the runtime on first use (see
/// [`GPU_RUNTIME_ENV`] for the GPU build).
pub fn environment(ctx: &Context) -> Result<&'static Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return env.as_ref().map_err(|e| anyhow!("{e}"));
    }
    // Outside `get_or_init`, so that a missing asset reaches the host as such (it fetches the
    // runtime and opens the function again) instead of being kept as this library's failure.
    let library = runtime_library(ctx)?;
    let env = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(&library)
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
            .map_err(|e| {
                ctx.device_error(format!(
                    "ONNX Runtime cannot use CUDA device {id}: {e}{}",
                    gpu_runtime_hint()
                ))
            }),
    }
}

#[cfg(not(feature = "cuda"))]
fn with_device(
    builder: ort::session::builder::SessionBuilder,
    ctx: &Context,
) -> Result<ort::session::builder::SessionBuilder> {
    match ctx.cuda_device() {
        None => Ok(builder),
        Some(_) => Err(ctx.device_error("this plugin was built without the `cuda` feature")),
    }
}

/// A model file's bytes, rewritten where needed so that `output` — a declared output or any
/// tensor a node of the graph produces (a layer's states) — is an output; and that tensor's name
/// (default: the first declared output). A name the model does not have is refused with its
/// declared outputs and the tensor names that look alike.
pub fn model_reading(path: &str, output: Option<&str>) -> Result<(Vec<u8>, String)> {
    let wanted: Vec<String> = output.map(str::to_owned).into_iter().collect();
    let (bytes, mut names) = model_reading_all(path, &wanted)?;
    let name = names.pop().ok_or_else(|| anyhow!("{path} declares no output"))?;
    Ok((bytes, name))
}

/// [`model_reading`] for several tensors at once: the model's bytes with every name in `outputs`
/// an output, and those names (default, when `outputs` is empty: the first declared output).
pub fn model_reading_all(path: &str, outputs: &[String]) -> Result<(Vec<u8>, Vec<String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the model {path}"))?;
    let declared =
        crate::onnx_graph::output_names(&bytes).with_context(|| format!("{path} is not an ONNX model"))?;
    if outputs.is_empty() {
        let first = declared.first().cloned().ok_or_else(|| anyhow!("{path} declares no output"))?;
        return Ok((bytes, vec![first]));
    }
    if outputs.iter().all(|o| declared.contains(o)) {
        return Ok((bytes, outputs.to_vec()));
    }
    let produced = crate::onnx_graph::produced_names(&bytes)?;
    if let Some(missing) = outputs.iter().find(|o| !declared.contains(o) && !produced.contains(o)) {
        return Err(anyhow!(
            "{path} has no tensor `{missing}`; its outputs are {declared:?}, and its nodes produce {} tensors{}",
            produced.len(),
            similar(missing, &produced)
        ));
    }
    let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let edited = crate::onnx_graph::with_outputs(&bytes, &names)?;
    Ok((edited, outputs.to_vec()))
}

/// Up to 8 tensor names containing `wanted` without its trailing number (case-insensitive;
/// `layer_norm_99` finds `layer_norm`, `layer_norm_1`…), for an error message.
fn similar(wanted: &str, names: &[String]) -> String {
    let stem = wanted.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches(['_', '.', '/']);
    let lower = if stem.is_empty() { wanted } else { stem }.to_lowercase();
    let close: Vec<&str> =
        names.iter().filter(|n| n.to_lowercase().contains(&lower)).take(8).map(String::as_str).collect();
    if close.is_empty() {
        String::new()
    } else {
        format!(", among them {close:?}")
    }
}

/// `v` scaled to unit length (a zero vector stays zero), as sentence-transformers' `Normalize`:
/// the `normalize` option of the generic ONNX encoders.
pub fn unit_length(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

/// A session's inputs and outputs with their types and shapes (`input_ids Tensor<i64>(dyn, dyn)`),
/// for messages that show what a model really takes and gives.
pub fn describe_io(session: &Session) -> String {
    let list = |outlets: &[ort::value::Outlet]| {
        outlets.iter().map(|o| format!("{} {}", o.name(), o.dtype())).collect::<Vec<_>>().join(", ")
    };
    format!("the model's inputs: {}; its outputs: {}", list(session.inputs()), list(session.outputs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_length_scales_to_norm_one_and_keeps_zero() {
        assert_eq!(unit_length(vec![3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(unit_length(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn a_missing_runtime_asset_is_asked_for_not_kept_as_a_failure() {
        // No test here provides the asset, so no runtime is ever loaded in this process.
        for _ in 0..2 {
            let err = environment(&Context::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("the host provided no asset `onnxruntime`"), "{err}");
            assert!(ENVIRONMENT.get().is_none(), "the failure is not kept: the next open tries again");
        }
        let missing = runtime_library(&Context::default()).unwrap_err();
        assert!(missing.downcast_ref::<crate::context::MissingAsset>().is_some(), "{missing}");
    }
}
