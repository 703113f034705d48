//! The `louder` operator: a gain in dB applied to note velocities, treating velocity as amplitude.

use crate::score::validate;
use commute_sdk::prelude::*;

/// Parameters of `louder`.
#[params]
#[derive(Debug, Clone)]
pub struct LouderParams {
    /// Gain in dB (−60..=60; negative is softer). Velocities are multiplied by 10^(db/20),
    /// rounded and clamped to MIDI's 1..=127, so large gains saturate.
    pub db: f64,
}

/// The `louder` operator.
pub struct Louder {
    factor: f32,
}

impl Function for Louder {
    const DOC: &'static str =
        "Multiplies velocities by 10^(db/20) (velocity as amplitude), rounded and clamped to 1..=127.";
    type Params = LouderParams;

    fn open(params: LouderParams, _ctx: &Context) -> Result<Self> {
        ensure!(
            params.db.is_finite() && (-60.0..=60.0).contains(&params.db),
            "db must be within -60..=60, got {}",
            params.db
        );
        Ok(Louder { factor: 10f64.powf(params.db / 20.0) as f32 })
    }
}

impl Operator for Louder {
    type Input<'a> = Score;
    type Output = Score;

    fn apply(&mut self, score: Score) -> Result<Score> {
        validate(&score)?;
        let notes = score
            .notes
            .iter()
            .map(|n| Note {
                velocity: (f32::from(n.velocity) * self.factor).round().clamp(1.0, 127.0) as u8,
                ..*n
            })
            .collect();
        Ok(Score { notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn louder(db: f64) -> Louder {
        Louder::open(LouderParams { db }, &Context::default()).expect("valid")
    }

    fn velocities(s: &Score) -> Vec<u8> {
        s.notes.iter().map(|n| n.velocity).collect()
    }

    #[test]
    fn six_db_roughly_doubles_and_clamps() {
        let s = Score { notes: [10, 40, 64, 100].iter().map(|&v| note(60, 0.0, 1.0, v, 0)).collect() };
        assert_eq!(velocities(&louder(6.0).apply(s.clone()).expect("ok")), [20, 80, 127, 127]);
        assert_eq!(velocities(&louder(-6.0).apply(s.clone()).expect("ok")), [5, 20, 32, 50]);
        assert_eq!(velocities(&louder(-60.0).apply(s.clone()).expect("ok")), [1, 1, 1, 1]);
        assert_eq!(louder(0.0).apply(s.clone()).expect("ok"), s);
        assert!(Louder::open(LouderParams { db: f64::NAN }, &Context::default()).is_err());
    }
}
