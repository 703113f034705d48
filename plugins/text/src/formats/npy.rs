//! NumPy `.npy` files holding a 2-D little-endian `float32` array, in C or Fortran order
//! (GloVe's table is stored column by column, spaCy's `vocab/vectors` row by row).

use commute_sdk::anyhow::{bail, ensure, Context as _, Result};
use std::io::Read;
use std::path::Path;

/// A row-major `rows × cols` matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i` (panics when out of range, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Reads a 2-D `<f4` array from a `.npy` file, row-major in memory whatever its order on disk.
pub fn read_f32_matrix(path: &Path) -> Result<Matrix> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_from(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("{} is not a 2-D float32 .npy array", path.display()))
}

/// Reads a 2-D `<f4` array from a `.npy` stream, row-major in memory whatever its order on disk.
pub fn read_from(mut r: impl Read) -> Result<Matrix> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).context("too short for a .npy header")?;
    ensure!(&magic[..6] == b"\x93NUMPY", "no .npy magic bytes");
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => bail!("unsupported .npy format version {v}"),
    };
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    let (rows, cols, fortran) = parse_header(&header)?;
    let n = rows.checked_mul(cols).context("array too large")?;
    // Reserve at most 1 GiB up front: a corrupt shape fails on the missing data, not on allocation.
    let mut data = Vec::with_capacity(n.min(1 << 28));
    let mut buf = vec![0u8; 1 << 16];
    while data.len() < n {
        let want = ((n - data.len()) * 4).min(buf.len());
        r.read_exact(&mut buf[..want]).with_context(|| format!("data ends before {rows} × {cols} values"))?;
        data.extend(buf[..want].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    if fortran {
        // Stored column by column: element (r, c) is at c * rows + r. Writing rows in order
        // reads `cols` sequential streams, which caches handle well.
        let mut row_major = Vec::with_capacity(n);
        for r in 0..rows {
            row_major.extend((0..cols).map(|c| data[c * rows + r]));
        }
        data = row_major;
    }
    Ok(Matrix { rows, cols, data })
}

/// Reads `(rows, cols, fortran_order)` from a header such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (400000, 50), }`.
fn parse_header(header: &str) -> Result<(usize, usize, bool)> {
    let value = |key: &str| -> Result<&str> {
        let start =
            header.find(&format!("'{key}'")).with_context(|| format!("header has no '{key}': {header}"))?;
        let rest = &header[start + key.len() + 2..];
        Ok(rest.trim_start().trim_start_matches(':').trim_start())
    };
    let descr = value("descr")?;
    ensure!(
        descr.starts_with("'<f4'"),
        "dtype is {}, expected '<f4' (little-endian float32)",
        descr.split(',').next().unwrap_or(descr)
    );
    let order = value("fortran_order")?;
    let fortran = match () {
        _ if order.starts_with("True") => true,
        _ if order.starts_with("False") => false,
        _ => bail!("unreadable fortran_order in {header}"),
    };
    let shape = value("shape")?;
    let inner = shape.strip_prefix('(').and_then(|s| s.split(')').next()).context("malformed shape")?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().with_context(|| format!("bad dimension {s:?}")))
        .collect::<Result<_>>()?;
    match dims[..] {
        [rows, cols] => Ok((rows, cols, fortran)),
        _ => bail!("expected a 2-D array, the shape is ({inner})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, values: &[f32]) -> Vec<u8> {
        npy_ordered(descr, "False", shape, values)
    }

    fn npy_ordered(descr: &str, fortran: &str, shape: &str, values: &[f32]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    #[test]
    fn reads_a_small_matrix_row_by_row() {
        let m = read_from(&npy("<f4", "(2, 3)", &[1.0, 2.0, 3.0, -4.0, 5.5, 6.0])[..]).unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(m.row(1), &[-4.0, 5.5, 6.0]);
    }

    #[test]
    fn fortran_order_is_transposed_to_rows() {
        // Columns (1, -4), (2, 5.5), (3, 6) on disk.
        let m =
            read_from(&npy_ordered("<f4", "True", "(2, 3)", &[1.0, -4.0, 2.0, 5.5, 3.0, 6.0])[..]).unwrap();
        assert_eq!(m.row(0), &[1.0, 2.0, 3.0]);
        assert_eq!(m.row(1), &[-4.0, 5.5, 6.0]);
    }

    #[test]
    fn refuses_other_dtypes_shapes_and_truncated_data() {
        let err = read_from(&npy("<f8", "(1, 1)", &[1.0, 2.0])[..]).unwrap_err().to_string();
        assert!(err.contains("'<f4'"), "{err}");
        let err = read_from(&npy("<f4", "(4,)", &[1.0; 4])[..]).unwrap_err().to_string();
        assert!(err.contains("2-D"), "{err}");
        let err = read_from(&npy("<f4", "(2, 2)", &[1.0; 3])[..]).unwrap_err().to_string();
        assert!(err.contains("data ends"), "{err}");
        assert!(read_from(&b"PK\x03\x04 not numpy"[..]).is_err());
    }
}
