//! `speak` on the real eSpeak NG library: the audio of a text depends on the text and the voice
//! alone (not on what was spoken before, nor on the instance), the parameters do what they say,
//! and bad text is an item error that leaves the rest of the batch alone.

mod common;

use common::{call, samples, speech};
use commute_sdk::Value;

const DOOR: &str = "Open the door and turn on the light, please.";
const FOX: &str = "The quick brown fox jumps over the lazy dog.";

fn seconds(v: &Value) -> f64 {
    let a = v.as_audio().expect("audio");
    a.samples.len() as f64 / f64::from(a.sample_rate)
}

/// The median fundamental frequency (50–400 Hz) over loud 30 ms frames, YIN-style: the first
/// lag whose cumulative-mean-normalised squared difference is a local minimum below 0.3.
fn median_f0(x: &[f32], rate: u32) -> f64 {
    let r = f64::from(rate);
    let (frame, hop) = ((0.03 * r) as usize, (0.01 * r) as usize);
    let (min_lag, max_lag) = ((r / 400.0) as usize, (r / 50.0) as usize);
    let peak = x.iter().fold(0f32, |m, s| m.max(s.abs()));
    let mut f0s = Vec::new();
    let mut start = 0;
    while start + frame + max_lag < x.len() {
        let f = &x[start..start + frame];
        start += hop;
        if (f.iter().map(|v| v * v).sum::<f32>() / frame as f32).sqrt() < 0.1 * peak {
            continue;
        }
        let d: Vec<f64> = (1..=max_lag)
            .map(|lag| f.iter().zip(&x[start - hop + lag..]).map(|(a, b)| f64::from(a - b).powi(2)).sum())
            .collect();
        let mut running = 0.0;
        let normalised: Vec<f64> = d
            .iter()
            .enumerate()
            .map(|(i, v)| {
                running += v;
                v * (i + 1) as f64 / running.max(1e-12)
            })
            .collect();
        // normalised[i] is lag i + 1.
        if let Some(lag) = (min_lag..max_lag - 1).find(|&lag| {
            let (prev, here, next) = (normalised[lag - 2], normalised[lag - 1], normalised[lag]);
            here < 0.3 && here <= prev && here <= next
        }) {
            f0s.push(r / lag as f64);
        }
    }
    assert!(f0s.len() > 20, "voiced frames: {}", f0s.len());
    f0s.sort_by(f64::total_cmp);
    f0s[f0s.len() / 2]
}

#[test]
fn a_text_always_sounds_the_same() {
    let batch = [Value::text(DOOR), Value::text(FOX), Value::text(DOOR)];
    let out = call("speak", "", &batch);
    assert_eq!(samples(&out[0]), samples(&out[2]), "the same text twice in one batch");
    assert_ne!(samples(&out[0]), samples(&out[1]));
    let again = call("speak", "", &[Value::text(DOOR)]);
    assert_eq!(samples(&out[0]), samples(&again[0]), "a new instance");
    let a = out[0].as_audio().expect("audio");
    assert_eq!(a.sample_rate, 22_050);
    // About 2.5 s at 175 words a minute; peak level well inside [-1, 1].
    assert!((1.5..4.0).contains(&seconds(&out[0])), "{} s", seconds(&out[0]));
    let peak = a.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!((0.05..1.0).contains(&peak), "peak {peak}");
    // Seeded variation: same seed, same audio; another seed, other audio.
    let varied = "rate-variation = 60\npitch-variation = 30\nseed = 3";
    let v1 = call("speak", varied, &[Value::text(DOOR)]);
    let v2 = call("speak", varied, &[Value::text(DOOR)]);
    let v3 = call("speak", "rate-variation = 60\npitch-variation = 30\nseed = 4", &[Value::text(DOOR)]);
    assert_eq!(samples(&v1[0]), samples(&v2[0]));
    assert_ne!(samples(&v1[0]), samples(&v3[0]));
}

#[test]
fn rate_pitch_gap_and_sample_rate_do_what_they_say() {
    let text = [Value::text(FOX)];
    let slow = seconds(&call("speak", "rate = 120", &text)[0]);
    let fast = seconds(&call("speak", "rate = 360", &text)[0]);
    // Three times the rate: well under half the duration (pauses do not shrink with the rate).
    assert!(fast < 0.5 * slow, "rate 360: {fast:.2} s, rate 120: {slow:.2} s");
    let plain = seconds(&call("speak", "", &text)[0]);
    let gapped = seconds(&call("speak", "word-gap = 20", &text)[0]);
    // 200 ms after each of the 8 gaps between 9 words.
    assert!(gapped - plain > 1.2, "word-gap 20 added {:.2} s", gapped - plain);
    // A monotone voice at pitch 30 and 90: about 72 and 142 Hz.
    let low = call("speak", "pitch = 30\nrange = 0", &text);
    let high = call("speak", "pitch = 90\nrange = 0", &text);
    let (f_low, f_high) = (median_f0(samples(&low[0]), 22_050), median_f0(samples(&high[0]), 22_050));
    assert!(
        (60.0..90.0).contains(&f_low) && (120.0..170.0).contains(&f_high),
        "pitch 30: {f_low:.0} Hz, 90: {f_high:.0} Hz"
    );
    let at16 = call("speak", "sample-rate = 16000", &text);
    let a = at16[0].as_audio().expect("audio");
    assert_eq!(a.sample_rate, 16_000);
    assert!((seconds(&at16[0]) - plain).abs() < 1e-3);
}

#[test]
fn text_with_nothing_to_say_is_an_item_error() {
    let items = speech()
        .call_items(
            "speak",
            "",
            &[Value::text(""), Value::text("  \n "), Value::text("..."), Value::text(DOOR)],
        )
        .expect("the batch runs");
    for bad in &items[..2] {
        let e = bad.as_ref().expect_err("nothing to speak");
        assert!(e.contains("empty"), "{e}");
    }
    // Punctuation alone: eSpeak says nothing, and the error names the text.
    let e = items[2].as_ref().expect_err("no sound");
    assert!(e.contains("made no sound of the text \"...\""), "{e}");
    assert!(items[3].is_ok(), "the other item is spoken");
    let long =
        speech().call_items("speak", "max-duration-s = 0.5", &[Value::text(FOX)]).expect("the batch runs");
    let e = long[0].as_ref().expect_err("too long");
    assert!(e.contains("longer than 0.5 s"), "{e}");
    for bad in ["voice = \"fr\"", "rate = 10", "pitch = 200"] {
        assert!(speech().open("speak", bad).is_err(), "{bad}");
    }
}
