//! A function fetches only the declared assets its parameters use: `open` asks for each through
//! `Context::asset`, and the host provides it from the store and opens again.

use commute_sdk::abi::client::Plugin;
use commute_sdk::asset::{AssetStatus, AssetStore};
use commute_sdk::prelude::*;
use std::io::Write;

const ENGLISH: &[u8] = b"cat\ndog\n";
const FRENCH: &[u8] = b"chat\nchien\n";

const WORDS_EN: AssetSpec = AssetSpec::pypi(
    "words-en",
    "commute-test-lazy",
    "1.0",
    "lazy/en.txt",
    "f641fdcd8af73b2f6334ab63c13d2eb857cd16f2aa4ea0ba20ba0eb9627918b5",
    8,
    "CC0-1.0",
);
const WORDS_FR: AssetSpec = AssetSpec::pypi(
    "words-fr",
    "commute-test-lazy",
    "1.0",
    "lazy/fr.txt",
    "283dfeaf0e60c276da09e51cb1f111d1bef39bff555ac14fac04e1ccf7c9a17e",
    11,
    "CC0-1.0",
);

/// Parameters of `count`.
#[params]
pub struct CountParams {
    /// Which word list: `en` or `fr`.
    lang: String,
}

/// Counts the words of one of two lists.
pub struct Count(usize);

impl Function for Count {
    const DOC: &'static str = "The number of words in the chosen list, for every input.";
    type Params = CountParams;
    const ASSETS: &'static [AssetSpec] = &[WORDS_EN, WORDS_FR];
    fn open(p: CountParams, ctx: &Context) -> Result<Self> {
        let path = ctx.asset(&format!("words-{}", p.lang))?;
        Ok(Count(std::fs::read_to_string(path)?.lines().count()))
    }
}

impl Encoder for Count {
    type Input<'a> = &'a str;
    fn dim(&self) -> usize {
        1
    }
    fn encode(&mut self, _: &str) -> Result<Vec<f32>> {
        Ok(vec![self.0 as f32])
    }
}

export_plugin! {
    name: "lazy",
    modality: "test",
    doc: "Asks for one of two assets depending on its parameters.",
    functions: { encoder "count" => Count },
}

#[test]
fn only_the_asset_the_parameters_use_is_fetched_and_an_undeclared_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = AssetStore::new(dir.path());
    std::fs::create_dir_all(store.downloads()).unwrap();
    let wheel = store.downloads().join("commute_test_lazy-1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    for (name, data) in [("lazy/en.txt", ENGLISH), ("lazy/fr.txt", FRENCH)] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();

    let plugin = Plugin::from_module(commute_plugin()).unwrap();
    let (en, fr) = (WORDS_EN, WORDS_FR);

    let mut count = plugin.open_with("count", "lang = \"fr\"", &Context::default(), Some(&store)).unwrap();
    let out = count.call(&[Value::text("x")]).unwrap();
    assert_eq!(out[0].as_ref().unwrap().as_tensor().unwrap().data, vec![2.0]);
    assert_eq!(store.status(&fr).unwrap(), AssetStatus::Ready);
    assert_eq!(store.status(&en).unwrap(), AssetStatus::Missing, "the English list was not needed");

    // A function asking for an asset it does not declare gets a clear error.
    let err = plugin.open_with("count", "lang = \"de\"", &Context::default(), Some(&store)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`words-de`") && message.contains("does not declare"), "{message}");
}
