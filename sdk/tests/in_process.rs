//! The SDK's adapters end to end, in-process: a small plugin called through the real ABI.

use commute_sdk::prelude::*;
use commute_sdk::testing::{Conformance, Harness};
use commute_sdk::{CallError, FunctionKind, ValueKind};

/// Parameters of `scale`.
#[params]
struct ScaleParams {
    /// Multiplier applied to every element.
    factor: f32,
}

struct Scale(f32);

impl Function for Scale {
    const DOC: &'static str = "Multiplies a tensor by a factor.";
    type Params = ScaleParams;
    fn open(p: ScaleParams, _: &Context) -> Result<Self> {
        ensure!(p.factor.is_finite(), "factor must be finite");
        Ok(Scale(p.factor))
    }
}

impl Operator for Scale {
    type Input<'a> = TensorRef<'a>;
    type Output = Tensor;
    fn apply(&mut self, t: TensorRef<'_>) -> Result<Tensor> {
        Ok(Tensor { shape: t.shape.to_vec(), data: t.data.iter().map(|x| x * self.0).collect() })
    }
}

/// Encodes text by its length; panics on the text "boom", fails on "fail".
struct Length;

impl Function for Length {
    const DOC: &'static str = "Length of a text in bytes.";
    type Params = NoParams;
    fn open(_: NoParams, _: &Context) -> Result<Self> {
        Ok(Length)
    }
}

impl Encoder for Length {
    type Input<'a> = &'a str;
    fn dim(&self) -> usize {
        1
    }
    fn encode(&mut self, text: &str) -> Result<Vec<f32>> {
        match text {
            "boom" => panic!("asked to explode"),
            "fail" => bail!("cannot encode `fail`"),
            _ => Ok(vec![text.len() as f32]),
        }
    }
}

/// Counts to `n`.
#[params]
struct CountParams {
    /// How many items.
    #[serde(default = "three")]
    n: usize,
}

fn three() -> usize {
    3
}

struct Count(usize);

impl Function for Count {
    const DOC: &'static str = "Produces the numbers 0..n as text.";
    type Params = CountParams;
    fn open(p: CountParams, _: &Context) -> Result<Self> {
        Ok(Count(p.n))
    }
}

impl Source for Count {
    type Output = String;
    fn items(&mut self) -> Result<Vec<String>> {
        Ok((0..self.0).map(|i| i.to_string()).collect())
    }
}

commute_sdk::export_plugin! {
    name: "sdk-test",
    modality: "test",
    doc: "Functions that exercise the SDK.",
    functions: {
        operator "scale" => Scale,
        encoder "length" => Length,
        source "count" => Count,
    },
}

fn harness() -> Harness {
    Harness::new(commute_plugin())
}

#[test]
fn manifest_describes_functions_signatures_and_params() {
    let h = harness();
    let m = h.manifest();
    assert_eq!((m.name.as_str(), m.modality.as_str()), ("sdk-test", "test"));
    assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
    let scale = m.function("scale").unwrap();
    assert_eq!(scale.kind, FunctionKind::Operator);
    assert_eq!((scale.input, scale.output), (Some(ValueKind::Tensor), ValueKind::Tensor));
    assert_eq!(scale.params[0].name, "factor");
    assert_eq!(scale.params[0].doc, "Multiplier applied to every element.");
    let count = m.function("count").unwrap();
    assert_eq!(count.signature(), "() → text");
    assert_eq!(count.params[0].default, Some(serde_json::json!(3)));
    assert_eq!(m.function("length").unwrap().signature(), "text → tensor");
}

#[test]
fn calls_return_one_result_per_item_and_keep_per_item_errors() {
    let h = harness();
    let out = h.call("scale", "factor = 2.0", &[Value::Tensor(Tensor::vector(vec![1.0, -3.0]))]).unwrap();
    assert_eq!(out, vec![Value::Tensor(Tensor::vector(vec![2.0, -6.0]))]);

    let items =
        h.call_items("length", "", &[Value::text("abc"), Value::text("fail"), Value::text("")]).unwrap();
    assert_eq!(items[0], Ok(Value::Tensor(Tensor::vector(vec![3.0]))));
    assert_eq!(items[1], Err("cannot encode `fail`".to_owned()));
    assert_eq!(items[2], Ok(Value::Tensor(Tensor::vector(vec![0.0]))));

    let counted = h.call("count", "n = 2", &[]).unwrap();
    assert_eq!(counted, vec![Value::text("0"), Value::text("1")]);
    assert_eq!(h.open("length", "").unwrap().dim(), Some(1));
}

#[test]
fn bad_params_unknown_functions_and_wrong_kinds_are_typed_errors() {
    let h = harness();
    match h.open("scale", "factr = 2.0").unwrap_err() {
        CallError::BadParams { plugin, function, message } => {
            assert_eq!((plugin.as_str(), function.as_str()), ("sdk-test", "scale"));
            assert!(message.contains("unknown field `factr`"), "{message}");
        }
        other => panic!("wrong error {other}"),
    }
    let err = h.open("scale", "factor = inf").unwrap_err();
    assert!(err.to_string().contains("factor must be finite"), "{err}");
    let err = h.open("sacle", "").unwrap_err();
    assert!(matches!(err, CallError::UnknownFunction { .. }), "{err}");
    assert!(err.to_string().contains("scale, length, count"), "{err}");
    let err = h.call("length", "", &[Value::Tensor(Tensor::vector(vec![1.0]))]).unwrap_err();
    assert!(
        matches!(&err, CallError::BadInput { message, .. } if message.contains("expected a text value")),
        "{err}"
    );
}

#[test]
fn a_panic_is_an_error_with_location_then_the_instance_is_poisoned() {
    let h = harness();
    let mut instance = h.open("length", "").unwrap();
    let err = instance.call(&[Value::text("ok"), Value::text("boom")]).unwrap_err();
    match &err {
        CallError::Panicked { plugin, function, message, location } => {
            assert_eq!((plugin.as_str(), function.as_str()), ("sdk-test", "length"));
            assert_eq!(message, "asked to explode");
            assert!(location.contains("in_process.rs:"), "{location}");
        }
        other => panic!("wrong error {other}"),
    }
    let again = instance.call(&[Value::text("ok")]).unwrap_err();
    assert!(matches!(again, CallError::Poisoned { .. }), "{again}");
    // Other instances are unaffected.
    let mut fresh = h.open("length", "").unwrap();
    assert!(fresh.call(&[Value::text("ok")]).is_ok());
}

#[test]
fn the_conformance_suite_passes_a_conforming_plugin() {
    Conformance::new(commute_plugin())
        .case("scale", "factor = 0.5", vec![Value::Tensor(Tensor::vector(vec![1.0, 2.0]))])
        .case("length", "", vec![Value::text("cat"), Value::text("cats")])
        .case("count", "", vec![])
        .run();
}

#[test]
fn the_conformance_suite_reports_missing_cases_and_panics() {
    let failures =
        Conformance::new(commute_plugin()).case("length", "", vec![Value::text("boom")]).failures();
    let text = failures.join("\n");
    assert!(text.contains("`scale` has no conformance case"), "{text}");
    assert!(text.contains("`count` has no conformance case"), "{text}");
    assert!(text.contains("`length` failed on its case's inputs"), "{text}");
    assert!(text.contains("panicked"), "{text}");
}

#[test]
fn a_partial_run_asks_cases_only_of_the_functions_it_covers() {
    let partial = || Conformance::new(commute_plugin()).case("length", "", vec![Value::text("cat")]);
    partial().run_covering(&["length"]);
    let missing = std::panic::catch_unwind(|| partial().run_covering(&["length", "count"]))
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(missing.contains("`count` has no conformance case"), "{missing}");
    assert!(!missing.contains("`scale`"), "{missing}");
}

#[test]
fn the_conformance_suite_names_a_nan_instead_of_calling_it_nondeterministic() {
    let failures = Conformance::new(commute_plugin())
        .case("scale", "factor = 0.5", vec![Value::Tensor(Tensor::vector(vec![1.0, f32::NAN]))])
        .case("length", "", vec![Value::text("cat")])
        .case("count", "", vec![])
        .failures();
    let text = failures.join("\n");
    assert!(text.contains("`scale` returned NaN at element 1 for input 0"), "{text}");
    assert!(!text.contains("different results"), "{text}");
    assert_eq!(failures.len(), 1, "{text}");
}
