//! Whisper tiny.en opened from its CTranslate2 file into candle's Whisper, and run: the encoder's
//! states of an item, and greedy decoding of its transcript.
//!
//! Decoding follows the reference transcriber's settings for one 30-second window without
//! timestamps at temperature 0 with one beam: the prompt is `<|startoftranscript|>
//! <|notimestamps|>`; each step takes the most likely token after suppressing the model's
//! `suppress_ids` (symbols that are not speech) and every special token but `<|endoftext|>`; the
//! first step also suppresses `suppress_ids_begin` (a blank and `<|endoftext|>`), so a transcript
//! never starts empty or with a space token alone. Decoding stops at `<|endoftext|>` or after
//! `max_tokens` tokens.

use super::ct2::ModelFile;
use super::features::{features, mel_filters, Features, N_FRAMES, N_MELS};
use super::tokens::Vocabulary;
use super::{CONFIG, MODEL, VOCABULARY};
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_transformers::models::whisper::model::Whisper as Network;
use candle_transformers::models::whisper::Config;
use commute_sdk::prelude::*;

/// The most tokens a transcript may have: half the decoder's context, as the reference allows.
pub const MAX_TOKENS: usize = 224;

/// The model, its vocabulary and its decoding settings.
pub struct Whisper {
    network: Network,
    vocabulary: Vocabulary,
    filters: Vec<f32>,
    /// Added to the logits at every step (0 or −∞).
    suppress: Vec<f32>,
    /// Added to the logits at the first step too.
    suppress_begin: Vec<f32>,
    device: Device,
    width: usize,
}

/// A list of token ids from `config.json`.
fn id_list(config: &serde_json::Value, key: &str) -> Result<Vec<u32>> {
    config
        .get(key)
        .and_then(|v| v.as_array())
        .ok_or_else(|| anyhow!("the decoding configuration has no list {key}"))?
        .iter()
        .map(|v| {
            v.as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| anyhow!("{key} holds {v}, not a token id"))
        })
        .collect()
}

impl Whisper {
    /// Opens the model from the assets in `ctx`.
    pub fn open(ctx: &Context) -> Result<Whisper> {
        let device = Device::Cpu;
        let file = ModelFile::read(ctx.asset(&MODEL.name)?)?;
        let vocabulary = Vocabulary::read(ctx.asset(&VOCABULARY.name)?)?;
        let config_path = ctx.asset(&CONFIG.name)?;
        let decoding: serde_json::Value = serde_json::from_slice(
            &std::fs::read(config_path).with_context(|| format!("cannot read {}", config_path.display()))?,
        )
        .with_context(|| format!("{} is not Whisper's decoding configuration", config_path.display()))?;
        let tensors = file.whisper_tensors(&device)?;
        let dim = |name: &str, i: usize| -> Result<usize> {
            Ok(tensors.get(name).ok_or_else(|| anyhow!("the model has no {name}"))?.dim(i)?)
        };
        let d_model = dim("model.encoder.conv1.weight", 0)?;
        let vocab_size = dim("model.decoder.embed_tokens.weight", 0)?;
        ensure!(vocab_size == vocabulary.len(), "{vocab_size} embeddings for {} tokens", vocabulary.len());
        // Whisper's attention heads are 64 wide in every size.
        let config = Config {
            num_mel_bins: dim("model.encoder.conv1.weight", 1)?,
            max_source_positions: N_FRAMES / 2,
            d_model,
            encoder_attention_heads: d_model / 64,
            encoder_layers: file.layers("encoder"),
            vocab_size,
            max_target_positions: dim("model.decoder.embed_positions.weight", 0)?,
            decoder_attention_heads: d_model / 64,
            decoder_layers: file.layers("decoder"),
            suppress_tokens: Vec::new(),
        };
        ensure!(
            config.num_mel_bins == N_MELS,
            "the model reads {} mel bands, not {N_MELS}",
            config.num_mel_bins
        );
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &device);
        let network = Network::load(&vb, config)?;
        let mut suppress = vec![0f32; vocab_size];
        let specials = (vocabulary.end as usize + 1)..vocab_size;
        for id in config_ids(&id_list(&decoding, "suppress_ids")?, vocab_size).into_iter().chain(specials) {
            suppress[id] = f32::NEG_INFINITY;
        }
        let mut suppress_begin = suppress.clone();
        for id in config_ids(&id_list(&decoding, "suppress_ids_begin")?, vocab_size) {
            suppress_begin[id] = f32::NEG_INFINITY;
        }
        Ok(Whisper {
            network,
            vocabulary,
            filters: mel_filters(),
            suppress,
            suppress_begin,
            device,
            width: d_model,
        })
    }

    /// The width of the encoder's states.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The log-mel features of an item at any rate (resampled to 16 kHz).
    pub fn features(&self, audio: AudioRef<'_>) -> Result<Features> {
        let samples = crate::audio_in::at_model_rate(audio)?;
        features(&samples, &self.filters)
    }

    /// The encoder's final states, `[1, 1500, d]` (20 ms each; padding included).
    pub fn encode(&mut self, features: &Features) -> Result<Tensor> {
        let mel = Tensor::from_slice(&features.values, (1, N_MELS, N_FRAMES), &self.device)?;
        Ok(self.network.encoder.forward(&mel, true)?)
    }

    /// Greedy decoding of the encoder's states into token ids (the prompt and the end left out).
    pub fn decode(&mut self, states: &Tensor, max_tokens: usize) -> Result<Vec<u32>> {
        let prompt = [self.vocabulary.start, self.vocabulary.no_timestamps];
        let mut tokens = prompt.to_vec();
        for step in 0..max_tokens {
            let input = Tensor::new(tokens.as_slice(), &self.device)?.unsqueeze(0)?;
            let hidden = self.network.decoder.forward(&input, states, step == 0)?;
            let last = hidden.i((.., tokens.len() - 1..))?;
            let logits = self.network.decoder.final_linear(&last)?.flatten_all()?.to_vec1::<f32>()?;
            let mask = if step == 0 { &self.suppress_begin } else { &self.suppress };
            let next = logits
                .iter()
                .zip(mask)
                .map(|(l, m)| l + m)
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i as u32)
                .ok_or_else(|| anyhow!("the decoder gave no logits"))?;
            if next == self.vocabulary.end {
                break;
            }
            tokens.push(next);
        }
        Ok(tokens.split_off(prompt.len()))
    }

    /// The transcript of an item: its text with surrounding spaces trimmed.
    pub fn transcribe(&mut self, audio: AudioRef<'_>, max_tokens: usize) -> Result<String> {
        let features = self.features(audio)?;
        let states = self.encode(&features)?;
        let ids = self.decode(&states, max_tokens)?;
        Ok(self.vocabulary.decode(&ids).trim().to_owned())
    }
}

/// The ids of a configuration list that fall inside the vocabulary.
fn config_ids(ids: &[u32], vocab_size: usize) -> Vec<usize> {
    ids.iter().map(|&i| i as usize).filter(|&i| i < vocab_size).collect()
}
