//! Layer grids in the report: for each declared edge that names a swept node (`layers = …`), the
//! grid's edges gathered into one layer × layer heatmap per method and metric, at the edge's
//! `grid-anchors` (default: the largest anchor count every cell reached), and the best-matching layer of the child for each layer of the
//! parent (or the best parent layer, when only the parent is swept).

use super::heatmap::{best, heatmap, Heatmap};
use super::markdown::{fmt, methods, slug};
use crate::experiment::{Experiment, GridCell};
use crate::runner::EdgeResult;
use std::fmt::Write as _;

/// One declared edge's grid: its cells' layers and results.
struct Grid<'a> {
    /// The anchor count the declared edge asks the heatmaps to show.
    anchors: Option<usize>,
    parent: &'a str,
    child: &'a str,
    parent_layers: Vec<Option<usize>>,
    child_layers: Vec<Option<usize>>,
    cells: Vec<(&'a GridCell, &'a EdgeResult)>,
}

impl Grid<'_> {
    /// The mean of `metric` for `method` at `anchors` in cell (parent layer, child layer).
    fn value(&self, p: Option<usize>, c: Option<usize>, method: &str, metric: &str, anchors: usize) -> f64 {
        self.cells
            .iter()
            .find(|(cell, _)| cell.parent_layer == p && cell.child_layer == c)
            .and_then(|(_, e)| {
                e.summary.iter().find(|s| s.method == method && s.metric == metric && s.anchors == anchors)
            })
            .map_or(f64::NAN, |s| s.mean)
    }
}

/// The grids of an experiment, in the order their edges were declared.
fn grids<'a>(exp: &'a Experiment, edges: &'a [EdgeResult]) -> Vec<Grid<'a>> {
    let mut out: Vec<Grid<'a>> = Vec::new();
    for edge in &exp.edges {
        let Some(cell) = &edge.grid else { continue };
        let Some(result) = edges.iter().find(|e| e.parent == edge.parent && e.child == edge.child) else {
            continue;
        };
        let at = match out.iter().position(|g| g.parent == cell.parent && g.child == cell.child) {
            Some(i) => i,
            None => {
                out.push(Grid {
                    anchors: edge.grid_anchors,
                    parent: &cell.parent,
                    child: &cell.child,
                    parent_layers: Vec::new(),
                    child_layers: Vec::new(),
                    cells: Vec::new(),
                });
                out.len() - 1
            }
        };
        let grid = &mut out[at];
        if !grid.parent_layers.contains(&cell.parent_layer) {
            grid.parent_layers.push(cell.parent_layer);
        }
        if !grid.child_layers.contains(&cell.child_layer) {
            grid.child_layers.push(cell.child_layer);
        }
        grid.cells.push((cell, result));
    }
    out
}

fn label(node: &str, layer: Option<usize>) -> String {
    layer.map_or_else(|| node.to_owned(), |k| k.to_string())
}

/// Writes a section per layer grid, its heatmaps into `plots` and one line per method to the
/// terminal summary.
pub fn render(
    exp: &Experiment,
    edges: &[EdgeResult],
    md: &mut String,
    plots: &mut Vec<(String, String)>,
    summary: &mut String,
) {
    for grid in grids(exp, edges) {
        let Some((_, first)) = grid.cells.first() else { continue };
        // The declared `grid-anchors`, else the largest anchor count every cell reached.
        let anchors = grid.anchors.unwrap_or_else(|| {
            grid.cells
                .iter()
                .map(|(_, e)| e.summary.iter().map(|s| s.anchors).max().unwrap_or(0))
                .min()
                .unwrap_or(0)
        });
        let methods = methods(first);
        let (np, nc) = (grid.parent_layers.len(), grid.child_layers.len());
        let _ = writeln!(md, "## Layer grid: {} → {}\n", grid.parent, grid.child);
        let _ = writeln!(
            md,
            "{} edges, every layer of {} against every layer of {}, each evaluated as its own edge below; \
             the cells are means over repeats at {anchors} anchors. The outlined cell of each row is its best.\n",
            grid.cells.len(),
            if np > 1 { format!("`{}` ({np})", grid.parent) } else { format!("`{}`", grid.parent) },
            if nc > 1 { format!("`{}` ({nc})", grid.child) } else { format!("`{}`", grid.child) },
        );
        for metric in &first.metrics {
            for method in &methods {
                // Rows: parent layers; columns: child layers. A sweep of the parent alone is drawn
                // as one row over the parent's layers, so that the best cell is the best layer.
                let transpose = nc == 1 && np > 1;
                let (rows, cols) = if transpose {
                    (vec![None], grid.parent_layers.clone())
                } else {
                    (grid.parent_layers.clone(), grid.child_layers.clone())
                };
                let only_child = grid.child_layers[0];
                let cols_ref = &cols;
                let values: Vec<f64> = rows
                    .iter()
                    .flat_map(|&r| {
                        cols_ref.iter().map(move |&c| if transpose { (c, only_child) } else { (r, c) })
                    })
                    .map(|(p, c)| grid.value(p, c, method, metric, anchors))
                    .collect();
                let (row_names, col_names): (Vec<String>, Vec<String>) = if transpose {
                    (vec![grid.child.to_owned()], cols.iter().map(|&c| label(grid.parent, c)).collect())
                } else {
                    (
                        rows.iter().map(|&r| label(grid.parent, r)).collect(),
                        cols.iter().map(|&c| label(grid.child, c)).collect(),
                    )
                };
                let svg = heatmap(&Heatmap {
                    title: format!("{} → {}: {metric}, {method}, {anchors} anchors", grid.parent, grid.child),
                    row_label: if transpose {
                        "child".to_owned()
                    } else {
                        format!("layer of {}", grid.parent)
                    },
                    col_label: if transpose {
                        format!("layer of {}", grid.parent)
                    } else {
                        format!("layer of {}", grid.child)
                    },
                    rows: row_names.clone(),
                    cols: col_names.clone(),
                    values: values.clone(),
                });
                let name = format!(
                    "grid-{}-{}-{}-{}.svg",
                    slug(grid.parent),
                    slug(grid.child),
                    slug(metric),
                    slug(method)
                );
                let _ =
                    writeln!(md, "![{} → {}: {metric}, {method}](plots/{name})\n", grid.parent, grid.child);
                plots.push((name, svg));
                // The best column of each row, in words.
                let ncols = col_names.len();
                let bests: Vec<String> = values
                    .chunks(ncols.max(1))
                    .zip(&row_names)
                    .filter_map(|(row, name)| best(row).map(|b| (row, name, b)))
                    .map(|(row, name, b)| {
                        // Every column that ties with the best as printed.
                        let top = fmt(row[b]);
                        let tied: Vec<&str> = (0..row.len())
                            .filter(|&c| fmt(row[c]) == top)
                            .map(|c| col_names[c].as_str())
                            .collect();
                        let at = tied.join("/");
                        if transpose || rows.len() == 1 {
                            format!("best layer {at} ({top})")
                        } else {
                            format!("{name} → {at} ({top})")
                        }
                    })
                    .collect();
                let what = if transpose || rows.len() == 1 {
                    String::new()
                } else {
                    format!("best layer of `{}` for each layer of `{}`: ", grid.child, grid.parent)
                };
                let _ = writeln!(md, "{metric}, {method}: {what}{}.\n", bests.join(", "));
                if Some(metric) == first.metrics.first() {
                    let _ = writeln!(
                        summary,
                        "layer grid {} → {} ({metric} at {anchors} anchors, {method}): {}",
                        grid.parent,
                        grid.child,
                        bests.join(", ")
                    );
                }
            }
        }
    }
}
