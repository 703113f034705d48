//! The `transpose` operator: shifts every pitch by a number of semitones, with an explicit policy
//! for notes that would leave the MIDI range.

use crate::score::validate;
use commute_sdk::prelude::*;

/// What happens to a note that would leave 0..=127.
#[params]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRange {
    /// The item fails with an error naming the note and the pitch it would get.
    Error,
    /// The pitch is clamped to 0 or 127.
    Clamp,
    /// The note is removed.
    Drop,
}

/// Parameters of `transpose`.
#[params]
#[derive(Debug, Clone)]
pub struct TransposeParams {
    /// Semitones to shift by (−127..=127; positive is up).
    pub semitones: i32,
    /// What to do with a note that would leave 0..=127: `error`, `clamp` or `drop`.
    #[serde(default = "default_out_of_range")]
    pub out_of_range: OutOfRange,
}

fn default_out_of_range() -> OutOfRange {
    OutOfRange::Error
}

/// The `transpose` operator.
pub struct Transpose(TransposeParams);

impl Function for Transpose {
    const DOC: &'static str = "Shifts every pitch by `semitones`; a note leaving 0..=127 is an error unless out-of-range is clamp or drop.";
    type Params = TransposeParams;

    fn open(params: TransposeParams, _ctx: &Context) -> Result<Self> {
        ensure!(
            (-127..=127).contains(&params.semitones),
            "semitones must be within -127..=127, got {}",
            params.semitones
        );
        Ok(Transpose(params))
    }
}

impl Operator for Transpose {
    type Input<'a> = Score;
    type Output = Score;

    fn apply(&mut self, score: Score) -> Result<Score> {
        validate(&score)?;
        let mut notes = Vec::with_capacity(score.notes.len());
        for (i, n) in score.notes.iter().enumerate() {
            let target = i32::from(n.pitch) + self.0.semitones;
            let pitch = match (u8::try_from(target).ok().filter(|&p| p <= 127), self.0.out_of_range) {
                (Some(p), _) => p,
                (None, OutOfRange::Clamp) => target.clamp(0, 127) as u8,
                (None, OutOfRange::Drop) => continue,
                (None, OutOfRange::Error) => bail!(
                    "note {i} (pitch {} at {:.3} s) would move to pitch {target}, outside 0..=127 \
                     (set out-of-range = \"clamp\" or \"drop\" to allow this)",
                    n.pitch,
                    n.onset_s
                ),
            };
            notes.push(Note { pitch, ..*n });
        }
        Ok(Score { notes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tests::note;

    fn transpose(semitones: i32, out_of_range: OutOfRange) -> Transpose {
        Transpose::open(TransposeParams { semitones, out_of_range }, &Context::default()).expect("valid")
    }

    fn melody() -> Score {
        Score {
            notes: vec![note(60, 0.0, 0.5, 80, 0), note(64, 0.5, 0.5, 90, 48), note(120, 1.0, 1.0, 70, 0)],
        }
    }

    #[test]
    fn up_then_down_is_identity() {
        let up = transpose(12, OutOfRange::Error)
            .apply(Score { notes: melody().notes[..2].to_vec() })
            .expect("ok");
        assert_eq!(up.notes[0].pitch, 72);
        let back = transpose(-12, OutOfRange::Error).apply(up).expect("ok");
        assert_eq!(back.notes, melody().notes[..2]);
    }

    #[test]
    fn out_of_range_policies() {
        let msg = transpose(12, OutOfRange::Error).apply(melody()).expect_err("120 + 12 > 127").to_string();
        assert!(msg.contains("note 2") && msg.contains("pitch 120") && msg.contains("132"), "{msg}");
        let clamped = transpose(12, OutOfRange::Clamp).apply(melody()).expect("ok");
        assert_eq!(clamped.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(), [72, 76, 127]);
        let dropped = transpose(12, OutOfRange::Drop).apply(melody()).expect("ok");
        assert_eq!(dropped.notes.iter().map(|n| n.pitch).collect::<Vec<_>>(), [72, 76]);
        let low = transpose(-61, OutOfRange::Clamp).apply(melody()).expect("ok");
        assert_eq!(low.notes[0].pitch, 0);
        assert!(Transpose::open(
            TransposeParams { semitones: 200, out_of_range: OutOfRange::Error },
            &Context::default()
        )
        .is_err());
    }
}
