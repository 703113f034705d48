//! Catching panics inside the plugin, with their message and source location.
//!
//! abi_stable's shims abort the process when a panic unwinds through them, so every entry point
//! of a plugin runs inside [`guard`]. The fast path is a bare `catch_unwind`: no thread-local
//! access, which in a dynamically loaded library costs a call into the dynamic linker each time.
//! A panic hook records where a panic happened (the payload carries only the message):
//! - in a loaded plugin library ([`install_in_library`], called once when the host loads it) the
//!   hook records the location and logs the panic at debug level instead of printing to stderr
//!   (the host reports it);
//! - in-process ([`install_chained`], used by the test harness) it records the location and then
//!   runs the previous hook, so test processes keep their usual panic output.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

/// A caught panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtPanic {
    /// The panic message.
    pub message: String,
    /// `file:line:col`, or empty when unknown.
    pub location: String,
}

thread_local! {
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

fn record(info: &PanicHookInfo<'_>) -> Option<String> {
    let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    LOCATION.with(|slot| *slot.borrow_mut() = location.clone());
    location
}

/// Installs the hook of a loaded plugin library: record, log at debug level, never print.
pub(crate) fn install_in_library() {
    INSTALL.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = record(info).unwrap_or_default();
            let message = payload_message(info.payload());
            tracing::debug!(target: "panic", "{location}: {message}");
        }));
    });
}

/// Installs a hook that records locations and then runs the previous hook (in-process use).
pub(crate) fn install_chained() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            record(info);
            previous(info);
        }));
    });
}

#[cold]
fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs `f`, turning a panic into [`CaughtPanic`].
#[inline]
pub fn guard<R>(f: impl FnOnce() -> R) -> Result<R, CaughtPanic> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| CaughtPanic {
        message: payload_message(payload.as_ref()),
        location: LOCATION.with(|slot| slot.borrow_mut().take()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_message_with_its_location() {
        install_chained();
        let caught = guard(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(caught.message, "boom 7");
        assert!(caught.location.contains("panic_guard.rs:"), "location was {:?}", caught.location);
    }

    #[test]
    fn values_pass_through_and_guards_nest() {
        install_chained();
        assert_eq!(guard(|| 3).unwrap(), 3);
        let outer = guard(|| guard(|| panic!("inner")).unwrap_err().message).unwrap();
        assert_eq!(outer, "inner");
    }
}
