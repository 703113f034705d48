//! The report's stitching sections: per stitch, each method against the number of anchors beside
//! the references, and across stitches the penalty of the best map at the largest anchor count.

use super::markdown::{fmt, Report};
use crate::stitch::{FailedStitch, StitchPoint, StitchResult, B_ALONE, OWN_STATES};
use std::fmt::Write;

/// Mean and sample standard deviation of the finite values, `None` when there are none.
fn spread(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Some((mean, var.sqrt()))
}

fn cell(s: Option<(f64, f64)>) -> String {
    s.map_or("–".to_owned(), |(m, sd)| format!("{} ± {}", fmt(m), fmt(sd)))
}

/// The mean over repeats of one of the points' scores.
struct Row {
    cosine: Option<(f64, f64)>,
    p_at_1: Option<(f64, f64)>,
    downstream: Option<(f64, f64)>,
}

impl Row {
    fn of<'p>(points: impl Iterator<Item = &'p StitchPoint> + Clone) -> Row {
        Row {
            cosine: spread(points.clone().map(|p| p.cosine)),
            p_at_1: spread(points.clone().map(|p| p.p_at_1)),
            downstream: spread(points.filter_map(|p| p.downstream)),
        }
    }
}

/// B alone's downstream R² (the ceiling), mean over repeats.
fn ceiling(s: &StitchResult) -> Option<f64> {
    spread(s.references.iter().filter(|p| p.label == B_ALONE).filter_map(|p| p.downstream)).map(|m| m.0)
}

/// The best method at the largest anchor count, by mean cosine: (label, its row).
fn best_at_largest(s: &StitchResult) -> Option<(usize, String, Row)> {
    let largest = s.points.iter().map(|p| p.anchors).max()?;
    s.methods
        .iter()
        .map(|m| (m, Row::of(s.points.iter().filter(|p| p.anchors == largest && &p.label == m))))
        .filter(|(_, r)| r.cosine.is_some())
        .max_by(|a, b| {
            a.1.cosine.map(|c| c.0).partial_cmp(&b.1.cosine.map(|c| c.0)).unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(m, r)| (largest, m.clone(), r))
}

/// Appends the stitching sections to `report`.
pub fn render(stitches: &[StitchResult], failed: &[FailedStitch], report: &mut Report) {
    let (md, summary) = (&mut report.markdown, &mut report.summary);
    for f in failed {
        let _ = writeln!(md, "## Stitch {} — failed\n", f.name);
        let _ = writeln!(md, "This stitch was not evaluated; the run went on with the others.\n");
        let _ = writeln!(md, "```text\n{}\n```\n", f.error);
        let _ = writeln!(summary, "stitch {}: FAILED: {}", f.name, f.error);
    }
    for s in stitches {
        let _ = writeln!(md, "## Stitch {}\n", s.name);
        let _ = writeln!(
            md,
            "Model A's token states (`{}`) mapped token by token into model B's (`{}`) and fed to `{}`; \
             each map is fitted on the token pairs of the anchor items (every token of an anchor item is \
             a pair; {:.1} tokens per item on average) and evaluated on {} of {} items, never anchors. \
             Compared with B alone (node `{}`): the mean cosine between the stitched and B's own output, \
             P@1 of the stitched output among B's outputs of the test items{}. Mean ± std over repeats.\n",
            s.source,
            s.target,
            s.resume,
            s.tokens_per_item,
            s.test,
            s.items,
            s.reference,
            s.downstream.as_ref().map_or(String::new(), |d| format!(
                ", and the R² of a linear readout of `{d}` (ridge, fitted on B's outputs of the other items) applied to the stitched outputs"
            )),
        );
        if !s.operators.is_empty() {
            let each: Vec<String> = s
                .operators
                .iter()
                .map(|(label, c)| format!("{label} ({} / {})", c.parent_fit, c.child_fit))
                .collect();
            let _ = writeln!(
                md,
                "The functional maps also read {} operator pairs, each side's action fitted on its own half \
                 of the operators' items (pairs in A / in B): {}.\n",
                s.operators.len(),
                each.join(", ")
            );
        }
        let top = ceiling(s);
        let _ = writeln!(md, "| reference | cosine | P@1 | downstream R² |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let mut labels: Vec<&str> = Vec::new();
        for p in &s.references {
            if !labels.contains(&p.label.as_str()) {
                labels.push(&p.label);
            }
        }
        for label in labels {
            let row = Row::of(s.references.iter().filter(|p| p.label == label));
            let shown =
                |c: Option<(f64, f64)>| if label == B_ALONE { "1 (itself)".to_owned() } else { cell(c) };
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} |",
                shown(row.cosine),
                shown(row.p_at_1),
                cell(row.downstream)
            );
        }
        md.push('\n');
        let _ =
            writeln!(md, "| method | anchors | token pairs | cosine | P@1 | downstream R² | R² penalty |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let mut anchors: Vec<usize> = s.points.iter().map(|p| p.anchors).collect();
        anchors.sort_unstable();
        anchors.dedup();
        for m in &s.methods {
            for &a in &anchors {
                let at: Vec<&StitchPoint> =
                    s.points.iter().filter(|p| &p.label == m && p.anchors == a).collect();
                if at.is_empty() {
                    continue;
                }
                let row = Row::of(at.iter().copied());
                let pairs = spread(at.iter().map(|p| p.token_pairs as f64)).map_or(0.0, |p| p.0);
                let penalty = match (top, row.downstream) {
                    (Some(t), Some((d, _))) => fmt(t - d),
                    _ => "–".to_owned(),
                };
                let _ = writeln!(
                    md,
                    "| {m} | {a} | {pairs:.0} | {} | {} | {} | {penalty} |",
                    cell(row.cosine),
                    cell(row.p_at_1),
                    cell(row.downstream)
                );
            }
        }
        md.push('\n');
        super::markdown::choices_section(md, &s.points.iter().map(|p| &p.details).collect::<Vec<_>>());
        let failures: Vec<&StitchPoint> = s.points.iter().filter(|p| p.error.is_some()).collect();
        if let Some(first) = failures.first() {
            let _ = writeln!(
                md,
                "{} fits failed (left out of the means); the first: {}\n",
                failures.len(),
                first.error.as_deref().unwrap_or("")
            );
        }
        let own = Row::of(s.references.iter().filter(|p| p.label == OWN_STATES));
        let _ = writeln!(
            summary,
            "stitch {} (cosine, P@1 vs B alone; B from its own states: {}):",
            s.name,
            cell(own.cosine)
        );
        if let Some((largest, _, _)) = best_at_largest(s) {
            for m in &s.methods {
                let row = Row::of(s.points.iter().filter(|p| p.anchors == largest && &p.label == m));
                let _ = writeln!(summary, "  {m:<26} {largest}: {}  {}", cell(row.cosine), cell(row.p_at_1));
            }
        }
    }
    if stitches.len() > 1 {
        let _ = writeln!(md, "## Stitching penalties\n");
        let _ = writeln!(
            md,
            "Per stitch, the best map at the largest anchor count (by mean cosine) and what stitching costs \
             against B alone: 1 − cosine, 1 − P@1 and the downstream R² lost.\n"
        );
        let _ = writeln!(md, "| stitch | anchors | best map | 1 − cosine | 1 − P@1 | R² penalty |");
        let _ = writeln!(md, "|---|---:|---|---:|---:|---:|");
        for s in stitches {
            let Some((largest, best, row)) = best_at_largest(s) else { continue };
            let penalty = match (ceiling(s), row.downstream) {
                (Some(t), Some((d, _))) => fmt(t - d),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | {largest} | {best} | {} | {} | {penalty} |",
                s.name,
                row.cosine.map_or("–".to_owned(), |c| fmt(1.0 - c.0)),
                row.p_at_1.map_or("–".to_owned(), |c| fmt(1.0 - c.0)),
            );
        }
        md.push('\n');
    }
}
