//! English inflection rules: plural, past, comparative and adverb, each a table of irregulars
//! followed by the spelling rules (-es after sibilants, y → i after a consonant, e-drop,
//! doubled final consonants).

use super::{Inflection, Rule};

/// The vowels, for "after a consonant" (y counts as a consonant there: play → plays).
const VOWELS: &str = "aeiou";

/// Whether the stem ends in a consonant (city: cit-y; day: da-y is not).
fn after_consonant(stem: &str) -> bool {
    stem.chars().last().is_some_and(|c| !VOWELS.contains(c))
}

/// Whether the letter at `i` is sounded as a vowel: a, e, i, o, u (not u after q: squat), and y
/// after a consonant (happy, dry; not yes or play).
fn vowel_at(letters: &[char], i: usize) -> bool {
    match letters[i] {
        'a' | 'e' | 'i' | 'o' => true,
        'u' => i == 0 || letters[i - 1] != 'q',
        'y' => i > 0 && !vowel_at(letters, i - 1),
        _ => false,
    }
}

/// The number of vowel groups: a syllable count that is right for short words.
fn syllables(letters: &[char]) -> usize {
    let vowels: Vec<bool> = (0..letters.len()).map(|i| vowel_at(letters, i)).collect();
    vowels.iter().enumerate().filter(|&(i, &v)| v && (i == 0 || !vowels[i - 1])).count()
}

/// Verbs of two syllables stressed on the last, which double their final consonant too.
pub const STRESSED_FINAL: &[&str] = &[
    "admit", "commit", "compel", "control", "expel", "occur", "omit", "patrol", "permit", "prefer", "propel",
    "rebel", "recur", "refer", "regret", "submit", "transfer",
];

/// Whether the final consonant doubles before -ed or -er: consonant-vowel-consonant at the end of
/// a one-syllable word (stop, big) or of a verb in [`STRESSED_FINAL`]; never c, w, x or y.
fn doubles_final(word: &str) -> bool {
    let letters: Vec<char> = word.chars().collect();
    let n = letters.len();
    n >= 3
        && !vowel_at(&letters, n - 3)
        && vowel_at(&letters, n - 2)
        && !vowel_at(&letters, n - 1)
        && !"cwxy".contains(letters[n - 1])
        && (syllables(&letters) == 1 || STRESSED_FINAL.contains(&word))
}

// ---- plural --------------------------------------------------------------------------------------

/// Nouns with their own plural.
pub const IRREGULAR_PLURALS: &[(&str, &str)] = &[
    ("man", "men"),
    ("woman", "women"),
    ("child", "children"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("goose", "geese"),
    ("mouse", "mice"),
    ("louse", "lice"),
    ("person", "people"),
    ("ox", "oxen"),
    ("quiz", "quizzes"),
    ("analysis", "analyses"),
    ("axis", "axes"),
    ("basis", "bases"),
    ("crisis", "crises"),
    ("thesis", "theses"),
    ("criterion", "criteria"),
    ("phenomenon", "phenomena"),
    ("cactus", "cacti"),
    ("fungus", "fungi"),
    ("nucleus", "nuclei"),
    ("radius", "radii"),
];

/// Nouns whose plural is the singular.
pub const SAME_PLURALS: &[&str] =
    &["aircraft", "deer", "fish", "moose", "offspring", "salmon", "series", "sheep", "species"];

/// Nouns in -fe with a plural in -ves (others take -s: safe → safes).
pub const FE_TO_VES: &[&str] = &["knife", "life", "wife"];
/// Nouns in -f with a plural in -ves (others take -s: roof → roofs, chief → chiefs).
pub const F_TO_VES: &[&str] =
    &["calf", "elf", "half", "leaf", "loaf", "self", "sheaf", "shelf", "thief", "wolf"];

/// Nouns in -o with a plural in -oes (others take -s: photo → photos).
pub const O_TO_OES: &[&str] = &["echo", "hero", "potato", "tomato", "torpedo", "veto"];

/// The plural.
pub const PLURAL: Inflection = Inflection {
    name: "English plural",
    irregular: IRREGULAR_PLURALS,
    unchanged: SAME_PLURALS,
    unchanged_endings: &[],
    max_letters: None,
    rules: &[
        Rule::replace("fe", "ves").only(FE_TO_VES),      // knife → knives
        Rule::replace("f", "ves").only(F_TO_VES),        // leaf → leaves (roof → roofs below)
        Rule::append("o", "es").only(O_TO_OES),          // hero → heroes (photo → photos below)
        Rule::replace("y", "ies").when(after_consonant), // city → cities (day → days below)
        Rule::append("s", "es"),                         // bus → buses
        Rule::append("x", "es"),                         // box → boxes
        Rule::append("z", "es"),                         // buzz → buzzes
        Rule::append("ch", "es"),                        // church → churches
        Rule::append("sh", "es"),                        // dish → dishes
        Rule::append("", "s"),                           // cat → cats
    ],
};

// ---- past ----------------------------------------------------------------------------------------

/// Common verbs with an irregular simple past.
pub const IRREGULAR_PASTS: &[(&str, &str)] = &[
    ("become", "became"),
    ("begin", "began"),
    ("bend", "bent"),
    ("bite", "bit"),
    ("bleed", "bled"),
    ("blow", "blew"),
    ("break", "broke"),
    ("bring", "brought"),
    ("build", "built"),
    ("buy", "bought"),
    ("catch", "caught"),
    ("choose", "chose"),
    ("come", "came"),
    ("dig", "dug"),
    ("do", "did"),
    ("draw", "drew"),
    ("drink", "drank"),
    ("drive", "drove"),
    ("eat", "ate"),
    ("fall", "fell"),
    ("feed", "fed"),
    ("feel", "felt"),
    ("fight", "fought"),
    ("find", "found"),
    ("flee", "fled"),
    ("fly", "flew"),
    ("forget", "forgot"),
    ("forgive", "forgave"),
    ("freeze", "froze"),
    ("get", "got"),
    ("give", "gave"),
    ("go", "went"),
    ("grow", "grew"),
    ("hang", "hung"),
    ("have", "had"),
    ("hear", "heard"),
    ("hide", "hid"),
    ("hold", "held"),
    ("keep", "kept"),
    ("know", "knew"),
    ("lay", "laid"),
    ("lead", "led"),
    ("leave", "left"),
    ("lend", "lent"),
    ("lose", "lost"),
    ("make", "made"),
    ("mean", "meant"),
    ("meet", "met"),
    ("pay", "paid"),
    ("ride", "rode"),
    ("ring", "rang"),
    ("rise", "rose"),
    ("run", "ran"),
    ("say", "said"),
    ("see", "saw"),
    ("seek", "sought"),
    ("sell", "sold"),
    ("send", "sent"),
    ("shake", "shook"),
    ("shoot", "shot"),
    ("sing", "sang"),
    ("sink", "sank"),
    ("sit", "sat"),
    ("sleep", "slept"),
    ("speak", "spoke"),
    ("spend", "spent"),
    ("stand", "stood"),
    ("steal", "stole"),
    ("stick", "stuck"),
    ("strike", "struck"),
    ("swim", "swam"),
    ("take", "took"),
    ("teach", "taught"),
    ("tear", "tore"),
    ("tell", "told"),
    ("think", "thought"),
    ("throw", "threw"),
    ("understand", "understood"),
    ("wake", "woke"),
    ("wear", "wore"),
    ("win", "won"),
    ("write", "wrote"),
];

/// Verbs whose simple past is the verb itself.
pub const SAME_PASTS: &[&str] = &[
    "bet", "burst", "cast", "cost", "cut", "hit", "hurt", "let", "put", "quit", "read", "set", "shed",
    "shut", "split", "spread",
];

/// The simple past.
pub const PAST: Inflection = Inflection {
    name: "English past",
    irregular: IRREGULAR_PASTS,
    unchanged: SAME_PASTS,
    unchanged_endings: &[],
    max_letters: None,
    rules: &[
        Rule::append("e", "d"),                          // love → loved, agree → agreed
        Rule::replace("y", "ied").when(after_consonant), // cry → cried (play → played below)
        Rule::append("c", "ked"),                        // panic → panicked
        Rule::double("ed").when(doubles_final),          // stop → stopped, admit → admitted
        Rule::append("", "ed"),                          // walk → walked
    ],
};

// ---- comparative ---------------------------------------------------------------------------------

/// Adjectives with an irregular comparative.
pub const IRREGULAR_COMPARATIVES: &[(&str, &str)] = &[
    ("bad", "worse"),
    ("far", "farther"),
    ("good", "better"),
    ("ill", "worse"),
    ("little", "less"),
    ("many", "more"),
    ("much", "more"),
    ("well", "better"),
];

/// The longest adjective given an -er comparative: an approximation of "at most two syllables"
/// (longer ones take "more").
pub const COMPARATIVE_MAX_LETTERS: usize = 6;

/// The comparative in -er.
pub const COMPARATIVE: Inflection = Inflection {
    name: "English comparative",
    irregular: IRREGULAR_COMPARATIVES,
    unchanged: &[],
    unchanged_endings: &[],
    max_letters: Some(COMPARATIVE_MAX_LETTERS),
    rules: &[
        Rule::append("e", "r"),                          // nice → nicer
        Rule::replace("y", "ier").when(after_consonant), // happy → happier (grey → greyer below)
        Rule::double("er").when(doubles_final),          // big → bigger
        Rule::append("", "er"),                          // tall → taller
    ],
};

// ---- adverb --------------------------------------------------------------------------------------

/// Adjectives with an irregular adverb.
pub const IRREGULAR_ADVERBS: &[(&str, &str)] = &[
    ("dry", "dryly"),
    ("gay", "gaily"),
    ("good", "well"),
    ("public", "publicly"),
    ("shy", "shyly"),
    ("sly", "slyly"),
    ("whole", "wholly"),
    ("wry", "wryly"),
];

/// The adverb in -ly.
pub const ADVERB: Inflection = Inflection {
    name: "English adverb",
    irregular: IRREGULAR_ADVERBS,
    unchanged: &[],
    unchanged_endings: &[],
    max_letters: None,
    rules: &[
        Rule::append("ic", "ally"),                      // basic → basically
        Rule::replace("le", "ly").when(after_consonant), // gentle → gently (sole → solely below)
        Rule::replace("y", "ily").when(after_consonant), // happy → happily (coy → coyly below)
        Rule::append("ll", "y"),                         // full → fully
        Rule::replace("ue", "uly"),                      // true → truly
        Rule::append("", "ly"),                          // quick → quickly
    ],
};

#[cfg(test)]
mod tests {
    use super::super::testing::{check, check_errors, check_tables};
    use super::*;

    #[test]
    fn the_tables_are_consistent() {
        for inflection in [&PLURAL, &PAST, &COMPARATIVE, &ADVERB] {
            check_tables(inflection);
        }
    }

    #[test]
    fn plural() {
        check(
            &PLURAL,
            &[
                // -s
                ("cat", "cats"),
                ("dog", "dogs"),
                ("roof", "roofs"),
                ("chief", "chiefs"),
                ("photo", "photos"),
                ("piano", "pianos"),
                // -es after s, x, z, ch, sh
                ("bus", "buses"),
                ("box", "boxes"),
                ("buzz", "buzzes"),
                ("church", "churches"),
                ("dish", "dishes"),
                // consonant + y → -ies; vowel + y → -s
                ("city", "cities"),
                ("baby", "babies"),
                ("day", "days"),
                ("boy", "boys"),
                // -f, -fe → -ves
                ("knife", "knives"),
                ("wife", "wives"),
                ("life", "lives"),
                ("leaf", "leaves"),
                ("wolf", "wolves"),
                ("half", "halves"),
                ("thief", "thieves"),
                // -o → -oes
                ("hero", "heroes"),
                ("potato", "potatoes"),
                // irregulars
                ("man", "men"),
                ("woman", "women"),
                ("child", "children"),
                ("foot", "feet"),
                ("tooth", "teeth"),
                ("goose", "geese"),
                ("mouse", "mice"),
                ("person", "people"),
                ("ox", "oxen"),
                ("quiz", "quizzes"),
                ("crisis", "crises"),
                ("criterion", "criteria"),
                ("cactus", "cacti"),
            ],
        );
        check_errors(&PLURAL, &[("sheep", "no change"), ("fish", "no change"), ("series", "no change")]);
    }

    #[test]
    fn past() {
        check(
            &PAST,
            &[
                // -ed
                ("walk", "walked"),
                ("rain", "rained"),
                ("fix", "fixed"),
                ("show", "showed"),
                ("visit", "visited"),
                ("open", "opened"),
                ("cook", "cooked"),
                // e-drop
                ("love", "loved"),
                ("agree", "agreed"),
                ("die", "died"),
                // consonant + y → -ied; vowel + y → -ed
                ("cry", "cried"),
                ("try", "tried"),
                ("play", "played"),
                ("obey", "obeyed"),
                // doubled final consonant: one syllable, or stressed on the last
                ("stop", "stopped"),
                ("plan", "planned"),
                ("trek", "trekked"),
                ("squat", "squatted"),
                ("admit", "admitted"),
                ("prefer", "preferred"),
                ("control", "controlled"),
                // -c → -cked
                ("panic", "panicked"),
                // irregulars
                ("go", "went"),
                ("see", "saw"),
                ("buy", "bought"),
                ("fly", "flew"),
                ("begin", "began"),
            ],
        );
        check_errors(&PAST, &[("put", "no change"), ("cut", "no change"), ("read", "no change")]);
    }

    #[test]
    fn comparative() {
        check(
            &COMPARATIVE,
            &[
                ("tall", "taller"),
                ("quick", "quicker"),
                ("cool", "cooler"),
                ("new", "newer"),
                ("low", "lower"),
                ("nice", "nicer"),
                ("large", "larger"),
                ("free", "freer"),
                ("simple", "simpler"),
                ("happy", "happier"),
                ("early", "earlier"),
                ("grey", "greyer"),
                ("big", "bigger"),
                ("hot", "hotter"),
                ("thin", "thinner"),
                ("good", "better"),
                ("bad", "worse"),
                ("far", "farther"),
            ],
        );
        check_errors(&COMPARATIVE, &[("careful", "too long"), ("beautiful", "too long")]);
    }

    #[test]
    fn adverb() {
        check(
            &ADVERB,
            &[
                ("quick", "quickly"),
                ("nice", "nicely"),
                ("sole", "solely"),
                ("happy", "happily"),
                ("easy", "easily"),
                ("coy", "coyly"),
                ("gentle", "gently"),
                ("simple", "simply"),
                ("able", "ably"),
                ("basic", "basically"),
                ("tragic", "tragically"),
                ("full", "fully"),
                ("true", "truly"),
                ("due", "duly"),
                ("good", "well"),
                ("public", "publicly"),
                ("whole", "wholly"),
                ("shy", "shyly"),
                ("dry", "dryly"),
            ],
        );
    }

    #[test]
    fn syllables_and_doubling() {
        let count = |w: &str| syllables(&w.chars().collect::<Vec<_>>());
        assert_eq!(
            ["stop", "squat", "happy", "play", "visit", "dry", "yes"].map(count),
            [1, 1, 2, 1, 2, 1, 1]
        );
        for (word, doubles) in [
            ("stop", true),
            ("big", true),
            ("rain", false),
            ("show", false),
            ("fix", false),
            ("visit", false),
            ("admit", true),
            ("go", false),
        ] {
            assert_eq!(doubles_final(word), doubles, "{word}");
        }
    }
}
