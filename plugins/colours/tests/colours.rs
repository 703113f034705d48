//! The `colours` plugin on its real asset (the XKCD names as seaborn ships them, fetched and
//! verified on first use): every named colour is named by itself, shades share their name and are
//! ordered in lightness, edits and phrases do what they say, and every function conforms.

use commute_plugin_colours::commute_plugin;
use commute_plugin_colours::lab::to_lab;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{Tensor, Value};

fn plugin() -> Harness {
    Harness::new(commute_plugin())
}

fn rgb(v: &Value) -> [f64; 3] {
    let t = v.as_tensor().expect("a colour");
    assert_eq!(t.shape, vec![3]);
    [0, 1, 2].map(|i| f64::from(t.data[i]))
}

#[test]
fn every_named_colour_is_named_by_its_own_name() {
    let h = plugin();
    let colours = h.call("named", "", &[]).expect("named");
    assert_eq!(colours.len(), 949, "the XKCD list");
    let names = h.call("name", "", &colours).expect("names");
    let own = names.iter().zip(&colours).filter(|(n, _)| n.as_text().is_some()).count();
    assert_eq!(own, 949);
    // Names whose colours are exactly equal resolve to the first of them; every other colour's
    // nearest name is its own.
    let texts: Vec<&str> = names.iter().map(|n| n.as_text().unwrap()).collect();
    let distinct: std::collections::HashSet<[u32; 3]> =
        colours.iter().map(|c| rgb(c).map(|v| (v * 255.0).round() as u32)).collect();
    let unique_texts: std::collections::HashSet<&str> = texts.iter().copied().collect();
    assert_eq!(unique_texts.len(), distinct.len(), "one name per distinct colour");
    assert!(texts.contains(&"red") && texts.contains(&"dark red") && texts.contains(&"pale blue"));
}

#[test]
fn shades_share_their_name_and_differ_in_lightness() {
    let h = plugin();
    let params = "names = 60\nper-name = 3\nspread = 10\ngap = 3\nseed = 7";
    let shades = h.call("shades", params, &[]).expect("shades");
    assert_eq!(shades.len(), 180);
    assert_eq!(h.call("shades", params, &[]).expect("shades"), shades, "seeded");
    assert_ne!(
        h.call("shades", "names = 60\nper-name = 3\nspread = 10\ngap = 3\nseed = 8", &[]).expect("shades"),
        shades
    );
    let names = h.call("name", "", &shades).expect("names");
    for (group, (s, n)) in shades.chunks(3).zip(names.chunks(3)).enumerate() {
        assert!(n.iter().all(|x| x == &n[0]), "group {group}: {n:?}");
        let l: Vec<f64> = s.iter().map(|c| to_lab(rgb(c))[0]).collect();
        for i in 0..3 {
            for j in i + 1..3 {
                assert!((l[i] - l[j]).abs() >= 3.0 - 1e-6, "group {group}: lightness {l:?}");
            }
        }
    }
    // More shades than fit in the spread are refused when the function opens.
    assert!(h.open("shades", "per-name = 5\nspread = 4\ngap = 3").is_err());
}

#[test]
fn edits_and_phrases_do_what_they_say() {
    let h = plugin();
    // A muted red: fifteen L* darker is still inside the sRGB gamut (a saturated one is clipped).
    let red = Value::Tensor(Tensor::vector(vec![0.6, 0.3, 0.3]));
    let darker = h.call("lightness", "delta = -15", std::slice::from_ref(&red)).expect("lightness");
    let (before, after) = (to_lab(rgb(&red)), to_lab(rgb(&darker[0])));
    assert!((after[0] - (before[0] - 15.0)).abs() < 0.1, "{before:?} → {after:?}");
    let phrased = h.call("phrase", "modifier = \"darker\"", &[Value::text("red")]).expect("phrase");
    assert_eq!(phrased[0].as_text(), Some("darker red"));
    assert!(h.open("phrase", "modifier = \" \"").is_err());
    let patch = h.call("patch", "size = 16", std::slice::from_ref(&red)).expect("patch");
    let image = patch[0].as_image().expect("an image");
    let edited = h.call("lightness", "delta = -15", &patch).expect("an edited patch");
    assert_eq!(edited[0].as_image().map(|i| (i.width, i.height)), Some((image.width, image.height)));
    let lab = h.call("lab", "", std::slice::from_ref(&red)).expect("lab");
    let v = lab[0].as_tensor().unwrap();
    assert!((f64::from(v.data[0]) * 100.0 - before[0]).abs() < 1e-3);
    let rgb = h.call("rgb", "", std::slice::from_ref(&red)).expect("rgb");
    assert_eq!(rgb[0].as_tensor().map(|t| t.data.clone()), red.as_tensor().map(|t| t.data.clone()));
}

#[test]
fn colours_conforms() {
    let colours = vec![
        Value::Tensor(Tensor::vector(vec![0.8, 0.1, 0.1])),
        Value::Tensor(Tensor::vector(vec![0.2, 0.4, 0.9])),
        Value::Tensor(Tensor::vector(vec![0.5, 0.5, 0.5])),
    ];
    let texts = vec![Value::text("red"), Value::text("pale blue")];
    Conformance::new(commute_plugin())
        .case("named", "", vec![])
        .case("shades", "names = 5", vec![])
        .case("patch", "size = 8", colours.clone())
        .case("name", "", colours.clone())
        .case("lightness", "delta = -10", colours.clone())
        .case("chroma", "factor = 0.5", colours.clone())
        .case("hue", "degrees = 30", colours.clone())
        .case("phrase", "modifier = \"darker\"", texts)
        .case("lab", "", colours.clone())
        .case("rgb", "", colours)
        .run();
}
