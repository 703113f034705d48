//! SVG line charts for reports: series of (x, mean) points with a shaded spread, optional log x axis,
//! dashed series (permutation nulls) and a legend. Pure string building; the output is a standalone
//! SVG document.

use std::fmt::Write as _;

/// Colour-blind-safe palette (Okabe & Ito); series take colours in this order, cycling.
pub const PALETTE: [&str; 8] =
    ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

/// One point of a series: the mean over repeats and the spread drawn around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// Position on the x axis.
    pub x: f64,
    /// The value drawn on the line, usually the mean over repeats (a NaN point is skipped; the line
    /// joins its neighbours).
    pub y: f64,
    /// Lower edge of the shaded band (NaN: no band at this point).
    pub low: f64,
    /// Upper edge of the shaded band (NaN: no band at this point).
    pub high: f64,
}

impl SeriesPoint {
    /// A point without spread.
    pub fn new(x: f64, mean: f64) -> Self {
        Self { x, y: mean, low: f64::NAN, high: f64::NAN }
    }

    /// A point with a min–max band.
    pub fn with_range(x: f64, mean: f64, min: f64, max: f64) -> Self {
        Self { x, y: mean, low: min, high: max }
    }

    /// A point with a ±std band.
    pub fn with_std(x: f64, mean: f64, std: f64) -> Self {
        Self { x, y: mean, low: mean - std, high: mean + std }
    }
}

/// A named line of a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in any x order (drawn sorted by x).
    pub points: Vec<SeriesPoint>,
    /// Draw the line dashed (used for permutation nulls). A dashed series takes the colour of the
    /// solid series before it, so a method and its null read as one.
    pub dashed: bool,
}

/// A line chart (720 × 420 pixels; the y range fits the lines and bands).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis.
    pub y_label: String,
    /// Logarithmic x axis (for anchor counts 5…1000); points with x ≤ 0 are then skipped.
    pub log_x: bool,
    /// Lines, coloured from [`PALETTE`] in order.
    pub series: Vec<Series>,
}

/// Size of the SVG in pixels.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;

/// The opening tag every chart of the report starts with: its size, a matching view box, and the
/// report's font.
pub fn svg_open(w: impl std::fmt::Display, h: impl std::fmt::Display) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    )
}

/// Escapes text for XML content and attribute values.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Tick values for a linear axis over `[lo, hi]`: multiples of a 1-2-5 step, about `target` of them.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return if lo.is_finite() { vec![lo] } else { Vec::new() };
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let exp = raw.log10().floor() as i32;
    let mag = 10f64.powi(exp);
    let m = [1.0, 2.0, 5.0, 10.0].into_iter().find(|&m| m * mag >= raw).unwrap_or(10.0);
    let step = m * mag;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // i · m · 10^exp, divided rather than multiplied for negative exponents so 0.6 prints as 0.6.
    let value = |i: i64| if exp < 0 { i as f64 * m / 10f64.powi(-exp) } else { i as f64 * step };
    (first..=last).map(value).collect()
}

/// Tick values for a log axis over `[lo, hi]` (both > 0): 1-2-5 within each decade when the range
/// spans at most three decades, otherwise powers of ten only.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mantissas: &[f64] = if d1 - d0 <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let eps = 1e-9;
    (d0..=d1)
        .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
        .filter(|&v| v >= lo * (1.0 - eps) && v <= hi * (1.0 + eps))
        .collect()
}

/// Short tick label: integers without decimals, others with up to 3 significant decimals.
fn tick_label(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Palette colours per series: solid series in palette order; a dashed one repeats the colour of
/// the solid series before it.
fn series_colours(series: &[Series]) -> Vec<&'static str> {
    let mut solid = 0;
    let mut last = PALETTE[0];
    series
        .iter()
        .map(|s| {
            if !s.dashed || solid == 0 {
                last = PALETTE[solid % PALETTE.len()];
                solid += 1;
            }
            last
        })
        .collect()
}

/// Renders `spec` as a standalone SVG document.
pub fn line_chart(spec: &Chart) -> String {
    let (left, top, bottom) = (64.0, 40.0, 52.0);
    // The legend sits right of the plot: as wide as its longest name (about 6.6 px a character
    // at 12 px), one 20 px row per series; the plot keeps its size and the canvas grows.
    let longest = spec.series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let right = f64::max(170.0, 14.0 + 30.0 + 6.6 * longest as f64 + 8.0);
    let (pw, ph) = (WIDTH - 64.0 - 170.0, HEIGHT - top - bottom);
    let w = left + pw + right;
    let h = f64::max(HEIGHT, top + 20.0 * spec.series.len() as f64 + 10.0);
    let log = spec.log_x;
    let x_ok = |x: f64| x.is_finite() && (!log || x > 0.0);
    let tx = |x: f64| if log { x.log10() } else { x };

    let pts = || spec.series.iter().flat_map(|s| s.points.iter()).filter(|p| x_ok(p.x));
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in pts() {
        if p.y.is_finite() || (p.low.is_finite() && p.high.is_finite()) {
            x_lo = x_lo.min(p.x);
            x_hi = x_hi.max(p.x);
        }
        for v in [p.y, p.low, p.high] {
            if v.is_finite() {
                y_lo = y_lo.min(v);
                y_hi = y_hi.max(v);
            }
        }
    }
    if !x_lo.is_finite() {
        (x_lo, x_hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if x_hi <= x_lo {
        (x_lo, x_hi) = if log { (x_lo / 2.0, x_hi * 2.0) } else { (x_lo - 1.0, x_hi + 1.0) };
    }
    if !y_lo.is_finite() {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    let pad = if y_hi > y_lo { 0.05 * (y_hi - y_lo) } else { 0.5 };
    (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
    let (ax0, ax1) = (tx(x_lo), tx(x_hi));
    let px = |x: f64| left + (tx(x) - ax0) / (ax1 - ax0) * pw;
    let py = |y: f64| top + (1.0 - (y - y_lo) / (y_hi - y_lo)) * ph;

    let mut s = String::new();
    let _ = writeln!(s, "{}", svg_open(w, h));
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        left + pw / 2.0,
        escape_xml(&spec.title)
    );

    // Axes, grid and ticks.
    let x_ticks = if log { log_ticks(x_lo, x_hi) } else { linear_ticks(x_lo, x_hi, 6) };
    let y_ticks = linear_ticks(y_lo, y_hi, 6);
    let _ = writeln!(s, r##"<g class="grid" stroke="#e5e5e5" stroke-width="1">"##);
    for &t in &x_ticks {
        let _ = writeln!(s, r#"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{1:.1}"/>"#, px(t), top + ph);
    }
    for &t in &y_ticks {
        let _ =
            writeln!(s, r#"<line x1="{left:.1}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}"/>"#, py(t), left + pw);
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<rect x="{left:.1}" y="{top:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(s, r#"<g class="x-ticks" text-anchor="middle">"#);
    for &t in &x_ticks {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, px(t), top + ph + 16.0, tick_label(t));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r#"<g class="y-ticks" text-anchor="end">"#);
    for &t in &y_ticks {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, left - 6.0, py(t) + 4.0, tick_label(t));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        top + ph + bottom - 12.0,
        escape_xml(&spec.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{0:.1}" text-anchor="middle" transform="rotate(-90 16 {0:.1})">{1}</text>"#,
        top + ph / 2.0,
        escape_xml(&spec.y_label)
    );

    // Series: band, line, markers.
    let colours = series_colours(&spec.series);
    for (series, colour) in spec.series.iter().zip(&colours) {
        let mut points: Vec<SeriesPoint> = series.points.iter().copied().filter(|p| x_ok(p.x)).collect();
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        let _ = writeln!(s, r#"<g class="series" data-name="{}">"#, escape_xml(&series.name));
        let band: Vec<&SeriesPoint> =
            points.iter().filter(|p| p.low.is_finite() && p.high.is_finite()).collect();
        if band.len() >= 2 {
            let mut d = String::new();
            for (i, p) in band.iter().enumerate() {
                let _ = write!(d, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, px(p.x), py(p.high));
            }
            for p in band.iter().rev() {
                let _ = write!(d, "L{:.1},{:.1} ", px(p.x), py(p.low));
            }
            let _ = writeln!(
                s,
                r#"<path class="band" d="{}Z" fill="{colour}" fill-opacity="0.18" stroke="none"/>"#,
                d
            );
        }
        let line: Vec<&SeriesPoint> = points.iter().filter(|p| p.y.is_finite()).collect();
        let mut d = String::new();
        for (i, p) in line.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, px(p.x), py(p.y));
        }
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<path class="line" d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#
        );
        for p in &line {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#, px(p.x), py(p.y));
        }
        let _ = writeln!(s, "</g>");
    }

    // Legend.
    let lx = left + pw + 14.0;
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (n, (series, colour)) in spec.series.iter().zip(&colours).enumerate() {
        let y = top + 10.0 + 20.0 * n as f64;
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            lx + 24.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 30.0,
            y + 4.0,
            escape_xml(&series.name)
        );
    }
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that tags are balanced and properly nested; returns the element names in order.
    fn check_xml(doc: &str) -> Result<Vec<String>, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if text.contains('>') {
                return Err(format!("stray '>' in {text:?}"));
            }
            let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("'<' inside tag {tag:?}"));
            }
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in {tag:?}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(top) if top == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
                names.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if stack.is_empty() {
            Ok(names)
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    fn sample() -> Chart {
        let anchors = [5.0, 10.0, 25.0, 50.0, 100.0, 500.0, 1000.0];
        Chart {
            title: "P@1 vs anchors <audio & notes>".into(),
            x_label: "anchors".into(),
            y_label: "P@1".into(),
            log_x: true,
            series: vec![
                Series {
                    name: "functional \"λ=1\"".into(),
                    points: anchors
                        .iter()
                        .map(|&a| SeriesPoint::with_std(a, (a / 1000.0f64).sqrt(), 0.05))
                        .collect(),
                    dashed: false,
                },
                Series {
                    name: "procrustes".into(),
                    points: anchors
                        .iter()
                        .map(|&a| {
                            SeriesPoint::with_range(
                                a,
                                if a == 50.0 { f64::NAN } else { a / 2000.0 },
                                0.0,
                                a / 1000.0,
                            )
                        })
                        .collect(),
                    dashed: false,
                },
                Series {
                    name: "permutation null".into(),
                    points: anchors.iter().map(|&a| SeriesPoint::new(a, 0.001)).collect(),
                    dashed: true,
                },
            ],
        }
    }

    #[test]
    fn output_is_balanced_with_one_line_per_series() {
        let svg = line_chart(&sample());
        let names = check_xml(&svg).unwrap();
        assert_eq!(names[0], "svg");
        assert_eq!(svg.matches(r#"class="line""#).count(), 3);
        assert_eq!(svg.matches(r#"class="band""#).count(), 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "the null's line and its legend entry");
        assert!(svg.contains("&lt;audio &amp; notes&gt;") && svg.contains("&quot;λ=1&quot;"));
        // Two methods, two colours; the dashed null takes the colour of the method before it.
        for colour in &PALETTE[..2] {
            assert!(svg.contains(colour));
        }
        assert!(!svg.contains(PALETTE[2]));
        assert!(check_xml("<a><b></a></b>").is_err());
    }

    #[test]
    fn nan_points_are_skipped_without_breaking_the_path() {
        let svg = line_chart(&sample());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let second = svg.split(r#"<path class="line" d=""#).nth(2).unwrap();
        let d = &second[..second.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 1);
        assert_eq!(d.matches('L').count(), 5, "7 points, one NaN: 6 vertices");
    }

    #[test]
    fn log_ticks_follow_1_2_5_or_decades() {
        assert_eq!(log_ticks(5.0, 1000.0), vec![5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
        assert_eq!(log_ticks(1.0, 1e6), vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]);
        let svg = line_chart(&sample());
        for label in [">5<", ">10<", ">20<", ">50<", ">100<", ">200<", ">500<", ">1000<"] {
            assert!(svg.contains(label), "{label}");
        }
        assert_eq!(linear_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    }

    #[test]
    fn empty_and_degenerate_charts_still_render() {
        let empty = line_chart(&Chart::default());
        assert!(check_xml(&empty).is_ok());
        let one = Chart {
            series: vec![Series {
                name: "x".into(),
                points: vec![SeriesPoint::new(3.0, f64::NAN), SeriesPoint::new(-1.0, 2.0)],
                dashed: false,
            }],
            log_x: true,
            ..Chart::default()
        };
        let svg = line_chart(&one);
        assert!(check_xml(&svg).is_ok() && !svg.contains("NaN"));
    }

    #[test]
    fn a_null_shares_the_colour_of_its_method() {
        let series = |name: &str, dashed: bool| Series {
            name: name.into(),
            points: vec![SeriesPoint::new(1.0, 0.5)],
            dashed,
        };
        let colours = series_colours(&[
            series("a", false),
            series("a null", true),
            series("b", false),
            series("b null", true),
        ]);
        assert_eq!(colours, [PALETTE[0], PALETTE[0], PALETTE[1], PALETTE[1]]);
    }

    #[test]
    fn the_legend_grows_to_fit_long_names_and_many_series() {
        let series: Vec<Series> = (0..24)
            .map(|i| Series {
                name: format!("functional (shuffle-operators = true) {i}"),
                points: vec![SeriesPoint::new(1.0, 0.5)],
                dashed: i % 2 == 1,
            })
            .collect();
        let chart = Chart { series, ..sample() };
        let svg = line_chart(&chart);
        let number = |attr: &str| -> f64 {
            let start = svg.find(&format!("{attr}=\"")).expect("attribute") + attr.len() + 2;
            let end = start + svg[start..].find('"').expect("closing quote");
            svg[start..end].parse().expect("a number")
        };
        // 41 characters at about 6.6 px beside a 486 px plot; 24 rows of 20 px below a 40 px top.
        assert!(number("width") > 64.0 + 486.0 + 6.6 * 41.0, "width {}", number("width"));
        assert!(number("height") >= 40.0 + 20.0 * 24.0, "height {}", number("height"));
        assert!(check_xml(&svg).is_ok());
    }
}
