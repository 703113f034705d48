//! The `tempo` operator: plays a score faster or slower by dividing onsets and durations by a ratio.

use crate::score::validate;
use commute_sdk::prelude::*;

/// Parameters of `tempo`.
#[params]
#[derive(Debug, Clone)]
pub struct TempoParams {
    /// Speed ratio, 0.01–100: onsets and durations are divided by it (2 = twice as fast).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub ratio: f64,
}

/// The `tempo` operator.
pub struct Tempo(TempoParams);

impl Function for Tempo {
    const DOC: &'static str =
        "Changes the tempo: onsets and durations are divided by `ratio` (2 = twice as fast).";
    type Params = TempoParams;

    fn open(params: TempoParams, _ctx: &Context) -> Result<Self> {
        ensure!(params.ratio > 0.0, "ratio must be greater than 0, got {}", params.ratio);
        ensure!(
            (0.01..=100.0).contains(&params.ratio),
            "ratio must be within 0.01..=100, got {}",
            params.ratio
        );
        Ok(Tempo(params))
    }
}

impl Operator for Tempo {
    type Input<'a> = Score;
    type Output = Score;

    fn apply(&mut self, score: Score) -> Result<Score> {
        validate(&score)?;
        let r = self.0.ratio as f32;
        let notes = score
            .notes
            .iter()
            .map(|n| Note { onset_s: n.onset_s / r, duration_s: n.duration_s / r, ..*n })
            .collect();
        let out = Score { notes };
        validate(&out).context("the score's times overflow at this tempo")?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn tempo(ratio: f64) -> Result<Tempo> {
        Tempo::open(TempoParams { ratio }, &Context::default())
    }

    #[test]
    fn ratio_two_halves_times() {
        let s = Score { notes: vec![note(60, 1.0, 0.5, 80, 0), note(62, 2.0, 1.0, 80, 0)] };
        let fast = tempo(2.0).expect("valid").apply(s.clone()).expect("ok");
        assert_eq!((fast.notes[0].onset_s, fast.notes[0].duration_s), (0.5, 0.25));
        assert_eq!(fast.duration_s(), 1.5);
        let back = tempo(0.5).expect("valid").apply(fast).expect("ok");
        assert_eq!(back, s);
    }

    #[test]
    fn ratio_must_be_positive() {
        for r in [0.0, -1.0, f64::NAN, 1000.0] {
            let msg = tempo(r).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("ratio"), "{r}: {msg}");
        }
    }
}
