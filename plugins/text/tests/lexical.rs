//! The lexical functions of the text plugin on the real files, fetched through the SDK's asset
//! store: GloVe and French fastText vectors, VADER valence against the reference implementation,
//! the `words` vocabularies, and relations from the analogy set, WordNet and FreeDict — with known
//! answers and counts — plus a conformance case for every lexical function.

use commute_plugin_text::commute_plugin;
use commute_plugin_text::fasttext::{FastTextTable, FASTTEXT_FR_KEY2ROW, FASTTEXT_FR_VECTORS};
use commute_plugin_text::glove::{GloveTable, GLOVE_INDEX, GLOVE_VECTORS};
use commute_plugin_text::relation::wordnet::{WordNet, DATA_FILES, INDEX_FILES};
use commute_plugin_text::relation::{self, RelationSpec, Resource, RELATION_ASSETS};
use commute_plugin_text::static_vectors::cosine;
use commute_plugin_text::valence::{shared_vader, VADER_EMOJI, VADER_LEXICON};
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{AssetSpec, Context, Value};
use std::path::PathBuf;
use std::sync::Arc;

fn plugin() -> Harness {
    Harness::new(commute_plugin())
}

/// The verified local path of an asset (fetched into the default store on first use).
fn asset(spec: &AssetSpec) -> PathBuf {
    AssetStore::from_env().ensure(spec).unwrap_or_else(|e| panic!("{e}"))
}

/// A context holding the given assets, as the host would pass it.
fn context(specs: &[AssetSpec]) -> Context {
    let assets = specs.iter().map(|s| (s.name.to_string(), asset(s))).collect();
    Context { assets, ..Context::default() }
}

fn glove() -> Arc<GloveTable> {
    GloveTable::shared(&asset(&GLOVE_VECTORS), &asset(&GLOVE_INDEX)).expect("GloVe loads")
}

fn fasttext() -> Arc<FastTextTable> {
    FastTextTable::shared(&asset(&FASTTEXT_FR_VECTORS), &asset(&FASTTEXT_FR_KEY2ROW)).expect("fastText loads")
}

fn texts(items: &[&str]) -> Vec<Value> {
    items.iter().map(|t| Value::text(*t)).collect()
}

fn strings(values: &[Value]) -> Vec<String> {
    values.iter().map(|v| v.as_text().expect("text").to_owned()).collect()
}

fn tensor(v: &Value) -> &[f32] {
    &v.as_tensor().expect("a tensor").data
}

/// Calls a source.
fn source(function: &str, params: &str) -> Vec<String> {
    strings(&plugin().call(function, params, &[]).unwrap_or_else(|e| panic!("{function} {params}: {e}")))
}

/// Applies an operator to each word, keeping per-item errors.
fn apply(function: &str, params: &str, words: &[&str]) -> Vec<Result<String, String>> {
    let items =
        plugin().call_items(function, params, &texts(words)).unwrap_or_else(|e| panic!("{function}: {e}"));
    items.into_iter().map(|r| r.map(|v| v.as_text().expect("text").to_owned())).collect()
}

fn ok(words: &[&str]) -> Vec<Result<String, String>> {
    words.iter().map(|w| Ok(w.to_string())).collect()
}

// ---- GloVe -------------------------------------------------------------------------------------

#[test]
fn glove_reads_400k_words_in_frequency_order_with_their_published_vectors() {
    let g = glove();
    assert_eq!(g.words().len(), 400_000);
    assert_eq!(&g.words()[..6], ["the", ",", ".", "of", "to", "and"]);
    assert_eq!((g.rank("king"), g.rank("queen")), (Some(691), Some(2060)));
    // The first line of the published glove.6B.50d.txt: "the 0.418 0.24968 -0.41242 …".
    let the = g.vectors().row(0);
    for (x, want) in the.iter().zip([0.418, 0.24968, -0.41242]) {
        assert!((x - want).abs() < 1e-6, "{:?}", &the[..3]);
    }
}

#[test]
fn glove_solves_the_classic_analogies() {
    let g = glove();
    let v = |w: &str| g.vectors().row(g.rank(w).unwrap_or_else(|| panic!("{w} not in GloVe"))).to_vec();
    for ([a, b, c], want) in [
        (["man", "king", "woman"], "queen"),
        (["france", "paris", "italy"], "rome"),
        (["good", "better", "bad"], "worse"),
        (["walk", "walked", "swim"], "swam"),
        (["cat", "cats", "dog"], "dogs"),
    ] {
        let query: Vec<f32> = v(b).iter().zip(v(a)).zip(v(c)).map(|((b, a), c)| b - a + c).collect();
        let best = g.nearest(&query, 3, &[a, b, c]);
        assert_eq!(best[0].0, want, "{b} - {a} + {c}: {best:?}");
    }
    assert!(cosine(&v("cat"), &v("dog")) > 0.9 && cosine(&v("cat"), &v("car")) < 0.4);
}

#[test]
fn the_glove_encoder_lower_cases_and_reports_oov_words_per_item() {
    let h = plugin();
    let mut enc = h.open("glove", "").expect("opens");
    assert_eq!(enc.dim(), Some(50));
    let out = enc.call(&texts(&["King", " king ", "qwzxvbn", ""])).expect("call");
    let (a, b) = (out[0].as_ref().expect("King"), out[1].as_ref().expect("king"));
    assert_eq!(a, b);
    assert_eq!(tensor(a), glove().vectors().row(691));
    for bad in &out[2..] {
        let message = bad.as_ref().expect_err("out of vocabulary");
        assert!(message.starts_with("not in vocabulary:"), "{message}");
    }
    let cased = h.call_items("glove", "lowercase = false", &texts(&["King", "king"])).expect("call");
    assert!(cased[0].as_ref().is_err_and(|m| m.starts_with("not in vocabulary:")), "{:?}", cased[0]);
    assert!(cased[1].is_ok());
}

#[test]
fn glove_mean_pooling_averages_the_known_words_of_a_sentence() {
    let h = plugin();
    let out = h
        .call_items("glove", "pooling = \"mean\"", &texts(&["The cat, qwzxvbn dog!", "cat", "qwzxvbn ..."]))
        .expect("call");
    let g = glove();
    let row = |w: &str| g.vectors().row(g.rank(w).expect("in vocabulary")).to_vec();
    let (the, cat, dog) = (row("the"), row("cat"), row("dog"));
    let mean: Vec<f32> = (0..50).map(|j| (the[j] + cat[j] + dog[j]) / 3.0).collect();
    let got = tensor(out[0].as_ref().expect("a sentence with known words"));
    assert!(got.iter().zip(&mean).all(|(a, b)| (a - b).abs() < 1e-6), "the unknown word is left out");
    assert_eq!(tensor(out[1].as_ref().expect("one word")), cat.as_slice());
    let message = out[2].as_ref().expect_err("no known word");
    assert!(message.contains("no word of the text is in the vocabulary"), "{message}");
}

// ---- French fastText ---------------------------------------------------------------------------

#[test]
fn fasttext_fr_keys_rows_and_neighbours() {
    let ft = fasttext();
    assert_eq!((ft.len(), ft.vectors().rows, ft.vectors().cols), (500_000, 20_000, 300));
    let v = |w: &str| ft.lookup(w, true).unwrap_or_else(|| panic!("{w} not in the table"));
    let (chat, voiture) = (cosine(v("chien"), v("chat")), cosine(v("chien"), v("voiture")));
    assert!((chat - 0.6841).abs() < 1e-3 && (voiture - 0.3173).abs() < 1e-3, "{chat} {voiture}");
    assert!(cosine(v("roi"), v("reine")) > cosine(v("roi"), v("voiture")));
    // Rows of the words spaCy kept: "chien" 1900, "été" 66; nearest rows of "chien".
    assert_eq!(ft.row("chien"), Some((1900, true)));
    assert_eq!(ft.row("été"), Some((66, true)));
    let (chien, _) = ft.row("chien").expect("chien");
    let near: Vec<usize> = ft.nearest_rows(v("chien"), 3, &[chien]).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        near,
        [
            ft.row("chaton").expect("chaton").0,
            ft.row("chiot").expect("chiot").0,
            ft.row("animal").expect("animal").0
        ]
    );
    // A pruned word shares the row of its nearest kept word.
    assert_eq!(ft.row("Modèles"), Some((ft.row("modèles").expect("modèles").0, false)));
    assert_eq!(ft.row("maximales").map(|r| r.0), ft.row("minimales").map(|r| r.0));
}

#[test]
fn the_fasttext_encoder_is_cased_by_default_and_can_refuse_pruned_words() {
    let h = plugin();
    let out = h.call_items("fasttext-fr", "", &texts(&["chien", "Modèles", "zzqxw"])).expect("call");
    assert_eq!(out[0].as_ref().map(|v| tensor(v).len()), Ok(300));
    assert_eq!(
        tensor(out[1].as_ref().expect("pruned key")),
        fasttext().lookup("modèles", true).expect("modèles")
    );
    assert!(out[2].as_ref().is_err_and(|m| m.starts_with("not in vocabulary:")));
    let strict =
        h.call_items("fasttext-fr", "pruned-keys = false", &texts(&["Modèles", "modèles"])).expect("call");
    assert!(strict[0].as_ref().is_err_and(|m| m.starts_with("not in vocabulary:")), "{:?}", strict[0]);
    assert!(strict[1].is_ok());
    let lower = h.call_items("fasttext-fr", "lowercase = true", &texts(&["CHIEN"])).expect("call");
    assert_eq!(tensor(lower[0].as_ref().expect("CHIEN")), fasttext().lookup("chien", true).expect("chien"));
}

// ---- VADER valence -----------------------------------------------------------------------------

#[test]
fn valence_matches_the_reference_implementation_on_every_fixture_text() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("data/vader-reference.json")).expect("fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 40);
    let inputs: Vec<Value> = cases.iter().map(|c| Value::text(c["text"].as_str().expect("text"))).collect();
    let out = plugin().call("valence", "", &inputs).expect("valence");
    for (case, got) in cases.iter().zip(&out) {
        let want: Vec<f64> =
            ["compound", "pos", "neu", "neg"].iter().map(|k| case[k].as_f64().expect("number")).collect();
        let got = tensor(got);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{:?}: got {got:?}, reference {want:?}", case["text"]);
        }
    }
    // The published rounded answers.
    let compound = |i: usize| (f64::from(tensor(&out[i])[0]) * 1000.0).round() / 1000.0;
    assert_eq!((compound(0), compound(1), compound(2)), (0.871, -0.735, 0.0));
}

#[test]
fn a_single_word_gives_its_lexicon_valence() {
    let words = ["happy", "joy", "sad", "angry", "fear", "calm", "table"];
    let out = plugin().call("valence", "output = \"valence\"", &texts(&words)).expect("valence");
    let got: Vec<f32> = out.iter().map(|v| tensor(v)[0]).collect();
    assert_eq!(got, [2.7, 2.8, -2.1, -2.3, -2.2, 1.3, 0.0]);
    let vader = shared_vader(&asset(&VADER_LEXICON), &asset(&VADER_EMOJI)).expect("lexicon");
    assert_eq!(vader.lexicon_len(), 7_506);
}

// ---- words -------------------------------------------------------------------------------------

#[test]
fn words_lists_glove_vocabulary_windows_deterministically() {
    let first = source("words", "count = 12");
    assert_eq!(first, ["the", "of", "to", "and", "in", "a", "for", "that", "on", "is", "was", "said"]);
    assert_eq!(source("words", "count = 4\nalphabetic = false"), ["the", ",", ".", "of"]);
    assert_eq!(
        source("words", "count = 5\nskip = 5\nmin-length = 3"),
        ["said", "with", "from", "his", "has"]
    );
    assert_eq!(source("words", "count = 7\nskip = 5"), first[5..]);
    assert_eq!(source("words", "count = 1000000").len(), 317_756, "every [a-z]+ word of GloVe");
    // Every listed word has a GloVe vector.
    let some =
        texts(&source("words", "count = 200\nskip = 20000").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(plugin().call("glove", "", &some).expect("all in vocabulary").len(), 200);
}

#[test]
fn words_lists_the_french_vocabulary_by_frequency() {
    let fr = source("words", "vocabulary = \"fasttext-fr\"\ncount = 12");
    assert_eq!(fr, ["de", "la", "et", "à", "le", "les", "des", "en", "un", "est", "du", "une"]);
    assert_eq!(
        source("words", "vocabulary = \"fasttext-fr\"\ncount = 1000000\nalphabetic = false").len(),
        499_945
    );
    let encoded = plugin().call_items(
        "fasttext-fr",
        "pruned-keys = false",
        &texts(&fr.iter().map(String::as_str).collect::<Vec<_>>()),
    );
    assert!(
        encoded.expect("call").iter().all(Result::is_ok),
        "the most frequent words have rows of their own"
    );
}

// ---- relations ---------------------------------------------------------------------------------

fn relation_len(resource: &str, relation: &str, pairs: &str) -> usize {
    source(
        "relation-words",
        &format!("resource = \"{resource}\"\nrelation = \"{relation}\"\npairs = \"{pairs}\""),
    )
    .len()
}

#[test]
fn analogy_sections_give_deduplicated_pairs() {
    let sections = [
        ("capital-common-countries", 23),
        ("capital-world", 116),
        ("currency", 30),
        ("city-in-state", 68),
        ("family", 23),
        ("gram1-adjective-to-adverb", 32),
        ("gram2-opposite", 29),
        ("gram3-comparative", 37),
        ("gram4-superlative", 34),
        ("gram5-present-participle", 33),
        ("gram6-nationality-adjective", 41),
        ("gram7-past-tense", 40),
        ("gram8-plural", 37),
        ("gram9-plural-verbs", 30),
    ];
    for (section, pairs) in sections {
        assert_eq!(relation_len("analogy", section, "all"), pairs, "{section}");
    }
    assert_eq!(sections.iter().map(|s| s.1).sum::<usize>(), 573);
    assert_eq!(relation_len("analogy", "city-in-state", "first"), 67, "one city is in two states");

    let plural = "resource = \"analogy\"\nrelation = \"gram8-plural\"";
    assert_eq!(apply("relation", plural, &["banana", "Bird", "mouse"]), ok(&["bananas", "birds", "mice"]));
    let out = apply("relation", plural, &["table", ""]);
    for r in out {
        assert!(r.as_ref().is_err_and(|m| m.starts_with("not in relation:")), "{r:?}");
    }
    let singular = format!("{plural}\ninverse = true");
    assert_eq!(apply("relation", &singular, &["bananas", "mice"]), ok(&["banana", "mouse"]));
    let capitals = "resource = \"analogy\"\nrelation = \"capital-common-countries\"";
    assert_eq!(apply("relation", capitals, &["athens", "Rome"]), ok(&["greece", "italy"]));
    let cased = format!("{capitals}\nlowercase = false");
    assert_eq!(apply("relation", &cased, &["Athens"]), ok(&["Greece"]));
    assert!(apply("relation", &cased, &["athens"])[0].is_err());

    let err =
        plugin().open("relation", "resource = \"analogy\"\nrelation = \"plural\"").expect_err("unknown");
    assert!(err.to_string().contains("gram8-plural"), "{err}");
}

#[test]
fn wordnet_relations_from_the_real_files() {
    let data = DATA_FILES.each_ref().map(asset);
    let index = INDEX_FILES.each_ref().map(asset);
    let wn = WordNet::load(data.each_ref().map(|p| p.as_path()), index.each_ref().map(|p| p.as_path()))
        .expect("WordNet");
    assert_eq!(wn.synset_count(), 117_659);
    assert_eq!(wn.pointer_count("antonym").expect("antonym"), 7_979);
    assert_eq!(wn.pointer_count("hypernym").expect("hypernym"), 89_089);
    assert_eq!(wn.pointer_count("similar-to").expect("similar-to"), 21_386);
    for (relation, pairs, words) in [
        ("antonym", 6_617, 6_158),
        ("hypernym", 157_857, 46_497),
        ("hyponym", 157_857, 16_676),
        ("similar-to", 47_980, 16_058),
        ("derivation", 31_923, 25_272),
        ("part-meronym", 12_217, 3_116),
    ] {
        let r = wn.relation(relation, true).expect(relation);
        assert_eq!((r.len(), r.domain_len()), (pairs, words), "{relation}");
    }

    let antonym = "resource = \"wordnet\"\nrelation = \"antonym\"";
    assert_eq!(
        apply("relation", antonym, &["hot", "happy", "good", "up"]),
        ok(&["cold", "unhappy", "bad", "down"])
    );
    // The most frequent sense decides: a dog is first a canine; "oak" is first the wood, then
    // the tree.
    let hypernym = "resource = \"wordnet\"\nrelation = \"hypernym\"";
    assert_eq!(apply("relation", hypernym, &["dog", "cat", "oak"]), ok(&["canine", "feline", "wood"]));
    let err = &apply("relation", hypernym, &["hot dog"])[0];
    assert!(err.as_ref().is_err_and(|m| m.starts_with("not in relation:")), "{err:?}");
    let meronym = "resource = \"wordnet\"\nrelation = \"part-meronym\"";
    // The first single-word part in pointer order (after "digital arteries" and three other
    // multi-word parts).
    assert_eq!(apply("relation", meronym, &["hand"]), ok(&["palm"]));
}

#[test]
fn freedict_lexicons_give_single_word_translations() {
    for (dictionary, pairs, headwords) in [
        ("eng-fra", 12_658, 7_243),
        ("fra-eng", 13_394, 7_045),
        ("eng-spa", 8_609, 4_926),
        ("spa-eng", 7_638, 3_956),
        ("eng-ita", 5_986, 3_969),
        ("ita-eng", 5_609, 3_165),
        ("eng-por", 25_055, 13_778),
        ("por-eng", 17_387, 9_045),
    ] {
        assert_eq!(relation_len("freedict", dictionary, "all"), pairs, "{dictionary}");
        assert_eq!(relation_len("freedict", dictionary, "first"), headwords, "{dictionary}");
    }
    let eng_fra = "resource = \"freedict\"\nrelation = \"eng-fra\"";
    // The first translation of the first sense: the dictionary lists "mégère" before "chat".
    assert_eq!(apply("relation", eng_fra, &["dog", "house", "cat"]), ok(&["chien", "maison", "mégère"]));
    let fra_eng = "resource = \"freedict\"\nrelation = \"fra-eng\"";
    assert_eq!(apply("relation", fra_eng, &["chien", "maison"]), ok(&["dog", "house"]));
    assert_eq!(
        apply("relation", "resource = \"freedict\"\nrelation = \"eng-spa\"", &["dog"]),
        ok(&["perro"])
    );
    assert_eq!(apply("relation", "resource = \"freedict\"\nrelation = \"eng-ita\"", &["dog"]), ok(&["cane"]));
    let err =
        plugin().open("relation", "resource = \"freedict\"\nrelation = \"eng-xyz\"").expect_err("unknown");
    assert!(err.to_string().contains("eng-fra"), "{err}");
}

#[test]
fn relation_words_sides_are_aligned_with_the_operator_and_the_pair_list() {
    let ctx = context(RELATION_ASSETS);
    for (resource, name) in [
        (Resource::Analogy, "gram3-comparative"),
        (Resource::Wordnet, "antonym"),
        (Resource::Freedict, "eng-ita"),
    ] {
        let base = format!("resource = \"{}\"\nrelation = \"{name}\"", resource.name());
        let sources = source("relation-words", &base);
        let targets = source("relation-words", &format!("{base}\nside = \"target\""));
        assert_eq!(sources.len(), targets.len());
        let mapped = plugin()
            .call("relation", &base, &texts(&sources.iter().map(String::as_str).collect::<Vec<_>>()))
            .expect("every source word is in the relation");
        assert_eq!(strings(&mapped), targets, "{base}");
        // All pairs, from the public function and from the source, agree.
        let spec = RelationSpec { resource, relation: name.to_owned(), lowercase: true, inverse: false };
        let pairs = relation::pairs(&spec, &ctx).expect("pairs");
        let all_sources = source("relation-words", &format!("{base}\npairs = \"all\""));
        let all_targets = source("relation-words", &format!("{base}\npairs = \"all\"\nside = \"target\""));
        assert_eq!(pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), all_sources);
        assert_eq!(pairs.iter().map(|p| p.1.clone()).collect::<Vec<_>>(), all_targets);
    }
    let back =
        source("relation-words", "resource = \"analogy\"\nrelation = \"gram8-plural\"\ninverse = true");
    assert_eq!(back[..3], ["bananas", "birds", "bottles"]);
}

/// `valence-edit` on 300 news sentences with the real lexicon. Where "very" went before exactly
/// one word, VADER sees the edit, and in almost every sentence its raw sum moves by 0.293 (half or
/// one and a half of it before or after a "but"); it moves by other amounts where the inserted
/// word shifts another booster or a "no" within VADER's three-word reach. "not" flips the sign of the compound score of most
/// sentences with sentiment (sentences that mix positive and negative words can keep theirs).
#[test]
fn valence_edits_move_vader_the_way_its_rules_say() {
    let sentences = plugin().call("sentences", "count = 300", &[]).expect("sentences");
    let very = plugin().call("valence-edit", "edit = \"intensify\"", &sentences).expect("intensify");
    let not = plugin().call("valence-edit", "edit = \"negate\"", &sentences).expect("negate");
    let score = |v: &[Value], output: &str| -> Vec<f32> {
        plugin().call("valence", output, v).expect("valence").iter().map(|t| tensor(t)[0]).collect()
    };
    let (plain, flipped) = (score(&sentences, ""), score(&not, ""));
    let (sum, louder) = (score(&sentences, "output = \"valence\""), score(&very, "output = \"valence\""));
    let words = |v: &Value| v.as_text().expect("text").split_whitespace().count();
    let (mut single, mut exact, mut opposite, mut sentiment) = (0, 0, 0, 0);
    for i in 0..sentences.len() {
        if words(&very[i]) == words(&sentences[i]) + 1 {
            single += 1;
            let moved = f64::from((louder[i] - sum[i]).abs());
            exact += usize::from([0.1465, 0.293, 0.4395].iter().any(|m| (moved - m).abs() < 1e-4));
            assert!(moved > 0.01, "{:?}: sum {} → {}", very[i], sum[i], louder[i]);
        }
        if plain[i].abs() > 0.05 {
            sentiment += 1;
            opposite += usize::from(flipped[i].signum() != plain[i].signum());
        }
    }
    eprintln!("{single} sentences with one intensified word ({exact} by 0.293 × 0.5, 1 or 1.5); negation flips {opposite} of {sentiment}");
    assert!(single > 50, "{single} sentences with one intensified word");
    assert!(exact as f64 > 0.9 * single as f64, "{exact} of {single} moved by exactly 0.293 × 0.5, 1 or 1.5");
    assert!(opposite as f64 > 0.8 * sentiment as f64, "negation flips {opposite} of {sentiment}");
}

// ---- conformance -------------------------------------------------------------------------------

/// The functions whose cases are in this file.
const LEXICAL: &[&str] =
    &["glove", "fasttext-fr", "valence", "valence-edit", "words", "relation-words", "relation", "inflect"];

#[test]
fn lexical_functions_conform() {
    let words = texts(&["king", "Queen", "dog"]);
    Conformance::new(commute_plugin())
        .case("glove", "", words.clone())
        .case("glove", "lowercase = false", texts(&["king", "queen"]))
        .case("fasttext-fr", "", texts(&["chien", "chat", "Modèles"]))
        .case("fasttext-fr", "pruned-keys = false\nlowercase = true", texts(&["Chien", "voiture"]))
        .case(
            "valence",
            "",
            texts(&["I love this wonderful day!", "This is terrible and sad.", "", "ÿ 猫 🎵"]),
        )
        .case("valence", "output = \"valence\"", texts(&["happy", "not happy"]))
        .case("valence-edit", "edit = \"negate\"", texts(&["a good day", "The fires burn.", ""]))
        .case("words", "count = 50\nskip = 10\nmin-length = 4", vec![])
        .case("words", "vocabulary = \"fasttext-fr\"\ncount = 20\nalphabetic = false", vec![])
        .case("relation-words", "resource = \"wordnet\"\nrelation = \"antonym\"\nside = \"target\"", vec![])
        .case("relation-words", "resource = \"freedict\"\nrelation = \"eng-fra\"\npairs = \"all\"", vec![])
        .case("relation", "resource = \"analogy\"\nrelation = \"gram8-plural\"", texts(&["banana", "bird"]))
        .case(
            "relation",
            "resource = \"wordnet\"\nrelation = \"hypernym\"\ninverse = true",
            texts(&["canine"]),
        )
        .case("relation", "resource = \"freedict\"\nrelation = \"fra-eng\"", texts(&["chien"]))
        .case("inflect", "language = \"en\"\nform = \"plural\"", texts(&["cat", "city", "man"]))
        .case("inflect", "language = \"fr\"\nform = \"adverb\"", texts(&["vrai", "heureux"]))
        .run_covering(LEXICAL);
}
