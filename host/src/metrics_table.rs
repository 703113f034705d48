//! A run's evaluated points as one tidy table (one row per edge, method, anchor count, repeat and
//! metric), written as CSV or Parquet for pandas, polars or R (`commute export RUN --metrics`).

use crate::run::RunMetrics;
use crate::HostError;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;

/// The columns, in order.
pub const COLUMNS: [&str; 9] =
    ["experiment", "parent", "child", "method", "anchors", "repeat", "metric", "value", "null"];

/// One row: one metric of one evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The experiment's name.
    pub experiment: String,
    /// The edge's parent node (the map's source).
    pub parent: String,
    /// The edge's child node (the map's target).
    pub child: String,
    /// The method's label as the report writes it (`ridge`, `functional + self-learning`).
    pub method: String,
    /// Anchors given.
    pub anchors: u64,
    /// Repeat index.
    pub repeat: u64,
    /// Metric name (`p@1`, `vocab-p@1`, `cka`…).
    pub metric: String,
    /// The score on the test items; `None` where the fit failed (or the score is not a number).
    pub value: Option<f64>,
    /// The same metric of the permutation null; `None` when the edge asked for no null.
    pub null: Option<f64>,
}

/// The table of every evaluated point of `metrics`, in the order metrics.json lists them: edges,
/// then points, then the edge's metrics in declared order.
pub fn rows(metrics: &RunMetrics) -> Vec<Row> {
    let finite = |v: Option<&f64>| v.copied().filter(|v| v.is_finite());
    let mut rows = Vec::new();
    for edge in &metrics.edges {
        for point in &edge.points {
            for metric in &edge.metrics {
                rows.push(Row {
                    experiment: metrics.experiment.clone(),
                    parent: edge.parent.clone(),
                    child: edge.child.clone(),
                    method: point.method.clone(),
                    anchors: point.anchors as u64,
                    repeat: point.repeat as u64,
                    metric: metric.clone(),
                    value: finite(point.scores.get(metric)),
                    null: point.null.as_ref().and_then(|n| finite(n.get(metric))),
                });
            }
        }
    }
    rows
}

/// The table format a file name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line (RFC 4180 quoting); empty fields for `None`.
    Csv,
    /// Apache Parquet, Snappy-compressed; `None` as null.
    Parquet,
}

impl Format {
    /// The format of `path` by its extension (`.csv`, `.parquet` or `.pq`, any case).
    pub fn of(path: &Path) -> Result<Format, HostError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(HostError::Usage(format!(
                "{}: cannot tell the table format from the extension; use .csv or .parquet",
                path.display()
            ))),
        }
    }
}

/// Writes `rows` to `path` in `format`, atomically (a reader never sees half a table).
pub fn write(path: &Path, rows: &[Row], format: Format) -> Result<(), HostError> {
    let bytes = match format {
        Format::Csv => csv(rows).into_bytes(),
        Format::Parquet => {
            parquet(rows).map_err(|e| HostError::format(path, format!("writing Parquet: {e}")))?
        }
    };
    crate::value_io::write_atomic(path, &bytes).map_err(|e| e.while_writing("write the table"))
}

/// The CSV text of `rows`.
pub fn csv(rows: &[Row]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let number = |v: Option<f64>| v.map(|v| format!("{v:?}")).unwrap_or_default();
    for r in rows {
        let fields = [
            quoted(&r.experiment),
            quoted(&r.parent),
            quoted(&r.child),
            quoted(&r.method),
            r.anchors.to_string(),
            r.repeat.to_string(),
            quoted(&r.metric),
            number(r.value),
            number(r.null),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
fn quoted(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The Parquet bytes of `rows`: one row group, strings as UTF-8, counts as int64, scores as
/// nullable doubles.
pub fn parquet(rows: &[Row]) -> parquet::errors::Result<Vec<u8>> {
    let schema = Arc::new(parse_message_type(
        "message metrics {
            REQUIRED BYTE_ARRAY experiment (UTF8);
            REQUIRED BYTE_ARRAY parent (UTF8);
            REQUIRED BYTE_ARRAY child (UTF8);
            REQUIRED BYTE_ARRAY method (UTF8);
            REQUIRED INT64 anchors;
            REQUIRED INT64 repeat;
            REQUIRED BYTE_ARRAY metric (UTF8);
            OPTIONAL DOUBLE value;
            OPTIONAL DOUBLE null;
        }",
    )?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props)?;
    let mut group = writer.next_row_group()?;
    let texts: [fn(&Row) -> &str; 4] = [|r| &r.experiment, |r| &r.parent, |r| &r.child, |r| &r.method];
    for text in texts {
        let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(text(r))).collect();
        write_column::<ByteArrayType>(&mut group, &values, None)?;
    }
    for count in [|r: &Row| r.anchors, |r: &Row| r.repeat] {
        let values: Vec<i64> = rows.iter().map(|r| i64::try_from(count(r)).unwrap_or(i64::MAX)).collect();
        write_column::<Int64Type>(&mut group, &values, None)?;
    }
    let metric: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.metric.as_str())).collect();
    write_column::<ByteArrayType>(&mut group, &metric, None)?;
    for score in [|r: &Row| r.value, |r: &Row| r.null] {
        let present: Vec<f64> = rows.iter().filter_map(score).collect();
        let levels: Vec<i16> = rows.iter().map(|r| i16::from(score(r).is_some())).collect();
        write_column::<DoubleType>(&mut group, &present, Some(&levels))?;
    }
    group.close()?;
    writer.into_inner()
}

/// Writes the next column of `group`: `values` (the present ones, for a nullable column with
/// definition `levels`).
fn write_column<T: parquet::data_type::DataType>(
    group: &mut parquet::file::writer::SerializedRowGroupWriter<'_, Vec<u8>>,
    values: &[T::T],
    levels: Option<&[i16]>,
) -> parquet::errors::Result<()> {
    let mut column = group
        .next_column()?
        .ok_or_else(|| parquet::errors::ParquetError::General("more columns than the schema has".into()))?;
    column.typed::<T>().write_batch(values, levels, None)?;
    column.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    fn row(method: &str, value: Option<f64>, null: Option<f64>) -> Row {
        Row {
            experiment: "demo".into(),
            parent: "audio".into(),
            child: "notes".into(),
            method: method.into(),
            anchors: 25,
            repeat: 3,
            metric: "p@1".into(),
            value,
            null,
        }
    }

    #[test]
    fn csv_quotes_fields_that_need_it_and_leaves_missing_numbers_empty() {
        let rows =
            [row("ridge (lambda = 0.1, mu = 2)", Some(0.25), None), row("say \"hi\"", None, Some(0.0))];
        let text = csv(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "experiment,parent,child,method,anchors,repeat,metric,value,null");
        assert_eq!(lines[1], "demo,audio,notes,\"ridge (lambda = 0.1, mu = 2)\",25,3,p@1,0.25,");
        assert_eq!(lines[2], "demo,audio,notes,\"say \"\"hi\"\"\",25,3,p@1,,0.0");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn parquet_reads_back_row_for_row_with_nulls_where_values_are_missing() {
        let rows = vec![
            row("ridge", Some(0.125), Some(0.0)),
            row("functional + self-learning", None, Some(0.5)),
            row("cca", Some(1.0), None),
        ];
        let bytes = parquet(&rows).unwrap();
        let file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &file, &bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let names: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(names, COLUMNS);
        let read: Vec<Vec<(String, Field)>> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect())
            .collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[1][3].1, Field::Str("functional + self-learning".into()));
        assert_eq!(read[0][4].1, Field::Long(25));
        assert_eq!(read[0][7].1, Field::Double(0.125));
        assert_eq!(read[1][7].1, Field::Null);
        assert_eq!(read[1][8].1, Field::Double(0.5));
        assert_eq!(read[2][8].1, Field::Null);
    }

    #[test]
    fn the_format_comes_from_the_extension() {
        assert_eq!(Format::of(Path::new("m.CSV")).unwrap(), Format::Csv);
        assert_eq!(Format::of(Path::new("out/m.parquet")).unwrap(), Format::Parquet);
        let err = Format::of(Path::new("m.json")).unwrap_err().to_string();
        assert!(err.contains(".csv or .parquet"), "{err}");
    }
}
