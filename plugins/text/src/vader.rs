//! VADER's rule-based sentiment scorer (Hutto & Gilbert, 2014), as published in
//! `vaderSentiment` 3.3.2: lexicon lookup, booster and dampener words, negation (including "no"
//! and "least"), the contrastive "but", ALL-CAPS emphasis, "!" and "?" emphasis, emoji
//! descriptions, a few idioms, and the normalisation `x / sqrt(x² + 15)`.
//!
//! Every rule follows the reference implementation, quirks included (its "but" rule rescales the
//! *first* sentiment equal to each value), so that scores match it to float precision. The only
//! difference is that nothing is rounded: the reference rounds compound to 4 decimals and the
//! proportions to 3.

use commute_sdk::anyhow::{Context as _, Result};
use std::collections::HashMap;

/// Added to a booster word's effect (and subtracted for dampeners).
const B_INCR: f64 = 0.293;
/// The effect of a dampener word.
const B_DECR: f64 = -0.293;
/// Added to the valence of an ALL-CAPS word among mixed-case words.
const C_INCR: f64 = 0.733;
/// Negation multiplies a valence by this.
const N_SCALAR: f64 = -0.74;

/// Words that negate what follows (words containing "n't" negate too).
const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

/// Degree adverbs that raise (boosters) or lower (dampeners) the next sentiment word's intensity.
const BOOSTERS: &[(&str, f64)] = &[
    ("absolutely", B_INCR),
    ("amazingly", B_INCR),
    ("awfully", B_INCR),
    ("completely", B_INCR),
    ("considerable", B_INCR),
    ("considerably", B_INCR),
    ("decidedly", B_INCR),
    ("deeply", B_INCR),
    ("effing", B_INCR),
    ("enormous", B_INCR),
    ("enormously", B_INCR),
    ("entirely", B_INCR),
    ("especially", B_INCR),
    ("exceptional", B_INCR),
    ("exceptionally", B_INCR),
    ("extreme", B_INCR),
    ("extremely", B_INCR),
    ("fabulously", B_INCR),
    ("flipping", B_INCR),
    ("flippin", B_INCR),
    ("frackin", B_INCR),
    ("fracking", B_INCR),
    ("fricking", B_INCR),
    ("frickin", B_INCR),
    ("frigging", B_INCR),
    ("friggin", B_INCR),
    ("fully", B_INCR),
    ("fuckin", B_INCR),
    ("fucking", B_INCR),
    ("fuggin", B_INCR),
    ("fugging", B_INCR),
    ("greatly", B_INCR),
    ("hella", B_INCR),
    ("highly", B_INCR),
    ("hugely", B_INCR),
    ("incredible", B_INCR),
    ("incredibly", B_INCR),
    ("intensely", B_INCR),
    ("major", B_INCR),
    ("majorly", B_INCR),
    ("more", B_INCR),
    ("most", B_INCR),
    ("particularly", B_INCR),
    ("purely", B_INCR),
    ("quite", B_INCR),
    ("really", B_INCR),
    ("remarkably", B_INCR),
    ("so", B_INCR),
    ("substantially", B_INCR),
    ("thoroughly", B_INCR),
    ("total", B_INCR),
    ("totally", B_INCR),
    ("tremendous", B_INCR),
    ("tremendously", B_INCR),
    ("uber", B_INCR),
    ("unbelievably", B_INCR),
    ("unusually", B_INCR),
    ("utter", B_INCR),
    ("utterly", B_INCR),
    ("very", B_INCR),
    ("almost", B_DECR),
    ("barely", B_DECR),
    ("hardly", B_DECR),
    ("just enough", B_DECR),
    ("kind of", B_DECR),
    ("kinda", B_DECR),
    ("kindof", B_DECR),
    ("kind-of", B_DECR),
    ("less", B_DECR),
    ("little", B_DECR),
    ("marginal", B_DECR),
    ("marginally", B_DECR),
    ("occasional", B_DECR),
    ("occasionally", B_DECR),
    ("partly", B_DECR),
    ("scarce", B_DECR),
    ("scarcely", B_DECR),
    ("slight", B_DECR),
    ("slightly", B_DECR),
    ("somewhat", B_DECR),
    ("sort of", B_DECR),
    ("sorta", B_DECR),
    ("sortof", B_DECR),
    ("sort-of", B_DECR),
];

/// Phrases with a fixed valence that replaces their words'.
const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// ASCII punctuation, stripped from the ends of words.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// VADER's scores for one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// The normalised sum of valences, in [-1, 1].
    pub compound: f64,
    /// Share of positive intensity.
    pub pos: f64,
    /// Share of neutral words.
    pub neu: f64,
    /// Share of negative intensity.
    pub neg: f64,
    /// The sum that `compound` normalises: rule-adjusted word valences plus punctuation emphasis
    /// (for a single word, its lexicon valence).
    pub sum: f64,
}

/// The VADER analyser: a valence lexicon, emoji descriptions and the rules.
#[derive(Debug, Clone)]
pub struct Vader {
    lexicon: HashMap<String, f64>,
    emojis: HashMap<char, String>,
    boosters: HashMap<&'static str, f64>,
    special: HashMap<&'static str, f64>,
}

impl Vader {
    /// Builds the analyser from the text of `vader_lexicon.txt` (word, tab, mean valence, …) and
    /// of `emoji_utf8_lexicon.txt` (emoji, tab, description).
    pub fn new(lexicon: &str, emojis: &str) -> Result<Vader> {
        let mut lex = HashMap::new();
        for (n, line) in lexicon.trim_end_matches('\n').split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let mut fields = line.trim().split('\t');
            let (word, measure) = (fields.next().unwrap_or_default(), fields.next());
            let measure = measure.with_context(|| format!("lexicon line {}: no valence: {line:?}", n + 1))?;
            let value: f64 = measure
                .trim()
                .parse()
                .with_context(|| format!("lexicon line {}: bad valence {measure:?}", n + 1))?;
            lex.insert(word.to_owned(), value);
        }
        let mut emoji_map = HashMap::new();
        for line in emojis.trim_end_matches('\n').split('\n') {
            let mut fields = line.trim().split('\t');
            let (emoji, description) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
            // The reference looks emojis up one code point at a time, so only single code points match.
            let mut chars = emoji.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                emoji_map.insert(c, description.to_owned());
            }
        }
        Ok(Vader {
            lexicon: lex,
            emojis: emoji_map,
            boosters: BOOSTERS.iter().copied().collect(),
            special: SPECIAL_CASES.iter().copied().collect(),
        })
    }

    /// Number of lexicon entries.
    pub fn lexicon_len(&self) -> usize {
        self.lexicon.len()
    }

    /// The lexicon's mean valence of a (lower-case) token.
    pub fn valence(&self, token: &str) -> Option<f64> {
        self.lexicon.get(token).copied()
    }

    /// Whether a (lower-case) word is a booster or dampener ("very", "slightly"…).
    pub fn is_booster(&self, lower: &str) -> bool {
        self.boosters.contains_key(lower)
    }

    /// Scores a text.
    pub fn scores(&self, text: &str) -> Scores {
        let text = self.describe_emojis(text);
        let text = text.trim();
        let words: Vec<&str> = text.split_whitespace().map(strip_punctuation_if_word).collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let cap_diff = allcap_differential(&words);
        let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
        for i in 0..words.len() {
            if self.boosters.contains_key(lower[i].as_str())
                || (i + 1 < words.len() && lower[i] == "kind" && lower[i + 1] == "of")
            {
                sentiments.push(0.0);
                continue;
            }
            sentiments.push(self.word_valence(&words, &lower, i, cap_diff));
        }
        but_check(&lower, &mut sentiments);
        score(&sentiments, text)
    }

    /// Replaces each emoji by its description, as the reference does.
    fn describe_emojis(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut prev_space = true;
        for c in text.chars() {
            match self.emojis.get(&c) {
                Some(description) => {
                    if !prev_space {
                        out.push(' ');
                    }
                    out.push_str(description);
                    prev_space = false;
                }
                None => {
                    out.push(c);
                    prev_space = c == ' ';
                }
            }
        }
        out
    }

    fn in_lexicon(&self, lower: &str) -> bool {
        self.lexicon.contains_key(lower)
    }

    /// The rule-adjusted valence of word `i`.
    fn word_valence(&self, words: &[&str], lower: &[String], i: usize, cap_diff: bool) -> f64 {
        let Some(&base) = self.lexicon.get(lower[i].as_str()) else { return 0.0 };
        let mut valence = base;
        // "no" before another lexicon word negates it rather than counting itself.
        if lower[i] == "no" && i + 1 < words.len() && self.in_lexicon(&lower[i + 1]) {
            valence = 0.0;
        }
        if (i > 0 && lower[i - 1] == "no")
            || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
        {
            valence = base * N_SCALAR;
        }
        if is_upper(words[i]) && cap_diff {
            if valence > 0.0 {
                valence += C_INCR;
            } else {
                valence -= C_INCR;
            }
        }
        for start in 0..3 {
            if i > start && !self.in_lexicon(&lower[i - (start + 1)]) {
                let mut s = self.booster(words[i - (start + 1)], &lower[i - (start + 1)], valence, cap_diff);
                if start == 1 && s != 0.0 {
                    s *= 0.95;
                }
                if start == 2 && s != 0.0 {
                    s *= 0.9;
                }
                valence += s;
                valence = negation_check(valence, lower, start, i);
                if start == 2 {
                    valence = self.special_idioms(valence, lower, i);
                }
            }
        }
        least_check(self, valence, lower, i)
    }

    /// The effect of a booster or dampener word before a sentiment word of this valence.
    fn booster(&self, word: &str, lower: &str, valence: f64, cap_diff: bool) -> f64 {
        let Some(&b) = self.boosters.get(lower) else { return 0.0 };
        let mut scalar = if valence < 0.0 { -b } else { b };
        if is_upper(word) && cap_diff {
            if valence > 0.0 {
                scalar += C_INCR;
            } else {
                scalar -= C_INCR;
            }
        }
        scalar
    }

    /// Idioms around word `i` (which has at least three words before it).
    fn special_idioms(&self, mut valence: f64, lower: &[String], i: usize) -> f64 {
        let one_zero = format!("{} {}", lower[i - 1], lower[i]);
        let two_one_zero = format!("{} {} {}", lower[i - 2], lower[i - 1], lower[i]);
        let two_one = format!("{} {}", lower[i - 2], lower[i - 1]);
        let three_two_one = format!("{} {} {}", lower[i - 3], lower[i - 2], lower[i - 1]);
        let three_two = format!("{} {}", lower[i - 3], lower[i - 2]);
        for seq in [&one_zero, &two_one_zero, &two_one, &three_two_one, &three_two] {
            if let Some(&v) = self.special.get(seq.as_str()) {
                valence = v;
                break;
            }
        }
        if lower.len() - 1 > i {
            if let Some(&v) = self.special.get(format!("{} {}", lower[i], lower[i + 1]).as_str()) {
                valence = v;
            }
        }
        if lower.len() - 1 > i + 1 {
            if let Some(&v) =
                self.special.get(format!("{} {} {}", lower[i], lower[i + 1], lower[i + 2]).as_str())
            {
                valence = v;
            }
        }
        for n_gram in [&three_two_one, &three_two, &two_one] {
            if let Some(&b) = self.boosters.get(n_gram.as_str()) {
                valence += b;
            }
        }
        valence
    }
}

/// Strips leading and trailing ASCII punctuation, unless that leaves two characters or fewer
/// (then it was probably an emoticon such as ":)" and is kept whole).
pub(crate) fn strip_punctuation_if_word(token: &str) -> &str {
    let stripped = token.trim_matches(|c| PUNCTUATION.contains(c));
    if stripped.chars().count() <= 2 {
        token
    } else {
        stripped
    }
}

/// Python's `str.isupper`: at least one cased character and no lower-case one.
fn is_upper(word: &str) -> bool {
    let mut cased = false;
    for c in word.chars() {
        if c.is_lowercase() {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Whether some, but not all, words are ALL CAPS.
fn allcap_differential(words: &[&str]) -> bool {
    let caps = words.iter().filter(|w| is_upper(w)).count();
    let differential = words.len() - caps;
    differential > 0 && differential < words.len()
}

/// Whether a (lower-case) word negates.
pub(crate) fn negated(word: &str) -> bool {
    NEGATE.contains(&word) || word.contains("n't")
}

fn negation_check(valence: f64, lower: &[String], start: usize, i: usize) -> f64 {
    let is = |k: usize, w: &str| lower[i - k] == w;
    match start {
        0 if negated(&lower[i - 1]) => valence * N_SCALAR,
        1 => {
            if is(2, "never") && (is(1, "so") || is(1, "this")) {
                valence * 1.25
            } else if is(2, "without") && is(1, "doubt") {
                valence
            } else if negated(&lower[i - 2]) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
        2 => {
            // As in the reference: `never so|this` two back, or `so|this` right before.
            if (is(3, "never") && (is(2, "so") || is(2, "this"))) || (is(1, "so") || is(1, "this")) {
                valence * 1.25
            } else if is(3, "without") && (is(2, "doubt") || is(1, "doubt")) {
                valence
            } else if negated(&lower[i - 3]) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
        _ => valence,
    }
}

/// "least" before a word negates it, except in "at least" and "very least".
fn least_check(vader: &Vader, valence: f64, lower: &[String], i: usize) -> f64 {
    if i > 1 && !vader.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
        if lower[i - 2] != "at" && lower[i - 2] != "very" {
            return valence * N_SCALAR;
        }
    } else if i > 0 && !vader.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
        return valence * N_SCALAR;
    }
    valence
}

/// After the first "but", sentiments weigh 1.5×, before it 0.5× — applied, as in the reference,
/// to the first sentiment equal to each value in turn.
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else { return };
    for k in 0..sentiments.len() {
        let value = sentiments[k];
        let si = sentiments.iter().position(|&s| s == value).unwrap_or(k);
        if si < bi {
            sentiments[si] = value * 0.5;
        } else if si > bi {
            sentiments[si] = value * 1.5;
        }
    }
}

/// Emphasis from up to four "!" and from two or more "?".
fn punctuation_emphasis(text: &str) -> f64 {
    let ep = text.matches('!').count().min(4) as f64 * 0.292;
    let qm = match text.matches('?').count() {
        n @ 2..=3 => n as f64 * 0.18,
        n if n > 3 => 0.96,
        _ => 0.0,
    };
    ep + qm
}

/// `x / sqrt(x² + 15)`, clipped to [-1, 1].
fn normalize(score: f64) -> f64 {
    (score / (score * score + 15.0).sqrt()).clamp(-1.0, 1.0)
}

fn score(sentiments: &[f64], text: &str) -> Scores {
    if sentiments.is_empty() {
        return Scores { compound: 0.0, pos: 0.0, neu: 0.0, neg: 0.0, sum: 0.0 };
    }
    let mut sum: f64 = sentiments.iter().sum();
    let emphasis = punctuation_emphasis(text);
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    let compound = normalize(sum);
    let (mut pos_sum, mut neg_sum, mut neu_count) = (0.0f64, 0.0f64, 0usize);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu_count += 1;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += emphasis;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= emphasis;
    }
    let total = pos_sum + neg_sum.abs() + neu_count as f64;
    Scores {
        compound,
        pos: (pos_sum / total).abs(),
        neu: (neu_count as f64 / total).abs(),
        neg: (neg_sum / total).abs(),
        sum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few entries with the valences of the real lexicon.
    fn vader() -> Vader {
        let lexicon =
            "good\t1.9\t0.9\t[2]\nhappy\t2.7\t0.8\t[3]\nsad\t-2.1\t0.9\t[-2]\nno\t-1.2\t0.7\t[-1]\n\
                       terrible\t-2.1\t1.0\t[-2]\n:)\t2.0\t1.2\t[2]\n";
        Vader::new(lexicon, "😀\tgrinning face\n👍🏽\tthumbs up: medium skin tone\n").unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_single_word_scores_its_lexicon_valence() {
        let s = vader().scores("happy");
        assert!(close(s.sum, 2.7));
        assert!(close(s.compound, 2.7 / (2.7f64 * 2.7 + 15.0).sqrt()));
        assert!(close(s.pos, 1.0) && s.neg == 0.0 && s.neu == 0.0);
    }

    #[test]
    fn boosters_negation_caps_and_punctuation_follow_the_rules() {
        let v = vader();
        assert!(close(v.scores("very happy").sum, 2.7 + B_INCR));
        assert!(close(v.scores("not happy").sum, 2.7 * N_SCALAR));
        // Caps among lower-case words add C_INCR.
        assert!(close(v.scores("I am HAPPY").sum, 2.7 + C_INCR));
        // All caps: no differential, no emphasis.
        assert!(close(v.scores("HAPPY").sum, 2.7));
        assert!(close(v.scores("happy!!").sum, 2.7 + 2.0 * 0.292));
        // "no" before a lexicon word negates it instead of counting itself.
        assert!(close(v.scores("no good").sum, 1.9 * N_SCALAR));
        // "but": before ×0.5, after ×1.5.
        assert!(close(v.scores("sad but happy").sum, -2.1 * 0.5 + 2.7 * 1.5));
        // Emoticons survive punctuation stripping; emojis become their descriptions.
        assert!(close(v.scores("ok :)").sum, 2.0));
        assert_eq!(v.describe_emojis("x😀y"), "x grinning facey");
    }

    #[test]
    fn text_without_lexicon_words_is_neutral_and_empty_text_is_zero() {
        let s = vader().scores("the table is brown");
        assert_eq!((s.compound, s.pos, s.neu, s.neg), (0.0, 0.0, 1.0, 0.0));
        let s = vader().scores("   ");
        assert_eq!((s.compound, s.pos, s.neu, s.neg, s.sum), (0.0, 0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn the_but_rule_keeps_the_reference_quirk() {
        // Halving 2.0 gives 1.0, equal to the next value: the reference then halves the first
        // 1.0 again and leaves the second one as it was.
        let mut s = vec![2.0, 1.0, 0.0, 3.0];
        but_check(&["a", "b", "but", "c"].map(String::from), &mut s);
        assert_eq!(s, vec![0.5, 1.0, 0.0, 4.5]);
    }

    #[test]
    fn python_isupper_semantics() {
        assert!(
            is_upper("GOOD!") && is_upper("A1") && !is_upper("Good") && !is_upper("123") && !is_upper("")
        );
        assert_eq!(strip_punctuation_if_word("(happy!)"), "happy");
        assert_eq!(strip_punctuation_if_word(":-)"), ":-)");
    }

    #[test]
    fn a_line_without_a_valence_is_an_error() {
        let err = Vader::new("good\n", "").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
