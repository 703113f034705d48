//! Vector tables in NumPy `.npy` files: a 2-D array, in C or Fortran order (GloVe's table is stored
//! column by column, spaCy's `vocab/vectors` row by row), read by the SDK's codec.

use commute_sdk::anyhow::{self, bail, Context as _, Result};
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

/// Reads a 2-D array from a `.npy` file (float32 or float64, in C or Fortran order), row-major in
/// memory whatever its order on disk, through the SDK's streaming reader.
pub fn read_f32_matrix(path: &Path) -> Result<Matrix> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_from(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("{} is not a 2-D float .npy array", path.display()))
}

/// Reads a 2-D array from a `.npy` stream, row-major in memory whatever its order on disk.
pub fn read_from(r: impl Read) -> Result<Matrix> {
    let array = commute_sdk::npy::read(r).map_err(anyhow::Error::msg)?;
    match array.shape[..] {
        [rows, cols] => Ok(Matrix { rows, cols, data: array.data }),
        _ => bail!("expected a 2-D array, the shape is {:?}", array.shape),
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
        let err = read_from(&npy("<i4", "(1, 1)", &[1.0])[..]).unwrap_err().to_string();
        assert!(err.contains("'<i4'"), "{err}");
        let err = read_from(&npy("<f4", "(4,)", &[1.0; 4])[..]).unwrap_err().to_string();
        assert!(err.contains("2-D"), "{err}");
        let err = read_from(&npy("<f4", "(2, 2)", &[1.0; 3])[..]).unwrap_err().to_string();
        assert!(err.contains("the file ends before"), "{err}");
        assert!(read_from(&b"PK\x03\x04 not numpy"[..]).is_err());
    }
}
