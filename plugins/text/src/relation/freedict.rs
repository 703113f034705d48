//! The `freedict` resource: FreeDict bilingual dictionaries (Debian `dict-freedict-*`, GPL-2.0+)
//! in dictd format — a `.index` of `headword TAB offset TAB length` (numbers in base64, offsets
//! in bytes of the uncompressed text) and a `.dict.dz` (dictzip, a gzip file).
//!
//! An entry is a headword line (`dog /dɔg/ <n>`) and translation lines, numbered by sense
//! (`1. mégère, peau de vache, rosse`). A relation's pairs are (headword, translation) where both
//! are single words; `[domain]` labels are dropped. Headwords are listed in index order; a
//! headword's translations keep the dictionary's order (sense by sense), so its preferred partner
//! is the first single-word translation of its first sense.

use super::table::{is_word, normalize, Relation};
use commute_sdk::anyhow::{bail, ensure, Context as _, Result};
use commute_sdk::AssetSpec;
use std::io::Read;
use std::path::Path;

/// One FreeDict dictionary: its name (`eng-fra`) and its two files.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// `xxx-yyy`: ISO 639-3 codes of the headword and translation languages.
    pub name: &'static str,
    /// The `.index` file.
    pub index: AssetSpec,
    /// The `.dict.dz` file.
    pub dict: AssetSpec,
}

/// FreeDict eng-fra: the index.
pub const FREEDICT_ENG_FRA_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-eng-fra-index",
    "dict-freedict-eng-fra",
    "/usr/share/dictd/freedict-eng-fra.index",
    "8786765e01f1bcb82efd818bafa6970e2c7f73cb6fb58c94a6f13eb291eeaad7",
    131_944,
    "GPL-2.0-or-later",
);

/// FreeDict eng-fra: the dictzip text.
pub const FREEDICT_ENG_FRA_DICT: AssetSpec = AssetSpec::debian(
    "freedict-eng-fra-dict",
    "dict-freedict-eng-fra",
    "/usr/share/dictd/freedict-eng-fra.dict.dz",
    "aaa6ecd1fd5713e8a21cabdef34695f618f12bea8e06a0e9225613d324484402",
    138_301,
    "GPL-2.0-or-later",
);

/// FreeDict fra-eng: the index.
pub const FREEDICT_FRA_ENG_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-fra-eng-index",
    "dict-freedict-fra-eng",
    "/usr/share/dictd/freedict-fra-eng.index",
    "1e592f4caa40294377e8ee4bf5e4dc18c730fe79addf4f039eec2eec265540c5",
    134_564,
    "GPL-2.0-or-later",
);

/// FreeDict fra-eng: the dictzip text.
pub const FREEDICT_FRA_ENG_DICT: AssetSpec = AssetSpec::debian(
    "freedict-fra-eng-dict",
    "dict-freedict-fra-eng",
    "/usr/share/dictd/freedict-fra-eng.dict.dz",
    "03fdb4912187359faf0f0801b15510937a4d5f2ea9000dbd4968d921947a1175",
    146_018,
    "GPL-2.0-or-later",
);

/// FreeDict eng-spa: the index.
pub const FREEDICT_ENG_SPA_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-eng-spa-index",
    "dict-freedict-eng-spa",
    "/usr/share/dictd/freedict-eng-spa.index",
    "1a74493522ebcfa3ff93e4e0d4f16ffed3afc4a64a8192f419b77d14789ac718",
    79_388,
    "GPL-2.0-or-later",
);

/// FreeDict eng-spa: the dictzip text.
pub const FREEDICT_ENG_SPA_DICT: AssetSpec = AssetSpec::debian(
    "freedict-eng-spa-dict",
    "dict-freedict-eng-spa",
    "/usr/share/dictd/freedict-eng-spa.dict.dz",
    "1e33c230e4c1ba56a3ad48e50d0d52ea0ffd41b2e6d51880457cb6d1fcb6f2e3",
    81_588,
    "GPL-2.0-or-later",
);

/// FreeDict spa-eng: the index.
pub const FREEDICT_SPA_ENG_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-spa-eng-index",
    "dict-freedict-spa-eng",
    "/usr/share/dictd/freedict-spa-eng.index",
    "e874c04f3912812b7e128c9fdd6b10b96ffe6624b09bc4353f9cfa761208c90d",
    68_630,
    "GPL-2.0-or-later",
);

/// FreeDict spa-eng: the dictzip text.
pub const FREEDICT_SPA_ENG_DICT: AssetSpec = AssetSpec::debian(
    "freedict-spa-eng-dict",
    "dict-freedict-spa-eng",
    "/usr/share/dictd/freedict-spa-eng.dict.dz",
    "c62e089dc5797e337457cdc22abd0d510df18901a32e84b0d173da6bc6ef66da",
    78_960,
    "GPL-2.0-or-later",
);

/// FreeDict eng-ita: the index.
pub const FREEDICT_ENG_ITA_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-eng-ita-index",
    "dict-freedict-eng-ita",
    "/usr/share/dictd/freedict-eng-ita.index",
    "51607eebc261c957ab9dc3c35b7b099d2993a05579414953ff32a23f6091d1c6",
    60_569,
    "GPL-2.0-or-later",
);

/// FreeDict eng-ita: the dictzip text.
pub const FREEDICT_ENG_ITA_DICT: AssetSpec = AssetSpec::debian(
    "freedict-eng-ita-dict",
    "dict-freedict-eng-ita",
    "/usr/share/dictd/freedict-eng-ita.dict.dz",
    "a8d1b2a48d41e8cd9c2f8bf8d6b915fef8cf552f1534f65ec34c2a4f2d62e9a4",
    60_655,
    "GPL-2.0-or-later",
);

/// FreeDict ita-eng: the index.
pub const FREEDICT_ITA_ENG_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-ita-eng-index",
    "dict-freedict-ita-eng",
    "/usr/share/dictd/freedict-ita-eng.index",
    "05302b630d1b7ec726e9e7cb51cfacd8a788ba2ba89e4cd982c36d8eb37ad724",
    49_528,
    "GPL-2.0-or-later",
);

/// FreeDict ita-eng: the dictzip text.
pub const FREEDICT_ITA_ENG_DICT: AssetSpec = AssetSpec::debian(
    "freedict-ita-eng-dict",
    "dict-freedict-ita-eng",
    "/usr/share/dictd/freedict-ita-eng.dict.dz",
    "0559ddaaad1aa02a302f5446985a9d8e2b561b6fcb98096c7398970669a4b9f7",
    53_364,
    "GPL-2.0-or-later",
);

/// FreeDict eng-por: the index.
pub const FREEDICT_ENG_POR_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-eng-por-index",
    "dict-freedict-eng-por",
    "/usr/share/dictd/freedict-eng-por.index",
    "ca8b27a269a6868b7ab231fee7fc991b46f2c31c723f94fea959a260657c4f9d",
    256_270,
    "GPL-2.0-or-later",
);

/// FreeDict eng-por: the dictzip text.
pub const FREEDICT_ENG_POR_DICT: AssetSpec = AssetSpec::debian(
    "freedict-eng-por-dict",
    "dict-freedict-eng-por",
    "/usr/share/dictd/freedict-eng-por.dict.dz",
    "4ca796855d0a968736d15b8d4ed2f3f93f28400a412d742605efdd5a0e8bd7a4",
    287_708,
    "GPL-2.0-or-later",
);

/// FreeDict por-eng: the index.
pub const FREEDICT_POR_ENG_INDEX: AssetSpec = AssetSpec::debian(
    "freedict-por-eng-index",
    "dict-freedict-por-eng",
    "/usr/share/dictd/freedict-por-eng.index",
    "9995633de2ffabd0187d0e386326f4f302ccd4f9c61a962201856c3b92396867",
    173_199,
    "GPL-2.0-or-later",
);

/// FreeDict por-eng: the dictzip text.
pub const FREEDICT_POR_ENG_DICT: AssetSpec = AssetSpec::debian(
    "freedict-por-eng-dict",
    "dict-freedict-por-eng",
    "/usr/share/dictd/freedict-por-eng.dict.dz",
    "b23195d474308006886f7a0369381ef29e31867e84dccd47204930154ced357a",
    190_568,
    "GPL-2.0-or-later",
);

/// The dictionaries available (small, clean core vocabularies; 0.1–0.4 MB packages).
pub const DICTIONARIES: &[Dictionary] = &[
    Dictionary { name: "eng-fra", index: FREEDICT_ENG_FRA_INDEX, dict: FREEDICT_ENG_FRA_DICT },
    Dictionary { name: "fra-eng", index: FREEDICT_FRA_ENG_INDEX, dict: FREEDICT_FRA_ENG_DICT },
    Dictionary { name: "eng-spa", index: FREEDICT_ENG_SPA_INDEX, dict: FREEDICT_ENG_SPA_DICT },
    Dictionary { name: "spa-eng", index: FREEDICT_SPA_ENG_INDEX, dict: FREEDICT_SPA_ENG_DICT },
    Dictionary { name: "eng-ita", index: FREEDICT_ENG_ITA_INDEX, dict: FREEDICT_ENG_ITA_DICT },
    Dictionary { name: "ita-eng", index: FREEDICT_ITA_ENG_INDEX, dict: FREEDICT_ITA_ENG_DICT },
    Dictionary { name: "eng-por", index: FREEDICT_ENG_POR_INDEX, dict: FREEDICT_ENG_POR_DICT },
    Dictionary { name: "por-eng", index: FREEDICT_POR_ENG_INDEX, dict: FREEDICT_POR_ENG_DICT },
];

/// The dictionary called `name`.
pub fn dictionary(name: &str) -> Result<&'static Dictionary> {
    match DICTIONARIES.iter().find(|d| d.name == name) {
        Some(d) => Ok(d),
        None => bail!(
            "FreeDict has no relation `{name}` here; available: {}",
            DICTIONARIES.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// One dictionary entry: headword and translation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The headword as the entry writes it.
    pub headword: String,
    /// The translation lines, sense numbers and labels removed.
    pub senses: Vec<String>,
}

/// Reads every entry of a dictionary, in index order (the `00-database-…` entries left out).
pub fn read_entries(index: &Path, dict: &Path) -> Result<Vec<Entry>> {
    let index_text =
        std::fs::read_to_string(index).with_context(|| format!("cannot read {}", index.display()))?;
    let file = std::fs::File::open(dict).with_context(|| format!("cannot open {}", dict.display()))?;
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut text)
        .with_context(|| format!("{} is not a dictzip (gzip) file", dict.display()))?;
    entries(&index_text, &text).with_context(|| format!("{}", index.display()))
}

/// Parses the entries that `index` points to in the uncompressed `dict` text.
pub fn entries(index: &str, dict: &[u8]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in index.lines().enumerate() {
        let mut fields = line.split('\t');
        let (Some(key), Some(offset), Some(length)) = (fields.next(), fields.next(), fields.next()) else {
            bail!("index line {}: expected three tab-separated fields: {line:?}", n + 1)
        };
        if key.starts_with("00database") || key.starts_with("00-database") {
            continue;
        }
        let (offset, length) = (base64_number(offset)?, base64_number(length)?);
        let bytes = dict.get(offset..offset.saturating_add(length)).with_context(|| {
            format!("index line {}: entry at {offset}+{length} is outside the text", n + 1)
        })?;
        out.push(parse_entry(key, &String::from_utf8_lossy(bytes)));
    }
    Ok(out)
}

/// dictd's base64 numbers: digits `A–Z a–z 0–9 + /`, most significant first.
pub fn base64_number(text: &str) -> Result<usize> {
    ensure!(!text.is_empty() && text.len() <= 10, "bad base64 number {text:?}");
    let mut n = 0usize;
    for c in text.bytes() {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("bad base64 number {text:?}"),
        };
        n = n * 64 + usize::from(digit);
    }
    Ok(n)
}

/// Splits an entry into its headword and its translation lines.
fn parse_entry(key: &str, text: &str) -> Entry {
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let cut = [head.find(" /"), head.find(" <")].into_iter().flatten().min().unwrap_or(head.len());
    let headword = match head[..cut].trim() {
        "" => key.to_owned(),
        h => h.to_owned(),
    };
    let senses = lines
        .map(|l| {
            let l = l.trim();
            // "1. chat" → "chat"
            let l = match l.split_once(". ") {
                Some((num, rest)) if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => l,
            };
            strip_labels(l).trim().to_owned()
        })
        .filter(|l| !l.is_empty())
        .collect();
    Entry { headword, senses }
}

/// Removes `[domain]` labels.
fn strip_labels(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The single-word pairs of a dictionary's entries.
pub fn relation(entries: &[Entry], lowercase: bool) -> Relation {
    let candidates = entries.iter().flat_map(|e| {
        let head = normalize(&e.headword, lowercase);
        let ok = is_word(&head);
        e.senses
            .iter()
            .flat_map(|s| s.split([',', ';']))
            .map(move |t| (head.clone(), normalize(t, lowercase)))
            .filter(move |(h, t)| ok && !h.is_empty() && is_word(t))
    });
    Relation::from_candidates(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_numbers_read_most_significant_first() {
        assert_eq!(base64_number("A").unwrap(), 0);
        assert_eq!(base64_number("b").unwrap(), 27);
        assert_eq!(base64_number("BA").unwrap(), 64);
        assert_eq!(base64_number("kPS").unwrap(), 36 * 4096 + 15 * 64 + 18);
        assert!(base64_number("a-b").is_err());
        assert!(base64_number("").is_err());
    }

    #[test]
    fn entries_give_single_word_pairs_in_dictionary_order() {
        let dict = "cat /kæt/\n1. mégère, peau de vache, rosse\n2. chat\n\
                    dog /dɔg/ <n>\nchien, clébard\n\
                    a lot /ə lɔt/\nbeaucoup\n\
                    water\u{2010} /wɔːtə/\n1. [cul] aqua\u{2010}tique\n";
        // Byte ranges (UTF-8): cat 0..53, dog 53..84, a lot 84..109, water 109..151.
        let index = "00databaseinfo\tA\tB\ncat\tA\t1\ndog\t1\tf\na lot\tBU\tZ\nwater\tBt\tq\n";
        let e = entries(index, dict.as_bytes()).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[0],
            Entry {
                headword: "cat".into(),
                senses: vec!["mégère, peau de vache, rosse".into(), "chat".into()]
            }
        );
        assert_eq!(e[3].senses, ["aqua\u{2010}tique"]);
        let r = relation(&e, true);
        let pairs: Vec<(&str, &str)> = r.pairs().iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        // "peau de vache" and "a lot" are not single words; "water-" is an affix.
        assert_eq!(
            pairs,
            [("cat", "mégère"), ("cat", "rosse"), ("cat", "chat"), ("dog", "chien"), ("dog", "clébard")]
        );
        let err = entries("dog\tZZZZ\tB\n", dict.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
    }
}
