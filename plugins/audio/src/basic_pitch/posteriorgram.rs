//! Basic Pitch's frame-level output for one item: note, onset and pitch-contour posteriorgrams
//! on one timeline, with the time of each frame.

use super::windows::frame_time_s;

/// Piano keys in the note and onset posteriorgrams (MIDI 21–108).
pub const KEYS: usize = 88;
/// MIDI pitch of key 0 (A0).
pub const LOWEST_PITCH: u8 = 21;
/// Contour bins per semitone.
pub const CONTOUR_BINS_PER_SEMITONE: usize = 3;
/// Bins of the pitch contour (3 per key; bin `b` is MIDI `21 + b / 3`, bin 0 at 27.5 Hz).
pub const CONTOUR_BINS: usize = KEYS * CONTOUR_BINS_PER_SEMITONE;

/// The model's posteriorgrams for one item, frame-major (`frames × width`), values in 0–1.
///
/// Frame `f` is centred at [`time_s(f)`](Posteriorgrams::time_s); the rate is about 86 frames per
/// second. Audio shorter than one frame (11.6 ms) has no frames.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Posteriorgrams {
    /// Number of frames.
    pub frames: usize,
    /// Note activations, `frames × 88`: is key `k` (MIDI `21 + k`) sounding?
    pub note: Vec<f32>,
    /// Onset activations, `frames × 88`: does a note of key `k` start here?
    pub onset: Vec<f32>,
    /// Pitch contour, `frames × 264`: salience at a third of a semitone resolution.
    pub contour: Vec<f32>,
}

impl Posteriorgrams {
    /// All zeros for `frames` frames.
    pub fn zeros(frames: usize) -> Posteriorgrams {
        Posteriorgrams {
            frames,
            note: vec![0.0; frames * KEYS],
            onset: vec![0.0; frames * KEYS],
            contour: vec![0.0; frames * CONTOUR_BINS],
        }
    }

    /// The note activations of frame `f` (88 keys).
    pub fn note_frame(&self, f: usize) -> &[f32] {
        &self.note[f * KEYS..(f + 1) * KEYS]
    }

    /// The onset activations of frame `f` (88 keys).
    pub fn onset_frame(&self, f: usize) -> &[f32] {
        &self.onset[f * KEYS..(f + 1) * KEYS]
    }

    /// The contour of frame `f` (264 bins).
    pub fn contour_frame(&self, f: usize) -> &[f32] {
        &self.contour[f * CONTOUR_BINS..(f + 1) * CONTOUR_BINS]
    }

    /// The time in seconds on which frame `f` is centred.
    pub fn time_s(&self, f: usize) -> f64 {
        frame_time_s(f)
    }

    /// The key (0–87) whose note activation summed over all frames is largest, with that sum;
    /// `None` without frames.
    pub fn strongest_key(&self) -> Option<(usize, f32)> {
        let mut totals = [0.0f32; KEYS];
        for f in 0..self.frames {
            for (t, v) in totals.iter_mut().zip(self.note_frame(f)) {
                *t += v;
            }
        }
        (self.frames > 0).then(|| {
            totals
                .iter()
                .copied()
                .enumerate()
                .fold((0, f32::MIN), |best, (k, v)| if v > best.1 { (k, v) } else { best })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_rows_and_the_strongest_key_is_found() {
        let mut p = Posteriorgrams::zeros(3);
        p.note[KEYS + 48] = 0.9;
        p.note[2 * KEYS + 48] = 0.8;
        p.note[10] = 0.95;
        p.contour[2 * CONTOUR_BINS + 5] = 1.0;
        assert_eq!(p.note_frame(1)[48], 0.9);
        assert_eq!(p.contour_frame(2)[5], 1.0);
        assert_eq!(p.strongest_key().map(|(k, _)| k), Some(48));
        assert_eq!(Posteriorgrams::zeros(0).strongest_key(), None);
        assert!((p.time_s(1) - 256.0 / 22050.0).abs() < 1e-12);
    }
}
