//! The `speech-embedding` encoder: a speech representation trained for keyword spotting, not for
//! transcription — the 96-dimensional embeddings of Google's `speech_embedding` model as
//! openWakeWord 0.4.0 ships it in ONNX (with its mel-spectrogram front end), pooled over time.
//!
//! # Pipeline (as openWakeWord computes its features)
//!
//! 1. The audio is resampled to 16 kHz and scaled to 16-bit integers (`round(32768 x)`, clamped),
//!    the scale the front end was exported for.
//! 2. `melspectrogram.onnx`: 32 mel bands in frames of 512 samples every 160 (10 ms);
//!    `⌊(n − 512) / 160⌋ + 1` frames for `n` samples. Each value `v` becomes `v / 10 + 2`.
//! 3. `embedding_model.onnx`: windows of 76 frames (0.78 s) every 8 frames (80 ms), each to one
//!    96-dimensional embedding. A window that would run past the last frame is left out, so audio
//!    shorter than 12 512 samples (0.78 s) is first padded with silence to that length: every item
//!    has at least one window.
//! 4. The embeddings of an item's windows are averaged (`pooling = "mean"`, 96 dims), or their
//!    means followed by their maxima (`"mean-max"`, 192 dims).
//!
//! [`SpeechEmbedding::windows`] gives the per-window embeddings. The known-answer test feeds them
//! to one of openWakeWord's own detectors (trained on these features): it must fire on
//! "hey jarvis" spoken by the `speak` render and stay silent on other sentences.
//!
//! # Licence
//! openWakeWord's code is Apache-2.0; its README puts its pre-trained models, these two included,
//! under CC BY-NC-SA 4.0 (the embedding model re-implements Google's Apache-2.0 `speech_embedding`).
//! `commute assets` shows that licence: use it for non-commercial research.

use commute_sdk::onnx::ort::session::Session;
use commute_sdk::onnx::ort::value::TensorRef as OrtTensorRef;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

const PACKAGE: &str = "openwakeword";
const VERSION: &str = "0.4.0";
const LICENCE: &str = "CC-BY-NC-SA-4.0";

/// The mel-spectrogram front end: `input` `[batch, samples]` → `output` `[batch, 1, frames, 32]`.
pub const MELSPECTROGRAM: AssetSpec = AssetSpec::pypi(
    "openwakeword-melspectrogram",
    PACKAGE,
    VERSION,
    "openwakeword/resources/models/melspectrogram.onnx",
    "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
    1_087_958,
    LICENCE,
);

/// The embedding model: `input_1` `[windows, 76, 32, 1]` → `conv2d_19` `[windows, 1, 1, 96]`.
pub const EMBEDDING: AssetSpec = AssetSpec::pypi(
    "openwakeword-speech-embedding",
    PACKAGE,
    VERSION,
    "openwakeword/resources/models/embedding_model.onnx",
    "ba754db3cd768a524c655ea90655ee5e6055a43b8dfd29366a11e93716ae9e51",
    1_328_103,
    LICENCE,
);

/// Everything the encoder needs: ONNX Runtime and the two models.
pub const ASSETS: &[AssetSpec] = &[commute_sdk::onnx::ONNXRUNTIME, MELSPECTROGRAM, EMBEDDING];

/// The models' sample rate.
pub const SAMPLE_RATE: u32 = crate::audio_in::MODEL_RATE;
/// Samples per mel frame.
const FRAME: usize = 512;
/// Samples between mel frames.
const HOP: usize = 160;
/// Mel bands.
pub const BANDS: usize = 32;
/// Mel frames per embedding window.
pub const WINDOW: usize = 76;
/// Mel frames between embedding windows.
pub const STEP: usize = 8;
/// The embedding's dimension.
pub const DIM: usize = 96;
/// The fewest samples that give one window: 12 512 (0.78 s).
pub const MIN_SAMPLES: usize = FRAME + (WINDOW - 1) * HOP;

/// How an item's window embeddings become one vector.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The mean over windows (96 dims).
    #[default]
    Mean,
    /// The means, then the maxima in the same order (192 dims).
    MeanMax,
}

/// Parameters of `speech-embedding`.
#[params]
#[derive(Debug, Clone)]
pub struct SpeechEmbeddingParams {
    /// How the windows' embeddings are pooled: `mean` (96 dims) or `mean-max` (192).
    #[serde(default)]
    pub pooling: Pooling,
    /// Embedding windows per ONNX Runtime call, across the items of a batch (1–1024).
    #[serde(default = "default_batch_windows")]
    #[schemars(range(min = 1, max = 1024))]
    pub batch_windows: usize,
}

fn default_batch_windows() -> usize {
    256
}

impl Default for SpeechEmbeddingParams {
    fn default() -> Self {
        SpeechEmbeddingParams { pooling: Pooling::Mean, batch_windows: default_batch_windows() }
    }
}

/// The number of mel frames the front end gives for `samples` samples (at least 512).
pub fn mel_frames(samples: usize) -> usize {
    if samples < FRAME {
        0
    } else {
        (samples - FRAME) / HOP + 1
    }
}

/// The number of embedding windows over `frames` mel frames.
pub fn window_count(frames: usize) -> usize {
    if frames < WINDOW {
        0
    } else {
        (frames - WINDOW) / STEP + 1
    }
}

/// The `speech-embedding` encoder.
pub struct SpeechEmbedding {
    melspectrogram: Session,
    embedding: Session,
    pooling: Pooling,
    batch_windows: usize,
}

impl Function for SpeechEmbedding {
    const DOC: &'static str = "openWakeWord's speech embedding (Google speech_embedding, ONNX): 96 dims every 80 ms of 16 kHz speech, averaged over the item (or mean and maximum, 192).";
    type Params = SpeechEmbeddingParams;
    const ASSETS: &'static [AssetSpec] = ASSETS;

    fn open(params: SpeechEmbeddingParams, ctx: &Context) -> Result<Self> {
        ensure!(
            (1..=1024).contains(&params.batch_windows),
            "batch-windows must be within 1..=1024, got {}",
            params.batch_windows
        );
        let melspectrogram = commute_sdk::onnx::session(ctx, ctx.asset(MELSPECTROGRAM.name.as_ref())?)?;
        let embedding = commute_sdk::onnx::session(ctx, ctx.asset(EMBEDDING.name.as_ref())?)?;
        Ok(SpeechEmbedding {
            melspectrogram,
            embedding,
            pooling: params.pooling,
            batch_windows: params.batch_windows,
        })
    }
}

impl SpeechEmbedding {
    /// One item's mel spectrogram: frames × [`BANDS`], row-major, transformed as openWakeWord
    /// does (`v / 10 + 2`), from audio at any rate (padded to [`MIN_SAMPLES`] at 16 kHz).
    pub fn mel(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        let samples = crate::audio_in::at_model_rate(audio)?;
        let mut pcm: Vec<f32> =
            samples.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0)).collect();
        if pcm.len() < MIN_SAMPLES {
            pcm.resize(MIN_SAMPLES, 0.0);
        }
        let n = pcm.len();
        let frames = mel_frames(n);
        let mut mel = run(&mut self.melspectrogram, ("input", "output"), vec![1, n], &pcm, frames * BANDS)
            .with_context(|| format!("the mel-spectrogram model on {n} samples"))?;
        for v in &mut mel {
            *v = *v / 10.0 + 2.0;
        }
        Ok(mel)
    }

    /// The embeddings of every window of several mel spectrograms (each frames × [`BANDS`]),
    /// item by item: windows × [`DIM`], row-major. The windows of all items share ONNX Runtime
    /// calls of up to `batch-windows`.
    pub fn embed_mels(&mut self, mels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let counts: Vec<usize> = mels.iter().map(|m| window_count(m.len() / BANDS)).collect();
        let mut windows: Vec<&[f32]> = Vec::with_capacity(counts.iter().sum());
        for (mel, &count) in mels.iter().zip(&counts) {
            windows.extend((0..count).map(|w| &mel[w * STEP * BANDS..(w * STEP + WINDOW) * BANDS]));
        }
        let mut all = Vec::with_capacity(windows.len() * DIM);
        let mut batch = Vec::with_capacity(self.batch_windows * WINDOW * BANDS);
        for group in windows.chunks(self.batch_windows) {
            batch.clear();
            for w in group {
                batch.extend_from_slice(w);
            }
            let n = group.len();
            let data = run(
                &mut self.embedding,
                ("input_1", "conv2d_19"),
                vec![n, WINDOW, BANDS, 1],
                &batch,
                n * DIM,
            )
            .with_context(|| format!("the embedding model on {n} windows"))?;
            all.extend_from_slice(&data);
        }
        let mut out = Vec::with_capacity(mels.len());
        let mut at = 0;
        for count in counts {
            out.push(all[at * DIM..(at + count) * DIM].to_vec());
            at += count;
        }
        Ok(out)
    }

    /// One item's window embeddings: windows × [`DIM`], row-major (one window every 80 ms).
    pub fn windows(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        let mel = self.mel(audio)?;
        Ok(self.embed_mels(&[&mel])?.pop().unwrap_or_default())
    }
}

/// Runs a model of one input and one read output on `data` shaped `shape`, and gives the output's
/// values, which must number `expected`.
fn run(
    session: &mut Session,
    (input, output): (&str, &str),
    shape: Vec<usize>,
    data: &[f32],
    expected: usize,
) -> Result<Vec<f32>> {
    let tensor = OrtTensorRef::from_array_view((shape.clone(), data))
        .map_err(|e| anyhow!("cannot pass shape {shape:?} to ONNX Runtime: {e}"))?;
    let outputs = session
        .run(commute_sdk::onnx::ort::inputs![input => tensor])
        .map_err(|e| anyhow!("ONNX Runtime failed on shape {shape:?}: {e}"))?;
    let value = outputs.get(output).ok_or_else(|| anyhow!("the model has no output `{output}`"))?;
    let (got, values) =
        value.try_extract_tensor::<f32>().map_err(|e| anyhow!("output `{output}` is not f32: {e}"))?;
    ensure!(values.len() == expected, "output `{output}` has shape {got:?}, expected {expected} values");
    Ok(values.to_vec())
}

/// Window embeddings (windows × [`DIM`]) pooled into one vector.
pub fn pool(windows: &[f32], pooling: Pooling) -> Vec<f32> {
    let n = windows.len() / DIM;
    let mut mean = vec![0.0f64; DIM];
    let mut max = vec![f32::NEG_INFINITY; DIM];
    for row in windows.chunks_exact(DIM) {
        for d in 0..DIM {
            mean[d] += f64::from(row[d]);
            max[d] = max[d].max(row[d]);
        }
    }
    let scale = if n == 0 { 0.0 } else { 1.0 / n as f64 };
    let mut out: Vec<f32> = mean.into_iter().map(|s| (s * scale) as f32).collect();
    if pooling == Pooling::MeanMax {
        out.extend(max.into_iter().map(|m| if n == 0 { 0.0 } else { m }));
    }
    out
}

impl Encoder for SpeechEmbedding {
    type Input<'a> = AudioRef<'a>;

    fn dim(&self) -> usize {
        match self.pooling {
            Pooling::Mean => DIM,
            Pooling::MeanMax => 2 * DIM,
        }
    }

    fn encode(&mut self, audio: AudioRef<'_>) -> Result<Vec<f32>> {
        Ok(pool(&self.windows(audio)?, self.pooling))
    }

    fn encode_batch(&mut self, items: Vec<AudioRef<'_>>) -> Vec<Result<Vec<f32>>> {
        let mels: Vec<Result<Vec<f32>>> = items.into_iter().map(|a| self.mel(a)).collect();
        let good: Vec<&[f32]> = mels.iter().filter_map(|m| m.as_ref().ok().map(Vec::as_slice)).collect();
        let embedded = match self.embed_mels(&good) {
            Ok(e) => e,
            // A failing model call fails every item that reached it, each with the message.
            Err(e) => {
                let message = format!("{e:#}");
                return mels.into_iter().map(|m| m.and_then(|_| Err(anyhow!("{message}")))).collect();
            }
        };
        let mut embedded = embedded.into_iter();
        let pooling = self.pooling;
        mels.into_iter()
            .map(|m| {
                m.and_then(|_| {
                    let windows = embedded.next().ok_or_else(|| anyhow!("no embedding for the item"))?;
                    Ok(pool(&windows, pooling))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_window_counts_follow_the_models() {
        // Measured on the ONNX front end: 512 → 1 frame, 1280 → 5, 16 000 → 97, 16 160 → 98.
        assert_eq!([511, 512, 1280, 16_000, 16_160].map(mel_frames), [0, 1, 5, 97, 98]);
        assert_eq!(mel_frames(MIN_SAMPLES), WINDOW);
        assert_eq!(mel_frames(MIN_SAMPLES - 1), WINDOW - 1);
        assert_eq!([75, 76, 83, 84, 97].map(window_count), [0, 1, 1, 2, 3]);
    }

    #[test]
    fn pooling_means_then_maxima_in_order() {
        let mut w = vec![0.0f32; 2 * DIM];
        w[0] = 1.0;
        w[DIM] = 3.0;
        w[DIM + 5] = -2.0;
        let mean = pool(&w, Pooling::Mean);
        assert_eq!(mean.len(), DIM);
        assert_eq!((mean[0], mean[5], mean[6]), (2.0, -1.0, 0.0));
        let both = pool(&w, Pooling::MeanMax);
        assert_eq!(both.len(), 2 * DIM);
        assert_eq!(&both[..DIM], &mean[..]);
        assert_eq!((both[DIM], both[DIM + 5], both[DIM + 6]), (3.0, 0.0, 0.0));
        assert_eq!(pool(&[], Pooling::MeanMax), vec![0.0; 2 * DIM]);
    }
}
