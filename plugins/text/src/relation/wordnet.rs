//! The `wordnet` resource: WordNet 3.0 (Debian `wordnet-base`) read from its data files —
//! synsets, their words and their pointers — and its index files, which give each word's senses
//! in order of frequency.
//!
//! A pointer links two synsets. A *semantic* pointer (source/target field `0000`: hypernymy,
//! meronymy, similarity…) relates every word of one synset to every word of the other; a
//! *lexical* pointer (antonymy, derivation, pertainyms…) relates one word of each. A relation's
//! pairs are the word pairs of its pointers, between single-word lemmas (multi-word lemmas such
//! as `hot_dog` are left out), adjective markers such as `(p)` removed, and without a word paired
//! with itself (`run` the noun and `run` the verb are derivationally related).
//!
//! The preferred partner of a word comes from its most frequent sense (WordNet's sense order),
//! nouns before verbs before adjectives before adverbs at equal rank, then pointer order and word
//! order in the synset. Source words are listed in the order they first appear in data.noun,
//! data.verb, data.adj and data.adv.

use super::table::{is_word, normalize, Relation};
use commute_sdk::anyhow::{bail, ensure, Context as _, Result};
use commute_sdk::AssetSpec;
use std::collections::HashMap;
use std::path::Path;

macro_rules! wordnet_file {
    ($name:ident, $asset:literal, $path:literal, $sha:literal, $size:literal, $doc:literal) => {
        #[doc = $doc]
        pub const $name: AssetSpec =
            AssetSpec::debian($asset, "wordnet-base", $path, $sha, $size, "WordNet-3.0");
    };
}

wordnet_file!(
    WORDNET_DATA_NOUN,
    "wordnet-data-noun",
    "/usr/share/wordnet/data.noun",
    "fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2",
    15_300_280,
    "WordNet 3.0 noun synsets."
);
wordnet_file!(
    WORDNET_DATA_VERB,
    "wordnet-data-verb",
    "/usr/share/wordnet/data.verb",
    "adcf43e35b581e8036d8b5a52d63d9cd3d3b4870b2720d3c03c799df44777bc2",
    2_772_517,
    "WordNet 3.0 verb synsets."
);
wordnet_file!(
    WORDNET_DATA_ADJ,
    "wordnet-data-adj",
    "/usr/share/wordnet/data.adj",
    "c89120dfc1f046ddff4a631bf9b7e9fa1a36b5e86565a23bf82dbe14f30b88a7",
    3_155_427,
    "WordNet 3.0 adjective synsets."
);
wordnet_file!(
    WORDNET_DATA_ADV,
    "wordnet-data-adv",
    "/usr/share/wordnet/data.adv",
    "444a63bf3955080ab7524f5079cfc07ff9bc682cb98bdb1db73b0fb9829f1139",
    516_696,
    "WordNet 3.0 adverb synsets."
);
wordnet_file!(
    WORDNET_INDEX_NOUN,
    "wordnet-index-noun",
    "/usr/share/wordnet/index.noun",
    "a490d99d93d017bf4822fe2f0ffa51fd73911ce271dc7535fade21f8814b5a04",
    4_786_655,
    "WordNet 3.0 noun index (senses in frequency order)."
);
wordnet_file!(
    WORDNET_INDEX_VERB,
    "wordnet-index-verb",
    "/usr/share/wordnet/index.verb",
    "e2ac24816c3a8289dcb72aaa9cf8db81fdf25ec34d792bfc96ac5b7a20c8b4ae",
    523_980,
    "WordNet 3.0 verb index."
);
wordnet_file!(
    WORDNET_INDEX_ADJ,
    "wordnet-index-adj",
    "/usr/share/wordnet/index.adj",
    "c9865d7b4d1f805bdef82ccdcea5282436e23083e6f6f1b33e716327c4eda810",
    824_127,
    "WordNet 3.0 adjective index."
);
wordnet_file!(
    WORDNET_INDEX_ADV,
    "wordnet-index-adv",
    "/usr/share/wordnet/index.adv",
    "6f5465ed5758fe9c8a2f7ec17b1300f3aa875756c70ff7cba162f7e71bcf88ea",
    162_816,
    "WordNet 3.0 adverb index."
);

/// The data files, in the order read: noun, verb, adjective, adverb.
pub const DATA_FILES: [AssetSpec; 4] =
    [WORDNET_DATA_NOUN, WORDNET_DATA_VERB, WORDNET_DATA_ADJ, WORDNET_DATA_ADV];
/// The index files, in the same order.
pub const INDEX_FILES: [AssetSpec; 4] =
    [WORDNET_INDEX_NOUN, WORDNET_INDEX_VERB, WORDNET_INDEX_ADJ, WORDNET_INDEX_ADV];

/// The relations, by name, with their pointer symbols (`wndb(5WN)`).
pub const RELATIONS: &[(&str, &str)] = &[
    ("antonym", "!"),
    ("hypernym", "@"),
    ("hyponym", "~"),
    ("instance-hypernym", "@i"),
    ("instance-hyponym", "~i"),
    ("member-holonym", "#m"),
    ("substance-holonym", "#s"),
    ("part-holonym", "#p"),
    ("member-meronym", "%m"),
    ("substance-meronym", "%s"),
    ("part-meronym", "%p"),
    ("attribute", "="),
    ("derivation", "+"),
    ("similar-to", "&"),
    ("also-see", "^"),
    ("entailment", "*"),
    ("cause", ">"),
    ("verb-group", "$"),
    ("participle", "<"),
    ("pertainym", "\\"),
    ("topic-domain", ";c"),
    ("topic-member", "-c"),
    ("region-domain", ";r"),
    ("region-member", "-r"),
    ("usage-domain", ";u"),
    ("usage-member", "-u"),
];

/// One pointer of a synset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pointer {
    symbol: u8,
    file: u8,
    offset: u32,
    /// 1-based word numbers for a lexical pointer; 0 and 0 for a semantic one.
    source_word: u8,
    target_word: u8,
}

/// One synset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Synset {
    file: u8,
    offset: u32,
    words: Vec<String>,
    pointers: Vec<Pointer>,
}

/// WordNet's synsets and sense order.
#[derive(Debug, Clone, Default)]
pub struct WordNet {
    synsets: Vec<Synset>,
    by_offset: HashMap<(u8, u32), usize>,
    /// Per part of speech: lemma → synset offsets, most frequent sense first.
    senses: [HashMap<String, Vec<u32>>; 4],
}

impl WordNet {
    /// Reads the four data files and the four index files (noun, verb, adjective, adverb).
    pub fn load(data: [&Path; 4], index: [&Path; 4]) -> Result<WordNet> {
        let mut wn = WordNet::default();
        for (file, path) in data.iter().enumerate() {
            let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            wn.add_data(file as u8, &String::from_utf8_lossy(&text))
                .with_context(|| format!("{}", path.display()))?;
        }
        for (file, path) in index.iter().enumerate() {
            let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            wn.senses[file] = parse_index(&String::from_utf8_lossy(&text))
                .with_context(|| format!("{}", path.display()))?;
        }
        Ok(wn)
    }

    /// Adds the synsets of one data file (`file`: 0 noun, 1 verb, 2 adjective, 3 adverb).
    fn add_data(&mut self, file: u8, text: &str) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            if line.starts_with(' ') || line.is_empty() {
                continue; // the licence header
            }
            let synset = parse_synset(file, line).with_context(|| format!("line {}", n + 1))?;
            self.by_offset.insert((file, synset.offset), self.synsets.len());
            self.synsets.push(synset);
        }
        Ok(())
    }

    /// Number of synsets.
    pub fn synset_count(&self) -> usize {
        self.synsets.len()
    }

    /// Number of pointers of a relation (by name), counted in the files.
    pub fn pointer_count(&self, relation: &str) -> Result<usize> {
        let symbol = symbol_index(relation)?;
        Ok(self.synsets.iter().flat_map(|s| &s.pointers).filter(|p| p.symbol == symbol).count())
    }

    /// The word pairs of a relation.
    pub fn relation(&self, relation: &str, lowercase: bool) -> Result<Relation> {
        let symbol = symbol_index(relation)?;
        // (source, target, sense rank of the source's synset, sequence in file order)
        let mut candidates: Vec<(String, String, usize, usize)> = Vec::new();
        for synset in &self.synsets {
            for pointer in synset.pointers.iter().filter(|p| p.symbol == symbol) {
                let target = self
                    .by_offset
                    .get(&(pointer.file, pointer.offset))
                    .map(|&i| &self.synsets[i])
                    .with_context(|| {
                    format!("a pointer to missing synset {:08} in file {}", pointer.offset, pointer.file)
                })?;
                let word_range = |words: &[String], k: u8| -> Result<std::ops::Range<usize>> {
                    match k {
                        0 => Ok(0..words.len()),
                        k => {
                            ensure!(
                                usize::from(k) <= words.len(),
                                "pointer to word {k} of a {}-word synset",
                                words.len()
                            );
                            Ok(usize::from(k) - 1..usize::from(k))
                        }
                    }
                };
                let sources = word_range(&synset.words, pointer.source_word)?;
                let targets = word_range(&target.words, pointer.target_word)?;
                for a in &synset.words[sources] {
                    if !is_word(a) {
                        continue;
                    }
                    let rank = self.senses[usize::from(synset.file)]
                        .get(&a.to_lowercase())
                        .and_then(|offsets| offsets.iter().position(|&o| o == synset.offset))
                        .unwrap_or(usize::MAX);
                    let a = normalize(a, lowercase);
                    for b in target.words[targets.clone()].iter().filter(|b| is_word(b)) {
                        let b = normalize(b, lowercase);
                        if b != a {
                            let seq = candidates.len();
                            candidates.push((a.clone(), b, rank, seq));
                        }
                    }
                }
            }
        }
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        for (a, _, _, seq) in &candidates {
            first_seen.entry(a.clone()).or_insert(*seq);
        }
        candidates.sort_by_key(|(a, _, rank, seq)| (first_seen[a], *rank, *seq));
        Ok(Relation::from_candidates(candidates.into_iter().map(|(a, b, _, _)| (a, b))))
    }
}

/// The index of a relation name in [`RELATIONS`].
fn symbol_index(relation: &str) -> Result<u8> {
    match RELATIONS.iter().position(|(name, _)| *name == relation) {
        Some(i) => Ok(i as u8),
        None => bail!(
            "WordNet has no relation `{relation}`; it has: {}",
            RELATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The file (0–3) of a pointer's part of speech.
fn pos_file(pos: &str) -> Result<u8> {
    Ok(match pos {
        "n" => 0,
        "v" => 1,
        "a" | "s" => 2,
        "r" => 3,
        other => bail!("unknown part of speech {other:?}"),
    })
}

/// Parses one data line: `offset lex_filenum ss_type w_cnt (word lex_id)… p_cnt (ptr)… | gloss`.
fn parse_synset(file: u8, line: &str) -> Result<Synset> {
    let head = line.split(" | ").next().unwrap_or(line);
    let f: Vec<&str> = head.split_whitespace().collect();
    let field = |i: usize| f.get(i).copied().context("truncated synset line");
    let offset: u32 = field(0)?.parse().context("bad offset")?;
    let w_cnt = usize::from_str_radix(field(3)?, 16).context("bad word count")?;
    let mut words = Vec::with_capacity(w_cnt);
    for k in 0..w_cnt {
        let raw = field(4 + 2 * k)?;
        // Adjective position markers: "(a)", "(p)", "(ip)".
        let word = match raw.find('(') {
            Some(at) if raw.ends_with(')') => &raw[..at],
            _ => raw,
        };
        words.push(word.replace('_', " "));
    }
    let mut i = 4 + 2 * w_cnt;
    let p_cnt: usize = field(i)?.parse().context("bad pointer count")?;
    i += 1;
    let mut pointers = Vec::with_capacity(p_cnt);
    for _ in 0..p_cnt {
        let symbol = field(i)?;
        let Some(symbol) = RELATIONS.iter().position(|(_, s)| *s == symbol) else {
            bail!("unknown pointer symbol {symbol:?}")
        };
        let st = field(i + 3)?;
        ensure!(st.len() == 4, "bad source/target field {st:?}");
        pointers.push(Pointer {
            symbol: symbol as u8,
            offset: field(i + 1)?.parse().context("bad pointer offset")?,
            file: pos_file(field(i + 2)?)?,
            source_word: u8::from_str_radix(&st[..2], 16).context("bad source/target")?,
            target_word: u8::from_str_radix(&st[2..], 16).context("bad source/target")?,
        });
        i += 4;
    }
    Ok(Synset { file, offset, words, pointers })
}

/// Parses an index file: `lemma pos synset_cnt p_cnt (symbol)… sense_cnt tagsense_cnt (offset)…`.
fn parse_index(text: &str) -> Result<HashMap<String, Vec<u32>>> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with(' ') || line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let parse = || -> Result<(String, Vec<u32>)> {
            let count: usize = f.get(2).context("truncated")?.parse()?;
            ensure!(f.len() >= 4 + count, "fewer offsets than the {count} declared");
            let offsets = f[f.len() - count..].iter().map(|o| o.parse::<u32>()).collect::<Result<_, _>>()?;
            Ok((f[0].replace('_', " "), offsets))
        };
        let (lemma, offsets) = parse().with_context(|| format!("index line {}: {line:?}", n + 1))?;
        out.insert(lemma, offsets);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A miniature WordNet in the real format: hot/cold (lexical antonyms, adjectives), a dog is a
    // canine (semantic hypernym), and a multi-word lemma that relations leave out.
    const NOUNS: &str = "  1 This software and database is being provided\n\
        00000100 05 n 02 dog 0 domestic_dog 0 001 @ 00000200 n 0000 | a domesticated canine\n\
        00000200 05 n 01 canine 0 001 ~ 00000100 n 0000 | a carnivore\n";
    const ADJS: &str = "00000300 00 a 02 hot 0 warm(p) 0 001 ! 00000400 a 0101 | high temperature\n\
        00000400 00 a 01 cold 0 001 ! 00000300 a 0101 | low temperature\n";
    const INDEX_NOUN: &str = "dog n 1 1 @ 1 1 00000100\ncanine n 1 1 ~ 1 0 00000200\n";

    fn mini() -> WordNet {
        let mut wn = WordNet::default();
        wn.add_data(0, NOUNS).unwrap();
        wn.add_data(2, ADJS).unwrap();
        wn.senses[0] = parse_index(INDEX_NOUN).unwrap();
        wn
    }

    #[test]
    fn lexical_pointers_pair_one_word_semantic_pointers_pair_all() {
        let wn = mini();
        assert_eq!(wn.synset_count(), 4);
        let antonyms = wn.relation("antonym", true).unwrap();
        assert_eq!(antonyms.pairs(), [("hot".into(), "cold".into()), ("cold".into(), "hot".into())]);
        let hypernyms = wn.relation("hypernym", true).unwrap();
        // "domestic dog" is two words: only dog → canine remains.
        assert_eq!(hypernyms.pairs(), [("dog".into(), "canine".into())]);
        assert_eq!(wn.pointer_count("hyponym").unwrap(), 1);
        let err = wn.relation("antonyms", true).unwrap_err().to_string();
        assert!(err.contains("part-meronym"), "{err}");
    }

    #[test]
    fn adjective_markers_are_removed() {
        let s = parse_synset(2, "00000300 00 a 02 hot 0 warm(p) 0 000 | x").unwrap();
        assert_eq!(s.words, ["hot", "warm"]);
        assert!(parse_synset(0, "00000100 05 n 01 dog 0 001 ?? 00000200 n 0000 | x").is_err());
        assert!(parse_synset(0, "00000100 05 n 03 dog 0").is_err());
    }
}
