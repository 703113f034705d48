//! MessagePack maps of unsigned integers to unsigned integers, in the order written: spaCy's
//! `vocab/key2row` (string hash → vector row).

use commute_sdk::anyhow::{bail, Context as _, Result};

/// Reads a top-level map whose keys and values are non-negative integers.
pub fn read_uint_map(bytes: &[u8]) -> Result<Vec<(u64, u64)>> {
    let mut pos = 0usize;
    let tag = *bytes.first().context("empty MessagePack data")?;
    pos += 1;
    let n = match tag {
        0x80..=0x8f => usize::from(tag & 0x0f),
        0xde => usize::from(u16::from_be_bytes(take::<2>(bytes, &mut pos)?)),
        0xdf => u32::from_be_bytes(take::<4>(bytes, &mut pos)?) as usize,
        other => bail!("expected a MessagePack map, found type byte {other:#04x}"),
    };
    // Each entry takes at least two bytes.
    if n > bytes.len() / 2 {
        bail!("a map of {n} entries is longer than its {} bytes", bytes.len());
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let key = uint(bytes, &mut pos).with_context(|| format!("entry {i}: key"))?;
        let value = uint(bytes, &mut pos).with_context(|| format!("entry {i}: value"))?;
        out.push((key, value));
    }
    if pos != bytes.len() {
        bail!("{} bytes follow the map", bytes.len() - pos);
    }
    Ok(out)
}

fn take<const N: usize>(bytes: &[u8], pos: &mut usize) -> Result<[u8; N]> {
    let slice = bytes.get(*pos..*pos + N).context("truncated MessagePack data")?;
    *pos += N;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn uint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    let tag = *bytes.get(*pos).context("truncated MessagePack data")?;
    *pos += 1;
    Ok(match tag {
        0x00..=0x7f => u64::from(tag),
        0xcc => u64::from(take::<1>(bytes, pos)?[0]),
        0xcd => u64::from(u16::from_be_bytes(take::<2>(bytes, pos)?)),
        0xce => u64::from(u32::from_be_bytes(take::<4>(bytes, pos)?)),
        0xcf => u64::from_be_bytes(take::<8>(bytes, pos)?),
        // Signed encodings of non-negative numbers.
        0xd0..=0xd3 => {
            let v = match tag {
                0xd0 => i64::from(take::<1>(bytes, pos)?[0] as i8),
                0xd1 => i64::from(i16::from_be_bytes(take::<2>(bytes, pos)?)),
                0xd2 => i64::from(i32::from_be_bytes(take::<4>(bytes, pos)?)),
                _ => i64::from_be_bytes(take::<8>(bytes, pos)?),
            };
            u64::try_from(v).with_context(|| format!("negative integer {v}"))?
        }
        other => bail!("expected an unsigned integer, found type byte {other:#04x}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_integer_width_in_order() {
        let mut bytes = vec![0x84];
        bytes.extend([0x05, 0x00]); // 5 → 0
        bytes.extend([0xcc, 200, 0xcd, 0x01, 0x00]); // 200 → 256
        bytes.push(0xcf);
        bytes.extend(u64::MAX.to_be_bytes());
        bytes.extend([0xce, 0, 1, 0, 0]); // u64::MAX → 65536
        bytes.extend([0xd0, 7, 0xd2, 0, 0, 0, 9]); // 7 → 9 (signed encodings)
        assert_eq!(read_uint_map(&bytes).unwrap(), vec![(5, 0), (200, 256), (u64::MAX, 65536), (7, 9)]);
    }

    #[test]
    fn other_data_is_refused() {
        assert!(read_uint_map(&[0x91, 0x01]).is_err(), "an array");
        assert!(read_uint_map(&[0x81, 0xa1, b'x', 0x01]).is_err(), "a string key");
        assert!(read_uint_map(&[0x81, 0x01, 0xd0, 0xff]).is_err(), "a negative value");
        assert!(read_uint_map(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err(), "too long");
        assert!(read_uint_map(&[0x81, 0x01]).is_err(), "truncated");
    }
}
