//! The `valence-edit` operator: a sentence → the same sentence with its sentiment intensified
//! ("very" before each sentiment word) or negated ("not" before each), edits whose effect on
//! valence VADER's rules know ([`crate::vader`]).
//!
//! A sentiment word is a word of VADER's lexicon with a non-zero valence (looked up as VADER does:
//! lower case, surrounding punctuation stripped), other than a booster and "no". A word a
//! negation already covers (within the three words before it, where VADER looks) is left alone by
//! both edits: a word inserted before it would push the negation out of VADER's reach. Otherwise
//! `intensify` inserts "very" before it unless a booster already does: VADER adds 0.293 to its
//! magnitude; `negate` inserts "not" before it (before its booster, if it has one: "not very
//! good"): VADER multiplies its valence by −0.74. Words are rejoined with single spaces. A
//! sentence without sentiment words comes back unchanged (its words rejoined), so the operator
//! is the identity on neutral sentences.

use crate::vader::{negated, strip_punctuation_if_word, Vader};
use crate::valence::{shared_vader, VADER_EMOJI, VADER_LEXICON};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::sync::Arc;

/// What the operator does to the sentiment words.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// "very" before each sentiment word.
    Intensify,
    /// "not" before each sentiment word.
    Negate,
}

/// Parameters of `valence-edit`.
#[params]
#[derive(Debug, Clone)]
pub struct ValenceEditParams {
    /// `intensify` ("very") or `negate` ("not").
    pub edit: Edit,
}

/// The sentence with `edit` applied to its sentiment words (see the module's rules).
pub fn edit_text(vader: &Vader, text: &str, edit: Edit) -> String {
    let lookup = |w: &str| strip_punctuation_if_word(w).to_lowercase();
    let mut out: Vec<&str> = Vec::with_capacity(text.len() / 2);
    for word in text.split_whitespace() {
        let w = lookup(word);
        let sentiment = w != "no" && !vader.is_booster(&w) && vader.valence(&w).is_some_and(|v| v != 0.0);
        // The words VADER looks back at: the three before this one, edits included.
        let before: Vec<String> = out.iter().rev().take(3).map(|p| lookup(p)).collect();
        let covered = before.iter().any(|p| negated(p) || p == "no");
        let boosted = before.first().is_some_and(|p| vader.is_booster(p));
        if sentiment && !covered {
            match edit {
                Edit::Intensify if !boosted => out.push("very"),
                // "not" goes before a booster: "not very good", as VADER reads it.
                Edit::Negate if boosted => out.insert(out.len() - 1, "not"),
                Edit::Negate => out.push("not"),
                Edit::Intensify => {}
            }
        }
        out.push(word);
    }
    out.join(" ")
}

/// The `valence-edit` operator.
pub struct ValenceEdit {
    vader: Arc<Vader>,
    edit: Edit,
}

impl Function for ValenceEdit {
    const DOC: &'static str = "Intensifies (\"very\") or negates (\"not\") every sentiment word of VADER's lexicon in a text; neutral texts are unchanged.";
    type Params = ValenceEditParams;
    const ASSETS: &'static [AssetSpec] = &[VADER_LEXICON, VADER_EMOJI];

    fn open(params: ValenceEditParams, ctx: &Context) -> Result<Self> {
        let vader = shared_vader(ctx.asset(&VADER_LEXICON.name)?, ctx.asset(&VADER_EMOJI.name)?)?;
        Ok(ValenceEdit { vader, edit: params.edit })
    }
}

impl Operator for ValenceEdit {
    type Input<'a> = &'a str;
    type Output = String;

    fn apply(&mut self, text: &str) -> Result<String> {
        Ok(edit_text(&self.vader, text, self.edit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vader() -> Vader {
        let lexicon =
            "good\t1.9\t0.9\t[2]\nhappy\t2.7\t0.8\t[3]\nsad\t-2.1\t0.9\t[-2]\nno\t-1.2\t0.7\t[-1]\n";
        Vader::new(lexicon, "").expect("lexicon")
    }

    #[test]
    fn sentiment_words_get_very_or_not_once() {
        let v = vader();
        assert_eq!(
            edit_text(&v, "A good day, a sad night.", Edit::Intensify),
            "A very good day, a very sad night."
        );
        assert_eq!(edit_text(&v, "\"Happy  people\"", Edit::Negate), "not \"Happy people\"");
        // Already boosted or negated words are left alone; "no" is not a sentiment word here.
        assert_eq!(edit_text(&v, "a very good day", Edit::Intensify), "a very good day");
        assert_eq!(edit_text(&v, "a very good day", Edit::Negate), "a not very good day");
        assert_eq!(edit_text(&v, "it isn't really good", Edit::Negate), "it isn't really good");
        assert_eq!(edit_text(&v, "it isn't really good", Edit::Intensify), "it isn't really good");
        assert_eq!(edit_text(&v, "no way", Edit::Negate), "no way");
        assert_eq!(edit_text(&v, "The fires burn.", Edit::Negate), "The fires burn.");
    }

    #[test]
    fn vader_sees_the_edits_as_its_rules_say() {
        let v = vader();
        for text in ["a good day", "a sad night", "happy people"] {
            let plain = v.scores(text).sum;
            let very = v.scores(&edit_text(&v, text, Edit::Intensify)).sum;
            let not = v.scores(&edit_text(&v, text, Edit::Negate)).sum;
            assert!((very.abs() - (plain.abs() + 0.293)).abs() < 1e-9, "{text}: {plain} → very {very}");
            assert!((not - plain * -0.74).abs() < 1e-9, "{text}: {plain} → not {not}");
        }
        // "not very good" is VADER's boosted-then-negated reading.
        let boosted = v.scores("a very good day").sum;
        let negated = v.scores(&edit_text(&v, "a very good day", Edit::Negate)).sum;
        assert!((negated - boosted * -0.74).abs() < 1e-9, "{boosted} → {negated}");
    }
}
