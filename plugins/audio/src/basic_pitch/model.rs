//! The Basic Pitch network (`nmp.onnx`) as a declared asset, and batched inference: audio items
//! at any rate → posteriorgrams, with the windows of all items sharing ONNX Runtime batches.
//!
//! On 60 s of synthesized music the stitched posteriorgrams are identical (max difference 0) to
//! Python ONNX Runtime's on the package's own windows; `scripts/bench-basic-pitch.sh` checks this
//! on every run.

use super::posteriorgram::{Posteriorgrams, CONTOUR_BINS, KEYS};
use super::windows::{
    fill_window, frame_count, stitch_window, window_count, SAMPLE_RATE, WINDOW, WINDOW_FRAMES,
};
use crate::resample::convert;
use crate::signal::validate;
use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::TensorRef as OrtTensorRef;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::borrow::Cow;

/// Basic Pitch's ICASSP 2022 model as ONNX, from the `basic-pitch` 0.4.0 wheel (Apache-2.0).
pub const NMP: AssetSpec = AssetSpec::pypi(
    "basic-pitch-nmp-onnx",
    "basic-pitch",
    "0.4.0",
    "basic_pitch/saved_models/icassp_2022/nmp.onnx",
    "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec",
    230_444,
    "Apache-2.0",
);

/// Everything a Basic Pitch function needs: ONNX Runtime and the model.
pub const ASSETS: &[AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, NMP];

/// The model's input: `[windows, 43844, 1]` mono samples at 22 050 Hz.
const INPUT: &str = "serving_default_input_2:0";
/// Pitch contour output, `[windows, 172, 264]`.
const CONTOUR: &str = "StatefulPartitionedCall:0";
/// Note output, `[windows, 172, 88]`.
const NOTE: &str = "StatefulPartitionedCall:1";
/// Onset output, `[windows, 172, 88]`.
const ONSET: &str = "StatefulPartitionedCall:2";

/// Default number of windows per ONNX Runtime call.
pub const DEFAULT_BATCH_WINDOWS: usize = 8;
/// Largest number of windows per ONNX Runtime call (about 175 kB of input and 300 kB of output
/// each).
pub const MAX_BATCH_WINDOWS: usize = 256;

/// An open Basic Pitch model.
pub struct BasicPitch {
    session: Session,
    batch_windows: usize,
}

impl std::fmt::Debug for BasicPitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicPitch").field("batch_windows", &self.batch_windows).finish_non_exhaustive()
    }
}

/// One item on its way through the model.
struct Pending<'a> {
    samples: Cow<'a, [f32]>,
    out: Posteriorgrams,
}

impl BasicPitch {
    /// Opens the model from the context's assets ([`ASSETS`]) with `ctx.threads` threads, running
    /// at most `batch_windows` (1–256) two-second windows per call. Outside a host (in tests),
    /// fill `ctx.assets` from `commute_sdk::asset::AssetStore` (commute-sdk feature `fetch`).
    pub fn open(ctx: &Context, batch_windows: usize) -> Result<BasicPitch> {
        ensure!(
            (1..=MAX_BATCH_WINDOWS).contains(&batch_windows),
            "batch-windows must be within 1..={MAX_BATCH_WINDOWS}, got {batch_windows}"
        );
        let session = commute_sdk::onnx::session(ctx, ctx.asset(NMP.name.as_ref())?)?;
        Ok(BasicPitch { session, batch_windows })
    }

    /// The posteriorgrams of each item (mono audio at any rate, resampled to 22 050 Hz). Items
    /// are independent: one item's bad input fails that item only, and batching does not change
    /// any result.
    pub fn posteriorgrams(&mut self, items: &[AudioRef<'_>]) -> Vec<Result<Posteriorgrams>> {
        let mut pending: Vec<Result<Pending<'_>>> = items
            .iter()
            .map(|audio| {
                validate(audio)?;
                let samples = convert(audio.samples, audio.sample_rate, SAMPLE_RATE);
                let out = Posteriorgrams::zeros(frame_count(samples.len()));
                Ok(Pending { samples, out })
            })
            .collect();
        // Every (item, window) pair, in order.
        let jobs: Vec<(usize, usize)> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().ok().map(|p| (i, window_count(p.out.frames))))
            .flat_map(|(i, windows)| (0..windows).map(move |w| (i, w)))
            .collect();
        tracing::debug!(items = items.len(), windows = jobs.len(), "basic-pitch: running the model");
        let mut input = vec![0.0f32; self.batch_windows.min(jobs.len()) * WINDOW];
        for chunk in jobs.chunks(self.batch_windows) {
            let input = &mut input[..chunk.len() * WINDOW];
            for (&(item, window), slot) in chunk.iter().zip(input.chunks_exact_mut(WINDOW)) {
                if let Ok(p) = &pending[item] {
                    fill_window(&p.samples, window, slot);
                }
            }
            tracing::trace!(windows = chunk.len(), "basic-pitch: running a batch");
            if let Err(e) = self.run(input, chunk, &mut pending) {
                // The whole call failed: every item in it fails with the same message.
                let message = format!("{e:#}");
                for &(item, _) in chunk {
                    if pending[item].is_ok() {
                        pending[item] = Err(anyhow!("{message}"));
                    }
                }
            }
        }
        pending.into_iter().map(|p| p.map(|p| p.out)).collect()
    }

    /// Runs one batch of windows and stitches each window's output into its item.
    fn run(
        &mut self,
        input: &[f32],
        chunk: &[(usize, usize)],
        pending: &mut [Result<Pending<'_>>],
    ) -> Result<()> {
        let n = chunk.len();
        let tensor = OrtTensorRef::from_array_view(([n, WINDOW, 1], input))
            .map_err(|e| anyhow!("cannot pass {n} windows to ONNX Runtime: {e}"))?;
        let outputs = self
            .session
            .run(commute_sdk::onnx::ort::inputs![INPUT => tensor])
            .map_err(|e| anyhow!("Basic Pitch failed on {n} windows: {e}"))?;
        for (name, width) in [(NOTE, KEYS), (ONSET, KEYS), (CONTOUR, CONTOUR_BINS)] {
            let value = outputs.get(name).ok_or_else(|| anyhow!("the model has no output `{name}`"))?;
            let (shape, data) =
                value.try_extract_tensor::<f32>().map_err(|e| anyhow!("output `{name}` is not f32: {e}"))?;
            let expected = [n as i64, WINDOW_FRAMES as i64, width as i64];
            ensure!(**shape == expected, "output `{name}` has shape {shape:?}, expected {expected:?}");
            for (&(item, window), output) in chunk.iter().zip(data.chunks_exact(WINDOW_FRAMES * width)) {
                if let Ok(p) = &mut pending[item] {
                    let target = match name {
                        NOTE => &mut p.out.note,
                        ONSET => &mut p.out.onset,
                        _ => &mut p.out.contour,
                    };
                    stitch_window(output, window, width, target);
                }
            }
        }
        Ok(())
    }
}
