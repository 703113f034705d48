//! Vectors computed elsewhere (`[nodes.X] embeddings = "vectors.npy"`): read from `.npy`,
//! `.safetensors` or `.parquet` with their keys, checked (2-D floats, one dimension, no NaN rows,
//! no duplicate keys), and fingerprinted by the files' sha256 for the cache and the run manifest.

use crate::cache::{Key, KeyBuilder};
use crate::experiment::{EmbeddingsFile, MatchBy};
use crate::HostError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The container a file's extension names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// numpy's `.npy`: one float32 or float64 array, items × dimension.
    Npy,
    /// `.safetensors`: named tensors; one 2-D float tensor holds the vectors.
    Safetensors,
    /// Apache Parquet: a key column and a list column of floats, or one float column per dimension.
    Parquet,
}

impl Format {
    /// The format of `path` by its extension (any case); `None` for anything else.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "npy" => Some(Format::Npy),
            "safetensors" => Some(Format::Safetensors),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// What identifies a node's vectors: the sha256 of the vectors file and of its keys file, with the
/// options that choose rows. Recorded in the run folder (`source.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Fingerprint {
    /// The vectors file, resolved against the experiment's folder.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// The keys file, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<PathBuf>,
    /// Its sha256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_sha256: Option<String>,
}

impl Fingerprint {
    /// Hashes the files of `spec` (paths relative to `base`).
    pub fn of(spec: &EmbeddingsFile, base: &Path) -> Result<Fingerprint, HostError> {
        let path = base.join(&spec.path);
        let sha256 = sha256_file(&path)?;
        let keys = spec.keys.as_ref().map(|k| base.join(k));
        let keys_sha256 = keys.as_deref().map(sha256_file).transpose()?;
        Ok(Fingerprint { path, sha256, keys, keys_sha256 })
    }

    /// The cache key of the vectors as `spec` reads them: the files' content and the options, not
    /// their paths (a moved file keeps its cached embeddings).
    pub fn key(&self, spec: &EmbeddingsFile) -> Key {
        let mut k = KeyBuilder::new("embeddings-file");
        k.text(&self.sha256).text(self.keys_sha256.as_deref().unwrap_or(""));
        k.text(spec.key_column.as_deref().unwrap_or("")).text(spec.vectors.as_deref().unwrap_or(""));
        k.text(match spec.match_by {
            MatchBy::Text => "text",
            MatchBy::FileName => "file-name",
            MatchBy::Index => "index",
        });
        k.finish()
    }
}

/// The sha256 of a file's bytes, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String, HostError> {
    let mut file = std::fs::File::open(path).map_err(|e| HostError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| HostError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Vectors read from a file: `rows` × `dim`, with a key per row when the file has keys.
#[derive(Debug, Clone)]
pub struct Table {
    /// Rows.
    pub rows: usize,
    /// Dimension.
    pub dim: usize,
    /// Values, row-major.
    pub data: Vec<f32>,
    /// Row of each key.
    index: HashMap<String, usize>,
}

impl Table {
    /// Reads and checks the vectors `spec` declares (paths relative to `base`).
    pub fn load(spec: &EmbeddingsFile, base: &Path) -> Result<Table, HostError> {
        let path = base.join(&spec.path);
        let bad = |m: String| HostError::format(&path, m);
        let format = Format::of(&path).ok_or_else(|| {
            bad("cannot read vectors from this file; give a .npy, .safetensors or .parquet file".into())
        })?;
        let (rows, dim, data, keys) = match format {
            Format::Npy => {
                let file = std::fs::File::open(&path).map_err(|e| HostError::io(&path, e))?;
                let array = commute_sdk::npy::read(std::io::BufReader::new(file)).map_err(bad)?;
                let [rows, dim] = array.shape[..] else {
                    return Err(bad(format!(
                        "the array has shape {:?}; vectors are a 2-D array, items × dimension",
                        array.shape
                    )));
                };
                (rows, dim, array.data, None)
            }
            Format::Safetensors => {
                let bytes = std::fs::read(&path).map_err(|e| HostError::io(&path, e))?;
                let (rows, dim, data) = safetensors(&bytes, spec.vectors.as_deref()).map_err(bad)?;
                (rows, dim, data, None)
            }
            Format::Parquet => {
                let file = std::fs::File::open(&path).map_err(|e| HostError::io(&path, e))?;
                let t = parquet(file, spec.key_column.as_deref(), spec.vectors.as_deref()).map_err(bad)?;
                (t.rows, t.dim, t.data, t.keys)
            }
        };
        if rows == 0 || dim == 0 {
            return Err(bad(format!("the vectors are {rows} × {dim}: there is nothing to read")));
        }
        let keys = match (&spec.keys, keys) {
            (Some(file), _) => Some(read_keys(&base.join(file), rows)?),
            (None, keys) => keys,
        };
        if let Some(row) = (0..rows).find(|&r| data[r * dim..(r + 1) * dim].iter().any(|v| !v.is_finite())) {
            let bad_value = data[row * dim..(row + 1) * dim].iter().find(|v| !v.is_finite()).copied();
            let what = if bad_value.is_some_and(f32::is_nan) { "NaN" } else { "an infinite value" };
            let key = keys.as_ref().map(|k: &Vec<String>| format!(" (key `{}`)", k[row])).unwrap_or_default();
            return Err(bad(format!("row {row}{key} has {what}; every vector must be finite")));
        }
        let mut index = HashMap::new();
        if let Some(keys) = keys {
            for (row, key) in keys.into_iter().enumerate() {
                if let Some(first) = index.insert(key.clone(), row) {
                    let source = spec.keys.as_ref().map_or(path.clone(), |k| base.join(k));
                    return Err(HostError::format(
                        source,
                        format!("key `{key}` is given to rows {first} and {row}; each key must name one row"),
                    ));
                }
            }
        }
        Ok(Table { rows, dim, data, index })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The row whose key is `key`.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The row of a file named `name`: its key is the name, or the name without its extension.
    pub fn find_file(&self, name: &str) -> Option<usize> {
        self.find(name).or_else(|| {
            let stem = Path::new(name).file_stem()?.to_str()?;
            self.find(stem)
        })
    }
}

/// What `commute check` can say about a node's vectors without reading them: the container is
/// readable, holds one 2-D float array (a tensor, or Parquet columns, that `vectors` and
/// `key-column` find), and the keys file has a key on every line, one per row. Errors name the
/// file they are about (the vectors' or the keys'). NaN rows and duplicate keys need the
/// content, so [`Table::load`] finds those.
pub fn probe(spec: &EmbeddingsFile, base: &Path) -> Result<(), HostError> {
    let path = base.join(&spec.path);
    let bad = |m: String| HostError::format(&path, m);
    let open = || std::fs::File::open(&path).map_err(|e| HostError::io(&path, e));
    let rows = match Format::of(&path) {
        None => {
            return Err(bad(
                "cannot read vectors from this file; give a .npy, .safetensors or .parquet file".into()
            ))
        }
        Some(Format::Npy) => {
            let shape = commute_sdk::npy::shape(std::io::BufReader::new(open()?)).map_err(bad)?;
            let [rows, _] = shape[..] else {
                return Err(bad(format!(
                    "the array has shape {shape:?}; vectors are a 2-D array, items × dimension"
                )));
            };
            rows
        }
        Some(Format::Safetensors) => {
            let mut file = open()?;
            let mut first8 = [0u8; 8];
            file.read_exact(&mut first8).map_err(|_| bad("not a .safetensors file (too short)".into()))?;
            let mut header = vec![0u8; safetensors_header_length(&first8).map_err(bad)?];
            file.read_exact(&mut header)
                .map_err(|_| bad("not a .safetensors file (its header is cut short)".into()))?;
            safetensors_tensor(&header, spec.vectors.as_deref()).map_err(bad)?.rows
        }
        Some(Format::Parquet) => {
            parquet_layout(open()?, spec.key_column.as_deref(), spec.vectors.as_deref()).map_err(bad)?.1.rows
        }
    };
    if let Some(keys) = &spec.keys {
        read_keys(&base.join(keys), rows)?;
    }
    Ok(())
}

/// One key per line of a text file (a final line break is optional), `rows` of them.
fn read_keys(path: &Path, rows: usize) -> Result<Vec<String>, HostError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostError::io(path, e))?;
    let keys: Vec<String> = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned()).collect();
    if let Some(line) = keys.iter().position(String::is_empty) {
        return Err(HostError::format(path, format!("line {} is empty; every row needs a key", line + 1)));
    }
    if keys.len() != rows {
        return Err(HostError::format(
            path,
            format!("{} keys for {rows} rows of vectors; give one key per row, in row order", keys.len()),
        ));
    }
    Ok(keys)
}

/// The tensor of a `.safetensors` file that holds the vectors, as its header describes it.
struct SafeTensor {
    name: String,
    dtype: String,
    rows: usize,
    dim: usize,
    /// Bytes per value.
    width: usize,
    /// Its data, as offsets from the end of the header.
    offsets: (usize, usize),
}

/// The length-prefixed JSON header at the start of a `.safetensors` file: its bytes end at
/// `8 + length`.
fn safetensors_header_length(first8: &[u8]) -> Result<usize, String> {
    let len = first8.get(..8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    len.and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l < 1 << 30)
        .ok_or_else(|| "not a .safetensors file (its header is cut short)".to_owned())
}

/// The 2-D float tensor `name` (or the only tensor) described by a `.safetensors` header.
fn safetensors_tensor(header: &[u8], name: Option<&str>) -> Result<SafeTensor, String> {
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| format!("not a .safetensors file (unreadable header: {e})"))?;
    let names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    let quoted = || names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let (tensor_name, t) = match name {
        Some(n) => header
            .get(n)
            .map(|t| (n, t))
            .ok_or_else(|| format!("no tensor `{n}`; the file holds {}", quoted()))?,
        None => match names[..] {
            [only] => (only.as_str(), &header[only]),
            _ => {
                return Err(format!(
                    "the file holds {} tensors ({}); name the vectors with `vectors = \"…\"`",
                    names.len(),
                    quoted()
                ))
            }
        },
    };
    let dtype = t["dtype"].as_str().unwrap_or("?").to_owned();
    let numbers = |key: &str| -> Vec<usize> {
        t[key]
            .as_array()
            .map(|s| s.iter().filter_map(|d| d.as_u64()).map(|d| d as usize).collect())
            .unwrap_or_default()
    };
    let shape = numbers("shape");
    let [rows, dim] = shape[..] else {
        return Err(format!(
            "tensor `{tensor_name}` has shape {shape:?}; vectors are 2-D, items × dimension"
        ));
    };
    let width = match dtype.as_str() {
        "F32" => 4,
        "F64" => 8,
        "F16" | "BF16" => 2,
        other => {
            return Err(format!("tensor `{tensor_name}` is {other}; vectors must be F32, F64, F16 or BF16"))
        }
    };
    let offsets = match numbers("data_offsets")[..] {
        [a, b] if a <= b => (a, b),
        _ => return Err(format!("tensor `{tensor_name}`: unreadable data offsets")),
    };
    if offsets.1 - offsets.0 != rows * dim * width {
        return Err(format!(
            "tensor `{tensor_name}` ({rows} × {dim} {dtype}) needs {} bytes, its data has {}",
            rows * dim * width,
            offsets.1 - offsets.0
        ));
    }
    Ok(SafeTensor { name: tensor_name.to_owned(), dtype, rows, dim, width, offsets })
}

/// The 2-D float tensor `name` (or the only tensor) of a `.safetensors` file: rows, dim, values.
fn safetensors(bytes: &[u8], name: Option<&str>) -> Result<(usize, usize, Vec<f32>), String> {
    let end = 8 + safetensors_header_length(bytes)?;
    let header = bytes.get(8..end).ok_or("not a .safetensors file (its header is cut short)")?;
    let SafeTensor { name: tensor_name, dtype, rows, dim, width, offsets } =
        safetensors_tensor(header, name)?;
    let data = bytes
        .get(end + offsets.0..end + offsets.1)
        .ok_or_else(|| format!("tensor `{tensor_name}`: its data offsets lie outside the file"))?;
    debug_assert_eq!(data.len(), rows * dim * width);
    let dtype = dtype.as_str();
    let values = match dtype {
        "F32" => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        "F64" => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        "BF16" => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => data
            .chunks_exact(2)
            .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
    };
    Ok((rows, dim, values))
}

/// What a Parquet file gave.
struct ParquetVectors {
    rows: usize,
    dim: usize,
    data: Vec<f32>,
    keys: Option<Vec<String>>,
}

/// Which columns of a Parquet file hold the vectors: one list column, or one float column per
/// dimension.
struct ParquetLayout {
    list: Option<String>,
    wide: Vec<String>,
    /// Rows, from the file's metadata.
    rows: usize,
}

/// Opens a Parquet file's metadata (not its rows) and finds its layout: codecs it can read, the
/// key column, and the vectors — the list column `vectors` (or the only list column), or else
/// every float column but the key column.
fn parquet_layout(
    file: std::fs::File,
    key_column: Option<&str>,
    vectors: Option<&str>,
) -> Result<(parquet::file::reader::SerializedFileReader<std::fs::File>, ParquetLayout), String> {
    use parquet::basic::{Compression, Type as Physical};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let reader = SerializedFileReader::new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let meta = reader.metadata();
    for group in meta.row_groups() {
        for column in group.columns() {
            let codec = column.compression();
            if !matches!(codec, Compression::UNCOMPRESSED | Compression::SNAPPY) {
                // `ZSTD(ZstdLevel(1))` → `ZSTD`.
                let name = codec.to_string();
                let name = name.split('(').next().unwrap_or_default().to_owned();
                return Err(format!(
                    "column `{}` is compressed with {name}, which commute does not read; write the file \
                     with Snappy (pandas' default: `df.to_parquet(path)`; polars: \
                     `df.write_parquet(path, compression=\"snappy\")`) or uncompressed",
                    column.column_path().string()
                ));
            }
        }
    }
    let rows = usize::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    let fields = meta.file_metadata().schema_descr().root_schema().get_fields().to_vec();
    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    if let Some(k) = key_column {
        if !names.contains(&k) {
            return Err(format!("no column `{k}` for the keys; the columns are {}", quote_all(&names)));
        }
    }
    let is_list = |f: &parquet::schema::types::Type| f.is_group();
    let is_float = |f: &parquet::schema::types::Type| {
        f.is_primitive() && matches!(f.get_physical_type(), Physical::FLOAT | Physical::DOUBLE)
    };
    let list: Option<String> = match vectors {
        Some(v) => {
            let field = fields.iter().find(|f| f.name() == v).ok_or_else(|| {
                format!("no column `{v}` for the vectors; the columns are {}", quote_all(&names))
            })?;
            if !is_list(field) {
                return Err(format!("column `{v}` is not a list of floats (one vector per row)"));
            }
            Some(v.to_owned())
        }
        None => {
            let lists: Vec<&str> = fields.iter().filter(|f| is_list(f)).map(|f| f.name()).collect();
            match lists[..] {
                [] => None,
                [one] => Some(one.to_owned()),
                _ => {
                    return Err(format!(
                        "several list columns ({}); name the vectors with `vectors = \"…\"`",
                        quote_all(&lists)
                    ))
                }
            }
        }
    };
    let wide: Vec<String> = if list.is_some() {
        Vec::new()
    } else {
        fields
            .iter()
            .filter(|f| is_float(f) && Some(f.name()) != key_column)
            .map(|f| f.name().to_owned())
            .collect()
    };
    if list.is_none() && wide.is_empty() {
        return Err(format!(
            "no vectors: no list column and no float column besides the keys; the columns are {}",
            quote_all(&names)
        ));
    }
    Ok((reader, ParquetLayout { list, wide, rows }))
}

/// Reads a Parquet file's vectors ([`parquet_layout`]), with keys from `key_column`.
fn parquet(
    file: std::fs::File,
    key_column: Option<&str>,
    vectors: Option<&str>,
) -> Result<ParquetVectors, String> {
    use parquet::file::reader::FileReader;
    use parquet::record::Field;

    let (reader, layout) = parquet_layout(file, key_column, vectors)?;
    let list = layout.list.as_deref();
    let wide: Vec<&str> = layout.wide.iter().map(String::as_str).collect();
    let mut data = Vec::new();
    let mut keys = key_column.map(|_| Vec::new());
    let mut dim = None;
    let rows = reader.get_row_iter(None).map_err(|e| format!("unreadable rows: {e}"))?;
    for (r, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("row {r} is unreadable: {e}"))?;
        let before = data.len();
        let mut key = None;
        for (name, field) in row.get_column_iter() {
            if Some(name.as_str()) == key_column {
                key = Some(match field {
                    Field::Str(s) => s.clone(),
                    Field::Null => return Err(format!("row {r} has no key (null in `{name}`)")),
                    other => other.to_string(),
                });
            } else if Some(name.as_str()) == list {
                let Field::ListInternal(values) = field else {
                    return Err(format!("row {r}: column `{name}` holds no list (null?)"));
                };
                for v in values.elements() {
                    data.push(float(v).ok_or_else(|| format!("row {r}: `{name}` holds {v}, not a float"))?);
                }
            } else if wide.contains(&name.as_str()) {
                data.push(float(field).ok_or_else(|| format!("row {r}: column `{name}` is null"))?);
            }
        }
        let width = data.len() - before;
        if *dim.get_or_insert(width) != width {
            return Err(format!(
                "row {r} has {width} values where row 0 has {}; every vector must have the same dimension",
                dim.unwrap_or(0)
            ));
        }
        if let (Some(keys), Some(key)) = (keys.as_mut(), key) {
            keys.push(key);
        }
    }
    let dim = dim.unwrap_or(0);
    let rows = data.len().checked_div(dim).unwrap_or(0);
    Ok(ParquetVectors { rows, dim, data, keys })
}

fn float(field: &parquet::record::Field) -> Option<f32> {
    use parquet::record::Field;
    match field {
        Field::Float(v) => Some(*v),
        Field::Double(v) => Some(*v as f32),
        _ => None,
    }
}

fn quote_all(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::spans::EmbeddingsSpans;

    fn spec(path: &str, keys: Option<&str>, match_by: MatchBy) -> EmbeddingsFile {
        EmbeddingsFile {
            path: path.into(),
            keys: keys.map(PathBuf::from),
            key_column: None,
            vectors: None,
            match_by,
            spans: EmbeddingsSpans::default(),
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn npy(rows: &[[f32; 3]]) -> Vec<u8> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        commute_sdk::npy::encode_f32(&[rows.len(), 3], &flat)
    }

    fn error(spec: &EmbeddingsFile, dir: &Path) -> String {
        Table::load(spec, dir).unwrap_err().to_string()
    }

    #[test]
    fn npy_rows_are_found_by_their_keys_and_files_by_name_or_stem() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "v.npy", &npy(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        write(dir.path(), "k.txt", b"cat.wav\r\ndog\n");
        let t = Table::load(&spec("v.npy", Some("k.txt"), MatchBy::Text), dir.path()).unwrap();
        assert_eq!((t.rows, t.dim), (2, 3));
        assert_eq!(t.find("dog"), Some(1));
        assert_eq!(t.row(1), [4.0, 5.0, 6.0]);
        assert_eq!(t.find("cat"), None, "text matches the whole key");
        assert_eq!(t.find_file("cat.wav"), Some(0));
        assert_eq!(t.find_file("dog.wav"), Some(1), "a key without the extension");
        assert_eq!(t.find_file("cow.wav"), None);
    }

    #[test]
    fn bad_vectors_and_keys_are_refused_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "v.npy", &npy(&[[1.0, 2.0, 3.0], [4.0, f32::NAN, 6.0], [7.0, 8.0, 9.0]]));
        write(d, "k.txt", b"a\nb\nc\n");
        let e = error(&spec("v.npy", Some("k.txt"), MatchBy::Text), d);
        assert!(e.contains("row 1 (key `b`) has NaN"), "{e}");

        write(d, "ok.npy", &npy(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]));
        write(d, "dup.txt", b"a\nb\na\n");
        let e = error(&spec("ok.npy", Some("dup.txt"), MatchBy::Text), d);
        assert!(e.contains("dup.txt") && e.contains("key `a` is given to rows 0 and 2"), "{e}");

        write(d, "short.txt", b"a\nb\n");
        let e = error(&spec("ok.npy", Some("short.txt"), MatchBy::Text), d);
        assert!(e.contains("2 keys for 3 rows"), "{e}");

        write(d, "gap.txt", b"a\n\nc\n");
        let e = error(&spec("ok.npy", Some("gap.txt"), MatchBy::Text), d);
        assert!(e.contains("line 2 is empty"), "{e}");

        write(d, "flat.npy", &commute_sdk::npy::encode_f32(&[4], &[1.0, 2.0, 3.0, 4.0]));
        let e = error(&spec("flat.npy", None, MatchBy::Index), d);
        assert!(e.contains("shape [4]") && e.contains("2-D"), "{e}");

        let mut ints = commute_sdk::npy::encode_f32(&[1, 2], &[1.0, 2.0]);
        let at = ints.windows(5).position(|w| w == b"'<f4'").unwrap();
        ints[at..at + 5].copy_from_slice(b"'<i4'");
        write(d, "ints.npy", &ints);
        let e = error(&spec("ints.npy", None, MatchBy::Index), d);
        assert!(e.contains("'<i4'") && e.contains("float32"), "{e}");
    }

    /// A `.safetensors` file of the given tensors: (name, dtype, shape, raw little-endian bytes).
    fn safetensors_file(tensors: &[(&str, &str, [usize; 2], Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            let begin = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                (*name).to_owned(),
                serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()] }),
            );
        }
        header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn safetensors_tensors_are_read_in_every_float_width_and_chosen_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f32s: Vec<u8> = [0.5f32, -1.0, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f64s: Vec<u8> = [0.25f64, 8.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        // 1.5 in bfloat16 is 0x3FC0; in IEEE half 0x3E00.
        let bf16: Vec<u8> = [0x3FC0u16, 0xC000].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16: Vec<u8> = [0x3E00u16, 0x4000].iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = safetensors_file(&[
            ("a", "F32", [2, 2], f32s),
            ("b", "F64", [1, 2], f64s),
            ("c", "BF16", [1, 2], bf16),
            ("d", "F16", [2, 1], f16),
        ]);
        write(dir.path(), "v.safetensors", &file);
        let mut s = spec("v.safetensors", None, MatchBy::Index);
        let e = error(&s, dir.path());
        assert!(e.contains("4 tensors") && e.contains("`vectors = \"…\"`"), "{e}");
        let read = |name: &str, s: &mut EmbeddingsFile| {
            s.vectors = Some(name.to_owned());
            let t = Table::load(s, dir.path()).unwrap();
            (t.rows, t.dim, t.data)
        };
        assert_eq!(read("a", &mut s), (2, 2, vec![0.5, -1.0, 2.0, 3.0]));
        assert_eq!(read("b", &mut s), (1, 2, vec![0.25, 8.0]));
        assert_eq!(read("c", &mut s), (1, 2, vec![1.5, -2.0]));
        assert_eq!(read("d", &mut s), (2, 1, vec![1.5, 2.0]));
        s.vectors = Some("e".into());
        assert!(error(&s, dir.path()).contains("no tensor `e`; the file holds `a`, `b`, `c`, `d`"));
    }

    /// A Parquet file with a string key column and, per row, a vector: as one list column (the
    /// three-level layout pandas and polars write) or as one double column per dimension.
    fn parquet_file(keys: &[&str], rows: &[Vec<f64>], as_list: bool) -> Vec<u8> {
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use std::sync::Arc;
        let dim = rows[0].len();
        let schema = if as_list {
            "message m { REQUIRED BYTE_ARRAY word (UTF8); OPTIONAL group vec (LIST) { REPEATED group list { OPTIONAL DOUBLE element; } } }".to_owned()
        } else {
            let columns: String = (0..dim).map(|j| format!("OPTIONAL DOUBLE d{j}; ")).collect();
            format!("message m {{ REQUIRED BYTE_ARRAY word (UTF8); {columns} }}")
        };
        let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema).unwrap());
        let props = Arc::new(WriterProperties::builder().build());
        let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let words: Vec<ByteArray> = keys.iter().map(|k| ByteArray::from(*k)).collect();
        column.typed::<ByteArrayType>().write_batch(&words, None, None).unwrap();
        column.close().unwrap();
        if as_list {
            let values: Vec<f64> = rows.iter().flatten().copied().collect();
            let defs = vec![3i16; values.len()];
            let reps: Vec<i16> = rows.iter().flat_map(|r| (0..r.len()).map(|j| i16::from(j > 0))).collect();
            let mut column = group.next_column().unwrap().unwrap();
            column.typed::<DoubleType>().write_batch(&values, Some(&defs), Some(&reps)).unwrap();
            column.close().unwrap();
        } else {
            for j in 0..dim {
                let values: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                let mut column = group.next_column().unwrap().unwrap();
                column
                    .typed::<DoubleType>()
                    .write_batch(&values, Some(&vec![1; values.len()]), None)
                    .unwrap();
                column.close().unwrap();
            }
        }
        group.close().unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn parquet_vectors_come_from_a_list_column_or_one_column_per_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
        for (name, as_list) in [("list.parquet", true), ("wide.parquet", false)] {
            write(dir.path(), name, &parquet_file(&["cat", "dog"], &rows, as_list));
            let mut s = spec(name, None, MatchBy::Text);
            s.key_column = Some("word".into());
            let t = Table::load(&s, dir.path()).unwrap();
            assert_eq!((t.rows, t.dim), (2, 3), "{name}");
            assert_eq!(t.row(t.find("dog").unwrap()), [4.0, 5.0, 6.0], "{name}");
            s.key_column = Some("token".into());
            assert!(error(&s, dir.path()).contains("no column `token` for the keys"), "{name}");
        }
        write(dir.path(), "ragged.parquet", &parquet_file(&["a", "b"], &[vec![1.0, 2.0], vec![3.0]], true));
        let mut s = spec("ragged.parquet", None, MatchBy::Text);
        s.key_column = Some("word".into());
        let e = error(&s, dir.path());
        assert!(e.contains("row 1 has 1 values where row 0 has 2"), "{e}");
    }

    #[test]
    fn a_probe_reads_headers_only_and_names_the_file_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ok.npy", &npy(&[[1.0, 2.0, 3.0], [4.0, f32::NAN, 6.0]]));
        write(d, "two.txt", b"a\nb\n");
        write(d, "three.txt", b"a\nb\nc\n");
        probe(&spec("ok.npy", Some("two.txt"), MatchBy::Text), d)
            .expect("a NaN row needs the values: not a probe's");
        let e = probe(&spec("ok.npy", Some("three.txt"), MatchBy::Text), d).unwrap_err();
        assert!(matches!(&e, HostError::Format { path, .. } if path.ends_with("three.txt")), "{e}");
        assert!(e.to_string().contains("3 keys for 2 rows"), "{e}");
        write(d, "flat.npy", &commute_sdk::npy::encode_f32(&[3], &[1.0, 2.0, 3.0]));
        let e = probe(&spec("flat.npy", None, MatchBy::Index), d).unwrap_err().to_string();
        assert!(e.contains("flat.npy") && e.contains("2-D"), "{e}");

        let ints: Vec<u8> = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        write(d, "i.safetensors", &safetensors_file(&[("v", "I32", [1, 2], ints)]));
        let e = probe(&spec("i.safetensors", None, MatchBy::Index), d).unwrap_err().to_string();
        assert!(e.contains("tensor `v` is I32"), "{e}");

        write(d, "w.parquet", &parquet_file(&["cat"], &[vec![1.0, 2.0]], true));
        let mut s = spec("w.parquet", None, MatchBy::Text);
        s.key_column = Some("token".into());
        let e = probe(&s, d).unwrap_err().to_string();
        assert!(e.contains("no column `token` for the keys"), "{e}");
        s.key_column = Some("word".into());
        probe(&s, d).unwrap();
    }

    #[test]
    fn the_cache_key_follows_the_content_and_the_options_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.npy", &npy(&[[1.0, 2.0, 3.0]]));
        write(d, "b.npy", &npy(&[[1.0, 2.0, 3.0]]));
        write(d, "c.npy", &npy(&[[1.0, 2.0, 3.5]]));
        let key = |s: &EmbeddingsFile| Fingerprint::of(s, d).unwrap().key(s);
        let a = spec("a.npy", None, MatchBy::Index);
        assert_eq!(key(&a), key(&spec("b.npy", None, MatchBy::Index)), "same bytes, another name");
        assert_ne!(key(&a), key(&spec("c.npy", None, MatchBy::Index)), "other vectors");
        write(d, "k.txt", b"x\n");
        write(d, "k2.txt", b"y\n");
        let keyed = spec("a.npy", Some("k.txt"), MatchBy::Text);
        assert_ne!(key(&keyed), key(&spec("a.npy", Some("k2.txt"), MatchBy::Text)), "other keys");
        assert_ne!(key(&keyed), key(&spec("a.npy", Some("k.txt"), MatchBy::FileName)), "another match");
        let fp = Fingerprint::of(&keyed, d).unwrap();
        assert_eq!(fp.sha256, sha256_file(&d.join("b.npy")).unwrap());
        assert_eq!(fp.sha256.len(), 64);
    }
}
