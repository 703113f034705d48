//! The XKCD colour survey's 949 colour names with their sRGB values, read from the copy that
//! seaborn ships (a Python dict literal in `seaborn/colors/xkcd_rgb.py`, a pinned asset), and the
//! nearest name of any colour (CIE76 in Lab).

use crate::lab::{delta_e, to_lab};
use commute_sdk::prelude::*;
use commute_sdk::AssetSpec;
use std::path::Path;

/// The XKCD colour names and values, as seaborn 0.13.2 ships them.
pub const XKCD: AssetSpec = AssetSpec::pypi(
    "xkcd-colour-names",
    "seaborn",
    "0.13.2",
    "seaborn/colors/xkcd_rgb.py",
    "f80792af1c27aed0e7f865961aef11400e759d75a01f02a65a89635501403f2a",
    35_379,
    "BSD-3-Clause (seaborn); the XKCD colour survey's names and values are CC0",
);

/// Named colours: `names[i]` has sRGB `rgb[i]` (channels in 0–1) and Lab `lab[i]`.
#[derive(Debug, Clone)]
pub struct NameTable {
    /// The names, in the list's order.
    pub names: Vec<String>,
    /// Their sRGB values, channels in 0–1.
    pub rgb: Vec<[f64; 3]>,
    /// Their CIELAB values.
    pub lab: Vec<[f64; 3]>,
}

impl NameTable {
    /// Reads the asset file.
    pub fn open(path: &Path) -> Result<NameTable> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let table = NameTable::parse(&text)?;
        ensure!(
            table.names.len() >= 900,
            "{} holds {} colours, expected the XKCD list's 949",
            path.display(),
            table.names.len()
        );
        Ok(table)
    }

    /// Every `'name': '#rrggbb'` pair of the text, in order.
    pub fn parse(text: &str) -> Result<NameTable> {
        let mut table = NameTable { names: Vec::new(), rgb: Vec::new(), lab: Vec::new() };
        for (line_number, line) in text.lines().enumerate() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let name = key.trim().trim_start_matches("xkcd_rgb = {").trim().trim_matches('\'');
            let hex = value.trim().trim_end_matches([',', '}']).trim().trim_matches('\'');
            let Some(hex) = hex.strip_prefix('#') else { continue };
            let rgb =
                parse_hex(hex).with_context(|| format!("line {}: `{}`", line_number + 1, line.trim()))?;
            table.names.push(name.to_owned());
            table.lab.push(to_lab(rgb));
            table.rgb.push(rgb);
        }
        ensure!(!table.names.is_empty(), "no `'name': '#rrggbb'` pairs found");
        Ok(table)
    }

    /// The index of the name nearest to `lab` (the first of equals).
    pub fn nearest(&self, lab: [f64; 3]) -> usize {
        let mut best = (0, f64::INFINITY);
        for (i, l) in self.lab.iter().enumerate() {
            let d = delta_e(*l, lab);
            if d < best.1 {
                best = (i, d);
            }
        }
        best.0
    }
}

fn parse_hex(hex: &str) -> Result<[f64; 3]> {
    ensure!(hex.len() == 6 && hex.is_ascii(), "expected six hex digits, got `{hex}`");
    let channel = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map(|v| f64::from(v) / 255.0);
    Ok([channel(0)?, channel(1)?, channel(2)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "xkcd_rgb = {'acid green': '#8ffe09',\n            'adobe': '#bd6c48',\n            'red': '#e50000',\n            'dark red': '#840000'}\n";

    #[test]
    fn the_dict_literal_is_read_pair_by_pair() {
        let t = NameTable::parse(SAMPLE).unwrap();
        assert_eq!(t.names, ["acid green", "adobe", "red", "dark red"]);
        assert_eq!(t.rgb[2], [229.0 / 255.0, 0.0, 0.0]);
        assert_eq!(t.nearest(t.lab[3]), 3);
        // A red a little darker than `red` is still nearest to `red`; one a little lighter than
        // `dark red`, to `dark red`.
        let mut lab = t.lab[2];
        lab[0] -= 3.0;
        assert_eq!(t.names[t.nearest(lab)], "red");
        let mut lab = t.lab[3];
        lab[0] += 3.0;
        assert_eq!(t.names[t.nearest(lab)], "dark red");
        assert!(NameTable::parse("'x': '#12345'").is_err());
        assert!(NameTable::parse("nothing here").is_err());
    }
}
