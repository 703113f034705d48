//! SVG horizontal bar charts for reports: one group of bars per row label, one bar per series,
//! each with a ±std whisker. Used for the tree analyses (shares of variance, edit movements).

use super::plot::{escape_xml, PALETTE};
use std::fmt::Write as _;

/// One bar: a mean and its spread (NaN draws nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Length of the bar.
    pub value: f64,
    /// Half-length of the whisker (NaN or 0: none).
    pub std: f64,
}

/// A bar chart: `rows` groups, each with one bar per series (`values[series][row]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Label under the value axis.
    pub x_label: String,
    /// One label per group, top to bottom.
    pub rows: Vec<String>,
    /// Series names (legend), coloured from [`PALETTE`] in order.
    pub series: Vec<String>,
    /// `values[s][r]`: series s in group r.
    pub values: Vec<Vec<Bar>>,
}

/// Renders the chart. The value axis spans 0 to the largest bar end (or down to the smallest
/// negative one), padded by 5 %.
pub fn bar_chart(spec: &BarChart) -> String {
    let label_w = 10.0 + 6.6 * spec.rows.iter().map(|r| r.chars().count()).max().unwrap_or(0) as f64;
    let legend_w = 44.0 + 6.6 * spec.series.iter().map(|s| s.chars().count()).max().unwrap_or(0) as f64;
    let (top, bottom, pw) = (40.0, 52.0, 420.0);
    let bar_h = 14.0;
    let group_h = bar_h * spec.series.len().max(1) as f64 + 10.0;
    let ph = group_h * spec.rows.len().max(1) as f64;
    let (w, h) = (
        label_w + pw + 20.0 + legend_w,
        (top + ph + bottom).max(top + 20.0 * spec.series.len() as f64 + 10.0),
    );
    let ends = spec.values.iter().flatten().flat_map(|b| {
        let s = if b.std.is_finite() { b.std } else { 0.0 };
        [b.value - s, b.value + s]
    });
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in ends.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let px = |v: f64| label_w + (v - lo) / (hi - lo) * pw;

    let mut s = String::new();
    let _ = writeln!(s, "{}", super::plot::svg_open(format!("{w:.0}"), format!("{h:.0}")));
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{w:.0}" height="{h:.0}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        label_w + pw / 2.0,
        escape_xml(&spec.title)
    );
    for t in super::plot::linear_ticks(lo, hi, 6) {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/>"##,
            top + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + ph + 16.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#333"/>"##,
        px(0.0),
        top + ph
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        label_w + pw / 2.0,
        top + ph + 38.0,
        escape_xml(&spec.x_label)
    );
    for (r, label) in spec.rows.iter().enumerate() {
        let y0 = top + r as f64 * group_h + 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y0 + group_h / 2.0,
            escape_xml(label)
        );
        for (k, series) in spec.values.iter().enumerate() {
            let Some(bar) = series.get(r).filter(|b| b.value.is_finite()) else { continue };
            let y = y0 + k as f64 * bar_h;
            let (a, b) = (px(0.0).min(px(bar.value)), px(0.0).max(px(bar.value)));
            let colour = PALETTE[k % PALETTE.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{a:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {:.3}</title></rect>"#,
                (b - a).max(0.5),
                bar_h - 2.0,
                escape_xml(&spec.series[k.min(spec.series.len().saturating_sub(1))]),
                bar.value
            );
            if bar.std.is_finite() && bar.std > 0.0 {
                let ym = y + (bar_h - 2.0) / 2.0;
                let _ = writeln!(
                    s,
                    r##"<line x1="{:.1}" y1="{ym:.1}" x2="{:.1}" y2="{ym:.1}" stroke="#222"/>"##,
                    px(bar.value - bar.std),
                    px(bar.value + bar.std)
                );
            }
        }
    }
    let lx = label_w + pw + 20.0;
    for (k, name) in spec.series.iter().enumerate() {
        let y = top + 20.0 * k as f64;
        let colour = PALETTE[k % PALETTE.len()];
        let _ = writeln!(s, r#"<rect x="{lx:.1}" y="{y:.1}" width="24" height="12" fill="{colour}"/>"#);
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 30.0, y + 10.0, escape_xml(name));
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(t: f64) -> String {
    let r = (t * 1000.0).round() / 1000.0;
    if r == 0.0 {
        "0".to_owned()
    } else {
        format!("{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> BarChart {
        BarChart {
            title: "shares".into(),
            x_label: "R²".into(),
            rows: vec!["notes".into(), "loudness & more".into()],
            series: vec!["explained".into(), "readable".into()],
            values: vec![
                vec![Bar { value: 0.5, std: 0.1 }, Bar { value: -0.2, std: 0.0 }],
                vec![Bar { value: 0.9, std: f64::NAN }, Bar { value: f64::NAN, std: 0.0 }],
            ],
        }
    }

    #[test]
    fn every_finite_bar_is_drawn_in_its_series_colour_with_escaped_labels() {
        let svg = bar_chart(&chart());
        assert_eq!(svg.matches("<rect x=").count() - 1 - 2, 3, "3 finite bars (+ background, 2 legend keys)");
        assert_eq!(svg.matches(PALETTE[0]).count(), 3, "two bars and a legend key");
        assert_eq!(svg.matches(PALETTE[1]).count(), 2, "one bar (the NaN is skipped) and a legend key");
        assert!(svg.contains("loudness &amp; more") && !svg.contains("loudness & more"));
        assert_eq!(svg.matches("stroke=\"#222\"").count(), 1, "one whisker: only the bar with a spread");
    }

    #[test]
    fn negative_bars_extend_the_axis_left_of_zero() {
        let svg = bar_chart(&chart());
        // The zero line is not at the left edge of the plot when a bar is negative.
        let zero = svg.lines().find(|l| l.contains("stroke=\"#333\"")).unwrap();
        let x: f64 = zero.split("x1=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let label_w = 10.0 + 6.6 * "loudness & more".chars().count() as f64;
        assert!(x > label_w + 10.0, "zero at {x}, plot starts at {label_w}");
    }
}
