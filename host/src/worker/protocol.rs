//! The framed protocol between the host and an isolated worker: length-prefixed frames and a
//! compact binary encoding of requests, replies, [`Value`]s and [`CallError`]s.
//!
//! A frame is a little-endian `u32` payload length followed by the payload; a payload starts with
//! a one-byte message tag. Float buffers travel as raw little-endian `f32`s, so a value comes back
//! bit for bit what it was (NaN payloads included). The worker speaks first ([`Reply::Hello`]),
//! naming the protocol version; the host refuses a worker of another version.
//!
//! Decoding never panics and never trusts a length: a truncated or malformed frame is a
//! [`ProtocolError`].

use commute_sdk::{Audio, CallError, Image, Note, Score, Sequence, Tensor, Value};
use std::io::{Read, Write};

/// Version of this protocol (independent of the host's and the plugin ABI's versions).
pub const PROTOCOL_VERSION: u32 = 2;

/// Bytes that open the worker's greeting, so that a stray write on the worker's stdout is caught.
pub const MAGIC: [u8; 4] = *b"CMTW";

/// The largest payload accepted (a frame header is a `u32`).
pub const MAX_FRAME: usize = u32::MAX as usize;

/// A frame that could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The pipe failed or closed mid-frame.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The stream ended cleanly between frames.
    #[error("the stream ended")]
    Eof,
    /// The payload ended before the message did.
    #[error("truncated message: needed {needed} more bytes for {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes that no message of this protocol starts with, or a value out of range.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The payload is larger than a frame can carry.
    #[error("a message of {0} bytes is larger than a frame can carry (4 GiB)")]
    TooLarge(usize),
}

/// What the host asks of a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Open `function` of the worker's plugin.
    Open {
        /// The function's name.
        function: String,
        /// Its parameters as TOML text.
        params_toml: String,
        /// The [`commute_sdk::Context`] as JSON.
        context_json: String,
        /// The asset store's folder, where declared assets are found or fetched.
        asset_root: Option<String>,
    },
    /// Call the open function on a batch.
    Call(Vec<Value>),
}

/// What a worker answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The greeting, sent once when the worker has loaded its library.
    Hello {
        /// [`PROTOCOL_VERSION`] of the worker.
        version: u32,
        /// The loaded plugin's name.
        plugin: String,
    },
    /// The library failed to load (the worker exits after this).
    LoadFailed(String),
    /// The function is open.
    Opened {
        /// Its [`commute_sdk::FunctionSpec`] as JSON.
        spec_json: String,
        /// An encoder's dimension.
        dim: Option<u64>,
        /// A frame-level encoder's frames per second.
        frame_rate: Option<f64>,
    },
    /// One result per item (or per produced item, for a source).
    Results(Vec<Result<Value, String>>),
    /// The whole open or call failed.
    Error(CallError),
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<(), ProtocolError> {
    let len = u32::try_from(payload.len()).map_err(|_| ProtocolError::TooLarge(payload.len()))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; [`ProtocolError::Eof`] when the stream ends before a header starts.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, ProtocolError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(ProtocolError::Eof),
            Ok(0) => return Err(ProtocolError::Truncated { what: "a frame header", needed: 4 - got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(header) as usize;
    // Allocate up front (up to 64 MiB; beyond, grow as bytes arrive rather than trusting the
    // header with one huge allocation).
    let mut payload = Vec::with_capacity(len.min(64 << 20));
    let read = r.take(len as u64).read_to_end(&mut payload)?;
    if read < len {
        return Err(ProtocolError::Truncated { what: "a frame", needed: len - read });
    }
    Ok(payload)
}

// Message tags.
const REQ_OPEN: u8 = 1;
const REQ_CALL: u8 = 2;
const REP_HELLO: u8 = 10;
const REP_LOAD_FAILED: u8 = 11;
const REP_OPENED: u8 = 12;
const REP_RESULTS: u8 = 13;
const REP_ERROR: u8 = 14;

// Value tags.
const VAL_TEXT: u8 = 1;
const VAL_AUDIO: u8 = 2;
const VAL_IMAGE: u8 = 3;
const VAL_SCORE: u8 = 4;
const VAL_TENSOR: u8 = 5;
const VAL_SEQUENCE: u8 = 6;

impl Request {
    /// The payload of this request.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut e = Encoder::default();
        match self {
            Request::Open { function, params_toml, context_json, asset_root } => {
                e.u8(REQ_OPEN);
                e.str(function);
                e.str(params_toml);
                e.str(context_json);
                e.opt_str(asset_root.as_deref());
            }
            Request::Call(values) => return encode_call(values),
        }
        Ok(e.0)
    }

    /// Reads a request's payload.
    pub fn decode(payload: &[u8]) -> Result<Request, ProtocolError> {
        let mut d = Decoder(payload);
        let request = match d.u8("a request tag")? {
            REQ_OPEN => Request::Open {
                function: d.string()?,
                params_toml: d.string()?,
                context_json: d.string()?,
                asset_root: d.opt_string()?,
            },
            REQ_CALL => {
                let n = d.count(1)?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(d.value()?);
                }
                Request::Call(values)
            }
            other => return Err(ProtocolError::Malformed(format!("unknown request tag {other}"))),
        };
        d.end()?;
        Ok(request)
    }
}

impl Reply {
    /// The payload of this reply.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut e = Encoder::default();
        match self {
            Reply::Hello { version, plugin } => {
                e.u8(REP_HELLO);
                e.0.extend_from_slice(&MAGIC);
                e.u32(*version);
                e.str(plugin);
            }
            Reply::LoadFailed(message) => {
                e.u8(REP_LOAD_FAILED);
                e.str(message);
            }
            Reply::Opened { spec_json, dim, frame_rate } => {
                e.u8(REP_OPENED);
                e.str(spec_json);
                match dim {
                    Some(d) => {
                        e.u8(1);
                        e.u64(*d);
                    }
                    None => e.u8(0),
                }
                match frame_rate {
                    Some(r) => {
                        e.u8(1);
                        e.u64(r.to_bits());
                    }
                    None => e.u8(0),
                }
            }
            Reply::Results(items) => {
                e.u8(REP_RESULTS);
                e.len(items.len());
                for item in items {
                    match item {
                        Ok(v) => {
                            e.u8(1);
                            e.value(v)?;
                        }
                        Err(message) => {
                            e.u8(0);
                            e.str(message);
                        }
                    }
                }
            }
            Reply::Error(error) => {
                e.u8(REP_ERROR);
                e.call_error(error);
            }
        }
        Ok(e.0)
    }

    /// Reads a reply's payload.
    pub fn decode(payload: &[u8]) -> Result<Reply, ProtocolError> {
        let mut d = Decoder(payload);
        let reply = match d.u8("a reply tag")? {
            REP_HELLO => {
                let magic = d.bytes(4, "the greeting")?;
                if magic != MAGIC {
                    return Err(ProtocolError::Malformed(
                        "the greeting lacks the protocol's magic bytes".into(),
                    ));
                }
                Reply::Hello { version: d.u32()?, plugin: d.string()? }
            }
            REP_LOAD_FAILED => Reply::LoadFailed(d.string()?),
            REP_OPENED => {
                let spec_json = d.string()?;
                let dim = match d.u8("a dimension flag")? {
                    0 => None,
                    1 => Some(d.u64()?),
                    other => return Err(ProtocolError::Malformed(format!("bad dimension flag {other}"))),
                };
                let frame_rate = match d.u8("a frame rate flag")? {
                    0 => None,
                    1 => Some(f64::from_bits(d.u64()?)),
                    other => return Err(ProtocolError::Malformed(format!("bad frame rate flag {other}"))),
                };
                Reply::Opened { spec_json, dim, frame_rate }
            }
            REP_RESULTS => {
                let n = d.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(match d.u8("a result flag")? {
                        1 => Ok(d.value()?),
                        0 => Err(d.string()?),
                        other => return Err(ProtocolError::Malformed(format!("bad result flag {other}"))),
                    });
                }
                Reply::Results(items)
            }
            REP_ERROR => Reply::Error(d.call_error()?),
            other => return Err(ProtocolError::Malformed(format!("unknown reply tag {other}"))),
        };
        d.end()?;
        Ok(reply)
    }
}

/// The payload of [`Request::Call`] on borrowed values (no copy of the batch before encoding).
pub fn encode_call(values: &[Value]) -> Result<Vec<u8>, ProtocolError> {
    let mut e = Encoder::default();
    e.u8(REQ_CALL);
    e.len(values.len());
    for v in values {
        e.value(v)?;
    }
    Ok(e.0)
}

#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn u8(&mut self, x: u8) {
        self.0.push(x);
    }
    fn u32(&mut self, x: u32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn f32s(&mut self, xs: &[f32]) {
        self.len(xs.len());
        // The wire is little-endian: there, the floats' memory is the wire form (one copy).
        #[cfg(target_endian = "little")]
        self.0.extend_from_slice(bytemuck::cast_slice(xs));
        #[cfg(not(target_endian = "little"))]
        for x in xs {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn value(&mut self, v: &Value) -> Result<(), ProtocolError> {
        match v {
            Value::Text { text } => {
                self.u8(VAL_TEXT);
                self.str(text);
            }
            Value::Audio(a) => {
                self.u8(VAL_AUDIO);
                self.u32(a.sample_rate);
                self.f32s(&a.samples);
            }
            Value::Image(i) => {
                self.u8(VAL_IMAGE);
                self.u32(i.width);
                self.u32(i.height);
                self.u8(i.channels);
                self.len(i.pixels.len());
                self.0.extend_from_slice(&i.pixels);
            }
            Value::Score(s) => {
                self.u8(VAL_SCORE);
                self.len(s.notes.len());
                for n in &s.notes {
                    self.u8(n.pitch);
                    self.0.extend_from_slice(&n.onset_s.to_le_bytes());
                    self.0.extend_from_slice(&n.duration_s.to_le_bytes());
                    self.u8(n.velocity);
                    self.u8(n.program);
                }
            }
            Value::Tensor(t) => {
                self.u8(VAL_TENSOR);
                self.len(t.shape.len());
                for d in &t.shape {
                    self.len(*d);
                }
                self.f32s(&t.data);
            }
            Value::Sequence(q) => {
                self.u8(VAL_SEQUENCE);
                self.u64(q.frame_rate.to_bits());
                self.len(q.dim);
                self.f32s(&q.data);
            }
            other => {
                return Err(ProtocolError::Malformed(format!(
                    "values of kind {} cannot cross to an isolated worker yet",
                    other.kind()
                )))
            }
        }
        Ok(())
    }

    fn call_error(&mut self, error: &CallError) {
        // (tag, plugin, function, first text, second text)
        let (tag, plugin, function, a, b): (u8, &str, &str, &str, &str) = match error {
            CallError::Panicked { plugin, function, message, location } => {
                (1, plugin, function, message, location)
            }
            CallError::Poisoned { plugin, function } => (2, plugin, function, "", ""),
            CallError::BadParams { plugin, function, message } => (3, plugin, function, message, ""),
            CallError::BadInput { plugin, function, message } => (4, plugin, function, message, ""),
            CallError::Failed { plugin, function, message } => (5, plugin, function, message, ""),
            CallError::UnknownFunction { plugin, function, known } => (6, plugin, function, known, ""),
            CallError::Asset { plugin, function, message } => (7, plugin, function, message, ""),
            CallError::Protocol { plugin, function, message } => (8, plugin, function, message, ""),
            // A variant newer than this protocol: keep its text.
            other => {
                let text = other.to_string();
                self.u8(5);
                self.str("");
                self.str("");
                self.str(&text);
                self.str("");
                return;
            }
        };
        self.u8(tag);
        self.str(plugin);
        self.str(function);
        self.str(a);
        self.str(b);
    }
}

struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.0.len() < n {
            return Err(ProtocolError::Truncated { what, needed: n - self.0.len() });
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.bytes(1, what)?[0])
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.bytes(4, "a u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let b = self.bytes(8, "a u64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count of things of at least `min_size` bytes each, checked against what is left so that
    /// a corrupt length cannot ask for a huge allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, ProtocolError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| ProtocolError::Malformed(format!("length {n} too large")))?;
        match n.checked_mul(min_size) {
            Some(bytes) if bytes <= self.0.len() => Ok(n),
            _ => Err(ProtocolError::Truncated {
                what: "a sequence",
                needed: n.saturating_mul(min_size).saturating_sub(self.0.len()),
            }),
        }
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        let n = self.count(1)?;
        let b = self.bytes(n, "a string")?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtocolError::Malformed("a string is not UTF-8".into()))
    }
    fn opt_string(&mut self) -> Result<Option<String>, ProtocolError> {
        match self.u8("an option flag")? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            other => Err(ProtocolError::Malformed(format!("bad option flag {other}"))),
        }
    }
    fn f32s(&mut self) -> Result<Vec<f32>, ProtocolError> {
        let n = self.count(4)?;
        let b = self.bytes(n * 4, "floats")?;
        // One copy into an aligned buffer (the payload's bytes need not be aligned for f32).
        #[cfg(target_endian = "little")]
        return Ok(bytemuck::pod_collect_to_vec(b));
        #[cfg(not(target_endian = "little"))]
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
    fn f32(&mut self) -> Result<f32, ProtocolError> {
        Ok(f32::from_bits(self.u32()?))
    }

    fn value(&mut self) -> Result<Value, ProtocolError> {
        Ok(match self.u8("a value tag")? {
            VAL_TEXT => Value::text(self.string()?),
            VAL_AUDIO => {
                let sample_rate = self.u32()?;
                Value::Audio(Audio { sample_rate, samples: self.f32s()? })
            }
            VAL_IMAGE => {
                let (width, height) = (self.u32()?, self.u32()?);
                let channels = self.u8("image channels")?;
                let n = self.count(1)?;
                let pixels = self.bytes(n, "pixels")?.to_vec();
                Value::Image(Image { width, height, channels, pixels })
            }
            VAL_SCORE => {
                let n = self.count(11)?;
                let mut notes = Vec::with_capacity(n);
                for _ in 0..n {
                    let pitch = self.u8("a note")?;
                    let (onset_s, duration_s) = (self.f32()?, self.f32()?);
                    let (velocity, program) = (self.u8("a note")?, self.u8("a note")?);
                    notes.push(Note { pitch, onset_s, duration_s, velocity, program });
                }
                Value::Score(Score { notes })
            }
            VAL_TENSOR => {
                let rank = self.count(8)?;
                let mut shape = Vec::with_capacity(rank);
                for _ in 0..rank {
                    let d = self.u64()?;
                    shape.push(
                        usize::try_from(d).map_err(|_| ProtocolError::Malformed(format!("dimension {d}")))?,
                    );
                }
                Value::Tensor(Tensor { shape, data: self.f32s()? })
            }
            VAL_SEQUENCE => {
                let frame_rate = f64::from_bits(self.u64()?);
                let dim = self.u64()?;
                let dim = usize::try_from(dim)
                    .map_err(|_| ProtocolError::Malformed(format!("frame width {dim}")))?;
                let data = self.f32s()?;
                Sequence::check(frame_rate, dim, data.len()).map_err(ProtocolError::Malformed)?;
                Value::Sequence(Sequence { frame_rate, dim, data })
            }
            other => return Err(ProtocolError::Malformed(format!("unknown value tag {other}"))),
        })
    }

    fn call_error(&mut self) -> Result<CallError, ProtocolError> {
        let tag = self.u8("an error tag")?;
        let (plugin, function) = (self.string()?, self.string()?);
        let (a, b) = (self.string()?, self.string()?);
        Ok(match tag {
            1 => CallError::Panicked { plugin, function, message: a, location: b },
            2 => CallError::Poisoned { plugin, function },
            3 => CallError::BadParams { plugin, function, message: a },
            4 => CallError::BadInput { plugin, function, message: a },
            5 => CallError::Failed { plugin, function, message: a },
            6 => CallError::UnknownFunction { plugin, function, known: a },
            7 => CallError::Asset { plugin, function, message: a },
            8 => CallError::Protocol { plugin, function, message: a },
            other => return Err(ProtocolError::Malformed(format!("unknown error tag {other}"))),
        })
    }

    fn end(&self) -> Result<(), ProtocolError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed(format!("{} bytes left over after the message", self.0.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Value> {
        vec![
            Value::text("grüße, 世界"),
            Value::text(""),
            Value::Audio(Audio {
                sample_rate: 22_050,
                samples: vec![0.0, -1.0, 0.5, f32::MIN_POSITIVE, 1e-40],
            }),
            Value::Image(Image { width: 2, height: 1, channels: 3, pixels: vec![1, 2, 3, 250, 251, 252] }),
            Value::Score(Score {
                notes: vec![
                    Note { pitch: 60, onset_s: 0.0, duration_s: 0.5, velocity: 90, program: 0 },
                    Note { pitch: 127, onset_s: 1.25, duration_s: 3.0e-3, velocity: 1, program: 127 },
                ],
            }),
            Value::Score(Score::default()),
            Value::Tensor(Tensor { shape: vec![2, 2], data: vec![1.0, f32::INFINITY, -0.0, 3.5] }),
            Value::Tensor(Tensor { shape: vec![], data: vec![] }),
            Value::Sequence(Sequence { frame_rate: 43.06640625, dim: 2, data: vec![0.25, -1.0, 3.0, 0.0] }),
        ]
    }

    #[test]
    fn every_value_kind_round_trips_bit_for_bit() {
        let values = every_kind();
        let request = Request::Call(values.clone());
        assert_eq!(Request::decode(&request.encode().unwrap()).unwrap(), request);
        // NaN payloads survive too (PartialEq cannot see that, the bits can).
        let nan = f32::from_bits(0x7fc0_1234);
        let t = Value::Tensor(Tensor::vector(vec![nan, 1.0]));
        match Request::decode(&Request::Call(vec![t]).encode().unwrap()).unwrap() {
            Request::Call(v) => assert_eq!(v[0].as_tensor().unwrap().data[0].to_bits(), 0x7fc0_1234),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_round_trip() {
        let replies = vec![
            Reply::Hello { version: PROTOCOL_VERSION, plugin: "music".into() },
            Reply::LoadFailed("not a plugin".into()),
            Reply::Opened { spec_json: "{\"name\":\"x\"}".into(), dim: Some(384), frame_rate: None },
            Reply::Opened { spec_json: "{}".into(), dim: None, frame_rate: None },
            Reply::Opened { spec_json: "{}".into(), dim: Some(88), frame_rate: Some(86.1328125) },
            Reply::Results(vec![
                Ok(Value::text("a")),
                Err("not in vocabulary".into()),
                Ok(every_kind()[2].clone()),
            ]),
            Reply::Results(Vec::new()),
        ];
        for reply in replies {
            assert_eq!(Reply::decode(&reply.encode().unwrap()).unwrap(), reply);
        }
        let open = Request::Open {
            function: "synth".into(),
            params_toml: "sample-rate = 8000\n".into(),
            context_json: "{\"threads\":2}".into(),
            asset_root: Some("/cache/assets".into()),
        };
        assert_eq!(Request::decode(&open.encode().unwrap()).unwrap(), open);
    }

    #[test]
    fn an_open_request_carries_the_whole_context_device_included() {
        let ctx = commute_sdk::Context {
            threads: 3,
            device: "cuda:1".into(),
            cache_dir: Some("/cache/plugins".into()),
            ..commute_sdk::Context::default()
        };
        let request = crate::worker::client::open_request(
            "minilm",
            "backend = \"candle\"\n",
            &ctx,
            Some(std::path::Path::new("/cache/assets")),
        )
        .unwrap();
        let Request::Open { context_json, .. } = Request::decode(&request.encode().unwrap()).unwrap() else {
            panic!("not an open request")
        };
        let received = crate::worker::serve::read_context(&context_json).unwrap();
        assert_eq!(received, ctx);
        assert_eq!(received.cuda_device(), Some(1));
    }

    #[test]
    fn every_call_error_round_trips() {
        let (p, f) = ("crashy".to_owned(), "segfault".to_owned());
        let errors = vec![
            CallError::Panicked {
                plugin: p.clone(),
                function: f.clone(),
                message: "boom".into(),
                location: "a.rs:1:2".into(),
            },
            CallError::Poisoned { plugin: p.clone(), function: f.clone() },
            CallError::BadParams { plugin: p.clone(), function: f.clone(), message: "m".into() },
            CallError::BadInput { plugin: p.clone(), function: f.clone(), message: "m".into() },
            CallError::Failed { plugin: p.clone(), function: f.clone(), message: "m".into() },
            CallError::UnknownFunction { plugin: p.clone(), function: f.clone(), known: "a, b".into() },
            CallError::Asset { plugin: p.clone(), function: f.clone(), message: "m".into() },
            CallError::Protocol { plugin: p, function: f, message: "m".into() },
        ];
        for error in errors {
            let reply = Reply::Error(error);
            assert_eq!(Reply::decode(&reply.encode().unwrap()).unwrap(), reply);
        }
    }

    #[test]
    fn frames_round_trip_and_a_clean_end_is_eof() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, b"one").unwrap();
        write_frame(&mut pipe, b"").unwrap();
        let mut r = pipe.as_slice();
        assert_eq!(read_frame(&mut r).unwrap(), b"one");
        assert_eq!(read_frame(&mut r).unwrap(), b"");
        assert!(matches!(read_frame(&mut r), Err(ProtocolError::Eof)));
    }

    #[test]
    fn truncated_frames_and_payloads_are_errors_not_panics() {
        let payload = Request::Call(every_kind()).encode().unwrap();
        let mut framed = Vec::new();
        write_frame(&mut framed, &payload).unwrap();
        // Every cut of the framed bytes: a clean EOF only at 0, a truncation error elsewhere.
        for cut in 1..framed.len() {
            let err = read_frame(&mut &framed[..cut]).unwrap_err();
            assert!(matches!(err, ProtocolError::Truncated { .. }), "cut at {cut}: {err}");
        }
        // Every cut of the payload itself fails to decode, without panicking.
        for cut in 0..payload.len() {
            assert!(Request::decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let reply = Reply::Results(vec![Ok(every_kind()[4].clone()), Err("x".into())]).encode().unwrap();
        for cut in 0..reply.len() {
            assert!(Reply::decode(&reply[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn corrupt_lengths_and_tags_are_errors() {
        // A call claiming 2^60 values in a few bytes: refused before any allocation.
        let mut huge = vec![REQ_CALL];
        huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(Request::decode(&huge), Err(ProtocolError::Truncated { .. })));
        assert!(matches!(Request::decode(&[99]), Err(ProtocolError::Malformed(_))));
        assert!(Reply::decode(&[REP_ERROR, 42]).is_err());
        let mut trailing = Reply::LoadFailed("x".into()).encode().unwrap();
        trailing.push(0);
        assert!(matches!(Reply::decode(&trailing), Err(ProtocolError::Malformed(_))));
        // A greeting without the magic bytes (e.g. a plugin printing to stdout) is refused.
        let mut hello = Reply::Hello { version: 1, plugin: "p".into() }.encode().unwrap();
        hello[1] = b'X';
        assert!(matches!(Reply::decode(&hello), Err(ProtocolError::Malformed(_))));
    }
}
