//! The Markdown report of a run: per edge, the data-efficiency plots (each metric against the
//! number of anchors, one line per method, spread over repeats, null dashed) and a table of
//! means ± standard deviations. `metrics.json` stays the source of truth; this is its reading.

use super::plot::{line_chart, Chart, Series, SeriesPoint};
use crate::experiment::Experiment;
use crate::runner::{EdgeResult, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// An edge that could not be evaluated: a node's extraction failed (a plugin error, a crash or a
/// hang in an isolated worker) or its fit could not start. The run went on with the other edges.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FailedEdge {
    /// Parent node.
    pub parent: String,
    /// Child node.
    pub child: String,
    /// What went wrong, naming the plugin and the function where one was at fault.
    pub error: String,
}

/// A rendered report.
pub struct Report {
    /// `report.md`.
    pub markdown: String,
    /// Plot files for `plots/`: (file name, SVG).
    pub plots: Vec<(String, String)>,
    /// A short summary for the terminal.
    pub summary: String,
}

/// A metric value with three decimals, `–` when not finite.
pub(crate) fn fmt(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".to_owned()
    }
}

/// `s` as a file-name part: ASCII letters, digits and `-`, anything else `_`.
pub(crate) fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// The methods of an edge, in the order its summary first names them.
pub(crate) fn methods(edge: &EdgeResult) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in &edge.summary {
        if !out.contains(&s.method.as_str()) {
            out.push(&s.method);
        }
    }
    out
}

fn summaries<'a>(edge: &'a EdgeResult, method: &str, metric: &str) -> Vec<&'a Summary> {
    edge.summary.iter().filter(|s| s.method == method && s.metric == metric).collect()
}

/// The chart of one metric of one edge.
fn chart(edge: &EdgeResult, metric: &str) -> String {
    let mut series = Vec::new();
    for method in methods(edge) {
        let rows = summaries(edge, method, metric);
        series.push(Series {
            name: method.to_owned(),
            points: rows
                .iter()
                .map(|s| SeriesPoint { x: s.anchors as f64, y: s.mean, low: s.min, high: s.max })
                .collect(),
            dashed: false,
        });
        if rows.iter().any(|s| s.null_mean.is_some()) {
            series.push(Series {
                name: format!("{method} (null)"),
                points: rows
                    .iter()
                    .map(|s| {
                        let m = s.null_mean.unwrap_or(f64::NAN);
                        SeriesPoint { x: s.anchors as f64, y: m, low: m, high: s.null_max.unwrap_or(m) }
                    })
                    .collect(),
                dashed: true,
            });
        }
    }
    line_chart(&Chart {
        title: format!("{} → {}: {metric}", edge.parent, edge.child),
        x_label: "anchors (paired examples)".to_owned(),
        y_label: metric.to_owned(),
        log_x: true,
        series,
    })
}

/// An edge's operators: how items were split between the sides (no leakage), and how well a
/// linear action describes each operator in each space.
fn operators_section(md: &mut String, edge: &EdgeResult) {
    if edge.operators.is_empty() {
        return;
    }
    let mode = match edge.operator_items {
        crate::experiment::OperatorItems::Disjoint => {
            "**disjoint**: each item goes to one side only (a fixed hash of the item), so operator fits never \
             pair items across the two spaces"
        }
        crate::experiment::OperatorItems::Shared => {
            "**shared** (labelled option): both sides fit their operators on the same items, which pairs those \
             items across spaces implicitly"
        }
    };
    let _ = writeln!(
        md,
        "Operators ({} pairs). Operator items are {mode}. Pairs whose item or image is a test item are \
         dropped from fitting in every repeat. Split sizes below are those of the first repeat. R² is the \
         cross-validated fit of the affine action `x ↦ xF + c` on the edge's preprocessing (fitted on each \
         side's own non-test items); beside it, the offset-only model `x ↦ x + c` and doing nothing.\n",
        edge.operators.len()
    );
    let _ = writeln!(
        md,
        "| operator | fit pairs {p} | fit pairs {c} | dropped (test) | test items | R² {p} (offset, none) | R² {c} (offset, none) |",
        p = edge.parent,
        c = edge.child
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    let r2 = |a: &crate::edge_operators::ActionReport| match &a.error {
        Some(e) => format!("– ({e})"),
        None => format!("{} ({}, {})", fmt(a.r2), fmt(a.r2_offset), fmt(a.r2_identity)),
    };
    for op in &edge.operators {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            op.operator,
            op.split.parent_fit,
            op.split.child_fit,
            op.split.dropped_test,
            op.split.test_items,
            r2(&op.parent),
            r2(&op.child)
        );
    }
    md.push('\n');
    // The two-shades question's pairs, and the bridge it is read beside.
    let pairs: Vec<(String, usize)> = edge
        .points
        .iter()
        .flat_map(|p| p.operators.iter().filter_map(|(label, s)| s.order.map(|(_, n)| (label.clone(), n))))
        .collect();
    if let Some((label, _)) = pairs.first() {
        let low = pairs.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let high = pairs.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "`order` is read along `{label}` over the test pairs whose {c} rows are identical \
             ({low}–{high} pairs per fit): a bridge through {c}'s own rows (the items named, then \
             embedded in {c}) cannot tell such a pair apart and scores 0.500 on them by construction.\n",
            c = edge.child
        );
    }
}

/// What the fits chose by cross-validation (functional and Laplacian weights, CCA's `reg`), over
/// every point of an edge or a stitch (each point's fit details), and which choices landed on an
/// edge of their grid.
pub(crate) fn choices_section(md: &mut String, points: &[&BTreeMap<String, f64>]) {
    // A weight the method set (`lambda-given`) was not chosen by the fit.
    let given =
        |details: &BTreeMap<String, f64>, name: &str| details.get(&format!("{name}-given")) == Some(&1.0);
    let mut chosen: Vec<(&str, Vec<f64>)> = Vec::new();
    for details in points {
        for (k, v) in details
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "lambda" | "mu" | "reg" | "iterations"))
            .filter(|(k, _)| !given(details, k))
        {
            match chosen.iter_mut().find(|(name, _)| *name == k.as_str()) {
                Some((_, values)) => values.push(*v),
                None => chosen.push((k.as_str(), vec![*v])),
            }
        }
    }
    if !chosen.is_empty() {
        let cells: Vec<String> = chosen
            .iter_mut()
            .map(|(name, values)| {
                values.sort_by(f64::total_cmp);
                format!(
                    "{name} median {} (range {}–{})",
                    fmt_g(values[values.len() / 2]),
                    fmt_g(values[0]),
                    fmt_g(values[values.len() - 1])
                )
            })
            .collect();
        let _ = writeln!(md, "Chosen by the fits (on folds of the anchors): {}.\n", cells.join("; "));
    }
    // Cross-validated choices at an edge of their grid: the optimum may lie beyond it.
    use crate::align::functional::{LAMBDA_GRID, MU_GRID};
    use crate::align::CCA_REG_GRID;
    let cross_validated: Vec<&&BTreeMap<String, f64>> =
        points.iter().filter(|d| d.contains_key("cv-folds") || d.contains_key("criterion")).collect();
    let mut edges_hit = Vec::new();
    for (name, grid) in [("lambda", &LAMBDA_GRID[..]), ("mu", &MU_GRID[..]), ("reg", &CCA_REG_GRID[..])] {
        let (Some(lo), Some(hi)) = (grid.first(), grid.last()) else { continue };
        let values: Vec<f64> =
            cross_validated.iter().filter(|d| !given(d, name)).filter_map(|d| d.get(name)).copied().collect();
        let at_lo = values.iter().filter(|&&v| v == *lo).count();
        let at_hi = values.iter().filter(|&&v| v == *hi).count();
        if at_lo > 0 {
            edges_hit.push(format!(
                "{name} = {} (the grid's lowest) in {at_lo} of {} fits",
                fmt_g(*lo),
                values.len()
            ));
        }
        if at_hi > 0 {
            edges_hit.push(format!(
                "{name} = {} (the grid's highest) in {at_hi} of {} fits",
                fmt_g(*hi),
                values.len()
            ));
        }
    }
    if !edges_hit.is_empty() {
        let _ = writeln!(
            md,
            "**At the edge of the grid**: {}; the best value may lie beyond it.\n",
            edges_hit.join("; ")
        );
    }
}

/// The take-off headlines of an edge, one per P@1 metric: the best classic and the best
/// functional method's take-off and their ratio (empty without take-off).
fn take_off_headlines(edge: &EdgeResult) -> Vec<String> {
    use crate::takeoff::{best_of, family, Family};
    let Some(level) = edge.take_off.first().map(|t| t.level) else {
        return Vec::new();
    };
    let has = |f: Family| edge.take_off.iter().any(|t| family(&t.method) == f);
    let (has_classic, has_functional) = (has(Family::Classic), has(Family::Functional));
    let none = |present: bool, what: &str| {
        if present {
            format!("no {what} method took off in every repeat")
        } else {
            format!("no {what} method in this edge")
        }
    };
    take_off_metrics(edge)
        .into_iter()
        .map(|metric| {
            let of_metric: Vec<_> = edge.take_off.iter().filter(|t| t.metric == metric).cloned().collect();
            let (classic, functional) =
                (best_of(&of_metric, Family::Classic), best_of(&of_metric, Family::Functional));
            let head = format!("take-off ({metric} > {level})");
            match (classic, functional) {
                (Some(c), Some(f)) => format!(
                    "{head}: best classic {} at {}, best functional {} at {}; classic / functional = {:.2}",
                    c.method,
                    take_off_at(c),
                    f.method,
                    take_off_at(f),
                    c.mean / f.mean
                ),
                (Some(c), None) => format!(
                    "{head}: best classic {} at {}; {}",
                    c.method,
                    take_off_at(c),
                    none(has_functional, "functional")
                ),
                (None, Some(f)) => format!(
                    "{head}: best functional {} at {}; {}",
                    f.method,
                    take_off_at(f),
                    none(has_classic, "classic")
                ),
                (None, None) => format!("{head}: no method took off in every repeat"),
            }
        })
        .collect()
}

/// The P@1 metrics an edge's take-off was read on, in order.
fn take_off_metrics(edge: &EdgeResult) -> Vec<&str> {
    let mut metrics: Vec<&str> = Vec::new();
    for t in &edge.take_off {
        if !metrics.contains(&t.metric.as_str()) {
            metrics.push(&t.metric);
        }
    }
    metrics
}

/// Take-off in the report: per method, the anchor count at which P@1 first exceeds the level,
/// then the `headlines`.
fn take_off_section(md: &mut String, edge: &EdgeResult, headlines: &[String]) {
    let Some(level) = edge.take_off.first().map(|t| t.level) else {
        return;
    };
    let metrics = take_off_metrics(edge);
    let _ = writeln!(
        md,
        "**Take-off**: the number of anchors at which P@1 first exceeds {level}, read off each repeat's curve \
         (interpolated in log anchors), mean ± std over the repeats that reached it; `≤` when a repeat was \
         already above at its smallest anchor count.\n"
    );
    let _ = writeln!(md, "| method | {} |", metrics.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(metrics.len()));
    let cell = |t: &crate::takeoff::TakeOff| {
        if t.reached == 0 {
            format!("never (0/{})", t.repeats)
        } else {
            format!("{} ± {} ({}/{})", take_off_at(t), fmt_anchors(t.std), t.reached, t.repeats)
        }
    };
    for method in methods(edge) {
        if !edge.take_off.iter().any(|t| t.method == method) {
            continue;
        }
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| {
                edge.take_off
                    .iter()
                    .find(|t| t.method == method && t.metric == *m)
                    .map_or("–".to_owned(), cell)
            })
            .collect();
        let _ = writeln!(md, "| {method} | {} |", cells.join(" | "));
    }
    md.push('\n');
    for line in headlines {
        let _ = writeln!(md, "{line}.\n");
    }
}

/// A method's take-off for the headline: `≤ n` when some repeat was already above the level at its
/// smallest anchor count.
fn take_off_at(t: &crate::takeoff::TakeOff) -> String {
    let bound = if t.at_first > 0 { "≤ " } else { "" };
    format!("{bound}{}", fmt_anchors(t.mean))
}

/// An interpolated anchor count: one decimal below 10, whole above.
fn fmt_anchors(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// What refinement did: refits, convergence and the dictionary's growth per round.
fn refinement_section(md: &mut String, edge: &EdgeResult) {
    let refined: Vec<&crate::runner::Point> = edge.points.iter().filter(|p| p.refinement.is_some()).collect();
    if refined.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Refinement: rounds used (refits, mean and range over repeats), repeats that stopped because the \
         dictionary stopped changing (the rest hit the cap), and the dictionary's size per round (mean over \
         repeats; round 0 is induced by the first fit).\n"
    );
    let _ = writeln!(md, "| method | anchors | refits | converged | dictionary per round |");
    let _ = writeln!(md, "|---|---:|---:|---:|---|");
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for p in &refined {
        if !groups.contains(&(p.method.as_str(), p.anchors)) {
            groups.push((&p.method, p.anchors));
        }
    }
    for (method, anchors) in groups {
        let reports: Vec<&crate::runner::Refinement> = refined
            .iter()
            .filter(|p| p.method == method && p.anchors == anchors)
            .filter_map(|p| p.refinement.as_ref())
            .collect();
        let sizes: Vec<Vec<usize>> = reports.iter().map(|r| r.dictionary_sizes()).collect();
        let refits: Vec<usize> = sizes.iter().map(|s| s.len().saturating_sub(1)).collect();
        let mean_refits = refits.iter().sum::<usize>() as f64 / refits.len().max(1) as f64;
        let longest = sizes.iter().map(Vec::len).max().unwrap_or(0);
        let per_round: Vec<String> = (0..longest)
            .map(|r| {
                // A repeat that stopped earlier keeps its last dictionary.
                let values: Vec<f64> =
                    sizes.iter().filter_map(|s| s.get(r).or(s.last())).map(|&v| v as f64).collect();
                format!("{:.0}", values.iter().sum::<f64>() / values.len().max(1) as f64)
            })
            .collect();
        let shown = if per_round.len() > 12 {
            format!("{} … {}", per_round[..8].join(" → "), per_round[per_round.len() - 2..].join(" → "))
        } else {
            per_round.join(" → ")
        };
        let _ = writeln!(
            md,
            "| {method} | {anchors} | {} ({}–{}) | {}/{} | {shown} |",
            fmt_g(mean_refits),
            refits.iter().min().unwrap_or(&0),
            refits.iter().max().unwrap_or(&0),
            reports.iter().filter(|r| r.converged()).count(),
            reports.len()
        );
    }
    md.push('\n');
}

fn fmt_g(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x != 0.0 && (x.abs() >= 1e4 || x.abs() < 1e-3) {
        format!("{x:.1e}")
    } else {
        format!("{}", (x * 1000.0).round() / 1000.0)
    }
}

/// Renders the report of a run.
pub fn render(
    exp: &Experiment,
    edges: &[EdgeResult],
    failed: &[FailedEdge],
    isolated: &[String],
    plugins: &[serde_json::Value],
    started: &str,
    tree: Option<&crate::tree::TreeResult>,
) -> Report {
    let mut md = String::new();
    let mut plots = Vec::new();
    let mut summary = String::new();
    let _ = writeln!(md, "# {} — run of {started}\n", exp.name);
    let _ = writeln!(
        md,
        "Seed {}, {} repeats per anchor count; test items are never anchors. Each plot shows the mean over \
         repeats with the min–max band; dashed lines are the permutation null (the same method fitted on \
         anchors whose pairing was deranged: no anchor keeps its partner).\n",
        exp.seed, exp.repeats
    );
    let _ = writeln!(md, "Plugins:\n");
    for p in plugins {
        let _ = writeln!(
            md,
            "- `{}` {} (library sha256 `{}`)",
            p["name"].as_str().unwrap_or("?"),
            p["manifest"]["version"].as_str().unwrap_or("?"),
            p["sha256"].as_str().unwrap_or("?")
        );
    }
    md.push('\n');
    if !isolated.is_empty() {
        let names: Vec<String> = isolated.iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(
            md,
            "Isolated nodes (each plugin function in its own worker process): {}.\n",
            names.join(", ")
        );
    }
    let on_devices: Vec<String> = exp
        .nodes
        .iter()
        .filter(|n| !n.device.is_cpu())
        .map(|n| format!("`{}` on `{}`", n.name, n.device))
        .collect();
    if !on_devices.is_empty() {
        let _ = writeln!(
            md,
            "Devices (each node's encoder; the data and the other nodes on the CPU): {}.\n",
            on_devices.join(", ")
        );
    }
    // Layer grids first: each sums up many of the edges below.
    super::grid::render(exp, edges, &mut md, &mut plots, &mut summary);
    for f in failed {
        let _ = writeln!(md, "## {} → {} — failed\n", f.parent, f.child);
        let _ = writeln!(md, "This edge was not evaluated; the run went on with the others.\n");
        let _ = writeln!(md, "```text\n{}\n```\n", f.error);
        let _ = writeln!(summary, "{} → {}: FAILED: {}", f.parent, f.child, f.error);
    }
    for edge in edges {
        let _ = writeln!(md, "## {} → {}\n", edge.parent, edge.child);
        let _ = writeln!(
            md,
            "{} paired items, {} held out for testing (the retrieval gallery); {} → {} dimensions.\n",
            edge.items, edge.test, edge.parent_dim, edge.child_dim
        );
        if edge.skipped != [0, 0] {
            let _ = writeln!(
                md,
                "Skipped items (the encoder failed on them, e.g. out of vocabulary): {} in `{}`, {} in `{}`; \
                 only items embedded on both sides are paired.\n",
                edge.skipped[0], edge.parent, edge.skipped[1], edge.child
            );
        }
        operators_section(&mut md, edge);
        choices_section(&mut md, &edge.points.iter().map(|p| &p.details).collect::<Vec<_>>());
        let headlines = take_off_headlines(edge);
        take_off_section(&mut md, edge, &headlines);
        refinement_section(&mut md, edge);
        for metric in &edge.metrics {
            let name = format!("{}-{}-{}.svg", slug(&edge.parent), slug(&edge.child), slug(metric));
            let _ = writeln!(md, "![{metric}](plots/{name})\n");
            plots.push((name, chart(edge, metric)));
        }
        if let Some(svg) = super::notes::decoded_picture(edge) {
            let name = format!("{}-{}-decoded.svg", slug(&edge.parent), slug(&edge.child));
            let _ = writeln!(
                md,
                "![a test item's true notes and what each method's mapped frames decode into](plots/{name})\n\n\
                 The same as MIDI files: `decoded/{}-{}/`.\n",
                slug(&edge.parent),
                slug(&edge.child)
            );
            plots.push((name, svg));
        }
        if let Some(svg) = super::swatches::swatch_picture(edge) {
            let name = format!("{}-{}-swatches.svg", slug(&edge.parent), slug(&edge.child));
            let _ = writeln!(md, "![a few test items, what each method retrieves, and where the control edit lands](plots/{name})\n");
            plots.push((name, svg));
        }
        let header: Vec<String> = edge.metrics.iter().map(|m| format!("{m} (null)")).collect();
        let _ = writeln!(md, "| method | anchors | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|---:|{}", "---:|".repeat(edge.metrics.len()));
        for method in methods(edge) {
            let mut anchors: Vec<usize> =
                edge.summary.iter().filter(|s| s.method == method).map(|s| s.anchors).collect();
            anchors.dedup();
            for a in anchors {
                let cells: Vec<String> = edge
                    .metrics
                    .iter()
                    .map(|m| {
                        edge.summary
                            .iter()
                            .find(|s| s.method == method && s.anchors == a && &s.metric == m)
                            .map_or("–".to_owned(), |s| match s.null_mean {
                                _ if blind_to(edge, method, m) => {
                                    format!("{} ± {} †", fmt(s.mean), fmt(s.std))
                                }
                                Some(null) => format!("{} ± {} ({})", fmt(s.mean), fmt(s.std), fmt(null)),
                                None => format!("{} ± {}", fmt(s.mean), fmt(s.std)),
                            })
                    })
                    .collect();
                let _ = writeln!(md, "| {method} | {a} | {} |", cells.join(" | "));
            }
        }
        md.push('\n');
        let blind: Vec<String> = methods(edge)
            .into_iter()
            .filter(|method| edge.metrics.iter().any(|m| blind_to(edge, method, m)))
            .map(|method| format!("`{method}`"))
            .collect();
        if !blind.is_empty() {
            let _ = writeln!(
                md,
                "† The map of {} is a rotation into a space of at least the parent's dimension. CKA and \
                 mutual kNN do not change under a rotation, so these cells measure the two spaces, not \
                 the map: they equal their null by construction, which is not shown.\n",
                blind.join(", ")
            );
        }
        let failures = edge.points.iter().filter(|p| p.error.is_some()).count();
        if failures > 0 {
            let first = edge.points.iter().find_map(|p| p.error.as_deref()).unwrap_or("");
            let _ = writeln!(md, "{failures} fits failed (left out of the means); the first: {first}\n");
        }

        // Terminal summary: the first metric at the largest anchor count, per method; a layer
        // grid's edges are summed up by the grid instead.
        let in_grid =
            exp.edges.iter().any(|e| e.grid.is_some() && e.parent == edge.parent && e.child == edge.child);
        if in_grid {
            continue;
        }
        if let Some(metric) = edge.metrics.first() {
            let _ = writeln!(
                summary,
                "{} → {} ({metric}, mean ± std over repeats; null in brackets):",
                edge.parent, edge.child
            );
            let width = methods(edge).iter().map(|m| m.chars().count()).max().unwrap_or(0).max(12);
            for method in methods(edge) {
                let rows = summaries(edge, method, metric);
                let cells: Vec<String> = rows
                    .iter()
                    .map(|s| {
                        format!(
                            "{}: {} ± {} [{}]",
                            s.anchors,
                            fmt(s.mean),
                            fmt(s.std),
                            s.null_mean.map_or("–".into(), fmt)
                        )
                    })
                    .collect();
                let _ = writeln!(summary, "  {method:<width$} {}", cells.join("  "));
            }
        }
        for line in &headlines {
            let _ = writeln!(summary, "  {line}");
        }
    }
    if let Some(tree) = tree {
        super::tree::render(tree, &mut md, &mut plots, &mut summary);
    }
    if !edges.is_empty() {
        notebook_section(&mut md);
    }
    Report { markdown: md, plots, summary }
}

/// How to take every evaluated point to a notebook as one table.
fn notebook_section(md: &mut String) {
    md.push_str(
        "## The numbers in a notebook\n\n\
         Every evaluated point as one tidy table (`experiment, parent, child, method, anchors, repeat, \
         metric, value, null`), written from this folder, and a curve from it:\n\n\
         ```sh\ncommute export . --metrics -o metrics.parquet   # or metrics.csv\n```\n\n\
         ```python\n\
         import pandas as pd\n\
         m = pd.read_parquet(\"metrics.parquet\").query(\"metric == 'p@1'\")\n\
         m.groupby([\"method\", \"anchors\"]).value.mean().unstack(\"method\").plot(logx=True)\n\
         ```\n\n\
         (polars: `pl.read_parquet(\"metrics.parquet\").filter(pl.col(\"metric\") == \"p@1\")`.)\n",
    );
}

/// Whether `metric` cannot see the map of `method`: a rotation-invariant score of a method whose
/// map is a rotation (see `EdgeResult::rotations`).
fn blind_to(edge: &EdgeResult, method: &str, metric: &str) -> bool {
    matches!(metric, "cka" | "cka-unbiased" | "mutual-knn") && edge.rotations.iter().any(|r| r == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(lambda: f64, given: bool) -> BTreeMap<String, f64> {
        let mut d: BTreeMap<String, f64> =
            [("lambda".to_owned(), lambda), ("mu".to_owned(), 0.1), ("cv-folds".to_owned(), 5.0)].into();
        if given {
            d.insert("lambda-given".to_owned(), 1.0);
        }
        d
    }

    #[test]
    fn a_weight_at_the_edge_of_its_grid_is_counted_over_the_fits_that_chose_it() {
        let (a, b, c) = (fit(0.01, false), fit(0.01, false), fit(0.0, true));
        let mut md = String::new();
        choices_section(&mut md, &[&a, &b, &c]);
        assert!(md.contains("lambda = 0.01 (the grid's lowest) in 2 of 2 fits"), "{md}");
        // The given weight (0) is not among the choices either.
        assert!(md.contains("lambda median 0.01 (range 0.01–0.01)"), "{md}");
        // Chosen inside the grid: no edge for lambda.
        let mut md = String::new();
        choices_section(&mut md, &[&fit(1.0, false), &c]);
        assert!(!md.contains("lambda = "), "{md}");
    }
}
