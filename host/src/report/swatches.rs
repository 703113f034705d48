//! The swatch picture of an edge with `swatches`: a few test items painted in their own colour,
//! and for each method what it retrieves for them and where the control edit lands — so that a
//! reader sees the control rather than reads it.
//!
//! One row per test item: its colour, then its colour under the pictured operator (the truth of
//! the control question); then, per method, two swatches: the colour of the child item its
//! mapped image retrieves first, and the colour of what the control query retrieves first (an
//! edited swatch is outlined; a hit — the item's own edited image — is marked ✓).

use super::plot::escape_xml;
use crate::edge_operators::{Example, SwatchColours};
use crate::runner::EdgeResult;
use std::fmt::Write as _;

/// `#rrggbb` of an sRGB colour in 0–1 (grey when it is not a number).
fn hex(rgb: [f32; 3]) -> String {
    if rgb.iter().any(|c| !c.is_finite()) {
        return "#cccccc".to_owned();
    }
    let [r, g, b] = rgb.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The picture, or `None` when the edge has no swatches or no fit recorded examples. Methods
/// are those of the first repeat at the largest anchor count, in the order of the points.
pub fn swatch_picture(edge: &EdgeResult) -> Option<String> {
    let colours: &SwatchColours = edge.swatches.as_ref()?;
    let largest = edge.points.iter().filter(|p| !p.examples.is_empty()).map(|p| p.anchors).max()?;
    let fits: Vec<(&str, &[Example])> = edge
        .points
        .iter()
        .filter(|p| p.repeat == 0 && p.anchors == largest && !p.examples.is_empty())
        .map(|p| (p.method.as_str(), p.examples.as_slice()))
        .collect();
    let items: Vec<usize> = fits.first()?.1.iter().map(|e| e.item).collect();
    // Column labels run up and to the right at 60°: room for the longest above and beside.
    let longest =
        fits.iter().map(|(m, _)| m.chars().count() + ": retrieved".len()).max().unwrap_or(0).max(14);
    let extent = 6.2 * longest as f64;
    let (cell, gap, left, top) = (26.0, 6.0, 18.0, 40.0 + 0.87 * extent);
    let column_w = 2.0 * cell + 3.0 * gap;
    let w = (left + 2.0 * (cell + gap) + 2.0 * gap + column_w * fits.len() as f64 + 0.5 * extent + 20.0)
        .max(460.0);
    let h = top + (cell + gap) * items.len() as f64 + 56.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>"##
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="18" font-size="13">{} → {}: {} anchors, first repeat; operator `{}`</text>"#,
        escape_xml(&edge.parent),
        escape_xml(&edge.child),
        largest,
        escape_xml(&colours.operator)
    );
    let label = |svg: &mut String, x: f64, text: &str| {
        let _ = write!(
            svg,
            r#"<text transform="translate({:.1},{:.1}) rotate(-60)">{}</text>"#,
            x + cell / 2.0,
            top - 8.0,
            escape_xml(text)
        );
    };
    label(&mut svg, left, "item");
    label(&mut svg, left + cell + gap, "edited (truth)");
    for (k, (method, _)) in fits.iter().enumerate() {
        let x = left + 2.0 * (cell + gap) + 2.0 * gap + column_w * k as f64;
        label(&mut svg, x, &format!("{method}: retrieved"));
        label(&mut svg, x + cell + gap, &format!("{method}: control"));
    }
    let rect = |svg: &mut String, x: f64, y: f64, fill: &str, outline: bool| {
        let stroke = if outline { r#" stroke="black" stroke-width="2""# } else { r##" stroke="#999""## };
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{cell}" height="{cell}" fill="{fill}"{stroke}/>"#
        );
    };
    for (r, &item) in items.iter().enumerate() {
        let y = top + (cell + gap) * r as f64;
        rect(&mut svg, left, y, &hex(colours.items[item]), false);
        rect(&mut svg, left + cell + gap, y, &hex(colours.edited[item]), true);
        for (k, (_, examples)) in fits.iter().enumerate() {
            let Some(e) = examples.iter().find(|e| e.item == item) else { continue };
            let x = left + 2.0 * (cell + gap) + 2.0 * gap + column_w * k as f64;
            rect(&mut svg, x, y, &hex(colours.items[e.retrieved]), false);
            let (edited, of) = e.control;
            let fill = if edited { colours.edited[of] } else { colours.items[of] };
            rect(&mut svg, x + cell + gap, y, &hex(fill), edited);
            if edited && of == item {
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" font-size="14" fill="white" stroke="black" stroke-width="0.5">✓</text>"#,
                    x + cell + gap + 7.0,
                    y + 18.0
                );
            }
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{left}" y="{:.1}">retrieved: the colour of the name found first; control: what the name's</text><text x="{left}" y="{:.1}">edit, carried through the map, finds (outlined: an edited patch; ✓ the right one)</text>"#,
        h - 30.0,
        h - 14.0
    );
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_and_missing_ones_grey() {
        assert_eq!(hex([1.0, 0.0, 0.5]), "#ff0080");
        assert_eq!(hex([f32::NAN, 0.0, 0.0]), "#cccccc");
        assert_eq!(hex([2.0, -1.0, 0.0]), "#ff0000");
    }
}
