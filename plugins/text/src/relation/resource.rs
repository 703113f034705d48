//! Which resource a relation comes from, the assets they need, and loading a relation once per
//! process.

use super::table::Relation;
use super::{analogy, freedict, wordnet};
use crate::shared::shared;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::path::Path;
use std::sync::Arc;

/// A resource of word relations.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The word2vec analogy questions (gensim's test data): one relation per section.
    Analogy,
    /// WordNet 3.0: antonym, hypernym, hyponym, similar-to, derivation, part-meronym, …
    Wordnet,
    /// FreeDict bilingual dictionaries: eng-fra, fra-eng, eng-spa, spa-eng, eng-ita, ita-eng,
    /// eng-por, por-eng.
    Freedict,
}

impl Resource {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Analogy => "analogy",
            Resource::Wordnet => "wordnet",
            Resource::Freedict => "freedict",
        }
    }
}

/// Every file the relation functions may read (the host fetches them all before opening).
pub const RELATION_ASSETS: &[AssetSpec] = &[
    analogy::ANALOGY_QUESTIONS,
    wordnet::WORDNET_DATA_NOUN,
    wordnet::WORDNET_DATA_VERB,
    wordnet::WORDNET_DATA_ADJ,
    wordnet::WORDNET_DATA_ADV,
    wordnet::WORDNET_INDEX_NOUN,
    wordnet::WORDNET_INDEX_VERB,
    wordnet::WORDNET_INDEX_ADJ,
    wordnet::WORDNET_INDEX_ADV,
    freedict::FREEDICT_ENG_FRA_INDEX,
    freedict::FREEDICT_ENG_FRA_DICT,
    freedict::FREEDICT_FRA_ENG_INDEX,
    freedict::FREEDICT_FRA_ENG_DICT,
    freedict::FREEDICT_ENG_SPA_INDEX,
    freedict::FREEDICT_ENG_SPA_DICT,
    freedict::FREEDICT_SPA_ENG_INDEX,
    freedict::FREEDICT_SPA_ENG_DICT,
    freedict::FREEDICT_ENG_ITA_INDEX,
    freedict::FREEDICT_ENG_ITA_DICT,
    freedict::FREEDICT_ITA_ENG_INDEX,
    freedict::FREEDICT_ITA_ENG_DICT,
    freedict::FREEDICT_ENG_POR_INDEX,
    freedict::FREEDICT_ENG_POR_DICT,
    freedict::FREEDICT_POR_ENG_INDEX,
    freedict::FREEDICT_POR_ENG_DICT,
];

/// Names one relation and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelationSpec {
    /// The resource.
    pub resource: Resource,
    /// The relation within it (`gram8-plural`, `antonym`, `eng-fra`…).
    pub relation: String,
    /// Lower-case every word.
    pub lowercase: bool,
    /// Read the pairs backwards.
    pub inverse: bool,
}

impl std::fmt::Display for RelationSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{}",
            self.resource.name(),
            self.relation,
            if self.inverse { " (inverse)" } else { "" }
        )
    }
}

/// The relation `spec` names, read from the assets in `ctx` once per process.
pub fn load(spec: &RelationSpec, ctx: &Context) -> Result<Arc<Relation>> {
    let asset = |a: &AssetSpec| ctx.asset(&a.name).map(Path::to_path_buf);
    let key = format!(
        "{spec:?}\n{}",
        ctx.assets.values().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n")
    );
    shared(&key, || {
        let start = std::time::Instant::now();
        if spec.inverse {
            let forward = load(&RelationSpec { inverse: false, ..spec.clone() }, ctx)?;
            return Ok(forward.inverse());
        }
        let relation = match spec.resource {
            Resource::Analogy => {
                let path = asset(&analogy::ANALOGY_QUESTIONS)?;
                let questions = shared(&path.display().to_string(), || analogy::read_questions(&path))?;
                analogy::relation(&questions, &spec.relation, spec.lowercase)?
            }
            Resource::Wordnet => {
                let data = wordnet::DATA_FILES.each_ref().map(asset);
                let index = wordnet::INDEX_FILES.each_ref().map(asset);
                let [d0, d1, d2, d3] = data;
                let [i0, i1, i2, i3] = index;
                let (d, i) = ([d0?, d1?, d2?, d3?], [i0?, i1?, i2?, i3?]);
                let wn = shared(&d[0].display().to_string(), || {
                    let start = std::time::Instant::now();
                    let wn = wordnet::WordNet::load(
                        d.each_ref().map(|p| p.as_path()),
                        i.each_ref().map(|p| p.as_path()),
                    )?;
                    tracing::info!(
                        "read WordNet ({} synsets) in {:.2} s",
                        wn.synset_count(),
                        start.elapsed().as_secs_f64()
                    );
                    Ok(wn)
                })?;
                wn.relation(&spec.relation, spec.lowercase)?
            }
            Resource::Freedict => {
                let dictionary = freedict::dictionary(&spec.relation)?;
                let entries = freedict::read_entries(&asset(&dictionary.index)?, &asset(&dictionary.dict)?)?;
                freedict::relation(&entries, spec.lowercase)
            }
        };
        tracing::info!(
            "{spec}: {} pairs over {} words in {:.2} s",
            relation.len(),
            relation.domain_len(),
            start.elapsed().as_secs_f64()
        );
        Ok(relation)
    })
}

/// Every pair of a relation, in its documented order: what the host fits an operator's action on.
pub fn pairs(spec: &RelationSpec, ctx: &Context) -> Result<Vec<(String, String)>> {
    Ok(load(spec, ctx)?.pairs().to_vec())
}
