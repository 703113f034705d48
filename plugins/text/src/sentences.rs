//! `sentences`: short English sentences from a news corpus — the Lee background corpus that
//! gensim ships as test data (300 Australian news documents, one per line), split into sentences
//! by a fixed rule, filtered by word count and de-duplicated, in corpus order.

use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::collections::HashSet;

/// The Lee background corpus: 300 news documents, one per line (360 kB of ASCII).
pub const LEE_CORPUS: AssetSpec = AssetSpec::pypi(
    "lee-background-corpus",
    "gensim",
    "4.4.0",
    "gensim/test/test_data/lee_background.cor",
    "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb",
    360_082,
    "LGPL-2.1-only",
);

/// Parameters of `sentences`.
#[params]
#[derive(Debug, Clone)]
pub struct SentencesParams {
    /// Number of sentences: the first `count` that pass the word limits, in corpus order. More
    /// than exist (2,180 with the default limits) is an error.
    #[serde(default = "default_count")]
    #[schemars(range(min = 1))]
    pub count: usize,
    /// Fewest words (whitespace-separated) a sentence may have (at least 1).
    #[serde(default = "default_min_words")]
    #[schemars(range(min = 1))]
    pub min_words: usize,
    /// Most words a sentence may have (at least min-words).
    #[serde(default = "default_max_words")]
    pub max_words: usize,
}

fn default_count() -> usize {
    1000
}
fn default_min_words() -> usize {
    3
}
fn default_max_words() -> usize {
    30
}

/// The `sentences` source.
pub struct Sentences {
    params: SentencesParams,
    corpus: String,
}

impl Function for Sentences {
    const DOC: &'static str =
        "Short English sentences from 300 news documents (gensim's Lee corpus), split deterministically, filtered by word count, unique, in corpus order.";
    type Params = SentencesParams;
    const ASSETS: &'static [AssetSpec] = &[LEE_CORPUS];

    fn open(params: SentencesParams, ctx: &Context) -> Result<Self> {
        ensure!(params.count >= 1, "count must be at least 1");
        ensure!(params.min_words >= 1, "min-words must be at least 1");
        ensure!(
            params.min_words <= params.max_words,
            "min-words ({}) must not exceed max-words ({})",
            params.min_words,
            params.max_words
        );
        let path = ctx.asset(LEE_CORPUS.name.as_ref())?;
        let corpus = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the corpus {}", path.display()))?;
        Ok(Sentences { params, corpus })
    }
}

impl Source for Sentences {
    type Output = String;

    fn items(&mut self) -> Result<Vec<String>> {
        let p = &self.params;
        let all = select(&self.corpus, p.min_words, p.max_words);
        ensure!(
            all.len() >= p.count,
            "only {} sentences have {}–{} words; ask for fewer or widen min-words/max-words",
            all.len(),
            p.min_words,
            p.max_words
        );
        Ok(all.into_iter().take(p.count).map(str::to_owned).collect())
    }
}

/// Every distinct sentence of the corpus (one document per line) with `min_words..=max_words`
/// words, in order of first appearance.
pub fn select(corpus: &str, min_words: usize, max_words: usize) -> Vec<&str> {
    let mut seen = HashSet::new();
    corpus
        .lines()
        .flat_map(split_sentences)
        .filter(|s| (min_words..=max_words).contains(&s.split_whitespace().count()))
        .filter(|s| seen.insert(*s))
        .collect()
}

/// Words that end with a full stop without ending a sentence (compared lower-case, without the
/// stop): titles, and abbreviations written with inner stops.
pub const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "sen", "rep", "gov", "lt", "col", "capt",
    "sgt", "no", "mt", "vs", "etc", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "aug", "sept",
    "sep", "oct", "nov", "dec", "u.s", "u.n", "e.g", "i.e", "a.m", "p.m",
];

/// Splits a document into sentences. A sentence ends at a run of `.`, `!` or `?` (with any closing
/// quotes or brackets after it) followed by white space and then an upper-case letter, a digit or
/// an opening quote or bracket — unless the stop ends a single letter (an initial, `George W.
/// Bush`) or one of [`ABBREVIATIONS`]. Sentences are trimmed; empty ones are dropped.
pub fn split_sentences(doc: &str) -> Vec<&str> {
    let bytes = doc.as_bytes();
    let n = bytes.len();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < n {
        let c = bytes[i];
        if !matches!(c, b'.' | b'!' | b'?') {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < n && matches!(bytes[end], b'.' | b'!' | b'?') {
            end += 1;
        }
        while end < n && matches!(bytes[end], b'"' | b'\'' | b')') {
            end += 1;
        }
        let mut next = end;
        while next < n && bytes[next].is_ascii_whitespace() {
            next += 1;
        }
        if next == end || next >= n {
            i = end.max(i + 1);
            continue;
        }
        let opens = bytes[next].is_ascii_uppercase()
            || bytes[next].is_ascii_digit()
            || b"\"'(".contains(&bytes[next]);
        // An abbreviation's stop stands alone before the space; `"No."` or `etc..` end a sentence.
        let lone_stop = c == b'.' && end == i + 1;
        if !opens || (lone_stop && is_abbreviation(&doc[start..i])) {
            i = next;
            continue;
        }
        push_trimmed(&mut out, &doc[start..end]);
        start = next;
        i = next;
    }
    push_trimmed(&mut out, &doc[start..]);
    out
}

/// Whether the last word of `before` (the text up to a full stop) is an initial or an abbreviation.
fn is_abbreviation(before: &str) -> bool {
    let word = before.split_whitespace().last().unwrap_or("");
    let word = word.trim_start_matches(['"', '\'', '(']).to_ascii_lowercase();
    (word.len() == 1 && word.bytes().all(|b| b.is_ascii_alphabetic()))
        || ABBREVIATIONS.contains(&word.as_str())
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, sentence: &'a str) {
    let sentence = sentence.trim();
    if !sentence.is_empty() {
        out.push(sentence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_stops_before_capitals_quotes_and_digits() {
        let doc = "Fire crews were called. \"It is bad,\" he said! Is it? 500 homes were lost. The end.";
        assert_eq!(
            split_sentences(doc),
            vec![
                "Fire crews were called.",
                "\"It is bad,\" he said!",
                "Is it?",
                "500 homes were lost.",
                "The end."
            ]
        );
    }

    #[test]
    fn initials_titles_ellipses_and_decimals_do_not_end_sentences() {
        let doc = "US President George W. Bush met Dr. Ahmad today. Prices rose 1.5 per cent... and fell. \
                   He said \"No.\" Then he left.";
        assert_eq!(
            split_sentences(doc),
            vec![
                "US President George W. Bush met Dr. Ahmad today.",
                "Prices rose 1.5 per cent... and fell.",
                "He said \"No.\"",
                "Then he left."
            ]
        );
    }

    #[test]
    fn text_without_a_final_stop_and_blank_text_are_handled() {
        assert_eq!(split_sentences("No stop at the end"), vec!["No stop at the end"]);
        assert_eq!(split_sentences("  "), Vec::<&str>::new());
        assert_eq!(split_sentences("Ends. "), vec!["Ends."]);
    }

    #[test]
    fn selection_filters_by_word_count_and_drops_repeats_across_documents() {
        let corpus = "One two three. A much longer sentence with many words in it. Short.\n\
                      One two three. Four five six seven.";
        assert_eq!(select(corpus, 3, 5), vec!["One two three.", "Four five six seven."]);
        assert_eq!(select(corpus, 1, 1), vec!["Short."]);
    }
}
