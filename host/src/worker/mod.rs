//! Isolated mode: plugin functions run in a child process (`commute worker`) that loads the same
//! library and speaks a framed protocol over stdio, so that a segfault, an abort, running out of
//! memory or a hang in a plugin becomes an error naming the plugin and the function instead of
//! the end of the host.
//!
//! - [`protocol`]: frames and the binary encoding of requests, replies and values;
//! - [`client`]: the host side, [`WorkerInstance`] — one process per open function, a time
//!   limit on every answer, crashes described by exit status or signal;
//! - [`serve`]: the worker side, the loop `commute worker` runs;
//! - [`retry`]: a batch that panicked or crashed, retried item by item.
//!
//! [`Isolation`] decides which calls of an experiment run isolated (`--isolate-all`,
//! `--isolate-plugin`, a node's `isolate = true`), and [`Opened`] is what the extractor holds: a
//! function open in-process or in a worker, called the same way.

pub mod client;
pub mod protocol;
pub mod retry;
pub mod serve;

pub use client::{ExitCause, WorkerInstance};

use crate::experiment::{Call, Node};
use crate::HostError;
use commute_sdk::abi::client::{Instance, ItemResult};
use commute_sdk::{CallError, FunctionSpec, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The default time limit of one call (or open) in a worker: 10 minutes.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// A function running in an isolated worker failed in a way only isolation can survive, or
/// could not be started there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The worker process could not be started.
    #[error("cannot start an isolated worker for plugin `{plugin}` ({}): {source}", program.display())]
    Spawn {
        /// Plugin name.
        plugin: String,
        /// The executable run as `PROGRAM worker`.
        program: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The worker could not load the plugin's library.
    #[error("plugin `{plugin}`: its isolated worker could not load the library: {message}")]
    Load {
        /// Plugin name.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The worker died: a signal (segfault, abort, kill) or an exit.
    #[error("plugin `{plugin}` function `{function}` crashed in its isolated worker {during}: {cause}{last_words}")]
    Crashed {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// What the host had asked for (`while opening it`, `during a call on 64 items`).
        during: String,
        /// How the worker ended.
        cause: ExitCause,
        /// `; its last words on stderr: …`, or empty.
        last_words: String,
    },
    /// The worker did not answer within the time limit and was killed.
    #[error(
        "plugin `{plugin}` function `{function}` did not answer within {timeout} {during}; the worker was \
         killed (a node's `call-timeout` or `--call-timeout` sets the limit)"
    )]
    TimedOut {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// What the host had asked for.
        during: String,
        /// The limit, formatted (`30 s`).
        timeout: String,
    },
    /// The worker answered something the host cannot read; it was killed.
    #[error("plugin `{plugin}` function `{function}`: its isolated worker broke the protocol: {message}")]
    Protocol {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// What was wrong.
        message: String,
    },
    /// A call on a worker that crashed or was killed before.
    #[error("plugin `{plugin}` function `{function}`: its isolated worker is gone ({message})")]
    Gone {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// How it ended.
        message: String,
    },
    /// The plugin itself reported an error (bad parameters, a panic…), as it would in-process.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// How one isolated function runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// The time limit of each open and each call.
    pub timeout: Duration,
    /// The worker's address-space cap in MiB (`RLIMIT_AS`), if any.
    pub memory_mib: Option<u64>,
    /// The executable started as `PROGRAM worker` [default: the current executable].
    pub program: Option<PathBuf>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { timeout: DEFAULT_CALL_TIMEOUT, memory_mib: None, program: None }
    }
}

/// Which calls of a run go to isolated workers, and with which limits.
#[derive(Debug, Clone, Default)]
pub struct Isolation {
    /// Every plugin function runs isolated (`--isolate-all`).
    pub all: bool,
    /// Plugins whose every function runs isolated (`--isolate-plugin NAME`).
    pub plugins: Vec<String>,
    /// Limits for calls a node does not set its own for.
    pub defaults: WorkerOptions,
}

impl Isolation {
    /// How `call` runs when made for `node` (its encoder, a render of its data, an operator on its
    /// items, the source of its data): `None` in-process.
    pub fn for_call(&self, node: Option<&Node>, call: &Call) -> Option<WorkerOptions> {
        let isolated =
            self.all || node.is_some_and(|n| n.isolate) || self.plugins.iter().any(|p| p == &call.plugin);
        isolated.then(|| WorkerOptions {
            timeout: node
                .and_then(|n| n.call_timeout_s)
                .map_or(self.defaults.timeout, Duration::from_secs_f64),
            memory_mib: node.and_then(|n| n.worker_memory_mib).or(self.defaults.memory_mib),
            program: self.defaults.program.clone(),
        })
    }
}

/// Opens `function` of plugin `loaded` with `params` (TOML text) and `ctx`, its declared assets
/// from `store` (fetched there on first use and verified): in this process, or in an isolated
/// worker when `isolated` gives its options (the worker gets the same context and store). The one
/// place a function is opened, for `commute call` and for a run alike.
pub fn open_function(
    loaded: &crate::registry::LoadedPlugin,
    function: &str,
    params: &str,
    ctx: &commute_sdk::Context,
    store: &commute_sdk::asset::AssetStore,
    isolated: Option<&WorkerOptions>,
) -> Result<Opened, crate::HostError> {
    match isolated {
        None => Ok(Opened::InProcess(loaded.plugin.open_with(function, params, ctx, Some(store))?)),
        Some(options) => {
            let worker = WorkerInstance::open(
                &loaded.path,
                loaded.plugin.name(),
                function,
                params,
                ctx,
                Some(store.root()),
                options,
            )?;
            tracing::debug!(plugin = loaded.plugin.name(), function, pid = worker.pid(), "opened isolated");
            Ok(Opened::Isolated(worker))
        }
    }
}

/// A function open for calls, in this process or in an isolated worker.
#[derive(Debug)]
pub enum Opened {
    /// Loaded in the host process.
    InProcess(Instance),
    /// In its own worker process.
    Isolated(WorkerInstance),
}

impl Opened {
    /// Calls the function on a batch: one result per item (per produced item for a source).
    pub fn call(&mut self, batch: &[Value]) -> Result<Vec<ItemResult>, HostError> {
        match self {
            Opened::InProcess(i) => Ok(i.call(batch)?),
            Opened::Isolated(w) => w.call(batch).map_err(HostError::from),
        }
    }

    /// An encoder's embedding dimension (floats per frame for a frame-level encoder).
    pub fn dim(&self) -> Option<usize> {
        match self {
            Opened::InProcess(i) => i.dim(),
            Opened::Isolated(w) => w.dim(),
        }
    }

    /// A frame-level encoder's frames per second (`None`: it pools, one vector per item).
    pub fn frame_rate(&self) -> Option<f64> {
        match self {
            Opened::InProcess(i) => i.frame_rate(),
            Opened::Isolated(w) => w.frame_rate(),
        }
    }

    /// The function's signature and parameters.
    pub fn spec(&self) -> &FunctionSpec {
        match self {
            Opened::InProcess(i) => i.spec(),
            Opened::Isolated(w) => w.spec(),
        }
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        match self {
            Opened::InProcess(i) => i.plugin(),
            Opened::Isolated(w) => w.plugin(),
        }
    }

    /// Whether it runs in a worker process.
    pub fn is_isolated(&self) -> bool {
        matches!(self, Opened::Isolated(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_in_their_unit() {
        assert_eq!(client::format_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(client::format_duration(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn crash_causes_name_the_signal_and_what_it_usually_means() {
        assert_eq!(
            ExitCause::Signal(11).to_string(),
            "killed by signal 11 (SIGSEGV, a segmentation fault: an invalid memory access)"
        );
        assert!(ExitCause::Signal(6).to_string().contains("possibly out of memory"));
        assert!(ExitCause::Signal(9).to_string().contains("out-of-memory killer"));
        assert_eq!(ExitCause::Code(3).to_string(), "the worker exited with status 3");
    }

    fn node(isolate: bool, timeout: Option<f64>) -> Node {
        Node {
            name: "n".into(),
            data: "d".into(),
            encoder: crate::experiment::Encoder::Plugin(Call::new("music", "chroma", toml::Table::new())),
            skip_failed_items: false,
            isolate,
            call_timeout_s: timeout,
            worker_memory_mib: None,
            device: crate::experiment::Device::Cpu,
            layer_of: None,
            layers: None,
            spans: Default::default(),
        }
    }

    #[test]
    fn isolation_follows_the_flag_the_plugin_list_and_the_node() {
        let call = Call::new("music", "synth", toml::Table::new());
        let none = Isolation::default();
        assert_eq!(none.for_call(Some(&node(false, None)), &call), None);
        let by_node = none.for_call(Some(&node(true, Some(2.0))), &call).unwrap();
        assert_eq!(by_node.timeout, Duration::from_secs(2));
        let all = Isolation { all: true, ..Isolation::default() };
        assert_eq!(all.for_call(None, &call).unwrap().timeout, DEFAULT_CALL_TIMEOUT);
        let music = Isolation { plugins: vec!["music".into()], ..Isolation::default() };
        assert!(music.for_call(Some(&node(false, None)), &call).is_some());
        let other = Call { plugin: "audio".into(), ..call };
        assert!(music.for_call(Some(&node(false, None)), &other).is_none());
    }
}
