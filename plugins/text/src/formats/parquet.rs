//! One string column of a Parquet file: the footer and page headers (Thrift compact), dictionary
//! and plain pages (v1 and v2), Snappy or no compression — what GloVe's word index needs.
//!
//! Anything else (nested columns, nulls, other codecs or encodings) is refused with an error that
//! names it, never guessed at.

use super::{snappy, thrift};
use commute_sdk::anyhow::{bail, ensure, Context as _, Result};
use std::path::Path;

const MAGIC: &[u8] = b"PAR1";
const BYTE_ARRAY: i64 = 6;
const OPTIONAL: i64 = 1;
const REPEATED: i64 = 2;
const UNCOMPRESSED: i64 = 0;
const SNAPPY: i64 = 1;
const PLAIN: i64 = 0;
const PLAIN_DICTIONARY: i64 = 2;
const RLE_DICTIONARY: i64 = 8;
const DATA_PAGE: i64 = 0;
const DICTIONARY_PAGE: i64 = 2;
const DATA_PAGE_V2: i64 = 3;

/// Reads every value of the string column `column` of a Parquet file, in row order.
pub fn read_string_column(path: &Path, column: &str) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    string_column(&bytes, column).with_context(|| format!("{}: column `{column}`", path.display()))
}

/// Reads every value of the string column `column` from a whole Parquet file in memory.
pub fn string_column(file: &[u8], column: &str) -> Result<Vec<String>> {
    ensure!(file.len() >= 12 && file.starts_with(MAGIC) && file.ends_with(MAGIC), "not a Parquet file");
    let footer_len = u32::from_le_bytes([
        file[file.len() - 8],
        file[file.len() - 7],
        file[file.len() - 6],
        file[file.len() - 5],
    ]) as usize;
    let footer_start =
        (file.len() - 8).checked_sub(footer_len).filter(|&s| s >= 4).context("footer length out of range")?;
    let (meta, _) = thrift::read_struct(&file[footer_start..file.len() - 8]).context("unreadable footer")?;

    // Schema: a root group followed by flat leaf columns.
    let schema = meta.list(2)?;
    let mut leaves = Vec::new();
    for element in schema.iter().skip(1) {
        let thrift::Value::Struct(e) = element else { bail!("malformed schema") };
        ensure!(e.opt_int(5).unwrap_or(0) == 0, "nested columns are not supported");
        leaves.push((e.string(4)?, e.opt_int(1), e.opt_int(3).unwrap_or(0)));
    }
    let index = leaves.iter().position(|(name, _, _)| name == column).with_context(|| {
        format!("no such column; the file has {:?}", leaves.iter().map(|l| &l.0).collect::<Vec<_>>())
    })?;
    let (_, kind, repetition) = &leaves[index];
    ensure!(*kind == Some(BYTE_ARRAY), "the column is not a byte array (physical type {kind:?})");
    ensure!(*repetition != REPEATED, "repeated columns are not supported");
    let optional = *repetition == OPTIONAL;

    let mut out = Vec::with_capacity(usize::try_from(meta.int(3)?).unwrap_or(0).min(1 << 26));
    for group in meta.list(4)? {
        let thrift::Value::Struct(group) = group else { bail!("malformed row group") };
        let thrift::Value::Struct(chunk) = group.list(1)?.get(index).context("row group lacks the column")?
        else {
            bail!("malformed column chunk")
        };
        let chunk_meta = chunk.strukt(3)?;
        read_chunk(file, chunk_meta, optional, &mut out)?;
    }
    Ok(out)
}

/// Reads one column chunk's pages, appending its values.
fn read_chunk(file: &[u8], meta: &thrift::Struct, optional: bool, out: &mut Vec<String>) -> Result<()> {
    let codec = meta.int(4)?;
    ensure!(
        matches!(codec, UNCOMPRESSED | SNAPPY),
        "compression codec {codec} is not supported (only none and Snappy)"
    );
    let num_values = usize::try_from(meta.int(5)?)?;
    let start = meta.opt_int(11).unwrap_or(meta.int(9)?).min(meta.int(9)?);
    let mut pos = usize::try_from(start)?;
    let end = pos
        .checked_add(usize::try_from(meta.int(7)?)?)
        .filter(|&e| e <= file.len())
        .context("column chunk extends past the file")?;
    let mut dictionary: Vec<String> = Vec::new();
    let mut read = 0usize;
    while read < num_values {
        ensure!(pos < end, "column chunk ends after {read} of {num_values} values");
        let (header, used) = thrift::read_struct(&file[pos..end]).context("unreadable page header")?;
        pos += used;
        let compressed = usize::try_from(header.int(3)?)?;
        let body = file.get(pos..pos + compressed).context("page extends past its column chunk")?;
        pos += compressed;
        match header.int(1)? {
            DICTIONARY_PAGE => {
                let n = usize::try_from(header.strukt(7)?.int(1)?)?;
                let page = decompress(codec, body)?;
                dictionary = plain_strings(&page, n)?;
            }
            DATA_PAGE => {
                let h = header.strukt(5)?;
                let n = usize::try_from(h.int(1)?)?;
                let page = decompress(codec, body)?;
                let mut data = &page[..];
                if optional {
                    let len =
                        u32::from_le_bytes(data.get(..4).context("truncated levels")?.try_into()?) as usize;
                    let levels = data.get(4..4 + len).context("truncated levels")?;
                    ensure!(rle_hybrid(levels, 1, n)?.iter().all(|&l| l == 1), "the column holds nulls");
                    data = &data[4 + len..];
                }
                values(h.int(2)?, data, n, &dictionary, out)?;
                read += n;
            }
            DATA_PAGE_V2 => {
                let h = header.strukt(8)?;
                let n = usize::try_from(h.int(1)?)?;
                ensure!(h.opt_int(2).unwrap_or(0) == 0, "the column holds nulls");
                let levels = usize::try_from(h.int(5)? + h.int(6)?)?;
                let rest = body.get(levels..).context("truncated levels")?;
                let page =
                    if h.opt_bool(7).unwrap_or(true) { decompress(codec, rest)? } else { rest.to_vec() };
                values(h.int(4)?, &page, n, &dictionary, out)?;
                read += n;
            }
            _ => {} // index pages: skip
        }
    }
    Ok(())
}

fn decompress(codec: i64, body: &[u8]) -> Result<Vec<u8>> {
    match codec {
        SNAPPY => snappy::decompress(body),
        _ => Ok(body.to_vec()),
    }
}

/// Decodes `n` values of a data page.
fn values(encoding: i64, data: &[u8], n: usize, dictionary: &[String], out: &mut Vec<String>) -> Result<()> {
    match encoding {
        PLAIN => out.extend(plain_strings(data, n)?),
        PLAIN_DICTIONARY | RLE_DICTIONARY => {
            let width = *data.first().context("empty dictionary-encoded page")?;
            for i in rle_hybrid(&data[1..], width, n)? {
                let word = dictionary
                    .get(i as usize)
                    .with_context(|| format!("dictionary index {i} out of range"))?;
                out.push(word.clone());
            }
        }
        other => bail!("value encoding {other} is not supported"),
    }
    Ok(())
}

/// `n` PLAIN byte arrays: each a 4-byte little-endian length and the bytes.
fn plain_strings(mut data: &[u8], n: usize) -> Result<Vec<String>> {
    // Each value takes at least four bytes: a corrupt count cannot reserve more than the data holds.
    let mut out = Vec::with_capacity(n.min(data.len() / 4));
    for _ in 0..n {
        let len = u32::from_le_bytes(data.get(..4).context("truncated byte array")?.try_into()?) as usize;
        let bytes = data.get(4..4 + len).context("truncated byte array")?;
        out.push(String::from_utf8(bytes.to_vec()).context("a value is not UTF-8")?);
        data = &data[4 + len..];
    }
    Ok(out)
}

/// `n` values of the RLE / bit-packing hybrid encoding with `width`-bit values.
pub fn rle_hybrid(data: &[u8], width: u8, n: usize) -> Result<Vec<u32>> {
    ensure!(width <= 32, "bit width {width} is out of range");
    let width = usize::from(width);
    let mut out = Vec::with_capacity(n.min(1 << 24));
    let mut pos = 0usize;
    while out.len() < n {
        let mut header = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *data.get(pos).context("truncated RLE run header")?;
            pos += 1;
            header |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let count = usize::try_from(header >> 1)?;
        if header & 1 == 0 {
            // A run: one value repeated.
            let bytes = width.div_ceil(8);
            let raw = data.get(pos..pos + bytes).context("truncated RLE run")?;
            pos += bytes;
            let value = raw.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            out.extend(std::iter::repeat_n(value, count.min(n - out.len())));
        } else {
            // Bit-packed groups of 8 values, least significant bit first.
            let bytes = count.checked_mul(width).context("bit-packed run too long")?;
            let packed = data.get(pos..pos + bytes).context("truncated bit-packed run")?;
            pos += bytes;
            for k in 0..count.saturating_mul(8).min(n - out.len()) {
                let mut value = 0u32;
                for bit in 0..width {
                    let at = k * width + bit;
                    value |= u32::from((packed[at / 8] >> (at % 8)) & 1) << bit;
                }
                out.push(value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_runs_and_bit_packed_groups() {
        // Run of 3 × 5 (width 3: one byte), then one bit-packed group of 8 values 0..8 (width 3).
        let mut data = vec![3 << 1, 5];
        data.push((1 << 1) | 1);
        let mut bits = 0u32;
        for v in 0..8u32 {
            bits |= v << (3 * v);
        }
        data.extend(&bits.to_le_bytes()[..3]);
        assert_eq!(rle_hybrid(&data, 3, 11).unwrap(), vec![5, 5, 5, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(rle_hybrid(&data, 3, 12).is_err(), "more values than the data holds");
    }

    #[test]
    fn plain_byte_arrays() {
        let mut data = Vec::new();
        for w in ["the", "", "été"] {
            data.extend((w.len() as u32).to_le_bytes());
            data.extend(w.as_bytes());
        }
        assert_eq!(plain_strings(&data, 3).unwrap(), ["the", "", "été"]);
        assert!(plain_strings(&data, 4).is_err());
    }

    #[test]
    fn other_files_are_refused() {
        assert!(string_column(b"PAR1", "index").is_err());
        assert!(string_column(b"not a parquet file at all", "index").is_err());
        let mut fake = b"PAR1".to_vec();
        fake.extend([0x00]); // an empty footer struct
        fake.extend(1u32.to_le_bytes());
        fake.extend(b"PAR1");
        let err = string_column(&fake, "index").unwrap_err().to_string();
        assert!(err.contains("missing field"), "{err}");
    }
}
