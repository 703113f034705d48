//! The decoded-notes picture of a frame-level edge with a decoder: the first repeat's first test
//! item as piano rolls — its true notes, then what each method's mapped frames decode into at the
//! largest anchor count (and the references) — so a reader sees what a note F1 means.
//!
//! One panel per row, time across and pitch up, on a shared scale: the true notes in grey behind
//! every panel, the decoded notes in colour over them.

use super::plot::{escape_xml, svg_open, PALETTE};
use crate::runner::EdgeResult;
use commute_sdk::Score;
use std::fmt::Write as _;

/// The picture, or `None` when the edge decoded no example.
pub fn decoded_picture(edge: &EdgeResult) -> Option<String> {
    let example = edge.example.as_ref()?;
    let largest = edge.points.iter().filter(|p| p.decoded.is_some()).map(|p| p.anchors).max()?;
    let mut rows: Vec<(String, &Score)> = vec![("true notes".to_owned(), &example.truth)];
    for p in edge.points.iter().filter(|p| p.repeat == 0 && p.anchors == largest) {
        if let Some(s) = &p.decoded {
            rows.push((format!("{} ({} anchors)", p.method, p.anchors), s));
        }
    }
    let notes = rows.iter().flat_map(|(_, s)| &s.notes);
    let end = notes.clone().map(|n| f64::from(n.end_s())).fold(1.0, f64::max);
    let lo = notes.clone().map(|n| n.pitch).min().unwrap_or(60).saturating_sub(2);
    let hi = notes.map(|n| n.pitch).max().unwrap_or(72).saturating_add(2).min(127);
    let (left, width, panel, gap, top) = (260.0, 560.0, 90.0, 14.0, 28.0);
    let height = top + rows.len() as f64 * (panel + gap) + 24.0;
    let x = |t: f64| left + width * t / end;
    let key = f64::from(hi - lo + 1);
    let mut svg = String::new();
    svg.push_str(&svg_open(left + width + 20.0, height));
    let _ = write!(
        svg,
        r#"<text x="{left}" y="16">item {} of the first repeat's test items: time 0–{end:.1} s across, MIDI pitch {lo}–{hi} up</text>"#,
        example.item
    );
    for (r, (label, score)) in rows.iter().enumerate() {
        let y0 = top + r as f64 * (panel + gap);
        let y = |pitch: u8| y0 + panel * f64::from(hi - pitch) / key;
        let _ = write!(
            svg,
            r##"<rect x="{left}" y="{y0}" width="{width}" height="{panel}" fill="#fafafa" stroke="#999"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left - 8.0,
            y0 + panel / 2.0 + 4.0,
            escape_xml(label)
        );
        let colour = if r == 0 { "#555555" } else { PALETTE[(r - 1) % PALETTE.len()] };
        let mut draw = |s: &Score, fill: &str, opacity: f64| {
            for n in s.notes.iter().filter(|n| (lo..=hi).contains(&n.pitch)) {
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" fill-opacity="{opacity}"/>"#,
                    x(f64::from(n.onset_s)),
                    y(n.pitch),
                    (x(f64::from(n.end_s())) - x(f64::from(n.onset_s))).max(1.0),
                    (panel / key).max(1.0)
                );
            }
        };
        if r > 0 {
            draw(&example.truth, "#bbbbbb", 0.6);
        }
        draw(score, colour, 0.85);
    }
    svg.push_str("</svg>");
    Some(svg)
}
