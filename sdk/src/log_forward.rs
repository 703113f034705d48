//! Forwarding a plugin's `tracing` events to the host.
//!
//! A plugin library carries its own copy of `tracing`, with its own global dispatcher, so events a
//! plugin emits would be lost. When the host loads a plugin it hands over a log sink; this module
//! installs a minimal subscriber in the plugin that formats each event and passes it to that sink,
//! where the host re-emits it through its own subscriber (`-v`, `RUST_LOG`).

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Level numbers shared with the host: 1 error … 5 trace, 0 none.
pub(crate) fn level_number(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A subscriber that sends every enabled event to `sink(level, target, message)`.
pub(crate) struct Forwarder<F> {
    pub(crate) sink: F,
    pub(crate) max_level: u8,
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<F: Fn(u8, &str, &str) + Send + Sync + 'static> Subscriber for Forwarder<F> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_number(*metadata.level()) <= self.max_level
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(match self.max_level {
            0 => tracing::level_filters::LevelFilter::OFF,
            1 => tracing::level_filters::LevelFilter::ERROR,
            2 => tracing::level_filters::LevelFilter::WARN,
            3 => tracing::level_filters::LevelFilter::INFO,
            4 => tracing::level_filters::LevelFilter::DEBUG,
            _ => tracing::level_filters::LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let meta = event.metadata();
        (self.sink)(level_number(*meta.level()), meta.target(), &visitor.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn events_reach_the_sink_with_level_target_and_fields() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = Arc::clone(&seen);
        let forwarder = Forwarder {
            sink: move |level: u8, target: &str, message: &str| {
                sink_seen.lock().unwrap().push((level, target.to_owned(), message.to_owned()))
            },
            max_level: 3,
        };
        tracing::subscriber::with_default(forwarder, || {
            tracing::info!(target: "music", count = 3, "generated");
            tracing::debug!("too verbose");
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.as_slice(), &[(3, "music".to_owned(), "generated count=3".to_owned())]);
    }
}
