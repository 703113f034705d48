//! A batch that panicked or took its worker down, retried item by item in fresh instances, so
//! that with `on-item-error = "skip"` only the offending items are lost, not the whole batch.

use super::{Opened, WorkerError};
use crate::HostError;
use commute_sdk::{CallError, Value};
use std::fmt;

/// Why one item has no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemFailure {
    /// The function returned an error for it.
    Error(String),
    /// The function panicked on it (in process).
    Panicked(String),
    /// The function took its worker down (a crash or a hang) on it.
    Crashed(String),
}

impl fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemFailure::Error(m) => f.write_str(m),
            ItemFailure::Panicked(m) => write!(f, "panicked: {m}"),
            ItemFailure::Crashed(m) => write!(f, "crashed: {m}"),
        }
    }
}

/// Whether `e` ended a whole batch because of something one of its items did: a panic (in
/// process; the instance is poisoned afterwards) or a crash or hang of an isolated worker.
pub fn is_batch_fatal(e: &HostError) -> bool {
    matches!(
        e,
        HostError::Call(CallError::Panicked { .. })
            | HostError::Worker(WorkerError::Crashed { .. } | WorkerError::TimedOut { .. })
    )
}

/// An item that ended its call: the failure that stands for it.
fn item_failure(e: &HostError) -> ItemFailure {
    match e {
        HostError::Call(CallError::Panicked { message, .. }) => ItemFailure::Panicked(message.clone()),
        other => ItemFailure::Crashed(other.to_string()),
    }
}

/// Calls `stage` on `batch`. With `retry`, a batch that [`is_batch_fatal`] is called again one
/// item at a time, each after `reopen` gave a fresh instance where the last one was lost; the
/// items that end a call come back as [`ItemFailure::Panicked`] or [`ItemFailure::Crashed`] and
/// the rest as usual.
/// Without `retry`, or for any other error, the error is returned.
pub fn call_retrying_items(
    stage: &mut Opened,
    batch: &[Value],
    retry: bool,
    reopen: &dyn Fn() -> Result<Opened, HostError>,
) -> Result<Vec<Result<Value, ItemFailure>>, HostError> {
    let first = match stage.call(batch) {
        Ok(out) => return Ok(out.into_iter().map(|r| r.map_err(ItemFailure::Error)).collect()),
        Err(e) if retry && is_batch_fatal(&e) => e,
        Err(e) => return Err(e),
    };
    tracing::debug!(
        plugin = stage.plugin(),
        function = %stage.spec().name,
        items = batch.len(),
        "a batch ended its call ({first}); retrying item by item in fresh instances"
    );
    *stage = reopen()?;
    if batch.len() == 1 {
        return Ok(vec![Err(item_failure(&first))]);
    }
    let mut out = Vec::with_capacity(batch.len());
    for item in batch {
        match stage.call(std::slice::from_ref(item)) {
            Ok(results) => {
                let n = results.len();
                let mut results = results.into_iter();
                match (results.next(), n) {
                    (Some(r), 1) => out.push(r.map_err(ItemFailure::Error)),
                    _ => {
                        return Err(HostError::Usage(format!(
                            "`{}/{}` returned {n} results for one item",
                            stage.plugin(),
                            stage.spec().name
                        )))
                    }
                }
            }
            Err(e) if is_batch_fatal(&e) => {
                out.push(Err(item_failure(&e)));
                *stage = reopen()?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
