//! `commute fetch` and `commute assets`: fetching declared assets ahead of time, and their state.

use super::plugins::print_table;
use super::{Cli, Outcome};
use crate::assets::{declared, Declared};
use commute_sdk::asset::{human_size, AssetStatus, AssetStore};

/// Arguments of `commute fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Asset names (see `commute assets`).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    names: Vec<String>,
    /// Every asset the loaded plugins declare.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
}

/// Arguments of `commute assets`.
#[derive(Debug, clap::Args)]
pub struct AssetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
}

fn store(cache: &super::cache_dir::CacheDir) -> AssetStore {
    AssetStore::for_cache(&cache.root())
}

pub fn fetch(cli: &Cli, args: &FetchArgs) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let all = declared(&registry)?;
    let chosen: Vec<&Declared> = if args.all {
        all.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &args.names {
            match all.iter().find(|d| d.spec.name == name.as_str()) {
                Some(d) => chosen.push(d),
                None => {
                    let known: Vec<&str> = all.iter().map(|d| d.spec.name.as_ref()).collect();
                    anyhow::bail!(
                        "no loaded plugin declares an asset `{name}`; declared: {}",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    );
                }
            }
        }
        chosen
    };
    let store = store(&args.cache);
    let mut failed = 0;
    for d in chosen {
        match store.ensure(&d.spec) {
            Ok(path) => println!("{}\t{}", d.spec.name, path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} asset(s) could not be fetched");
    }
    Ok(Outcome::Ok)
}

pub fn list(cli: &Cli, args: &AssetsArgs) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let all = declared(&registry)?;
    let store = store(&args.cache);
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for d in &all {
        let status = match store.status(&d.spec) {
            Ok(s) => s,
            Err(e) => AssetStatus::Corrupt { found: e.to_string() },
        };
        if args.json {
            json.push(serde_json::json!({
                "name": d.spec.name,
                "status": status.to_string(),
                "path": store.path_of(&d.spec),
                "spec": d.spec,
                "used-by": d.users,
            }));
        } else {
            rows.push([
                d.spec.name.to_string(),
                status.to_string(),
                human_size(d.spec.size),
                d.spec.licence.to_string(),
                d.spec.source.to_string(),
                d.users.join(", "),
            ]);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "store": store.root(), "assets": json }))?
        );
    } else {
        print_table(&["NAME", "STATUS", "SIZE", "LICENCE", "SOURCE", "USED BY"], &rows);
        println!("store: {}", store.root().display());
    }
    Ok(if super::report_failures(&registry) { Outcome::CheckFailed } else { Outcome::Ok })
}
