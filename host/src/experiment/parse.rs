//! Reading an experiment file: TOML with spans → [`Experiment`], collecting every error at once
//! (unknown keys with suggestions, wrong types, missing keys, bad method tables).
//!
//! This is the first of two layers: it checks the file's own shape. [`super::validate`] then
//! checks it against the plugins (functions, kinds, parameters) and as a graph.

use super::diagnostic::{suggest, Diagnostic};
use super::spans::{CallSpans, DataSpans, EdgeSpans, EmbeddingsSpans, NodeSpans, OperatorSpans, Span};
use super::spec::{
    Call, DataSet, Device, Edge, EdgeMethod, EditSpec, EmbeddingsFile, Encoder, Experiment, FrameSpec,
    Layers, MatchBy, Metric, Node, OperatorDecl, OperatorItems, OperatorPair, OrderSpec, Origin, Split,
    TreeSpec,
};
use crate::align::refine::RefineSpec;
use crate::align::self_learning::SelfLearningSpec;
use crate::align::unsupervised::StartSpec;
use crate::align::{AlignError, FitOn, MethodSpec, Preprocess};
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

mod stitch;

type Value<'i> = Spanned<DeValue<'i>>;

/// The most repeats an experiment may ask for (each repeat refits every method at every anchor
/// count; more is a typo, not a plan).
pub const MAX_REPEATS: i64 = 10_000;

/// For serde's ``unknown variant `procrustez`, expected one of `least-squares`, `procrustes`, …``,
/// the expected variant nearest to the one written.
fn nearest_variant(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (written, expected) = rest.split_once('`')?;
    let candidates = expected.split('`').skip(1).step_by(2);
    suggest(written, candidates)
}

/// Parses the bytes of an experiment file: UTF-8 TOML. Bytes that are not UTF-8 text (a UTF-16 or
/// Latin-1 file, a compressed or binary file) are one error at the first bad byte. `Err` holds
/// every problem found. Never panics, whatever the bytes.
pub fn parse_bytes(bytes: &[u8]) -> Result<Experiment, Vec<Diagnostic>> {
    parse(text(bytes).map_err(|d| vec![d])?)
}

/// The bytes as TOML text: UTF-8 without control characters other than tab and line breaks
/// (which TOML does not allow anywhere, and which mark a binary file).
fn text(bytes: &[u8]) -> Result<&str, Diagnostic> {
    // A byte-order mark followed by UTF-16 (ASCII characters have a zero byte: the second of
    // each pair in little-endian, the first in big-endian); other bytes after FF FE are judged
    // as UTF-8 below, and fail at the first.
    let utf16 = match bytes {
        [0xff, 0xfe] | [0xfe, 0xff] => true,
        [0xff, 0xfe, _, second, ..] => *second == 0,
        [0xfe, 0xff, first, ..] => *first == 0,
        _ => false,
    };
    if utf16 {
        return Err(Diagnostic::new(0..2, "the file is UTF-16 text, but experiment files are UTF-8")
            .with_help("save it as UTF-8 (in most editors: Save As…, then Encoding: UTF-8)"));
    }
    let source = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let byte = bytes.get(at).copied().unwrap_or(0);
        Diagnostic::new(at..at + 1, format!("the file is not UTF-8 text: byte 0x{byte:02X} is not valid UTF-8"))
            .with_help("experiment files are UTF-8 TOML: save a Latin-1 file as UTF-8; a binary or compressed file is no experiment")
    })?;
    let control =
        source.char_indices().find(|&(_, c)| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}');
    if let Some((at, c)) = control {
        return Err(Diagnostic::new(
            at..at + 1,
            format!(
                "the file contains the control character U+{:04X}, which TOML does not allow",
                u32::from(c)
            ),
        )
        .with_help("experiment files are UTF-8 TOML text; is this a binary file?"));
    }
    Ok(source)
}

/// Parses an experiment file. `Err` holds every problem found.
pub fn parse(source: &str) -> Result<Experiment, Vec<Diagnostic>> {
    let root = match DeTable::parse(source) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end();
            let key = source.get(span.clone()).map(|k| k.trim_matches(|c| c == '"' || c == '\''));
            let d = match key {
                Some(key) if message == "duplicate key" && !key.is_empty() => {
                    Diagnostic::new(span, format!("invalid TOML: duplicate key `{key}`")).with_help(
                        "a key or a table may appear only once in its table; merge or remove one of them",
                    )
                }
                _ => Diagnostic::new(span, format!("invalid TOML: {message}")),
            };
            return Err(vec![d]);
        }
    };
    let mut p = Parser { diags: Vec::new() };
    let experiment = p.experiment(root.get_ref(), root.span());
    if p.diags.is_empty() {
        Ok(experiment)
    } else {
        Err(p.diags)
    }
}

struct Parser {
    diags: Vec<Diagnostic>,
}

/// The keys of one table, taken one by one; whatever is left is unknown.
struct Fields<'a, 'i> {
    table: &'a DeTable<'i>,
    taken: Vec<&'a str>,
    span: Range<usize>,
    context: String,
}

impl<'a, 'i> Fields<'a, 'i> {
    fn new(table: &'a DeTable<'i>, span: Range<usize>, context: impl Into<String>) -> Self {
        Fields { table, taken: Vec::new(), span, context: context.into() }
    }

    fn get(&mut self, key: &'a str) -> Option<&'a Value<'i>> {
        self.taken.push(key);
        self.table.get(key)
    }

    fn finish(self, p: &mut Parser, allowed: &[&str]) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !allowed.contains(&name) {
                let mut d = Diagnostic::new(key.span(), format!("unknown key `{name}` in {}", self.context));
                d = match suggest(name, allowed.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("expected one of: {}", allowed.join(", "))),
                };
                p.diags.push(d);
            }
        }
    }
}

/// An integer value: its value, or why it has none.
enum Int {
    Value(i64),
    /// An integer beyond the 64-bit range.
    TooLarge,
    NotInteger,
}

fn int(v: &DeValue<'_>) -> Int {
    match v.as_integer() {
        Some(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Int::Value(n),
            Err(_) => Int::TooLarge,
        },
        None => Int::NotInteger,
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Parser {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    fn wrong_type(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        let found = type_name(v.get_ref());
        self.error(v.span(), format!("`{key}` must be {expected}, found {found}"));
    }

    /// A string value and where it was written.
    fn string(&mut self, f: &mut Fields<'_, '_>, key: &'static str) -> Option<(String, Span)> {
        let v = f.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            _ => {
                self.wrong_type(v, key, "a string");
                None
            }
        }
    }

    fn required_string(&mut self, f: &mut Fields<'_, '_>, key: &'static str) -> Option<(String, Span)> {
        let present = f.table.contains_key(key);
        let s = self.string(f, key);
        if !present {
            let span = f.span.clone();
            self.diags.push(
                Diagnostic::new(span, format!("{} needs `{key}`", f.context))
                    .with_help(format!("add `{key} = \"…\"`")),
            );
        }
        s
    }

    fn integer(&mut self, f: &mut Fields<'_, '_>, key: &'static str, min: i64, max: i64) -> Option<i64> {
        let v = f.get(key)?;
        match int(v.get_ref()) {
            Int::Value(i) if (min..=max).contains(&i) => Some(i),
            Int::Value(i) if i < min => {
                self.error(v.span(), format!("`{key}` must be at least {min}, found {i}"));
                None
            }
            Int::Value(i) => {
                self.error(v.span(), format!("`{key}` must be at most {max}, found {i}"));
                None
            }
            Int::TooLarge => {
                self.error(v.span(), format!("`{key}` is too large for a 64-bit integer"));
                None
            }
            Int::NotInteger => {
                self.wrong_type(v, key, "an integer");
                None
            }
        }
    }

    fn boolean(&mut self, f: &mut Fields<'_, '_>, key: &'static str) -> Option<bool> {
        let v = f.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, key, "true or false");
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, v: &'a Value<'i>, key: &str) -> Option<&'a DeTable<'i>> {
        self.table_or(v, key, None)
    }

    /// A table, or an error (with a help saying how to declare it, when given).
    fn table_or<'a, 'i>(
        &mut self,
        v: &'a Value<'i>,
        key: &str,
        help: Option<&str>,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                let d =
                    Diagnostic::new(v.span(), format!("`{key}` must be a table, found {}", type_name(other)));
                self.diags.push(match help {
                    Some(h) => d.with_help(h),
                    None => d,
                });
                None
            }
        }
    }

    /// Deserialises a value with serde (for tables whose shape a library type defines).
    fn deserialize<T: DeserializeOwned>(&mut self, v: &Value<'_>, what: &str) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(t) => Some(t),
            Err(e) => {
                let span = e.span().unwrap_or_else(|| v.span());
                let message = e.message().trim_end();
                let mut d = Diagnostic::new(span, format!("{what}: {message}"));
                if let Some(near) = nearest_variant(message) {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// The `params` table and where it was written (`fallback`, the call's table, when absent).
    fn params(&mut self, f: &mut Fields<'_, '_>, fallback: Span) -> (toml::Table, Span) {
        let Some(v) = f.get("params") else { return (toml::Table::new(), fallback) };
        if self.table(v, "params").is_none() {
            return (toml::Table::new(), v.span());
        }
        (self.deserialize::<toml::Table>(v, "params").unwrap_or_default(), v.span())
    }

    fn experiment(&mut self, root: &DeTable<'_>, span: Range<usize>) -> Experiment {
        let mut top = Fields::new(root, span.clone(), "the experiment file");
        let mut exp = Experiment {
            name: String::new(),
            seed: 0,
            anchors: Vec::new(),
            repeats: 5,
            test: None,
            split: Split::Random,
            data: Vec::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
            stitches: Vec::new(),
            tree: TreeSpec::default(),
            spans: Default::default(),
        };
        match top.get("experiment") {
            Some(v) => {
                if let Some(t) = self.table(v, "experiment") {
                    self.header(t, v.span(), &mut exp);
                }
            }
            None => self.diags.push(
                Diagnostic::new(0..0, "the file has no [experiment] table")
                    .with_help("start with [experiment] and `name`, `anchors`"),
            ),
        }
        if let Some(v) = top.get("data") {
            let help = "declare each data set as its own table, [data.NAME], with `source`, `files` or `from` + `render`";
            if let Some(t) = self.table_or(v, "data", Some(help)) {
                for (name, value) in t.iter() {
                    if let Some(d) = self.data_set(name, value) {
                        exp.data.push(d);
                    }
                }
            }
        }
        if let Some(v) = top.get("nodes") {
            let help =
                "declare each node as its own table, [nodes.NAME], with `data`, `plugin` and `encoder`";
            if let Some(t) = self.table_or(v, "nodes", Some(help)) {
                for (name, value) in t.iter() {
                    if let Some(n) = self.node(name, value) {
                        exp.nodes.push(n);
                    }
                }
            }
        }
        match top.get("edges") {
            Some(v) => match v.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(e) = self.edge(i, item) {
                            exp.edges.push(e);
                        }
                    }
                }
                _ => self.wrong_type(v, "edges", "a non-empty array of tables ([[edges]])"),
            },
            // A file of stitches alone needs no edge.
            None if top.table.contains_key("stitches") => {}
            None => self.diags.push(
                Diagnostic::new(0..0, "the file declares no edges")
                    .with_help("add an [[edges]] table with `parent` and `child`"),
            ),
        }
        if let Some(v) = top.get("stitches") {
            match v.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(s) = self.stitch(i, item) {
                            if exp.stitches.iter().any(|t| t.name == s.name) {
                                self.diags.push(
                                    Diagnostic::new(
                                        s.spans.table.clone(),
                                        format!("a second stitch named `{}`", s.name),
                                    )
                                    .with_help(
                                        "give each stitch its own `name` (a stitched node names its stitch)",
                                    ),
                                );
                            }
                            exp.stitches.push(s);
                        }
                    }
                }
                _ => self.wrong_type(v, "stitches", "a non-empty array of tables ([[stitches]])"),
            }
        }
        if let Some(zero) = exp.spans.zero_anchors.clone() {
            let undeclared = |(_, e): &(usize, &Edge)| e.starts.is_empty() && e.spans.starts.is_none();
            if let Some((i, _)) = exp.edges.iter().enumerate().find(undeclared) {
                self.diags.push(
                    Diagnostic::new(zero.clone(), format!("anchors = 0 needs zero-anchor `starts`, which edge {} has not", i + 1))
                        .with_help("add `starts = [{ kind = \"similarity-distribution\" }]` to every edge, or leave 0 out"),
                );
            }
            // An ordered split's pool is the largest anchor count's items: with no count above 0,
            // starts, refinement and self-learning would have no rows to search.
            if exp.split == Split::Ordered && exp.anchors.iter().all(|&a| a == 0) {
                self.diags.push(
                    Diagnostic::new(zero, "with split = \"ordered\" the anchor pool is the largest anchor count's items, and every count here is 0: a zero-anchor start would have no rows to search")
                        .with_help("add the anchor count whose items should form the pool (e.g. anchors = [0, 5000]), or use split = \"random\""),
                );
            }
        }
        if let Some(v) = top.get("tree") {
            let help =
                "e.g. [tree] with `anchors = 500` and `edits = [{ child = \"notes\", operator = \"up\" }]`";
            if let Some(t) = self.table_or(v, "tree", Some(help)) {
                exp.tree = self.tree(t, v.span());
            }
        }
        top.finish(self, &["experiment", "data", "nodes", "edges", "stitches", "tree"]);
        exp
    }

    fn header(&mut self, t: &DeTable<'_>, span: Range<usize>, exp: &mut Experiment) {
        let mut f = Fields::new(t, span, "[experiment]");
        let name = self.required_string(&mut f, "name");
        let name_span = name.as_ref().map(|n| n.1.clone()).unwrap_or_default();
        exp.name = name.as_ref().map(|n| n.0.clone()).unwrap_or_default();
        if name.is_some() && exp.name.is_empty() {
            let span = name_span.clone();
            self.diags.push(
                Diagnostic::new(span, "`name` must not be empty (it names the run folder)")
                    .with_help("e.g. `name = \"quickstart\"`"),
            );
        }
        if !exp.name.is_empty()
            && !exp.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                name_span,
                format!(
                    "`name` must use letters, digits, `-` and `_` only (it names a folder), found {:?}",
                    exp.name
                ),
            );
        }
        if let Some(seed) = self.integer(&mut f, "seed", 0, i64::MAX) {
            exp.seed = seed as u64;
        }
        if let Some(r) = self.integer(&mut f, "repeats", 1, MAX_REPEATS) {
            exp.repeats = r as usize;
        }
        if let Some(t) = self.integer(&mut f, "test", 1, i64::MAX) {
            exp.test = Some(t as usize);
        }
        match f.get("anchors") {
            Some(v) => {
                exp.spans.anchors = v.span();
                match v.get_ref() {
                    DeValue::Array(items) if !items.is_empty() => {
                        for item in items.iter() {
                            match int(item.get_ref()) {
                                Int::Value(n) if n >= 0 => {
                                    if n == 0 {
                                        exp.spans.zero_anchors = Some(item.span());
                                    }
                                    exp.anchors.push(n as usize)
                                }
                                Int::Value(n) => self.error(
                                    item.span(),
                                    format!("each anchor count must be an integer ≥ 0, found {n}"),
                                ),
                                Int::TooLarge => self.error(
                                    item.span(),
                                    "anchor count is too large for a 64-bit integer (and for any data set)",
                                ),
                                Int::NotInteger => self.error(
                                    item.span(),
                                    format!(
                                        "each anchor count must be an integer ≥ 0, found {}",
                                        type_name(item.get_ref())
                                    ),
                                ),
                            }
                        }
                        let mut sorted = exp.anchors.clone();
                        sorted.sort_unstable();
                        sorted.dedup();
                        if sorted.len() != exp.anchors.len() {
                            self.error(v.span(), "anchor counts must be different from each other");
                        }
                        exp.anchors = sorted;
                    }
                    _ => self.wrong_type(v, "anchors", "a non-empty array of integers, e.g. [5, 10, 100]"),
                }
            }
            None => self.diags.push(
                Diagnostic::new(f.span.clone(), "[experiment] needs `anchors`")
                    .with_help("add `anchors = [5, 10, 25, 50, 100]` (paired examples per edge)"),
            ),
        }
        let (split, span) = self.string(&mut f, "split").unwrap_or_default();
        match split.as_str() {
            "" | "random" => {}
            "ordered" => exp.split = Split::Ordered,
            other => {
                self.diags.push(
                    Diagnostic::new(span, format!("`split` must be \"random\" or \"ordered\", found \"{other}\""))
                        .with_help("\"ordered\" takes anchors from the first items and tests on the next ones (MUSE's protocol)"),
                );
            }
        }
        f.finish(self, &["name", "seed", "anchors", "repeats", "test", "split"]);
    }

    fn call(&mut self, v: &Value<'_>, key: &str) -> Option<Call> {
        let t = self.table(v, key)?;
        let mut f = Fields::new(t, v.span(), format!("`{key}`"));
        let call = self.call_keys(&mut f, "function");
        f.finish(self, &["plugin", "function", "params"]);
        call
    }

    /// `plugin`, the function's name under `function_key` and `params`, from a table that may
    /// hold more (an operator's, a node's).
    fn call_keys(&mut self, f: &mut Fields<'_, '_>, function_key: &'static str) -> Option<Call> {
        let plugin = self.required_string(f, "plugin");
        let function = self.required_string(f, function_key);
        let table = f.span.clone();
        let (params, params_span) = self.params(f, table.clone());
        let ((plugin, plugin_span), (function, function_span)) = (plugin?, function?);
        let spans = CallSpans { table, plugin: plugin_span, function: function_span, params: params_span };
        Some(Call { plugin, function, params, spans })
    }

    fn data_set(&mut self, name: &Spanned<toml::de::DeString<'_>>, v: &Value<'_>) -> Option<DataSet> {
        let name = name.get_ref().to_string();
        let path = format!("data.{name}");
        let mut spans = DataSpans { table: v.span(), ..DataSpans::default() };
        let t = self.table(v, &path)?;
        let mut f = Fields::new(t, v.span(), format!("[data.{name}]"));
        let source = f.get("source");
        let files = f.get("files");
        let from = f.get("from");
        let render = f.get("render");
        let origin = match (source, files, from, render) {
            (Some(s), None, None, None) => Some(Origin::Source { call: self.call(s, "source")? }),
            (None, Some(fl), None, None) => match fl.get_ref() {
                DeValue::String(p) => {
                    spans.files = fl.span();
                    Some(Origin::Files { path: p.to_string().into() })
                }
                _ => {
                    self.wrong_type(fl, "files", "a folder path");
                    None
                }
            },
            (None, None, Some(fr), Some(r)) => {
                let from = match fr.get_ref() {
                    DeValue::String(s) => {
                        spans.from = fr.span();
                        Some(s.to_string())
                    }
                    _ => {
                        self.wrong_type(fr, "from", "the name of another data set");
                        None
                    }
                };
                let call = self.call(r, "render");
                Some(Origin::Render { from: from?, call: call? })
            }
            (None, None, Some(fr), None) => {
                self.error(fr.span(), format!("[data.{name}] has `from` but no `render`"));
                None
            }
            (None, None, None, Some(r)) => {
                self.error(r.span(), format!("[data.{name}] has `render` but no `from`"));
                None
            }
            (None, None, None, None) => {
                self.diags.push(
                    Diagnostic::new(v.span(), format!("[data.{name}] says nowhere its items come from"))
                        .with_help("give `source = { plugin, function, params }`, `files = \"folder\"`, or `from` + `render`"),
                );
                None
            }
            _ => {
                self.error(
                    v.span(),
                    format!("[data.{name}] must have exactly one of `source`, `files` or `from` + `render`"),
                );
                None
            }
        };
        let operators = match f.get("operators") {
            Some(ops) => self.operators(&name, ops),
            None => Vec::new(),
        };
        f.finish(self, &["source", "files", "from", "render", "operators"]);
        Some(DataSet { name, origin: origin?, operators, spans })
    }

    /// `[data.NAME.operators]`: a table of `OP = { plugin, function, params, items }`.
    fn operators(&mut self, data: &str, v: &Value<'_>) -> Vec<OperatorDecl> {
        let help = format!(
            "declare each operator as NAME = {{ plugin = \"…\", function = \"…\" }} under [data.{data}.operators]"
        );
        let Some(t) = self.table_or(v, "operators", Some(&help)) else { return Vec::new() };
        let mut out = Vec::new();
        for (name, value) in t.iter() {
            let name = name.get_ref().to_string();
            let path = format!("data.{data}.operators.{name}");
            let Some(table) = self.table_or(value, &path, Some(&help)) else { continue };
            let mut f = Fields::new(table, value.span(), format!("operator `{name}` of [data.{data}]"));
            let call = self.call_keys(&mut f, "function");
            let (items, items_span) = self.string(&mut f, "items").unzip();
            f.finish(self, &["plugin", "function", "params", "items"]);
            if let Some(call) = call {
                let spans = OperatorSpans { table: value.span(), items: items_span.unwrap_or_default() };
                out.push(OperatorDecl { name, call, items, spans });
            }
        }
        out
    }

    /// An edge's `operators`: `["plural", …]` (the same name on both sides) or
    /// `{ parent-op = "child-op", … }`.
    fn operator_pairs(&mut self, v: &Value<'_>) -> Vec<OperatorPair> {
        let mut out = Vec::new();
        match v.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => {
                            out.push(OperatorPair { parent: s.to_string(), child: s.to_string() })
                        }
                        _ => self.wrong_type(item, "operators", "operator names"),
                    }
                }
            }
            DeValue::Table(t) => {
                for (parent, child) in t.iter() {
                    match child.get_ref() {
                        DeValue::String(c) => out.push(OperatorPair {
                            parent: parent.get_ref().to_string(),
                            child: c.to_string(),
                        }),
                        _ => self.wrong_type(child, parent.get_ref(), "the name of the child's operator"),
                    }
                }
            }
            _ => self.wrong_type(
                v,
                "operators",
                "an array of operator names or a table parent-operator = \"child-operator\"",
            ),
        }
        for (i, pair) in out.iter().enumerate() {
            if out[..i].contains(pair) {
                self.error(v.span(), format!("operator pair `{}` is listed twice", pair.label()));
            }
        }
        out
    }

    fn node(&mut self, name: &Spanned<toml::de::DeString<'_>>, v: &Value<'_>) -> Option<Node> {
        let name = name.get_ref().to_string();
        let path = format!("nodes.{name}");
        let t = self.table(v, &path)?;
        let mut f = Fields::new(t, v.span(), format!("[nodes.{name}]"));
        let data = self.required_string(&mut f, "data");
        if f.table.contains_key("stitch") {
            let encoder = self.stitched_node(&mut f);
            f.finish(self, &["data", "stitch", "method", "anchors"]);
            let (data, data_span) = data?;
            return Some(Node {
                name,
                data,
                encoder: Encoder::Stitched(encoder?),
                skip_failed_items: true,
                isolate: false,
                call_timeout_s: None,
                worker_memory_mib: None,
                device: Device::Cpu,
                layer_of: None,
                layers: None,
                spans: NodeSpans { table: v.span(), data: data_span, device: Span::default() },
            });
        }
        let from_file = f.table.contains_key("embeddings");
        let encoder = if from_file {
            self.embeddings_file(&mut f).map(Encoder::File)
        } else {
            self.call_keys(&mut f, "encoder").map(Encoder::Plugin)
        };
        let (on_error, _) = self.string(&mut f, "on-item-error").unwrap_or_default();
        let skip = match on_error.as_str() {
            "" | "fail" => false,
            "skip" => true,
            other => {
                if let Some(v) = f.table.get("on-item-error") {
                    self.diags.push(
                        Diagnostic::new(
                            v.span(),
                            format!("`on-item-error` must be \"fail\" or \"skip\", found \"{other}\""),
                        )
                        .with_help(
                            "\"skip\" drops the items the encoder fails on and counts them in the report",
                        ),
                    );
                }
                false
            }
        };
        let layers = if from_file { None } else { self.layers(&mut f) };
        let encoder_only =
            ["plugin", "encoder", "params", "isolate", "call-timeout", "worker-memory", "device", "layers"];
        let ((isolate, call_timeout_s, worker_memory_mib), (device, device_span)) = if from_file {
            for key in encoder_only {
                if let Some((k, _)) = f.table.get_key_value(key) {
                    self.diags.push(
                        Diagnostic::new(
                            k.span(),
                            format!("`{key}` does not apply to a node whose vectors come from `embeddings`"),
                        )
                        .with_help("a node either reads its vectors from a file or computes them with a plugin's `encoder`; remove one"),
                    );
                }
            }
            // Reported above as not applying here, so not again as unknown.
            let file_keys = ["data", "embeddings", "keys", "key-column", "vectors", "match", "on-item-error"];
            f.finish(self, &[&file_keys[..], &encoder_only[..]].concat());
            ((false, None, None), (Device::Cpu, Span::default()))
        } else {
            let isolation = self.node_isolation(&mut f);
            let device = self.device(&mut f);
            f.finish(
                self,
                &[
                    "data",
                    "plugin",
                    "encoder",
                    "params",
                    "on-item-error",
                    "isolate",
                    "call-timeout",
                    "worker-memory",
                    "device",
                    "layers",
                ],
            );
            (isolation, device)
        };
        let (data, data_span) = data?;
        Some(Node {
            name,
            data,
            encoder: encoder?,
            skip_failed_items: skip,
            isolate,
            call_timeout_s,
            worker_memory_mib,
            device,
            layer_of: None,
            layers,
            spans: NodeSpans { table: v.span(), data: data_span, device: device_span },
        })
    }

    /// A node's layer sweep: `layers = "all"`, or a non-empty list of distinct layers.
    fn layers(&mut self, f: &mut Fields<'_, '_>) -> Option<(Layers, Span)> {
        let v = f.get("layers")?;
        let expected = "\"all\" or a non-empty list of distinct layer numbers, e.g. [0, 3, 6]";
        let layers = match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "all" => Some(Layers::All),
            DeValue::Array(items) if !items.is_empty() => {
                let mut list = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Integer(_) => match int(item.get_ref()) {
                            Int::Value(k) if k >= 0 && !list.contains(&(k as usize)) => list.push(k as usize),
                            Int::Value(k) if k >= 0 => {
                                self.error(item.span(), format!("layer {k} is listed twice in `layers`"));
                                return None;
                            }
                            _ => {
                                self.error(
                                    item.span(),
                                    "layers are numbered from 0 (the input's embeddings)",
                                );
                                return None;
                            }
                        },
                        _ => {
                            self.wrong_type(item, "layers", "a layer number");
                            return None;
                        }
                    }
                }
                Some(Layers::List(list))
            }
            _ => None,
        };
        if layers.is_none() {
            self.wrong_type(v, "layers", expected);
        }
        layers.map(|l| (l, v.span()))
    }

    /// A node's vectors from a file: `embeddings`, with `keys` (`.npy`, `.safetensors`) or
    /// `key-column` (`.parquet`), `vectors` and `match`.
    fn embeddings_file(&mut self, f: &mut Fields<'_, '_>) -> Option<EmbeddingsFile> {
        let (path, path_span) = self.string(f, "embeddings")?;
        let format = crate::embeddings_file::Format::of(Path::new(&path));
        if format.is_none() {
            self.diags.push(
                Diagnostic::new(
                    path_span.clone(),
                    format!("`embeddings`: cannot read vectors from `{path}`"),
                )
                .with_help("give a .npy, .safetensors or .parquet file"),
            );
        }
        let keys = self.string(f, "keys");
        let key_column = self.string(f, "key-column");
        let vectors = self.string(f, "vectors");
        let match_by = self.string(f, "match").and_then(|(m, span)| {
            let by = match m.as_str() {
                "text" => MatchBy::Text,
                "file-name" => MatchBy::FileName,
                "index" => MatchBy::Index,
                other => {
                    self.diags.push(
                        Diagnostic::new(
                            span,
                            format!("`match` must be \"text\", \"file-name\" or \"index\", found \"{other}\""),
                        )
                        .with_help("how an item finds its row: by its text, by the name of its file, or by its position"),
                    );
                    return None;
                }
            };
            Some((by, span))
        });
        use crate::embeddings_file::Format;
        let parquet = format == Some(Format::Parquet);
        if let (Some((_, span)), true) = (&keys, parquet) {
            self.diags.push(
                Diagnostic::new(span.clone(), "a Parquet file keeps its keys in a column, not in `keys`")
                    .with_help("name the column: `key-column = \"…\"`"),
            );
        }
        if let (Some((_, span)), false) = (&key_column, parquet) {
            self.diags.push(
                Diagnostic::new(span.clone(), "`key-column` is for Parquet files")
                    .with_help("give the keys of a .npy or .safetensors file's rows in a text file, one per line: `keys = \"keys.txt\"`"),
            );
        }
        if let (Some((_, span)), Some(Format::Npy)) = (&vectors, format) {
            self.diags.push(
                Diagnostic::new(
                    span.clone(),
                    "a .npy file holds one array; `vectors` names a tensor or a column",
                )
                .with_help("remove `vectors`"),
            );
        }
        let keyed = keys.is_some() || key_column.is_some();
        let (match_by, match_span) = match match_by {
            Some((by, span)) => (by, span),
            None => (if keyed { MatchBy::Text } else { MatchBy::Index }, Span::default()),
        };
        if match_by != MatchBy::Index && !keyed {
            let what =
                if parquet { "`key-column = \"…\"`" } else { "`keys = \"keys.txt\"` (one key per line)" };
            self.diags.push(
                Diagnostic::new(
                    if match_span.is_empty() { path_span.clone() } else { match_span.clone() },
                    "matching items to rows by key needs the rows' keys",
                )
                .with_help(format!("add {what}, or `match = \"index\"` when row i is item i")),
            );
        }
        if match_by == MatchBy::Index && keyed {
            self.diags.push(
                Diagnostic::new(
                    match_span.clone(),
                    "`match = \"index\"` takes row i for item i and reads no keys",
                )
                .with_help("remove `keys`/`key-column`, or match by \"text\" or \"file-name\""),
            );
        }
        Some(EmbeddingsFile {
            path: path.into(),
            keys: keys.as_ref().map(|(k, _)| k.into()),
            key_column: key_column.map(|(c, _)| c),
            vectors: vectors.map(|(v, _)| v),
            match_by,
            spans: EmbeddingsSpans {
                path: path_span,
                keys: keys.map(|(_, s)| s).unwrap_or_default(),
                match_by: match_span,
            },
        })
    }

    /// A node's `device`: `"cpu"` (the default), `"cuda"` or `"cuda:N"`; and where it was written.
    fn device(&mut self, f: &mut Fields<'_, '_>) -> (Device, Span) {
        let Some(v) = f.get("device") else { return (Device::Cpu, Span::default()) };
        (self.device_value(v), v.span())
    }

    fn device_value(&mut self, v: &Value<'_>) -> Device {
        let help = "expected \"cpu\" (the default) or \"cuda:N\", the N-th CUDA device this process \
                    sees (from 0, e.g. \"cuda:0\")";
        match v.get_ref() {
            DeValue::String(s) => match Device::parse(s) {
                Some(device) => device,
                None => {
                    let lower = s.to_ascii_lowercase();
                    let help = match Device::parse(&lower) {
                        Some(_) => format!("did you mean \"{lower}\"? (device names are lower case)"),
                        None => help.to_owned(),
                    };
                    self.diags.push(
                        Diagnostic::new(
                            v.span(),
                            format!("`device` must be \"cpu\" or \"cuda:N\", found \"{s}\""),
                        )
                        .with_help(help),
                    );
                    Device::Cpu
                }
            },
            other => {
                let help = match int(other) {
                    Int::Value(n) if n >= 0 => format!("write `device = \"cuda:{n}\"` for CUDA device {n}"),
                    _ => help.to_owned(),
                };
                self.diags.push(
                    Diagnostic::new(
                        v.span(),
                        format!("`device` must be a string, found {}", type_name(other)),
                    )
                    .with_help(help),
                );
                Device::Cpu
            }
        }
    }

    /// A node's isolation keys: `isolate = true`, `call-timeout = "30s"` (or seconds) and
    /// `worker-memory = "2GiB"` (or MiB); the limits only with `isolate = true`.
    fn node_isolation(&mut self, f: &mut Fields<'_, '_>) -> (bool, Option<f64>, Option<u64>) {
        let isolate = self.boolean(f, "isolate").unwrap_or(false);
        let timeout = f.get("call-timeout").and_then(|v| {
            let parsed = match v.get_ref() {
                DeValue::String(s) => super::units::parse_duration(s).map(|d| d.as_secs_f64()),
                DeValue::Integer(_) | DeValue::Float(_) => {
                    let seconds = match int(v.get_ref()) {
                        Int::Value(i) => i as f64,
                        _ => v
                            .get_ref()
                            .as_float()
                            .and_then(|f| f.as_str().replace('_', "").parse().ok())
                            .unwrap_or(f64::NAN),
                    };
                    super::units::seconds_to_duration(seconds).map(|d| d.as_secs_f64()).ok_or_else(|| {
                        format!("a time limit must be a positive number of seconds, found {seconds}")
                    })
                }
                _ => {
                    self.wrong_type(v, "call-timeout", "seconds or a duration such as \"30s\" or \"2m\"");
                    return None;
                }
            };
            parsed
                .map_err(|m| self.error(v.span(), format!("`call-timeout`: {m}")))
                .ok()
                .map(|s| (s, v.span()))
        });
        let memory = f.get("worker-memory").and_then(|v| {
            let parsed = match v.get_ref() {
                DeValue::String(s) => super::units::parse_memory_mib(s),
                DeValue::Integer(_) => match int(v.get_ref()) {
                    Int::Value(i) if i > 0 => Ok(i as u64),
                    _ => Err("a memory limit must be a positive number of MiB".to_owned()),
                },
                _ => {
                    self.wrong_type(v, "worker-memory", "MiB or a size such as \"2GiB\"");
                    return None;
                }
            };
            parsed
                .map_err(|m| self.error(v.span(), format!("`worker-memory`: {m}")))
                .ok()
                .map(|m| (m, v.span()))
        });
        if !isolate {
            for (key, span) in [
                ("call-timeout", timeout.as_ref().map(|t| t.1.clone())),
                ("worker-memory", memory.as_ref().map(|m| m.1.clone())),
            ] {
                if let Some(span) = span {
                    self.diags.push(
                        Diagnostic::new(span, format!("`{key}` needs `isolate = true` on the node"))
                            .with_help("only a function in its own worker process can be stopped or capped; add `isolate = true`"),
                    );
                }
            }
        }
        (isolate, timeout.map(|t| t.0), memory.map(|m| m.0))
    }

    /// An edge's `metrics`: an array of metric names.
    fn metrics(&mut self, m: &Value<'_>) -> Vec<Metric> {
        match m.get_ref() {
            DeValue::Array(items) if items.is_empty() => {
                self.diags.push(
                    Diagnostic::new(m.span(), "`metrics` is empty: an edge needs at least one score")
                        .with_help(
                            "name some, e.g. [\"p@1\", \"mrr\"], or leave `metrics` out for all of them",
                        ),
                );
                Vec::new()
            }
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => match Metric::from_name(s) {
                        Some(metric) => Some(metric),
                        None => {
                            let names = Metric::ALL.map(Metric::name);
                            let mut d = Diagnostic::new(item.span(), format!("unknown metric `{s}`"));
                            d = match suggest(s, names) {
                                Some(close) => d.with_help(format!("did you mean `{close}`?")),
                                None => d.with_help(format!("expected one of: {}", names.join(", "))),
                            };
                            self.diags.push(d);
                            None
                        }
                    },
                    _ => {
                        self.wrong_type(item, "metrics", "metric names");
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(m, "metrics", "an array of metric names, e.g. [\"p@1\", \"mrr\"]");
                Vec::new()
            }
        }
    }

    /// One method table: `{ kind = "ridge", lambda = 0.1 }`, its parameters in range, and
    /// `refine = false` / `self-learning = false` to leave it out of the edge's wrapped variants.
    fn method(&mut self, item: &Value<'_>) -> Option<EdgeMethod> {
        if let DeValue::String(kind) = item.get_ref() {
            self.diags.push(
                Diagnostic::new(
                    item.span(),
                    format!("each method is a table with a `kind`, found the string \"{kind}\""),
                )
                .with_help(format!("write `{{ kind = \"{kind}\" }}`")),
            );
            return None;
        }
        // The wrapper switches belong to the edge, not to the method's own parameters: read them
        // and hand the rest to the method's deserializer.
        let mut rest = item.clone();
        let mut wraps = [true, true];
        if let DeValue::Table(t) = rest.get_mut() {
            for (slot, key) in wraps.iter_mut().zip(["refine", "self-learning"]) {
                let Some(v) = t.remove(key) else { continue };
                match v.get_ref() {
                    DeValue::Boolean(b) => *slot = *b,
                    _ => self.wrong_type(
                        &v,
                        key,
                        "true or false (false: leave the method out of the edge's variant)",
                    ),
                }
            }
        }
        let method: MethodSpec = self.deserialize(&rest, "a method")?;
        let [refine, self_learning] = wraps;
        match method.validate() {
            Ok(()) => Some(EdgeMethod { spec: method, refine, self_learning }),
            Err(AlignError::InvalidParameter { field, detail }) => {
                let key = field.rsplit('.').next().unwrap_or(&field);
                self.error(item.span(), format!("method `{}`: `{key}` {detail}", method.kind()));
                None
            }
            Err(e) => {
                self.error(item.span(), format!("method `{}`: {e}", method.kind()));
                None
            }
        }
    }

    /// The `[tree]` table: the analysis maps' anchors and penalty, and the controlled edits.
    fn tree(&mut self, t: &DeTable<'_>, span: Range<usize>) -> TreeSpec {
        let mut f = Fields::new(t, span, "[tree]");
        let mut spec = TreeSpec { declared: true, ..TreeSpec::default() };
        if let Some(v) = f.table.get("anchors") {
            spec.spans.anchors = v.span();
        }
        spec.anchors = self.integer(&mut f, "anchors", 2, i64::MAX).map(|a| a as usize);
        if let Some(v) = f.get("lambda") {
            let value = match v.get_ref() {
                DeValue::Float(x) => x.as_str().parse::<f64>().ok(),
                DeValue::Integer(_) => match int(v.get_ref()) {
                    Int::Value(i) => Some(i as f64),
                    _ => None,
                },
                _ => None,
            };
            match value {
                Some(x) if x.is_finite() && x > 0.0 => spec.lambda = Some(x),
                Some(x) => {
                    self.error(v.span(), format!("`lambda` must be a finite number above 0, found {x}"))
                }
                None => self.wrong_type(v, "lambda", "a number above 0 (or leave it out to cross-validate)"),
            }
        }
        if let Some(v) = f.get("edits") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let help = "each edit is `{ child = \"NODE\", operator = \"OPERATOR\" }`";
                        let Some(e) = self.table_or(item, "edits", Some(help)) else { continue };
                        let mut ef = Fields::new(e, item.span(), format!("edit {}", i + 1));
                        let child = self.required_string(&mut ef, "child");
                        let operator = self.required_string(&mut ef, "operator");
                        ef.finish(self, &["child", "operator"]);
                        if let (Some((child, _)), Some((operator, _))) = (child, operator) {
                            spec.edits.push(EditSpec { child, operator, span: item.span() });
                        }
                    }
                }
                _ => self.wrong_type(
                    v,
                    "edits",
                    "an array of tables, e.g. [{ child = \"notes\", operator = \"up\" }]",
                ),
            }
        }
        f.finish(self, &["anchors", "lambda", "edits"]);
        spec
    }

    /// An edge's `preprocess` table, its `pca` at least 1.
    fn preprocess(&mut self, v: &Value<'_>) -> Option<Preprocess> {
        let help = "e.g. `preprocess = { center = true, unit-norm = true, pca = 50 }`";
        self.table_or(v, "preprocess", Some(help))?;
        let p: Preprocess = self.deserialize(v, "preprocess")?;
        if p.pca == Some(0) {
            self.diags.push(
                Diagnostic::new(v.span(), "preprocess: `pca` must be at least 1, found 0")
                    .with_help("leave `pca` out to keep every dimension"),
            );
            return None;
        }
        Some(p)
    }

    /// An `operators` start fits from no pairs: it needs the edge's operators, a method that reads
    /// them, and preprocessing that is not fitted on the (absent) pairs.
    fn check_operators_start(
        &mut self,
        span: Span,
        operators: &[OperatorPair],
        methods: &[EdgeMethod],
        preprocess: &Preprocess,
    ) {
        let problem = if operators.is_empty() {
            Some((
                "the `operators` start fits from the edge's operators alone, and this edge has none",
                "add `operators = [\"…\"]` naming operators of both data sets",
            ))
        } else if !methods.iter().any(|m| m.spec.reads_operators()) {
            Some((
                "the `operators` start gives no pairs, so only functional methods can start from it, and \
                 this edge has none",
                "add `{ kind = \"functional\" }` to `methods`",
            ))
        } else if preprocess.fit_on == FitOn::Anchors && preprocess.fits_statistics() {
            Some((
                "the `operators` start has no pairs to fit the preprocessing on",
                "fit it on the anchor pool: `preprocess = { fit-on = \"pool\" }`",
            ))
        } else {
            None
        };
        if let Some((message, help)) = problem {
            self.diags.push(Diagnostic::new(span, message).with_help(help));
        }
    }

    fn edge(&mut self, index: usize, v: &Value<'_>) -> Option<Edge> {
        let mut spans = EdgeSpans { table: v.span(), ..EdgeSpans::default() };
        let t = self.table(v, "edges")?;
        let mut f = Fields::new(t, v.span(), format!("edge {}", index + 1));
        let parent = self.required_string(&mut f, "parent");
        let child = self.required_string(&mut f, "child");
        let methods = match f.get("methods") {
            Some(m) => {
                spans.methods = m.span();
                match m.get_ref() {
                    DeValue::Array(items) if !items.is_empty() => {
                        items.iter().filter_map(|item| self.method(item)).collect()
                    }
                    _ => {
                        self.wrong_type(
                            m,
                            "methods",
                            "a non-empty array of method tables, e.g. [{ kind = \"procrustes\" }]",
                        );
                        Vec::new()
                    }
                }
            }
            None => {
                let span = f.span.clone();
                self.diags.push(
                    Diagnostic::new(span, format!("edge {} needs `methods`", index + 1))
                        .with_help("add `methods = [{ kind = \"procrustes\" }, { kind = \"ridge\" }]`"),
                );
                Vec::new()
            }
        };
        let preprocess = f.get("preprocess").and_then(|p| self.preprocess(p)).unwrap_or_default();
        let refine = f
            .get("refine")
            .filter(|r| {
                let help = "e.g. `refine = { iterations = 5 }` (or leave it out)";
                self.table_or(r, "refine", Some(help)).is_some()
            })
            .and_then(|r| {
                let spec: RefineSpec = self.deserialize(r, "refine")?;
                match spec.validate() {
                    Ok(()) => Some(spec),
                    Err(e) => {
                        self.error(r.span(), e.to_string());
                        None
                    }
                }
            });
        let self_learning = f
            .get("self-learning")
            .filter(|r| {
                let help = "e.g. `self-learning = { cutoff = 10000 }` (or leave it out)";
                self.table_or(r, "self-learning", Some(help)).is_some()
            })
            .and_then(|r| {
                let spec: SelfLearningSpec = self.deserialize(r, "self-learning")?;
                match spec.validate() {
                    Ok(()) => Some(spec),
                    Err(e) => {
                        self.error(r.span(), e.to_string());
                        None
                    }
                }
            });
        if let Some(v) = f.table.get("starts") {
            // Declared (its errors, if any, are its own): the anchors = 0 check asks no more.
            spans.starts = Some(v.span());
        }
        // Where an `operators` start is declared: it has conditions of its own, checked below.
        let mut operators_start = None;
        let starts: Vec<StartSpec> = match f.get("starts") {
            Some(v) => match v.get_ref() {
                DeValue::Array(items) if !items.is_empty() => items
                    .iter()
                    .filter_map(|item| {
                        let spec: StartSpec = self.deserialize(item, "a zero-anchor start")?;
                        if spec.from_operators() {
                            operators_start = Some(item.span());
                        }
                        match spec.validate() {
                            Ok(()) => Some(spec),
                            Err(e) => {
                                self.error(item.span(), e.to_string());
                                None
                            }
                        }
                    })
                    .collect(),
                _ => {
                    self.wrong_type(
                        v,
                        "starts",
                        "a non-empty array of start tables, e.g. [{ kind = \"similarity-distribution\" }]",
                    );
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let frames = self.level(&mut f);
        let metrics_span = f.table.get("metrics").map(|m| m.span()).unwrap_or_default();
        let metrics = f.get("metrics").map(|m| self.metrics(m));
        let null = self.boolean(&mut f, "null").unwrap_or(true);
        if let Some(v) = f.table.get("shortcut") {
            spans.shortcut = v.span();
        }
        let shortcut = self.boolean(&mut f, "shortcut").unwrap_or(false);
        if let Some(v) = f.table.get("grid-anchors") {
            spans.grid_anchors = v.span();
        }
        let grid_anchors = self.integer(&mut f, "grid-anchors", 0, i64::from(u32::MAX)).map(|a| a as usize);
        let operators = match f.get("operators") {
            Some(v) => {
                spans.operators = v.span();
                self.operator_pairs(v)
            }
            None => Vec::new(),
        };
        let (operator_items, span) = self.string(&mut f, "operator-items").unwrap_or_default();
        let operator_items = match operator_items.as_str() {
            "" | "disjoint" => OperatorItems::Disjoint,
            "shared" => OperatorItems::Shared,
            other => {
                self.diags.push(
                    Diagnostic::new(span, format!("`operator-items` must be \"disjoint\" or \"shared\", found \"{other}\""))
                        .with_help("\"disjoint\" (the default) fits the parent's and the child's operators on different items"),
                );
                OperatorItems::Disjoint
            }
        };
        if let Some(v) = f.table.get("swatches") {
            spans.swatches = v.span();
        }
        let swatches = self.string(&mut f, "swatches").map(|(name, _)| name);
        let order_span = f.table.get("order").map(|v| v.span());
        if let Some(span) = &order_span {
            spans.order = span.clone();
        }
        let order: Option<OrderSpec> = f.get("order").and_then(|r| self.deserialize(r, "order"));
        let metrics = metrics.unwrap_or_else(|| Metric::defaults(!operators.is_empty()));
        if let (Some(spec), Some(span)) = (&order, &order_span) {
            if !operators.iter().any(|p| p.label() == spec.operator) {
                let labels: Vec<String> = operators.iter().map(|p| format!("\"{}\"", p.label())).collect();
                self.diags.push(
                    Diagnostic::new(
                        span.clone(),
                        format!("`order` names operator \"{}\", not one of the edge's", spec.operator),
                    )
                    .with_help(format!("the edge's operators: [{}]", labels.join(", "))),
                );
            }
        }
        if metrics.contains(&Metric::Order) && order.is_none() {
            self.diags.push(
                Diagnostic::new(metrics_span.clone(), "metric `order` needs the edge's `order` table")
                    .with_help(
                    "e.g. `order = { operator = \"darker\", by = \"lab\", coordinate = 0, lowers = true }`",
                ),
            );
        }
        if let Some(span) = operators_start {
            self.check_operators_start(span.clone(), &operators, &methods, &preprocess);
            let restarts = starts.iter().any(|s| s.restarts().is_some());
            if restarts && (self_learning.is_none() || !methods.iter().any(|m| m.self_learning)) {
                self.diags.push(
                    Diagnostic::new(
                        span,
                        "the start's `restarts` are runs of self-learning, and this edge has none",
                    )
                    .with_help("add `self-learning = {}` to the edge, or leave `restarts` out"),
                );
            }
        }
        if operators.is_empty() {
            for m in metrics.iter().filter(|m| m.needs_operators()) {
                self.diags.push(
                    Diagnostic::new(
                        metrics_span.clone(),
                        format!("metric `{}` needs the edge's `operators`", m.name()),
                    )
                    .with_help("add `operators = [\"…\"]` naming operators of both data sets"),
                );
            }
        }
        if frames.is_some() {
            for key in [
                "refine",
                "self-learning",
                "starts",
                "metrics",
                "order",
                "swatches",
                "shortcut",
                "grid-anchors",
            ] {
                if let Some((k, _)) = f.table.get_key_value(key) {
                    self.diags.push(
                        Diagnostic::new(k.span(), format!("`{key}` does not apply to a frame-level edge"))
                            .with_help(
                                "a `level = \"frame\"` edge fits every method on frame pairs and reports \
                                 frame-p@1, sequence-p@1 and, with `frames.decode`, note scores; leave it out",
                            ),
                    );
                }
            }
        }
        f.finish(
            self,
            &[
                "parent",
                "child",
                "methods",
                "preprocess",
                "refine",
                "self-learning",
                "starts",
                "metrics",
                "null",
                "operators",
                "operator-items",
                "order",
                "swatches",
                "shortcut",
                "grid-anchors",
                "level",
                "frames",
            ],
        );
        let ((parent, parent_span), (child, child_span)) = (parent?, child?);
        spans.parent = parent_span;
        spans.child = child_span;
        Some(Edge {
            parent,
            child,
            methods,
            preprocess,
            refine,
            self_learning,
            starts,
            metrics,
            null,
            operators,
            operator_items,
            order,
            swatches,
            shortcut,
            grid: None,
            grid_anchors,
            frames,
            spans,
        })
    }

    /// `level` (`"item"`, the default, or `"frame"`) and, for a frame-level edge, its `frames`
    /// table.
    fn level(&mut self, f: &mut Fields<'_, '_>) -> Option<FrameSpec> {
        let level = self.string(f, "level");
        let framed = match &level {
            None => false,
            Some((l, _)) if l == "item" => false,
            Some((l, _)) if l == "frame" => true,
            Some((other, span)) => {
                self.diags.push(
                    Diagnostic::new(
                        span.clone(),
                        format!("`level` must be \"item\" or \"frame\", found \"{other}\""),
                    )
                    .with_help("\"frame\" pairs the two nodes' frames (encoders with `pooling = \"none\"`)"),
                );
                return None;
            }
        };
        let table = f.get("frames");
        if !framed {
            if let Some(v) = table {
                self.diags.push(
                    Diagnostic::new(v.span(), "`frames` is for a frame-level edge")
                        .with_help("add `level = \"frame\"` to the edge, or leave `frames` out"),
                );
            }
            return None;
        }
        let mut spec = FrameSpec::default();
        let Some(v) = table else { return Some(spec) };
        let t = self.table(v, "frames")?;
        let mut g = Fields::new(t, v.span(), "`frames`");
        let count = |p: &mut Parser, g: &mut Fields<'_, '_>, key: &'static str, min: i64| {
            p.integer(g, key, min, i64::from(u32::MAX)).map(|n| n as usize)
        };
        if let Some(n) = count(self, &mut g, "fit-frames", 2) {
            spec.fit_frames = n;
        }
        if let Some(n) = count(self, &mut g, "test-frames", 2) {
            spec.test_frames = n;
        }
        if let Some(n) = count(self, &mut g, "sequences", 2) {
            spec.sequences = n;
        }
        spec.decode = g.get("decode").and_then(|d| self.call(d, "decode"));
        spec.parent_decode = g.get("parent-decode").and_then(|d| self.call(d, "parent-decode"));
        if let Some((truth, span)) = self.string(&mut g, "truth") {
            spec.truth = Some(truth);
            spec.truth_span = span;
        }
        if let Some(v) = g.get("onset-tolerance") {
            match v.get_ref().as_float().map(|x| x.as_str().parse::<f64>()) {
                Some(Ok(x)) if x > 0.0 && x <= 1.0 => spec.onset_tolerance = x,
                _ => {
                    self.error(v.span(), "`onset-tolerance` must be a number of seconds in (0, 1], e.g. 0.05")
                }
            }
        }
        if spec.parent_decode.is_some() && spec.decode.is_none() {
            self.diags.push(
                Diagnostic::new(g.span.clone(), "`parent-decode` is a reference beside `decode`")
                    .with_help("add `decode` (the child's decoder) and `truth`"),
            );
        }
        if spec.decode.is_some() != spec.truth.is_some() {
            self.diags.push(
                Diagnostic::new(g.span.clone(), "`decode` and `truth` go together")
                    .with_help("`decode` turns the child's frames into a score; `truth` names the data set of the true scores"),
            );
        }
        g.finish(
            self,
            &[
                "fit-frames",
                "test-frames",
                "sequences",
                "decode",
                "parent-decode",
                "truth",
                "onset-tolerance",
            ],
        );
        Some(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::diagnostic::render;
    use std::path::Path;

    const EXPERIMENTS: [&str; 8] = [
        include_str!("../../../experiments/quickstart.toml"),
        include_str!("../../../experiments/audio-width.toml"),
        include_str!("../../../experiments/vision-text-valence.toml"),
        include_str!("../../../experiments/cross-lingual.toml"),
        include_str!("../../../experiments/nested-music.toml"),
        include_str!("../../../experiments/word-relations.toml"),
        include_str!("../../../experiments/colour-control.toml"),
        include_str!("../../../experiments/stitching.toml"),
    ];

    #[test]
    fn every_span_a_check_reads_points_at_its_value() {
        // The file's text at each recorded span is the value it records (a header table's span is
        // its header), for every experiment shipped: a check after parsing can point at any.
        let at = |source: &str, span: &Span| source[span.clone()].trim_matches('"').to_owned();
        let mut checked = 0;
        for source in EXPERIMENTS {
            let exp = parse(source).unwrap();
            let mut calls: Vec<&Call> = exp.nodes.iter().filter_map(|n| n.encoder.call()).collect();
            for d in &exp.data {
                assert!(at(source, &d.spans.table).contains(&d.name), "{}", d.name);
                match &d.origin {
                    Origin::Source { call } => calls.push(call),
                    Origin::Render { from, call } => {
                        assert_eq!(&at(source, &d.spans.from), from);
                        calls.push(call);
                    }
                    Origin::Files { path } => assert_eq!(at(source, &d.spans.files), path.to_string_lossy()),
                }
                for op in &d.operators {
                    calls.push(&op.call);
                    if let Some(items) = &op.items {
                        assert_eq!(&at(source, &op.spans.items), items);
                    }
                }
            }
            for call in calls {
                assert_eq!(at(source, &call.spans.plugin), call.plugin);
                assert_eq!(at(source, &call.spans.function), call.function);
                let params = &source[call.spans.params.clone()];
                assert!(call.spans.params == call.spans.table || params.starts_with('{'), "{params}");
                checked += 1;
            }
            for n in &exp.nodes {
                assert_eq!(at(source, &n.spans.data), n.data);
            }
            for e in &exp.edges {
                assert_eq!(
                    (at(source, &e.spans.parent), at(source, &e.spans.child)),
                    (e.parent.clone(), e.child.clone())
                );
                assert!(at(source, &e.spans.methods).starts_with('['));
                assert!(
                    e.operators.is_empty() || at(source, &e.spans.operators).contains(&e.operators[0].parent)
                );
                assert!(at(source, &e.spans.table).starts_with("[[edges]]"));
            }
            assert!(at(source, &exp.spans.anchors).starts_with('['));
            for edit in &exp.tree.edits {
                assert!(at(source, &edit.span).contains(&edit.operator));
            }
        }
        assert!(checked > 20, "{checked} calls");
    }

    #[test]
    fn the_shipped_experiments_parse() {
        for text in EXPERIMENTS {
            assert!(parse_bytes(text.as_bytes()).is_ok(), "{text}");
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_real_file_parses_or_explains_itself() {
        // A deterministic slice of what the `experiment` fuzz target does.
        for text in EXPERIMENTS {
            let bytes = text.as_bytes();
            for len in 0..bytes.len() {
                if let Err(diags) = parse_bytes(&bytes[..len]) {
                    assert!(!diags.is_empty());
                    let shown = render(Path::new("t.toml"), &String::from_utf8_lossy(&bytes[..len]), &diags);
                    assert!(shown.contains("--> t.toml:"), "{shown}");
                }
            }
            for (i, flip) in
                (0..bytes.len()).step_by(7).zip([0x00u8, 0xff, b'[', b'"', b'=', b'\n', 0xc3].iter().cycle())
            {
                let mut changed = bytes.to_vec();
                changed[i] = *flip;
                if let Err(diags) = parse_bytes(&changed) {
                    let _ = render(Path::new("t.toml"), &String::from_utf8_lossy(&changed), &diags);
                }
            }
        }
    }

    /// A one-node experiment whose node has `line` (e.g. `device = "cuda:1"`).
    fn with_node_line(line: &str) -> String {
        format!(
            "[experiment]\nname = \"d\"\nanchors = [5]\n\n[data.s]\nsource = {{ plugin = \"music\", function = \"random-scores\" }}\n\n\
             [nodes.a]\ndata = \"s\"\nplugin = \"music\"\nencoder = \"chroma\"\n{line}\n\n\
             [[edges]]\nparent = \"a\"\nchild = \"a\"\nmethods = [{{ kind = \"ridge\" }}]\n"
        )
    }

    #[test]
    fn a_method_can_leave_the_edges_wrappers_and_says_so_in_the_record() {
        let source = with_node_line("").replace(
            "methods = [{ kind = \"ridge\" }]",
            "methods = [{ kind = \"ridge\", lambda = 0.5, self-learning = false }, { kind = \"procrustes\", refine = false }]",
        );
        let exp = parse(&source).unwrap();
        let m = &exp.edges[0].methods;
        assert_eq!((m[0].refine, m[0].self_learning), (true, false));
        assert_eq!((m[1].refine, m[1].self_learning), (false, true));
        assert_eq!(m[0].spec, MethodSpec::Ridge { lambda: 0.5 }, "the method's own keys are still read");
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json[0], serde_json::json!({ "kind": "ridge", "lambda": 0.5, "self-learning": false }));
        assert_eq!(json[1], serde_json::json!({ "kind": "procrustes", "scaled": false, "refine": false }));

        let wrong = with_node_line("").replace(
            "methods = [{ kind = \"ridge\" }]",
            "methods = [{ kind = \"ridge\", self-learning = \"no\" }]",
        );
        let diags = parse(&wrong).map(|_| ()).unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(&wrong[diags[0].span.clone()], "\"no\"");
        assert!(diags[0].message.starts_with("`self-learning` must be true or false"), "{:?}", diags[0]);
    }

    #[test]
    fn a_node_device_is_read_and_recorded_only_off_the_cpu() {
        let device = |line: &str| parse(&with_node_line(line)).map(|e| e.nodes[0].device);
        assert_eq!(device("").ok(), Some(Device::Cpu));
        assert_eq!(device("device = \"cpu\"").ok(), Some(Device::Cpu));
        assert_eq!(device("device = \"cuda\"").ok(), Some(Device::Cuda(0)));
        assert_eq!(device("device = \"cuda:1\"").ok(), Some(Device::Cuda(1)));
        let json = |line: &str| parse(&with_node_line(line)).map(|e| serde_json::to_value(&e.nodes[0]).ok());
        let on_gpu = json("device = \"cuda:1\"").ok().flatten().unwrap_or_default();
        assert_eq!(on_gpu["device"], "cuda:1", "{on_gpu}");
        for line in ["", "device = \"cpu\""] {
            let on_cpu = json(line).ok().flatten().unwrap_or_default();
            assert!(on_cpu.get("device").is_none(), "{on_cpu}");
        }
    }

    #[test]
    fn a_bad_device_is_an_error_at_its_value_with_a_help() {
        for (line, value, help) in [
            ("device = \"gpu\"", "\"gpu\"", "\"cuda:N\""),
            ("device = \"cuda:x\"", "\"cuda:x\"", "\"cuda:N\""),
            ("device = \"CUDA:0\"", "\"CUDA:0\"", "did you mean \"cuda:0\"?"),
            ("device = 0", "0", "`device = \"cuda:0\"`"),
            ("device = true", "true", "\"cuda:N\""),
        ] {
            let source = with_node_line(line);
            let diags = parse(&source).map(|_| ()).unwrap_err();
            assert_eq!(diags.len(), 1, "{line}: {diags:?}");
            assert_eq!(&source[diags[0].span.clone()], value, "{line}");
            assert!(diags[0].message.starts_with("`device` must be"), "{:?}", diags[0]);
            assert!(diags[0].help.as_deref().unwrap_or_default().contains(help), "{:?}", diags[0]);
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_text_are_one_error_at_the_first_bad_byte() {
        let at = |bytes: &[u8]| parse_bytes(bytes).map(|_| ()).unwrap_err();
        let d = at(b"[experiment]\nname = \"r\xe9sum\xe9\"\n");
        assert_eq!((d.len(), d[0].span.clone()), (1, 22..23));
        assert!(d[0].message.contains("byte 0xE9 is not valid UTF-8"), "{d:?}");
        let d = at(b"\xff\xfe[\x00e\x00");
        assert!(d[0].message.contains("UTF-16"), "{d:?}");
        let d = at(b"\xfe\xff\x00[\x00e");
        assert!(d[0].message.contains("UTF-16"), "{d:?}");
        // FF FE then ASCII is not UTF-16: the first byte is named as not UTF-8.
        let d = at(b"\xff\xfe[experiment]\n");
        assert!(!d[0].message.contains("UTF-16") && d[0].message.contains("byte 0xFF"), "{d:?}");
        assert_eq!(d[0].span, 0..1);
        let d = at(b"a = 1\nb = \"\x00\"\n");
        assert_eq!(d[0].span, 11..12);
        assert!(d[0].message.contains("control character U+0000"), "{d:?}");
    }
}
