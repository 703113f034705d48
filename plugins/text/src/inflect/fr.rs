//! French inflection rules: plural, feminine and adverb, each a table of irregulars followed by
//! the spelling rules (-al → -aux, -eux → -euse, -ent → -emment…) with their listed exceptions.

use super::{Inflection, Rule};
use commute_sdk::Result;

/// The vowels, accented ones included.
const VOWELS: &str = "aeiouyàâäéèêëîïôöùûüÿœæ";

/// Whether the word ends in a vowel (vrai, poli, absolu, aisé).
fn ends_in_vowel(word: &str) -> bool {
    word.chars().last().is_some_and(|c| VOWELS.contains(c))
}

// ---- plural --------------------------------------------------------------------------------------

/// Nouns with their own plural.
pub const IRREGULAR_PLURALS: &[(&str, &str)] = &[
    ("œil", "yeux"),
    ("ciel", "cieux"),
    ("aïeul", "aïeux"),
    ("bonhomme", "bonshommes"),
    ("madame", "mesdames"),
    ("mademoiselle", "mesdemoiselles"),
    ("monsieur", "messieurs"),
];

/// The seven nouns in -ou with a plural in -oux (others take -s: fou → fous, trou → trous).
pub const OU_TO_OUX: &[&str] = &["bijou", "caillou", "chou", "genou", "hibou", "joujou", "pou"];
/// Nouns in -ail with a plural in -aux (others take -s: détail → détails).
pub const AIL_TO_AUX: &[&str] = &["bail", "corail", "émail", "soupirail", "travail", "vantail", "vitrail"];
/// Words in -au that take -s instead of -x.
pub const AU_TO_AUS: &[&str] = &["landau", "sarrau"];
/// Words in -eu that take -s instead of -x.
pub const EU_TO_EUS: &[&str] = &["bleu", "émeu", "pneu"];
/// Words in -al that take -s instead of -aux: nouns, then adjectives.
pub const AL_TO_ALS: &[&str] = &[
    "bal", "carnaval", "chacal", "festival", "récital", "régal", "banal", "fatal", "final", "natal", "naval",
];

/// The plural.
pub const PLURAL: Inflection = Inflection {
    name: "French plural",
    irregular: IRREGULAR_PLURALS,
    unchanged: &[],
    unchanged_endings: &["s", "x", "z"], // prix, nez, bras
    max_letters: None,
    rules: &[
        Rule::append("ou", "x").only(OU_TO_OUX), // genou → genoux (fou → fous below)
        Rule::replace("ail", "aux").only(AIL_TO_AUX), // travail → travaux (détail → détails below)
        Rule::append("au", "x").except(AU_TO_AUS), // bateau → bateaux, tuyau → tuyaux
        Rule::append("eu", "x").except(EU_TO_EUS), // jeu → jeux (bleu → bleus below)
        Rule::replace("al", "aux").except(AL_TO_ALS), // journal → journaux (bal → bals below)
        Rule::append("", "s"),                   // chat → chats
    ],
};

// ---- feminine ------------------------------------------------------------------------------------

/// Adjectives and nouns with their own feminine.
pub const IRREGULAR_FEMININES: &[(&str, &str)] = &[
    ("aigu", "aiguë"),
    ("ambigu", "ambiguë"),
    ("bas", "basse"),
    ("beau", "belle"),
    ("blanc", "blanche"),
    ("bref", "brève"),
    ("doux", "douce"),
    ("épais", "épaisse"),
    ("faux", "fausse"),
    ("favori", "favorite"),
    ("fou", "folle"),
    ("frais", "fraîche"),
    ("franc", "franche"),
    ("gentil", "gentille"),
    ("gras", "grasse"),
    ("grec", "grecque"),
    ("gros", "grosse"),
    ("las", "lasse"),
    ("long", "longue"),
    ("malin", "maligne"),
    ("mou", "molle"),
    ("nouveau", "nouvelle"),
    ("nul", "nulle"),
    ("public", "publique"),
    ("roux", "rousse"),
    ("sec", "sèche"),
    ("turc", "turque"),
    ("vieux", "vieille"),
];

/// Words in -et with a feminine in -ète (others double the t: muet → muette).
pub const ET_TO_ETE: &[&str] =
    &["complet", "concret", "désuet", "discret", "incomplet", "indiscret", "inquiet", "replet", "secret"];

/// The feminine.
pub const FEMININE: Inflection = Inflection {
    name: "French feminine",
    irregular: IRREGULAR_FEMININES,
    unchanged: &[],
    unchanged_endings: &["e"], // rouge, rapide
    max_letters: None,
    rules: &[
        Rule::replace("eux", "euse"),               // heureux → heureuse
        Rule::replace("oux", "ouse"),               // jaloux → jalouse
        Rule::replace("if", "ive"),                 // actif → active
        Rule::replace("euf", "euve"),               // neuf → neuve
        Rule::replace("er", "ère"),                 // premier → première
        Rule::append("en", "ne"),                   // ancien → ancienne
        Rule::append("on", "ne"),                   // bon → bonne
        Rule::append("eil", "le"),                  // pareil → pareille
        Rule::append("el", "le"),                   // cruel → cruelle
        Rule::replace("et", "ète").only(ET_TO_ETE), // complet → complète
        Rule::append("et", "te"),                   // muet → muette
        Rule::append("", "e"),                      // grand → grande
    ],
};

/// The feminine of a word (by [`FEMININE`]).
pub fn feminine(word: &str) -> Result<String> {
    FEMININE.apply(word)
}

/// Whether the word has an irregular feminine (doux → douce, beau → belle).
fn has_irregular_feminine(word: &str) -> bool {
    FEMININE.irregular(word).is_some()
}

// ---- adverb --------------------------------------------------------------------------------------

/// Adjectives with their own adverb: exceptions to -ent → -emment, adverbs in -ément and -ûment,
/// and the suppletive ones.
pub const IRREGULAR_ADVERBS: &[(&str, &str)] = &[
    ("lent", "lentement"),
    ("présent", "présentement"),
    ("véhément", "véhémentement"),
    ("aveugle", "aveuglément"),
    ("commun", "communément"),
    ("confus", "confusément"),
    ("énorme", "énormément"),
    ("exprès", "expressément"),
    ("immense", "immensément"),
    ("intense", "intensément"),
    ("obscur", "obscurément"),
    ("précis", "précisément"),
    ("profond", "profondément"),
    ("assidu", "assidûment"),
    ("continu", "continûment"),
    ("gai", "gaiement"),
    ("bref", "brièvement"),
    ("gentil", "gentiment"),
    ("bon", "bien"),
    ("mauvais", "mal"),
    ("meilleur", "mieux"),
];

/// The adverb in -ment.
pub const ADVERB: Inflection = Inflection {
    name: "French adverb",
    irregular: IRREGULAR_ADVERBS,
    unchanged: &[],
    unchanged_endings: &[],
    max_letters: None,
    rules: &[
        Rule::replace("ant", "amment"), // constant → constamment
        Rule::replace("ent", "emment"), // évident → évidemment (lent above)
        Rule::append("e", "ment"),      // rapide → rapidement
        Rule::via(feminine, "ment").when(has_irregular_feminine), // doux → doucement
        Rule::append("", "ment").when(ends_in_vowel), // vrai → vraiment, aisé → aisément
        Rule::via(feminine, "ment"),    // heureux → heureusement
    ],
};

#[cfg(test)]
mod tests {
    use super::super::testing::{check, check_errors, check_tables};
    use super::*;

    #[test]
    fn the_tables_are_consistent() {
        for inflection in [&PLURAL, &FEMININE, &ADVERB] {
            check_tables(inflection);
        }
    }

    #[test]
    fn plural() {
        check(
            &PLURAL,
            &[
                // +s
                ("chat", "chats"),
                ("maison", "maisons"),
                ("fou", "fous"),
                ("trou", "trous"),
                // -al → -aux, and its exceptions
                ("journal", "journaux"),
                ("cheval", "chevaux"),
                ("national", "nationaux"),
                ("bal", "bals"),
                ("carnaval", "carnavals"),
                ("festival", "festivals"),
                ("récital", "récitals"),
                ("chacal", "chacals"),
                ("régal", "régals"),
                ("final", "finals"),
                // -au, -eau, -eu → +x, and their exceptions
                ("bateau", "bateaux"),
                ("tuyau", "tuyaux"),
                ("jeu", "jeux"),
                ("cheveu", "cheveux"),
                ("bleu", "bleus"),
                ("pneu", "pneus"),
                ("landau", "landaus"),
                // -ail → +s, but -aux for a few
                ("détail", "détails"),
                ("éventail", "éventails"),
                ("travail", "travaux"),
                ("bail", "baux"),
                ("corail", "coraux"),
                ("émail", "émaux"),
                ("soupirail", "soupiraux"),
                ("vitrail", "vitraux"),
                ("vantail", "vantaux"),
                // the seven -ou → +x
                ("bijou", "bijoux"),
                ("caillou", "cailloux"),
                ("chou", "choux"),
                ("genou", "genoux"),
                ("hibou", "hiboux"),
                ("joujou", "joujoux"),
                ("pou", "poux"),
                // irregulars
                ("œil", "yeux"),
                ("ciel", "cieux"),
                ("monsieur", "messieurs"),
            ],
        );
        check_errors(&PLURAL, &[("prix", "no change"), ("nez", "no change"), ("bras", "no change")]);
    }

    #[test]
    fn feminine() {
        check(
            &FEMININE,
            &[
                // +e
                ("grand", "grande"),
                ("petit", "petite"),
                ("gris", "grise"),
                ("aimé", "aimée"),
                ("certain", "certaine"),
                // the suffix rules
                ("heureux", "heureuse"),
                ("jaloux", "jalouse"),
                ("actif", "active"),
                ("neuf", "neuve"),
                ("premier", "première"),
                ("cher", "chère"),
                ("ancien", "ancienne"),
                ("bon", "bonne"),
                ("pareil", "pareille"),
                ("cruel", "cruelle"),
                ("muet", "muette"),
                ("complet", "complète"),
                ("secret", "secrète"),
                // irregulars
                ("blanc", "blanche"),
                ("doux", "douce"),
                ("faux", "fausse"),
                ("vieux", "vieille"),
                ("beau", "belle"),
                ("nouveau", "nouvelle"),
                ("fou", "folle"),
                ("long", "longue"),
                ("gentil", "gentille"),
                ("public", "publique"),
                ("bref", "brève"),
                ("bas", "basse"),
                ("gros", "grosse"),
            ],
        );
        check_errors(&FEMININE, &[("rouge", "no change"), ("rapide", "no change")]);
    }

    #[test]
    fn adverb() {
        check(
            &ADVERB,
            &[
                // vowel-final + ment
                ("vrai", "vraiment"),
                ("poli", "poliment"),
                ("absolu", "absolument"),
                ("aisé", "aisément"),
                // -e + ment
                ("rapide", "rapidement"),
                ("facile", "facilement"),
                // feminine + ment
                ("heureux", "heureusement"),
                ("grand", "grandement"),
                ("actif", "activement"),
                ("premier", "premièrement"),
                ("ancien", "anciennement"),
                ("cruel", "cruellement"),
                ("doux", "doucement"),
                ("fou", "follement"),
                ("nouveau", "nouvellement"),
                ("franc", "franchement"),
                // -ant → -amment, -ent → -emment
                ("constant", "constamment"),
                ("méchant", "méchamment"),
                ("évident", "évidemment"),
                ("récent", "récemment"),
                // irregulars
                ("lent", "lentement"),
                ("présent", "présentement"),
                ("précis", "précisément"),
                ("profond", "profondément"),
                ("énorme", "énormément"),
                ("gentil", "gentiment"),
                ("bref", "brièvement"),
                ("bon", "bien"),
            ],
        );
    }
}
