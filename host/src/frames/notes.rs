//! Note-level precision, recall and F1 of a decoded score against the true one: a decoded note
//! matches a true note of the same pitch whose onset is within the tolerance, each note matched
//! at most once (onsets only, as transcription papers' "note F1 without offsets").

use commute_sdk::Note;

/// Matched notes, and how many were decoded and are true.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NoteCounts {
    /// Decoded notes matched to a true one.
    pub matched: usize,
    /// Decoded notes.
    pub decoded: usize,
    /// True notes.
    pub truth: usize,
}

impl NoteCounts {
    /// Adds another item's counts (scores are pooled over the test items' notes).
    pub fn add(&mut self, other: NoteCounts) {
        self.matched += other.matched;
        self.decoded += other.decoded;
        self.truth += other.truth;
    }

    /// Matched / decoded (1 when nothing was decoded and nothing is true, else 0 without notes).
    pub fn precision(&self) -> f64 {
        ratio(self.matched, self.decoded, self.truth == 0)
    }

    /// Matched / true.
    pub fn recall(&self) -> f64 {
        ratio(self.matched, self.truth, self.decoded == 0)
    }

    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize, empty_is_right: bool) -> f64 {
    match b {
        0 if empty_is_right => 1.0,
        0 => 0.0,
        _ => a as f64 / b as f64,
    }
}

/// Matches `decoded` against `truth`: per pitch, both onset lists sorted and paired greedily from
/// the earliest, which for a window |a − b| ≤ tolerance on a line is a maximum matching.
pub fn match_notes(decoded: &[Note], truth: &[Note], tolerance: f64) -> NoteCounts {
    let mut matched = 0;
    for pitch in 0..=127u8 {
        let onsets = |notes: &[Note]| {
            let mut v: Vec<f64> =
                notes.iter().filter(|n| n.pitch == pitch).map(|n| f64::from(n.onset_s)).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (d, t) = (onsets(decoded), onsets(truth));
        let (mut i, mut j) = (0, 0);
        while i < d.len() && j < t.len() {
            if (d[i] - t[j]).abs() <= tolerance + 1e-9 {
                matched += 1;
                i += 1;
                j += 1;
            } else if d[i] < t[j] {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
    NoteCounts { matched, decoded: decoded.len(), truth: truth.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(pitch: u8, onset_s: f32) -> Note {
        Note { pitch, onset_s, duration_s: 0.2, velocity: 80, program: 0 }
    }

    #[test]
    fn known_counts_for_onsets_pitches_and_duplicates() {
        let truth = [note(60, 0.0), note(62, 0.5), note(64, 1.0), note(60, 1.5)];
        assert_eq!(match_notes(&truth, &truth, 0.05).matched, 4);
        // Within and beyond the tolerance, a wrong pitch, one true note decoded twice.
        let decoded = [note(60, 0.04), note(62, 0.56), note(65, 1.0), note(60, 1.5), note(60, 1.52)];
        let c = match_notes(&decoded, &truth, 0.05);
        assert_eq!(c, NoteCounts { matched: 2, decoded: 5, truth: 4 });
        assert!((c.precision() - 0.4).abs() < 1e-12 && (c.recall() - 0.5).abs() < 1e-12);
        assert!((c.f1() - 2.0 * 0.4 * 0.5 / 0.9).abs() < 1e-12);
        // Greedy from the earliest is maximal: 0.00 and 0.09 against 0.05 and 0.14 match both.
        let c = match_notes(&[note(70, 0.0), note(70, 0.09)], &[note(70, 0.05), note(70, 0.14)], 0.05);
        assert_eq!(c.matched, 2);
        assert_eq!(NoteCounts::default().f1(), 1.0, "nothing to find, nothing found");
        assert_eq!(match_notes(&[], &truth, 0.05).f1(), 0.0);
    }
}
