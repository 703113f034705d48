//! Reading an experiment file: TOML with spans → [`Experiment`], collecting every error at once
//! (unknown keys with suggestions, wrong types, missing keys, bad method tables).
//!
//! This is the first of two layers: it checks the file's own shape. [`super::validate`] then
//! checks it against the plugins (functions, kinds, parameters) and as a graph.

use super::diagnostic::{suggest, Diagnostic};
use super::spec::{
    Call, DataSet, Edge, Experiment, Metric, Node, OperatorDecl, OperatorItems, OperatorPair, Origin, Split,
};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

type Value<'i> = Spanned<DeValue<'i>>;

/// Parses an experiment file. `Err` holds every problem found.
pub fn parse(source: &str) -> Result<Experiment, Vec<Diagnostic>> {
    let root = match DeTable::parse(source) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(vec![Diagnostic::new(span, format!("invalid TOML: {}", e.message().trim_end()))]);
        }
    };
    let mut p = Parser { diags: Vec::new(), spans: HashMap::new() };
    let experiment = p.experiment(root.get_ref(), root.span());
    if p.diags.is_empty() {
        Ok(experiment)
    } else {
        Err(p.diags)
    }
}

struct Parser {
    diags: Vec<Diagnostic>,
    spans: HashMap<String, Range<usize>>,
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

    fn string(&mut self, f: &mut Fields<'_, '_>, key: &'static str, path: &str) -> Option<String> {
        let v = f.get(key)?;
        self.spans.insert(format!("{path}.{key}"), v.span());
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(v, key, "a string");
                None
            }
        }
    }

    fn required_string(&mut self, f: &mut Fields<'_, '_>, key: &'static str, path: &str) -> Option<String> {
        let present = f.table.contains_key(key);
        let s = self.string(f, key, path);
        if !present {
            let span = f.span.clone();
            self.diags.push(
                Diagnostic::new(span, format!("{} needs `{key}`", f.context))
                    .with_help(format!("add `{key} = \"…\"`")),
            );
        }
        s
    }

    fn integer(&mut self, f: &mut Fields<'_, '_>, key: &'static str, min: i64) -> Option<i64> {
        let v = f.get(key)?;
        match v.get_ref().as_integer().and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok()) {
            Some(i) if i >= min => Some(i),
            Some(i) => {
                self.error(v.span(), format!("`{key}` must be at least {min}, found {i}"));
                None
            }
            None => {
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
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, key, "a table");
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
                self.error(span, format!("{what}: {}", e.message().trim_end()));
                None
            }
        }
    }

    fn params(&mut self, f: &mut Fields<'_, '_>, path: &str) -> toml::Table {
        let Some(v) = f.get("params") else { return toml::Table::new() };
        self.spans.insert(format!("{path}.params"), v.span());
        if self.table(v, "params").is_none() {
            return toml::Table::new();
        }
        self.deserialize::<toml::Table>(v, "params").unwrap_or_default()
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
            spans: HashMap::new(),
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
            if let Some(t) = self.table(v, "data") {
                for (name, value) in t.iter() {
                    if let Some(d) = self.data_set(name, value) {
                        exp.data.push(d);
                    }
                }
            }
        }
        if let Some(v) = top.get("nodes") {
            if let Some(t) = self.table(v, "nodes") {
                for (name, value) in t.iter() {
                    if let Some(n) = self.node(name, value) {
                        exp.nodes.push(n);
                    }
                }
            }
        }
        match top.get("edges") {
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(e) = self.edge(i, item) {
                            exp.edges.push(e);
                        }
                    }
                }
                _ => self.wrong_type(v, "edges", "an array of tables ([[edges]])"),
            },
            None => self.diags.push(
                Diagnostic::new(0..0, "the file declares no edges")
                    .with_help("add an [[edges]] table with `parent` and `child`"),
            ),
        }
        top.finish(self, &["experiment", "data", "nodes", "edges"]);
        exp.spans = std::mem::take(&mut self.spans);
        exp
    }

    fn header(&mut self, t: &DeTable<'_>, span: Range<usize>, exp: &mut Experiment) {
        let mut f = Fields::new(t, span, "[experiment]");
        exp.name = self.required_string(&mut f, "name", "experiment").unwrap_or_default();
        if !exp.name.is_empty()
            && !exp.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            let span = self.spans.get("experiment.name").cloned().unwrap_or(0..0);
            self.error(
                span,
                format!(
                    "`name` must use letters, digits, `-` and `_` only (it names a folder), found {:?}",
                    exp.name
                ),
            );
        }
        if let Some(seed) = self.integer(&mut f, "seed", 0) {
            exp.seed = seed as u64;
        }
        if let Some(r) = self.integer(&mut f, "repeats", 1) {
            exp.repeats = r as usize;
        }
        if let Some(t) = self.integer(&mut f, "test", 1) {
            exp.test = Some(t as usize);
        }
        match f.get("anchors") {
            Some(v) => {
                self.spans.insert("experiment.anchors".into(), v.span());
                match v.get_ref() {
                    DeValue::Array(items) if !items.is_empty() => {
                        for item in items.iter() {
                            match item.get_ref().as_integer().and_then(|i| i.as_str().parse::<i64>().ok()) {
                                Some(n) if n >= 1 => exp.anchors.push(n as usize),
                                _ => self.error(item.span(), "each anchor count must be a positive integer"),
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
        match self.string(&mut f, "split", "experiment").as_deref() {
            None | Some("random") => {}
            Some("ordered") => exp.split = Split::Ordered,
            Some(other) => {
                let span = self.spans.get("experiment.split").cloned().unwrap_or(0..0);
                self.diags.push(
                    Diagnostic::new(span, format!("`split` must be \"random\" or \"ordered\", found \"{other}\""))
                        .with_help("\"ordered\" takes anchors from the first items and tests on the next ones (MUSE's protocol)"),
                );
            }
        }
        f.finish(self, &["name", "seed", "anchors", "repeats", "test", "split"]);
    }

    fn call(&mut self, v: &Value<'_>, key: &str, path: &str) -> Option<Call> {
        let t = self.table(v, key)?;
        let mut f = Fields::new(t, v.span(), format!("`{key}`"));
        self.spans.insert(path.to_owned(), v.span());
        let plugin = self.required_string(&mut f, "plugin", path);
        let function = self.required_string(&mut f, "function", path);
        let params = self.params(&mut f, path);
        f.finish(self, &["plugin", "function", "params"]);
        Some(Call { plugin: plugin?, function: function?, params })
    }

    fn data_set(&mut self, name: &Spanned<toml::de::DeString<'_>>, v: &Value<'_>) -> Option<DataSet> {
        let name = name.get_ref().to_string();
        let path = format!("data.{name}");
        self.spans.insert(path.clone(), v.span());
        let t = self.table(v, &path)?;
        let mut f = Fields::new(t, v.span(), format!("[data.{name}]"));
        let source = f.get("source");
        let files = f.get("files");
        let from = f.get("from");
        let render = f.get("render");
        let origin = match (source, files, from, render) {
            (Some(s), None, None, None) => {
                Some(Origin::Source { call: self.call(s, "source", &format!("{path}.source"))? })
            }
            (None, Some(fl), None, None) => match fl.get_ref() {
                DeValue::String(p) => {
                    self.spans.insert(format!("{path}.files"), fl.span());
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
                        self.spans.insert(format!("{path}.from"), fr.span());
                        Some(s.to_string())
                    }
                    _ => {
                        self.wrong_type(fr, "from", "the name of another data set");
                        None
                    }
                };
                let call = self.call(r, "render", &format!("{path}.render"));
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
        Some(DataSet { name, origin: origin?, operators })
    }

    /// `[data.NAME.operators]`: a table of `OP = { plugin, function, params, items }`.
    fn operators(&mut self, data: &str, v: &Value<'_>) -> Vec<OperatorDecl> {
        let Some(t) = self.table(v, "operators") else { return Vec::new() };
        let mut out = Vec::new();
        for (name, value) in t.iter() {
            let name = name.get_ref().to_string();
            let path = format!("data.{data}.operators.{name}");
            self.spans.insert(path.clone(), value.span());
            let Some(table) = self.table(value, &path) else { continue };
            let mut f = Fields::new(table, value.span(), format!("operator `{name}` of [data.{data}]"));
            let plugin = self.required_string(&mut f, "plugin", &path);
            let function = self.required_string(&mut f, "function", &path);
            let params = self.params(&mut f, &path);
            let items = self.string(&mut f, "items", &path);
            f.finish(self, &["plugin", "function", "params", "items"]);
            if let (Some(plugin), Some(function)) = (plugin, function) {
                out.push(OperatorDecl { name, call: Call { plugin, function, params }, items });
            }
        }
        out
    }

    /// An edge's `operators`: `["plural", …]` (the same name on both sides) or
    /// `{ parent-op = "child-op", … }`.
    fn operator_pairs(&mut self, v: &Value<'_>, path: &str) -> Vec<OperatorPair> {
        self.spans.insert(format!("{path}.operators"), v.span());
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
        self.spans.insert(path.clone(), v.span());
        let t = self.table(v, &path)?;
        let mut f = Fields::new(t, v.span(), format!("[nodes.{name}]"));
        let data = self.required_string(&mut f, "data", &path);
        let plugin = self.required_string(&mut f, "plugin", &path);
        let encoder = self.required_string(&mut f, "encoder", &path);
        let params = self.params(&mut f, &path);
        let skip = match self.string(&mut f, "on-item-error", &path).as_deref() {
            None | Some("fail") => false,
            Some("skip") => true,
            Some(other) => {
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
        f.finish(self, &["data", "plugin", "encoder", "params", "on-item-error"]);
        Some(Node {
            name,
            data: data?,
            encoder: Call { plugin: plugin?, function: encoder?, params },
            skip_failed_items: skip,
        })
    }

    /// An edge's `metrics`: an array of metric names.
    fn metrics(&mut self, m: &Value<'_>) -> Vec<Metric> {
        match m.get_ref() {
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

    fn edge(&mut self, index: usize, v: &Value<'_>) -> Option<Edge> {
        let path = format!("edges.{index}");
        self.spans.insert(path.clone(), v.span());
        let t = self.table(v, "edges")?;
        let mut f = Fields::new(t, v.span(), format!("edge {}", index + 1));
        let parent = self.required_string(&mut f, "parent", &path);
        let child = self.required_string(&mut f, "child", &path);
        let methods = match f.get("methods") {
            Some(m) => {
                self.spans.insert(format!("{path}.methods"), m.span());
                match m.get_ref() {
                    DeValue::Array(items) if !items.is_empty() => {
                        items.iter().filter_map(|item| self.deserialize(item, "a method")).collect()
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
        let preprocess =
            f.get("preprocess").and_then(|p| self.deserialize(p, "preprocess")).unwrap_or_default();
        let refine = f.get("refine").and_then(|r| self.deserialize(r, "refine"));
        if let Some(m) = f.table.get("metrics") {
            self.spans.insert(format!("{path}.metrics"), m.span());
        }
        let metrics = f.get("metrics").map(|m| self.metrics(m));
        let null = self.boolean(&mut f, "null").unwrap_or(true);
        let operators = match f.get("operators") {
            Some(v) => self.operator_pairs(v, &path),
            None => Vec::new(),
        };
        let operator_items = match self.string(&mut f, "operator-items", &path).as_deref() {
            None | Some("disjoint") => OperatorItems::Disjoint,
            Some("shared") => OperatorItems::Shared,
            Some(other) => {
                let span = self.spans.get(&format!("{path}.operator-items")).cloned().unwrap_or(0..0);
                self.diags.push(
                    Diagnostic::new(span, format!("`operator-items` must be \"disjoint\" or \"shared\", found \"{other}\""))
                        .with_help("\"disjoint\" (the default) fits the parent's and the child's operators on different items"),
                );
                OperatorItems::Disjoint
            }
        };
        let metrics = metrics.unwrap_or_else(|| Metric::defaults(!operators.is_empty()));
        if operators.is_empty() {
            for m in metrics.iter().filter(|m| m.needs_operators()) {
                let span = self.spans.get(&format!("{path}.metrics")).cloned().unwrap_or(0..0);
                self.diags.push(
                    Diagnostic::new(span, format!("metric `{}` needs the edge's `operators`", m.name()))
                        .with_help("add `operators = [\"…\"]` naming operators of both data sets"),
                );
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
                "metrics",
                "null",
                "operators",
                "operator-items",
            ],
        );
        Some(Edge {
            parent: parent?,
            child: child?,
            methods,
            preprocess,
            refine,
            metrics,
            null,
            operators,
            operator_items,
        })
    }
}
