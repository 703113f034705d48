//! Note envelopes: attack–decay–sustain–release, an optional exponential ring-out for struck and
//! plucked instruments, and the bright-to-mellow spectral crossfade.

/// An ADSR envelope with linear segments and times in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adsr {
    /// Time from silence to full level.
    pub attack_s: f32,
    /// Time from full level down to the sustain level.
    pub decay_s: f32,
    /// Level held while the note is down, 0–1.
    pub sustain: f32,
    /// Time from the level at note-off down to silence.
    pub release_s: f32,
}

/// An envelope laid out in samples for one note, evaluated sample by sample.
#[derive(Debug, Clone, Copy)]
pub struct NoteEnvelope {
    attack: f32,
    decay: f32,
    sustain: f32,
    gate: f32,
    release: f32,
    level_at_release: f32,
}

impl NoteEnvelope {
    /// The envelope of a note held for `gate_s` seconds at `sample_rate`.
    pub fn new(adsr: &Adsr, gate_s: f32, sample_rate: f32) -> NoteEnvelope {
        let attack = (adsr.attack_s * sample_rate).max(1.0);
        let decay = (adsr.decay_s * sample_rate).max(1.0);
        let gate = (gate_s * sample_rate).max(0.0);
        let release = (adsr.release_s * sample_rate).max(1.0);
        let mut env =
            NoteEnvelope { attack, decay, sustain: adsr.sustain, gate, release, level_at_release: 0.0 };
        env.level_at_release = env.held(gate);
        env
    }

    /// Number of samples until the envelope is silent (gate plus release).
    pub fn samples(&self) -> usize {
        (self.gate + self.release).ceil() as usize
    }

    /// The level while the key is held, `n` samples after the onset.
    fn held(&self, n: f32) -> f32 {
        if n < self.attack {
            n / self.attack
        } else if n < self.attack + self.decay {
            1.0 - (1.0 - self.sustain) * (n - self.attack) / self.decay
        } else {
            self.sustain
        }
    }

    /// The level `n` samples after the onset.
    #[inline]
    pub fn at(&self, n: usize) -> f32 {
        let n = n as f32;
        if n < self.gate {
            self.held(n)
        } else {
            (self.level_at_release * (1.0 - (n - self.gate) / self.release)).max(0.0)
        }
    }
}

/// Per-sample multiplier of an exponential decay with time constant `tau_s` (1 = no decay).
pub fn decay_factor(tau_s: f32, sample_rate: f32) -> f32 {
    if tau_s > 0.0 && tau_s.is_finite() {
        (-1.0 / (tau_s * sample_rate)).exp()
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADSR: Adsr = Adsr { attack_s: 0.01, decay_s: 0.1, sustain: 0.5, release_s: 0.2 };

    #[test]
    fn segments_have_the_right_levels() {
        let env = NoteEnvelope::new(&ADSR, 1.0, 1000.0);
        assert_eq!(env.at(0), 0.0);
        assert!((env.at(10) - 1.0).abs() < 1e-6);
        assert!((env.at(60) - 0.75).abs() < 1e-6);
        assert!((env.at(500) - 0.5).abs() < 1e-6);
        assert!((env.at(1100) - 0.25).abs() < 1e-6);
        assert_eq!(env.at(1200), 0.0);
        assert_eq!(env.samples(), 1200);
    }

    #[test]
    fn a_short_note_releases_from_where_it_was() {
        let env = NoteEnvelope::new(&ADSR, 0.005, 1000.0);
        assert!((env.at(5) - 0.5).abs() < 1e-6);
        assert!(env.at(105) < 0.26 && env.at(105) > 0.24);
        let silent = NoteEnvelope::new(&ADSR, 0.0, 1000.0);
        assert!((0..300).all(|n| silent.at(n) == 0.0));
    }

    #[test]
    fn decay_factor_halves_in_tau_ln2() {
        let f = decay_factor(1.0, 1000.0);
        assert!((f.powi(693) - 0.5).abs() < 1e-3);
        assert_eq!(decay_factor(0.0, 1000.0), 1.0);
    }
}
