//! The `inflect` operator: a word → its plural, feminine, past, comparative or adverb, by the
//! spelling rules of English or French and short tables of irregulars.
//!
//! | `language` | forms |
//! |---|---|
//! | `en` | `plural` (cat → cats, city → cities, man → men), `past` (stop → stopped, cry → cried), `comparative` (big → bigger, at most 6 letters), `adverb` (happy → happily, basic → basically) |
//! | `fr` | `plural` (journal → journaux, genou → genoux), `feminine` (heureux → heureuse, bon → bonne), `adverb` (vrai → vraiment, évident → évidemment) |
//!
//! Each form is an [`Inflection`]: a table of irregulars, the words (or endings) it would leave
//! unchanged, then ordered spelling [`Rule`]s, the first that matches wins ([`en`], [`fr`]).
//!
//! The rules apply blindly: the result need not be a real word (a noun's "past", an English verb
//! outside the table of irregulars). The encoders downstream refuse words outside their
//! vocabulary, and the host skips those items. Per-item errors: anything but a single lower-case
//! word (letters a–z and French accented letters; no spaces, digits, hyphens or apostrophes), a
//! word the form leaves unchanged (`no change`: an operator that does nothing teaches nothing),
//! and for the English comparative a word of more than 6 letters (`too long`).

pub mod en;
pub mod fr;

use commute_sdk::prelude::*;

/// A language with inflection rules.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English: plural, past, comparative, adverb.
    En,
    /// French: plural, feminine, adverb.
    Fr,
}

impl Language {
    /// The parameter's name (`en`, `fr`).
    pub fn name(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    /// The forms this language has rules for.
    pub fn forms(self) -> &'static [Form] {
        match self {
            Language::En => &[Form::Plural, Form::Past, Form::Comparative, Form::Adverb],
            Language::Fr => &[Form::Plural, Form::Feminine, Form::Adverb],
        }
    }
}

/// A form to inflect a word into.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// Nouns and adjectives, en and fr: cat → cats, journal → journaux.
    Plural,
    /// Adjectives and nouns, fr: grand → grande, heureux → heureuse.
    Feminine,
    /// Verbs, en: walk → walked, stop → stopped.
    Past,
    /// Short adjectives (at most 6 letters), en: big → bigger, happy → happier.
    Comparative,
    /// Adjectives, en and fr: quick → quickly, vrai → vraiment.
    Adverb,
}

impl Form {
    /// The parameter's name (`plural`, `feminine`…).
    pub fn name(self) -> &'static str {
        match self {
            Form::Plural => "plural",
            Form::Feminine => "feminine",
            Form::Past => "past",
            Form::Comparative => "comparative",
            Form::Adverb => "adverb",
        }
    }
}

/// The rules of one form in one language, or `None` where the language has none.
pub fn inflection(language: Language, form: Form) -> Option<&'static Inflection> {
    match (language, form) {
        (Language::En, Form::Plural) => Some(&en::PLURAL),
        (Language::En, Form::Past) => Some(&en::PAST),
        (Language::En, Form::Comparative) => Some(&en::COMPARATIVE),
        (Language::En, Form::Adverb) => Some(&en::ADVERB),
        (Language::Fr, Form::Plural) => Some(&fr::PLURAL),
        (Language::Fr, Form::Feminine) => Some(&fr::FEMININE),
        (Language::Fr, Form::Adverb) => Some(&fr::ADVERB),
        (Language::En, Form::Feminine) | (Language::Fr, Form::Past | Form::Comparative) => None,
    }
}

/// The accented letters a word may have besides a–z (those of French).
pub const ACCENTED: &str = "àâäçéèêëîïôöùûüÿœæ";

/// Whether `word` is a single lower-case word: letters a–z and [`ACCENTED`] only.
pub fn is_lower_word(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || ACCENTED.contains(c))
}

// ---- rules ---------------------------------------------------------------------------------------

/// What a [`Rule`] does to a word that ends in its ending.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Adds the text after the word: bus → bus + es.
    Append,
    /// Replaces the ending with the text: city → cit + ies.
    Replace,
    /// Doubles the final letter, then adds the text: stop → stop + p + ed.
    Double,
    /// Adds the text after another inflection of the word: heureux → heureuse + ment.
    Via(fn(&str) -> Result<String>),
}

/// A spelling rule: a word ending in `ending` (that passes the rule's conditions) is rewritten
/// by `action` with `text`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The ending the word must have (`""` matches every word).
    pub ending: &'static str,
    /// What is done with it.
    pub action: Action,
    /// The text added or put in place of the ending.
    pub text: &'static str,
    /// A condition on the stem, the word without its ending (after a consonant…).
    pub when: fn(&str) -> bool,
    /// The rule applies to these words only.
    pub only: Option<&'static [&'static str]>,
    /// The rule never applies to these words (they fall through to the next rule).
    pub except: &'static [&'static str],
}

fn always(_: &str) -> bool {
    true
}

impl Rule {
    const fn new(ending: &'static str, action: Action, text: &'static str) -> Rule {
        Rule { ending, action, text, when: always, only: None, except: &[] }
    }

    /// A word in `ending` gets `text` after it.
    pub const fn append(ending: &'static str, text: &'static str) -> Rule {
        Rule::new(ending, Action::Append, text)
    }

    /// A word in `ending` gets `text` in its place.
    pub const fn replace(ending: &'static str, text: &'static str) -> Rule {
        Rule::new(ending, Action::Replace, text)
    }

    /// Any word gets its final letter doubled and `text` after it.
    pub const fn double(text: &'static str) -> Rule {
        Rule::new("", Action::Double, text)
    }

    /// Any word gets `text` after its inflection by `first`.
    pub const fn via(first: fn(&str) -> Result<String>, text: &'static str) -> Rule {
        Rule::new("", Action::Via(first), text)
    }

    /// Only where the stem passes `test`.
    pub const fn when(self, test: fn(&str) -> bool) -> Rule {
        Rule { when: test, ..self }
    }

    /// Only for these words.
    pub const fn only(self, words: &'static [&'static str]) -> Rule {
        Rule { only: Some(words), ..self }
    }

    /// Never for these words.
    pub const fn except(self, words: &'static [&'static str]) -> Rule {
        Rule { except: words, ..self }
    }

    /// The rule's result for `word`, or `None` where it does not apply.
    pub fn apply(&self, word: &str) -> Result<Option<String>> {
        let Some(stem) = word.strip_suffix(self.ending) else { return Ok(None) };
        if self.only.is_some_and(|only| !only.contains(&word)) || self.except.contains(&word) {
            return Ok(None);
        }
        if !(self.when)(stem) {
            return Ok(None);
        }
        let text = self.text;
        Ok(match self.action {
            Action::Append => Some(format!("{word}{text}")),
            Action::Replace => Some(format!("{stem}{text}")),
            Action::Double => word.chars().last().map(|last| format!("{word}{last}{text}")),
            Action::Via(first) => Some(format!("{}{text}", first(word)?)),
        })
    }
}

/// One form of one language: irregulars first, then the words it leaves unchanged, then the
/// spelling rules in order.
#[derive(Debug, Clone, Copy)]
pub struct Inflection {
    /// What it is called in messages (`English plural`).
    pub name: &'static str,
    /// Words with their own form (man → men), looked up before any rule.
    pub irregular: &'static [(&'static str, &'static str)],
    /// Words whose form is themselves (sheep): a `no change` error.
    pub unchanged: &'static [&'static str],
    /// Endings whose words keep their form (French plural of -s, -x, -z): a `no change` error.
    pub unchanged_endings: &'static [&'static str],
    /// The longest word it accepts, in letters (a `too long` error beyond).
    pub max_letters: Option<usize>,
    /// The spelling rules, the first that applies wins; the last should match every word.
    pub rules: &'static [Rule],
}

impl Inflection {
    /// The irregular form of `word`, if the table has one.
    pub fn irregular(&self, word: &str) -> Option<&'static str> {
        self.irregular.iter().find(|(w, _)| *w == word).map(|&(_, form)| form)
    }

    /// Inflects `word`, assumed a single lower-case word ([`is_lower_word`]).
    pub fn apply(&self, word: &str) -> Result<String> {
        let name = self.name;
        if let Some(form) = self.irregular(word) {
            return Ok(form.to_owned());
        }
        if self.unchanged.contains(&word) {
            bail!("no change: {word:?} is its own {name}");
        }
        if let Some(ending) = self.unchanged_endings.iter().find(|e| word.ends_with(*e)) {
            bail!("no change: {word:?} ends in -{ending}, which the {name} keeps");
        }
        if let Some(max) = self.max_letters {
            let letters = word.chars().count();
            ensure!(
                letters <= max,
                "too long: {word:?} has {letters} letters, the {name} takes at most {max}"
            );
        }
        for rule in self.rules {
            if let Some(form) = rule.apply(word)? {
                ensure!(form != word, "no change: {word:?} is its own {name}");
                return Ok(form);
            }
        }
        bail!("no rule of the {name} applies to {word:?}")
    }
}

// ---- the operator --------------------------------------------------------------------------------

/// Parameters of `inflect`.
#[params]
#[derive(Debug, Clone)]
pub struct InflectParams {
    /// The language of the words: `en` or `fr`.
    pub language: Language,
    /// The form: `plural` (en, fr), `feminine` (fr), `past` (en), `comparative` (en, words of at
    /// most 6 letters) or `adverb` (en, fr).
    pub form: Form,
}

/// The `inflect` operator.
pub struct Inflect {
    inflection: &'static Inflection,
}

impl Function for Inflect {
    const DOC: &'static str = "Inflects a single lower-case word by spelling rules and short tables of irregulars: English plural, past, comparative, adverb; French plural, feminine, adverb. The result need not be a real word; unchanged words are per-item errors.";
    type Params = InflectParams;

    fn open(params: InflectParams, _ctx: &Context) -> Result<Self> {
        let InflectParams { language, form } = params;
        match inflection(language, form) {
            Some(inflection) => Ok(Inflect { inflection }),
            None => {
                let forms: Vec<&str> = language.forms().iter().map(|f| f.name()).collect();
                bail!(
                    "no `{}` rules for language `{}`, which has: {}",
                    form.name(),
                    language.name(),
                    forms.join(", ")
                )
            }
        }
    }
}

impl Operator for Inflect {
    type Input<'a> = &'a str;
    type Output = String;

    fn apply(&mut self, word: &str) -> Result<String> {
        ensure!(is_lower_word(word), "not a single lower-case word: {word:?}");
        self.inflection.apply(word)
    }
}

/// Test helpers shared by the language modules.
#[cfg(test)]
pub(crate) mod testing {
    use super::Inflection;

    /// Checks a table of (word, expected form).
    pub fn check(inflection: &Inflection, cases: &[(&str, &str)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|&(word, want)| match inflection.apply(word) {
                Ok(got) if got == want => None,
                Ok(got) => Some(format!("{word} → {got}, expected {want}")),
                Err(e) => Some(format!("{word}: {e}, expected {want}")),
            })
            .collect();
        assert!(wrong.is_empty(), "{}:\n{}", inflection.name, wrong.join("\n"));
    }

    /// Checks a table of (word, the start of the expected error).
    pub fn check_errors(inflection: &Inflection, cases: &[(&str, &str)]) {
        for &(word, prefix) in cases {
            match inflection.apply(word) {
                Err(e) => assert!(e.to_string().starts_with(prefix), "{}: {word}: {e}", inflection.name),
                Ok(got) => panic!("{}: {word} → {got}, expected an error {prefix:?}", inflection.name),
            }
        }
    }

    /// Checks a table's own consistency: irregulars change the word, every listed word is a
    /// lower-case word, and a rule's `only` and `except` lists name words in its ending.
    pub fn check_tables(inflection: &Inflection) {
        let name = inflection.name;
        for &(word, form) in inflection.irregular {
            assert!(super::is_lower_word(word) && super::is_lower_word(form), "{name}: {word} → {form}");
            assert_ne!(word, form, "{name}: an irregular that changes nothing");
        }
        for word in inflection.unchanged {
            assert!(super::is_lower_word(word), "{name}: {word}");
        }
        for rule in inflection.rules {
            for word in rule.only.unwrap_or_default().iter().chain(rule.except) {
                assert!(super::is_lower_word(word), "{name}: {word}");
                assert!(word.ends_with(rule.ending), "{name}: {word} listed on the -{} rule", rule.ending);
                assert!(inflection.irregular(word).is_none(), "{name}: {word} is also irregular");
            }
        }
        let last = inflection.rules.last().expect("rules");
        assert!(last.ending.is_empty() && last.only.is_none(), "{name}: the last rule must match every word");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commute_sdk::testing::{Conformance, Harness};
    use commute_sdk::{CallError, FunctionKind, Value, ValueKind};

    fn texts(words: &[&str]) -> Vec<Value> {
        words.iter().map(|w| Value::text(*w)).collect()
    }

    fn apply(params: &str, words: &[&str]) -> Vec<Result<String, String>> {
        let items = Harness::new(crate::commute_plugin())
            .call_items("inflect", params, &texts(words))
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        items.into_iter().map(|r| r.map(|v| v.as_text().expect("text").to_owned())).collect()
    }

    #[test]
    fn inflect_is_a_text_operator_with_its_two_parameters() {
        let h = Harness::new(crate::commute_plugin());
        let spec = h.manifest().function("inflect").expect("inflect is registered");
        assert_eq!(spec.kind, FunctionKind::Operator);
        assert_eq!((spec.input, spec.output), (Some(ValueKind::Text), ValueKind::Text));
        assert_eq!(spec.signature(), "text → text");
        let params: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(params, ["language", "form"]);
    }

    #[test]
    fn every_pair_of_language_and_form_opens_or_is_refused() {
        let h = Harness::new(crate::commute_plugin());
        for language in [Language::En, Language::Fr] {
            for form in [Form::Plural, Form::Feminine, Form::Past, Form::Comparative, Form::Adverb] {
                let params = format!("language = \"{}\"\nform = \"{}\"", language.name(), form.name());
                let opened = h.open("inflect", &params);
                assert_eq!(opened.is_ok(), language.forms().contains(&form), "{params}");
                if let Err(e) = opened {
                    assert!(e.to_string().contains("no `"), "{params}: {e}");
                }
            }
        }
        for bad in ["language = \"de\"\nform = \"plural\"", "language = \"en\"", "form = \"plural\""] {
            assert!(matches!(h.open("inflect", bad), Err(CallError::BadParams { .. })), "{bad}");
        }
    }

    #[test]
    fn anything_but_one_lower_case_word_is_a_per_item_error() {
        let bad =
            ["", "Cat", "two words", " cat", "cat\n", "l'eau", "chou-fleur", "cat1", "ÿ 猫 🎵", "猫", "σ"];
        let mut words = vec!["cat"];
        words.extend(bad);
        let out = apply("language = \"en\"\nform = \"plural\"", &words);
        assert_eq!(out[0], Ok("cats".to_owned()));
        for (word, r) in bad.iter().zip(&out[1..]) {
            assert!(
                r.as_ref().is_err_and(|m| m.starts_with("not a single lower-case word")),
                "{word:?}: {r:?}"
            );
        }
        let fr = apply("language = \"fr\"\nform = \"feminine\"", &["léger", "rouge", "Grand"]);
        assert_eq!(fr[0], Ok("légère".to_owned()));
        assert!(fr[1].as_ref().is_err_and(|m| m.starts_with("no change")), "{:?}", fr[1]);
        assert!(fr[2].as_ref().is_err_and(|m| m.starts_with("not a single")), "{:?}", fr[2]);
    }

    #[test]
    fn a_batch_keeps_its_order_and_fails_only_the_bad_items() {
        let out = apply("language = \"en\"\nform = \"comparative\"", &["big", "beautiful", "happy"]);
        assert_eq!(out[0], Ok("bigger".to_owned()));
        assert!(out[1].as_ref().is_err_and(|m| m.starts_with("too long")), "{:?}", out[1]);
        assert_eq!(out[2], Ok("happier".to_owned()));
        let out = apply("language = \"fr\"\nform = \"plural\"", &["journal", "prix", "genou"]);
        assert_eq!(out[0], Ok("journaux".to_owned()));
        assert!(out[1].as_ref().is_err_and(|m| m.starts_with("no change")), "{:?}", out[1]);
        assert_eq!(out[2], Ok("genoux".to_owned()));
    }

    #[test]
    fn inflect_conforms() {
        let mut conformance = Conformance::new(crate::commute_plugin());
        for (params, words) in [
            ("language = \"en\"\nform = \"plural\"", &["cat", "city", "man"][..]),
            ("language = \"en\"\nform = \"past\"", &["walk", "stop"]),
            ("language = \"en\"\nform = \"comparative\"", &["big"]),
            ("language = \"en\"\nform = \"adverb\"", &["quick", "happy"]),
            ("language = \"fr\"\nform = \"plural\"", &["chat", "journal"]),
            ("language = \"fr\"\nform = \"feminine\"", &["grand", "heureux"]),
            ("language = \"fr\"\nform = \"adverb\"", &["vrai", "évident"]),
        ] {
            conformance = conformance.case("inflect", params, texts(words));
        }
        // The other functions of this plugin have their cases in the integration tests.
        let ours: Vec<String> =
            conformance.failures().into_iter().filter(|f| f.contains("`inflect`")).collect();
        assert!(ours.is_empty(), "conformance failures:\n- {}", ours.join("\n- "));
    }
}
