//! The colour example end to end on the real plugins and models: shades of named colours as
//! patches (open_nsfw's ResNet features) and as names (MiniLM), four edits said both ways, and
//! the edge's opt-in metrics — `control-p@1`, `order` against CIELAB lightness — with the swatch
//! picture painted from the colours plugin's `rgb`.

use crate::util::{commute_with_assets, read_json, run, run_folders};

const EXPERIMENT: &str = r#"
[experiment]
name = "colour"
seed = 2
anchors = [20, 60]
repeats = 1
test = 60

[data.colours]
source = { plugin = "colours", function = "shades", params = { names = 60, per-name = 2, seed = 1 } }

[data.colours.operators]
darker = { plugin = "colours", function = "lightness", params = { delta = -12.0 } }
lighter = { plugin = "colours", function = "lightness", params = { delta = 12.0 } }

[data.patches]
from = "colours"
render = { plugin = "colours", function = "patch", params = { size = 24 } }

[data.patches.operators]
darker = { plugin = "colours", function = "lightness", params = { delta = -12.0 } }
lighter = { plugin = "colours", function = "lightness", params = { delta = 12.0 } }

[data.names]
from = "colours"
render = { plugin = "colours", function = "name" }

[data.names.operators]
darker = { plugin = "colours", function = "phrase", params = { modifier = "darker" } }
lighter = { plugin = "colours", function = "phrase", params = { modifier = "lighter" } }

[nodes.image]
data = "patches"
plugin = "vision"
encoder = "open-nsfw"

[nodes.text]
data = "names"
plugin = "text"
encoder = "minilm"

[nodes.lab]
data = "colours"
plugin = "colours"
encoder = "lab"

[nodes.rgb]
data = "colours"
plugin = "colours"
encoder = "rgb"

[[edges]]
parent = "image"
child = "text"
operators = ["darker", "lighter"]
methods = [{ kind = "ridge" }, { kind = "functional", operator-form = "offset" }]
preprocess = { fit-on = "pool", pca = 16 }
order = { operator = "darker", by = "lab", coordinate = 0, lowers = true }
swatches = "rgb"
metrics = ["p@1", "control-p@1", "order"]
"#;

#[test]
fn the_two_shades_and_control_are_measured_and_painted() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(home.join("colour.toml"), EXPERIMENT).unwrap();
    let commute = || {
        commute_with_assets(home, &["commute-plugin-colours", "commute-plugin-vision", "commute-plugin-text"])
    };
    let (code, out, err) = run(commute().args(["run", "colour.toml", "--runs", "runs"]));
    assert_eq!(code, 0, "{out}{err}");
    let folder = run_folders(&home.join("runs"), "colour").pop().unwrap();
    let metrics = read_json(&folder.join("metrics.json"));
    let edge = &metrics["edges"][0];
    let points = edge["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "2 methods × 2 anchor counts");
    for p in points {
        for m in ["control-p@1", "order"] {
            let v = p["scores"][m].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{m} = {v} in {p}");
        }
        // 60 names, two shades each, 60 test items: pairs of same-named shades are in the test set.
        let (order, pairs) = (&p["operators"]["darker"]["order"][0], &p["operators"]["darker"]["order"][1]);
        assert!(pairs.as_u64().unwrap_or(0) >= 3, "{p}");
        assert_eq!(
            order.as_f64(),
            p["scores"]["order"].as_f64(),
            "one operator is ordered: its score is the edge's"
        );
        assert!(p["operators"]["lighter"].get("order").is_none(), "only the `order` operator is ordered");
        let examples = p["examples"].as_array().map_or(0, Vec::len);
        assert_eq!(examples, if p["anchors"] == 60 { 8 } else { 0 }, "the picture's fits: {p}");
    }
    // The picture: the 8 items and their edited colours, then two swatches per method.
    let report = std::fs::read_to_string(folder.join("report.md")).unwrap();
    assert!(report.contains("(plots/image-text-swatches.svg)"), "{report}");
    assert!(
        report.contains("`order` is read along `darker` over the test pairs whose text rows are identical")
            && report.contains("scores 0.500 on them by construction"),
        "the report names the bridge `order` is read beside: {report}"
    );
    let svg = std::fs::read_to_string(folder.join("plots/image-text-swatches.svg")).unwrap();
    assert_eq!(svg.matches("<rect x=").count(), 8 * 2 + 8 * 2 * 2, "{svg}");
    assert!(!svg.contains("#cccccc"), "every swatch has its colour: {svg}");
    let swatches = &edge["swatches"];
    assert_eq!(swatches["operator"], "darker");
    let (items, edited) = (swatches["items"].as_array().unwrap(), swatches["edited"].as_array().unwrap());
    assert_eq!((items.len(), edited.len()), (60, 60), "the first repeat's test items");
    // Darker by 12 L*: every edited colour is darker than its item (sRGB channel sum).
    let sum = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum::<f64>();
    for (a, b) in items.iter().zip(edited) {
        assert!(sum(b) < sum(a), "{a} → {b}");
    }
}
