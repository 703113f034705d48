//! `minilm-static`: a word's row of MiniLM's input token-embedding table (no transformer layers).
//!
//! The word is split by MiniLM's own WordPiece tokenizer (lower-cased and accent-stripped as the
//! model sees it), without `[CLS]` and `[SEP]`. With `pieces = "whole"` (the default) only a word
//! that is one whole-word token has a vector — exactly that token's row of
//! `embeddings.word_embeddings.weight` (30,522 × 384, fp32); any other word is an item error, so
//! experiments use `on-item-error = "skip"`. With `pieces = "mean"` a word's vector is the mean of
//! its pieces' rows. A word with an unknown (`[UNK]`) or special piece is an error either way.
//!
//! The table is read once per process ([`StaticTable::shared`]), and only it: the safetensors
//! header is parsed and that tensor's bytes alone are read from the 91 MB file.

use super::candle::MODEL_F32;
use super::tokenize::{self, Tokenizer};
use super::DIM;
use crate::formats::npy::Matrix;
use crate::shared::shared;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// The name of the token-embedding table in MiniLM's safetensors file.
pub const TENSOR: &str = "embeddings.word_embeddings.weight";

/// Rows of the table: MiniLM's vocabulary size.
pub const VOCABULARY: usize = 30_522;

/// The largest safetensors header this reader accepts (MiniLM's is under 20 kB).
const MAX_HEADER: u64 = 100 << 20;

/// Which words have a vector, and how.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pieces {
    /// Only a word that is one whole-word token of the vocabulary: its row, exactly. Any other
    /// word is an item error naming its pieces.
    #[default]
    Whole,
    /// Any word: the mean of its WordPiece pieces' rows (a whole-word token gives its row).
    Mean,
}

/// Parameters of `minilm-static`.
#[params]
#[derive(Debug, Clone)]
pub struct MinilmStaticParams {
    /// `whole`: only words that are a single whole-word token (others are item errors; use
    /// `on-item-error = "skip"`); `mean`: the mean of the rows of a word's WordPiece pieces.
    #[serde(default)]
    pub pieces: Pieces,
}

/// MiniLM's token-embedding table: row `i` is token id `i`.
pub struct StaticTable {
    matrix: Matrix,
}

impl StaticTable {
    /// Reads [`TENSOR`] from a safetensors file: the header, then that tensor's bytes only. It must
    /// be a little-endian `F32` matrix of [`VOCABULARY`] × 384.
    pub fn load(path: &Path) -> Result<StaticTable> {
        read_tensor(path).with_context(|| format!("cannot read MiniLM's token table from {}", path.display()))
    }

    /// The table of this file, read once per process.
    pub fn shared(path: &Path) -> Result<Arc<StaticTable>> {
        shared(&path.display().to_string(), || {
            let start = std::time::Instant::now();
            let table = StaticTable::load(path)?;
            tracing::info!(
                "read MiniLM's token table ({} × {}) in {:.2} s",
                table.matrix.rows,
                table.matrix.cols,
                start.elapsed().as_secs_f64()
            );
            Ok(table)
        })
    }

    /// The table (row `i` is token id `i`).
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    /// The row of token `id`, if the table has it.
    pub fn row(&self, id: u32) -> Option<&[f32]> {
        let id = id as usize;
        (id < self.matrix.rows).then(|| self.matrix.row(id))
    }
}

/// Parses the safetensors header and reads [`TENSOR`]'s rows.
fn read_tensor(path: &Path) -> Result<StaticTable> {
    let file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut prefix = [0u8; 8];
    r.read_exact(&mut prefix).context("the file is shorter than a safetensors header")?;
    let header_len = u64::from_le_bytes(prefix);
    ensure!(
        header_len <= MAX_HEADER && 8 + header_len <= file_len,
        "not a safetensors file: a header of {header_len} bytes in a file of {file_len}"
    );
    let mut header = vec![0u8; usize::try_from(header_len)?];
    r.read_exact(&mut header)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).context("not a safetensors file: the header is not JSON")?;
    let info = header.get(TENSOR).ok_or_else(|| anyhow!("the file has no tensor `{TENSOR}`"))?;
    let dtype = info.get("dtype").and_then(serde_json::Value::as_str);
    ensure!(dtype == Some("F32"), "`{TENSOR}` is {dtype:?}, not F32");
    let numbers = |key: &str| -> Option<Vec<u64>> {
        info.get(key)?.as_array()?.iter().map(serde_json::Value::as_u64).collect()
    };
    let shape = numbers("shape").unwrap_or_default();
    ensure!(
        shape == [VOCABULARY as u64, DIM as u64],
        "`{TENSOR}` has shape {shape:?}, not [{VOCABULARY}, {DIM}]"
    );
    let offsets = numbers("data_offsets").unwrap_or_default();
    let &[begin, end] = offsets.as_slice() else {
        bail!("`{TENSOR}` has no valid data_offsets: {:?}", info.get("data_offsets"));
    };
    let bytes = (VOCABULARY * DIM * 4) as u64;
    let data_start = 8 + header_len;
    ensure!(
        end.checked_sub(begin) == Some(bytes) && data_start + end <= file_len,
        "`{TENSOR}` spans data bytes {begin}..{end}, not {bytes} bytes within the file's {file_len}"
    );
    r.seek(SeekFrom::Start(data_start + begin))?;
    let mut data = Vec::with_capacity(VOCABULARY * DIM);
    let mut row = vec![0u8; DIM * 4];
    for _ in 0..VOCABULARY {
        r.read_exact(&mut row)?;
        data.extend(row.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    Ok(StaticTable { matrix: Matrix { rows: VOCABULARY, cols: DIM, data } })
}

/// The `minilm-static` encoder.
pub struct MinilmStatic {
    tokenizer: Tokenizer,
    table: Arc<StaticTable>,
    pieces: Pieces,
}

impl Function for MinilmStatic {
    const DOC: &'static str = "A word's row of all-MiniLM-L6-v2's input token-embedding table (384-d, fp32, no transformer layers). `pieces = \"whole\"`: only single whole-word tokens (others are item errors); `\"mean\"`: the mean of the word's WordPiece rows.";
    type Params = MinilmStaticParams;
    const ASSETS: &'static [AssetSpec] = &[MODEL_F32, tokenize::TOKENIZER];

    fn open(params: MinilmStaticParams, ctx: &Context) -> Result<Self> {
        let tokenizer = Tokenizer::open(ctx.asset(tokenize::TOKENIZER.name.as_ref())?)?;
        let table = StaticTable::shared(ctx.asset(MODEL_F32.name.as_ref())?)?;
        Ok(MinilmStatic { tokenizer, table, pieces: params.pieces })
    }
}

impl Encoder for MinilmStatic {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        DIM
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        let word = text.trim();
        let pieces = self.tokenizer.pieces(word)?;
        let names = || pieces.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join(", ");
        ensure!(!word.is_empty(), "the empty text is not a word");
        ensure!(!pieces.is_empty(), "`{word}` has no token in MiniLM's vocabulary");
        ensure!(
            !pieces.iter().any(|p| p.2),
            "`{word}` is not in MiniLM's vocabulary (its tokens are {})",
            names()
        );
        if self.pieces == Pieces::Whole && (pieces.len() > 1 || pieces[0].1.starts_with("##")) {
            bail!("`{word}` is not one token of MiniLM's vocabulary (it splits into {})", names());
        }
        let mut sum = vec![0f32; DIM];
        for (id, token, _) in &pieces {
            let row = self.table.row(*id).ok_or_else(|| anyhow!("token `{token}` (id {id}) has no row"))?;
            sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        }
        if pieces.len() > 1 {
            let n = pieces.len() as f32;
            sum.iter_mut().for_each(|s| *s /= n);
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with one F32 tensor of the given shape and values.
    fn file(name: &str, shape: &[usize], values: &[f32]) -> Vec<u8> {
        let mut tensors = serde_json::Map::new();
        tensors.insert("__metadata__".to_owned(), serde_json::json!({"format": "pt"}));
        tensors.insert(
            name.to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [0, values.len() * 4]}),
        );
        let header = serde_json::Value::Object(tensors).to_string();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    fn message(path: &Path) -> String {
        StaticTable::load(path).err().map(|e| format!("{e:#}")).unwrap_or_default()
    }

    #[test]
    fn reads_the_table_and_refuses_other_files_clearly() {
        let dir = std::env::temp_dir().join(format!("minilm-static-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let values: Vec<f32> = (0..VOCABULARY * DIM).map(|i| (i % 1000) as f32 * 0.5).collect();
        let good = dir.join("good.safetensors");
        std::fs::write(&good, file(TENSOR, &[VOCABULARY, DIM], &values)).expect("write");
        let table = StaticTable::load(&good).expect("loads");
        assert_eq!(table.row(1), Some(&values[DIM..2 * DIM]));
        assert_eq!(table.row(VOCABULARY as u32), None);

        let other = dir.join("other.safetensors");
        std::fs::write(&other, file("pooler.dense.weight", &[2, 2], &[1.0; 4])).expect("write");
        assert!(message(&other).contains("has no tensor `embeddings.word_embeddings.weight`"));
        let small = dir.join("small.safetensors");
        std::fs::write(&small, file(TENSOR, &[2, 2], &[1.0; 4])).expect("write");
        assert!(message(&small).contains("has shape [2, 2], not [30522, 384]"), "{}", message(&small));
        let junk = dir.join("junk.safetensors");
        std::fs::write(&junk, b"hello").expect("write");
        assert!(message(&junk).contains("junk.safetensors"), "{}", message(&junk));
        std::fs::remove_dir_all(&dir).ok();
    }
}
