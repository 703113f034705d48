//! Relations between words given as data — the analogy sections, WordNet's pointers, FreeDict's
//! translations — as pair lists ([`Relation`]), as the `relation` operator (a word → its
//! preferred partner) and as the `relation-words` source (either side of the pairs, aligned).
//!
//! One scheme names every relation: a `resource` and a `relation` within it.
//!
//! | resource | relations | pairs |
//! |---|---|---|
//! | `analogy` | the 14 sections of `questions-words.txt`: `capital-common-countries`, `capital-world`, `currency`, `city-in-state`, `family`, `gram1-adjective-to-adverb` … `gram9-plural-verbs` | 573 |
//! | `wordnet` | `antonym`, `hypernym`, `hyponym`, `similar-to`, `derivation`, `part-meronym`, … ([`wordnet::RELATIONS`]) | e.g. 6,617 antonym |
//! | `freedict` | `eng-fra`, `fra-eng`, `eng-spa`, `spa-eng`, `eng-ita`, `ita-eng`, `eng-por`, `por-eng` | e.g. 12,658 eng-fra |
//!
//! Options shared by both functions: `lowercase` (default true) lower-cases every word before
//! pairs are deduplicated, and the operator's input too; `inverse` reads the pairs backwards.

pub mod analogy;
pub mod freedict;
pub mod operator;
pub mod resource;
pub mod table;
pub mod wordnet;
pub mod words;

pub use resource::{load, pairs, RelationSpec, Resource, RELATION_ASSETS};
pub use table::Relation;
