//! The DejaVu fonts that `text-image` draws with: their asset declarations (Debian
//! `fonts-dejavu-core`) and loading one by family and weight.

use ab_glyph::FontVec;
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;

/// The Debian package that ships the fonts.
const PACKAGE: &str = "fonts-dejavu-core";
/// Bitstream Vera's licence; the DejaVu changes are in the public domain.
const LICENCE: &str = "Bitstream-Vera";

/// DejaVu Sans.
pub const SANS: AssetSpec = AssetSpec::debian(
    "dejavu-sans",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322",
    759_720,
    LICENCE,
);

/// DejaVu Sans Bold.
pub const SANS_BOLD: AssetSpec = AssetSpec::debian(
    "dejavu-sans-bold",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "0d977336a6d5fba34eab8e3199eb218327161b5143749f802982c2bc34df0c96",
    708_920,
    LICENCE,
);

/// DejaVu Serif.
pub const SERIF: AssetSpec = AssetSpec::debian(
    "dejavu-serif",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "13e61509f5c81d7c3132810f4f903e3523df89c802bf6e0674621e8f659cdfe1",
    380_660,
    LICENCE,
);

/// DejaVu Serif Bold.
pub const SERIF_BOLD: AssetSpec = AssetSpec::debian(
    "dejavu-serif-bold",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "e2fd85eba2de65ac270d1cdb1685e252eb827f600850cf62af2d20c41b22e945",
    356_668,
    LICENCE,
);

/// DejaVu Sans Mono.
pub const MONO: AssetSpec = AssetSpec::debian(
    "dejavu-sans-mono",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "0f5db4f1749979d961019838b160bec74abdf7f9eca69553fe1aa856bbff49a4",
    343_140,
    LICENCE,
);

/// DejaVu Sans Mono Bold.
pub const MONO_BOLD: AssetSpec = AssetSpec::debian(
    "dejavu-sans-mono-bold",
    PACKAGE,
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "2964f6dac8e6e9d71613928340f17bf868e9ea51692cca333c79e74962f02233",
    334_268,
    LICENCE,
);

/// Every font, in the order a function lists them as assets (all come in one package).
pub const ALL: [AssetSpec; 6] = [SANS, SANS_BOLD, SERIF, SERIF_BOLD, MONO, MONO_BOLD];

/// A font family.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// DejaVu Sans, a humanist sans-serif.
    Sans,
    /// DejaVu Serif.
    Serif,
    /// DejaVu Sans Mono, fixed width.
    Mono,
}

impl Family {
    /// The asset that holds this family in the given weight.
    pub fn asset(self, bold: bool) -> AssetSpec {
        match (self, bold) {
            (Family::Sans, false) => SANS,
            (Family::Sans, true) => SANS_BOLD,
            (Family::Serif, false) => SERIF,
            (Family::Serif, true) => SERIF_BOLD,
            (Family::Mono, false) => MONO,
            (Family::Mono, true) => MONO_BOLD,
        }
    }
}

/// Reads and parses the font of a family and weight from the context's assets.
pub fn load(ctx: &Context, family: Family, bold: bool) -> Result<FontVec> {
    let spec = family.asset(bold);
    let path = ctx.asset(spec.name.as_ref())?;
    let data = std::fs::read(path).with_context(|| format!("cannot read the font {}", path.display()))?;
    FontVec::try_from_vec(data).map_err(|e| anyhow!("{} is not a usable font: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_and_weight_has_its_own_file_in_one_package() {
        let mut names = Vec::new();
        for family in [Family::Sans, Family::Serif, Family::Mono] {
            for bold in [false, true] {
                let spec = family.asset(bold);
                assert_eq!(spec.source.to_string(), "Debian fonts-dejavu-core");
                assert_eq!(spec.file_name().contains("Bold"), bold, "{}", spec.path);
                names.push(spec.name.clone());
            }
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 6);
    }
}
