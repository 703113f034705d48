//! The Thrift compact protocol, read into a generic tree: enough for Parquet's footer and page
//! headers, whose fields are then picked out by id.

use commute_sdk::anyhow::{bail, ensure, Context as _, Result};

/// A decoded Thrift value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `bool`.
    Bool(bool),
    /// Any integer type (`byte`, `i16`, `i32`, `i64`).
    Int(i64),
    /// `double`.
    Double(f64),
    /// `binary` or `string`.
    Binary(Vec<u8>),
    /// `list` or `set`.
    List(Vec<Value>),
    /// `map`.
    Map(Vec<(Value, Value)>),
    /// `struct`: its fields by id.
    Struct(Struct),
}

/// A decoded struct: `(field id, value)` in the order read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct(pub Vec<(i16, Value)>);

impl Struct {
    /// The field with this id.
    pub fn get(&self, id: i16) -> Option<&Value> {
        self.0.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }

    /// An integer field.
    pub fn int(&self, id: i16) -> Result<i64> {
        match self.get(id) {
            Some(Value::Int(v)) => Ok(*v),
            Some(other) => bail!("field {id} is not an integer: {other:?}"),
            None => bail!("missing field {id}"),
        }
    }

    /// An optional integer field.
    pub fn opt_int(&self, id: i16) -> Option<i64> {
        match self.get(id) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, id: i16) -> Option<bool> {
        match self.get(id) {
            Some(Value::Bool(v)) => Some(*v),
            _ => None,
        }
    }

    /// A struct field.
    pub fn strukt(&self, id: i16) -> Result<&Struct> {
        match self.get(id) {
            Some(Value::Struct(s)) => Ok(s),
            Some(other) => bail!("field {id} is not a struct: {other:?}"),
            None => bail!("missing field {id}"),
        }
    }

    /// A list field.
    pub fn list(&self, id: i16) -> Result<&[Value]> {
        match self.get(id) {
            Some(Value::List(v)) => Ok(v),
            Some(other) => bail!("field {id} is not a list: {other:?}"),
            None => bail!("missing field {id}"),
        }
    }

    /// A string field.
    pub fn string(&self, id: i16) -> Result<String> {
        match self.get(id) {
            Some(Value::Binary(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Some(other) => bail!("field {id} is not a string: {other:?}"),
            None => bail!("missing field {id}"),
        }
    }
}

/// Reads one struct from the start of `bytes`; returns it and the number of bytes it took.
pub fn read_struct(bytes: &[u8]) -> Result<(Struct, usize)> {
    let mut r = Reader { bytes, pos: 0, depth: 0 };
    let s = r.strukt()?;
    Ok((s, r.pos))
}

const STOP: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.pos).context("unexpected end of Thrift data")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .context("unexpected end of Thrift data")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        bail!("varint longer than 64 bits")
    }

    fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn value(&mut self, kind: u8) -> Result<Value> {
        Ok(match kind {
            TRUE => Value::Bool(true),
            FALSE => Value::Bool(false),
            BYTE => Value::Int(i64::from(self.byte()? as i8)),
            I16 | I32 | I64 => Value::Int(self.zigzag()?),
            DOUBLE => {
                let b = self.take(8)?;
                Value::Double(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            }
            BINARY => {
                let n = usize::try_from(self.varint()?)?;
                Value::Binary(self.take(n)?.to_vec())
            }
            LIST | SET => {
                let header = self.byte()?;
                let n = match header >> 4 {
                    15 => usize::try_from(self.varint()?)?,
                    n => usize::from(n),
                };
                let elem = header & 0x0f;
                // Every element takes at least one byte.
                ensure!(n <= self.bytes.len() - self.pos, "a list of {n} items is longer than its data");
                let mut items = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    // In lists, booleans take one byte each.
                    items.push(if elem == TRUE || elem == FALSE {
                        Value::Bool(self.byte()? == TRUE)
                    } else {
                        self.nested(elem)?
                    });
                }
                Value::List(items)
            }
            MAP => {
                let n = usize::try_from(self.varint()?)?;
                let mut items = Vec::with_capacity(n.min(1 << 16));
                if n > 0 {
                    let kinds = self.byte()?;
                    for _ in 0..n {
                        let k = self.nested(kinds >> 4)?;
                        let v = self.nested(kinds & 0x0f)?;
                        items.push((k, v));
                    }
                }
                Value::Map(items)
            }
            STRUCT => Value::Struct(self.strukt()?),
            other => bail!("unknown Thrift compact type {other}"),
        })
    }

    fn nested(&mut self, kind: u8) -> Result<Value> {
        self.depth += 1;
        ensure!(self.depth < 64, "Thrift data nested too deeply");
        let v = self.value(kind);
        self.depth -= 1;
        v
    }

    fn strukt(&mut self) -> Result<Struct> {
        let mut fields = Vec::new();
        let mut last: i16 = 0;
        loop {
            let header = self.byte()?;
            let kind = header & 0x0f;
            if kind == STOP {
                return Ok(Struct(fields));
            }
            let id = match header >> 4 {
                0 => i16::try_from(self.zigzag()?).context("field id out of range")?,
                delta => last.checked_add(i16::from(delta)).context("field id out of range")?,
            };
            last = id;
            let value = self.nested(kind)?;
            fields.push((id, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_structs_lists_and_zigzag_integers() {
        // struct { 1: i32 = -3, 2: string = "ab", 3: list<i32> = [1, 300], 5: struct { 1: bool = true },
        //          20: i64 = 7 (long-form header) }
        let bytes = [
            0x15, 0x05, // field 1 (delta 1), i32, zigzag(-3) = 5
            0x18, 0x02, b'a', b'b', // field 2, binary
            0x19, 0x25, 0x02, 0xd8, 0x04, // field 3, list of 2 i32: 1, 300
            0x2c, 0x11, 0x00, // field 5 (delta 2), struct { field 1 = true }
            0x06, 0x28, 0x0e, // field 20 in long form: type i64, zigzag id 20 = 40, value 7
            0x00,
        ];
        let (s, used) = read_struct(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(s.int(1).unwrap(), -3);
        assert_eq!(s.string(2).unwrap(), "ab");
        assert_eq!(s.list(3).unwrap(), &[Value::Int(1), Value::Int(300)]);
        assert_eq!(s.strukt(5).unwrap().opt_bool(1), Some(true));
        assert_eq!(s.int(20).unwrap(), 7);
        assert!(s.int(4).is_err());
    }

    #[test]
    fn truncated_or_unknown_data_is_an_error_not_a_panic() {
        assert!(read_struct(&[0x15]).is_err());
        assert!(read_struct(&[0x1d, 0x00]).is_err());
        assert!(read_struct(&[0x19, 0xf5, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
