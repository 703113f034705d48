//! The conformance suite every plugin runs: manifest hygiene, parameter errors, empty batches,
//! stable dimensions, determinism, kind checks, and no panics on edge inputs (and, where one
//! happens anyway, that it is reported and poisons the instance).

use super::Harness;
use crate::abi::client::Instance;
use crate::abi::PluginModuleRef;
use crate::{Audio, CallError, FunctionKind, FunctionSpec, Image, Score, Sequence, Tensor, Value, ValueKind};

/// A conformance run: add one case per function (valid parameters and valid inputs), then
/// [`run`](Conformance::run).
///
/// ```text
/// commute_sdk::testing::Conformance::new(commute_plugin())
///     .case("transpose", "semitones = 2", scores.clone())
///     .case("random-scores", "count = 3", vec![])
///     .run();
/// ```
pub struct Conformance {
    harness: Harness,
    cases: Vec<Case>,
}

struct Case {
    function: String,
    params: String,
    inputs: Vec<Value>,
}

/// The failure of a function without a case.
const NO_CASE: &str = "has no conformance case";

impl Conformance {
    /// Starts a run for a plugin's root module.
    pub fn new(module: PluginModuleRef) -> Conformance {
        Conformance { harness: Harness::new(module), cases: Vec::new() }
    }

    /// Adds a case: a function, valid parameters (TOML text) and valid inputs (none for sources).
    pub fn case(mut self, function: &str, params: &str, inputs: Vec<Value>) -> Conformance {
        self.cases.push(Case { function: function.to_owned(), params: params.to_owned(), inputs });
        self
    }

    /// Runs every check.
    ///
    /// # Panics
    /// With the list of every failure, if any.
    pub fn run(self) {
        let failures = self.failures();
        assert!(failures.is_empty(), "conformance failures:\n- {}", failures.join("\n- "));
    }

    /// Runs every check for a test file that covers only some of the plugin's functions: as
    /// [`run`](Conformance::run), except that only the functions named in `covered` must have a
    /// case (the others have theirs in other test files).
    ///
    /// # Panics
    /// With the list of every failure, if any.
    pub fn run_covering(self, covered: &[&str]) {
        let failures: Vec<String> = self
            .failures()
            .into_iter()
            .filter(|f| {
                !f.ends_with(NO_CASE) || covered.iter().any(|name| f.starts_with(&format!("`{name}`")))
            })
            .collect();
        assert!(failures.is_empty(), "conformance failures:\n- {}", failures.join("\n- "));
    }

    /// Runs every check and returns the failures (empty when the plugin conforms).
    pub fn failures(self) -> Vec<String> {
        let mut out = Vec::new();
        let manifest = self.harness.manifest().clone();
        check_manifest(&manifest.functions, &mut out);
        for spec in &manifest.functions {
            if !self.cases.iter().any(|c| c.function == spec.name) {
                out.push(format!("`{}` {NO_CASE}", spec.name));
            }
        }
        for case in &self.cases {
            match manifest.function(&case.function) {
                Some(spec) => check_case(&self.harness, spec, case, &mut out),
                None => {
                    out.push(format!("case for `{}`, which the manifest does not declare", case.function))
                }
            }
        }
        out
    }
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check_manifest(functions: &[FunctionSpec], out: &mut Vec<String>) {
    for (i, f) in functions.iter().enumerate() {
        if functions[..i].iter().any(|g| g.name == f.name) {
            out.push(format!("function name `{}` is declared twice", f.name));
        }
        if !is_kebab(&f.name) {
            out.push(format!("function name `{}` is not kebab-case", f.name));
        }
        if f.doc.trim().is_empty() {
            out.push(format!("`{}` has no doc line", f.name));
        }
        for p in &f.params {
            if p.doc.trim().is_empty() {
                out.push(format!("`{}` parameter `{}` has no doc comment", f.name, p.name));
            }
        }
        if f.kind == FunctionKind::Operator {
            if let Some(input) = f.input {
                if !input.accepts(f.output) {
                    out.push(format!(
                        "operator `{}` maps {input} to {}: operators keep the kind",
                        f.name, f.output
                    ));
                }
            }
        }
    }
}

fn edge_inputs(kind: ValueKind) -> Vec<(&'static str, Value)> {
    match kind {
        ValueKind::Text => vec![("empty text", Value::text("")), ("non-ASCII text", Value::text("ÿ 猫 🎵"))],
        ValueKind::Audio => vec![
            ("empty audio", Value::Audio(Audio { sample_rate: 22050, samples: vec![] })),
            ("one-sample audio", Value::Audio(Audio { sample_rate: 22050, samples: vec![0.5] })),
            ("silent audio at 8 kHz", Value::Audio(Audio { sample_rate: 8000, samples: vec![0.0; 4000] })),
        ],
        ValueKind::Image => vec![
            ("1x1 image", Value::Image(Image { width: 1, height: 1, channels: 3, pixels: vec![0; 3] })),
            ("0x0 image", Value::Image(Image { width: 0, height: 0, channels: 1, pixels: vec![] })),
        ],
        ValueKind::Score => vec![("empty score", Value::Score(Score::default()))],
        ValueKind::Tensor => vec![("empty tensor", Value::Tensor(Tensor::vector(vec![])))],
        ValueKind::Sequence => vec![(
            "a one-frame sequence of one value",
            Value::Sequence(Sequence { frame_rate: 10.0, dim: 1, data: vec![0.0] }),
        )],
        _ => vec![],
    }
}

fn other_kind_value(kind: ValueKind) -> Value {
    match kind {
        ValueKind::Text => Value::Tensor(Tensor::vector(vec![1.0])),
        _ => Value::text("a value of the wrong kind"),
    }
}

fn check_case(h: &Harness, spec: &FunctionSpec, case: &Case, out: &mut Vec<String>) {
    let name = &case.function;
    let open = |params: &str| h.open(name, params);

    // Parameters: unknown keys and broken TOML are rejected as bad parameters.
    for (what, bad) in [
        ("an unknown parameter", format!("conformance-unknown-key = 1\n{}", case.params)),
        ("unparseable TOML", format!("{}\n= broken", case.params)),
    ] {
        match open(&bad) {
            Err(CallError::BadParams { .. }) => {}
            Err(e) => out.push(format!("`{name}` with {what}: expected a bad-parameters error, got: {e}")),
            Ok(_) => out.push(format!("`{name}` accepted {what} (use #[serde(deny_unknown_fields)])")),
        }
    }

    let mut first = match open(&case.params) {
        Ok(i) => i,
        Err(e) => {
            out.push(format!("`{name}` did not open with its case's parameters: {e}"));
            return;
        }
    };

    let is_source = spec.kind == FunctionKind::Source;
    if !is_source {
        match first.call(&[]) {
            Ok(items) if items.is_empty() => {}
            Ok(items) => out.push(format!("`{name}` returned {} items for an empty batch", items.len())),
            Err(e) => out.push(format!("`{name}` failed on an empty batch: {e}")),
        }
    }

    let Some(results) = call_all_ok(&mut first, &case.inputs, name, out) else { return };
    if !is_source && results.len() != case.inputs.len() {
        out.push(format!("`{name}` returned {} results for {} inputs", results.len(), case.inputs.len()));
    }
    if is_source && results.is_empty() {
        out.push(format!("source `{name}` produced no items with its case's parameters"));
    }
    // An encoder that keeps its frames (its instance says its frame rate) returns sequences.
    let output = match first.frame_rate() {
        Some(_) if spec.kind == FunctionKind::Encoder => ValueKind::Sequence,
        _ => spec.output,
    };
    for value in &results {
        if !output.accepts(value.kind()) {
            out.push(format!("`{name}` declares {output} output but returned {}", value.kind()));
            break;
        }
    }
    if spec.kind == FunctionKind::Encoder {
        check_embeddings(&first, &results, name, out);
    }
    // A NaN is never equal to itself, so determinism cannot be judged past one: say what it is.
    if let Some((i, bad)) = results.iter().enumerate().find_map(|(i, v)| v.non_finite().map(|b| (i, b))) {
        if spec.kind != FunctionKind::Encoder {
            out.push(format!("`{name}` returned {bad} for input {i} (the host refuses such values)"));
        }
        return;
    }

    // Determinism: the same instance again, and a fresh instance.
    if let Some(again) = call_all_ok(&mut first, &case.inputs, name, out) {
        if again != results {
            out.push(format!("`{name}` gave different results when called twice on the same inputs"));
        }
    }
    if let Ok(mut second) = open(&case.params) {
        if let Some(fresh) = call_all_ok(&mut second, &case.inputs, name, out) {
            if fresh != results {
                out.push(format!("`{name}`: two instances with the same parameters disagree"));
            }
        }
        if spec.kind == FunctionKind::Encoder && second.dim() != first.dim() {
            out.push(format!(
                "`{name}`: dimension changed between instances ({:?} vs {:?})",
                first.dim(),
                second.dim()
            ));
        }
    }

    let Some(input) = spec.input else { return };
    if input != ValueKind::Any {
        match open(&case.params).and_then(|mut i| i.call(&[other_kind_value(input)])) {
            Err(CallError::BadInput { .. }) => {}
            Err(e) => out
                .push(format!("`{name}` on a value of the wrong kind: expected a bad-input error, got: {e}")),
            Ok(_) => out.push(format!("`{name}` accepted a value of the wrong kind")),
        }
    }
    for (what, edge) in edge_inputs(input) {
        let Ok(mut instance) = open(&case.params) else { continue };
        match instance.call(std::slice::from_ref(&edge)) {
            Ok(_) | Err(CallError::BadInput { .. } | CallError::Failed { .. }) => {}
            Err(e @ CallError::Panicked { .. }) => {
                out.push(format!("`{name}` panicked on {what} (return an error instead): {e}"));
                match instance.call(std::slice::from_ref(&edge)) {
                    Err(CallError::Poisoned { .. }) => {}
                    other => out.push(format!("`{name}` was not poisoned after a panic: {other:?}")),
                }
            }
            Err(e) => out.push(format!("`{name}` on {what}: {e}")),
        }
    }
}

fn call_all_ok(
    instance: &mut Instance,
    inputs: &[Value],
    name: &str,
    out: &mut Vec<String>,
) -> Option<Vec<Value>> {
    match instance.call(inputs) {
        Ok(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        out.push(format!("`{name}` failed on valid input {i}: {e}"));
                        return None;
                    }
                }
            }
            Some(values)
        }
        Err(e) => {
            out.push(format!("`{name}` failed on its case's inputs: {e}"));
            None
        }
    }
}

fn check_embeddings(instance: &Instance, results: &[Value], name: &str, out: &mut Vec<String>) {
    let Some(dim) = instance.dim() else {
        out.push(format!("encoder `{name}` did not report its dimension"));
        return;
    };
    if dim == 0 {
        out.push(format!("encoder `{name}` has dimension 0"));
    }
    for (i, v) in results.iter().enumerate() {
        let problem = match (v, instance.frame_rate()) {
            (Value::Tensor(t), None) if t.shape == [dim] => None,
            (Value::Tensor(t), None) => Some(format!("returned shape {:?}, expected [{dim}]", t.shape)),
            (Value::Sequence(s), Some(rate)) if s.dim == dim && s.frame_rate == rate => None,
            (Value::Sequence(s), Some(rate)) => Some(format!(
                "returned frames of {} at {} frames/s, but declared {dim} at {rate}",
                s.dim, s.frame_rate
            )),
            (other, None) => Some(format!("returned a {} instead of a tensor", other.kind())),
            (other, Some(_)) => Some(format!("returned a {} instead of a sequence", other.kind())),
        };
        if let Some(problem) = problem {
            out.push(format!("encoder `{name}` {problem} for input {i}"));
            return;
        }
        if let Some(bad) = v.non_finite() {
            out.push(format!("encoder `{name}` returned {bad} for input {i}"));
            return;
        }
    }
}
