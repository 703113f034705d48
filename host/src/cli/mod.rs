//! The `commute` command line: global options, subcommands, exit codes.
//!
//! Exit codes: 0 success, 1 a declared check failed (a plugin library did not load, an item
//! failed), 2 an error (bad arguments, unreadable files, a failed call).

mod cache_dir;
mod call;
mod check;
mod csls;
mod describe;
mod export;
mod fetch;
mod plugins;
mod run;
mod slurm;
mod status;
mod swap;
mod worker;

use crate::discover::SearchPath;
use crate::registry::Registry;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// commute: functional-alignment experiments across modalities, with plugins for each modality.
#[derive(Debug, Parser)]
#[command(name = "commute", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// A folder to search for plugin libraries (before COMMUTE_PLUGIN_PATH and the executable's folder).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,
    /// A plugin library file to load, whatever its name.
    #[arg(long = "plugin", value_name = "FILE", global = true)]
    plugin_files: Vec<PathBuf>,
    /// Search only --plugin and --plugin-dir (not COMMUTE_PLUGIN_PATH or the executable's folder).
    #[arg(long, global = true)]
    no_default_plugins: bool,
    /// Load plugin libraries even from files or folders that other users can write (refused
    /// otherwise: another user could replace a library that commute then runs).
    #[arg(long, global = true)]
    allow_insecure_plugin_dirs: bool,
    /// Threads a plugin function may use [default: all cores].
    #[arg(long, value_name = "N", global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the plugins found, and the libraries that failed to load.
    Plugins(plugins::Args),
    /// Show a plugin's functions: kind, input → output, parameters with defaults and docs.
    Describe(describe::Args),
    /// Call one function by hand: generate, transform, render or encode values from files.
    Call(call::Args),
    /// Check an experiment file against the plugins, without running anything.
    Check(check::Args),
    /// Run an experiment: extract (cached) embeddings, fit and evaluate every edge, write a report.
    Run(run::Args),
    /// Swap a node's encoder in a finished run and rerun only what depends on it.
    Swap(swap::Args),
    /// Show how much of the embeddings a run needs is cached, per node and operator set.
    Status(status::Args),
    /// Write (and with --submit, submit) Slurm jobs: an array of shards, then the fit.
    Slurm(slurm::Args),
    /// Export a node's embeddings as a .npy array, or a run's metrics as a .csv or .parquet table.
    Export(export::Args),
    /// Fetch declared assets (models, lexicons) into the asset store ahead of time.
    Fetch(fetch::FetchArgs),
    /// List the assets the plugins declare: status in the store, size, licence, source, users.
    Assets(fetch::AssetsArgs),
    /// CSLS retrieval (P@1) over million-scale synthetic vectors in bounded memory, whole or in shards.
    Csls(csls::Args),
    /// Serve one plugin library to an isolated-mode host over stdin/stdout (started by commute).
    #[command(hide = true)]
    Worker(worker::Args),
}

/// What a successful command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything as expected.
    Ok,
    /// The command ran, but a declared check failed (exit code 1).
    CheckFailed,
}

impl Cli {
    fn registry(&self) -> Registry {
        let mut search = if self.no_default_plugins {
            SearchPath::from_sources(self.plugin_files.clone(), self.plugin_dirs.clone(), None, None)
        } else {
            SearchPath::standard(self.plugin_files.clone(), self.plugin_dirs.clone())
        };
        search.allow_insecure = self.allow_insecure_plugin_dirs;
        Registry::load(&search)
    }

    fn context(&self) -> commute_sdk::Context {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1))
            .max(1);
        commute_sdk::Context { threads, ..commute_sdk::Context::default() }
    }
}

/// Runs a parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Plugins(args) => plugins::run(cli, args),
        Command::Describe(args) => describe::run(cli, args),
        Command::Call(args) => call::run(cli, args),
        Command::Check(args) => check::run(cli, args),
        Command::Run(args) => run::run(cli, args),
        Command::Swap(args) => swap::run(cli, args),
        Command::Status(args) => status::run(cli, args),
        Command::Slurm(args) => slurm::run(cli, args),
        Command::Export(args) => export::run(cli, args),
        Command::Fetch(args) => fetch::fetch(cli, args),
        Command::Assets(args) => fetch::list(cli, args),
        Command::Csls(args) => csls::run(cli, args),
        Command::Worker(args) => worker::run(cli, args),
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(if cli.quiet { -1 } else { cli.verbose.min(3) as i8 });
    match run(&cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            // Causes that the message already says (`path: No such file…`) are not repeated.
            let mut said = e.to_string();
            eprintln!("error: {said}");
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !said.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                    said.push_str(&cause);
                }
            }
            ExitCode::from(2)
        }
    }
}

/// Reports load failures on stderr, returning whether there were any.
fn report_failures(registry: &Registry) -> bool {
    for failure in registry.failures() {
        eprintln!("error: {failure}");
    }
    !registry.failures().is_empty()
}
