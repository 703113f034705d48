//! commute plugin for colours: the research's "two shades of red" as data. Colours are `[3]`
//! tensors (sRGB in 0–1); they come from the XKCD colour survey's named colours (a pinned copy),
//! are rendered as images and as names, and are edited by operators with a known meaning on the
//! colour, the image and the text side.
//!
//! | kind | function | what |
//! |---|---|---|
//! | source | `named` | the 949 XKCD colours ([`sources`]) |
//! | source | `shades` | seeded shades of named colours, several per name, each still nearest to its name ([`sources`]) |
//! | render | `patch` | colour → RGB image: lighting gradient, texture, noise ([`patch`]) |
//! | render | `name` | colour → its nearest XKCD name ([`words`]) |
//! | operator | `lightness` | darker / lighter, on colours and images ([`edit`]) |
//! | operator | `chroma` | more / less saturated, on colours and images ([`edit`]) |
//! | operator | `hue` | hue turned, on colours and images ([`edit`]) |
//! | operator | `phrase` | text → "modifier text" ("darker red") ([`words`]) |
//! | encoder | `lab` | 3 dims: CIELAB / 100 ([`words`]) |
//! | encoder | `rgb` | 3 dims: the sRGB channels, for swatches ([`words`]) |
//!
//! The worked plugin of the plugin guide (`tests/fixtures/colour`, named `colour`) is a small
//! teaching example; this one (`colours`) is what the experiments use.

pub mod colour;
pub mod edit;
pub mod lab;
pub mod names;
pub mod patch;
pub mod sources;
pub mod words;

commute_sdk::export_plugin! {
    name: "colours",
    modality: "colour",
    doc: "Colours: XKCD named colours and seeded shades, patches and names rendered from colours, lightness/chroma/hue operators on colours and images, \"darker X\" phrases, CIELAB.",
    functions: {
        source "named" => sources::Named,
        source "shades" => sources::Shades,
        render "patch" => patch::Patch,
        render "name" => words::Name,
        operator "lightness" => edit::EditOperator<edit::Lightness>,
        operator "chroma" => edit::EditOperator<edit::Chroma>,
        operator "hue" => edit::EditOperator<edit::Hue>,
        operator "phrase" => words::Phrase,
        encoder "lab" => words::LabEncoder,
        encoder "rgb" => words::RgbEncoder,
    },
}
