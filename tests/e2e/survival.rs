//! A plugin that panics mid-batch: the host process reports it and carries on.
//!
//! These tests load the libraries into the test process itself, which plays the host.

use crate::util::library;
use commute_host::discover::SearchPath;
use commute_host::Registry;
use commute_sdk::{CallError, Context, Value};

fn registry() -> Registry {
    let files = vec![library("commute-fixture-panicky"), library("commute-fixture-echo")];
    let registry = Registry::load(&SearchPath::from_sources(files, vec![], None, None));
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());
    registry
}

#[test]
fn a_panic_mid_batch_is_an_error_naming_plugin_function_message_and_location() {
    let registry = registry();
    let panicky = &registry.get("panicky").unwrap().plugin;
    let mut cursed = panicky.open("explode", "at = 2", &Context::default()).unwrap();
    let batch = [Value::text("a"), Value::text("b"), Value::text("c"), Value::text("d")];
    match cursed.call(&batch).unwrap_err() {
        CallError::Panicked { plugin, function, message, location } => {
            assert_eq!(plugin, "panicky");
            assert_eq!(function, "explode");
            assert_eq!(message, "item 2 (\"c\") is cursed");
            assert!(location.starts_with("tests/fixtures/panicky/src/lib.rs:"), "{location}");
        }
        other => panic!("expected a panic report, got {other}"),
    }
    // The poisoned instance refuses further work, even work that would not panic.
    let err = cursed.call(&batch[..1]).unwrap_err();
    assert!(matches!(err, CallError::Poisoned { .. }), "{err}");
}

#[test]
fn after_a_panic_other_instances_and_plugins_keep_working() {
    let registry = registry();
    let panicky = &registry.get("panicky").unwrap().plugin;
    let ctx = Context::default();
    let mut cursed = panicky.open("explode", "at = 0", &ctx).unwrap();
    assert!(cursed.call(&[Value::text("x")]).is_err());

    let mut calm = panicky.open("calm", "", &ctx).unwrap();
    assert_eq!(calm.call(&[Value::text("QUIET")]).unwrap(), vec![Ok(Value::text("quiet"))]);
    let mut fresh = panicky.open("explode", "at = 5", &ctx).unwrap();
    assert_eq!(fresh.call(&[Value::text("ok")]).unwrap(), vec![Ok(Value::text("OK"))]);
    let echo = &registry.get("echo").unwrap().plugin;
    let mut same = echo.open("echo", "", &ctx).unwrap();
    assert_eq!(same.call(&[Value::text("still here")]).unwrap(), vec![Ok(Value::text("still here"))]);
}
