//! `commute check FILE`: validates an experiment without opening any plugin function.

use super::{Cli, Outcome};
use crate::experiment::{self, diagnostic, Experiment};
use crate::registry::Registry;
use std::path::{Path, PathBuf};

/// Arguments of `commute check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    file: PathBuf,
}

/// Reads, parses and validates an experiment file; on failure prints every problem to stderr.
pub fn load(registry: &Registry, file: &Path) -> anyhow::Result<Result<Experiment, String>> {
    let bytes = std::fs::read(file).map_err(|e| crate::HostError::io(file, e))?;
    Ok(experiment::load(&bytes, registry, base_dir(file))
        .map_err(|diags| diagnostic::render(file, &String::from_utf8_lossy(&bytes), &diags)))
}

/// The experiment in `file`, checked; on problems they are printed and the command fails.
pub fn checked(registry: &Registry, file: &Path) -> anyhow::Result<Experiment> {
    match load(registry, file)? {
        Ok(exp) => Ok(exp),
        Err(report) => {
            eprint!("{report}");
            Err(crate::HostError::Usage(format!("{} has errors; nothing was run", file.display())).into())
        }
    }
}

/// The folder relative paths in an experiment file are resolved against.
pub fn base_dir(file: &Path) -> &Path {
    file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    match load(&registry, &args.file)? {
        Ok(exp) => {
            let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            let stitches = match exp.stitches.len() {
                0 => String::new(),
                n => format!(", {}", count(n, "stitch", "stitches")),
            };
            println!(
                "ok: experiment `{}`: {}, {}, {}{stitches}, anchors {:?} × {}",
                exp.name,
                count(exp.data.len(), "data set", "data sets"),
                count(exp.nodes.len(), "node", "nodes"),
                count(exp.edges.len(), "edge", "edges"),
                exp.anchors,
                count(exp.repeats, "repeat", "repeats")
            );
            Ok(Outcome::Ok)
        }
        Err(report) => {
            eprint!("{report}");
            Ok(Outcome::CheckFailed)
        }
    }
}
