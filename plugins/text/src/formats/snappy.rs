//! Snappy decompression (the raw block format Parquet pages use, without framing).

use commute_sdk::anyhow::{bail, ensure, Context as _, Result};

/// Decompresses one raw Snappy block.
pub fn decompress(input: &[u8]) -> Result<Vec<u8>> {
    let mut pos = 0usize;
    let len = varint(input, &mut pos)?;
    ensure!(
        len <= input.len().saturating_mul(64).max(64),
        "Snappy length {len} is implausible for {} input bytes",
        input.len()
    );
    let mut out: Vec<u8> = Vec::with_capacity(len);
    while pos < input.len() {
        let tag = input[pos];
        pos += 1;
        match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    let bytes = input.get(pos..pos + extra).context("truncated Snappy literal length")?;
                    n = bytes.iter().rev().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                    pos += extra;
                }
                let n = n + 1;
                let literal = input.get(pos..pos + n).context("truncated Snappy literal")?;
                out.extend_from_slice(literal);
                pos += n;
            }
            kind => {
                let (n, offset) = match kind {
                    1 => {
                        let b = *input.get(pos).context("truncated Snappy copy")?;
                        pos += 1;
                        (usize::from((tag >> 2) & 7) + 4, (usize::from(tag >> 5) << 8) | usize::from(b))
                    }
                    2 => {
                        let b = input.get(pos..pos + 2).context("truncated Snappy copy")?;
                        pos += 2;
                        (usize::from(tag >> 2) + 1, usize::from(u16::from_le_bytes([b[0], b[1]])))
                    }
                    _ => {
                        let b = input.get(pos..pos + 4).context("truncated Snappy copy")?;
                        pos += 4;
                        (usize::from(tag >> 2) + 1, u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    }
                };
                if offset == 0 || offset > out.len() {
                    bail!("Snappy copy offset {offset} outside the {} bytes written", out.len());
                }
                // Copies may overlap what they write (a run): copy byte by byte.
                let start = out.len() - offset;
                for i in 0..n {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
        ensure!(out.len() <= len, "Snappy data decodes to more than its declared {len} bytes");
    }
    ensure!(out.len() == len, "Snappy data decodes to {} bytes, {len} declared", out.len());
    Ok(out)
}

fn varint(input: &[u8], pos: &mut usize) -> Result<usize> {
    let mut out = 0usize;
    for shift in (0..35).step_by(7) {
        let b = *input.get(*pos).context("truncated Snappy header")?;
        *pos += 1;
        out |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    bail!("Snappy length varint too long")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_overlapping_copies() {
        // "abcd" as a literal, then copy offset 4 length 8 (overlapping: "abcdabcd"), then "!".
        let block = [13, 0x0c, b'a', b'b', b'c', b'd', (4 << 2) | 1, 4, 0x00, b'!'];
        // tag (4 << 2) | 1: copy-1 with length (4 & 7) + 4 = 8, offset 4.
        assert_eq!(decompress(&block).unwrap(), b"abcdabcdabcd!");
    }

    #[test]
    fn long_literals_and_two_byte_offsets() {
        let text: Vec<u8> = (0..100u8).collect();
        let mut block = vec![200, 1]; // varint 200
        block.extend([60 << 2, 99]); // literal, one length byte: 99 + 1 = 100 bytes
        block.extend(&text);
        // Two copy-2 elements of 50 bytes at offset 100 (a tag holds lengths up to 64).
        block.extend([(49 << 2) | 2, 100, 0, (49 << 2) | 2, 100, 0]);
        let out = decompress(&block).unwrap();
        assert_eq!(&out[..100], &text[..]);
        assert_eq!(&out[100..], &text[..]);
    }

    #[test]
    fn corrupt_blocks_are_errors() {
        assert!(decompress(&[5, 0x00, b'a']).is_err(), "too short");
        assert!(decompress(&[4, (3 << 2) | 1, 9]).is_err(), "copy before any data");
        assert!(decompress(&[1, 0x04, b'a', b'b']).is_err(), "longer than declared");
    }
}
