//! The tree analyses in the report: width (shares of the parent, overlaps, residual), controlled
//! edits (success and leakage per child) and depth (composed against direct, round trips), as
//! tables and bar charts.

use super::bars::{bar_chart, Bar, BarChart};
use super::markdown::slug;
use crate::tree::{Stat, TreeResult};
use std::fmt::Write as _;

fn pm(s: &Stat) -> String {
    if s.mean.is_finite() {
        format!("{:.3} ± {:.3}", s.mean, s.std)
    } else {
        "–".to_owned()
    }
}

fn bar(s: &Stat) -> Bar {
    Bar { value: s.mean, std: s.std }
}

/// Appends the tree sections to `md`, their charts to `plots` and one line per finding to
/// `summary`.
pub fn render(tree: &TreeResult, md: &mut String, plots: &mut Vec<(String, String)>, summary: &mut String) {
    if tree.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## The tree\n\nMaps here are affine ridge regressions fitted on {} anchors per repeat (penalty by \
         5-fold cross-validation unless `[tree] lambda` is set) and judged on the test items; each value is \
         mean ± std over {} repeats.\n",
        tree.anchors, tree.repeats
    );
    for w in &tree.width {
        let _ = writeln!(md, "### Width: what `{}`'s children explain\n", w.parent);
        let _ = writeln!(
            md,
            "{} items ({} test), parent dimension {}. *explained*: R² of the parent predicted from the child; \
             *readable*: R² of the child predicted from the parent; *subspace*: dimensions holding 95 % of the \
             child's prediction of the parent.\n",
            w.items, w.test, w.parent_dim
        );
        let _ = writeln!(md, "| child | explained | readable | subspace dims |\n|---|---:|---:|---:|");
        for c in &w.children {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.1} |",
                c.child,
                pm(&c.explained),
                pm(&c.readable),
                c.subspace_dim.mean
            );
        }
        let _ = writeln!(md, "| **all children** | {} | | |", pm(&w.joint));
        let _ = writeln!(md, "| **residual** (no child) | {} | | |\n", pm(&w.residual));
        if !w.overlaps.is_empty() {
            let _ = writeln!(
                md,
                "Overlap of the children's subspaces of `{}` (principal angles; random subspaces of the same \
                 dimensions give the chance mean cos²):\n",
                w.parent
            );
            let _ = writeln!(
                md,
                "| children | smallest angle (°) | mean cos² | chance mean cos² |\n|---|---:|---:|---:|"
            );
            for o in &w.overlaps {
                let _ = writeln!(
                    md,
                    "| {} · {} | {:.1} ± {:.1} | {} | {:.3} |",
                    o.a,
                    o.b,
                    o.min_angle_deg.mean,
                    o.min_angle_deg.std,
                    pm(&o.mean_cos2),
                    o.chance_mean_cos2.mean
                );
            }
            md.push('\n');
        }
        let mut rows: Vec<String> = w.children.iter().map(|c| c.child.clone()).collect();
        rows.push("all children".into());
        rows.push("residual".into());
        let mut explained: Vec<Bar> = w.children.iter().map(|c| bar(&c.explained)).collect();
        explained.push(bar(&w.joint));
        explained.push(bar(&w.residual));
        let name = format!("tree-width-{}.svg", slug(&w.parent));
        plots.push((
            name.clone(),
            bar_chart(&BarChart {
                title: format!("width of {}: share of its variance", w.parent),
                x_label: "R² on test items".into(),
                rows,
                series: vec!["share of the parent".into()],
                values: vec![explained],
            }),
        ));
        let _ = writeln!(md, "![width of {}](plots/{name})\n", w.parent);
        let shares: Vec<String> =
            w.children.iter().map(|c| format!("{} {:.3}", c.child, c.explained.mean)).collect();
        let _ = writeln!(
            summary,
            "width of {}: {}; all {:.3}; residual {:.3}",
            w.parent,
            shares.join(", "),
            w.joint.mean,
            w.residual.mean
        );
    }
    for e in &tree.edits {
        let _ = writeln!(md, "### Edit: `{}` in `{}`, carried to `{}`\n", e.operator, e.child, e.parent);
        let _ = writeln!(
            md,
            "{} items. The truth is `{}` of the edited items rendered again. *success*: share of the true \
             parent change the carried edit makes (1 = the re-rendered item, 0 = no edit); *unconstrained*: the \
             same for the smallest parent move that makes `{}`'s map move by the child's change; *landed*: \
             whether `{}`'s map sees the edit.\n",
            e.items, e.parent, e.child, e.child
        );
        let _ =
            writeln!(md, "| success | unconstrained | cosine to the truth | landed |\n|---:|---:|---:|---:|");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |\n",
            pm(&e.success),
            pm(&e.unconstrained_success),
            pm(&e.cosine),
            pm(&e.landed)
        );
        let _ = writeln!(
            md,
            "How far each child's map moves, in units of that child's test variance (for the other children, \
             movement is leakage; compare with the truth):\n"
        );
        let _ = writeln!(md, "| child | carried edit | unconstrained edit | true edit, through the map | child's own true change |\n|---|---:|---:|---:|---:|");
        for m in &e.moves {
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} |",
                m.child,
                if m.edited { " (edited)" } else { "" },
                pm(&m.carried),
                pm(&m.unconstrained),
                pm(&m.truth_mapped),
                m.truth.as_ref().map_or("–".to_owned(), pm)
            );
        }
        md.push('\n');
        let name = format!("tree-edit-{}-{}.svg", slug(&e.child), slug(&e.operator));
        plots.push((
            name.clone(),
            bar_chart(&BarChart {
                title: format!("edit {} in {}: movement of each child's map", e.operator, e.child),
                x_label: "movement / child's variance".into(),
                rows: e.moves.iter().map(|m| m.child.clone()).collect(),
                series: vec![
                    "carried edit".into(),
                    "unconstrained edit".into(),
                    "true edit (through the map)".into(),
                ],
                values: vec![
                    e.moves.iter().map(|m| bar(&m.carried)).collect(),
                    e.moves.iter().map(|m| bar(&m.unconstrained)).collect(),
                    e.moves.iter().map(|m| bar(&m.truth_mapped)).collect(),
                ],
            }),
        ));
        let _ = writeln!(md, "![edit {} in {}](plots/{name})\n", e.operator, e.child);
        let leak: Vec<String> = e
            .moves
            .iter()
            .filter(|m| !m.edited)
            .map(|m| format!("{} {:.3} (truth {:.3})", m.child, m.carried.mean, m.truth_mapped.mean))
            .collect();
        let _ = writeln!(
            summary,
            "edit {} in {} → {}: success {:.3} (unconstrained {:.3}), landed {:.3}; leakage {}",
            e.operator,
            e.child,
            e.parent,
            e.success.mean,
            e.unconstrained_success.mean,
            e.landed.mean,
            leak.join(", ")
        );
    }
    if !tree.depth.is_empty() {
        let _ = writeln!(md, "### Depth: maps composed along paths\n");
        let _ = writeln!(
            md,
            "R² and P@1 (cosine nearest neighbour among the test items) in the last node's space. With a shortcut \
             edge: the direct map, *agreement* (R² of the composed prediction against the direct one) and the \
             round trip out along the path and back along the reversed shortcut.\n"
        );
        let _ = writeln!(md, "| path | steps R² | composed R² | composed P@1 | direct R² | direct P@1 | agreement | cycle R² | cycle P@1 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for d in &tree.depth {
            let steps: Vec<String> = d.steps.iter().map(|s| format!("{:.3}", s.mean)).collect();
            let dash = || "–".to_owned();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.path.join(" → "),
                steps.join(", "),
                pm(&d.composed_r2),
                pm(&d.composed_p_at_1),
                d.direct.as_ref().map_or_else(dash, |x| pm(&x.r2)),
                d.direct.as_ref().map_or_else(dash, |x| pm(&x.p_at_1)),
                d.direct.as_ref().map_or_else(dash, |x| pm(&x.agreement)),
                d.cycle.as_ref().map_or_else(dash, |x| pm(&x.r2)),
                d.cycle.as_ref().map_or_else(dash, |x| pm(&x.p_at_1)),
            );
            let _ = writeln!(
                summary,
                "path {}: composed R² {:.3}, P@1 {:.3}{}",
                d.path.join(" → "),
                d.composed_r2.mean,
                d.composed_p_at_1.mean,
                d.direct
                    .as_ref()
                    .map(|x| format!("; direct R² {:.3}, P@1 {:.3}", x.r2.mean, x.p_at_1.mean))
                    .unwrap_or_default()
            );
        }
        md.push('\n');
    }
    for f in &tree.failed {
        let _ = writeln!(md, "Tree analysis not made — {f}\n");
        let _ = writeln!(summary, "tree analysis FAILED: {f}");
    }
}
