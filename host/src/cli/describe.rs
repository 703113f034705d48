//! `commute describe PLUGIN`: a plugin's functions with their signatures and parameters.

use super::{Cli, Outcome};
use commute_sdk::Manifest;

/// Arguments of `commute describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin's name (see `commute plugins`).
    plugin: String,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let loaded = registry.get(&args.plugin)?;
    let m = loaded.plugin.manifest();
    if args.json {
        println!("{}", serde_json::to_string_pretty(m)?);
    } else {
        print!("{}", render(m, &loaded.path.display().to_string()));
    }
    Ok(Outcome::Ok)
}

/// The text `commute describe` prints.
pub fn render(m: &Manifest, path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} — {} (modality: {}; commute-sdk {})",
        m.name, m.version, m.doc, m.modality, m.sdk_version
    );
    let _ = writeln!(out, "{path}");
    for f in &m.functions {
        let _ = writeln!(out, "\n{} [{}] {}", f.name, f.kind, f.signature());
        let _ = writeln!(out, "  {}", f.doc);
        match (f.cuda, f.kind) {
            (false, _) => {}
            (true, commute_sdk::FunctionKind::Encoder) => {
                let _ = writeln!(
                    out,
                    "  runs on a CUDA device too (a build with the plugin's `cuda` feature): a node's \
                     `device = \"cuda:N\"`, `commute call --device cuda:N`"
                );
            }
            (true, _) => {
                let _ = writeln!(
                    out,
                    "  runs on a CUDA device too (a build with the plugin's `cuda` feature) with \
                     `commute call --device cuda:N`; in experiments on the CPU (only encoders take a \
                     node's device)"
                );
            }
        }
        if !f.params.is_empty() {
            let _ = writeln!(out, "  params:");
        }
        for p in &f.params {
            let default = match (&p.default, p.required) {
                (Some(d), _) => format!(" = {d}"),
                (None, true) => " (required)".to_owned(),
                (None, false) => " (optional)".to_owned(),
            };
            let bounds = if p.bounds.is_none() { String::new() } else { format!(" {}", p.bounds) };
            let ty = if p.file {
                "file path"
            } else if p.folder {
                "folder path"
            } else {
                p.ty.as_str()
            };
            let _ = writeln!(out, "    {}: {ty}{bounds}{default}", p.name);
            if !p.doc.is_empty() {
                for line in p.doc.lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
    out
}
