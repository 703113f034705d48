//! `commute status FILE`: how much of the embeddings a run of the experiment needs is cached,
//! per node and per operator set, without opening any encoder.
//!
//! The data sets are generated (their sources called) to know the items and so the chunks' cache
//! keys; renders, operators and encoders are never called. A chunk counts as cached when its
//! entry exists: entries are not read here (`commute run` checks each one's checksum as it reads
//! it, and recomputes a corrupt one).

use super::{Cli, Outcome};
use crate::cache::Cache;
use crate::extract::{Extractor, SetChunks};
use crate::shard::plan;
use std::collections::HashSet;
use std::path::PathBuf;

/// Arguments of `commute status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    file: PathBuf,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The coverage of one embedding set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct Coverage {
    /// `node`, `node (items)` or `node ∘ operator`.
    set: String,
    node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
    /// `plugin/function` of the node's encoder.
    encoder: String,
    items: usize,
    cached_items: usize,
    chunks: usize,
    cached_chunks: usize,
    missing_chunks: usize,
}

/// Distinct chunks over all sets (a chunk two sets share counts once).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct Totals {
    chunks: usize,
    cached_chunks: usize,
    missing_chunks: usize,
}

fn coverage(set: &SetChunks, node: &str, operator: Option<&str>, encoder: String, cache: &Cache) -> Coverage {
    let mut cached_chunks = 0;
    let mut cached_items = 0;
    for (i, key) in set.keys.iter().enumerate() {
        if cache.has_embeddings(key) {
            cached_chunks += 1;
            cached_items += set.chunk_items(i);
        }
    }
    Coverage {
        set: set.name.clone(),
        node: node.to_owned(),
        operator: operator.map(str::to_owned),
        encoder,
        items: set.items,
        cached_items,
        chunks: set.keys.len(),
        cached_chunks,
        missing_chunks: set.keys.len() - cached_chunks,
    }
}

/// A plain table: one row per set, then the totals.
fn table(rows: &[Coverage], totals: &Totals) -> String {
    let headers = ["SET", "ENCODER", "ITEMS", "CACHED", "CHUNKS", "CACHED", "MISSING"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.set.clone(),
                r.encoder.clone(),
                r.items.to_string(),
                r.cached_items.to_string(),
                r.chunks.to_string(),
                r.cached_chunks.to_string(),
                r.missing_chunks.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            match i {
                0 | 1 => out.push_str(&format!("{cell}{pad}  ")),
                _ => out.push_str(&format!("{pad}{cell}  ")),
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers.map(str::to_owned));
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&format!(
        "total: {} of {} chunks cached, {} missing{}\n",
        totals.cached_chunks,
        totals.chunks,
        totals.missing_chunks,
        if totals.missing_chunks == 0 { " (a run extracts nothing)" } else { "" }
    ));
    out
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let exp = super::check::checked(&registry, &args.file)?;
    let cache = Cache::new(args.cache.root());
    let base = super::check::base_dir(&args.file);
    let mut extractor = Extractor::new(&exp, &registry, &cache, base, cli.context().threads);
    let mut rows = Vec::new();
    let mut listed: HashSet<Vec<String>> = HashSet::new();
    let mut distinct: HashSet<String> = HashSet::new();
    let mut totals = Totals::default();
    for set in plan(&exp) {
        let node = exp.node(set.node());
        let encoder = node.map(|n| n.encoder.label()).unwrap_or_default();
        let plan = match &set {
            crate::shard::EmbeddingSet::Edited { node, at, operator } => {
                vec![extractor.chunk_plan_edited(node, at, operator)?]
            }
            _ => extractor.chunk_plan(set.node(), set.operator())?,
        };
        for chunks in plan {
            for key in &chunks.keys {
                if distinct.insert(key.clone()) {
                    totals.chunks += 1;
                    if cache.has_embeddings(key) {
                        totals.cached_chunks += 1;
                    }
                }
            }
            // An operator's items that are its node's items are the node's chunks: listed once.
            if listed.insert(chunks.keys.clone()) {
                rows.push(coverage(&chunks, set.node(), set.operator(), encoder.clone(), &cache));
            }
        }
    }
    totals.missing_chunks = totals.chunks - totals.cached_chunks;
    if args.json {
        let json = serde_json::json!({
            "experiment": exp.name,
            "cache": cache.root(),
            "sets": rows,
            "total": totals,
            "complete": totals.missing_chunks == 0,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("experiment {}, cache {}", exp.name, cache.root().display());
        print!("{}", table(&rows, &totals));
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_names_left_and_numbers_right() {
        let row = |set: &str, items: usize, cached: usize| Coverage {
            set: set.to_owned(),
            node: "n".to_owned(),
            operator: None,
            encoder: "music/piano-roll".to_owned(),
            items,
            cached_items: cached,
            chunks: items.div_ceil(64),
            cached_chunks: cached.div_ceil(64),
            missing_chunks: items.div_ceil(64) - cached.div_ceil(64),
        };
        let rows = [row("notes", 1000, 1000), row("notes ∘ up", 130, 64)];
        let totals = Totals { chunks: 19, cached_chunks: 17, missing_chunks: 2 };
        assert_eq!(
            table(&rows, &totals),
            "SET         ENCODER           ITEMS  CACHED  CHUNKS  CACHED  MISSING\n\
             notes       music/piano-roll   1000    1000      16      16        0\n\
             notes ∘ up  music/piano-roll    130      64       3       1        2\n\
             total: 17 of 19 chunks cached, 2 missing\n"
        );
        let done = Totals { chunks: 1, cached_chunks: 1, missing_chunks: 0 };
        assert!(table(&rows[..1], &done)
            .ends_with("total: 1 of 1 chunks cached, 0 missing (a run extracts nothing)\n"));
    }
}
