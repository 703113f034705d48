//! `commute plugins`: the plugins found, as a table or JSON, and the libraries that failed.

use super::{Cli, Outcome};

/// Arguments of `commute plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (plugins with manifests, paths and library hashes; failures) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    if args.json {
        let plugins: Vec<serde_json::Value> = registry
            .plugins()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.plugin.name(),
                    "path": p.path,
                    "sha256": p.sha256,
                    "manifest": p.plugin.manifest(),
                })
            })
            .collect();
        let failures: Vec<String> = registry.failures().iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "plugins": plugins, "failures": failures }))?
        );
    } else {
        let rows: Vec<[String; 5]> = registry
            .plugins()
            .iter()
            .map(|p| {
                let m = p.plugin.manifest();
                [
                    m.name.clone(),
                    m.version.clone(),
                    m.modality.clone(),
                    m.functions.len().to_string(),
                    p.path.display().to_string(),
                ]
            })
            .collect();
        print_table(&["NAME", "VERSION", "MODALITY", "FUNCTIONS", "PATH"], &rows);
    }
    Ok(if super::report_failures(&registry) { Outcome::CheckFailed } else { Outcome::Ok })
}

/// Prints rows under a header, columns padded to their widest cell.
pub(super) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
