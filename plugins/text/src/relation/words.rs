//! The `relation-words` source: one side of a relation's pairs. With `side = "source"` and
//! `side = "target"` and the same other parameters, the two lists are aligned item by item, so a
//! host can embed both and fit the relation's action on embeddings.

use super::operator::RelationParams;
use super::resource::{load, RelationSpec, Resource, RELATION_ASSETS};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// Which side of the pairs to list.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The left words (the relation's domain).
    Source,
    /// The right words (their partners).
    Target,
}

/// Which pairs to list.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairs {
    /// One pair per source word, with the partner the `relation` operator maps it to: the
    /// source side is the domain, each word once.
    First,
    /// Every pair: a source word with several partners appears once per partner.
    All,
}

/// Parameters of `relation-words`.
#[params]
#[derive(Debug, Clone)]
pub struct RelationWordsParams {
    /// Where the pairs come from: `analogy`, `wordnet` or `freedict`.
    pub resource: Resource,
    /// The relation (as for the `relation` operator: `gram8-plural`, `antonym`, `eng-fra`…).
    pub relation: String,
    /// Lower-case every word of the pairs.
    #[serde(default = "yes")]
    pub lowercase: bool,
    /// Read the pairs backwards.
    #[serde(default)]
    pub inverse: bool,
    /// `source` (left words) or `target` (right words).
    #[serde(default = "default_side")]
    pub side: Side,
    /// `first`: one pair per source word, as the operator maps it; `all`: every pair.
    #[serde(default = "default_pairs")]
    pub pairs: Pairs,
}

fn yes() -> bool {
    true
}
fn default_side() -> Side {
    Side::Source
}
fn default_pairs() -> Pairs {
    Pairs::First
}

impl RelationWordsParams {
    /// The relation these parameters name.
    pub fn spec(&self) -> RelationSpec {
        RelationParams {
            resource: self.resource,
            relation: self.relation.clone(),
            lowercase: self.lowercase,
            inverse: self.inverse,
        }
        .spec()
    }
}

/// The `relation-words` source.
pub struct RelationWords {
    words: Vec<String>,
}

impl Function for RelationWords {
    const DOC: &'static str = "The words of a relation's pairs, source or target side (aligned item by item), one pair per source word or all pairs.";
    type Params = RelationWordsParams;
    const ASSETS: &'static [AssetSpec] = RELATION_ASSETS;

    fn open(params: RelationWordsParams, ctx: &Context) -> Result<Self> {
        let relation = load(&params.spec(), ctx)?;
        let pairs = match params.pairs {
            Pairs::First => relation.first_pairs(),
            Pairs::All => relation.pairs().to_vec(),
        };
        let words = pairs
            .into_iter()
            .map(|(s, t)| match params.side {
                Side::Source => s,
                Side::Target => t,
            })
            .collect();
        Ok(RelationWords { words })
    }
}

impl Source for RelationWords {
    type Output = String;

    fn items(&mut self) -> Result<Vec<String>> {
        Ok(self.words.clone())
    }
}
