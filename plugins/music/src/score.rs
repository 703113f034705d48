//! Checks and small helpers shared by every function that reads a score.

use commute_sdk::prelude::*;

/// The highest MIDI pitch, velocity and program number.
pub const MIDI_MAX: u8 = 127;

/// Checks that a score is well formed: pitch, velocity and program in 0..=127, onsets and
/// durations finite and not negative. Every function calls this first, so a malformed score is a
/// clear error naming the note instead of a silent misreading.
pub fn validate(score: &Score) -> Result<()> {
    for (i, n) in score.notes.iter().enumerate() {
        ensure!(n.pitch <= MIDI_MAX, "note {i} has pitch {}, outside 0..=127", n.pitch);
        ensure!(n.velocity <= MIDI_MAX, "note {i} has velocity {}, outside 0..=127", n.velocity);
        ensure!(n.program <= MIDI_MAX, "note {i} has program {}, outside 0..=127", n.program);
        ensure!(
            n.onset_s.is_finite() && n.onset_s >= 0.0,
            "note {i} (pitch {}) has onset {} s; onsets must be finite and not negative",
            n.pitch,
            n.onset_s
        );
        ensure!(
            n.duration_s.is_finite() && n.duration_s >= 0.0,
            "note {i} (pitch {}) has duration {} s; durations must be finite and not negative",
            n.pitch,
            n.duration_s
        );
        ensure!(n.end_s().is_finite(), "note {i} (pitch {}) ends at an infinite time", n.pitch);
    }
    Ok(())
}

/// The time the score spans: from its first onset to its last note end, `(start, end)` in
/// seconds. `(0, 0)` for an empty score.
pub fn extent(score: &Score) -> (f32, f32) {
    if score.notes.is_empty() {
        return (0.0, 0.0);
    }
    let start = score.notes.iter().map(|n| n.onset_s).fold(f32::INFINITY, f32::min);
    (start, score.duration_s().max(start))
}

/// A note's amplitude on a linear scale: velocity / 127 (velocity is treated as proportional to
/// amplitude throughout this plugin, so +6 dB doubles it).
pub fn amplitude(velocity: u8) -> f32 {
    f32::from(velocity) / f32::from(MIDI_MAX)
}

/// A velocity as a level in dB relative to velocity 127 (velocity 0 reads as velocity 1).
pub fn level_db(velocity: u8) -> f32 {
    20.0 * amplitude(velocity.max(1)).log10()
}

/// Sorts notes by onset, then pitch (the order every generated or transformed score uses).
pub fn sort_notes(notes: &mut [Note]) {
    notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A note, for tests.
    pub(crate) fn note(pitch: u8, onset_s: f32, duration_s: f32, velocity: u8, program: u8) -> Note {
        Note { pitch, onset_s, duration_s, velocity, program }
    }

    #[test]
    fn validate_names_the_bad_note() {
        let ok = Score { notes: vec![note(60, 0.0, 1.0, 80, 0)] };
        assert!(validate(&ok).is_ok());
        let bad = Score { notes: vec![note(60, 0.0, 1.0, 80, 0), note(62, f32::NAN, 1.0, 80, 0)] };
        let msg = validate(&bad).expect_err("NaN onset").to_string();
        assert!(msg.contains("note 1") && msg.contains("onset"), "{msg}");
        let bad = Score { notes: vec![note(60, 0.0, -1.0, 80, 0)] };
        assert!(validate(&bad).is_err());
        let bad = Score { notes: vec![note(200, 0.0, 1.0, 80, 0)] };
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn extent_and_levels() {
        let s = Score { notes: vec![note(60, 1.0, 1.0, 80, 0), note(62, 0.5, 0.25, 80, 0)] };
        assert_eq!(extent(&s), (0.5, 2.0));
        assert_eq!(extent(&Score::default()), (0.0, 0.0));
        assert_eq!(level_db(127), 0.0);
        assert!((level_db(64) + 5.95).abs() < 0.05);
    }
}
