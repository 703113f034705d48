//! `text-image` draws real glyphs where the text is: ink spans, sizes, fonts, colours, noise,
//! rotation and blur, measured on the pixels.

mod common;

use common::{image, render, vision};
use commute_sdk::{Image, Value};

/// Pixels darker than mid-grey, per column and per row, of a grey image.
fn ink_profile(img: &Image) -> (Vec<usize>, Vec<usize>) {
    assert_eq!(img.channels, 1);
    let (w, h) = (img.width as usize, img.height as usize);
    let (mut columns, mut rows) = (vec![0; w], vec![0; h]);
    for (i, &p) in img.pixels.iter().enumerate() {
        if p < 128 {
            columns[i % w] += 1;
            rows[i / w] += 1;
        }
    }
    (columns, rows)
}

/// First and last index with ink.
fn span(profile: &[usize]) -> (usize, usize) {
    let first = profile.iter().position(|&n| n > 0).expect("some ink");
    let last = profile.iter().rposition(|&n| n > 0).expect("some ink");
    (first, last)
}

fn one(params: &str, text: &str) -> Image {
    image(&render(params, &[text])[0]).clone()
}

#[test]
fn ink_lies_inside_the_padding_and_grows_with_the_text() {
    let short = one("", "cat");
    let long = one("", "catalogue");
    assert_eq!(short.height, long.height);
    // DejaVu's line box at 32 px is 37.25 px: 38 rows plus 2 × 8 of padding.
    assert_eq!(short.height, 54);
    for img in [&short, &long] {
        let (columns, rows) = ink_profile(img);
        let (left, right) = span(&columns);
        let (top, bottom) = span(&rows);
        assert!((8..=11).contains(&left), "left ink at {left}");
        assert!(
            right + 8 < img.width as usize && right + 14 > img.width as usize,
            "right ink at {right} of {}",
            img.width
        );
        // Lower-case letters without descenders: ink from the ascender of `t`/`l` to the baseline.
        assert!(top >= 8 && bottom <= 46, "rows {top}..={bottom}");
    }
    let width = |img: &Image| {
        let (l, r) = span(&ink_profile(img).0);
        r - l + 1
    };
    let (ws, wl) = (width(&short), width(&long));
    assert!(wl as f32 > 2.5 * ws as f32, "cat {ws} px, catalogue {wl} px");
    // Twice the size, twice the ink span.
    let big = width(&one("size = 64.0", "catalogue"));
    assert!((1.9..2.1).contains(&(big as f32 / wl as f32)), "{big} vs {wl}");
}

#[test]
fn a_descender_goes_below_the_baseline() {
    let (_, rows_a) = ink_profile(&one("", "a"));
    let (_, rows_g) = ink_profile(&one("", "g"));
    let (top_a, bottom_a) = span(&rows_a);
    let (top_g, bottom_g) = span(&rows_g);
    assert!(bottom_g >= bottom_a + 5, "g ends at row {bottom_g}, a at {bottom_a}");
    assert!(top_g.abs_diff(top_a) <= 1, "x-height rows {top_a} and {top_g}");
}

#[test]
fn empty_text_is_paper_only_and_heights_can_be_fixed() {
    let empty = one("", "");
    assert_eq!((empty.width, empty.height, empty.channels), (16, 54, 1));
    assert!(empty.pixels.iter().all(|&p| p == 255));
    let no_padding = one("padding = 0", "");
    assert_eq!((no_padding.width, no_padding.height), (1, 38));
    let tall = one("height = 100", "Hx");
    assert_eq!(tall.height, 100);
    let (_, rows) = ink_profile(&tall);
    let (top, bottom) = span(&rows);
    assert!(top.abs_diff(100 - bottom) <= 12, "the line is centred: rows {top}..={bottom}");
    // Control characters are drawn as spaces.
    assert_eq!(one("", "a\tb").width, one("", "a b").width);
}

#[test]
fn mono_advances_every_character_equally_and_fonts_differ() {
    assert_eq!(one("font = \"mono\"", "iiii").width, one("font = \"mono\"", "MMMM").width);
    assert!(one("", "iiii").width * 2 < one("", "MMMM").width);
    let sans = one("", "Hamburg");
    let serif = one("font = \"serif\"", "Hamburg");
    let bold = one("bold = true", "Hamburg");
    assert_ne!(sans.pixels, serif.pixels);
    let dark = |img: &Image| img.pixels.iter().filter(|&&p| p < 128).count();
    assert!(dark(&bold) as f32 > 1.3 * dark(&sans) as f32, "bold {} vs regular {}", dark(&bold), dark(&sans));
}

#[test]
fn rendering_is_deterministic_and_noise_follows_the_seed_and_the_text() {
    let params = "noise = 10.0\npaper = [200, 200, 200]\nseed = 5";
    let a = render(params, &["word", "other"]);
    assert_eq!(a, render(params, &["word", "other"]));
    // The same text gets the same noise alone or in any batch position.
    assert_eq!(a[0], render(params, &["word"])[0]);
    let reseeded = render("noise = 10.0\npaper = [200, 200, 200]\nseed = 6", &["word"]);
    assert_ne!(a[0], reseeded[0]);
    // The top padding is paper plus noise of the requested deviation.
    let img = image(&a[0]);
    let band = &img.pixels[..img.width as usize * 6];
    let mean = band.iter().map(|&p| f64::from(p)).sum::<f64>() / band.len() as f64;
    let std = (band.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / band.len() as f64).sqrt();
    assert!((mean - 200.0).abs() < 2.0 && (std - 10.0).abs() < 1.5, "mean {mean}, std {std}");
    assert!(one("", "word").pixels[..100].iter().all(|&p| p == 255), "no noise by default");
}

#[test]
fn rgb_images_use_the_ink_and_paper_colours() {
    let img = one("mode = \"rgb\"\nink = [200, 20, 10]\npaper = [0, 0, 80]", "Ink");
    assert_eq!(img.channels, 3);
    assert_eq!(img.pixels.len(), (img.width * img.height * 3) as usize);
    assert_eq!(&img.pixels[..3], [0, 0, 80]);
    let inked = img.pixels.chunks_exact(3).filter(|p| *p == [200, 20, 10]).count();
    assert!(inked > 50, "{inked} pixels of pure ink");
    let grey = one("ink = [200, 20, 10]\npaper = [0, 0, 80]", "Ink");
    assert_eq!((grey.channels, grey.pixels[0]), (1, 9), "the luma of the paper");
}

#[test]
fn rotation_tilts_the_line_and_blur_softens_it() {
    let flat = one("", "horizon");
    let tilted = one("rotation = 10.0", "horizon");
    assert!(tilted.width > flat.width && tilted.height > flat.height + 15);
    // Counter-clockwise: the ink of the right half sits higher than that of the left half.
    let w = tilted.width as usize;
    let centre_row = |x0: usize, x1: usize| {
        let (mut sum, mut n) = (0usize, 0usize);
        for (i, &p) in tilted.pixels.iter().enumerate() {
            if p < 128 && (x0..x1).contains(&(i % w)) {
                sum += i / w;
                n += 1;
            }
        }
        sum as f32 / n as f32
    };
    assert!(centre_row(w / 2, w) + 8.0 < centre_row(0, w / 2));
    let blurred = one("blur = 1.5", "horizon");
    let black = |img: &Image| img.pixels.iter().filter(|&&p| p < 20).count();
    assert!(black(&blurred) * 3 < black(&flat), "{} vs {}", black(&blurred), black(&flat));
    let ink = |img: &Image| img.pixels.iter().map(|&p| 255 - u64::from(p)).sum::<u64>();
    let (a, b) = (ink(&flat) as f64, ink(&blurred) as f64);
    assert!((a - b).abs() / a < 0.02, "blur keeps the ink: {a} vs {b}");
}

#[test]
fn texts_too_long_to_draw_fail_alone() {
    let long = "w".repeat(1000);
    let items = vision()
        .call_items("text-image", "", &[Value::text(long), Value::text("ok")])
        .expect("the call runs");
    let err = items[0].as_ref().expect_err("too wide");
    assert!(err.contains("too long") && err.contains("16384"), "{err}");
    assert!(items[1].is_ok());
    let err = vision().open("text-image", "rotation = 60.0").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("rotation"), "{err}");
}
