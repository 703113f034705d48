//! Whisper's vocabulary (`vocabulary.txt`: one token a line, GPT-2's byte-level encoding) and its
//! special tokens; token ids back to text.
//!
//! Byte-level tokens write every byte as a printable character: the printable Latin-1 bytes
//! (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) as themselves and the other 68 bytes as the characters from U+0100
//! on, in byte order. Decoding maps each character back to its byte and reads the bytes as UTF-8.

use commute_sdk::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// The vocabulary and its special tokens.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    tokens: Vec<String>,
    byte_of: HashMap<char, u8>,
    /// `<|endoftext|>`: the end of a transcript.
    pub end: u32,
    /// `<|startoftranscript|>`.
    pub start: u32,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
}

/// GPT-2's byte → character table.
fn byte_chars() -> Vec<(u8, char)> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut extra = 0u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (b, char::from(b))
            } else {
                let c = char::from_u32(256 + extra).unwrap_or('?');
                extra += 1;
                (b, c)
            }
        })
        .collect()
}

impl Vocabulary {
    /// Reads `vocabulary.txt`.
    pub fn read(path: &Path) -> Result<Vocabulary> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Vocabulary::parse(&text)
    }

    /// The vocabulary from the file's text.
    pub fn parse(text: &str) -> Result<Vocabulary> {
        let tokens: Vec<String> = text.lines().map(str::to_owned).collect();
        let id = |name: &str| -> Result<u32> {
            let i = tokens
                .iter()
                .position(|t| t == name)
                .ok_or_else(|| anyhow!("the vocabulary has no {name}"))?;
            Ok(i as u32)
        };
        Ok(Vocabulary {
            end: id("<|endoftext|>")?,
            start: id("<|startoftranscript|>")?,
            no_timestamps: id("<|notimestamps|>")?,
            byte_of: byte_chars().into_iter().map(|(b, c)| (c, b)).collect(),
            tokens,
        })
    }

    /// Tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The text of ordinary tokens (ids below `<|endoftext|>`; others are skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&id| id < self.end)
            .filter_map(|&id| self.tokens.get(id as usize))
            .flat_map(|t| t.chars().filter_map(|c| self.byte_of.get(&c).copied()))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_is_a_bijection() {
        let table = byte_chars();
        let chars: std::collections::HashSet<char> = table.iter().map(|&(_, c)| c).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(table[usize::from(b' ')].1, 'Ġ', "space is U+0120 as in GPT-2");
        assert_eq!(table[usize::from(b'\n')].1, 'Ċ');
        assert_eq!(table[usize::from(b'A')].1, 'A');
    }

    #[test]
    fn tokens_decode_to_text_and_specials_are_dropped() {
        let v = Vocabulary::parse(
            "Hello\nĠworld\n,\nĠcaf\nÃ©\n<|endoftext|>\n<|startoftranscript|>\n<|notimestamps|>",
        )
        .expect("parses");
        assert_eq!((v.end, v.start, v.no_timestamps, v.len()), (5, 6, 7, 8));
        assert_eq!(v.decode(&[6, 7, 0, 1, 2, 3, 4, 5]), "Hello world, café");
        assert!(Vocabulary::parse("a\nb").is_err());
    }
}
