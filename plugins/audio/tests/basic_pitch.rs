//! Basic Pitch on the real model (fetched and verified through the SDK's asset store): pitches of
//! pure tones, a synthesized scale transcribed back to its notes, and the encoder's determinism,
//! batching and sample-rate independence.
//!
//! The music plugin renders the scores; it is loaded as the dynamic library cargo builds for the
//! dev-dependency (see `tests/common`).

mod common;

use common::music_call;
use commute_plugin_audio::basic_pitch::model::ASSETS;
use commute_plugin_audio::basic_pitch::{BasicPitch, Posteriorgrams};
use commute_plugin_audio::commute_plugin;
use commute_sdk::asset::AssetStore;
use commute_sdk::testing::Harness;
use commute_sdk::{Audio, AudioRef, Context, Note, Score, Value};

/// Renders scores with the music plugin's synth.
fn synth(scores: &[Value], sample_rate: u32) -> Vec<Value> {
    music_call("synth", &format!("sample-rate = {sample_rate}\ntail-s = 0.3"), scores)
}

/// The model opened directly (the public frame-level API), its assets from the asset store.
fn model() -> BasicPitch {
    let store = AssetStore::from_env();
    let mut ctx = Context { threads: 2, ..Context::default() };
    for spec in ASSETS {
        let path = store.ensure(spec).unwrap_or_else(|e| panic!("asset {}: {e}", spec.name));
        ctx.assets.insert(spec.name.to_string(), path);
    }
    BasicPitch::open(&ctx, 8).expect("the model opens")
}

fn posteriorgrams(audio: &[Value]) -> Vec<Posteriorgrams> {
    let refs: Vec<AudioRef<'_>> = audio.iter().map(|v| v.as_audio().expect("audio").as_ref()).collect();
    model().posteriorgrams(&refs).into_iter().map(|p| p.expect("posteriorgrams")).collect()
}

fn sine(hz: f64, sample_rate: u32, seconds: f64) -> Value {
    let n = (seconds * f64::from(sample_rate)) as usize;
    let samples = (0..n)
        .map(|i| (0.5 * (std::f64::consts::TAU * hz * i as f64 / f64::from(sample_rate)).sin()) as f32)
        .collect();
    Value::Audio(Audio { sample_rate, samples })
}

fn tensor(v: &Value) -> &[f32] {
    &v.as_tensor().expect("a tensor").data
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The C-major scale from C4 on a General MIDI program, one note every 0.5 s lasting 0.4 s.
fn c_major_scale(program: u8) -> Score {
    let notes = [60u8, 62, 64, 65, 67, 69, 71, 72]
        .iter()
        .enumerate()
        .map(|(i, &pitch)| Note {
            pitch,
            onset_s: 0.5 * i as f32 + 0.25,
            duration_s: 0.4,
            velocity: 100,
            program,
        })
        .collect();
    Score { notes }
}

#[test]
fn pure_tones_light_up_their_piano_keys() {
    for (hz, midi) in [(440.0, 69), (261.63, 60)] {
        let p = &posteriorgrams(&[sine(hz, 22050, 2.0)])[0];
        assert_eq!(p.frames, 172);
        let (key, _) = p.strongest_key().expect("frames");
        assert_eq!(key + 21, midi, "{hz} Hz");
        // Away from the edges the key is on in every frame; its neighbours are not.
        let k = midi - 21;
        let inner = 20..150;
        let on = inner.clone().map(|f| p.note_frame(f)[k]).fold(1.0f32, f32::min);
        let next =
            inner.clone().map(|f| p.note_frame(f)[k + 1].max(p.note_frame(f)[k - 1])).fold(0.0f32, f32::max);
        assert!(on > 0.5, "{hz} Hz: weakest frame {on}");
        assert!(next < 0.2, "{hz} Hz: neighbours up to {next}");
    }
}

#[test]
fn transcribe_recovers_a_synthesized_c_major_scale() {
    let h = Harness::new(commute_plugin());
    // A flute (nearly sinusoidal): exactly the scale, at both rates.
    let flute = c_major_scale(73);
    for rate in [22050, 44100] {
        let audio = synth(&[Value::Score(flute.clone())], rate);
        let out = h.call("transcribe", "program = 5", &audio).expect("transcribes");
        let got = out[0].as_score().expect("a score");
        let pitches: Vec<u8> = got.notes.iter().map(|n| n.pitch).collect();
        assert_eq!(pitches, [60, 62, 64, 65, 67, 69, 71, 72], "{rate} Hz: {got:?}");
        for (n, want) in got.notes.iter().zip(&flute.notes) {
            assert!((n.onset_s - want.onset_s).abs() < 0.05, "{rate} Hz: {n:?} vs {want:?}");
            // The synth's release (0.12 s) sounds after the note ends.
            assert!((0.35..0.65).contains(&n.duration_s), "{rate} Hz: {n:?}");
            assert_eq!(n.program, 5);
            assert!(n.velocity > 80, "{rate} Hz: {n:?}");
        }
    }
    // A piano, whose bright attack is rich in harmonics: the loud notes are the scale; the few
    // others are harmonics (an octave to two octaves and a third up) starting with a scale note.
    let piano = c_major_scale(0);
    let audio = synth(&[Value::Score(piano.clone())], 22050);
    let out = h.call("transcribe", "", &audio).expect("transcribes");
    let got = out[0].as_score().expect("a score");
    let (loud, quiet): (Vec<&Note>, Vec<&Note>) = got.notes.iter().partition(|n| n.velocity >= 64);
    let pitches: Vec<u8> = loud.iter().map(|n| n.pitch).collect();
    assert_eq!(pitches, [60, 62, 64, 65, 67, 69, 71, 72], "{got:?}");
    for (n, want) in loud.iter().zip(&piano.notes) {
        assert!((n.onset_s - want.onset_s).abs() < 0.05, "{n:?} vs {want:?}");
    }
    assert!(quiet.len() <= 2, "{got:?}");
    for q in quiet {
        let with = loud.iter().find(|n| (n.onset_s - q.onset_s).abs() < 0.05);
        let interval = with.map(|n| i16::from(q.pitch) - i16::from(n.pitch));
        assert!(matches!(interval, Some(12..=28)), "{q:?} is no harmonic of a scale note: {got:?}");
    }
}

#[test]
fn the_embedding_is_deterministic_and_batching_changes_nothing() {
    let scores = music_call("random-scores", "count = 5\nseed = 4\nmax-duration-s = 6.0", &[]);
    let mut audio = synth(&scores, 22050);
    audio.push(sine(440.0, 22050, 0.3));
    let h = Harness::new(commute_plugin());
    let batched = h.call("basic-pitch", "batch-windows = 3", &audio).expect("encodes");
    let mut one = h.open("basic-pitch", "batch-windows = 1").expect("opens");
    assert_eq!(one.dim(), Some(300));
    for (i, item) in audio.iter().enumerate() {
        let single = one.call(std::slice::from_ref(item)).expect("encodes");
        let single = single[0].as_ref().expect("item");
        assert_eq!(tensor(single), tensor(&batched[i]), "item {i}");
    }
    let again = h.call("basic-pitch", "batch-windows = 3", &audio).expect("encodes");
    assert_eq!(again, batched);
    // Different music, different embeddings.
    let c = cosine(tensor(&batched[0]), tensor(&batched[1]));
    assert!(c < 0.95, "two scores at cosine {c}");
}

#[test]
fn the_same_music_at_other_rates_gives_nearly_the_same_embedding() {
    let h = Harness::new(commute_plugin());
    let scale = Value::Score(c_major_scale(0));
    let mut inputs = vec![sine(440.0, 16000, 1.5), sine(440.0, 44100, 1.5), sine(494.0, 22050, 1.5)];
    inputs.extend(synth(std::slice::from_ref(&scale), 16000));
    inputs.extend(synth(&[scale], 44100));
    let e = h.call("basic-pitch", "", &inputs).expect("encodes");
    let v: Vec<&[f32]> = e.iter().map(tensor).collect();
    let (same, other) = (cosine(v[0], v[1]), cosine(v[0], v[2]));
    let music = cosine(v[3], v[4]);
    assert!(same > 0.99, "tone: cosine {same}");
    assert!(other < 0.5, "another tone: cosine {other}");
    assert!(music > 0.98, "scale: cosine {music}");
}

#[test]
fn every_layer_is_read_and_a_sweep_gives_each_layer_as_alone() {
    use commute_plugin_audio::basic_pitch::embedding::{pool_frames, rescale, Pool};
    let h = Harness::new(commute_plugin());
    // 2.5 s of A4 spans two windows; 1 s of C4 one.
    let audio = vec![sine(440.0, 22050, 2.5), sine(261.63, 22050, 1.0)];
    let dims = [309, 2112, 2112, 264, 2816, 88, 300];
    let mut alone = Vec::new();
    for (k, &d) in dims.iter().enumerate() {
        let params = format!("layer = {k}");
        assert_eq!(h.open("basic-pitch", &params).expect("opens").dim(), Some(d), "layer {k}");
        let out = h.call("basic-pitch", &params, &audio).expect("encodes");
        assert!(out.iter().all(|v| tensor(v).len() == d && tensor(v).iter().all(|x| x.is_finite())));
        alone.push(out);
    }
    // Layer 6 is the encoder's default output; 5 and 3 are the mean note and contour
    // posteriorgrams, rescaled as the default output rescales them (the model opened here runs
    // on another thread count, which moves last digits).
    assert_eq!(alone[6], h.call("basic-pitch", "", &audio).expect("encodes"));
    let close =
        |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    for (i, p) in posteriorgrams(&audio).iter().enumerate() {
        let mean = |rows: &[f32], width| {
            pool_frames(&rows.iter().map(|&x| rescale(x)).collect::<Vec<_>>(), width, Pool::Mean)
        };
        assert!(close(tensor(&alone[5][i]), &mean(&p.note, 88)), "item {i}: note");
        assert!(close(tensor(&alone[3][i]), &mean(&p.contour, 264)), "item {i}: contour");
    }
    // The constant-Q transform (a third of a semitone a bin, from A0) peaks at each tone's pitch:
    // A4 is 48 semitones above A0, C4 39.
    let peak =
        |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j).unwrap_or(0);
    for (i, bin) in [(0, 3 * 48), (1, 3 * 39)] {
        let at = peak(tensor(&alone[0][i]));
        assert!(at.abs_diff(bin) <= 2, "item {i}: CQT peak at bin {at}, expected about {bin}");
    }
    // Two tones differ at every layer.
    for (k, out) in alone.iter().enumerate() {
        let c = cosine(tensor(&out[0]), tensor(&out[1]));
        assert!(c < 0.999, "layer {k}: cosine {c}");
    }
    // One run for a sweep: each part is its layer alone, bit for bit; mean-max doubles each part.
    let order = [4usize, 0, 6, 2, 1];
    let swept = h.call("basic-pitch", "layers = [4, 0, 6, 2, 1]", &audio).expect("encodes");
    for (i, v) in swept.iter().enumerate() {
        let want: Vec<f32> = order.iter().flat_map(|&k| tensor(&alone[k][i]).to_vec()).collect();
        assert_eq!(tensor(v), &want[..], "item {i}");
    }
    let both = h.open("basic-pitch", "layer = 2\npool = \"mean-max\"").expect("opens");
    assert_eq!(both.dim(), Some(2 * 2112));
    // Out of range, or both ways at once: refused when the function opens.
    for (params, says) in
        [("layer = 7", "must be in [0, 6], found 7"), ("layer = 2\nlayers = [1]", "not both")]
    {
        let err = h.open("basic-pitch", params).map(|_| ()).expect_err(params).to_string();
        assert!(err.contains(says), "{params}: {err}");
    }
}

#[test]
fn unpooled_frames_keep_time_and_average_to_the_pooled_vector() {
    use commute_plugin_audio::basic_pitch::embedding::FRAME_RATE;
    let h = Harness::new(commute_plugin());
    let audio = synth(&[Value::Score(c_major_scale(73))], 22050);
    let mut frames = h.open("basic-pitch", "pool = \"none\"").expect("opens");
    assert_eq!((frames.dim(), frames.frame_rate()), (Some(440), Some(FRAME_RATE)));
    let out = frames.call(&audio).expect("calls");
    let seq = out[0].as_ref().expect("encodes").as_sequence().expect("a sequence").clone();
    assert_eq!((seq.dim, seq.frame_rate), (440, FRAME_RATE));
    // The package's count: ⌊samples · 86 / 22 050⌋ frames.
    let samples = audio[0].as_audio().expect("audio").samples.len();
    assert_eq!(seq.frames(), samples * 86 / 22050);
    let pooled = h.call("basic-pitch", "pool = \"mean\"", &audio).expect("encodes");
    let mean: Vec<f32> = (0..440)
        .map(|j| (0..seq.frames()).map(|t| f64::from(seq.frame(t)[j])).sum::<f64>() / seq.frames() as f64)
        .map(|m| m as f32)
        .collect();
    assert!(mean.iter().zip(tensor(&pooled[0])).all(|(a, b)| (a - b).abs() < 1e-5));
    // Time is kept: in the middle of the scale's note k (0.25 s + k · 0.5 s + 0.2 s) its key
    // sounds (key 39 is C4), and a second later, with another note sounding, it does not.
    let keys = [39usize, 41, 43, 44, 46, 48, 50, 51];
    let middle = |k: usize| ((0.45 + k as f64 * 0.5) * FRAME_RATE).round() as usize;
    for (k, &key) in keys.iter().enumerate() {
        let on = seq.frame(middle(k))[key];
        assert!(on > 0.5, "note {k}: key {key} at {on} in its own frame");
        if k + 2 < keys.len() {
            let later = seq.frame(middle(k + 2))[key];
            assert!(later < 0.2, "note {k}: key {key} still at {later} two notes later");
        }
    }
    // Shorter than one frame: refused by name, not an empty sequence.
    let short = Value::Audio(Audio { sample_rate: 22050, samples: vec![0.1; 200] });
    let err = frames.call(&[short]).expect("the call runs")[0].clone().expect_err("no frame");
    assert!(err.to_string().contains("shorter than one frame"), "{err}");
}

#[test]
fn decoding_the_frames_gives_what_transcribe_gives_on_the_audio() {
    let h = Harness::new(commute_plugin());
    let scores = music_call("random-scores", "count = 3\nseed = 12\nmax-duration-s = 4.0", &[]);
    let mut audio = synth(&scores, 22050);
    audio.push(synth(&[Value::Score(c_major_scale(73))], 22050).remove(0));
    let transcribed = h.call("transcribe", "", &audio).expect("transcribes");
    // Raw frames: the same posteriorgrams, the same notes, note for note.
    let raw = h.call("basic-pitch", "pool = \"none\"\nrescale = false", &audio).expect("frames");
    let decoded = h.call("basic-pitch-notes", "rescaled = false", &raw).expect("decodes");
    assert_eq!(decoded, transcribed);
    // The encoder's default (rescaled, clamped to the model's 0.1–0.9 range and back): the same
    // notes, an onset moved by a frame or two where the clamp flattened a rise.
    let frames = h.call("basic-pitch", "pool = \"none\"", &audio).expect("frames");
    let decoded = h.call("basic-pitch-notes", "", &frames).expect("decodes");
    for (d, t) in decoded.iter().zip(&transcribed) {
        let key = |v: &Value| -> Vec<(u8, f32)> {
            let mut k: Vec<(u8, f32)> =
                v.as_score().expect("a score").notes.iter().map(|n| (n.pitch, n.onset_s)).collect();
            k.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            k
        };
        let (d, t) = (key(d), key(t));
        assert_eq!(d.len(), t.len(), "{d:?} vs {t:?}");
        assert!(d.iter().zip(&t).all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() < 0.025), "{d:?} vs {t:?}");
    }
    assert!(transcribed.iter().all(|t| !t.as_score().expect("score").notes.is_empty()));
    // Frames at another rate are refused by name (their lengths would be counted wrong).
    let other = Value::Sequence(commute_sdk::Sequence { frame_rate: 20.0, dim: 440, data: vec![0.0; 880] });
    let err = h.call_items("basic-pitch-notes", "", &[other]).expect("the call runs")[0]
        .clone()
        .expect_err("refused");
    assert!(err.contains("Basic Pitch's own"), "{err}");
}
