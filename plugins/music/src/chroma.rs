//! The `chroma` encoder: the 12 pitch classes (C, C♯, … B), each weighted by duration × velocity,
//! normalised to unit L1 (a distribution) or L2 (a direction) norm.

use crate::score::{amplitude, validate};
use commute_sdk::prelude::*;

/// How a chroma vector is normalised.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// Entries sum to 1.
    L1,
    /// Unit Euclidean length.
    L2,
}

/// Parameters of `chroma`.
#[params]
#[derive(Debug, Clone)]
pub struct ChromaParams {
    /// Normalisation: `l1` (sums to 1) or `l2` (unit length).
    #[serde(default = "default_norm")]
    pub norm: Norm,
    /// Weight each note by velocity / 127 as well as by duration.
    #[serde(default = "default_true")]
    pub velocity_weighted: bool,
}

fn default_norm() -> Norm {
    Norm::L1
}
fn default_true() -> bool {
    true
}

/// The `chroma` encoder (dimension 12, index 0 = C).
pub struct Chroma(ChromaParams);

impl Function for Chroma {
    const DOC: &'static str =
        "12-bin pitch-class profile (index 0 = C), duration × velocity weighted, L1 or L2 normalised.";
    type Params = ChromaParams;

    fn open(params: ChromaParams, _ctx: &Context) -> Result<Self> {
        Ok(Chroma(params))
    }
}

impl Encoder for Chroma {
    type Input<'a> = Score;

    fn dim(&self) -> usize {
        12
    }

    /// An empty score (or one whose notes all last 0 s) encodes as zeros.
    fn encode(&mut self, score: Score) -> Result<Vec<f32>> {
        validate(&score)?;
        let mut bins = [0.0f64; 12];
        for n in &score.notes {
            let v = if self.0.velocity_weighted { amplitude(n.velocity) } else { 1.0 };
            bins[usize::from(n.pitch % 12)] += f64::from(n.duration_s) * f64::from(v);
        }
        let norm = match self.0.norm {
            Norm::L1 => bins.iter().sum::<f64>(),
            Norm::L2 => bins.iter().map(|b| b * b).sum::<f64>().sqrt(),
        };
        let scale = if norm > 0.0 && norm.is_finite() { 1.0 / norm } else { 0.0 };
        Ok(bins.iter().map(|b| (b * scale) as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn chroma(norm: Norm) -> Chroma {
        Chroma::open(ChromaParams { norm, velocity_weighted: true }, &Context::default()).expect("valid")
    }

    #[test]
    fn c_major_triad_has_mass_on_c_e_g_only() {
        let triad = Score { notes: [48, 64, 67].iter().map(|&p| note(p, 0.0, 1.0, 100, 0)).collect() };
        let v = chroma(Norm::L1).encode(triad.clone()).expect("encodes");
        for (i, x) in v.iter().enumerate() {
            if [0, 4, 7].contains(&i) {
                assert!((x - 1.0 / 3.0).abs() < 1e-6);
            } else {
                assert_eq!(*x, 0.0);
            }
        }
        let v = chroma(Norm::L2).encode(triad).expect("encodes");
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn weights_and_empty() {
        let s = Score {
            notes: vec![note(60, 0.0, 2.0, 127, 0), note(61, 0.0, 1.0, 127, 0), note(62, 0.0, 2.0, 64, 0)],
        };
        let v = chroma(Norm::L1).encode(s).expect("encodes");
        assert!(v[0] > v[2] && v[2] > 0.9 * v[1] && v[2] < 1.1 * v[1]);
        assert_eq!(chroma(Norm::L1).encode(Score::default()).expect("ok"), vec![0.0; 12]);
    }
}
