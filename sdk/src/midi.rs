//! Standard MIDI Files ↔ [`Score`]: reading with a full tempo map, and writing at 480 ticks per
//! quarter note and 120 bpm (feature `midi`).
//!
//! # Reading
//!
//! [`read_smf`] accepts formats 0, 1 and 2 and both timing kinds (metrical ticks per quarter and
//! SMPTE timecode). Like midly, it reads what it can of a damaged file (a track ends at its first
//! unreadable event) but refuses a file with no track chunk at all. Events of all tracks are
//! placed on one time line:
//!
//! - Ticks become seconds through the **tempo map**: every `Set Tempo` meta event of every track
//!   applies from its tick onwards (in format 2, where tracks are independent songs, this is an
//!   approximation; such files are rare). Before the first one the tempo is 120 bpm.
//! - A `Note On` with velocity 0 is a `Note Off`.
//! - Overlapping notes of the same pitch on the same channel and track are matched first in,
//!   first out: a `Note Off` ends the earliest sounding note of that pitch.
//! - A note still sounding when its track ends is closed at the track's last event.
//! - `Program Change` sets the program of the notes that start later on that channel (program 0
//!   until the first one).
//! - The percussion channel (channel 10, index 9) is **skipped**: its keys name drums, not pitches,
//!   and a [`Score`] has no way to say so.
//!
//! Notes come out sorted by onset, then pitch.
//!
//! # Writing
//!
//! [`write_smf`] writes a format 0 file (one track) at 480 ticks per quarter note and 120 bpm, so one
//! tick is 1/960 s (about 1 ms). Each distinct program gets its own channel (skipping channel 10),
//! in order of first appearance; past 15 distinct programs, later programs share the last channel
//! and are played with its program. Velocities are clamped to 1..=127, pitches above 127 are
//! skipped, negative or non-finite times are treated as 0, and a note is at least one tick long.

use crate::value::{Note, Score};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// Ticks per quarter note in written files.
pub const TICKS_PER_QUARTER: u16 = 480;
/// Tempo of written files, in beats (quarter notes) per minute.
pub const TEMPO_BPM: u32 = 120;
/// The largest file [`read_smf`] accepts, in bytes.
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// The most notes [`read_smf`] returns from one file.
pub const MAX_NOTES: usize = 4_000_000;

/// Microseconds per quarter note at [`TEMPO_BPM`].
const WRITE_TEMPO_US: u32 = 60_000_000 / TEMPO_BPM;
/// The default tempo of a file before any tempo event (120 bpm).
const DEFAULT_TEMPO_US: u32 = 500_000;
/// The channel the General MIDI percussion kit plays on (channel 10, zero-based).
const PERCUSSION_CHANNEL: u8 = 9;

/// Why a MIDI file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MidiError {
    /// The bytes are not a well-formed Standard MIDI File.
    #[error("not a valid Standard MIDI File: {message}")]
    Malformed {
        /// What the parser found wrong.
        message: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("MIDI file of {bytes} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The header declares 0 ticks per quarter note or per frame, so no time can be computed.
    #[error("MIDI file declares zero ticks per {unit}")]
    ZeroResolution {
        /// `"quarter note"` or `"frame"`.
        unit: &'static str,
    },
    /// The file has more than [`MAX_NOTES`] notes.
    #[error("MIDI file has more than {limit} notes")]
    TooManyNotes {
        /// The limit.
        limit: usize,
    },
}

/// Reads a Standard MIDI File into a score (see the [module docs](self) for the rules).
///
/// # Errors
/// [`MidiError`] for malformed or oversized input; never panics on arbitrary bytes.
pub fn read_smf(bytes: &[u8]) -> Result<Score, MidiError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(MidiError::TooLarge { bytes: bytes.len(), limit: MAX_FILE_BYTES });
    }
    check_header_chunks(bytes)?;
    let smf = Smf::parse(bytes).map_err(|e| MidiError::Malformed { message: e.to_string() })?;
    if smf.tracks.is_empty() {
        // midly skips what it cannot read; a file with no track left is truncated or not MIDI.
        return Err(MidiError::Malformed {
            message: "no track chunk (`MTrk`): a truncated file?".to_owned(),
        });
    }
    let clock = Clock::new(&smf)?;

    let mut notes = Vec::new();
    let mut open = OpenNotes::default();
    for track in &smf.tracks {
        read_track(track, &clock, &mut open, &mut notes)?;
    }
    notes.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
    Ok(Score { notes })
}

/// Refuses a header chunk whose SMPTE frame rate byte is 0x80 (−128 frames per second), before
/// midly reads it: midly 0.5 negates that byte as an `i8`, which overflows and panics in builds
/// with overflow checks (found by the `midi` fuzz target). No frame rate is −128, so such a file
/// is malformed anyway. The chunks are walked the way midly walks them: big-endian lengths, a
/// chunk running past the end taking the rest, inside an RMID wrapper's `data` chunk if any.
fn check_header_chunks(bytes: &[u8]) -> Result<(), MidiError> {
    let mut raw = if bytes.starts_with(b"RIFF") { rmid_data(bytes) } else { bytes };
    while let (Some(id), Some(len)) = (raw.get(..4), raw.get(4..8)) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let rest = &raw[8..];
        let (data, next) = rest.split_at(len.min(rest.len()));
        if id == b"MThd" && data.get(4) == Some(&0x80) {
            return Err(MidiError::Malformed {
                message: "the header's SMPTE frame rate is -128 frames per second".to_owned(),
            });
        }
        raw = next;
    }
    Ok(())
}

/// The `data` chunk of an RMID file (little-endian RIFF chunks, padded to even lengths), or
/// nothing when there is none (midly then refuses the file).
fn rmid_data(bytes: &[u8]) -> &[u8] {
    let Some((b"RIFF", riff)) = riff_chunks(bytes).next() else { return &[] };
    match riff.split_at_checked(4) {
        Some((b"RMID", inner)) => riff_chunks(inner).find(|(id, _)| *id == b"data").map_or(&[], |(_, d)| d),
        _ => &[],
    }
}

/// RIFF chunks `(id, data)`: little-endian lengths, padded to even lengths, the last one running
/// to the end when its length is past it.
fn riff_chunks(mut raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let id = raw.get(..4)?;
        let len = raw.get(4..8)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let rest = &raw[8..];
        let (data, next) = rest.split_at(len.min(rest.len()));
        raw = next.get(len % 2..).unwrap_or(&[]);
        Some((id, data))
    })
}

/// A note that has started and not yet ended.
struct Open {
    /// Its place in the track's order of note-ons (notes left open at the end close in that order).
    seq: u64,
    pitch: u8,
    start_tick: u64,
    velocity: u8,
    program: u8,
}

/// The sounding notes of a track, per channel and pitch in start order, so that a note-off finds
/// its note at once (a file of millions of unmatched note-ons stays linear).
#[derive(Default)]
struct OpenNotes {
    /// `16 × 128` queues, indexed by `channel · 128 + pitch`; empty until the first note-on.
    queues: Vec<std::collections::VecDeque<Open>>,
    /// Notes in all queues.
    len: usize,
}

impl OpenNotes {
    fn push(&mut self, channel: u8, o: Open) {
        if self.queues.is_empty() {
            self.queues.resize_with(16 * 128, Default::default);
        }
        let i = usize::from(channel & 15) * 128 + usize::from(o.pitch & 127);
        self.queues[i].push_back(o);
        self.len += 1;
    }

    /// The earliest sounding note of this pitch on this channel (first in, first out).
    fn pop(&mut self, channel: u8, pitch: u8) -> Option<Open> {
        let i = usize::from(channel & 15) * 128 + usize::from(pitch & 127);
        let o = self.queues.get_mut(i)?.pop_front()?;
        self.len -= 1;
        Some(o)
    }

    /// Every sounding note, in start order, leaving none.
    fn drain(&mut self) -> Vec<Open> {
        let mut all: Vec<Open> = Vec::with_capacity(self.len);
        if self.len > 0 {
            for q in &mut self.queues {
                all.extend(q.drain(..));
            }
        }
        self.len = 0;
        all.sort_by_key(|o| o.seq);
        all
    }
}

fn read_track(
    track: &[TrackEvent<'_>],
    clock: &Clock,
    open: &mut OpenNotes,
    notes: &mut Vec<Note>,
) -> Result<(), MidiError> {
    let mut tick: u64 = 0;
    let mut seq: u64 = 0;
    let mut programs = [0u8; 16];
    let close = |o: Open, end_tick: u64, notes: &mut Vec<Note>| -> Result<(), MidiError> {
        if notes.len() >= MAX_NOTES {
            return Err(MidiError::TooManyNotes { limit: MAX_NOTES });
        }
        let onset = clock.seconds(o.start_tick);
        let end = clock.seconds(end_tick);
        notes.push(Note {
            pitch: o.pitch,
            onset_s: onset as f32,
            duration_s: (end - onset).max(0.0) as f32,
            velocity: o.velocity,
            program: o.program,
        });
        Ok(())
    };
    for event in track {
        tick += u64::from(event.delta.as_int());
        let TrackEventKind::Midi { channel, message } = event.kind else {
            continue;
        };
        let channel = channel.as_int();
        match message {
            MidiMessage::ProgramChange { program } => programs[usize::from(channel)] = program.as_int(),
            _ if channel == PERCUSSION_CHANNEL => {}
            MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                if open.len >= MAX_NOTES {
                    return Err(MidiError::TooManyNotes { limit: MAX_NOTES });
                }
                seq += 1;
                let program = programs[usize::from(channel)];
                open.push(
                    channel,
                    Open { seq, pitch: key.as_int(), start_tick: tick, velocity: vel.as_int(), program },
                );
            }
            MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                if let Some(o) = open.pop(channel, key.as_int()) {
                    close(o, tick, notes)?;
                }
            }
            _ => {}
        }
    }
    for o in open.drain() {
        close(o, tick, notes)?;
    }
    Ok(())
}

/// Converts ticks to seconds through the file's timing and tempo map.
enum Clock {
    /// Metrical timing: segments `(start tick, seconds at start, seconds per tick)`, sorted by tick.
    Metrical(Vec<(u64, f64, f64)>),
    /// Timecode timing: a fixed number of seconds per tick.
    Timecode(f64),
}

impl Clock {
    fn new(smf: &Smf<'_>) -> Result<Clock, MidiError> {
        match smf.header.timing {
            Timing::Timecode(fps, per_frame) => {
                if per_frame == 0 {
                    return Err(MidiError::ZeroResolution { unit: "frame" });
                }
                Ok(Clock::Timecode(1.0 / (f64::from(fps.as_f32()) * f64::from(per_frame))))
            }
            Timing::Metrical(tpq) => {
                let tpq = f64::from(tpq.as_int());
                if tpq == 0.0 {
                    return Err(MidiError::ZeroResolution { unit: "quarter note" });
                }
                let mut changes: Vec<(u64, u32)> = Vec::new();
                for track in &smf.tracks {
                    let mut tick = 0u64;
                    for event in track {
                        tick += u64::from(event.delta.as_int());
                        if let TrackEventKind::Meta(MetaMessage::Tempo(us)) = event.kind {
                            changes.push((tick, us.as_int()));
                        }
                    }
                }
                // Stable: at equal ticks, the later track's event wins.
                changes.sort_by_key(|&(tick, _)| tick);
                let per_tick = |us: u32| f64::from(us) / 1e6 / tpq;
                let mut segments = vec![(0u64, 0.0f64, per_tick(DEFAULT_TEMPO_US))];
                for (tick, us) in changes {
                    let &(start, seconds, rate) = segments.last().unwrap_or(&(0, 0.0, 0.0));
                    let at = seconds + (tick - start) as f64 * rate;
                    if tick == start {
                        segments.pop();
                    }
                    segments.push((tick, at, per_tick(us)));
                }
                Ok(Clock::Metrical(segments))
            }
        }
    }

    fn seconds(&self, tick: u64) -> f64 {
        match self {
            Clock::Timecode(per_tick) => tick as f64 * per_tick,
            Clock::Metrical(segments) => {
                let i = segments.partition_point(|&(start, _, _)| start <= tick);
                match i.checked_sub(1).and_then(|i| segments.get(i)) {
                    Some(&(start, seconds, rate)) => seconds + (tick - start) as f64 * rate,
                    None => 0.0,
                }
            }
        }
    }
}

/// Writes a score as a format 0 Standard MIDI File (see the [module docs](self) for the rules).
pub fn write_smf(score: &Score) -> Vec<u8> {
    let ticks_per_second = f64::from(TICKS_PER_QUARTER) * 1e6 / f64::from(WRITE_TEMPO_US);
    let to_tick = |s: f32| -> u64 {
        let t = f64::from(s) * ticks_per_second;
        if t.is_finite() && t > 0.0 {
            // u28 deltas cap one gap at ~77 hours; longer times are clamped there.
            t.round().min(f64::from(u32::MAX >> 4)) as u64
        } else {
            0
        }
    };

    // Channels by program, in order of first appearance, skipping the percussion channel.
    let mut channel_programs: Vec<u8> = Vec::new();
    let mut channel_of = [0u8; 128];
    let mut assigned = [false; 128];
    for n in &score.notes {
        let p = usize::from(n.program.min(127));
        if !assigned[p] {
            assigned[p] = true;
            if channel_programs.len() < 15 {
                channel_programs.push(p as u8);
            }
            let index = channel_programs.len() - 1;
            channel_of[p] =
                if index >= usize::from(PERCUSSION_CHANNEL) { index as u8 + 1 } else { index as u8 };
        }
    }

    // (tick, order, message): at equal ticks, note-offs (order 0) come before note-ons (order 1).
    let mut timed: Vec<(u64, u8, u8, MidiMessage)> = Vec::with_capacity(score.notes.len() * 2);
    for n in score.notes.iter().filter(|n| n.pitch <= 127) {
        let channel = channel_of[usize::from(n.program.min(127))];
        let on = to_tick(n.onset_s);
        let off = to_tick(n.onset_s + n.duration_s.max(0.0)).max(on + 1);
        let key = u7::new(n.pitch);
        timed.push((on, 1, channel, MidiMessage::NoteOn { key, vel: u7::new(n.velocity.clamp(1, 127)) }));
        timed.push((off, 0, channel, MidiMessage::NoteOff { key, vel: u7::new(64) }));
    }
    timed.sort_by_key(|&(tick, order, _, _)| (tick, order));

    let mut track: Vec<TrackEvent<'static>> = Vec::with_capacity(timed.len() + 20);
    let event =
        |delta: u64, kind| TrackEvent { delta: u28::new(delta.min(u64::from(u32::MAX >> 4)) as u32), kind };
    track.push(event(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(WRITE_TEMPO_US)))));
    for (index, &program) in channel_programs.iter().enumerate() {
        let channel = if index >= usize::from(PERCUSSION_CHANNEL) { index as u8 + 1 } else { index as u8 };
        let message = MidiMessage::ProgramChange { program: u7::new(program) };
        track.push(event(0, TrackEventKind::Midi { channel: u4::new(channel), message }));
    }
    let mut last = 0u64;
    for (tick, _, channel, message) in timed {
        track.push(event(tick - last, TrackEventKind::Midi { channel: u4::new(channel), message }));
        last = tick;
    }
    track.push(event(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)));

    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(TICKS_PER_QUARTER))),
        tracks: vec![track],
    };
    let mut out = Vec::new();
    // Writing to a Vec cannot fail: its only error source is the writer, and every chunk is far
    // below the 4 GiB chunk limit for any score that fits in memory.
    if smf.write_std(&mut out).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(pitch: u8, onset_s: f32, duration_s: f32, velocity: u8, program: u8) -> Note {
        Note { pitch, onset_s, duration_s, velocity, program }
    }

    #[test]
    fn round_trip_keeps_notes_to_tick_precision() {
        let score = Score {
            notes: vec![
                note(60, 0.0, 0.5, 100, 0),
                note(64, 0.25, 0.333, 80, 48),
                note(67, 0.25, 1.0, 1, 48),
                note(60, 0.4, 0.3, 127, 0), // overlaps the first C on the same channel
                note(36, 2.0, 0.001, 64, 33),
            ],
        };
        let back = read_smf(&write_smf(&score)).expect("reads what it wrote");
        assert_eq!(back.notes.len(), score.notes.len());
        let mut want = score.notes.clone();
        want.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s).then(a.pitch.cmp(&b.pitch)));
        for (a, b) in want.iter().zip(&back.notes) {
            assert_eq!((a.pitch, a.velocity, a.program), (b.pitch, b.velocity, b.program));
            assert!((a.onset_s - b.onset_s).abs() < 1.1e-3, "{a:?} vs {b:?}");
            assert!((a.duration_s - b.duration_s).abs() < 2.1e-3, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn empty_score_round_trips() {
        let bytes = write_smf(&Score::default());
        assert!(read_smf(&bytes).expect("valid").notes.is_empty());
    }

    #[test]
    fn more_than_fifteen_programs_still_writes_every_note() {
        let notes = (0..20).map(|p| note(60, p as f32 * 0.1, 0.1, 90, p)).collect();
        let back = read_smf(&write_smf(&Score { notes })).expect("valid");
        assert_eq!(back.notes.len(), 20);
        assert!(back.notes.iter().all(|n| n.program < 20));
    }

    /// A format 1 file built by hand: 96 ticks per quarter, 120 bpm for the first 2 quarters,
    /// then 60 bpm (tempo change in the conductor track); notes in a second track.
    fn hand_built_file() -> Vec<u8> {
        fn chunk(kind: &[u8], body: &[u8]) -> Vec<u8> {
            let mut out = kind.to_vec();
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
            out
        }
        let mut file = chunk(b"MThd", &[0, 1, 0, 2, 0, 96]);
        // Conductor: tempo 500000 at 0; tempo 1000000 at tick 192; end.
        file.extend(chunk(
            b"MTrk",
            &[
                0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20, // 500000 µs
                0x81, 0x40, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40, // delta 192, 1000000 µs
                0x00, 0xFF, 0x2F, 0x00,
            ],
        ));
        // Notes: program 40 on channel 1; A4 from tick 96 to 288 (0.5 s .. 1.0 s + 1.0 s = 2.0 s);
        // E5 from tick 288 to 384, ended by a note-on with velocity 0 (2.0 s .. 3.0 s);
        // a drum on channel 10 that is skipped.
        file.extend(chunk(
            b"MTrk",
            &[
                0x00, 0xC1, 40, // program change ch 1
                0x60, 0x91, 69, 100, // delta 96: note on A4
                0x00, 0x99, 36, 100, // drum on
                0x81, 0x40, 0x81, 69, 0, // delta 192: note off A4
                0x00, 0x91, 76, 90, // note on E5
                0x00, 0x89, 36, 0, // drum off
                0x60, 0x91, 76, 0, // delta 96: note on vel 0 = off
                0x00, 0xFF, 0x2F, 0x00,
            ],
        ));
        file
    }

    #[test]
    fn tempo_changes_are_honoured() {
        let score = read_smf(&hand_built_file()).expect("valid file");
        assert_eq!(score.notes.len(), 2, "{score:?}");
        let a = score.notes[0];
        assert_eq!((a.pitch, a.velocity, a.program), (69, 100, 40));
        assert!((a.onset_s - 0.5).abs() < 1e-6 && (a.duration_s - 1.5).abs() < 1e-6, "{a:?}");
        let e = score.notes[1];
        assert_eq!((e.pitch, e.velocity, e.program), (76, 90, 40));
        assert!((e.onset_s - 2.0).abs() < 1e-6 && (e.duration_s - 1.0).abs() < 1e-6, "{e:?}");
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [&b""[..], b"hello world", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01", &[0xFF; 100]] {
            assert!(read_smf(bytes).is_err(), "{bytes:?}");
        }
        // Every truncation of a valid file is an error or a score, never a panic.
        let file = hand_built_file();
        for len in 0..file.len() {
            let _ = read_smf(&file[..len]);
        }
    }

    /// A format 0 file at 96 ticks per quarter with one track of these events.
    fn one_track(events: &[u8]) -> Vec<u8> {
        let mut file = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk".to_vec();
        file.extend_from_slice(&(events.len() as u32 + 4).to_be_bytes());
        file.extend_from_slice(events);
        file.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
        file
    }

    #[test]
    fn many_unmatched_note_offs_stay_fast_and_notes_close_in_start_order() {
        // 40 000 note-ons of one pitch, then 40 000 note-offs of another: each note-off used to
        // scan every sounding note (quadratic); the notes still close at the track's end.
        let mut events = Vec::new();
        for _ in 0..40_000 {
            events.extend_from_slice(&[0x01, 0x90, 60, 100]);
        }
        for _ in 0..40_000 {
            events.extend_from_slice(&[0x01, 0x80, 61, 0]);
        }
        let score = read_smf(&one_track(&events)).expect("valid file");
        assert_eq!(score.notes.len(), 40_000);
        assert!(score.notes.windows(2).all(|w| w[0].onset_s <= w[1].onset_s));
        let last = score.notes.last().expect("notes");
        assert!((last.onset_s + last.duration_s - 80_000.0 / 96.0 * 0.5).abs() < 1e-2, "{last:?}");
        // Same pitch on two channels with different programs: first in, first out per channel.
        let events = [
            0x00, 0xC1, 7, // program 7 on channel 1
            0x00, 0x90, 60, 90, // ch 0 on
            0x00, 0x91, 60, 80, // ch 1 on
            0x60, 0x81, 60, 0, // ch 1 off after a quarter
        ];
        let score = read_smf(&one_track(&events)).expect("valid file");
        assert_eq!(score.notes.len(), 2);
        // Equal onsets and pitches keep the order notes closed in: channel 1's first.
        let (b, a) = (score.notes[0], score.notes[1]);
        assert_eq!((a.velocity, a.program, b.velocity, b.program), (90, 0, 80, 7));
        assert!((b.duration_s - 0.5).abs() < 1e-6 && (a.duration_s - 0.5).abs() < 1e-6, "{score:?}");
    }

    #[test]
    fn an_smpte_rate_of_minus_128_is_an_error_not_a_panic() {
        // Found by the `midi` fuzz target: midly negated the 0x80 frame-rate byte as an i8.
        let crash = [
            0x4d, 0x54, 0x68, 0x64, 0x0, 0x0, 0x0, 0x6, 0x0, 0x0, 0x50, 0x60, 0x80, 0x3c, 0x0, 0x0, 0xc0,
            0x0, 0x30, 0x1, 0xe7, 0x28, 0x0, 0x1, 0x0, 0x60, 0x4d, 0x2a, 0x5c, 0xf, 0x3f, 0x0, 0x10, 0x1b,
            0x0, 0x90, 0x3c, 0x6b, 0x60, 0x90, 0x40, 0x5a, 0x0, 0x91, 0x43, 0x50, 0x60, 0x80, 0x3c, 0x0, 0x0,
            0xc0, 0x0, 0x30, 0x1, 0xe7, 0x28, 0x4d, 0x81, 0x43, 0x0, 0x0, 0xff, 0x2f, 0x0,
        ];
        assert!(matches!(read_smf(&crash), Err(MidiError::Malformed { .. })));
        let mut file = one_track(&[0x00, 0x90, 60, 100]);
        file[12] = 0x80;
        assert!(matches!(read_smf(&file), Err(MidiError::Malformed { .. })));
        // The same header inside an RMID wrapper, and as a second header chunk.
        let mut rmid = b"RIFF".to_vec();
        rmid.extend_from_slice(&(file.len() as u32 + 12).to_le_bytes());
        rmid.extend_from_slice(b"RMIDdata");
        rmid.extend_from_slice(&(file.len() as u32).to_le_bytes());
        rmid.extend_from_slice(&file);
        assert!(matches!(read_smf(&rmid), Err(MidiError::Malformed { .. })));
        let mut two = one_track(&[0x00, 0x90, 60, 100]);
        two.extend_from_slice(&file[..14]);
        assert!(matches!(read_smf(&two), Err(MidiError::Malformed { .. })));
        // Other SMPTE rates still read: −25 frames per second, 40 ticks per frame.
        let mut smpte = one_track(&[0x00, 0x90, 60, 100, 0x28, 0x80, 60, 0]);
        smpte[12] = 0xE7;
        smpte[13] = 40;
        let score = read_smf(&smpte).expect("valid SMPTE file");
        assert!((score.notes[0].duration_s - 0.04).abs() < 1e-6, "{score:?}");
    }

    #[test]
    fn a_file_without_tracks_is_an_error() {
        let header_only = b"MThd\x00\x00\x00\x06\x00\x01\xff\xff\x00\x60";
        assert!(matches!(read_smf(header_only), Err(MidiError::Malformed { .. })));
        let huge_header = b"MThd\xff\xff\xff\xff\x00\x00\x00\x01\x00\x60";
        assert!(matches!(read_smf(huge_header), Err(MidiError::Malformed { .. })));
    }

    #[test]
    fn zero_resolution_is_an_error() {
        let mut file = hand_built_file();
        file[12] = 0;
        file[13] = 0;
        assert_eq!(read_smf(&file), Err(MidiError::ZeroResolution { unit: "quarter note" }));
    }
}
