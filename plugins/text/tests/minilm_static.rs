//! The `minilm-static` encoder on the real MiniLM files: rows against the safetensors table read
//! independently (candle's loader, the tokenizers crate's vocabulary), the mean of a word's
//! pieces, the refusal of multi-piece words, the difference from contextual `minilm`, the share
//! of GloVe's frequent words that are whole tokens, and the conformance suite.
//!
//! The assets (the fp32 safetensors, the tokenizer, GloVe) are fetched and verified through the
//! SDK's asset store on first use.

use commute_plugin_text::commute_plugin;
use commute_plugin_text::glove::{GloveTable, GLOVE_INDEX, GLOVE_VECTORS};
use commute_plugin_text::minilm::candle::MODEL_F32;
use commute_plugin_text::minilm::tokenize::TOKENIZER;
use commute_plugin_text::static_vectors::cosine;
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{AssetSpec, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

const MEAN: &str = r#"pieces = "mean""#;

fn plugin() -> Harness {
    Harness::new(commute_plugin())
}

/// The verified local path of an asset (fetched into the default store on first use).
fn asset(spec: &AssetSpec) -> PathBuf {
    AssetStore::from_env().ensure(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn texts(items: &[&str]) -> Vec<Value> {
    items.iter().map(|t| Value::text(*t)).collect()
}

/// `embeddings.word_embeddings.weight`, read by candle's own loader (the whole file).
fn table() -> &'static Vec<Vec<f32>> {
    static TABLE: OnceLock<Vec<Vec<f32>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let tensors = candle_core::safetensors::load(asset(&MODEL_F32), &candle_core::Device::Cpu)
            .expect("candle reads the safetensors");
        let t = tensors.get("embeddings.word_embeddings.weight").expect("the token table");
        assert_eq!(t.dims(), [30_522, 384]);
        t.to_vec2::<f32>().expect("f32 rows")
    })
}

/// The tokenizers crate on MiniLM's tokenizer.json, without the file's padding to 128.
fn tokenizer() -> &'static tokenizers::Tokenizer {
    static TOKENIZER_FILE: OnceLock<tokenizers::Tokenizer> = OnceLock::new();
    TOKENIZER_FILE.get_or_init(|| {
        let mut t = tokenizers::Tokenizer::from_file(asset(&TOKENIZER)).expect("the tokenizer loads");
        t.with_padding(None);
        t
    })
}

/// The WordPiece pieces of a word, without `[CLS]`/`[SEP]`, as `(id, token)`.
fn pieces(word: &str) -> Vec<(u32, String)> {
    let e = tokenizer().encode(word, false).expect("tokenizes");
    e.get_ids().iter().copied().zip(e.get_tokens().iter().cloned()).collect()
}

/// `minilm-static` on words, keeping per-item errors.
fn embed(params: &str, words: &[&str]) -> Vec<Result<Vec<f32>, String>> {
    let items = plugin().call_items("minilm-static", params, &texts(words)).expect("call");
    items
        .into_iter()
        .map(|r| {
            r.map(|v| {
                let t = v.as_tensor().expect("a tensor");
                assert_eq!(t.shape, vec![384]);
                t.data.clone()
            })
        })
        .collect()
}

#[test]
fn whole_word_tokens_get_their_table_row_bit_for_bit() {
    let words = ["cat", "house", "the", "music", "Dog", " King "];
    // vocab.txt: cat 4937, house 2160, the 1996, music 2189, dog 3899, king 2332.
    let ids = [4937u32, 2160, 1996, 2189, 3899, 2332];
    for (word, id) in words.iter().zip(ids) {
        assert_eq!(pieces(word.trim()), vec![(id, word.trim().to_lowercase())], "{word}");
    }
    for params in ["", MEAN] {
        for ((word, id), got) in words.iter().zip(ids).zip(embed(params, &words)) {
            let got = got.unwrap_or_else(|e| panic!("{word}: {e}"));
            let want = &table()[id as usize];
            let same = got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{params}: {word:?} is not row {id} bit for bit");
        }
    }
}

#[test]
fn mean_of_a_multi_piece_word_is_the_mean_of_its_pieces_rows() {
    let words = ["embeddings", "commutative", "Snowboarding"];
    let got = embed(MEAN, &words);
    for (word, got) in words.iter().zip(got) {
        let pieces = pieces(word);
        assert!(pieces.len() > 1, "{word} should split: {pieces:?}");
        let mut want = vec![0f64; 384];
        for (id, _) in &pieces {
            want.iter_mut().zip(&table()[*id as usize]).for_each(|(s, x)| *s += f64::from(*x));
        }
        let n = pieces.len() as f64;
        let got = got.unwrap_or_else(|e| panic!("{word}: {e}"));
        let worst = got.iter().zip(&want).map(|(g, w)| (f64::from(*g) - w / n).abs()).fold(0.0, f64::max);
        println!("{word}: {} pieces {pieces:?}, max |difference| {worst:.1e}", pieces.len());
        assert!(worst < 1e-6, "{word}: the mean differs by {worst:e}");
    }
}

#[test]
fn whole_refuses_multi_piece_and_unknown_words_naming_the_pieces() {
    let got = embed("", &["cat", "embeddings", "ice cream", "🎵", "", "[CLS]"]);
    assert!(got[0].is_ok());
    let message = |i: usize| got[i].as_ref().err().cloned().unwrap_or_default();
    assert_eq!(
        message(1),
        "`embeddings` is not one token of MiniLM's vocabulary (it splits into em, ##bed, ##ding, ##s)"
    );
    assert_eq!(message(2), "`ice cream` is not one token of MiniLM's vocabulary (it splits into ice, cream)");
    assert_eq!(message(3), "`🎵` is not in MiniLM's vocabulary (its tokens are [UNK])");
    assert_eq!(message(4), "the empty text is not a word");
    assert_eq!(message(5), "`[CLS]` is not in MiniLM's vocabulary (its tokens are [CLS])");
    // The unknown piece is refused in `mean` too; the two-word text is the mean of two rows.
    let mean = embed(MEAN, &["🎵", "ice cream"]);
    assert!(mean[0].is_err() && mean[1].is_ok());
}

#[test]
fn static_rows_are_another_space_than_contextual_minilm() {
    let words = ["cat", "house", "music"];
    let h = plugin();
    let contextual = h.call("minilm", r#"backend = "candle""#, &texts(&words)).expect("minilm");
    for ((word, c), s) in words.iter().zip(&contextual).zip(embed("", &words)) {
        let c = &c.as_tensor().expect("tensor").data;
        let s = s.unwrap_or_else(|e| panic!("{word}: {e}"));
        let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt();
        let similarity = cosine(c, &s);
        println!("{word}: cosine(minilm, minilm-static) {similarity:.3}, static norm {norm:.3}");
        assert!(similarity < 0.9, "{word}: {similarity}");
        assert!((norm - 1.0).abs() > 0.01, "{word}: static rows are not normalised, norm {norm}");
    }
    // Within the static space, related words are still closer than unrelated ones.
    let v = embed("", &["cat", "dog", "democracy"]);
    let v: Vec<Vec<f32>> = v.into_iter().map(|r| r.expect("ok")).collect();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.1);
}

#[test]
fn glove_words_that_are_whole_minilm_tokens() {
    let glove = GloveTable::shared(&asset(&GLOVE_VECTORS), &asset(&GLOVE_INDEX)).expect("GloVe loads");
    let first: Vec<&str> = glove.words()[..10_000].iter().map(String::as_str).collect();
    let got = embed("", &first);
    let whole = got.iter().filter(|r| r.is_ok()).count();
    let alphabetic = first.iter().zip(&got).filter(|(w, r)| r.is_ok() && w.chars().all(char::is_alphabetic));
    let alphabetic =
        (alphabetic.count(), first.iter().filter(|w| w.chars().all(char::is_alphabetic)).count());
    println!(
        "{whole} of GloVe's first 10,000 words are one whole-word token ({} of its {} alphabetic ones)",
        alphabetic.0, alphabetic.1
    );
    assert_eq!(whole, 9451);
    // The first that split are clitics and abbreviations (`'s`, `n't`, `u.s.`): WordPiece cuts them
    // at their punctuation.
    let split: Vec<&str> = first.iter().zip(&got).filter(|(_, r)| r.is_err()).map(|(w, _)| *w).collect();
    println!("the first that split: {:?}", &split[..20]);
}

#[test]
fn minilm_static_conforms() {
    Conformance::new(commute_plugin())
        .case("minilm-static", "", texts(&["cat", "House", "dog"]))
        .case("minilm-static", MEAN, texts(&["embeddings", "cat", "ice cream"]))
        .run_covering(&["minilm-static"]);
}
