//! `commute call PLUGIN FUNCTION`: one function by hand — generate a score, write it as `.mid`,
//! render it to `.wav`, print an embedding.

use super::{Cli, Outcome};
use crate::experiment::{Call, Device};
use crate::value_io::{display_value, parse_value, read_values, write_values};
use crate::HostError;
use commute_sdk::{FunctionKind, Value};
use std::path::PathBuf;

/// Arguments of `commute call`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin's name.
    plugin: String,
    /// The function's name (see `commute describe PLUGIN`).
    function: String,
    /// Parameters as TOML, e.g. `--params 'count = 3' --params 'seed = 7'` (repeatable).
    #[arg(long, short, value_name = "TOML")]
    params: Vec<String>,
    /// Input files: .wav, .mid, .txt (one text per line), .json (values) or .npy (a 1-D array is
    /// one tensor, a 2-D array one per row) (`--input a.mid b.mid`, repeatable).
    #[arg(long, short, value_name = "FILE", num_args = 1..)]
    input: Vec<PathBuf>,
    /// An input text (repeatable).
    #[arg(long, value_name = "TEXT")]
    text: Vec<String>,
    /// An input value as JSON, in the format of .json inputs, e.g.
    /// `--value '{"kind": "tensor", "shape": [3], "data": [0.2, 0.4, 0.6]}'` (repeatable).
    #[arg(long, value_name = "JSON")]
    value: Vec<String>,
    /// Write the results to FILE (.wav, .mid, .json, .txt or .npy) instead of printing them.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// The device to run on: `cpu` or `cuda:N` (a function with GPU code, from a plugin built
    /// with its `cuda` feature).
    #[arg(long, value_name = "DEVICE", default_value = "cpu", value_parser = parse_device)]
    device: Device,
    #[command(flatten)]
    isolation: super::worker::IsolationArgs,
    // Assets come from this cache's store, the one a run uses.
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
}

fn parse_device(text: &str) -> Result<Device, String> {
    Device::parse(text).ok_or_else(|| format!("expected `cpu` or `cuda:N` (e.g. `cuda:0`), found `{text}`"))
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let loaded = registry.get(&args.plugin)?;
    let params = args.params.join("\n");

    let mut inputs: Vec<Value> = Vec::new();
    for path in &args.input {
        inputs.extend(read_values(path)?);
    }
    inputs.extend(args.text.iter().map(Value::text));
    for json in &args.value {
        inputs.push(parse_value(json).map_err(|m| HostError::Usage(format!("--value: {m}")))?);
    }
    if !args.device.is_cpu() {
        if let Some(spec) = loaded.plugin.manifest().function(&args.function).filter(|f| !f.cuda) {
            return Err(HostError::Usage(format!(
                "`{}` of plugin `{}` runs on the CPU only, not on `{}`",
                spec.name, args.plugin, args.device
            ))
            .into());
        }
    }
    let ctx = commute_sdk::Context { device: args.device.to_string(), ..cli.context() };

    let store = commute_sdk::asset::AssetStore::for_cache(&args.cache.root());
    let isolated = args.isolation.isolation(Vec::new()).for_call(None, &call_of(args));
    let mut instance =
        crate::worker::open_function(loaded, &args.function, &params, &ctx, &store, isolated.as_ref())?;
    let spec = instance.spec().clone();
    if spec.kind == FunctionKind::Source {
        if !inputs.is_empty() {
            return Err(HostError::Usage(format!(
                "`{}` is a source: it takes no --input, --text or --value",
                spec.name
            ))
            .into());
        }
    } else if inputs.is_empty() {
        return Err(HostError::Usage(format!(
            "`{}` ({}) needs inputs: give --input FILE, --text TEXT or --value JSON",
            spec.name,
            spec.signature()
        ))
        .into());
    }
    if let Some(expected) = spec.input {
        if let Some(bad) = inputs.iter().find(|v| !expected.accepts(v.kind())) {
            return Err(HostError::Usage(format!(
                "`{}` takes {expected} inputs ({}), but was given {}",
                spec.name,
                spec.signature(),
                bad.kind()
            ))
            .into());
        }
    }

    tracing::info!(plugin = %args.plugin, function = %args.function, items = inputs.len(), "calling");
    let results = instance.call(&inputs)?;
    let mut values = Vec::with_capacity(results.len());
    let mut failed = 0usize;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(v) => {
                // `commute run` refuses such values; say so here too, at once.
                if let Some(bad) = v.non_finite() {
                    failed += 1;
                    eprintln!(
                        "error: item {i}: returned {bad} (`commute run` refuses NaN and infinite values)"
                    );
                }
                values.push(v);
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: item {i}: {e}");
            }
        }
    }

    if let Some(path) = &args.output {
        for written in write_values(path, &values)? {
            println!("{}", written.display());
        }
    } else if args.json {
        println!("{}", serde_json::to_string(&values)?);
    } else {
        for v in &values {
            println!("{}", display_value(v));
        }
    }
    Ok(if failed > 0 { Outcome::CheckFailed } else { Outcome::Ok })
}

/// The call as an experiment would declare it (for the isolation settings).
fn call_of(args: &Args) -> Call {
    Call::new(args.plugin.clone(), args.function.clone(), toml::Table::new())
}
