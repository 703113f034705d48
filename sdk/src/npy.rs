//! NumPy `.npy` arrays: the workspace's one reader and writer (float32 out; float32 or float64, C
//! or Fortran order, in), for the host's inputs and outputs and the plugins' vector tables.

use std::io::Read;

/// The header of a float32, C-order array of `shape`: magic, version 1.0, length, and the
/// dictionary padded so that the data starts at a multiple of 64 bytes.
pub fn header_f32(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    // A header is a few dozen bytes per dimension: far below u16::MAX for any real shape.
    out.extend_from_slice(&u16::try_from(header.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// A whole float32 array: [`header_f32`] then the values, little-endian.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let mut out = header_f32(shape);
    out.reserve(data.len() * 4);
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// An array read from a `.npy` file: its shape and its values in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major, converted to f32.
    pub data: Vec<f32>,
}

/// What a `.npy` header says: the shape, the width of a value in bytes (4 or 8) and the order.
struct Header {
    shape: Vec<usize>,
    width: usize,
    fortran: bool,
    /// The shape as written, for messages.
    written: String,
}

/// The shape of the little-endian float32 or float64 array in a `.npy` stream, from its header
/// alone (the data is not read): the checks [`read`] makes before it reads the values.
pub fn shape(mut r: impl Read) -> Result<Vec<usize>, String> {
    header(&mut r).map(|h| h.shape)
}

/// Reads the header: magic, version, length, and the dictionary's dtype, order and shape.
fn header(r: &mut impl Read) -> Result<Header, String> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| "not a .npy file (too short for its magic bytes)".to_owned())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no magic bytes)".to_owned());
    }
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| "the .npy header is cut short".to_owned())?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| "the .npy header is cut short".to_owned())?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let mut header = vec![0u8; header_len.min(1 << 20)];
    r.read_exact(&mut header).map_err(|_| "the .npy header is cut short".to_owned())?;
    let header = String::from_utf8_lossy(&header);
    let field = |key: &str| -> Result<&str, String> {
        let at =
            header.find(&format!("'{key}'")).ok_or_else(|| format!("the header has no '{key}': {header}"))?;
        Ok(header[at + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    let width = match () {
        _ if descr.starts_with("'<f4'") => 4,
        _ if descr.starts_with("'<f8'") => 8,
        _ => {
            let dtype = descr.split(',').next().unwrap_or(descr);
            return Err(format!("dtype {dtype} is not little-endian float32 ('<f4') or float64 ('<f8')"));
        }
    };
    let order = field("fortran_order")?;
    let fortran = if order.starts_with("True") {
        true
    } else if order.starts_with("False") {
        false
    } else {
        return Err(format!("unreadable fortran_order in {header}"));
    };
    let inner = field("shape")?
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("malformed shape in {header}"))?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad dimension {s:?} in the shape ({inner})")))
        .collect::<Result<_, _>>()?;
    Ok(Header { shape, width, fortran, written: inner.to_owned() })
}

/// Reads a little-endian float32 (`<f4`) or float64 (`<f8`) array, in C or Fortran order, from a
/// stream: the values go straight into the array (a 400,000 × 300 table is read without a second
/// copy of its bytes), and data beyond the shape is an error, like data that ends before it.
pub fn read(mut r: impl Read) -> Result<Array, String> {
    let Header { shape, width, fortran, written: inner } = header(&mut r)?;
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("the shape is too large")?;
    // Reserve at most 1 GiB up front: a corrupt shape fails on the missing data, not on allocation.
    let mut flat: Vec<f32> = Vec::with_capacity(n.min(1 << 28));
    let mut buf = vec![0u8; 1 << 16];
    while flat.len() < n {
        let want = ((n - flat.len()) * width).min(buf.len());
        r.read_exact(&mut buf[..want]).map_err(|_| {
            format!(
                "a ({inner}) array of {width}-byte floats needs {} bytes of data; the file ends before",
                n * width
            )
        })?;
        match width {
            4 => {
                flat.extend(buf[..want].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            _ => flat.extend(
                buf[..want]
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
            ),
        }
    }
    if r.read(&mut buf[..1]).map_err(|e| e.to_string())? > 0 {
        return Err(format!("the file holds more data than a ({inner}) array of {width}-byte floats"));
    }
    let data = if fortran && shape.len() > 1 { fortran_to_c(&shape, &flat) } else { flat };
    Ok(Array { shape, data })
}

/// [`read`] from bytes in memory.
pub fn decode(bytes: &[u8]) -> Result<Array, String> {
    read(bytes)
}

/// Reorders a column-major (first index fastest) array to row-major (last index fastest).
fn fortran_to_c(shape: &[usize], flat: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(flat.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..flat.len() {
        // Position of `index` in Fortran order.
        let (mut at, mut stride) = (0, 1);
        for (i, d) in index.iter().zip(shape) {
            at += i * stride;
            stride *= d;
        }
        out.push(flat[at]);
        // Next index in C order.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_owned();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn a_written_array_reads_back_with_its_shape_and_aligned_data() {
        let data: Vec<f32> = (0..6).map(|i| i as f32 - 2.5).collect();
        let bytes = encode_f32(&[2, 3], &data);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!((bytes.len() - 24) % 64, 0, "data starts at a multiple of 64");
        assert_eq!(decode(&bytes).unwrap(), Array { shape: vec![2, 3], data });
        let one = decode(&encode_f32(&[3], &[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(one.shape, vec![3]);
    }

    #[test]
    fn float64_and_fortran_order_are_converted_to_row_major_f32() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column: 1 4 2 5 3 6.
        let body: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bytes = with_header("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", &body);
        let a = decode(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn other_dtypes_and_short_data_are_named() {
        let ints = with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", &[0; 8]);
        assert!(decode(&ints).unwrap_err().contains("'<i8'"));
        let short = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 4]);
        assert!(decode(&short).unwrap_err().contains("needs 8 bytes of data; the file ends before"));
        let long = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &[0; 8]);
        assert!(decode(&long).unwrap_err().contains("more data than"));
        assert!(decode(b"PK\x03\x04 a zip").unwrap_err().contains("not a .npy file"));
    }
}
