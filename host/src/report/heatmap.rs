//! SVG heatmaps for reports: a matrix of values as coloured cells with the value written in each,
//! labelled rows and columns, and the best cell of each row outlined. Pure string building; the
//! output is a standalone SVG document.

use super::plot::escape_xml;
use std::fmt::Write as _;

/// A heatmap to draw.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// Title above the cells.
    pub title: String,
    /// What the rows are (left of the row labels).
    pub row_label: String,
    /// What the columns are (under the column labels).
    pub col_label: String,
    /// One label per row, top to bottom.
    pub rows: Vec<String>,
    /// One label per column, left to right.
    pub cols: Vec<String>,
    /// Values, `rows × cols`, row-major; NaN draws an empty cell.
    pub values: Vec<f64>,
}

const CELL: f64 = 56.0;
const LEFT: f64 = 110.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;

/// The colour of `t` in 0..=1, from pale to deep blue.
fn colour(t: f64) -> String {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let (a, b) = ([247.0, 251.0, 255.0], [8.0, 48.0, 107.0]);
    let c: Vec<u8> = (0..3).map(|i| (a[i] + (b[i] - a[i]) * t).round() as u8).collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The index of the largest finite value of `row`.
pub fn best(row: &[f64]) -> Option<usize> {
    row.iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .fold(None, |best: Option<(usize, f64)>, (i, &v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

/// The heatmap as an SVG document. Colours span the matrix's own range of values.
pub fn heatmap(spec: &Heatmap) -> String {
    let (nr, nc) = (spec.rows.len(), spec.cols.len());
    let width = LEFT + CELL * nc as f64 + 20.0;
    let height = TOP + CELL * nr as f64 + BOTTOM;
    let finite: Vec<f64> = spec.values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut svg = String::new();
    let _ = writeln!(svg, "{}", super::plot::svg_open(width, height));
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        width / 2.0,
        escape_xml(&spec.title)
    );
    for (r, label) in spec.rows.iter().enumerate() {
        let y = TOP + CELL * (r as f64 + 0.5);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{y}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            LEFT - 8.0,
            escape_xml(label)
        );
        let row = &spec.values[r * nc..(r + 1) * nc];
        let top = best(row);
        for (c, &v) in row.iter().enumerate() {
            let (x, y0) = (LEFT + CELL * c as f64, TOP + CELL * r as f64);
            let t = (v - lo) / span;
            let fill = if v.is_finite() { colour(t) } else { "#ffffff".to_owned() };
            let stroke = if top == Some(c) {
                r##"stroke="#D55E00" stroke-width="3""##
            } else {
                r##"stroke="#dddddd""##
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{x}" y="{y0}" width="{CELL}" height="{CELL}" fill="{fill}" {stroke}/>"#
            );
            if v.is_finite() {
                let ink = if t > 0.55 { "white" } else { "black" };
                let _ = writeln!(
                    svg,
                    r#"<text x="{}" y="{}" text-anchor="middle" dominant-baseline="middle" fill="{ink}">{:.2}</text>"#,
                    x + CELL / 2.0,
                    y0 + CELL / 2.0,
                    v
                );
            }
        }
    }
    for (c, label) in spec.cols.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + CELL * (c as f64 + 0.5),
            TOP + CELL * nr as f64 + 16.0,
            escape_xml(label)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + CELL * nc as f64 / 2.0,
        height - 12.0,
        escape_xml(&spec.col_label)
    );
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        TOP + CELL * nr as f64 / 2.0,
        TOP + CELL * nr as f64 / 2.0,
        escape_xml(&spec.row_label)
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_carry_their_values_and_each_rows_best_is_outlined() {
        let svg = heatmap(&Heatmap {
            title: "a → b: p@1".to_owned(),
            row_label: "layer of a".to_owned(),
            col_label: "layer of b".to_owned(),
            rows: vec!["0".to_owned(), "1".to_owned()],
            cols: vec!["0".to_owned(), "1".to_owned(), "2".to_owned()],
            values: vec![0.1, 0.5, 0.2, 0.9, f64::NAN, 0.3],
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect x=").count(), 6, "one cell per value");
        assert_eq!(svg.matches("stroke=\"#D55E00\"").count(), 2, "one best cell per row");
        assert!(svg.contains(">0.90</text>") && svg.contains(">0.10</text>"));
        assert!(svg.contains("a → b: p@1"));
        // The largest value is the deepest colour, the smallest the palest.
        assert!(
            svg.contains(&format!("fill=\"{}\"", colour(1.0)))
                && svg.contains(&format!("fill=\"{}\"", colour(0.0)))
        );
    }

    #[test]
    fn the_best_of_a_row_skips_nan_and_keeps_the_first_of_ties() {
        assert_eq!(best(&[0.2, f64::NAN, 0.7, 0.7]), Some(2));
        assert_eq!(best(&[f64::NAN]), None);
        assert_eq!(best(&[]), None);
    }
}
