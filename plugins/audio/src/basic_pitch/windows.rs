//! How Basic Pitch sees long audio: fixed 2-second windows with an overlap, and the frame-level
//! outputs of those windows stitched back into one timeline (with the time of every frame).
//!
//! The model takes [`WINDOW`] = 43 844 samples at 22 050 Hz (2 s less one hop) and returns
//! [`WINDOW_FRAMES`] = 172 frames, one per [`FFT_HOP`] = 256 samples, frame `t` centred on sample
//! `256 t` of its window. The audio is cut as the package's own inference does:
//!
//! - [`OVERLAP`] = 30 frames (7 680 samples) of overlap between neighbouring windows, so the hop
//!   between window starts is [`HOP`] = 43 844 − 7 680 = 36 164 samples;
//! - half the overlap, 3 840 zeros, is put before the audio and zeros after it fill the last
//!   window;
//! - from each window's output the first and last 15 frames are dropped and the remaining
//!   [`KEPT_FRAMES`] = 142 are concatenated;
//! - the result is cut to `floor(samples × 86 / 22 050)` frames ([`frame_count`]; the package
//!   counts 86 frames per second).
//!
//! Since 36 164 is not a multiple of 256, each window starts 188 samples earlier than its 142
//! kept frames would suggest: stitched frame `f` of window `w = f / 142` is centred on sample
//! `256 f − 188 w` of the audio ([`frame_time_s`]). The package approximates this drift with a
//! fixed offset every 172 frames; the exact form is used here.

use crate::windowing::Windowing;

/// The model's sample rate in Hz.
pub const SAMPLE_RATE: u32 = 22_050;
/// Samples between output frames.
pub const FFT_HOP: usize = 256;
/// Samples per model window (2 s at 22 050 Hz less one hop).
pub const WINDOW: usize = 2 * SAMPLE_RATE as usize - FFT_HOP;
/// Output frames per model window.
pub const WINDOW_FRAMES: usize = 172;
/// Frames of overlap between neighbouring windows.
pub const OVERLAP_FRAMES: usize = 30;
/// Samples of overlap between neighbouring windows.
pub const OVERLAP: usize = OVERLAP_FRAMES * FFT_HOP;
/// Samples between the starts of neighbouring windows.
pub const HOP: usize = WINDOW - OVERLAP;
/// Zeros put before the audio (half the overlap).
pub const LEAD: usize = OVERLAP / 2;
/// Frames dropped at each end of a window's output.
pub const TRIM_FRAMES: usize = OVERLAP_FRAMES / 2;
/// Frames each window contributes to the stitched output.
pub const KEPT_FRAMES: usize = WINDOW_FRAMES - 2 * TRIM_FRAMES;
/// Frames per second as the package counts them (`22050 / 256` rounded down).
pub const FRAMES_PER_SECOND: usize = SAMPLE_RATE as usize / FFT_HOP;

/// Stitched frames for audio of `samples` samples at 22 050 Hz.
pub fn frame_count(samples: usize) -> usize {
    // `samples × 86` cannot overflow for any audio that fits in memory.
    samples.saturating_mul(FRAMES_PER_SECOND) / SAMPLE_RATE as usize
}

/// Windows needed to produce `frames` stitched frames (later windows would only be trimmed away).
pub fn window_count(frames: usize) -> usize {
    frames.div_ceil(KEPT_FRAMES)
}

/// Basic Pitch's windowing as a [`Windowing`].
pub const WINDOWING: Windowing = Windowing { window: WINDOW, hop: HOP, lead: LEAD, trim: TRIM_FRAMES };

/// Writes window `index` of `samples` (at 22 050 Hz) into `out` (`WINDOW` samples): the audio
/// from sample `index × HOP − LEAD`, zeros where that range leaves the audio.
pub fn fill_window(samples: &[f32], index: usize, out: &mut [f32]) {
    WINDOWING.fill(samples, index, out);
}

/// Copies the kept frames of window `index`'s output (`WINDOW_FRAMES × width` values, frame-major)
/// into the stitched timeline `out` (`frames × width` values), dropping frames past its end.
pub fn stitch_window(window_output: &[f32], index: usize, width: usize, out: &mut [f32]) {
    let frames = out.len() / width.max(1);
    if let Some(p) = WINDOWING.placement(index, WINDOW_FRAMES, frames) {
        let src = &window_output[p.from * width..(p.from + p.count) * width];
        out[p.to * width..(p.to + p.count) * width].copy_from_slice(src);
    }
}

/// The sample (at 22 050 Hz) on which stitched frame `frame` is centred.
pub fn frame_sample(frame: usize) -> usize {
    let window = frame / KEPT_FRAMES;
    // HOP = 141 × 256 + 68, and each window's kept frames start 15 frames (LEAD) in: frame f of
    // window w sits at w × HOP + (f − 142 w) × 256 = 256 f − 188 w, never negative.
    frame * FFT_HOP - window * (KEPT_FRAMES * FFT_HOP - HOP)
}

/// The time in seconds on which stitched frame `frame` is centred.
pub fn frame_time_s(frame: usize) -> f64 {
    frame_sample(frame) as f64 / f64::from(SAMPLE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_are_the_packages() {
        assert_eq!((WINDOW, OVERLAP, HOP, LEAD), (43_844, 7_680, 36_164, 3_840));
        assert_eq!((KEPT_FRAMES, FRAMES_PER_SECOND), (142, 86));
        // Two seconds of audio: 172 frames from two windows.
        assert_eq!(frame_count(44_100), 172);
        assert_eq!(window_count(172), 2);
        assert_eq!((frame_count(0), window_count(0)), (0, 0));
        assert_eq!(frame_count(256), 0);
    }

    #[test]
    fn windows_start_half_an_overlap_early_and_pad_with_zeros() {
        let samples: Vec<f32> = (1..=50_000).map(|i| i as f32).collect();
        let mut w = vec![f32::NAN; WINDOW];
        fill_window(&samples, 0, &mut w);
        assert!(w[..LEAD].iter().all(|&x| x == 0.0));
        assert_eq!(w[LEAD], 1.0);
        assert_eq!(w[WINDOW - 1], (WINDOW - LEAD) as f32);
        fill_window(&samples, 1, &mut w);
        assert_eq!(w[0], (HOP - LEAD + 1) as f32);
        let last = 50_000 - (HOP - LEAD);
        assert_eq!(w[last - 1], 50_000.0);
        assert!(w[last..].iter().all(|&x| x == 0.0));
        fill_window(&samples, 5, &mut w);
        assert!(w.iter().all(|&x| x == 0.0));
        fill_window(&[], 0, &mut w);
        assert!(w.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn stitching_keeps_the_middle_142_frames_of_each_window() {
        let width = 2;
        let frames = 200;
        let mut out = vec![-1.0f32; frames * width];
        for index in 0..window_count(frames) {
            // Each value encodes (window, frame within the window).
            let output: Vec<f32> =
                (0..WINDOW_FRAMES * width).map(|i| (index * 1000 + i / width) as f32).collect();
            stitch_window(&output, index, width, &mut out);
        }
        assert_eq!(out[0], 15.0);
        assert_eq!(out[141 * width], 156.0);
        assert_eq!(out[142 * width + 1], 1015.0);
        assert_eq!(out[199 * width], 1072.0);
        stitch_window(&vec![0.0; WINDOW_FRAMES * width], 2, width, &mut out);
        assert_eq!(out[199 * width], 1072.0, "a window past the end writes nothing");
    }

    #[test]
    fn frame_times_follow_the_window_drift() {
        // Frame f of window w: window start w·HOP − LEAD plus (f − 142w + 15) hops.
        for f in [0, 1, 141, 142, 143, 500, 5159] {
            let w = f / KEPT_FRAMES;
            let direct = (w * HOP + (f - w * KEPT_FRAMES + TRIM_FRAMES) * FFT_HOP) as i64 - LEAD as i64;
            assert_eq!(frame_sample(f) as i64, direct, "frame {f}");
        }
        assert!((frame_time_s(86) - 86.0 * 256.0 / 22050.0).abs() < 1e-12);
        assert!((0..1000).all(|f| frame_sample(f + 1) > frame_sample(f)));
    }
}
