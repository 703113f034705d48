//! Checking a parsed experiment against the plugins and as a graph, without opening any function:
//! plugins and functions exist and have the right kind, parameters are known and typed, value
//! kinds fit (an audio encoder is not fed scores), the edges form a tree of paired nodes, and the
//! anchors fit in the data.

mod stitch;

use super::diagnostic::{suggest, Diagnostic};
use super::spans::Span;
use super::spec::{
    Call, EmbeddingsFile, Encoder, Experiment, MatchBy, Node, OperatorPair, OperatorRef, Origin,
};
use crate::align::MethodSpec;
use crate::registry::Registry;
use crate::HostError;
use commute_sdk::{FunctionKind, FunctionSpec, ParamSpec, ValueKind};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

/// What is known about a data set without computing it.
#[derive(Debug, Clone, Copy)]
struct DataFacts {
    kind: Option<ValueKind>,
    len: Option<usize>,
}

/// Every problem of `exp` with these plugins; empty when it can run.
pub fn validate(exp: &Experiment, registry: &Registry, base_dir: &Path) -> Vec<Diagnostic> {
    let mut v = Validator { exp, registry, base_dir, diags: Vec::new(), facts: HashMap::new() };
    v.derivation_cycles();
    for d in &exp.data {
        v.data_facts(&d.name, 0);
    }
    for node in &exp.nodes {
        let data = v.named_data(&node.data, &node.spans.data);
        match &node.encoder {
            Encoder::Plugin(call) => v.plugin_encoder(node, call, data),
            Encoder::File(file) => v.embeddings_file(node, file, data),
            Encoder::Stitched(stitched) => v.stitched_node(node, stitched, data),
        }
    }
    v.operators();
    v.edges();
    v.stitches();
    v.diags
}

struct Validator<'a> {
    exp: &'a Experiment,
    registry: &'a Registry,
    base_dir: &'a Path,
    diags: Vec<Diagnostic>,
    facts: HashMap<String, DataFacts>,
}

impl Validator<'_> {
    /// A node computed by a plugin's encoder: the function exists, reads the data's kind, and runs
    /// on the node's device.
    fn plugin_encoder(&mut self, node: &Node, call: &Call, data: Option<DataFacts>) {
        let spec = self.function(call, FunctionKind::Encoder, "encoder");
        if let Some(spec) = spec.as_ref().filter(|s| !node.device.is_cpu() && !s.cuda) {
            let on_cuda: Vec<String> = self
                .registry
                .plugins()
                .iter()
                .flat_map(|p| {
                    let manifest = p.plugin.manifest();
                    manifest
                        .functions
                        .iter()
                        .filter(|f| f.kind == FunctionKind::Encoder && f.cuda)
                        .map(|f| format!("{}/{}", manifest.name, f.name))
                        .collect::<Vec<_>>()
                })
                .collect();
            let help = if on_cuda.is_empty() {
                "remove `device`: none of the loaded encoders runs on a CUDA device".to_owned()
            } else {
                format!("remove `device`; the encoders that run on a CUDA device: {}", on_cuda.join(", "))
            };
            self.error(
                node.spans.device.clone(),
                format!(
                    "encoder `{}` of plugin `{}` runs on the CPU only, not on `{}`",
                    spec.name, call.plugin, node.device
                ),
                Some(help),
            );
        }
        if let (Some(data), Some(spec)) = (data, spec) {
            if let (Some(kind), Some(input)) = (data.kind, spec.input) {
                if !input.accepts(kind) {
                    self.error(
                        call.spans.function.clone(),
                        format!(
                            "encoder `{}` of plugin `{}` reads {input}, but data set `{}` holds {kind}",
                            call.function, call.plugin, node.data
                        ),
                        Some("derive a data set of the right kind with `from` + `render`".to_owned()),
                    );
                }
            }
        }
    }

    /// A node whose vectors come from a file: the files exist, and the items can be matched to
    /// rows the way `match` says. The content is checked when it is read.
    fn embeddings_file(&mut self, node: &Node, file: &EmbeddingsFile, data: Option<DataFacts>) {
        let base = self.base_dir.display().to_string();
        let missing = |path: &Path| !self.base_dir.join(path).is_file();
        for (path, span) in [(Some(&file.path), &file.spans.path), (file.keys.as_ref(), &file.spans.keys)] {
            if let Some(path) = path.filter(|p| missing(p)) {
                self.error(
                    span.clone(),
                    format!("no file `{}`", path.display()),
                    Some(format!("paths are relative to the experiment file's folder ({base})")),
                );
            }
        }
        let all_there = [Some(&file.path), file.keys.as_ref()].into_iter().flatten().all(|p| !missing(p));
        if all_there {
            if let Err(e) = crate::embeddings_file::probe(file, self.base_dir) {
                // A problem with the keys file points at `keys`, any other at `embeddings`.
                let keys = file.keys.as_ref().map(|k| self.base_dir.join(k));
                let about_keys = matches!(&e, HostError::Format { path, .. } if Some(path) == keys.as_ref());
                let span = if about_keys { &file.spans.keys } else { &file.spans.path };
                self.error(span.clone(), format!("node `{}`: {e}", node.name), None);
            }
        }
        let span = if file.spans.match_by.is_empty() { &file.spans.path } else { &file.spans.match_by };
        match file.match_by {
            MatchBy::Text => {
                if let Some(kind) = data.and_then(|d| d.kind).filter(|k| *k != ValueKind::Text) {
                    self.error(
                        span.clone(),
                        format!(
                            "matching rows by text needs text items; data set `{}` holds {kind}",
                            node.data
                        ),
                        Some("match by \"file-name\" or \"index\"".to_owned()),
                    );
                }
            }
            MatchBy::FileName => {
                let root = self.exp.root_of(&node.data);
                if !matches!(self.exp.data_set(root).map(|d| &d.origin), Some(Origin::Files { .. })) {
                    self.error(
                        span.clone(),
                        format!("matching rows by file name needs items read from files, but data set `{root}` is not"),
                        Some("declare the data with `files = \"folder\"`, or match by \"text\" or \"index\"".to_owned()),
                    );
                }
            }
            MatchBy::Index => {}
        }
    }

    /// Data sets derived (`from`) from themselves, directly or through others: one error per
    /// cycle, and nothing is known about their items.
    fn derivation_cycles(&mut self) {
        let exp = self.exp;
        let from = |name: &str| match exp.data_set(name).map(|d| &d.origin) {
            Some(Origin::Render { from, .. }) => Some(from.as_str()),
            _ => None,
        };
        for d in &exp.data {
            if self.facts.contains_key(&d.name) {
                continue;
            }
            let mut chain = vec![d.name.as_str()];
            let mut current = d.name.as_str();
            while let Some(next) = from(current) {
                if next == d.name {
                    let through = if chain.len() == 1 {
                        String::new()
                    } else {
                        format!(
                            " through {}",
                            chain[1..].iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        )
                    };
                    self.error(
                        d.spans.from.clone(),
                        format!(
                            "data set `{}` is derived from itself{through}: `from` makes a cycle",
                            d.name
                        ),
                        Some("one data set in the chain must have a `source` or `files`".to_owned()),
                    );
                    for name in chain {
                        self.facts.insert(name.to_owned(), DataFacts { kind: None, len: None });
                    }
                    break;
                }
                if chain.contains(&next) || chain.len() > exp.data.len() {
                    break; // a cycle further up, reported from one of its own members
                }
                chain.push(next);
                current = next;
            }
        }
    }

    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let mut d = Diagnostic::new(span, message);
        d.help = help;
        self.diags.push(d);
    }

    /// The function a call names, checked for existence, kind and parameters.
    fn function(&mut self, call: &Call, kind: FunctionKind, key: &str) -> Option<FunctionSpec> {
        let Ok(plugin) = self.registry.get(&call.plugin) else {
            let names: Vec<&str> = self.registry.plugins().iter().map(|p| p.plugin.name()).collect();
            let help = match suggest(&call.plugin, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => "no plugins were found; see `commute plugins`".to_owned(),
                None => format!("loaded plugins: {}", names.join(", ")),
            };
            self.error(call.spans.plugin.clone(), format!("unknown plugin `{}`", call.plugin), Some(help));
            return None;
        };
        let manifest = plugin.plugin.manifest();
        let Some(spec) = manifest.function(&call.function) else {
            let same_kind: Vec<&str> =
                manifest.functions.iter().filter(|f| f.kind == kind).map(|f| f.name.as_str()).collect();
            let help = match suggest(&call.function, same_kind.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("{} functions of `{}`: {}", kind, call.plugin, same_kind.join(", ")),
            };
            self.error(
                call.spans.function.clone(),
                format!("plugin `{}` has no function `{}`", call.plugin, call.function),
                Some(help),
            );
            return None;
        };
        if spec.kind != kind {
            self.error(
                call.spans.function.clone(),
                format!(
                    "`{}` of plugin `{}` is {} {}, but `{key}` needs {} {kind}",
                    call.function,
                    call.plugin,
                    article(spec.kind),
                    spec.kind,
                    article(kind)
                ),
                None,
            );
            return None;
        }
        self.params(call, spec);
        Some(spec.clone())
    }

    fn params(&mut self, call: &Call, spec: &FunctionSpec) {
        let span = call.spans.params.clone();
        for (key, value) in &call.params {
            match spec.params.iter().find(|p| &p.name == key) {
                None => {
                    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
                    let help = match suggest(key, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => format!("`{}` takes no parameters", call.function),
                        None => format!("parameters of `{}`: {}", call.function, names.join(", ")),
                    };
                    self.error(
                        span.clone(),
                        format!("`{}` has no parameter `{key}`", call.function),
                        Some(help),
                    );
                }
                Some(p) => {
                    if let Some(expected) = type_mismatch(p, value) {
                        self.error(
                            span.clone(),
                            format!(
                                "parameter `{key}` of `{}` must be {expected}, found {}",
                                call.function,
                                value.type_str()
                            ),
                            Some(p.doc.clone()).filter(|d| !d.is_empty()),
                        );
                    } else if let Some(path) = value.as_str().filter(|_| p.file || p.folder) {
                        let at = self.base_dir.join(path);
                        let (found, what) =
                            if p.file { (at.is_file(), "file") } else { (at.is_dir(), "folder") };
                        if !found {
                            self.error(
                                span.clone(),
                                format!("parameter `{key}` of `{}`: no {what} `{path}`", call.function),
                                Some(format!(
                                    "a relative path is read from the experiment file's folder ({})",
                                    self.base_dir.display()
                                )),
                            );
                        }
                    } else if let Some(found) = commute_sdk::out_of_bounds(p, value) {
                        self.error(
                            span.clone(),
                            format!(
                                "parameter `{key}` of `{}` must be {}, found {found}",
                                call.function, p.bounds
                            ),
                            Some(p.doc.clone()).filter(|d| !d.is_empty()),
                        );
                    }
                }
            }
        }
        for p in spec.params.iter().filter(|p| p.required && !call.params.contains_key(&p.name)) {
            self.error(
                call.spans.table.clone(),
                format!("`{}` needs parameter `{}` ({})", call.function, p.name, p.ty),
                Some(format!("add it in `params = {{ {} = … }}`: {}", p.name, p.doc)),
            );
        }
    }

    fn named_data(&mut self, name: &str, span: &Span) -> Option<DataFacts> {
        if self.exp.data_set(name).is_none() {
            let names: Vec<&str> = self.exp.data.iter().map(|d| d.name.as_str()).collect();
            let help = suggest(name, names.iter().copied()).map(|s| format!("did you mean `{s}`?"));
            self.error(
                span.clone(),
                format!("no data set named `{name}`"),
                help.or_else(|| Some(format!("declared: {}", names.join(", ")))),
            );
            return None;
        }
        Some(self.data_facts(name, 0))
    }

    fn data_facts(&mut self, name: &str, depth: usize) -> DataFacts {
        if let Some(f) = self.facts.get(name) {
            return *f;
        }
        let unknown = DataFacts { kind: None, len: None };
        let Some(data) = self.exp.data_set(name) else { return unknown };
        let facts = match &data.origin {
            Origin::Source { call } => {
                match self.function(call, FunctionKind::Source, "source") {
                    Some(spec) => {
                        // A declared bound on `count` has been checked with the other parameters.
                        let declared = spec.params.iter().any(|p| p.name == "count" && !p.bounds.is_none());
                        let given = call.params.get("count").and_then(toml::Value::as_integer);
                        if let Some(n) = given.filter(|n| *n < 0 && !declared) {
                            self.error(
                                call.spans.params.clone(),
                                format!(
                                    "parameter `count` of `{}` must be at least 0, found {n}",
                                    call.function
                                ),
                                None,
                            );
                        }
                        DataFacts { kind: Some(spec.output), len: count_param(call, &spec) }
                    }
                    None => unknown,
                }
            }
            Origin::Files { path: folder } => {
                self.files_facts(&data.spans.files, &self.base_dir.join(folder))
            }
            Origin::Render { from, call } => {
                if depth > self.exp.data.len() {
                    self.error(
                        data.spans.from.clone(),
                        format!("data set `{name}` is derived from itself"),
                        None,
                    );
                    self.facts.insert(name.to_owned(), unknown);
                    return unknown;
                }
                let parent = if self.exp.data_set(from).is_some() {
                    Some(self.data_facts(from, depth + 1))
                } else {
                    self.named_data(from, &data.spans.from)
                };
                // An operator (K → K) renders too: `relation` turns English words into French ones.
                let kind = self
                    .registry
                    .get(&call.plugin)
                    .ok()
                    .and_then(|p| p.plugin.manifest().function(&call.function).map(|f| f.kind))
                    .filter(|k| *k == FunctionKind::Operator)
                    .unwrap_or(FunctionKind::Render);
                match self.function(call, kind, "render") {
                    Some(spec) => {
                        if let (Some(input), Some(kind)) = (spec.input, parent.and_then(|p| p.kind)) {
                            if !input.accepts(kind) {
                                self.error(
                                    call.spans.function.clone(),
                                    format!(
                                        "render `{}` reads {input}, but data set `{from}` holds {kind}",
                                        call.function
                                    ),
                                    None,
                                );
                            }
                        }
                        DataFacts { kind: Some(spec.output), len: parent.and_then(|p| p.len) }
                    }
                    None => unknown,
                }
            }
        };
        self.facts.insert(name.to_owned(), facts);
        facts
    }

    fn files_facts(&mut self, span: &Span, folder: &Path) -> DataFacts {
        let span = span.clone();
        let Ok(entries) = std::fs::read_dir(folder) else {
            self.error(
                span,
                format!("cannot read folder {}", folder.display()),
                Some("`files` is relative to the experiment file".to_owned()),
            );
            return DataFacts { kind: None, len: None };
        };
        let mut kinds = HashMap::new();
        for e in entries.filter_map(Result::ok) {
            let Some(kind) = crate::value_io::folder_kind(&e.path()) else { continue };
            *kinds.entry(kind).or_insert(0usize) += 1;
        }
        match kinds.len() {
            0 => {
                self.error(
                    span,
                    format!("folder {} has no .wav, .mid or .txt files", folder.display()),
                    None,
                );
                DataFacts { kind: None, len: None }
            }
            1 => {
                let (kind, n) = kinds.into_iter().next().unwrap_or((ValueKind::Any, 0));
                DataFacts { kind: Some(kind), len: (kind != ValueKind::Text).then_some(n) }
            }
            _ => {
                self.error(
                    span,
                    format!("folder {} mixes kinds of files; a data set holds one kind", folder.display()),
                    None,
                );
                DataFacts { kind: None, len: None }
            }
        }
    }

    /// Each data set's operators: operator functions that read this data set's kind of value,
    /// applied to this data set or to an `items` data set of the same kind.
    fn operators(&mut self) {
        let exp = self.exp;
        for data in &exp.data {
            let kind = self.facts.get(&data.name).and_then(|f| f.kind);
            for op in &data.operators {
                let spec = self.function(&op.call, FunctionKind::Operator, "operator");
                let items_kind = match &op.items {
                    None => kind,
                    Some(items) => self.named_data(items, &op.spans.items).and_then(|f| f.kind),
                };
                if let (Some(items), Some(k), Some(items_kind)) = (&op.items, kind, items_kind) {
                    if k != items_kind {
                        self.error(
                            op.spans.items.clone(),
                            format!("operator `{}` of data set `{}` is applied to `{items}`, which holds {items_kind}, but `{}` holds {k}", op.name, data.name, data.name),
                            Some("the operator's items are encoded by the same encoders as the data set's".to_owned()),
                        );
                    }
                }
                if let (Some(spec), Some(k)) = (spec, items_kind) {
                    if let Some(input) = spec.input {
                        if !input.accepts(k) {
                            self.error(
                                op.call.spans.function.clone(),
                                format!(
                                    "operator `{}` of plugin `{}` reads {input}, but data set `{}` holds {k}",
                                    op.call.function,
                                    op.call.plugin,
                                    op.items.as_deref().unwrap_or(&data.name)
                                ),
                                None,
                            );
                        }
                    }
                }
            }
        }
    }

    /// An edge's operator pairs name operators of the parent's and the child's data sets, and
    /// the methods that need operators have them.
    fn edge_operators(&mut self, i: usize, parent_data: &str, child_data: &str) {
        let edge = &self.exp.edges[i];
        let span = edge.spans.operators.clone();
        self.operators_declared(&edge.operators, &span, [("parent", parent_data), ("child", child_data)]);
        for method in edge.methods.iter().map(|m| &m.spec) {
            self.operators_enough(
                method,
                edge.operators.len(),
                &edge.spans.methods,
                &format!("edge {}", i + 1),
            );
        }
    }

    /// Each pair names an operator of its side's data set (`sides`: the first side's name and
    /// data set, then the second's).
    pub(super) fn operators_declared(
        &mut self,
        pairs: &[OperatorPair],
        span: &Span,
        sides: [(&str, &str); 2],
    ) {
        let exp = self.exp;
        for pair in pairs {
            for ((side, data), name) in sides.into_iter().zip([&pair.parent, &pair.child]) {
                match exp.resolve_operator(data, name) {
                    Some(OperatorRef::Own(_) | OperatorRef::Identity) => {}
                    Some(OperatorRef::Lifted { at, decl }) => {
                        if decl.items.is_some() {
                            self.error(
                                span.clone(),
                                format!(
                                    "operator `{name}` lifts `{}` of `{at}` onto `{data}`, but it declares `items`",
                                    decl.name
                                ),
                                Some(format!(
                                    "a lifted operator acts on `{data}`'s own items; declare one without `items` under [data.{at}.operators]"
                                )),
                            );
                        }
                    }
                    None => {
                        // Its own operators, then those of the data sets it is rendered from, lifted.
                        let mut names: Vec<String> = exp
                            .data_set(data)
                            .map(|d| d.operators.iter().map(|o| o.name.clone()).collect())
                            .unwrap_or_default();
                        let own = names.len();
                        let chain = exp.render_chain(data, exp.root_of(data)).unwrap_or_default();
                        for from in chain.iter().skip(1) {
                            if let Some(d) = exp.data_set(from) {
                                names.extend(d.operators.iter().map(|o| format!("{from}.{}", o.name)));
                            }
                        }
                        let help = match suggest(name, names.iter().map(String::as_str)) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None if names.is_empty() => format!("declare it under [data.{data}.operators]"),
                            None if own == 0 => format!(
                                "`{data}` declares none; operators of the data sets it is rendered from, \
                                 applied there and rendered again: {}",
                                names.join(", ")
                            ),
                            None => format!("operators of `{data}`: {}", names.join(", ")),
                        };
                        self.error(
                            span.clone(),
                            format!("the {side}'s data set `{data}` has no operator `{name}`"),
                            Some(help),
                        );
                    }
                }
            }
        }
    }

    /// A `functional` method has at least one operator pair to read (two with
    /// `shuffle-operators`, which pairs them wrongly); `pairs` is how many `what` declares.
    pub(super) fn operators_enough(&mut self, method: &MethodSpec, pairs: usize, span: &Span, what: &str) {
        let shuffled = matches!(method, MethodSpec::Functional { shuffle_operators: true, .. });
        let needed = match method.kind() {
            "functional" if shuffled => 2,
            "functional" => 1,
            _ => 0,
        };
        if pairs < needed {
            self.error(
                span.clone(),
                format!(
                    "method `functional`{} needs at least {needed} operator pair{} on {what}, found {pairs}",
                    if shuffled { " with shuffle-operators" } else { "" },
                    if needed == 1 { "" } else { "s" },
                ),
                Some("declare operators under [data.X.operators] and list them in `operators`".to_owned()),
            );
        }
    }

    /// A frame-level edge's decoder reads frames and writes a score; its truth holds scores.
    fn frame_decoder(&mut self, frames: &crate::experiment::FrameSpec) {
        for call in frames.decode.iter().chain(&frames.parent_decode) {
            if let Some(spec) = self.function(call, FunctionKind::Render, "decode") {
                if spec.input.is_some_and(|k| !k.accepts(ValueKind::Sequence))
                    || !spec.output.accepts(ValueKind::Score)
                {
                    let input = spec.input.map_or("nothing".to_owned(), |k| k.to_string());
                    self.error(
                        call.spans.function.clone(),
                        format!(
                            "decoder `{}` maps {input} to {}; a decoder maps frames (a sequence) to a score",
                            call.function, spec.output
                        ),
                        None,
                    );
                }
            }
        }
        if let Some(truth) = &frames.truth {
            let span = frames.truth_span.clone();
            if let Some(kind) = self.named_data(truth, &span).and_then(|f| f.kind) {
                if !ValueKind::Score.accepts(kind) {
                    self.error(span, format!("`truth` data set `{truth}` holds {kind}, not scores"), None);
                }
            }
        }
    }

    fn edges(&mut self) {
        let exp = self.exp;
        let mut parent_of: HashMap<&str, (&str, usize)> = HashMap::new();
        let node_names: Vec<&str> = exp.nodes.iter().map(|n| n.name.as_str()).collect();
        for (i, edge) in exp.edges.iter().enumerate() {
            let mut ok = true;
            for (name, span) in [(&edge.parent, &edge.spans.parent), (&edge.child, &edge.spans.child)] {
                if exp.node(name).is_none() {
                    ok = false;
                    let help = if exp.data_set(name).is_some() {
                        Some(format!("`{name}` is a data set; an edge joins two nodes, declared as [nodes.NAME] with `data = \"{name}\"`"))
                    } else {
                        suggest(name, node_names.iter().copied()).map(|s| format!("did you mean `{s}`?"))
                    };
                    self.error(
                        span.clone(),
                        format!("no node named `{name}`"),
                        help.or_else(|| Some(format!("declared nodes: {}", node_names.join(", ")))),
                    );
                }
            }
            if !ok {
                continue;
            }
            if edge.parent == edge.child {
                self.error(
                    edge.spans.child.clone(),
                    format!("edge {} aligns node `{}` with itself", i + 1, edge.child),
                    None,
                );
                continue;
            }
            if edge.shortcut || edge.grid.is_some() {
                // A shortcut is checked below, once the tree is known; a layer grid's edges are
                // not tree edges.
            } else if let Some((first, j)) = parent_of.get(edge.child.as_str()) {
                self.error(
                    edge.spans.child.clone(),
                    format!("node `{}` has two parents, `{first}` (edge {}) and `{}`; an experiment is a tree", edge.child, j + 1, edge.parent),
                    Some("give each node at most one parent; declare a second node on the same data for another parent".to_owned()),
                );
                continue;
            }
            if !edge.shortcut && edge.grid.is_none() {
                parent_of.insert(&edge.child, (&edge.parent, i));
            }
            let (Some(p), Some(c)) = (exp.node(&edge.parent), exp.node(&edge.child)) else { continue };
            self.edge_operators(i, &p.data, &c.data);
            if let Some(frames) = &edge.frames {
                self.frame_decoder(frames);
            }
            if let Some(name) = &edge.swatches {
                match exp.node(name) {
                    None => self.error(
                        edge.spans.swatches.clone(),
                        format!("`swatches` reads node `{name}`, which is not declared"),
                        suggest(name, node_names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| Some(format!("declared nodes: {}", node_names.join(", ")))),
                    ),
                    Some(r) if exp.root_of(&r.data) != exp.root_of(&p.data) => self.error(
                        edge.spans.swatches.clone(),
                        format!("`swatches` reads node `{name}`, whose items are not the edge's"),
                        Some("the swatch node must encode the edge's items, as sRGB in 0–1 (the colours plugin's `rgb`)".to_owned()),
                    ),
                    Some(_) if edge.operators.is_empty() => self.error(
                        edge.spans.swatches.clone(),
                        "`swatches` paints the control edit: the edge needs `operators`".to_owned(),
                        None,
                    ),
                    Some(r) => {
                        // The pictured operator (the `order` one, else the first) must exist on
                        // the swatch node's data, to colour the edited items.
                        let pictured = edge.pictured_operator();
                        let declared = exp.data_set(&r.data).is_some_and(|d| {
                            pictured.is_some_and(|p| d.operators.iter().any(|o| o.name == p.parent))
                        });
                        if let (Some(p), false) = (pictured, declared) {
                            self.error(
                                edge.spans.swatches.clone(),
                                format!(
                                    "`swatches` paints operator `{}`, which data set `{}` (node `{name}`) does not declare",
                                    p.parent, r.data
                                ),
                                Some(format!(
                                    "declare `{}` under [data.{}.operators], acting on those items as the parent's operator acts on its own",
                                    p.parent, r.data
                                )),
                            );
                        }
                    }
                }
            }
            if let Some(order) = &edge.order {
                match exp.node(&order.by) {
                    None => self.error(
                        edge.spans.order.clone(),
                        format!("`order` reads node `{}`, which is not declared", order.by),
                        suggest(&order.by, node_names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| Some(format!("declared nodes: {}", node_names.join(", ")))),
                    ),
                    Some(r) if exp.root_of(&r.data) != exp.root_of(&p.data) => self.error(
                        edge.spans.order.clone(),
                        format!(
                            "`order` reads node `{}`, whose items are not the edge's (`{}` and `{}` come from different data sets)",
                            order.by,
                            r.data,
                            p.data
                        ),
                        Some("the reference node must encode the edge's items: its data set or one derived from the same source".to_owned()),
                    ),
                    Some(_) => {}
                }
            }
            let (rp, rc) = (exp.root_of(&p.data), exp.root_of(&c.data));
            if rp != rc {
                self.error(
                    edge.spans.table.clone(),
                    format!("nodes `{}` and `{}` encode unrelated data sets (`{rp}` and `{rc}`): an edge needs paired items", edge.parent, edge.child),
                    Some("derive one data set from the other with `from` + `render`, so that item i of each is the same item".to_owned()),
                );
                continue;
            }
            if let Some(len) = self.facts.get(rc).and_then(|f| f.len) {
                let test = exp.test.unwrap_or_else(|| (len / 5).min(1000));
                let largest = exp.anchors.iter().copied().max().unwrap_or(0);
                if largest.saturating_add(test) > len {
                    self.error(
                        exp.spans.anchors.clone(),
                        format!("{largest} anchors plus {test} test items need {} items, but data set `{rc}` has {len}", largest as u128 + test as u128),
                        Some("lower the largest anchor count or `test`, or generate more items".to_owned()),
                    );
                }
            }
        }
        // With one parent per node, a cycle is a walk up the parents that comes back. Walk from
        // each edge's child in file order, so the error names the same node every time.
        for edge in &exp.edges {
            let start = edge.child.as_str();
            if !parent_of.contains_key(start) {
                continue;
            }
            let mut current = start;
            for _ in 0..=parent_of.len() {
                match parent_of.get(current) {
                    Some((p, _)) if *p == start => {
                        // Every edge of the cycle: from `start` up the parents and back.
                        let mut cycle = vec![parent_of[start].1];
                        let mut node = parent_of[start].0;
                        while node != start {
                            let Some(&(up, i)) = parent_of.get(node) else { break };
                            cycle.push(i);
                            node = up;
                        }
                        cycle.reverse();
                        let mut path: Vec<&str> =
                            cycle.iter().map(|&i| exp.edges[i].parent.as_str()).collect();
                        path.push(start);
                        let mut first = cycle.clone();
                        first.sort_unstable();
                        let mut d = Diagnostic::new(
                            exp.edges[first[0]].spans.table.clone(),
                            format!("the edges form a cycle: {}", path.join(" → ")),
                        )
                        .with_label(format!(
                            "edge {}: {} → {}",
                            first[0] + 1,
                            exp.edges[first[0]].parent,
                            exp.edges[first[0]].child
                        ))
                        .with_help("each node has at most one parent and the tree has a root: remove or reverse one of these edges");
                        for &i in &first[1..] {
                            let e = &exp.edges[i];
                            d = d.with_also(
                                e.spans.table.clone(),
                                format!("edge {}: {} → {}", i + 1, e.parent, e.child),
                            );
                        }
                        self.diags.push(d);
                        return;
                    }
                    Some((p, _)) => current = p,
                    None => break,
                }
            }
        }
        self.shortcuts();
        self.tree();
    }

    /// A shortcut joins a node to one of its descendants in the tree.
    fn shortcuts(&mut self) {
        let exp = self.exp;
        for (i, edge) in exp.edges.iter().enumerate().filter(|(_, e)| e.shortcut) {
            if exp.node(&edge.parent).is_none()
                || exp.node(&edge.child).is_none()
                || edge.parent == edge.child
            {
                continue;
            }
            match exp.path(&edge.parent, &edge.child) {
                Some(path) if path.len() >= 3 => {}
                Some(_) => self.error(
                    edge.spans.shortcut.clone(),
                    format!(
                        "edge {} is a shortcut, but `{}` is already `{}`'s parent",
                        i + 1,
                        edge.parent,
                        edge.child
                    ),
                    Some(
                        "a shortcut spans two or more tree edges; leave `shortcut` out for a plain edge"
                            .to_owned(),
                    ),
                ),
                None => self.error(
                    edge.spans.shortcut.clone(),
                    format!(
                        "edge {} is a shortcut, but `{}` does not descend from `{}` in the tree",
                        i + 1,
                        edge.child,
                        edge.parent
                    ),
                    Some(
                        "a shortcut goes from a node to a descendant, alongside the tree's path between them"
                            .to_owned(),
                    ),
                ),
            }
        }
    }

    /// `[tree]`: its anchors fit the items, and each edit names a child with a parent, an
    /// operator of the child's data set, and a parent whose items are rendered from that data set.
    fn tree(&mut self) {
        let exp = self.exp;
        if let Some(a) = exp.tree.anchors {
            let largest = exp.anchors.iter().copied().max().unwrap_or(0);
            if a > largest {
                self.error(
                    exp.tree.spans.anchors.clone(),
                    format!("[tree] anchors = {a} exceeds the largest anchor count of the experiment, {largest}"),
                    Some("the analysis maps are fitted on the edges' anchor pool; use at most the largest of `[experiment] anchors`".to_owned()),
                );
            }
        }
        let node_names: Vec<&str> = exp.nodes.iter().map(|n| n.name.as_str()).collect();
        for (i, edit) in exp.tree.edits.iter().enumerate() {
            let span = edit.span.clone();
            let Some(child) = exp.node(&edit.child) else {
                let help = suggest(&edit.child, node_names.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("declared nodes: {}", node_names.join(", ")));
                self.error(span, format!("edit {}: no node named `{}`", i + 1, edit.child), Some(help));
                continue;
            };
            let Some(parent) = exp.parent_of(&edit.child).and_then(|p| exp.node(p)) else {
                self.error(
                    span,
                    format!("edit {}: node `{}` has no parent, so there is nothing to carry the edit to", i + 1, edit.child),
                    Some("edits are made in a child and carried to its parent: name a node that is some edge's `child`".to_owned()),
                );
                continue;
            };
            if exp.operator(&child.data, &edit.operator).is_none() {
                let names: Vec<&str> = exp
                    .data_set(&child.data)
                    .map(|d| d.operators.iter().map(|o| o.name.as_str()).collect())
                    .unwrap_or_default();
                let help = suggest(&edit.operator, names.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("declare it under [data.{}.operators]", child.data));
                self.error(
                    span,
                    format!(
                        "edit {}: data set `{}` (node `{}`'s) has no operator `{}`",
                        i + 1,
                        child.data,
                        edit.child,
                        edit.operator
                    ),
                    Some(help),
                );
                continue;
            }
            if exp.render_chain(&parent.data, &child.data).is_none() {
                self.error(
                    span,
                    format!(
                        "edit {}: the parent `{}` encodes data set `{}`, which is not rendered from `{}` (node `{}`'s), so the edited items cannot be rendered again as ground truth",
                        i + 1, parent.name, parent.data, child.data, edit.child
                    ),
                    Some("make the edit in a child whose data set the parent's items are rendered from (e.g. scores → synth → audio)".to_owned()),
                );
            }
        }
    }
}

fn article(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Encoder | FunctionKind::Operator => "an",
        _ => "a",
    }
}

/// A source's item count when it has a `count` parameter (given, or its default).
fn count_param(call: &Call, spec: &FunctionSpec) -> Option<usize> {
    if let Some(given) = call.params.get("count").and_then(toml::Value::as_integer) {
        // A negative count is its own error; the length is then unknown.
        return usize::try_from(given).ok();
    }
    spec.params
        .iter()
        .find(|p| p.name == "count")
        .and_then(|p| p.default.as_ref())
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

/// What a parameter value should have been, when it is of the wrong type.
fn type_mismatch(p: &ParamSpec, value: &toml::Value) -> Option<String> {
    let ty = p.ty.as_str();
    let fits = |ty: &str, v: &toml::Value| match ty {
        "integer" => v.is_integer(),
        "float" => v.is_float() || v.is_integer(),
        "boolean" => v.is_bool(),
        "string" => v.is_str(),
        _ => true,
    };
    let ok = if let Some(inner) = ty.strip_prefix("array of ") {
        value.as_array().is_some_and(|items| items.iter().all(|i| fits(inner, i)))
    } else if let Some(options) = ty.strip_prefix("one of ") {
        value.as_str().is_some_and(|s| options.split(" | ").any(|o| o.trim_matches('"') == s))
    } else {
        ty.split(" | ").any(|t| fits(t, value))
    };
    (!ok).then(|| {
        if ty.starts_with("one of ") {
            ty.to_owned()
        } else {
            format!("{} {ty}", if ty.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" })
        }
    })
}
