//! Stitching, from TOML to the report: MiniLM cut after a block, its token states mapped by a map
//! fitted on the anchor sentences' tokens, and the rest of MiniLM run on them. The known answer:
//! a stitch of the model with itself at the same layer, through a map fitted on more token pairs
//! than dimensions, is the model; across layers it is not. A stitch whose pieces do not fit is a
//! check error at its place.

use crate::util::{commute_with_assets, read_json, run, run_folders};
use std::path::Path;
use std::process::Command;

fn commute(home: &Path) -> Command {
    commute_with_assets(home, &["commute-plugin-text"])
}

/// MiniLM at layer `FROM` stitched into MiniLM at layer `TO` (both 3 here: the same layer).
const STITCH: &str = r#"
[experiment]
name = "stitch"
seed = 3
anchors = [4, 30]
repeats = 2
test = 12

[data.sentences]
files = "sentences"

[data.a]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = FROM } }

[data.b]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = TO } }

[nodes.minilm]
data = "sentences"
plugin = "text"
encoder = "minilm"
params = { backend = "candle" }

[nodes.valence]
data = "sentences"
plugin = "text"
encoder = "valence"

[[stitches]]
source = "a"
target = "b"
resume = { plugin = "text", encoder = "minilm-resume", params = { layer = TO } }
reference = "minilm"
downstream = "valence"
methods = [{ kind = "least-squares" }, { kind = "procrustes" }]
"#;

fn home_with_sentences() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("sentences")).expect("the sentences folder");
    // Long enough that 30 anchor sentences give more token pairs than MiniLM's 384 dimensions.
    let topics = [
        "the snow in the mountains",
        "a jazz band playing late",
        "a dog chasing a ball",
        "ships leaving the harbour",
    ];
    let moods = ["wonderful and happy", "terrible and sad", "quite ordinary", "really exciting"];
    let sentences: Vec<String> = (0..44)
        .map(|i| {
            format!(
                "Line {i} tells a long story about {} on day {} which everyone found {} in the end.",
                topics[i % 4],
                i * 7 % 31,
                moods[i / 4 % 4]
            )
        })
        .collect();
    std::fs::write(dir.path().join("sentences/lines.txt"), sentences.join("\n")).expect("the sentences");
    dir
}

fn stitched(home: &Path, from: usize, to: usize) -> serde_json::Value {
    let file = STITCH.replace("FROM", &from.to_string()).replace("TO", &to.to_string());
    std::fs::write(home.join("stitch.toml"), file).expect("stitch.toml");
    let (code, out, err) = run(commute(home).args(["run", "stitch.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stitch a → b"), "{out}");
    let folder = run_folders(&home.join("runs"), "stitch").pop().expect("a run folder");
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(report.contains("## Stitch a → b"), "{report}");
    read_json(&folder.join("metrics.json"))["stitches"][0].clone()
}

fn points<'a>(stitch: &'a serde_json::Value, key: &str, label: &str) -> Vec<&'a serde_json::Value> {
    stitch[key]
        .as_array()
        .expect("an array of points")
        .iter()
        .filter(|p| p["label"].as_str().is_some_and(|l| l.starts_with(label)))
        .collect()
}

#[test]
fn a_model_stitched_to_itself_at_one_layer_is_the_model_and_across_layers_it_is_not() {
    let dir = home_with_sentences();
    let home = dir.path();
    let same = stitched(home, 3, 3);
    assert_eq!(
        same["points-computed"],
        2 * (2 * 2 + 2),
        "2 repeats × (2 anchor counts × 2 methods + 2 references)"
    );
    // The references: B's own states resumed is B; A's states unmapped are B's states here.
    for label in ["B's own states", "identity"] {
        for p in points(&same, "references", label) {
            assert!(p["cosine"].as_f64().unwrap() > 1.0 - 1e-6, "{p}");
            assert_eq!(p["p-at-1"], 1.0, "{p}");
        }
    }
    // Fitted on more token pairs than dimensions, least squares recovers the identity map.
    let full: Vec<_> =
        points(&same, "points", "least-squares").into_iter().filter(|p| p["anchors"] == 30).collect();
    assert_eq!(full.len(), 2);
    for p in full {
        assert!(p["token-pairs"].as_u64().unwrap() > 384, "{p}");
        assert!(p["cosine"].as_f64().unwrap() > 1.0 - 1e-4, "{p}");
        assert_eq!(p["p-at-1"], 1.0, "{p}");
    }
    // The downstream readout reads B alone and B from its own states alike.
    let alone = points(&same, "references", "B alone")[0]["downstream"].as_f64().unwrap();
    let own = points(&same, "references", "B's own states")[0]["downstream"].as_f64().unwrap();
    assert!((alone - own).abs() < 1e-4, "{alone} vs {own}");
    // A rerun computes nothing, and renders no token states.
    assert_eq!(same["rendered"], true);
    let again = stitched(home, 3, 3);
    assert_eq!(again["points-computed"], 0);
    assert_eq!(again["rendered"], false);
    assert_eq!(again["points"], same["points"]);
    assert_eq!(again["tokens-per-item"], same["tokens-per-item"]);

    // Across layers the map is fitted, not given: below B itself, above chance.
    let across = stitched(home, 2, 4);
    for p in points(&across, "points", "least-squares").into_iter().filter(|p| p["anchors"] == 30) {
        let cosine = p["cosine"].as_f64().unwrap();
        assert!((0.5..0.999).contains(&cosine), "{p}");
    }
}

fn refused(home: &Path, file: String) -> String {
    std::fs::write(home.join("bad.toml"), file).expect("bad.toml");
    let (code, _, err) = run(commute(home).args(["check", "bad.toml"]));
    assert_eq!(code, 1, "{err}");
    err
}

#[test]
fn a_stitch_whose_pieces_do_not_fit_is_refused_with_its_place() {
    let dir = home_with_sentences();
    let home = dir.path();
    let good = STITCH.replace("FROM", "2").replace("TO", "4");
    let err = refused(home, good.replace("{ kind = \"procrustes\" }", "{ kind = \"cca\" }"));
    assert!(err.contains("bad.toml:37:") && err.contains("method `cca` cannot stitch"), "{err}");
    let err = refused(
        home,
        good.replace("source = \"a\"", "source = \"sentences\"")
            .replace("reference = \"minilm\"", "reference = \"minilm-x\"")
            .replace("encoder = \"minilm-resume\"", "encoder = \"minilm\""),
    );
    for (line, expected) in [
        (32, "`source` data set `sentences` holds text, not token states"),
        (34, "`minilm` of plugin `text` reads text, but a stitch feeds it token states"),
        (35, "no node named `minilm-x`"),
    ] {
        let at = format!("bad.toml:{line}:");
        assert!(err.contains(&at) && err.contains(expected), "missing {expected:?} at {at} in:\n{err}");
    }
    assert!(err.contains("did you mean `minilm`?"), "{err}");
    // A stitched node on other items than its stitch's, or naming no stitch.
    let err = refused(home, NODE.replace("stitch = \"same\"", "stitch = \"sane\""));
    assert!(err.contains("bad.toml:24:") && err.contains("no stitch named `sane`"), "{err}");
    assert!(err.contains("did you mean `same`?"), "{err}");
    let on_states =
        NODE.replace("[nodes.stitched]\ndata = \"sentences\"", "[nodes.stitched]\ndata = \"at3\"");
    let err = refused(home, on_states);
    assert!(err.contains("bad.toml:23:") && err.contains("whose items are those of `sentences`"), "{err}");
}

/// A stitched model as a node: MiniLM cut after block 3, through a map fitted on the token pairs
/// of 30 of the sentences, and resumed — aligned by an edge with MiniLM alone.
const NODE: &str = r#"
[experiment]
name = "stitched-node"
seed = 3
anchors = [4]
repeats = 1
test = 8

[data.sentences]
files = "sentences"

[data.at3]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = 3 } }

[nodes.minilm]
data = "sentences"
plugin = "text"
encoder = "minilm"
params = { backend = "candle" }

[nodes.stitched]
data = "sentences"
stitch = "same"
method = { kind = "least-squares" }
anchors = 30

[[stitches]]
name = "same"
source = "at3"
target = "at3"
resume = { plugin = "text", encoder = "minilm-resume", params = { layer = 3 } }
reference = "minilm"
methods = [{ kind = "least-squares" }]

[[edges]]
parent = "stitched"
child = "minilm"
methods = [{ kind = "procrustes" }, { kind = "relative" }]
metrics = ["cka", "p@1"]
null = false
"#;

#[test]
fn a_stitched_model_is_a_node_that_edges_align_and_swap_replaces() {
    let dir = home_with_sentences();
    let home = dir.path();
    std::fs::write(home.join("node.toml"), NODE).unwrap();
    let (code, _, err) = run(commute(home).args(["run", "node.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("30 anchor of the stitched map"), "the anchors are skipped, and said so: {err}");
    let folder = run_folders(&home.join("runs"), "stitched-node").pop().unwrap();
    let metrics = read_json(&folder.join("metrics.json"));
    let edge = &metrics["edges"][0];
    // The anchors are left out: 44 sentences, 30 fitted the map, 14 are paired.
    assert_eq!(edge["items"], 14, "{edge}");
    let score = |metrics: &serde_json::Value, method: &str, metric: &str| {
        let points = metrics["edges"][0]["points"].as_array().unwrap().clone();
        let point = points.iter().find(|p| p["method"] == method).unwrap().clone();
        point["scores"][metric].as_f64().unwrap()
    };
    // Cut and resumed at one layer through a map fitted on more token pairs than dimensions,
    // the stitched model is MiniLM: the same space (CKA 1), and each side's similarities to its
    // own anchors retrieve every test sentence.
    assert!(score(&metrics, "procrustes", "cka") > 1.0 - 1e-4, "{edge}");
    assert_eq!(score(&metrics, "relative", "p@1"), 1.0);

    // Swapped for a stitch across blocks (MiniLM cut after block 2, resumed from block 4), which
    // the swap file declares with the data sets it needs, the node is another space.
    let with = r#"
[data.at2]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = 2 } }

[data.at4]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = 4 } }

[[stitches]]
name = "across"
source = "at2"
target = "at4"
resume = { plugin = "text", encoder = "minilm-resume", params = { layer = 4 } }
reference = "minilm"
methods = [{ kind = "least-squares" }]

[nodes.stitched]
data = "sentences"
stitch = "across"
anchors = 30
"#;
    std::fs::write(home.join("across.toml"), with).unwrap();
    let (code, _, err) = run(commute(home).args(["swap"]).arg(&folder).args(["--with", "across.toml"]));
    assert_eq!(code, 0, "{err}");
    let swapped = run_folders(&home.join("runs"), "stitched-node").pop().unwrap();
    assert_ne!(swapped, folder);
    let after = read_json(&swapped.join("metrics.json"));
    let cka = score(&after, "procrustes", "cka");
    assert!((0.5..0.999).contains(&cka), "across blocks: CKA {cka}");
    // minilm's embeddings came from the cache; only the stitched node was computed.
    let embedded = &after["cache"]["embedded"];
    assert_eq!(embedded["minilm"]["computed"], 0, "{embedded}");
    assert!(embedded["stitched"]["computed"].as_u64().unwrap() > 0, "{embedded}");
}

/// A stitched node on words with an operator: each word's plural goes through the same renders,
/// map and resume, and only the anchor words lose their operator pair.
const WORDS: &str = r#"
[experiment]
name = "stitched-words"
seed = 3
anchors = [4]
repeats = 1
test = 8

[data.words]
files = "words"

[data.words.operators]
plural = { plugin = "text", function = "inflect", params = { language = "en", form = "plural" } }

[data.at3]
from = "words"
render = { plugin = "text", function = "minilm-states", params = { layer = 3 } }

[nodes.minilm]
data = "words"
plugin = "text"
encoder = "minilm"
params = { backend = "candle" }

[nodes.stitched]
data = "words"
stitch = "same"
anchors = 10

[[stitches]]
name = "same"
source = "at3"
target = "at3"
resume = { plugin = "text", encoder = "minilm-resume", params = { layer = 3 } }
reference = "minilm"
methods = [{ kind = "procrustes" }]

[[edges]]
parent = "stitched"
child = "minilm"
operators = ["plural"]
methods = [{ kind = "procrustes" }]
metrics = ["p@1", "transfer-p@1"]
null = false
"#;

#[test]
fn a_stitched_nodes_operators_go_through_its_map_and_only_its_anchors_lose_their_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::create_dir_all(home.join("words")).unwrap();
    let words = [
        "cat", "dog", "house", "tree", "car", "book", "river", "bird", "table", "chair", "road", "ship",
        "song", "apple", "cloud", "stone", "horse", "door", "window", "garden", "friend", "lamp", "bell",
        "coin", "field", "hill", "lake", "shoe", "star", "train",
    ];
    std::fs::write(home.join("words/words.txt"), words.join("\n")).unwrap();
    std::fs::write(home.join("words.toml"), WORDS).unwrap();
    let (code, _, err) = run(commute(home).args(["run", "words.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{err}");
    let folder = run_folders(&home.join("runs"), "stitched-words").pop().unwrap();
    let log = std::fs::read_to_string(folder.join("run.log")).unwrap();
    // Every word has a plural; the 10 anchor words have no row in the stitched node.
    assert!(
        log.contains("operator plural: defined on 20 of 30 items in stitched, 30 of 30 in minilm"),
        "{log}"
    );
    let metrics = read_json(&folder.join("metrics.json"));
    let transfer = metrics["edges"][0]["points"][0]["scores"]["transfer-p@1"].as_f64().unwrap();
    assert!(transfer.is_finite(), "{metrics}");
}

/// The words whose plural and past tense are the operators of the functional stitch.
const OPERATOR_WORDS: &str = r#"
[data.words]
files = "words"

[data.words.operators]
plural = { plugin = "text", function = "inflect", params = { language = "en", form = "plural" } }
past = { plugin = "text", function = "inflect", params = { language = "en", form = "past" } }

[nodes.words-2]
data = "words"
plugin = "text"
encoder = "minilm"
params = { backend = "candle", layer = 2 }

[nodes.words-4]
data = "words"
plugin = "text"
encoder = "minilm"
params = { backend = "candle", layer = 4 }
"#;

#[test]
fn a_functional_stitch_reads_operators_of_pooled_layers_and_only_its_points_depend_on_them() {
    let dir = home_with_sentences();
    let home = dir.path();
    std::fs::create_dir_all(home.join("words")).expect("the words folder");
    let words =
        ["cat", "dog", "walk", "play", "jump", "tree", "lamp", "open", "bird", "talk", "ship", "call"];
    std::fs::write(home.join("words/words.txt"), words.join("\n")).expect("the words");
    let classic = STITCH.replace("FROM", "2").replace("TO", "4") + OPERATOR_WORDS;
    let run_file = |file: &str| {
        std::fs::write(home.join("stitch.toml"), file).expect("stitch.toml");
        let (code, _, err) = run(commute(home).args(["run", "stitch.toml", "--runs", "runs"]));
        assert_eq!(code, 0, "{err}");
        let folder = run_folders(&home.join("runs"), "stitch").pop().expect("a run folder");
        (read_json(&folder.join("metrics.json"))["stitches"][0].clone(), folder)
    };
    let (first, _) = run_file(&classic);
    assert_eq!(first["points-computed"], 2 * (2 * 2 + 2));
    // Adding operators and functional maps computes the functional points alone: the classic
    // points do not read the operators, so their cache keys are unchanged.
    let functional = classic.replace(
        "methods = [{ kind = \"least-squares\" }, { kind = \"procrustes\" }]",
        "methods = [{ kind = \"least-squares\" }, { kind = \"procrustes\" },\n  \
         { kind = \"functional\", operator-form = \"offset\", lambda = 1.0, mu = 0.01 },\n  \
         { kind = \"functional\", operator-form = \"offset\", lambda = 1.0, mu = 0.01, shuffle-operators = true }]\n\
         operators = [\"plural\", \"past\"]\n\
         operator-nodes = { source = \"words-2\", target = \"words-4\" }",
    );
    let (second, folder) = run_file(&functional);
    assert_eq!(second["points-computed"], 2 * 2 * 2, "2 repeats × 2 anchor counts × 2 functional maps");
    // Each operator's words split between the sides: every word is fitted in A or in B, never both.
    let ops = second["operators"].as_array().expect("the operators");
    assert_eq!(ops.len(), 2, "{second}");
    for op in ops {
        let (fit_a, fit_b) = (op[1]["parent-fit"].as_u64().unwrap(), op[1]["child-fit"].as_u64().unwrap());
        assert_eq!(fit_a + fit_b, words.len() as u64, "{op}");
        assert!(fit_a > 0 && fit_b > 0, "{op}");
    }
    let functional_points = points(&second, "points", "functional");
    assert_eq!(functional_points.len(), 2 * 2 * 2);
    for p in functional_points {
        let cosine = p["cosine"].as_f64().unwrap();
        assert!((0.3..1.0).contains(&cosine), "{p}");
        // The fit's details: its weights (set here) and the operators it used.
        assert_eq!(p["details"]["lambda"], 1.0, "{p}");
        assert_eq!(p["details"]["lambda-given"], 1.0, "{p}");
        assert_eq!(p["details"]["operators"], 2.0, "{p}");
    }
    let report = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
    assert!(report.contains("also read 2 operator pairs"), "{report}");
    // A functional map with operators that do not exist, or without any, is a check error.
    let err =
        refused(home, functional.replace("operators = [\"plural\", \"past\"]", "operators = [\"plurals\"]"));
    assert!(err.contains("has no operator `plurals`") && err.contains("did you mean `plural`?"), "{err}");
    let err = refused(
        home,
        functional
            .replace("operators = [\"plural\", \"past\"]\n", "")
            .replace("operator-nodes = { source = \"words-2\", target = \"words-4\" }", ""),
    );
    assert!(err.contains("needs at least 1 operator pair on stitch 1"), "{err}");
    let err = refused(home, BAD_OPERATORS.to_owned());
    for (line, expected) in [
        (33, "node `stitched`: a stitched node's map is fitted on token pairs alone, and `functional` reads operators"),
        (43, "method `functional` with shuffle-operators needs at least 2 operator pairs on stitch 1, found 1"),
        (45, "stitch 1: no node named `words-5`"),
    ] {
        let at = format!("bad.toml:{line}:");
        assert!(err.contains(&at) && err.contains(expected), "missing {expected:?} at {at} in:\n{err}");
    }
    assert!(err.contains("3 errors in bad.toml"), "{err}");
}

/// A stitch whose operators do not fit: a shuffled control with one operator pair, an operator
/// node that does not exist, and a stitched node whose map would read operators.
const BAD_OPERATORS: &str = r#"
[experiment]
name = "bad"
anchors = [5]
test = 10

[data.sentences]
files = "sentences"

[data.states]
from = "sentences"
render = { plugin = "text", function = "minilm-states", params = { layer = 2 } }

[data.words]
files = "words"

[data.words.operators]
plural = { plugin = "text", function = "inflect", params = { language = "en", form = "plural" } }

[nodes.words-2]
data = "words"
plugin = "text"
encoder = "minilm"
params = { backend = "candle", layer = 2 }

[nodes.minilm]
data = "sentences"
plugin = "text"
encoder = "minilm"

[nodes.stitched]
data = "sentences"
stitch = "functional"
anchors = 20

[[stitches]]
name = "functional"
source = "states"
target = "states"
resume = { plugin = "text", encoder = "minilm-resume", params = { layer = 2 } }
reference = "minilm"
methods = [{ kind = "functional", operator-form = "offset" },
  { kind = "functional", shuffle-operators = true }]
operators = ["plural"]
operator-nodes = { source = "words-2", target = "words-5" }
"#;
