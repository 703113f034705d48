//! The `relation` operator: maps a word to its preferred partner in a relation (plural, antonym,
//! hypernym, translation…); a word outside the relation is a per-item `not in relation` error.

use super::resource::{load, RelationSpec, Resource, RELATION_ASSETS};
use super::table::{normalize, Relation};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::sync::Arc;

/// Parameters of `relation`.
#[params]
#[derive(Debug, Clone)]
pub struct RelationParams {
    /// Where the pairs come from: `analogy`, `wordnet` or `freedict`.
    pub resource: Resource,
    /// The relation: an analogy section (`gram8-plural`, `capital-world`…), a WordNet relation
    /// (`antonym`, `hypernym`, `similar-to`, `derivation`, `part-meronym`…) or a FreeDict pair
    /// of languages (`eng-fra`…).
    pub relation: String,
    /// Lower-case every word of the pairs, and the input.
    #[serde(default = "yes")]
    pub lowercase: bool,
    /// Read the pairs backwards (plural → singular, French → English…).
    #[serde(default)]
    pub inverse: bool,
}

fn yes() -> bool {
    true
}

impl RelationParams {
    /// The relation these parameters name.
    pub fn spec(&self) -> RelationSpec {
        RelationSpec {
            resource: self.resource,
            relation: self.relation.clone(),
            lowercase: self.lowercase,
            inverse: self.inverse,
        }
    }
}

/// The `relation` operator.
pub struct RelationOperator {
    relation: Arc<Relation>,
    spec: RelationSpec,
}

impl Function for RelationOperator {
    const DOC: &'static str = "Maps a word to its partner in a relation given by pairs (analogy sections, WordNet pointers, FreeDict translations); the first partner in the resource's order when there are several.";
    type Params = RelationParams;
    const ASSETS: &'static [AssetSpec] = RELATION_ASSETS;

    fn open(params: RelationParams, ctx: &Context) -> Result<Self> {
        let spec = params.spec();
        let relation = load(&spec, ctx)?;
        ensure!(!relation.is_empty(), "{spec} has no single-word pairs");
        Ok(RelationOperator { relation, spec })
    }
}

impl Operator for RelationOperator {
    type Input<'a> = &'a str;
    type Output = String;

    fn apply(&mut self, word: &str) -> Result<String> {
        let key = normalize(word, self.spec.lowercase);
        match self.relation.image(&key) {
            Some(partner) => Ok(partner.to_owned()),
            None => bail!("not in relation: {:?} has no partner in {}", word.trim(), self.spec),
        }
    }
}
