//! Long audio through a model of fixed input length: overlapping windows cut from the samples,
//! and the frame-level outputs of those windows placed back on one timeline.
//!
//! A [`Windowing`] says how: window `w` holds the samples from `w · hop − lead` on (zeros where
//! that range leaves the audio, so the first window starts with `lead` zeros and the last is
//! padded); of each window's output frames the first and last `trim` are dropped, and the kept
//! frames of consecutive windows follow each other on the timeline. Basic Pitch's own windowing
//! is one instance ([`basic_pitch::windows`](crate::basic_pitch::windows)); the generic `onnx`
//! encoder builds others from its parameters.

/// How audio is cut into a model's windows and its outputs put back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    /// Samples per window (≥ 1).
    pub window: usize,
    /// Samples between the starts of neighbouring windows (≥ 1).
    pub hop: usize,
    /// Zeros before the audio.
    pub lead: usize,
    /// Output frames dropped at each end of every window's output.
    pub trim: usize,
}

/// Where one window's kept frames go: `count` frames from `from` in the window's output, to
/// stitched frames `to..to + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First frame of the window's output that is kept.
    pub from: usize,
    /// Its frame on the timeline.
    pub to: usize,
    /// Frames kept.
    pub count: usize,
}

impl Windowing {
    /// Windows that cover `samples` samples after the lead: `⌈(lead + samples) / hop⌉`, and none
    /// for no samples.
    pub fn count(&self, samples: usize) -> usize {
        if samples == 0 {
            0
        } else {
            (self.lead + samples).div_ceil(self.hop.max(1))
        }
    }

    /// Frames each window contributes when its output has `frames` frames.
    pub fn kept(&self, frames: usize) -> usize {
        frames.saturating_sub(2 * self.trim)
    }

    /// Writes window `index` of `samples` into `out` (`window` samples): the audio from sample
    /// `index · hop − lead`, zeros where that range leaves the audio.
    pub fn fill(&self, samples: &[f32], index: usize, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.window);
        out.fill(0.0);
        // Position of the window's first sample in the audio (may be negative by `lead`).
        let start = index * self.hop;
        let (skip, from) = if start < self.lead { (self.lead - start, 0) } else { (0, start - self.lead) };
        if from >= samples.len() || skip >= out.len() {
            return;
        }
        let n = (out.len() - skip).min(samples.len() - from);
        out[skip..skip + n].copy_from_slice(&samples[from..from + n]);
    }

    /// Where the kept frames of window `index` go, its output having `frames` frames, on a
    /// timeline cut to `total` frames; `None` when none of them falls on it.
    pub fn placement(&self, index: usize, frames: usize, total: usize) -> Option<Placement> {
        let kept = self.kept(frames);
        let to = index.checked_mul(kept)?;
        if kept == 0 || to >= total {
            return None;
        }
        Some(Placement { from: self.trim, to, count: kept.min(total - to) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Windowing = Windowing { window: 10, hop: 6, lead: 2, trim: 1 };

    #[test]
    fn windows_start_lead_zeros_early_and_pad_the_last() {
        let samples: Vec<f32> = (1..=15).map(|i| i as f32).collect();
        assert_eq!(W.count(15), 3, "⌈(2 + 15) / 6⌉");
        assert_eq!((W.count(0), W.count(1), W.count(4), W.count(5)), (0, 1, 1, 2));
        let mut out = vec![f32::NAN; 10];
        W.fill(&samples, 0, &mut out);
        assert_eq!(out, [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        W.fill(&samples, 1, &mut out);
        assert_eq!(out, [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]);
        W.fill(&samples, 2, &mut out);
        assert_eq!(out, [11.0, 12.0, 13.0, 14.0, 15.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        W.fill(&samples, 9, &mut out);
        assert!(out.iter().all(|&x| x == 0.0));
        let wide = Windowing { lead: 12, ..W };
        W.fill(&[], 0, &mut out);
        wide.fill(&samples, 0, &mut out);
        assert!(out.iter().all(|&x| x == 0.0), "a lead longer than the window leaves it empty");
    }

    #[test]
    fn kept_frames_follow_each_other_and_stop_at_the_total() {
        // Outputs of 5 frames keep 3 each.
        assert_eq!(W.kept(5), 3);
        assert_eq!(W.placement(0, 5, 8), Some(Placement { from: 1, to: 0, count: 3 }));
        assert_eq!(W.placement(2, 5, 8), Some(Placement { from: 1, to: 6, count: 2 }));
        assert_eq!(W.placement(3, 5, 8), None);
        assert_eq!(W.placement(0, 2, 8), None, "nothing is left after trimming");
    }
}
