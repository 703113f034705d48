//! The `valence` encoder: VADER sentiment scores of a text ([`crate::vader`]) from the lexicon
//! of `vaderSentiment` 3.3.2 (7,506 entries, MIT).

use crate::shared::shared;
use crate::vader::Vader;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::path::Path;
use std::sync::Arc;

/// VADER's valence lexicon: token, mean valence (−4…+4), standard deviation, ten ratings.
pub const VADER_LEXICON: AssetSpec = AssetSpec::pypi(
    "vader-lexicon",
    "vaderSentiment",
    "3.3.2",
    "vaderSentiment/vader_lexicon.txt",
    "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
    434_304,
    "MIT",
);

/// VADER's emoji descriptions (3,570 emoji), substituted into texts before scoring.
pub const VADER_EMOJI: AssetSpec = AssetSpec::pypi(
    "vader-emoji-lexicon",
    "vaderSentiment",
    "3.3.2",
    "vaderSentiment/emoji_utf8_lexicon.txt",
    "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
    121_986,
    "MIT",
);

/// The analyser for these files, loaded once per process.
pub fn shared_vader(lexicon: &Path, emojis: &Path) -> Result<Arc<Vader>> {
    shared(&format!("{}\n{}", lexicon.display(), emojis.display()), || {
        let read =
            |p: &Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
        Vader::new(&read(lexicon)?, &read(emojis)?).with_context(|| format!("{}", lexicon.display()))
    })
}

/// What the encoder returns.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValenceOutput {
    /// Four dims: VADER's [compound, pos, neu, neg].
    Scores,
    /// One dim: the unnormalised sum of rule-adjusted valences (for one word, its lexicon valence).
    Valence,
}

/// Parameters of `valence`.
#[params]
#[derive(Debug, Clone)]
pub struct ValenceParams {
    /// `scores`: [compound, pos, neu, neg] (4 dims, unrounded); `valence`: the sum that compound
    /// normalises (1 dim; "happy" gives 2.7).
    #[serde(default = "default_output")]
    pub output: ValenceOutput,
}

fn default_output() -> ValenceOutput {
    ValenceOutput::Scores
}

/// The `valence` encoder.
pub struct Valence {
    vader: Arc<Vader>,
    output: ValenceOutput,
}

impl Function for Valence {
    const DOC: &'static str = "VADER sentiment of a text by its published rules: [compound, pos, neu, neg], or the raw valence sum; text without lexicon words is neutral.";
    type Params = ValenceParams;
    const ASSETS: &'static [AssetSpec] = &[VADER_LEXICON, VADER_EMOJI];

    fn open(params: ValenceParams, ctx: &Context) -> Result<Self> {
        let vader = shared_vader(ctx.asset(&VADER_LEXICON.name)?, ctx.asset(&VADER_EMOJI.name)?)?;
        Ok(Valence { vader, output: params.output })
    }
}

impl Encoder for Valence {
    type Input<'a> = &'a str;

    fn dim(&self) -> usize {
        match self.output {
            ValenceOutput::Scores => 4,
            ValenceOutput::Valence => 1,
        }
    }

    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        let s = self.vader.scores(text);
        Ok(match self.output {
            ValenceOutput::Scores => vec![s.compound as f32, s.pos as f32, s.neu as f32, s.neg as f32],
            ValenceOutput::Valence => vec![s.sum as f32],
        })
    }
}
