//! Values in files: reading inputs and writing outputs by file extension
//! (`.wav`, `.mid`, `.json`, `.txt`, `.npy`), always writing through a temporary file and a rename.
//!
//! Reading never panics on malformed input: a bad file is a [`HostError::Format`] naming it.
//! Images are read from `.json` values (`{"kind": "image", …}`), checked for a consistent shape.

use crate::HostError;
use commute_sdk::{Tensor, Value};
use std::path::{Path, PathBuf};

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// The kind of value a file of a `files = "…"` data set holds, by its extension in any case
/// (`.wav` audio, `.mid`/`.midi` a score, `.txt` texts); `None` for files such a data set skips.
pub fn folder_kind(path: &Path) -> Option<commute_sdk::ValueKind> {
    use commute_sdk::ValueKind;
    match extension(path).as_str() {
        "wav" => Some(ValueKind::Audio),
        "mid" | "midi" => Some(ValueKind::Score),
        "txt" => Some(ValueKind::Text),
        _ => None,
    }
}

/// Reads the values in a file: `.wav` (one audio, channels mixed to mono), `.mid`/`.midi` (one
/// score), `.txt` (one text per non-empty line), `.json` (a value or an array of values), `.npy`
/// (float32 or float64: a 1-D array is one tensor, a 2-D array one tensor per row).
pub fn read_values(path: &Path) -> Result<Vec<Value>, HostError> {
    let bytes = std::fs::read(path).map_err(|e| HostError::io(path, e))?;
    match extension(path).as_str() {
        "wav" => commute_sdk::wav::read(&bytes)
            .map(|a| vec![Value::Audio(a)])
            .map_err(|e| HostError::format(path, e.to_string())),
        "mid" | "midi" => commute_sdk::midi::read_smf(&bytes)
            .map(|s| vec![Value::Score(s)])
            .map_err(|e| HostError::format(path, format!("not a readable MIDI file: {e}"))),
        "txt" => {
            let text = String::from_utf8(bytes)
                .map_err(|e| HostError::format(path, format!("not UTF-8 text: {e}")))?;
            Ok(text.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(Value::text).collect())
        }
        "json" => {
            let json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| HostError::format(path, format!("not JSON: {e}")))?;
            let items = match json {
                serde_json::Value::Array(items) => items,
                single => vec![single],
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let value: Value = serde_json::from_value(v).map_err(|e| {
                        HostError::format(path, format!("item {i} is not a value (expected {{\"kind\": \"text\", \"text\": …}} and the like): {e}"))
                    })?;
                    check_value(&value).map_err(|m| HostError::format(path, format!("item {i}: {m}")))?;
                    Ok(value)
                })
                .collect()
        }
        "npy" => {
            let array = commute_sdk::npy::decode(&bytes).map_err(|m| HostError::format(path, m))?;
            match array.shape[..] {
                [_] => Ok(vec![Value::Tensor(Tensor { shape: array.shape, data: array.data })]),
                [rows, d] => Ok((0..rows)
                    .map(|i| Value::Tensor(Tensor::vector(array.data[i * d..(i + 1) * d].to_vec())))
                    .collect()),
                _ => Err(HostError::format(
                    path,
                    format!(
                        "a .npy input is one tensor (1-D) or one per row (2-D); this array has shape {:?}",
                        array.shape
                    ),
                )),
            }
        }
        other => {
            let hint = if matches!(other, "png" | "jpg" | "jpeg" | "gif" | "bmp" | "webp" | "tif" | "tiff") {
                "; images are read from .json values ({\"kind\": \"image\", \"width\": …, \"height\": …, \"channels\": …, \"pixels\": […]})"
            } else {
                ""
            };
            Err(HostError::format(
                path,
                format!("unknown input extension `.{other}`; use .wav, .mid, .txt, .json or .npy{hint}"),
            ))
        }
    }
}

/// One value written inline in the `.json` format (`commute call --value '{"kind": …}'`).
pub fn parse_value(json: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        format!("`{json}` is not a value (expected {{\"kind\": \"tensor\", \"shape\": [3], \"data\": [0.1, 0.2, 0.3]}} and the like): {e}")
    })?;
    check_value(&value)?;
    Ok(value)
}

/// Why a value read from a `.json` file cannot be used: its parts disagree.
fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::Image(i) => {
            let expected = u64::from(i.width)
                .checked_mul(u64::from(i.height))
                .and_then(|n| n.checked_mul(u64::from(i.channels)));
            if !matches!(i.channels, 1 | 3 | 4) {
                return Err(format!("an image needs 1, 3 or 4 channels, this one has {}", i.channels));
            }
            if expected != Some(i.pixels.len() as u64) {
                return Err(format!(
                    "a {}×{}×{} image needs {} bytes of pixels, this one has {}",
                    i.width,
                    i.height,
                    i.channels,
                    expected.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string()),
                    i.pixels.len()
                ));
            }
            Ok(())
        }
        Value::Tensor(t) => {
            let expected = t.shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
            if expected != Some(t.data.len()) {
                return Err(format!(
                    "a tensor of shape {:?} does not match its {} values",
                    t.shape,
                    t.data.len()
                ));
            }
            Ok(())
        }
        Value::Audio(a) if a.sample_rate == 0 => Err("audio with a sample rate of 0 Hz".to_owned()),
        Value::Score(s) => match s.notes.iter().position(|n| n.pitch > 127) {
            Some(k) => Err(format!("note {k} has pitch {}, above MIDI's 127", s.notes[k].pitch)),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically (through [`commute_sdk::atomic`], the workspace's one
/// atomic writer).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    commute_sdk::atomic::write(path, bytes).map_err(|e| HostError::io(path, e))
}

/// Writes values to `path` by its extension. Single-value formats (`.wav`, `.mid`) given several
/// values write `stem-0.ext`, `stem-1.ext`, …. Returns the files written.
pub fn write_values(path: &Path, values: &[Value]) -> Result<Vec<PathBuf>, HostError> {
    let ext = extension(path);
    let one_per_file =
        |encode: &dyn Fn(&Value) -> Result<Vec<u8>, String>| -> Result<Vec<PathBuf>, HostError> {
            let targets: Vec<PathBuf> = if values.len() == 1 {
                vec![path.to_path_buf()]
            } else {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("output");
                (0..values.len()).map(|i| path.with_file_name(format!("{stem}-{i}.{ext}"))).collect()
            };
            for (value, target) in values.iter().zip(&targets) {
                let bytes = encode(value).map_err(|m| HostError::format(target, m))?;
                write_atomic(target, &bytes)?;
            }
            Ok(targets)
        };
    match ext.as_str() {
        "wav" => one_per_file(&|v| match v {
            Value::Audio(a) => commute_sdk::wav::write(a).map_err(|e| e.to_string()),
            other => Err(format!("a .wav file holds audio, not {}", other.kind())),
        }),
        "mid" | "midi" => one_per_file(&|v| match v {
            Value::Score(s) => Ok(commute_sdk::midi::write_smf(s)),
            other => Err(format!("a .mid file holds a score, not {}", other.kind())),
        }),
        "json" => {
            let json =
                serde_json::to_vec_pretty(values).map_err(|e| HostError::format(path, e.to_string()))?;
            write_atomic(path, &json).map(|()| vec![path.to_path_buf()])
        }
        "txt" => {
            let mut text = String::new();
            for v in values {
                text.push_str(&display_value(v));
                text.push('\n');
            }
            write_atomic(path, text.as_bytes()).map(|()| vec![path.to_path_buf()])
        }
        "npy" => {
            let bytes = npy_bytes(values).map_err(|m| HostError::format(path, m))?;
            write_atomic(path, &bytes).map(|()| vec![path.to_path_buf()])
        }
        other => Err(HostError::format(
            path,
            format!("unknown output extension `.{other}`; use .wav, .mid, .json, .txt or .npy"),
        )),
    }
}

/// Tensors of one shape stacked into a float32 `.npy` array of shape `[n, …shape]`.
fn npy_bytes(values: &[Value]) -> Result<Vec<u8>, String> {
    let tensors: Vec<&Tensor> = values
        .iter()
        .map(|v| v.as_tensor().ok_or_else(|| format!("a .npy file holds tensors, not {}", v.kind())))
        .collect::<Result<_, _>>()?;
    let inner = tensors.first().map(|t| t.shape.clone()).unwrap_or_default();
    if let Some(t) = tensors.iter().find(|t| t.shape != inner) {
        return Err(format!("tensors of shapes {:?} and {:?} cannot be stacked", inner, t.shape));
    }
    let mut shape = vec![tensors.len()];
    shape.extend(&inner);
    let mut out = commute_sdk::npy::header_f32(&shape);
    out.reserve(4 * tensors.len() * inner.iter().product::<usize>());
    for t in tensors {
        for x in &t.data {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// A value as one line for a terminal: text as is, tensors as space-separated numbers, media as
/// a short summary.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::Text { text } => text.clone(),
        Value::Tensor(t) => t.data.iter().map(f32::to_string).collect::<Vec<_>>().join(" "),
        Value::Audio(a) => {
            let peak = a.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            let rms = (a.samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
                / a.samples.len().max(1) as f64)
                .sqrt();
            format!(
                "audio: {} Hz, {:.3} s, peak {:.3}, rms {:.1} dBFS",
                a.sample_rate,
                a.duration_s(),
                peak,
                20.0 * rms.max(1e-12).log10()
            )
        }
        Value::Score(s) => {
            let lo = s.notes.iter().map(|n| n.pitch).min();
            let hi = s.notes.iter().map(|n| n.pitch).max();
            let mut programs: Vec<u8> = s.notes.iter().map(|n| n.program).collect();
            programs.sort_unstable();
            programs.dedup();
            match (lo, hi) {
                (Some(lo), Some(hi)) => format!(
                    "score: {} notes, {:.2} s, pitches {lo}–{hi}, programs {programs:?}",
                    s.notes.len(),
                    s.duration_s()
                ),
                _ => "score: empty".to_owned(),
            }
        }
        Value::Image(i) => format!("image: {}x{}x{}", i.width, i.height, i.channels),
        other => format!("{} value", other.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commute_sdk::{Audio, Note, Score};

    #[test]
    fn wav_round_trip_is_exact_for_float_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let audio = Audio { sample_rate: 22050, samples: vec![0.0, 0.5, -0.25, 1.0] };
        assert_eq!(write_values(&path, &[Value::Audio(audio.clone())]).unwrap(), vec![path.clone()]);
        assert_eq!(read_values(&path).unwrap(), vec![Value::Audio(audio)]);
    }

    #[test]
    fn several_values_in_a_single_value_format_get_numbered_files() {
        let dir = tempfile::tempdir().unwrap();
        let score = |p| {
            Value::Score(Score {
                notes: vec![Note { pitch: p, onset_s: 0.0, duration_s: 0.5, velocity: 80, program: 0 }],
            })
        };
        let written = write_values(&dir.path().join("s.mid"), &[score(60), score(62)]).unwrap();
        assert_eq!(written, vec![dir.path().join("s-0.mid"), dir.path().join("s-1.mid")]);
        let back = read_values(&written[1]).unwrap();
        assert_eq!(back[0].as_score().unwrap().notes[0].pitch, 62);
    }

    #[test]
    fn npy_has_a_valid_header_and_the_data() {
        let values = vec![
            Value::Tensor(Tensor::vector(vec![1.0, 2.0])),
            Value::Tensor(Tensor::vector(vec![3.0, 4.0])),
        ];
        let bytes = npy_bytes(&values).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 2)"), "{header}");
        let data: Vec<f32> =
            bytes[10 + header_len..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0]);
        let mixed =
            vec![Value::Tensor(Tensor::vector(vec![1.0])), Value::Tensor(Tensor::vector(vec![1.0, 2.0]))];
        assert!(npy_bytes(&mixed).unwrap_err().contains("cannot be stacked"));
    }

    #[test]
    fn bad_files_and_extensions_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("broken.wav");
        std::fs::write(&wav, b"RIFF nonsense").unwrap();
        assert!(read_values(&wav).unwrap_err().to_string().contains("not a readable WAV file"));
        let mid = dir.path().join("broken.mid");
        std::fs::write(&mid, b"MThd garbage").unwrap();
        assert!(read_values(&mid).unwrap_err().to_string().contains("not a readable MIDI file"));
        let err = write_values(&dir.path().join("x.wav"), &[Value::text("hi")]).unwrap_err();
        assert!(err.to_string().contains("holds audio, not text"), "{err}");
        let err = read_values(&dir.path().join("missing.txt")).unwrap_err();
        assert!(matches!(err, HostError::Io { .. }));
        let other = dir.path().join("x.bin");
        std::fs::write(&other, b"").unwrap();
        assert!(read_values(&other).unwrap_err().to_string().contains("unknown input extension"));
    }

    #[test]
    fn inconsistent_json_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("bad.json");
        for (text, expected) in [
            (
                r#"{"kind":"image","width":2,"height":1,"channels":3,"pixels":[1,2,3]}"#,
                "item 0: a 2×1×3 image needs 6 bytes of pixels, this one has 3",
            ),
            (
                r#"{"kind":"image","width":1,"height":1,"channels":2,"pixels":[1,2]}"#,
                "needs 1, 3 or 4 channels",
            ),
            (r#"{"kind":"tensor","shape":[2,2],"data":[1.0]}"#, "shape [2, 2] does not match its 1 values"),
            (r#"{"kind":"audio","sample_rate":0,"samples":[]}"#, "sample rate of 0 Hz"),
        ] {
            std::fs::write(&json, text).unwrap();
            let err = read_values(&json).unwrap_err().to_string();
            assert!(err.contains("bad.json") && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn folder_files_are_recognised_by_extension_in_any_case() {
        use commute_sdk::ValueKind;
        assert_eq!(folder_kind(Path::new("a/b.WAV")), Some(ValueKind::Audio));
        assert_eq!(folder_kind(Path::new("b.Mid")), Some(ValueKind::Score));
        assert_eq!(folder_kind(Path::new("b.midi")), Some(ValueKind::Score));
        assert_eq!(folder_kind(Path::new("notes.txt")), Some(ValueKind::Text));
        assert_eq!(folder_kind(Path::new("x.json")), None);
        assert_eq!(folder_kind(Path::new("README")), None);
    }

    #[test]
    fn text_and_json_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("words.txt");
        std::fs::write(&txt, "cat\n\ncats\r\n").unwrap();
        assert_eq!(read_values(&txt).unwrap(), vec![Value::text("cat"), Value::text("cats")]);
        let json = dir.path().join("v.json");
        std::fs::write(
            &json,
            r#"[{"kind": "text", "text": "a"}, {"kind": "tensor", "shape": [1], "data": [2.0]}]"#,
        )
        .unwrap();
        assert_eq!(
            read_values(&json).unwrap(),
            vec![Value::text("a"), Value::Tensor(Tensor::vector(vec![2.0]))]
        );
    }
}
