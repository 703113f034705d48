//! Frame correspondences from provenance: two frame-level spaces of the same items put on one
//! clock, the slower side's.
//!
//! Both sides' frame 0 is the item's time 0 (a render such as a synthesizer keeps time), so
//! frame `k` of the slower side (rate `r_s`) spans `[k / r_s, (k + 1) / r_s)`, and the faster
//! side's frames `t` with `t / r_f` in that span — `⌈k r_f / r_s⌉ ≤ t < ⌈(k + 1) r_f / r_s⌉` —
//! are averaged into one (the nearest single frame where rounding leaves the span empty). At
//! equal rates frame `t` pairs with frame `t`. An item's pairs stop where either side's frames
//! end.

/// Which side of an edge runs the clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Frames per second of the common clock (the slower side's rate).
    pub rate: f64,
    /// The parent's rate divided by the clock's (≥ 1).
    parent: f64,
    /// The child's rate divided by the clock's (≥ 1).
    child: f64,
}

impl Clock {
    /// The clock of two sides at these frame rates.
    pub fn new(parent_rate: f64, child_rate: f64) -> Clock {
        let rate = parent_rate.min(child_rate);
        Clock { rate, parent: parent_rate / rate, child: child_rate / rate }
    }

    /// One item's frames on the clock: the parent's and the child's (`dp` and `dc` floats a frame,
    /// row-major), equally many.
    pub fn align(&self, parent: &[f32], dp: usize, child: &[f32], dc: usize) -> (Vec<f32>, Vec<f32>) {
        let (np, nc) = (parent.len() / dp.max(1), child.len() / dc.max(1));
        let ticks = ticks(np, self.parent).min(ticks(nc, self.child));
        (resample(parent, dp, self.parent, ticks), resample(child, dc, self.child, ticks))
    }
}

/// How many clock ticks a side of `n` frames at `ratio` clock frames covers (a tick counts when
/// at least its first frame exists).
fn ticks(n: usize, ratio: f64) -> usize {
    if ratio == 1.0 {
        return n;
    }
    (0..).take_while(|&k| first(k, ratio) < n).count()
}

/// The first frame of clock tick `k` on a side at `ratio` (with a tolerance, so that exact
/// multiples do not round up by a float's last bit).
fn first(k: usize, ratio: f64) -> usize {
    (k as f64 * ratio - 1e-9).ceil().max(0.0) as usize
}

/// `ticks` frames of width `d`: each tick the mean of its frames on this side.
fn resample(frames: &[f32], d: usize, ratio: f64, ticks: usize) -> Vec<f32> {
    if ratio == 1.0 {
        return frames[..ticks * d].to_vec();
    }
    let n = frames.len() / d.max(1);
    let mut out = Vec::with_capacity(ticks * d);
    for k in 0..ticks {
        let (a, b) = (first(k, ratio), first(k + 1, ratio).min(n));
        let (a, b) = if b > a { (a, b) } else { (a.min(n - 1), a.min(n - 1) + 1) };
        let mut sum = vec![0.0f64; d];
        for t in a..b {
            for (s, &x) in sum.iter_mut().zip(&frames[t * d..(t + 1) * d]) {
                *s += f64::from(x);
            }
        }
        let w = 1.0 / (b - a) as f64;
        out.extend(sum.into_iter().map(|s| (s * w) as f32));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_rates_pair_frame_with_frame_up_to_the_shorter() {
        let clock = Clock::new(10.0, 10.0);
        let (p, c) = clock.align(&[1.0, 2.0, 3.0], 1, &[10.0, 20.0], 1);
        assert_eq!((p, c), (vec![1.0, 2.0], vec![10.0, 20.0]));
    }

    #[test]
    fn the_faster_side_is_averaged_over_each_slow_frame() {
        // A ramp sampled at 40 frames/s (value = time) against 10 frames/s: tick k averages
        // frames 4k .. 4k + 3, whose mean time is k/10 + 1.5/40.
        let fast: Vec<f32> = (0..40).map(|t| t as f32 / 40.0).collect();
        let slow: Vec<f32> = (0..10).flat_map(|k| [k as f32, -(k as f32)]).collect();
        let clock = Clock::new(10.0, 40.0);
        assert_eq!(clock.rate, 10.0);
        let (p, c) = clock.align(&slow, 2, &fast, 1);
        assert_eq!((p.len(), c.len()), (20, 10));
        for (k, v) in c.iter().enumerate() {
            assert!((v - (k as f32 / 10.0 + 1.5 / 40.0)).abs() < 1e-6, "tick {k}: {v}");
        }
        // The same with the sides swapped: the clock is still the slower one.
        let (c2, p2) = Clock::new(40.0, 10.0).align(&fast, 1, &slow, 2);
        assert_eq!((c2, p2), (c, p));
    }

    #[test]
    fn rates_that_do_not_divide_keep_every_frame_in_one_tick_and_stop_at_the_shorter_side() {
        // 86.13 against 20 frames/s: ticks cover 4 or 5 frames, none twice, none left out.
        let clock = Clock::new(22050.0 / 256.0, 20.0);
        let fast: Vec<f32> = (0..345).map(|t| t as f32).collect();
        let slow = vec![0.0f32; 80];
        let (f, s) = clock.align(&fast, 1, &slow, 1);
        assert_eq!((f.len(), s.len()), (80, 80));
        let counts: Vec<usize> =
            (0..80).map(|k| first(k + 1, clock.parent) - first(k, clock.parent)).collect();
        assert!(counts.iter().all(|&c| c == 4 || c == 5), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), first(80, clock.parent));
        // The slow side longer than the fast one covers: ticks stop where the fast frames end.
        let (f, _) = clock.align(&fast[..100], 1, &slow, 1);
        assert_eq!(f.len(), (0..).take_while(|&k| first(k, clock.parent) < 100).count());
        // A slower side at a rate far below: one fast frame per tick at least (nearest frame).
        let (f, s) = Clock::new(1000.0, 1.0).align(&[5.0; 3500], 1, &[1.0; 4], 1);
        assert_eq!((f.len(), s.len()), (4, 4));
    }
}
