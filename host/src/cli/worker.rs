//! `commute worker --library PATH` (hidden): the child process of isolated mode, serving one
//! plugin library over stdin/stdout; and the isolation options `run` and `call` share.

use super::{Cli, Outcome};
use crate::experiment::units::{parse_duration, parse_memory_mib};
use crate::worker::serve::{serve, ServeOptions};
use crate::worker::{Isolation, WorkerOptions};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `commute worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin library to serve.
    #[arg(long, value_name = "FILE")]
    library: PathBuf,
    /// Cap the worker's address space at this many MiB.
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<u64>,
}

pub fn run(_cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    serve(&ServeOptions { library: args.library.clone(), memory_mib: args.memory_mib })?;
    Ok(Outcome::Ok)
}

/// The isolation options of `commute run` and `commute call`.
#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Run every plugin function in its own worker process, where a crash or a hang fails only
    /// the nodes that use it.
    #[arg(long)]
    isolate_all: bool,
    /// Time limit of each call in a worker: seconds or `500ms`, `30s`, `2m`, `1h` (a node's
    /// `call-timeout` overrides it).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "600s")]
    call_timeout: Duration,
    /// Cap each worker's address space, in MiB or as `4GiB`, so that a plugin that runs out of
    /// memory aborts alone (a node's `worker-memory` overrides it).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_mib)]
    worker_memory: Option<u64>,
}

impl IsolationArgs {
    /// The isolation settings, with `plugins` isolated wherever they are used.
    pub fn isolation(&self, plugins: Vec<String>) -> Isolation {
        Isolation {
            all: self.isolate_all,
            plugins,
            defaults: WorkerOptions {
                timeout: self.call_timeout,
                memory_mib: self.worker_memory,
                program: None,
            },
        }
    }
}
