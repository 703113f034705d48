//! Reading a CTranslate2 model file (`model.bin`, format version 6) and renaming a Whisper
//! model's variables to the names candle's Whisper loads.
//!
//! The file is a little-endian sequence: the format version (`u32`), the spec's name (a `u16`
//! length and NUL-terminated bytes) and revision (`u32`), the number of variables (`u32`), then
//! per variable its name, rank (`u8`), dimensions (`u32` each), data type (`u8`), byte count
//! (`u32`) and raw data; then aliases (name → variable). Whisper files keep the attention's query,
//! key and value projections fused (`linear_0` of self-attention: 3 × d rows; `linear_1` of
//! cross-attention: key and value, 2 × d rows); they are split here. The key projections have no
//! bias in Whisper (the fused bias holds zeros there).

use candle_core::{DType, Device, Tensor};
use commute_sdk::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// A variable as stored: shape, data type and raw little-endian bytes.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// candle's data type for the stored one.
    pub dtype: DType,
    /// The values' bytes.
    pub bytes: Vec<u8>,
}

/// The variables of a model file, aliases resolved.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The spec the file was written from (e.g. `WhisperSpec`).
    pub spec: String,
    /// Variables by name.
    pub variables: HashMap<String, Variable>,
}

/// A cursor over the file's bytes with typed reads that fail on a short file.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            anyhow!("the model file ends early (at byte {} of {})", self.at, self.bytes.len())
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| anyhow!("a name in the model file is not UTF-8"))
    }
}

/// candle's data type for CTranslate2's type code: `Some` for floats, `None` for the integer types
/// (int8, int16, int32), which a float Whisper file uses only for metadata scalars.
fn float_dtype(code: u8) -> Result<Option<DType>> {
    Ok(match code {
        0 => Some(DType::F32),
        1..=3 => None,
        4 => Some(DType::F16),
        5 => Some(DType::BF16),
        other => bail!("unsupported data type {other} in the model file"),
    })
}

impl ModelFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<ModelFile> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        ModelFile::parse(&bytes)
            .with_context(|| format!("{} is not a CTranslate2 model file", path.display()))
    }

    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<ModelFile> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u32()?;
        ensure!(version == 6, "format version {version}, expected 6");
        let spec = r.string()?;
        let _revision = r.u32()?;
        let count = r.u32()? as usize;
        let mut variables = HashMap::with_capacity(count);
        for _ in 0..count {
            let name = r.string()?;
            let rank = usize::from(r.u8()?);
            let shape = (0..rank).map(|_| r.u32().map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
            let code = r.u8()?;
            let size = r.u32()? as usize;
            let data = r.take(size)?;
            // Metadata scalars (activation, alignment heads…) are integers; only floats are kept.
            if let Some(dtype) = float_dtype(code).with_context(|| format!("variable {name}"))? {
                let expected = shape.iter().product::<usize>() * dtype.size_in_bytes();
                ensure!(size == expected, "{name}: {size} bytes for shape {shape:?}");
                variables.insert(name, Variable { shape, dtype, bytes: data.to_vec() });
            }
        }
        let aliases = r.u32()? as usize;
        for _ in 0..aliases {
            let alias = r.string()?;
            let target = r.string()?;
            if let Some(v) = variables.get(&target).cloned() {
                variables.insert(alias, v);
            }
        }
        ensure!(r.at == bytes.len(), "{} bytes after the last alias", bytes.len() - r.at);
        Ok(ModelFile { spec, variables })
    }

    /// A variable as an f32 tensor.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor> {
        let v = self.variables.get(name).ok_or_else(|| anyhow!("the model file has no variable {name}"))?;
        let t = Tensor::from_raw_buffer(&v.bytes, v.dtype, &v.shape, device)?;
        Ok(t.to_dtype(DType::F32)?)
    }

    /// The number of layers `encoder` or `decoder` has (`{part}/layer_{i}/…` variables).
    pub fn layers(&self, part: &str) -> usize {
        let prefix = format!("{part}/layer_");
        self.variables
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix)?.split('/').next()?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0)
    }

    /// Every weight of a Whisper model under candle's names (`model.encoder.layers.0.fc1.weight`…).
    pub fn whisper_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        ensure!(self.spec == "WhisperSpec", "the model file holds a {}, not a Whisper model", self.spec);
        let mut out = HashMap::new();
        let mut put = |to: String, t: Tensor| {
            out.insert(to, t);
        };
        let linear = |from: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                self.tensor(&format!("{from}/weight"), device)?,
                self.tensor(&format!("{from}/bias"), device)?,
            ))
        };
        let norm = |from: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                self.tensor(&format!("{from}/gamma"), device)?,
                self.tensor(&format!("{from}/beta"), device)?,
            ))
        };
        for part in ["encoder", "decoder"] {
            let to = format!("model.{part}");
            for conv in ["conv1", "conv2"].iter().filter(|_| part == "encoder") {
                let (w, b) = linear(&format!("encoder/{conv}"))?;
                put(format!("{to}.{conv}.weight"), w);
                put(format!("{to}.{conv}.bias"), b);
            }
            let (g, b) = norm(&format!("{part}/layer_norm"))?;
            put(format!("{to}.layer_norm.weight"), g);
            put(format!("{to}.layer_norm.bias"), b);
            for i in 0..self.layers(part) {
                let from = format!("{part}/layer_{i}");
                let to = format!("{to}.layers.{i}");
                // Self-attention: fused query, key and value.
                let (w, b) = linear(&format!("{from}/self_attention/linear_0"))?;
                let d = w.dim(1)?;
                for (k, name) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    put(format!("{to}.self_attn.{name}.weight"), w.narrow(0, k * d, d)?.contiguous()?);
                    if *name != "k_proj" {
                        put(format!("{to}.self_attn.{name}.bias"), b.narrow(0, k * d, d)?.contiguous()?);
                    }
                }
                let (w, b) = linear(&format!("{from}/self_attention/linear_1"))?;
                put(format!("{to}.self_attn.out_proj.weight"), w);
                put(format!("{to}.self_attn.out_proj.bias"), b);
                let (g, b) = norm(&format!("{from}/self_attention/layer_norm"))?;
                put(format!("{to}.self_attn_layer_norm.weight"), g);
                put(format!("{to}.self_attn_layer_norm.bias"), b);
                if part == "decoder" {
                    // Cross-attention: query, then fused key and value.
                    let (w, b) = linear(&format!("{from}/attention/linear_0"))?;
                    put(format!("{to}.encoder_attn.q_proj.weight"), w);
                    put(format!("{to}.encoder_attn.q_proj.bias"), b);
                    let (w, b) = linear(&format!("{from}/attention/linear_1"))?;
                    put(format!("{to}.encoder_attn.k_proj.weight"), w.narrow(0, 0, d)?.contiguous()?);
                    put(format!("{to}.encoder_attn.v_proj.weight"), w.narrow(0, d, d)?.contiguous()?);
                    put(format!("{to}.encoder_attn.v_proj.bias"), b.narrow(0, d, d)?.contiguous()?);
                    let (w, b) = linear(&format!("{from}/attention/linear_2"))?;
                    put(format!("{to}.encoder_attn.out_proj.weight"), w);
                    put(format!("{to}.encoder_attn.out_proj.bias"), b);
                    let (g, b) = norm(&format!("{from}/attention/layer_norm"))?;
                    put(format!("{to}.encoder_attn_layer_norm.weight"), g);
                    put(format!("{to}.encoder_attn_layer_norm.bias"), b);
                }
                let (w, b) = linear(&format!("{from}/ffn/linear_0"))?;
                put(format!("{to}.fc1.weight"), w);
                put(format!("{to}.fc1.bias"), b);
                let (w, b) = linear(&format!("{from}/ffn/linear_1"))?;
                put(format!("{to}.fc2.weight"), w);
                put(format!("{to}.fc2.bias"), b);
                let (g, b) = norm(&format!("{from}/ffn/layer_norm"))?;
                put(format!("{to}.final_layer_norm.weight"), g);
                put(format!("{to}.final_layer_norm.bias"), b);
            }
        }
        put("model.decoder.embed_tokens.weight".into(), self.tensor("decoder/embeddings/weight", device)?);
        put(
            "model.decoder.embed_positions.weight".into(),
            self.tensor("decoder/position_encodings/encodings", device)?,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the format with one f32 variable, one int8 scalar and one alias.
    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        let string = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
            b.push(0);
        };
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        string(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&24u32.to_le_bytes());
        for v in [1f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        string(&mut b, "decoder/activation");
        b.push(0);
        b.push(1);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(1);
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "v");
        string(&mut b, "w");
        b
    }

    #[test]
    fn variables_scalars_and_aliases_are_read() {
        let f = ModelFile::parse(&sample()).expect("parses");
        assert_eq!(f.spec, "WhisperSpec");
        assert_eq!(f.variables.len(), 2, "the int8 scalar is skipped, the alias added");
        let t = f.tensor("v", &Device::Cpu).expect("alias");
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.to_vec2::<f32>().expect("values"), vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let b = sample();
        for cut in [3, 10, 40, b.len() - 1] {
            assert!(ModelFile::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = b.clone();
        other[0] = 5;
        assert!(ModelFile::parse(&other).unwrap_err().to_string().contains("version 5"));
        let mut long = b;
        long.push(0);
        assert!(ModelFile::parse(&long).is_err());
    }
}
