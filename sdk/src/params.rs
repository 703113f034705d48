//! Parameters: parsing them from TOML text and describing them from their schema.

use crate::function::Params;
use crate::manifest::{Bounds, ParamSpec};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value as Json};

/// Parameters for functions that take none: rejects any key.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Parses parameters from TOML text (an empty text means "all defaults"), refusing numbers
/// outside the bounds their fields declare (see [`Bounds`]).
pub(crate) fn parse<P: Params>(text: &str) -> Result<P, String> {
    let params: P = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    let bounded: Vec<ParamSpec> = describe::<P>().into_iter().filter(|s| !s.bounds.is_none()).collect();
    if bounded.is_empty() {
        return Ok(params);
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    for spec in bounded {
        if let Some(value) = table.get(&spec.name) {
            if let Some(found) = out_of_bounds(&spec, value) {
                return Err(format!("{} must be {}, found {found}", spec.name, spec.bounds));
            }
        }
    }
    Ok(params)
}

/// The number in `value` (or in an array `value`) that lies outside the parameter's declared
/// bounds, if any.
pub fn out_of_bounds(spec: &ParamSpec, value: &toml::Value) -> Option<f64> {
    if spec.bounds.is_none() {
        return None;
    }
    let number = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    match value {
        toml::Value::Array(items) => items.iter().filter_map(number).find(|&x| !spec.bounds.contains(x)),
        v => number(v).filter(|&x| !spec.bounds.contains(x)),
    }
}

/// Describes the parameters of `P` from its JSON schema: names, types, defaults, doc comments.
pub fn describe<P: Params>() -> Vec<ParamSpec> {
    let schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<P>();
    let root = schema.as_value();
    let defs = root.get("$defs").and_then(Json::as_object).cloned().unwrap_or_default();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Json::as_array)
        .map(|r| r.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = root.get("properties").and_then(Json::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, prop)| ParamSpec {
            name: name.clone(),
            ty: type_name(prop, &defs),
            required: required.contains(&name.as_str()),
            default: prop.get("default").cloned().map(shortest_float),
            doc: prop
                .get("description")
                .or_else(|| resolve(prop, &defs).and_then(|d| d.get("description")))
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            bounds: bounds(prop),
            file: has_format(prop, &defs, "path"),
            folder: has_format(prop, &defs, "folder"),
        })
        .collect()
}

/// Whether a property is a string schema with `"format": format` (directly, or under `anyOf` for
/// an `Option<String>`): `"path"` for a file, `"folder"` for a folder.
fn has_format(prop: &Json, defs: &Map<String, Json>, format: &str) -> bool {
    let path = |schema: &Json| schema.get("format").and_then(Json::as_str) == Some(format);
    path(prop)
        || resolve(prop, defs).is_some_and(path)
        || prop.get("anyOf").and_then(Json::as_array).is_some_and(|alts| alts.iter().any(path))
}

/// The bounds in a property's schema, or in its items' schema for an array.
fn bounds(prop: &Json) -> Bounds {
    let of = |schema: &Json| {
        let number = |key: &str| schema.get(key).and_then(Json::as_f64);
        Bounds {
            minimum: number("minimum"),
            maximum: number("maximum"),
            exclusive_minimum: number("exclusiveMinimum"),
            exclusive_maximum: number("exclusiveMaximum"),
        }
    };
    let own = of(prop);
    if own.is_none() {
        if let Some(items) = prop.get("items") {
            return of(items);
        }
    }
    own
}

/// A default written from an `f32` (0.05f32 is 0.05000000074505806 as an f64) shown as the f32's
/// shortest decimal form, which is how the author wrote it.
fn shortest_float(value: Json) -> Json {
    match value {
        Json::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            let short = x as f32;
            if f64::from(short) == x {
                short
                    .to_string()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Json::Number(n), Json::Number)
            } else {
                Json::Number(n)
            }
        }
        Json::Array(items) => Json::Array(items.into_iter().map(shortest_float).collect()),
        other => other,
    }
}

fn resolve<'a>(schema: &'a Json, defs: &'a Map<String, Json>) -> Option<&'a Json> {
    let reference = schema.get("$ref")?.as_str()?;
    defs.get(reference.rsplit('/').next()?)
}

fn type_name(schema: &Json, defs: &Map<String, Json>) -> String {
    if let Some(target) = resolve(schema, defs) {
        return type_name(target, defs);
    }
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        return one_of(values.iter());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Json::as_array) {
            if options.iter().all(|o| o.get("const").is_some()) {
                return one_of(options.iter().filter_map(|o| o.get("const")));
            }
            let names: Vec<String> =
                options.iter().map(|o| type_name(o, defs)).filter(|n| n != "null").collect();
            return names.join(" | ");
        }
    }
    match schema.get("type") {
        Some(Json::String(t)) => simple_type(t, schema, defs),
        Some(Json::Array(types)) => types
            .iter()
            .filter_map(Json::as_str)
            .filter(|t| *t != "null")
            .map(|t| simple_type(t, schema, defs))
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    }
}

fn simple_type(t: &str, schema: &Json, defs: &Map<String, Json>) -> String {
    match t {
        "number" => "float".to_owned(),
        "array" => match schema.get("items") {
            Some(items) => format!("array of {}", type_name(items, defs)),
            None => "array".to_owned(),
        },
        "object" => "table".to_owned(),
        other => other.to_owned(),
    }
}

fn one_of<'a>(values: impl Iterator<Item = &'a Json>) -> String {
    let names: Vec<String> =
        values.map(|v| v.as_str().map(|s| format!("\"{s}\"")).unwrap_or_else(|| v.to_string())).collect();
    format!("one of {}", names.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// Test parameters.
    #[derive(Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Example {
        /// How many semitones to shift by.
        semitones: i32,
        /// Gain in decibels.
        #[serde(default = "default_gain")]
        gain_db: f32,
        /// Optional label.
        #[serde(default)]
        label: Option<String>,
        /// Voice shape.
        #[serde(default)]
        shape: Shape,
        /// Ratios.
        #[serde(default)]
        ratios: Vec<f64>,
        /// A step in seconds.
        #[serde(default = "default_step")]
        step_s: f32,
        /// A model file.
        #[serde(default)]
        #[schemars(extend("format" = "path"))]
        model: String,
        /// An optional vocabulary file.
        #[serde(default)]
        #[schemars(extend("format" = "path"))]
        vocabulary: Option<String>,
        /// A folder of clips.
        #[serde(default)]
        #[schemars(extend("format" = "folder"))]
        clips: String,
    }

    fn default_gain() -> f32 {
        6.0
    }

    fn default_step() -> f32 {
        0.05
    }

    /// A voice shape.
    #[derive(Debug, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Shape {
        #[default]
        Sine,
        Square,
    }

    #[test]
    fn parse_reads_toml_and_applies_defaults() {
        let p: Example = parse("semitones = -2").unwrap();
        assert_eq!(
            p,
            Example {
                semitones: -2,
                gain_db: 6.0,
                label: None,
                shape: Shape::Sine,
                ratios: vec![],
                step_s: 0.05,
                model: String::new(),
                vocabulary: None,
                clips: String::new(),
            }
        );
    }

    #[test]
    fn parse_errors_name_the_problem_and_position() {
        let err = parse::<Example>("semitones = 1\nsemitone = 2").unwrap_err();
        assert!(err.contains("unknown field `semitone`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = parse::<Example>("").unwrap_err();
        assert!(err.contains("missing field `semitones`"), "{err}");
        let err = parse::<Example>("semitones = \"two\"").unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn describe_lists_names_types_defaults_and_docs() {
        let specs = describe::<Example>();
        let by_name = |n: &str| specs.iter().find(|s| s.name == n).unwrap().clone();
        let semitones = by_name("semitones");
        assert_eq!((semitones.ty.as_str(), semitones.required), ("integer", true));
        assert_eq!(semitones.doc, "How many semitones to shift by.");
        let gain = by_name("gain-db");
        assert_eq!((gain.ty.as_str(), gain.required), ("float", false));
        assert_eq!(gain.default, Some(serde_json::json!(6.0)));
        assert_eq!(by_name("label").ty, "string");
        assert_eq!(by_name("shape").ty, "one of \"sine\" | \"square\"");
        assert_eq!(by_name("ratios").ty, "array of float");
        assert_eq!(by_name("step-s").default, Some(serde_json::json!(0.05)), "f32 defaults read as written");
        assert!(by_name("model").file && by_name("vocabulary").file, "paths declared as files");
        assert!(!by_name("label").file, "a string is not a file");
        assert!(by_name("clips").folder && !by_name("clips").file, "a folder is not a file");
        assert!(!by_name("model").folder && !by_name("label").folder);
    }

    /// Parameters with declared ranges.
    #[derive(Debug, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Ranged {
        /// Mel bands.
        #[serde(default = "default_bands")]
        #[schemars(range(min = 1, max = 512))]
        n_mels: u32,
        /// A gain factor.
        #[serde(default = "default_factor")]
        #[schemars(range(max = 4.0), extend("exclusiveMinimum" = 0.0))]
        factor: f32,
        /// Counts.
        #[serde(default)]
        counts: Vec<usize>,
    }

    fn default_bands() -> u32 {
        64
    }

    fn default_factor() -> f32 {
        1.0
    }

    #[test]
    fn declared_ranges_are_described_and_refused_when_parsing() {
        let specs = describe::<Ranged>();
        let by_name = |n: &str| specs.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(by_name("n-mels").bounds.to_string(), "in [1, 512]");
        assert_eq!(by_name("factor").bounds.to_string(), "in (0, 4]");
        assert_eq!(by_name("counts").bounds.to_string(), "≥ 0", "unsigned items");
        assert!(parse::<Ranged>("n-mels = 512\nfactor = 4.0").is_ok());
        assert_eq!(parse::<Ranged>("n-mels = 600").unwrap_err(), "n-mels must be in [1, 512], found 600");
        assert_eq!(parse::<Ranged>("factor = 0").unwrap_err(), "factor must be in (0, 4], found 0");
        assert!(describe::<Example>().iter().filter(|p| p.ty == "float").all(|p| p.bounds.is_none()));
    }

    #[test]
    fn no_params_accepts_empty_text_and_rejects_keys() {
        assert!(parse::<NoParams>("").is_ok());
        assert!(parse::<NoParams>("x = 1").unwrap_err().contains("unknown field"));
        assert!(describe::<NoParams>().is_empty());
    }
}
