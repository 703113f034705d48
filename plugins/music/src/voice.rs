//! The synthesizer's instruments: one voice per family of General MIDI programs, each a pair of
//! harmonic spectra (a bright attack crossfading into a mellower body), an ADSR envelope, an
//! optional ring-out and vibrato.

use crate::envelope::Adsr;

/// Harmonic amplitudes of a periodic waveform, fundamental first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spectrum {
    /// Explicit amplitudes of harmonics 1, 2, 3…
    List(&'static [f32]),
    /// `1 / h^exponent` for harmonics `h = 1..=count` (odd harmonics only if `odd_only`).
    Power {
        /// Roll-off exponent: 1 is a sawtooth (or square, odd only), 2 a softer triangle-like tone.
        exponent: f32,
        /// Number of harmonics before band-limiting.
        count: usize,
        /// Keep odd harmonics only (hollow, clarinet- or square-like tones).
        odd_only: bool,
    },
}

impl Spectrum {
    /// The amplitude of harmonic `h` (1-based).
    pub fn harmonic(&self, h: usize) -> f32 {
        match *self {
            Spectrum::List(list) => h.checked_sub(1).and_then(|i| list.get(i)).copied().unwrap_or(0.0),
            Spectrum::Power { exponent, count, odd_only } => {
                if h == 0 || h > count || (odd_only && h % 2 == 0) {
                    0.0
                } else {
                    (h as f32).powf(-exponent)
                }
            }
        }
    }

    /// How many harmonics it has at most.
    pub fn len(&self) -> usize {
        match *self {
            Spectrum::List(list) => list.len(),
            Spectrum::Power { count, .. } => count,
        }
    }

    /// Whether it has no harmonics.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Periodic pitch modulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vibrato {
    /// Rate in Hz.
    pub rate_hz: f32,
    /// Depth in cents (peak).
    pub depth_cents: f32,
    /// Time after the onset before it fades in fully, in seconds.
    pub delay_s: f32,
}

/// One instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Voice {
    /// A short name (for docs and messages).
    pub name: &'static str,
    /// Spectrum at the attack.
    pub bright: Spectrum,
    /// Spectrum the tone settles into.
    pub body: Spectrum,
    /// Time constant of the crossfade from `bright` to `body`, in seconds.
    pub brightness_tau_s: f32,
    /// Amplitude envelope.
    pub adsr: Adsr,
    /// Time constant of the exponential ring-out at middle C, in seconds (struck and plucked
    /// instruments; halves every two octaves up). `None`: the tone sustains.
    pub ring_tau_s: Option<f32>,
    /// Pitch modulation, if any.
    pub vibrato: Option<Vibrato>,
    /// Level trim so families sound about equally loud at equal velocity.
    pub gain: f32,
}

const fn adsr(attack_s: f32, decay_s: f32, sustain: f32, release_s: f32) -> Adsr {
    Adsr { attack_s, decay_s, sustain, release_s }
}

/// Acoustic and electric pianos (programs 0–7).
pub const PIANO: Voice = Voice {
    name: "piano",
    bright: Spectrum::List(&[1.0, 0.62, 0.45, 0.36, 0.27, 0.2, 0.15, 0.12, 0.09, 0.07, 0.05, 0.04]),
    body: Spectrum::List(&[1.0, 0.35, 0.12, 0.05, 0.02]),
    brightness_tau_s: 0.25,
    adsr: adsr(0.004, 0.05, 0.9, 0.25),
    ring_tau_s: Some(1.1),
    vibrato: None,
    gain: 1.0,
};

/// Chromatic percussion: celesta, glockenspiel, vibraphone, marimba… (programs 8–15, 112–119).
pub const MALLET: Voice = Voice {
    name: "mallet",
    bright: Spectrum::List(&[1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25]),
    body: Spectrum::List(&[1.0, 0.0, 0.0, 0.12]),
    brightness_tau_s: 0.08,
    adsr: adsr(0.002, 0.05, 0.8, 0.3),
    ring_tau_s: Some(0.7),
    vibrato: None,
    gain: 1.0,
};

/// Organs and accordions (programs 16–23): drawbar-like sustained harmonics.
pub const ORGAN: Voice = Voice {
    name: "organ",
    bright: Spectrum::List(&[1.0, 0.8, 0.6, 0.5, 0.0, 0.4, 0.0, 0.3]),
    body: Spectrum::List(&[1.0, 0.8, 0.6, 0.5, 0.0, 0.4, 0.0, 0.3]),
    brightness_tau_s: 0.0,
    adsr: adsr(0.01, 0.05, 1.0, 0.08),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 6.5, depth_cents: 4.0, delay_s: 0.0 }),
    gain: 0.8,
};

/// Guitars and plucked strings (programs 24–31, 104–111).
pub const GUITAR: Voice = Voice {
    name: "guitar",
    bright: Spectrum::Power { exponent: 0.9, count: 24, odd_only: false },
    body: Spectrum::List(&[1.0, 0.45, 0.22, 0.1, 0.05]),
    brightness_tau_s: 0.12,
    adsr: adsr(0.003, 0.05, 0.9, 0.15),
    ring_tau_s: Some(0.8),
    vibrato: None,
    gain: 1.0,
};

/// Basses (programs 32–39): strong fundamental, slow ring-out.
pub const BASS: Voice = Voice {
    name: "bass",
    bright: Spectrum::List(&[1.0, 0.7, 0.4, 0.25, 0.15, 0.1]),
    body: Spectrum::List(&[1.0, 0.4, 0.15]),
    brightness_tau_s: 0.2,
    adsr: adsr(0.005, 0.05, 0.9, 0.1),
    ring_tau_s: Some(1.6),
    vibrato: None,
    gain: 1.1,
};

/// Bowed strings and string ensembles (programs 40–51): sawtooth-like, slow attack, vibrato.
pub const STRINGS: Voice = Voice {
    name: "strings",
    bright: Spectrum::Power { exponent: 1.0, count: 28, odd_only: false },
    body: Spectrum::Power { exponent: 1.1, count: 24, odd_only: false },
    brightness_tau_s: 0.3,
    adsr: adsr(0.12, 0.2, 0.85, 0.3),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 5.5, depth_cents: 12.0, delay_s: 0.15 }),
    gain: 0.9,
};

/// Choirs and pads (programs 52–55, 88–103, 120–127): soft spectrum, slow attack and release.
pub const PAD: Voice = Voice {
    name: "pad",
    bright: Spectrum::Power { exponent: 2.0, count: 12, odd_only: false },
    body: Spectrum::Power { exponent: 2.0, count: 12, odd_only: false },
    brightness_tau_s: 0.0,
    adsr: adsr(0.25, 0.3, 0.9, 0.5),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 4.5, depth_cents: 8.0, delay_s: 0.3 }),
    gain: 0.9,
};

/// Brass (programs 56–63): bright attack settling into a rounder tone.
pub const BRASS: Voice = Voice {
    name: "brass",
    bright: Spectrum::Power { exponent: 0.7, count: 16, odd_only: false },
    body: Spectrum::Power { exponent: 1.2, count: 12, odd_only: false },
    brightness_tau_s: 0.3,
    adsr: adsr(0.04, 0.1, 0.8, 0.12),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 5.0, depth_cents: 6.0, delay_s: 0.3 }),
    gain: 0.9,
};

/// Reeds (programs 64–71): clarinet-like, odd harmonics dominate.
pub const REED: Voice = Voice {
    name: "reed",
    bright: Spectrum::List(&[1.0, 0.08, 0.6, 0.06, 0.4, 0.05, 0.25, 0.04, 0.15, 0.03, 0.1]),
    body: Spectrum::List(&[1.0, 0.05, 0.45, 0.04, 0.25, 0.03, 0.12]),
    brightness_tau_s: 0.15,
    adsr: adsr(0.03, 0.08, 0.9, 0.08),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 5.0, depth_cents: 5.0, delay_s: 0.25 }),
    gain: 1.0,
};

/// Flutes and pipes (programs 72–79): nearly sinusoidal, breathy vibrato.
pub const FLUTE: Voice = Voice {
    name: "flute",
    bright: Spectrum::List(&[1.0, 0.3, 0.1, 0.04]),
    body: Spectrum::List(&[1.0, 0.22, 0.06, 0.02]),
    brightness_tau_s: 0.1,
    adsr: adsr(0.06, 0.1, 0.9, 0.12),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 5.0, depth_cents: 10.0, delay_s: 0.2 }),
    gain: 1.1,
};

/// Synth leads (programs 80–87): square-like, odd harmonics.
pub const LEAD: Voice = Voice {
    name: "lead",
    bright: Spectrum::Power { exponent: 1.0, count: 21, odd_only: true },
    body: Spectrum::Power { exponent: 1.0, count: 15, odd_only: true },
    brightness_tau_s: 0.2,
    adsr: adsr(0.01, 0.1, 0.9, 0.1),
    ring_tau_s: None,
    vibrato: Some(Vibrato { rate_hz: 5.5, depth_cents: 6.0, delay_s: 0.2 }),
    gain: 0.8,
};

/// Every voice, in a fixed order (its index identifies it in the synthesizer's table cache).
pub const VOICES: [&Voice; 11] =
    [&PIANO, &MALLET, &ORGAN, &GUITAR, &BASS, &STRINGS, &PAD, &BRASS, &REED, &FLUTE, &LEAD];

/// The index in [`VOICES`] of the voice that plays a General MIDI program.
pub fn voice_index(program: u8) -> usize {
    match program {
        0..=7 => 0,
        8..=15 | 112..=119 => 1,
        16..=23 => 2,
        24..=31 | 104..=111 => 3,
        32..=39 => 4,
        40..=51 => 5,
        56..=63 => 7,
        64..=71 => 8,
        72..=79 => 9,
        80..=87 => 10,
        _ => 6,
    }
}

/// One representative General MIDI program per voice, in [`VOICES`] order: acoustic grand
/// piano 0, vibraphone 11, church organ 19, nylon guitar 24, acoustic bass 32, string ensemble 48,
/// choir 52, trumpet 56, clarinet 71, flute 73, square lead 80.
pub const REPRESENTATIVE_PROGRAMS: [u8; 11] = [0, 11, 19, 24, 32, 48, 52, 56, 71, 73, 80];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_has_a_voice_and_representatives_map_back() {
        for p in 0..=127u8 {
            assert!(voice_index(p) < VOICES.len());
        }
        for (i, &p) in REPRESENTATIVE_PROGRAMS.iter().enumerate() {
            assert_eq!(voice_index(p), i, "program {p}");
        }
    }

    #[test]
    fn spectra_have_the_fundamental_loudest() {
        for v in VOICES {
            for s in [v.bright, v.body] {
                assert_eq!(s.harmonic(1), 1.0, "{}", v.name);
                assert!((2..=s.len()).all(|h| s.harmonic(h) < 1.0), "{}", v.name);
                assert_eq!(s.harmonic(0), 0.0);
                assert_eq!(s.harmonic(s.len() + 1), 0.0);
            }
        }
    }
}
