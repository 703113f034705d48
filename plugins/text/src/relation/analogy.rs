//! The `analogy` resource: the word2vec analogy questions (`questions-words.txt`, 19,544
//! questions in 14 sections, Apache-2.0) as shipped in gensim 4.4.0's test data.
//!
//! Each section is a relation; each question `a b c d` gives two pairs, `(a, b)` and `(c, d)`.
//! Pairs keep the order of their first appearance.

use super::table::{is_word, normalize, Relation};
use commute_sdk::anyhow::{bail, ensure, Context as _, Result};
use commute_sdk::AssetSpec;
use std::path::Path;

/// The analogy questions inside the gensim wheel.
pub const ANALOGY_QUESTIONS: AssetSpec = AssetSpec::pypi(
    "analogy-questions-words",
    "gensim",
    "4.4.0",
    "gensim/test/test_data/questions-words.txt",
    "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
    603_955,
    "Apache-2.0",
);

/// One analogy question: `a` is to `b` as `c` is to `d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The section (relation) name, e.g. `gram8-plural`.
    pub section: String,
    /// The four words.
    pub words: [String; 4],
}

/// Reads every question, in file order.
pub fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_questions(&text).with_context(|| format!("{}", path.display()))
}

/// Parses the text of `questions-words.txt`.
pub fn parse_questions(text: &str) -> Result<Vec<Question>> {
    let mut section: Option<String> = None;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix(':') {
            section = Some(name.trim().to_owned());
            continue;
        }
        let Some(section) = &section else { bail!("line {}: a question before any `: section` line", n + 1) };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [a, b, c, d] = words[..] else { bail!("line {}: expected four words, got {line:?}", n + 1) };
        out.push(Question { section: section.clone(), words: [a, b, c, d].map(str::to_owned) });
    }
    ensure!(!out.is_empty(), "no questions");
    Ok(out)
}

/// The section names, in file order.
pub fn sections(questions: &[Question]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for q in questions {
        if out.last() != Some(&q.section) && !out.contains(&q.section) {
            out.push(q.section.clone());
        }
    }
    out
}

/// The pairs of one section.
pub fn relation(questions: &[Question], section: &str, lowercase: bool) -> Result<Relation> {
    let in_section: Vec<&Question> = questions.iter().filter(|q| q.section == section).collect();
    if in_section.is_empty() {
        bail!("the analogy set has no relation `{section}`; it has: {}", sections(questions).join(", "));
    }
    let candidates = in_section.into_iter().flat_map(|q| {
        let [a, b, c, d] = &q.words;
        [(a, b), (c, d)].map(|(x, y)| (normalize(x, lowercase), normalize(y, lowercase)))
    });
    Ok(Relation::from_candidates(candidates.filter(|(x, y)| x != y && is_word(x) && is_word(y))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        ": capital-common-countries\nAthens Greece Baghdad Iraq\nAthens Greece Bangkok Thailand\n\
                          : gram8-plural\nbanana bananas bird birds\nbird birds banana bananas\n";

    #[test]
    fn sections_become_relations_of_deduplicated_pairs() {
        let q = parse_questions(SAMPLE).unwrap();
        assert_eq!(q.len(), 4);
        assert_eq!(sections(&q), ["capital-common-countries", "gram8-plural"]);
        let capitals = relation(&q, "capital-common-countries", true).unwrap();
        assert_eq!(capitals.len(), 3);
        assert_eq!(capitals.image("athens"), Some("greece"));
        let cased = relation(&q, "capital-common-countries", false).unwrap();
        assert_eq!(cased.image("Bangkok"), Some("Thailand"));
        assert_eq!(
            relation(&q, "gram8-plural", true).unwrap().first_pairs()[1],
            ("bird".into(), "birds".into())
        );
        let err = relation(&q, "gram9", true).unwrap_err().to_string();
        assert!(err.contains("gram8-plural"), "{err}");
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(parse_questions("a b c d\n").is_err());
        assert!(parse_questions(": s\na b c\n").is_err());
        assert!(parse_questions("").is_err());
    }
}
