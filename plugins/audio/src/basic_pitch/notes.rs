//! Note creation: note and onset posteriorgrams → note events, following Basic Pitch's own
//! polyphonic decoding.
//!
//! # Method
//!
//! 1. Keys outside `minimum-frequency ..= maximum-frequency` are silenced (both posteriorgrams).
//! 2. Inferred onsets (`infer-onsets`): where a key's note activation rises over one and over two
//!    frames (the smaller rise, negative rises as 0, the first two frames 0), that rise, rescaled
//!    so that its largest value equals the largest onset activation, is an onset candidate too;
//!    the onset posteriorgram becomes the element-wise maximum of both.
//! 3. Onset peaks: frames where a key's onset activation is a strict local maximum in time (never
//!    the first or last frame) and at least `onset-threshold`.
//! 4. From the latest peak to the earliest (and, within a frame, from the highest key down), a note
//!    starts at the peak and lasts while the key's *remaining* note activation stays at or above
//!    `frame-threshold`; it ends before the first run of `energy-tolerance` frames below the
//!    threshold (or at the second-last frame). Notes of `min-frames` frames or fewer are dropped.
//!    A kept note clears the remaining activation of its key and the two neighbouring keys over
//!    its span, so one tone is not read twice.
//! 5. The "melodia trick" (`melodia-trick`): while some remaining activation exceeds
//!    `frame-threshold`, its largest cell seeds a note without an onset, extended forwards and
//!    backwards the same way (clearing as it goes); notes longer than `min-frames` are kept.
//!    As in the package, such a note's end is its last frame above the threshold (a note from an
//!    onset ends one frame after it).
//! 6. A note's amplitude is the mean note activation of its key over its frames (0–1).
//!
//! The decoding is deterministic: ties in step 5 go to the earliest frame, then the lowest key.
//! On the posteriorgrams of 60 s of synthesized music it gives the same 368 notes (start, end,
//! pitch) as the package's own decoding, amplitudes within 1e-6.
//! Pitch bends (the package estimates them from the contour) are not produced: scores carry whole
//! MIDI pitches. One deviation from the package: when no note activation rises at all, inferred
//! onsets are skipped (the package's rescaling would divide by zero there).

use super::posteriorgram::{Posteriorgrams, KEYS, LOWEST_PITCH};
use std::collections::BinaryHeap;

/// Settings of note creation (the `transcribe` parameters, in frames and key indices).
#[derive(Debug, Clone, PartialEq)]
pub struct NoteCreation {
    /// Smallest onset peak that starts a note (0–1).
    pub onset_threshold: f32,
    /// Smallest note activation that keeps a note sounding (0–1).
    pub frame_threshold: f32,
    /// Notes of this many frames or fewer are dropped.
    pub min_frames: usize,
    /// Frames below `frame_threshold` tolerated inside a note before it ends.
    pub energy_tolerance: usize,
    /// Lowest key kept (0–88; keys below are silenced).
    pub lowest_key: usize,
    /// One past the highest key kept (0–88; keys from here up are silenced).
    pub end_key: usize,
    /// Add onsets where the note activation rises sharply.
    pub infer_onsets: bool,
    /// Also read notes from strong activation left without an onset.
    pub melodia_trick: bool,
}

impl Default for NoteCreation {
    /// The package's defaults: onsets 0.5, frames 0.3, 127.7 ms (11 frames), tolerance 11,
    /// all keys, inferred onsets and the melodia trick on.
    fn default() -> Self {
        NoteCreation {
            onset_threshold: 0.5,
            frame_threshold: 0.3,
            min_frames: 11,
            energy_tolerance: 11,
            lowest_key: 0,
            end_key: KEYS,
            infer_onsets: true,
            melodia_trick: true,
        }
    }
}

/// One decoded note, in frames of the posteriorgrams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteEvent {
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
    /// MIDI pitch (21–108).
    pub pitch: u8,
    /// Mean note activation over the note (0–1).
    pub amplitude: f32,
}

/// Decodes note events from posteriorgrams, sorted by start frame, then pitch.
pub fn note_events(p: &Posteriorgrams, settings: &NoteCreation) -> Vec<NoteEvent> {
    let n = p.frames;
    if n == 0 {
        return Vec::new();
    }
    let (lo, hi) = (settings.lowest_key.min(KEYS), settings.end_key.min(KEYS));
    let band = |k: usize| (lo..hi).contains(&k);
    let mut frames = p.note.clone();
    let mut onsets = p.onset.clone();
    for (i, (f, o)) in frames.iter_mut().zip(onsets.iter_mut()).enumerate() {
        if !band(i % KEYS) {
            *f = 0.0;
            *o = 0.0;
        }
    }
    if settings.infer_onsets {
        infer_onsets(&frames, &mut onsets, n);
    }

    let mut remaining = frames.clone();
    let mut events = Vec::new();
    let at = |t: usize, k: usize| t * KEYS + k;

    // Onset peaks, latest first (then highest key first).
    let mut peaks = Vec::new();
    for t in 1..n.saturating_sub(1) {
        for k in 0..KEYS {
            let v = onsets[at(t, k)];
            if v >= settings.onset_threshold && v > onsets[at(t - 1, k)] && v > onsets[at(t + 1, k)] {
                peaks.push((t, k));
            }
        }
    }
    for &(start, k) in peaks.iter().rev() {
        if start >= n - 1 {
            continue;
        }
        let mut i = start + 1;
        let mut below = 0;
        while i < n - 1 && below < settings.energy_tolerance {
            if remaining[at(i, k)] < settings.frame_threshold {
                below += 1;
            } else {
                below = 0;
            }
            i += 1;
        }
        let end = i - below;
        if end - start <= settings.min_frames {
            continue;
        }
        for t in start..end {
            clear_around(&mut remaining, t, k);
        }
        events.push(note(&frames, start, end, k));
    }

    if settings.melodia_trick {
        melodia(&frames, &mut remaining, n, settings, &mut events);
    }
    events.sort_by(|a, b| a.start.cmp(&b.start).then(a.pitch.cmp(&b.pitch)).then(a.end.cmp(&b.end)));
    events
}

/// Sets the remaining activation of key `k` and its neighbours to zero at frame `t`.
fn clear_around(remaining: &mut [f32], t: usize, k: usize) {
    let row = &mut remaining[t * KEYS..(t + 1) * KEYS];
    row[k] = 0.0;
    if k + 1 < KEYS {
        row[k + 1] = 0.0;
    }
    if k > 0 {
        row[k - 1] = 0.0;
    }
}

/// A note of key `k` over `start..end`, its amplitude the mean activation there.
fn note(frames: &[f32], start: usize, end: usize, k: usize) -> NoteEvent {
    let sum: f64 = (start..end).map(|t| f64::from(frames[t * KEYS + k])).sum();
    let amplitude = (sum / (end - start).max(1) as f64) as f32;
    NoteEvent { start, end, pitch: LOWEST_PITCH + k as u8, amplitude }
}

/// Raises `onsets` to the rescaled rise of the note activation wherever that is larger.
fn infer_onsets(frames: &[f32], onsets: &mut [f32], n: usize) {
    let value = |t: usize, back: usize, k: usize| {
        let before = if t >= back { frames[(t - back) * KEYS + k] } else { 0.0 };
        frames[t * KEYS + k] - before
    };
    let mut rise = vec![0.0f32; frames.len()];
    for t in 2..n {
        for k in 0..KEYS {
            rise[t * KEYS + k] = value(t, 1, k).min(value(t, 2, k)).max(0.0);
        }
    }
    let top_rise = rise.iter().copied().fold(0.0f32, f32::max);
    let top_onset = onsets.iter().copied().fold(0.0f32, f32::max);
    if top_rise <= 0.0 {
        return;
    }
    let scale = top_onset / top_rise;
    for (o, r) in onsets.iter_mut().zip(&rise) {
        *o = o.max(r * scale);
    }
}

/// A cell of the remaining activation, ordered by value, then earliest frame and lowest key (the
/// order of a row-major argmax).
#[derive(PartialEq)]
struct Cell {
    value: f32,
    index: usize,
}

impl Eq for Cell {}

impl Ord for Cell {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.total_cmp(&other.value).then(other.index.cmp(&self.index))
    }
}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Step 5: notes grown from the strongest remaining activation.
fn melodia(frames: &[f32], remaining: &mut [f32], n: usize, s: &NoteCreation, events: &mut Vec<NoteEvent>) {
    // Values only ever drop to zero, so a max-heap whose stale entries are skipped always yields
    // the current largest cell.
    let mut heap: BinaryHeap<Cell> = remaining
        .iter()
        .enumerate()
        .filter(|(_, &v)| v > s.frame_threshold)
        .map(|(index, &value)| Cell { value, index })
        .collect();
    while let Some(Cell { value, index }) = heap.pop() {
        if remaining[index] != value {
            continue;
        }
        let (mid, k) = (index / KEYS, index % KEYS);
        remaining[index] = 0.0;

        let mut i = mid + 1;
        let mut below = 0;
        while i < n - 1 && below < s.energy_tolerance {
            if remaining[i * KEYS + k] < s.frame_threshold {
                below += 1;
            } else {
                below = 0;
            }
            clear_around(remaining, i, k);
            i += 1;
        }
        let end = i - 1 - below;

        let mut i = mid as isize - 1;
        let mut below = 0;
        while i > 0 && below < s.energy_tolerance {
            let t = i as usize;
            if remaining[t * KEYS + k] < s.frame_threshold {
                below += 1;
            } else {
                below = 0;
            }
            clear_around(remaining, t, k);
            i -= 1;
        }
        let start = (i + 1) as usize + below;

        if end <= start || end - start <= s.min_frames {
            continue;
        }
        events.push(note(frames, start, end, k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Posteriorgrams with notes `(key, start, end, level)` and onsets at their starts.
    fn grams(frames: usize, notes: &[(usize, usize, usize, f32)]) -> Posteriorgrams {
        let mut p = Posteriorgrams::zeros(frames);
        for &(k, start, end, level) in notes {
            for t in start..end {
                p.note[t * KEYS + k] = level;
            }
            p.onset[start * KEYS + k] = 0.9;
        }
        p
    }

    #[test]
    fn onsets_start_notes_that_last_while_the_activation_holds() {
        let p = grams(200, &[(39, 10, 60, 0.8), (43, 70, 150, 0.6)]);
        let events = note_events(&p, &NoteCreation { infer_onsets: false, ..NoteCreation::default() });
        assert_eq!(
            events,
            [
                NoteEvent { start: 10, end: 60, pitch: 60, amplitude: 0.8 },
                NoteEvent { start: 70, end: 150, pitch: 64, amplitude: 0.6 },
            ]
        );
    }

    #[test]
    fn short_gaps_are_bridged_and_short_notes_dropped() {
        // A gap of 5 frames (< tolerance 11) inside a note; a 10-frame note is too short.
        let mut p = grams(200, &[(40, 10, 40, 0.8), (40, 45, 80, 0.8), (60, 100, 110, 0.9)]);
        p.onset[45 * KEYS + 40] = 0.0;
        let plain = NoteCreation { melodia_trick: false, infer_onsets: false, ..NoteCreation::default() };
        let events = note_events(&p, &plain);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((events[0].start, events[0].end, events[0].pitch), (10, 80, 61));
        assert!((events[0].amplitude - 0.8 * 65.0 / 70.0).abs() < 1e-6);
    }

    #[test]
    fn the_melodia_trick_finds_notes_without_onsets() {
        let mut p = grams(120, &[(30, 20, 70, 0.7)]);
        p.onset.fill(0.0);
        let none = NoteCreation { melodia_trick: false, infer_onsets: false, ..NoteCreation::default() };
        assert!(note_events(&p, &none).is_empty());
        let events = note_events(&p, &NoteCreation { infer_onsets: false, ..NoteCreation::default() });
        assert_eq!(events.len(), 1, "{events:?}");
        // Notes grown this way end on their last frame above the threshold, as in the package.
        assert_eq!((events[0].start, events[0].end, events[0].pitch), (20, 69, 51));
    }

    #[test]
    fn inferred_onsets_come_from_rising_activation() {
        // Two notes of one key back to back, the second louder: only the first has an onset.
        let mut p = grams(200, &[(50, 10, 60, 0.4), (50, 60, 120, 0.95)]);
        p.onset[60 * KEYS + 50] = 0.0;
        let plain = NoteCreation { melodia_trick: false, infer_onsets: false, ..NoteCreation::default() };
        assert_eq!(note_events(&p, &plain).len(), 1);
        let inferred = NoteCreation { melodia_trick: false, ..NoteCreation::default() };
        let events = note_events(&p, &inferred);
        let starts: Vec<usize> = events.iter().map(|e| e.start).collect();
        assert_eq!(starts, [10, 60], "{events:?}");
    }

    #[test]
    fn neighbouring_keys_are_cleared_and_bands_respected() {
        // A strong key with a weaker shadow a semitone up: one note, not two.
        let mut p = grams(100, &[(40, 10, 60, 0.9)]);
        for t in 10..60 {
            p.note[t * KEYS + 41] = 0.45;
        }
        let events = note_events(&p, &NoteCreation::default());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].pitch, 61);
        // Without key 40 the shadow is read as a note (by the melodia trick: no onset is left).
        let band = NoteCreation { lowest_key: 41, ..NoteCreation::default() };
        let events = note_events(&p, &band);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((events[0].pitch, events[0].start, events[0].end), (62, 10, 59));
        assert!(note_events(&Posteriorgrams::zeros(0), &NoteCreation::default()).is_empty());
        assert!(note_events(&Posteriorgrams::zeros(1), &NoteCreation::default()).is_empty());
    }
}
