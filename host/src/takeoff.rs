//! Take-off: the smallest number of anchors at which a method's P@1 exceeds a level (0.5), read off
//! each repeat's curve by interpolation, with its spread over repeats — the headline number of a
//! data-efficiency claim ("functional alignment takes off with ¼ of the anchors").
//!
//! On one repeat's curve (anchor counts a₁ < a₂ < … with P@1 values p₁, p₂, …), the take-off is
//! where the curve first crosses the level: between the last point below it and the first point at
//! or above it, interpolated linearly in log(anchors) (linearly in anchors when the lower point is
//! anchors = 0). A curve that starts at or above the level takes off at its first anchor count (an
//! upper bound, flagged); one that never reaches it does not take off (also counted).

use crate::runner::Point;
use serde::{Deserialize, Serialize};

/// The level P@1 must exceed.
pub const LEVEL: f64 = 0.5;

/// Take-off of one method on one metric, over repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TakeOff {
    /// Method label.
    pub method: String,
    /// Metric read (`p@1`, `vocab-p@1`).
    pub metric: String,
    /// The level crossed.
    pub level: f64,
    /// Mean take-off over the repeats that took off (NaN — null in JSON — when none did).
    pub mean: f64,
    /// Sample standard deviation over those repeats (0 with one).
    pub std: f64,
    /// Repeats whose curve crossed the level.
    pub reached: usize,
    /// Repeats with a curve.
    pub repeats: usize,
    /// Repeats already at or above the level at their smallest anchor count (take-off is then
    /// that count, an upper bound).
    pub at_first: usize,
}

/// Where one curve crosses `level`: `Some((anchors, at_first))`, `None` when it never does.
/// `curve` is (anchors, value) sorted by anchors; non-finite values are skipped.
pub fn crossing(curve: &[(usize, f64)], level: f64) -> Option<(f64, bool)> {
    let points: Vec<(usize, f64)> = curve.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    let first = points.iter().position(|&(_, v)| v >= level)?;
    if first == 0 {
        return Some((points[0].0 as f64, true));
    }
    let ((a0, p0), (a1, p1)) = (points[first - 1], points[first]);
    let t = (level - p0) / (p1 - p0);
    let at = if a0 == 0 {
        t * a1 as f64
    } else {
        let (l0, l1) = ((a0 as f64).ln(), (a1 as f64).ln());
        (l0 + t * (l1 - l0)).exp()
    };
    Some((at, false))
}

/// Take-off of every method on `metric`, from an edge's points, in the order methods first appear.
pub fn take_offs(points: &[Point], metric: &str, level: f64) -> Vec<TakeOff> {
    let mut methods: Vec<&str> = Vec::new();
    for p in points {
        if !methods.contains(&p.method.as_str()) {
            methods.push(&p.method);
        }
    }
    let mut out = Vec::new();
    for method in methods {
        let mut repeats: Vec<usize> =
            points.iter().filter(|p| p.method == method).map(|p| p.repeat).collect();
        repeats.sort_unstable();
        repeats.dedup();
        let mut found = Vec::new();
        let mut at_first = 0;
        for &r in &repeats {
            let mut curve: Vec<(usize, f64)> = points
                .iter()
                .filter(|p| p.method == method && p.repeat == r)
                .filter_map(|p| p.scores.get(metric).map(|&v| (p.anchors, v)))
                .collect();
            curve.sort_by_key(|c| c.0);
            if let Some((at, first)) = crossing(&curve, level) {
                found.push(at);
                at_first += usize::from(first);
            }
        }
        if repeats.is_empty() || !points.iter().any(|p| p.method == method && p.scores.contains_key(metric)) {
            continue;
        }
        let n = found.len() as f64;
        let mean = if found.is_empty() { f64::NAN } else { found.iter().sum::<f64>() / n };
        let std = if found.len() > 1 {
            (found.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        out.push(TakeOff {
            method: method.to_owned(),
            metric: metric.to_owned(),
            level,
            mean,
            std,
            reached: found.len(),
            repeats: repeats.len(),
            at_first,
        });
    }
    out
}

/// The family a method label belongs to, for the headline comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Functional alignment with the declared operator correspondences.
    Functional,
    /// A control or structure-only baseline (shuffled operators, Laplacian, relative).
    Control,
    /// Classic feature alignment (least squares, ridge, Procrustes, CCA, affine, VecMap's step).
    Classic,
}

/// The family of a method label (as the runner writes labels).
pub fn family(label: &str) -> Family {
    if label.contains("shuffle-operators") || label.starts_with("laplacian") || label.starts_with("relative")
    {
        Family::Control
    } else if label.starts_with("functional") {
        Family::Functional
    } else {
        Family::Classic
    }
}

/// The earliest mean take-off among the methods of `family` that took off in every repeat.
pub fn best_of(take_offs: &[TakeOff], family_: Family) -> Option<&TakeOff> {
    take_offs
        .iter()
        .filter(|t| family(&t.method) == family_ && t.reached == t.repeats && t.mean.is_finite())
        .min_by(|a, b| a.mean.total_cmp(&b.mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_interpolates_in_log_anchors() {
        // 0.25 at 10, 0.75 at 1000: halfway in log space is 100.
        let (at, first) = crossing(&[(10, 0.25), (1000, 0.75)], 0.5).unwrap();
        assert!((at - 100.0).abs() < 1e-9 && !first, "{at}");
        // From anchors = 0 the interpolation is linear.
        let (at, _) = crossing(&[(0, 0.0), (10, 1.0)], 0.5).unwrap();
        assert!((at - 5.0).abs() < 1e-12);
        assert_eq!(crossing(&[(5, 0.6), (10, 0.9)], 0.5), Some((5.0, true)));
        assert_eq!(crossing(&[(5, 0.1), (10, 0.4)], 0.5), None);
        // The first crossing counts, and NaN points are skipped.
        let (at, _) = crossing(&[(5, 0.1), (10, f64::NAN), (20, 0.5), (50, 0.2), (100, 0.9)], 0.5).unwrap();
        assert!((at - 20.0).abs() < 1e-9);
    }

    fn point(method: &str, anchors: usize, repeat: usize, p1: f64) -> Point {
        Point { scores: [("p@1".to_owned(), p1)].into(), ..Point::new(method, anchors, repeat) }
    }

    #[test]
    fn take_offs_average_over_repeats_and_count_the_ones_that_never_take_off() {
        let points = vec![
            point("functional", 10, 0, 0.25),
            point("functional", 1000, 0, 0.75),
            point("functional", 10, 1, 0.5),
            point("functional", 1000, 1, 0.9),
            point("ridge", 10, 0, 0.0),
            point("ridge", 1000, 0, 0.4),
            point("ridge", 10, 1, 0.0),
            point("ridge", 1000, 1, 0.6),
        ];
        let t = take_offs(&points, "p@1", LEVEL);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].reached, t[0].repeats, t[0].at_first), (2, 2, 1));
        assert!((t[0].mean - 55.0).abs() < 1e-9, "mean of 100 and 10: {}", t[0].mean);
        assert_eq!((t[1].reached, t[1].repeats), (1, 2));
        assert_eq!(best_of(&t, Family::Functional).map(|t| t.method.as_str()), Some("functional"));
        assert!(best_of(&t, Family::Classic).is_none(), "ridge did not take off in every repeat");
        assert!(take_offs(&points, "vocab-p@1", LEVEL).is_empty());
    }

    #[test]
    fn families_follow_the_labels() {
        assert_eq!(family("functional + self-learning"), Family::Functional);
        assert_eq!(family("functional (shuffle-operators = true) + refine"), Family::Control);
        assert_eq!(family("laplacian"), Family::Control);
        assert_eq!(family("procrustes + refine"), Family::Classic);
        assert_eq!(family("vecmap + self-learning"), Family::Classic);
    }
}
