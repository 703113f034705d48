//! CTC greedy decoding over the recognizer's classes: the best class per time step, repeats
//! collapsed, blanks removed.
//!
//! The classes are those the model was trained with: index 0 is the CTC blank, then the
//! characters of the model's `character` metadata in order (one per line), then a space.

use commute_sdk::prelude::*;

/// The recognizer's class list.
#[derive(Debug, Clone, PartialEq)]
pub struct Charset {
    /// Class `i + 1` is `characters[i]`; class 0 is the blank.
    characters: Vec<String>,
}

impl Charset {
    /// The classes for a character list with one character per line (as in the model metadata).
    pub fn from_lines(list: &str) -> Charset {
        let mut characters: Vec<String> =
            list.split('\n').map(|c| c.trim_end_matches('\r').to_owned()).collect();
        characters.push(" ".to_owned());
        Charset { characters }
    }

    /// Number of classes, the blank included.
    pub fn classes(&self) -> usize {
        self.characters.len() + 1
    }

    /// Decodes per-step class scores (`steps × classes`, step-major): the arg-max class of each
    /// step, consecutive repeats collapsed, blanks dropped.
    pub fn decode(&self, scores: &[f32], classes: usize) -> Result<String> {
        ensure!(
            classes == self.classes(),
            "the model scores {classes} classes but its character list makes {}",
            self.classes()
        );
        let mut text = String::new();
        let mut previous = 0;
        for step in scores.chunks_exact(classes) {
            let mut best = 0;
            for (k, &s) in step.iter().enumerate() {
                if s > step[best] {
                    best = k;
                }
            }
            if best != 0 && best != previous {
                text.push_str(&self.characters[best - 1]);
            }
            previous = best;
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores with a 1 at each step's class.
    fn one_hot(classes: usize, path: &[usize]) -> Vec<f32> {
        let mut out = vec![0.0; classes * path.len()];
        for (t, &k) in path.iter().enumerate() {
            out[t * classes + k] = 1.0;
        }
        out
    }

    #[test]
    fn classes_are_blank_the_list_and_a_space() {
        let set = Charset::from_lines("a\nb\nl");
        assert_eq!(set.classes(), 5);
        assert_eq!(set.decode(&one_hot(5, &[4, 1, 4]), 5).unwrap(), " a ");
    }

    #[test]
    fn repeats_collapse_unless_a_blank_separates_them() {
        let set = Charset::from_lines("a\nb\nl");
        // b b a 0 l l 0 l 0 a a → "ball a" without the space class: "balla".
        let path = [2, 2, 1, 0, 3, 3, 0, 3, 0, 1, 1];
        assert_eq!(set.decode(&one_hot(5, &path), 5).unwrap(), "balla");
        assert_eq!(set.decode(&one_hot(5, &[0, 0, 0]), 5).unwrap(), "");
        assert_eq!(set.decode(&[], 5).unwrap(), "");
    }

    #[test]
    fn a_class_count_that_does_not_match_the_list_is_an_error() {
        let err = Charset::from_lines("a\nb").decode(&[0.0; 8], 8).unwrap_err().to_string();
        assert!(err.contains("8 classes") && err.contains("makes 4"), "{err}");
    }
}
