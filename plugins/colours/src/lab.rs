//! sRGB ↔ CIELAB (D65 white, 2° observer) and LCh, in `f64`: the colour space every function of
//! this plugin edits and measures in (lightness L* in 0–100, a*/b* roughly −128–127).

/// D65 reference white (Y = 1).
const WHITE: [f64; 3] = [0.950_47, 1.0, 1.088_83];
const DELTA: f64 = 6.0 / 29.0;

/// sRGB (each channel in 0–1) → linear RGB → XYZ.
const TO_XYZ: [[f64; 3]; 3] = [
    [0.412_456_4, 0.357_576_1, 0.180_437_5],
    [0.212_672_9, 0.715_152_2, 0.072_175_0],
    [0.019_333_9, 0.119_192_0, 0.950_304_1],
];
const FROM_XYZ: [[f64; 3]; 3] = [
    [3.240_454_2, -1.537_138_5, -0.498_531_4],
    [-0.969_266_0, 1.876_010_8, 0.041_556_0],
    [0.055_643_4, -0.204_025_9, 1.057_225_2],
];

fn linear(c: f64) -> f64 {
    if c <= 0.040_45 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn gamma(c: f64) -> f64 {
    if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

fn f(t: f64) -> f64 {
    if t > DELTA.powi(3) {
        t.cbrt()
    } else {
        t / (3.0 * DELTA * DELTA) + 4.0 / 29.0
    }
}

fn f_inv(t: f64) -> f64 {
    if t > DELTA {
        t.powi(3)
    } else {
        3.0 * DELTA * DELTA * (t - 4.0 / 29.0)
    }
}

fn apply(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

/// sRGB (channels in 0–1) → CIELAB `[L*, a*, b*]`.
pub fn to_lab(rgb: [f64; 3]) -> [f64; 3] {
    let xyz = apply(&TO_XYZ, rgb.map(linear));
    let [fx, fy, fz] = [0, 1, 2].map(|i| f(xyz[i] / WHITE[i]));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIELAB → sRGB, each channel clipped to 0–1 (a Lab colour outside the sRGB gamut is brought to
/// the nearest displayable channel values).
pub fn to_rgb(lab: [f64; 3]) -> [f64; 3] {
    let fy = (lab[0] + 16.0) / 116.0;
    let fs = [fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0];
    let xyz = [0, 1, 2].map(|i| WHITE[i] * f_inv(fs[i]));
    apply(&FROM_XYZ, xyz).map(|c| gamma(c.max(0.0)).clamp(0.0, 1.0))
}

/// CIELAB → LCh: lightness, chroma, hue angle in degrees (0–360).
pub fn to_lch(lab: [f64; 3]) -> [f64; 3] {
    let h = lab[2].atan2(lab[1]).to_degrees().rem_euclid(360.0);
    [lab[0], lab[1].hypot(lab[2]), h]
}

/// LCh → CIELAB.
pub fn from_lch(lch: [f64; 3]) -> [f64; 3] {
    let h = lch[2].to_radians();
    [lch[0], lch[1] * h.cos(), lch[1] * h.sin()]
}

/// CIE76 colour difference: the Euclidean distance in Lab.
pub fn delta_e(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn known_colours_have_their_published_lab_values() {
        assert!(close(to_lab([1.0, 1.0, 1.0]), [100.0, 0.0, 0.0], 1e-3), "{:?}", to_lab([1.0; 3]));
        assert!(close(to_lab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], 1e-9));
        // sRGB primaries (D65): the values every reference table gives, to 0.01.
        assert!(close(to_lab([1.0, 0.0, 0.0]), [53.24, 80.09, 67.20], 0.01), "{:?}", to_lab([1.0, 0.0, 0.0]));
        assert!(
            close(to_lab([0.0, 1.0, 0.0]), [87.73, -86.18, 83.18], 0.01),
            "{:?}",
            to_lab([0.0, 1.0, 0.0])
        );
        assert!(
            close(to_lab([0.0, 0.0, 1.0]), [32.30, 79.19, -107.86], 0.01),
            "{:?}",
            to_lab([0.0, 0.0, 1.0])
        );
        // A mid grey is neutral.
        let grey = to_lab([0.5, 0.5, 0.5]);
        assert!(grey[1].abs() < 1e-3 && grey[2].abs() < 1e-3 && (grey[0] - 53.39).abs() < 0.01, "{grey:?}");
    }

    #[test]
    fn conversions_invert_each_other_inside_the_gamut() {
        for r in 0..=10 {
            for g in 0..=10 {
                for b in 0..=10 {
                    let rgb = [r, g, b].map(|c| f64::from(c) / 10.0);
                    let back = to_rgb(from_lch(to_lch(to_lab(rgb))));
                    // The published 7-digit matrices invert each other to about 1e-6.
                    assert!(close(back, rgb, 1e-5), "{rgb:?} → {back:?}");
                }
            }
        }
    }

    #[test]
    fn out_of_gamut_lab_is_clipped_to_displayable_channels() {
        let rgb = to_rgb([50.0, 150.0, 0.0]);
        assert!(rgb.iter().all(|c| (0.0..=1.0).contains(c)), "{rgb:?}");
        assert_eq!(delta_e([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), 0.0);
        assert!((delta_e([0.0, 0.0, 0.0], [3.0, 4.0, 0.0]) - 5.0).abs() < 1e-12);
    }
}
