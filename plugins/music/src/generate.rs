//! The `random-scores` source: seeded random melodies, chord progressions (block or broken, with
//! an optional bass line) and melodies over chords, in varied keys, modes, registers, tempi,
//! rhythms, dynamics and General MIDI programs.
//!
//! Item `i` depends only on `(seed, i)` (ChaCha8 with the item index as its stream), so results
//! are identical on every platform and a larger `count` extends a smaller one.

use crate::score::{sort_notes, MIDI_MAX};
use commute_sdk::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Parameters of `random-scores`.
#[params]
#[derive(Debug, Clone)]
pub struct RandomScoresParams {
    /// Number of scores to generate (at most 1,000,000).
    #[serde(default = "default_count")]
    #[schemars(range(max = 1_000_000))]
    pub count: usize,
    /// Random seed. Item i depends only on the seed and i.
    #[serde(default)]
    pub seed: u64,
    /// Longest score in seconds; each score lasts between half this and this (0.1–3600).
    #[serde(default = "default_max_duration_s")]
    pub max_duration_s: f64,
    /// Most notes in one score (the earliest are kept).
    #[serde(default = "default_max_notes")]
    pub max_notes: usize,
    /// Share of scores with chords (0–1): half of them chords only (with a bass line if a bass
    /// program is available), half a melody over chords. The rest are melodies.
    #[serde(default = "default_chord_share")]
    pub chord_share: f64,
    /// General MIDI programs to draw instruments from (each 0–127; the synth has a voice for
    /// every program family). A bass program (32–39) in the list plays bass lines under chords.
    #[serde(default = "default_programs")]
    pub programs: Vec<u8>,
}

fn default_count() -> usize {
    100
}
fn default_max_duration_s() -> f64 {
    8.0
}
fn default_max_notes() -> usize {
    96
}
fn default_chord_share() -> f64 {
    0.5
}
fn default_programs() -> Vec<u8> {
    vec![0, 19, 24, 32, 48, 56, 71, 73]
}

/// The `random-scores` source.
pub struct RandomScores(RandomScoresParams);

impl Function for RandomScores {
    const DOC: &'static str =
        "Seeded random scores: melodies, chord progressions and melodies over chords in varied keys, registers, rhythms, dynamics and instruments.";
    type Params = RandomScoresParams;

    fn open(p: RandomScoresParams, _ctx: &Context) -> Result<Self> {
        ensure!(p.count <= 1_000_000, "count must be at most 1000000, got {}", p.count);
        ensure!(
            (0.1..=3600.0).contains(&p.max_duration_s),
            "max-duration-s must be within 0.1..=3600 s, got {}",
            p.max_duration_s
        );
        ensure!(
            (1..=100_000).contains(&p.max_notes),
            "max-notes must be within 1..=100000, got {}",
            p.max_notes
        );
        ensure!(
            (0.0..=1.0).contains(&p.chord_share),
            "chord-share must be within 0..=1, got {}",
            p.chord_share
        );
        ensure!(!p.programs.is_empty(), "programs must name at least one General MIDI program");
        if let Some(bad) = p.programs.iter().find(|&&q| q > MIDI_MAX) {
            bail!("programs: {bad} is not a General MIDI program (0..=127)");
        }
        Ok(RandomScores(p))
    }
}

impl Source for RandomScores {
    type Output = Score;

    fn items(&mut self) -> Result<Vec<Score>> {
        Ok((0..self.0.count).map(|i| generate_one(&self.0, i as u64)).collect())
    }
}

const MAJOR: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
const MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 10];
const DORIAN: [i32; 7] = [0, 2, 3, 5, 7, 9, 10];
const MIXOLYDIAN: [i32; 7] = [0, 2, 4, 5, 7, 9, 10];
const HARMONIC_MINOR: [i32; 7] = [0, 2, 3, 5, 7, 8, 11];
const MODES: [&[i32; 7]; 5] = [&MAJOR, &MINOR, &DORIAN, &MIXOLYDIAN, &HARMONIC_MINOR];

/// Which scale degrees may follow each degree in a progression (functional harmony, loosely).
const NEXT_DEGREE: [&[i32]; 7] =
    [&[3, 4, 5, 1, 2], &[4, 6], &[5, 3], &[4, 0, 1], &[0, 5, 3], &[1, 3, 4], &[0, 2]];

/// Rhythmic durations in grid steps, drawn uniformly (repeats weight the common ones).
const DURATIONS: [u32; 10] = [1, 1, 2, 2, 2, 3, 4, 4, 6, 8];

/// What every part of one score shares: key, mode, grid and dynamics.
struct Style {
    root: i32,
    mode: &'static [i32; 7],
    step_s: f32,
    steps: u32,
    steps_per_beat: u32,
    velocity: f32,
    spread: i32,
    /// Velocity change from the start to the end of the score (crescendo > 0).
    trend: f32,
}

impl Style {
    /// The MIDI pitch of scale degree `degree` counted from the tonic at or below `center`.
    fn pitch(&self, center: i32, degree: i32) -> i32 {
        let tonic = center - (center - self.root).rem_euclid(12);
        let n = self.mode.len() as i32;
        tonic + 12 * degree.div_euclid(n) + self.mode[degree.rem_euclid(n) as usize]
    }

    fn velocity(&self, rng: &mut ChaCha8Rng, step: u32, offset: f32) -> u8 {
        let accent = if step % (self.steps_per_beat * 4) == 0 {
            10.0
        } else if step % self.steps_per_beat == 0 {
            5.0
        } else {
            0.0
        };
        let trend = self.trend * step as f32 / self.steps.max(1) as f32;
        let jitter = rng.random_range(-self.spread..=self.spread) as f32;
        (self.velocity + offset + accent + trend + jitter).round().clamp(1.0, 127.0) as u8
    }
}

/// Generates item `index` for these parameters.
pub fn generate_one(p: &RandomScoresParams, index: u64) -> Score {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    rng.set_stream(index);

    let bpm = rng.random_range(60.0f32..=160.0);
    let steps_per_beat = [2, 2, 2, 4, 4, 3][rng.random_range(0..6usize)];
    let target = p.max_duration_s as f32 * rng.random_range(0.5f32..=1.0);
    let mut step_s = 60.0 / bpm / steps_per_beat as f32;
    let mut steps = (target / step_s).floor() as u32;
    if steps == 0 {
        step_s = target;
        steps = 1;
    }
    let style = Style {
        root: rng.random_range(0..12),
        mode: MODES[rng.random_range(0..MODES.len())],
        step_s,
        steps,
        steps_per_beat,
        velocity: rng.random_range(30.0f32..=112.0),
        spread: rng.random_range(0..=14),
        trend: if rng.random_bool(0.5) { 0.0 } else { rng.random_range(-30.0f32..=30.0) },
    };
    let pick = |rng: &mut ChaCha8Rng| p.programs[rng.random_range(0..p.programs.len())];

    let mut notes = Vec::new();
    if f64::from(rng.random::<f32>()) < p.chord_share {
        let with_melody = rng.random_bool(0.5);
        let center = if with_melody { rng.random_range(48..=60) } else { rng.random_range(48..=72) };
        let program = pick(&mut rng);
        let bass = p.programs.iter().copied().find(|q| (32..=39).contains(q));
        chords(&mut rng, &style, program, center, bass, &mut notes);
        if with_melody {
            let program = pick(&mut rng);
            let center = rng.random_range(67..=79);
            melody(&mut rng, &style, program, center, &mut notes);
        }
    } else {
        let program = pick(&mut rng);
        let center = rng.random_range(40..=84);
        melody(&mut rng, &style, program, center, &mut notes);
    }
    sort_notes(&mut notes);
    notes.truncate(p.max_notes);
    Score { notes }
}

fn push(notes: &mut Vec<Note>, style: &Style, pitch: i32, step: u32, steps: f32, velocity: u8, program: u8) {
    let Ok(pitch) = u8::try_from(pitch.clamp(0, 127)) else {
        return;
    };
    notes.push(Note {
        pitch,
        onset_s: step as f32 * style.step_s,
        duration_s: steps * style.step_s,
        velocity,
        program,
    });
}

/// A melodic line around `center`: mostly steps, some leaps and repeats, rests after the first
/// note, durations from the grid.
fn melody(rng: &mut ChaCha8Rng, style: &Style, program: u8, center: i32, notes: &mut Vec<Note>) {
    let n = style.mode.len() as i32;
    let mut degree = rng.random_range(0..n);
    let rest_p = rng.random_range(0.0..=0.2);
    let mut step = 0u32;
    let mut first = true;
    while step < style.steps {
        let len = DURATIONS[rng.random_range(0..DURATIONS.len())].min(style.steps - step);
        if !first && rng.random_bool(rest_p) {
            step += len;
            continue;
        }
        first = false;
        let r: f32 = rng.random();
        let interval = if r < 0.1 {
            0
        } else if r < 0.6 {
            1
        } else if r < 0.85 {
            2
        } else {
            rng.random_range(3..=7)
        };
        let interval = if rng.random_bool(0.5) { interval } else { -interval };
        degree += interval;
        if (style.pitch(center, degree) - center).abs() > 12 {
            degree -= 2 * interval;
        }
        let articulation = rng.random_range(0.55f32..=1.0);
        let velocity = style.velocity(rng, step, 0.0);
        push(notes, style, style.pitch(center, degree), step, len as f32 * articulation, velocity, program);
        step += len;
    }
}

/// A chord progression in close position around `center`: block chords (held or re-struck each
/// beat) or broken chords (arpeggios), with a bass line on the roots when a bass program is given.
fn chords(
    rng: &mut ChaCha8Rng,
    style: &Style,
    program: u8,
    center: i32,
    bass: Option<u8>,
    notes: &mut Vec<Note>,
) {
    let bar = style.steps_per_beat * 4;
    let chord_steps = if rng.random_bool(0.5) { bar } else { bar / 2 };
    let sevenths = rng.random_bool(0.3);
    // 0: held block chords, 1: block chords on each beat, 2: arpeggio up, 3: up-down, 4: Alberti bass.
    let texture = rng.random_range(0..5u32);
    let arp_steps = if style.steps_per_beat == 4 || rng.random_bool(0.5) { 1 } else { 2 };
    let bass_center = rng.random_range(36..=47);
    let offset = if bass.is_some() { -6.0 } else { -3.0 };
    let mut degree = 0i32;
    let mut step = 0u32;
    while step < style.steps {
        let len = chord_steps.min(style.steps - step);
        let tones: Vec<i32> = (0..if sevenths { 4 } else { 3 })
            .map(|k| {
                // Close voicing: every chord tone within [center - 6, center + 6).
                let p = style.pitch(center, degree + 2 * k);
                center - 6 + (p - (center - 6)).rem_euclid(12)
            })
            .collect();
        let mut sorted = tones.clone();
        sorted.sort_unstable();
        match texture {
            0 | 1 => {
                let hit = if texture == 0 { len } else { style.steps_per_beat.min(len) };
                let mut s = step;
                while s < step + len {
                    let hit_len = hit.min(step + len - s) as f32 * rng.random_range(0.7f32..=0.98);
                    let velocity = style.velocity(rng, s, offset);
                    for &p in &sorted {
                        push(notes, style, p, s, hit_len, velocity, program);
                    }
                    s += hit;
                }
            }
            _ => {
                let order: Vec<i32> = match texture {
                    2 => sorted.clone(),
                    3 => sorted
                        .iter()
                        .chain(sorted.iter().rev().skip(1).take(sorted.len().saturating_sub(2)))
                        .copied()
                        .collect(),
                    _ => vec![sorted[0], sorted[2], sorted[1], sorted[2]],
                };
                let mut s = step;
                let mut k = 0;
                while s < step + len {
                    let note_len = arp_steps.min(step + len - s) as f32;
                    let velocity = style.velocity(rng, s, offset);
                    push(notes, style, order[k % order.len()], s, note_len, velocity, program);
                    k += 1;
                    s += arp_steps;
                }
            }
        }
        if let Some(bass) = bass {
            let root = style.pitch(bass_center, degree);
            let root = bass_center - 6 + (root - (bass_center - 6)).rem_euclid(12);
            let velocity = style.velocity(rng, step, -2.0);
            push(notes, style, root, step, len as f32 * 0.9, velocity, bass);
        }
        let options = NEXT_DEGREE[degree.rem_euclid(7) as usize];
        degree = options[rng.random_range(0..options.len())];
        step += len;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::score::validate;

    pub(crate) fn params(max_duration_s: f64, max_notes: usize) -> RandomScoresParams {
        RandomScoresParams {
            count: 50,
            seed: 1,
            max_duration_s,
            max_notes,
            chord_share: default_chord_share(),
            programs: default_programs(),
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let p = params(8.0, 96);
        let a: Vec<Score> = (0..20).map(|i| generate_one(&p, i)).collect();
        let b: Vec<Score> = (0..20).map(|i| generate_one(&p, i)).collect();
        assert_eq!(a, b);
        let other = RandomScoresParams { seed: 2, ..p.clone() };
        let c: Vec<Score> = (0..20).map(|i| generate_one(&other, i)).collect();
        assert!(a.iter().zip(&c).all(|(x, y)| x != y));
        // Items differ from each other too.
        assert!(a.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn scores_are_valid_nonempty_and_within_limits() {
        for (dur, max) in [(8.0, 96), (0.1, 5), (30.0, 1000), (2.0, 1)] {
            let p = params(dur, max);
            for i in 0..100 {
                let s = generate_one(&p, i);
                validate(&s).expect("valid");
                assert!(!s.notes.is_empty() && s.notes.len() <= max, "{dur} {max} {i}");
                assert!(f64::from(s.duration_s()) <= dur + 1e-3, "{} > {dur}", s.duration_s());
                assert!(s.notes.iter().all(|n| p.programs.contains(&n.program) && n.velocity >= 1));
            }
        }
    }

    #[test]
    fn varied_material() {
        let p = params(8.0, 200);
        let scores: Vec<Score> = (0..200).map(|i| generate_one(&p, i)).collect();
        let polyphonic =
            scores.iter().filter(|s| s.notes.windows(2).any(|w| w[0].onset_s == w[1].onset_s)).count();
        assert!(polyphonic > 40 && polyphonic < 160, "{polyphonic} of 200 have simultaneous onsets");
        let pitches: Vec<u8> = scores.iter().flat_map(|s| s.notes.iter().map(|n| n.pitch)).collect();
        assert!(pitches.iter().min() < Some(&45) && pitches.iter().max() > Some(&84));
        let velocities: Vec<u8> = scores.iter().flat_map(|s| s.notes.iter().map(|n| n.velocity)).collect();
        assert!(velocities.iter().min() < Some(&40) && velocities.iter().max() > Some(&110));
        for q in default_programs() {
            assert!(scores.iter().any(|s| s.notes.iter().any(|n| n.program == q)), "program {q} never used");
        }
        // Each default program is its voice family's representative, so all sound different.
        let reps = crate::voice::REPRESENTATIVE_PROGRAMS;
        assert!(default_programs().iter().all(|q| reps.contains(q)));
    }

    #[test]
    fn larger_count_extends_smaller() {
        let mut small =
            RandomScores::open(RandomScoresParams { count: 3, ..params(4.0, 50) }, &Context::default())
                .expect("valid");
        let mut large =
            RandomScores::open(RandomScoresParams { count: 6, ..params(4.0, 50) }, &Context::default())
                .expect("valid");
        let a = small.items().expect("items");
        let b = large.items().expect("items");
        assert_eq!(a[..], b[..3]);
    }

    #[test]
    fn bad_params_are_errors() {
        let ctx = Context::default();
        assert!(RandomScores::open(RandomScoresParams { programs: vec![], ..params(4.0, 5) }, &ctx).is_err());
        assert!(
            RandomScores::open(RandomScoresParams { programs: vec![128], ..params(4.0, 5) }, &ctx).is_err()
        );
        assert!(RandomScores::open(RandomScoresParams { chord_share: 1.5, ..params(4.0, 5) }, &ctx).is_err());
        assert!(RandomScores::open(params(0.0, 5), &ctx).is_err());
    }
}
