//! A relation as data: word pairs `(source, target)`, grouped by source word, with the preferred
//! partner of each source first, and the lookup the `relation` operator uses.

use std::collections::HashMap;

/// Word pairs of one relation.
///
/// Order: source words in the order they first appear in the resource; for each source, its
/// partners in the resource's order of preference (see each resource). No pair repeats. The
/// monolingual resources leave out a word paired with itself; a dictionary keeps it (French
/// "intelligence" translates English "intelligence").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relation {
    pairs: Vec<(String, String)>,
    /// Source word → index of its first pair.
    first: HashMap<String, usize>,
}

impl Relation {
    /// Builds a relation from candidate pairs listed in preference order: the first candidate of
    /// a source is its preferred partner, and sources are ordered by their first candidate.
    /// Repeated pairs are dropped.
    pub fn from_candidates(candidates: impl IntoIterator<Item = (String, String)>) -> Relation {
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        for (source, target) in candidates {
            if !seen.insert((source.clone(), target.clone())) {
                continue;
            }
            let g = *group_of.entry(source).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(target);
        }
        let mut sources: Vec<(usize, String)> = group_of.into_iter().map(|(s, g)| (g, s)).collect();
        sources.sort_unstable_by_key(|(g, _)| *g);
        let mut pairs = Vec::with_capacity(seen.len());
        let mut first = HashMap::with_capacity(sources.len());
        for (g, source) in sources {
            first.insert(source.clone(), pairs.len());
            for target in std::mem::take(&mut groups[g]) {
                pairs.push((source.clone(), target));
            }
        }
        Relation { pairs, first }
    }

    /// The same relation read backwards: `(target, source)` pairs, each new source's partners
    /// in the order the pairs list them.
    pub fn inverse(&self) -> Relation {
        Relation::from_candidates(self.pairs.iter().map(|(s, t)| (t.clone(), s.clone())))
    }

    /// Every pair, in the documented order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// One pair per source word: the source and its preferred partner (what the operator maps
    /// it to), in source order.
    pub fn first_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(usize, &(String, String))> =
            self.first.values().map(|&i| (i, &self.pairs[i])).collect();
        out.sort_unstable_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, p)| p.clone()).collect()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Number of distinct source words (the relation's domain).
    pub fn domain_len(&self) -> usize {
        self.first.len()
    }

    /// The preferred partner of `word`.
    pub fn image(&self, word: &str) -> Option<&str> {
        self.first.get(word).map(|&i| self.pairs[i].1.as_str())
    }

    /// Every partner of `word`, preferred first.
    pub fn partners<'a>(&'a self, word: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let start = self.first.get(word).copied().unwrap_or(self.pairs.len());
        self.pairs[start..].iter().take_while(move |(s, _)| s == word).map(|(_, t)| t.as_str())
    }
}

/// Normalises a word as the resources write it: hyphen look-alikes (U+2010, U+2011) become `-`,
/// and with `lowercase` every letter is lower-cased.
pub fn normalize(word: &str, lowercase: bool) -> String {
    let w: String =
        word.trim().chars().map(|c| if matches!(c, '\u{2010}' | '\u{2011}') { '-' } else { c }).collect();
    if lowercase {
        w.to_lowercase()
    } else {
        w
    }
}

/// Whether a string is a single word: letters, with hyphens or apostrophes only inside
/// ("chou-fleur", "aujourd'hui"); no spaces, digits or other signs, no affixes ("-able").
pub fn is_word(word: &str) -> bool {
    let (Some(first), Some(last)) = (word.chars().next(), word.chars().last()) else { return false };
    first.is_alphabetic()
        && last.is_alphabetic()
        && word.chars().all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(pairs: &[(&str, &str)]) -> Relation {
        Relation::from_candidates(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())))
    }

    #[test]
    fn pairs_group_by_source_in_first_appearance_order() {
        let r =
            rel(&[("dog", "chien"), ("cat", "chat"), ("dog", "clébard"), ("dog", "chien"), ("cat", "cat")]);
        let pairs: Vec<(&str, &str)> = r.pairs().iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(pairs, [("dog", "chien"), ("dog", "clébard"), ("cat", "chat"), ("cat", "cat")]);
        assert_eq!((r.len(), r.domain_len()), (4, 2));
        assert_eq!(r.image("dog"), Some("chien"));
        assert_eq!(r.partners("dog").collect::<Vec<_>>(), ["chien", "clébard"]);
        assert_eq!(r.partners("cow").count(), 0);
        assert_eq!(
            r.first_pairs(),
            [("dog".to_owned(), "chien".to_owned()), ("cat".to_owned(), "chat".to_owned())]
        );
        let inv = r.inverse();
        assert_eq!(inv.image("clébard"), Some("dog"));
        assert_eq!(inv.domain_len(), 4);
    }

    #[test]
    fn single_words_only() {
        for w in ["chien", "chou-fleur", "aujourd'hui", "Paris", "été"] {
            assert!(is_word(w), "{w}");
        }
        for w in ["", "a lot", "-able", "archi-", "ecc.", "10", "¿qué?", "s.o."] {
            assert!(!is_word(w), "{w}");
        }
        assert_eq!(normalize(" Chou\u{2010}Fleur ", true), "chou-fleur");
    }
}
