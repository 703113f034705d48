//! `commute csls`: CSLS retrieval (P@1) over million-scale synthetic vectors in bounded memory —
//! in one process, or split into shards (pass 1, merge, pass 2, merge) through a state folder.
//!
//! ```text
//! commute csls --synthetic 2500000 --noise 3                          # everything here
//! commute csls --synthetic 2500000 --phase 1 --shard 8/1000 --state S # pass 1 of shard 8
//! commute csls --synthetic 2500000 --phase 1 --merge --state S        # radii from all shards
//! commute csls --synthetic 2500000 --phase 2 --shard 8/1000 --state S # pass 2 of shard 8
//! commute csls --synthetic 2500000 --phase 2 --merge --state S        # P@1
//! ```
//!
//! Every call of one job repeats the same data arguments; state files record them, and a merge
//! refuses files of another job. Results go to stdout (text, or `--json`), logs and a progress bar
//! to stderr.

use super::{Cli, Outcome};
use crate::csls_large::{
    self, csls_large, mean_radius, merge_pass1_files, merge_pass2_files, pass1, pass2, read_radii,
    write_pass1, write_pass2, CslsInput, CslsPlan, Hits, MemoryPlan, Radii, Side, Step, Synthetic,
    SyntheticSpec,
};
use crate::metrics::Blocks;
use crate::shard::{Shard, ShardError};
use crate::HostError;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `commute csls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generate N synthetic queries: query i is x_i·Q, gallery row i is (x_i + σ n_i)·Q, with x, n
    /// uniform of unit variance and Q a random rotation, all from --seed (rows L2-normalised).
    #[arg(long, value_name = "N")]
    synthetic: usize,
    /// Gallery rows [default: N]; rows past the queries are distractors.
    #[arg(long, value_name = "M")]
    gallery: Option<usize>,
    /// Width of the vectors.
    #[arg(long, default_value_t = 300)]
    dim: usize,
    /// Noise level σ: true pairs have cosine ≈ 1/√(1 + σ²).
    #[arg(long, value_name = "SIGMA", default_value_t = 3.0)]
    noise: f32,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Neighbourhood size of the CSLS radii.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Run one pass of a sharded job (with --shard) or merge its shards (with --merge).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2), requires = "state")]
    phase: Option<u8>,
    /// Which shard to run, I/N with I counted from 1 (1 ≤ I ≤ N): queries [(I−1)·n/N, I·n/N).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "phase", conflicts_with = "merge")]
    shard: Option<Shard>,
    /// Merge the shards of --phase: 1 writes the radii, 2 sums the hits and prints P@1.
    #[arg(long, requires = "phase")]
    merge: bool,
    /// The folder of the state files (shared by all shards of a job).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// With --phase 1 --merge: merge even when shards are missing (for timing only: the radii, and
    /// every P@1 computed from them, are marked incomplete).
    #[arg(long, requires = "merge")]
    allow_incomplete: bool,
    /// Queries held at a time; each query block streams (regenerates) the whole gallery once.
    #[arg(long, value_name = "ROWS", default_value_t = 16_384)]
    query_block: usize,
    /// Gallery rows generated and held at a time.
    #[arg(long, value_name = "ROWS", default_value_t = 16_384)]
    gallery_chunk: usize,
    /// Write the (normalised) queries and gallery as DIR/queries.npy and DIR/gallery.npy (float32,
    /// n × dim) and stop, for a comparison with another implementation.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["phase", "merge", "shard"])]
    write_npy: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: ShardError| e.to_string())
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    if let Some(threads) = cli.threads {
        faer::set_global_parallelism(faer::Par::rayon(threads.max(1)));
    }
    let threads = faer::utils::thread::parallelism_degree(faer::get_global_parallelism());
    let spec = SyntheticSpec {
        queries: args.synthetic,
        gallery: args.gallery.unwrap_or(args.synthetic),
        dim: args.dim,
        noise: args.noise,
        seed: args.seed,
    };
    let input = CslsInput::Synthetic(Synthetic::new(spec)?);
    if let Some(dir) = &args.write_npy {
        return write_npy(&input, dir);
    }
    if args.k == 0 {
        return Err(HostError::Usage("--k must be at least 1".into()).into());
    }
    let plan = CslsPlan {
        k: args.k,
        blocks: Blocks::default(),
        query_block: args.query_block.max(1),
        gallery_chunk: args.gallery_chunk.max(1),
    };
    let job = input.job(&plan);
    let (n_q, n_g) = (input.queries(), input.gallery());
    let state = || -> Result<&Path, HostError> {
        let dir = args.state.as_deref().ok_or_else(|| HostError::Usage("--state DIR is required".into()))?;
        std::fs::create_dir_all(dir).map_err(|e| HostError::write("create the state folder", dir, e))?;
        Ok(dir)
    };
    let (step, shard) = match (args.phase, args.shard, args.merge) {
        (None, None, false) => (Step::Whole, None),
        (Some(1), Some(s), false) => (Step::Pass1, Some(s)),
        (Some(2), Some(s), false) => (Step::Pass2, Some(s)),
        (Some(1), None, true) => (Step::Merge1, None),
        (Some(2), None, true) => (Step::Merge2, None),
        _ => {
            return Err(HostError::Usage(
                "give --phase 1|2 with either --shard I/N or --merge (or neither, for the whole job)".into(),
            )
            .into())
        }
    };
    let range = shard.map_or(0..n_q, |s| s.range(n_q));
    let memory = plan.memory(&input, step, range.len(), threads);
    let mut out = Summary {
        step: step_name(step),
        input: job.input.clone(),
        queries: n_q,
        gallery: n_g,
        dim: job.dim,
        k: job.k,
        shard: shard.map(|s| s.to_string()),
        shard_queries: (range.start, range.end),
        threads,
        memory,
        seconds: 0.0,
        hits: None,
        mean_r_query: None,
        mean_r_gallery: None,
        complete: true,
        state_file: None,
    };
    if !args.json {
        println!(
            "csls {}: {n_q} queries × {n_g} gallery, d = {}, k = {}, {}",
            out.step, job.dim, job.k, job.input
        );
        if let Some(s) = shard {
            println!("shard {s}: queries {}..{} ({})", range.start, range.end, range.len());
        }
        println!(
            "planned memory: {} (rows {}, tiles {}, sweep lists {}, state {}), {threads} threads",
            mib(memory.total()),
            mib(memory.rows),
            mib(memory.tiles),
            mib(memory.sweep),
            mib(memory.state)
        );
    }
    tracing::info!(?step, ?shard, ?memory, "csls: starting");
    let blocks_of = |n: usize| n.div_ceil(plan.query_block) as u64 * n_g as u64;
    let start = Instant::now();
    match step {
        Step::Whole => {
            let bar = progress_bar("csls", 2 * blocks_of(n_q));
            let result = csls_large(&input, &plan, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            out.hits = Some(result.hits);
            out.set_radii(&result.radii, 0..n_q);
        }
        Step::Pass1 => {
            let dir = state()?;
            let shard = shard.ok_or_else(|| HostError::Usage("--shard is required".into()))?;
            let bar = progress_bar("pass 1", blocks_of(range.len()));
            let part = pass1(&input, &plan, range.clone(), &|n| bar.inc(n))?;
            bar.finish_and_clear();
            out.mean_r_query = Some(mean_radius(&part.r_query));
            out.state_file = Some(write_pass1(dir, &job, shard, &part)?);
        }
        Step::Merge1 => {
            let dir = state()?;
            let (radii, report) = merge_pass1_files(dir, &job, args.allow_incomplete)?;
            if !report.complete {
                tracing::warn!("pass-1 shards missing: the radii are incomplete (timing only)");
            }
            out.set_radii(&radii, 0..n_q);
            out.state_file = Some(csls_large::radii_path(dir));
        }
        Step::Pass2 => {
            let dir = state()?;
            let shard = shard.ok_or_else(|| HostError::Usage("--shard is required".into()))?;
            let radii = read_radii(dir, &job)?;
            let bar = progress_bar("pass 2", blocks_of(range.len()));
            let hits = pass2(&input, &plan, range.clone(), &radii.r_gallery, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            out.set_radii(&radii, range.clone());
            out.state_file = Some(write_pass2(dir, &job, shard, &hits, radii.complete)?);
            out.hits = Some(hits);
        }
        Step::Merge2 => {
            let dir = state()?;
            let (hits, report) = merge_pass2_files(dir, &job)?;
            out.complete = report.complete;
            if let Ok(radii) = read_radii(dir, &job) {
                out.set_radii(&radii, 0..n_q);
            }
            out.hits = Some(hits);
        }
    }
    out.seconds = start.elapsed().as_secs_f64();
    if !out.complete && out.hits.is_some() {
        tracing::warn!("computed from incomplete radii: not the CSLS P@1 of the job (timing only)");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        out.print();
    }
    Ok(Outcome::Ok)
}

/// What a step reports.
#[derive(Debug, serde::Serialize)]
struct Summary {
    step: &'static str,
    input: String,
    queries: usize,
    gallery: usize,
    dim: usize,
    k: usize,
    shard: Option<String>,
    shard_queries: (usize, usize),
    threads: usize,
    memory: MemoryPlan,
    seconds: f64,
    hits: Option<Hits>,
    mean_r_query: Option<f64>,
    mean_r_gallery: Option<f64>,
    complete: bool,
    state_file: Option<PathBuf>,
}

impl Summary {
    fn set_radii(&mut self, radii: &Radii, queries: std::ops::Range<usize>) {
        self.mean_r_query = Some(mean_radius(&radii.r_query[queries]));
        self.mean_r_gallery = Some(radii.mean_gallery());
        self.complete &= radii.complete;
    }

    fn print(&self) {
        if let Some(h) = &self.hits {
            let note =
                if self.complete { "" } else { "  (INCOMPLETE radii: timing only, not the job's P@1)" };
            println!(
                "P@1 = {:.6} ({}/{})  P@5 = {:.6}  P@10 = {:.6}  MRR = {:.6}{note}",
                h.p_at_1(),
                h.at_1,
                h.queries,
                h.p_at_5(),
                h.p_at_10(),
                h.mrr()
            );
        }
        match (self.mean_r_query, self.mean_r_gallery) {
            (Some(q), Some(g)) if self.complete => println!("mean r_query = {q:.6}, mean r_gallery = {g:.6}"),
            (Some(q), Some(g)) => println!(
                "mean r_query = {q:.6} (the merged shards' queries), mean r_gallery = {g:.6} (from those queries only)"
            ),
            (Some(q), None) => println!("mean r_query = {q:.6} (this shard's queries)"),
            _ => {}
        }
        if let Some(path) = &self.state_file {
            println!("state: {}", path.display());
        }
        println!("time {:.3} s", self.seconds);
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Whole => "whole",
        Step::Pass1 => "pass 1",
        Step::Merge1 => "merge 1",
        Step::Pass2 => "pass 2",
        Step::Merge2 => "merge 2",
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn progress_bar(what: &str, len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_owned());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>8} [{bar:30}] {percent}% of the gallery sweeps, {elapsed} elapsed, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Writes the normalised queries and gallery as `.npy` files (float32, C order), chunk by chunk.
fn write_npy(input: &CslsInput, dir: &Path) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).map_err(|e| HostError::write("create the folder", dir, e))?;
    for (side, name, n) in
        [(Side::Queries, "queries.npy", input.queries()), (Side::Gallery, "gallery.npy", input.gallery())]
    {
        let path = dir.join(name);
        let d = input.dim();
        let write = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
            out.write_all(&commute_sdk::npy::header_f32(&[n, d]))?;
            let mut start = 0;
            while start < n {
                let end = (start + 16_384).min(n);
                let rows = input.rows(side, start..end);
                let mut bytes = Vec::with_capacity(rows.nrows() * d * 4);
                for i in 0..rows.nrows() {
                    for j in 0..d {
                        bytes.extend_from_slice(&rows[(i, j)].to_le_bytes());
                    }
                }
                out.write_all(&bytes)?;
                start = end;
            }
            out.flush()
        };
        write().map_err(|e| HostError::write("write", &path, e))?;
        println!("{} ({n} × {d}, float32, normalised rows)", path.display());
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::super::Cli;
    use crate::csls_large::{csls_large, merge_pass2_files, read_radii, CslsInput, CslsPlan};
    use crate::csls_large::{Synthetic, SyntheticSpec};
    use clap::Parser as _;

    fn commute(args: &[&str]) -> anyhow::Result<super::Outcome> {
        let cli = Cli::try_parse_from(std::iter::once("commute").chain(args.iter().copied()))?;
        super::super::run(&cli)
    }

    #[test]
    fn sharded_steps_through_the_command_line_equal_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let state = path.to_str().unwrap();
        let data = ["-q", "csls", "--synthetic", "700", "--gallery", "750", "--noise", "6", "--seed", "3"];
        let run = |extra: &[&str]| commute(&[&data[..], extra].concat());
        for i in ["2/2", "1/2"] {
            run(&["--phase", "1", "--shard", i, "--state", state, "--query-block", "100"]).unwrap();
        }
        // Pass 2 before merge 1: no radii yet.
        assert!(run(&["--phase", "2", "--shard", "1/2", "--state", state]).is_err());
        run(&["--phase", "1", "--merge", "--state", state]).unwrap();
        for i in ["1/2", "2/2"] {
            run(&["--phase", "2", "--shard", i, "--state", state, "--gallery-chunk", "64"]).unwrap();
        }
        run(&["--phase", "2", "--merge", "--state", state, "--json"]).unwrap();

        let spec = SyntheticSpec { queries: 700, gallery: 750, dim: 300, noise: 6.0, seed: 3 };
        let input = CslsInput::Synthetic(Synthetic::new(spec).unwrap());
        let plan = CslsPlan::default();
        let whole = csls_large(&input, &plan, &|_| {}).unwrap();
        assert!(whole.hits.at_1 > 0.0 && whole.hits.at_1 < 700.0, "{:?}", whole.hits);
        let job = input.job(&plan);
        let (hits, report) = merge_pass2_files(&path, &job).unwrap();
        assert!(report.complete);
        assert_eq!((hits.at_1, hits.at_10, hits.queries), (whole.hits.at_1, whole.hits.at_10, 700));
        assert_eq!(read_radii(&path, &job).unwrap(), whole.radii);

        // Misuse is an error, not a panic.
        assert!(run(&["--phase", "1", "--shard", "0/2", "--state", state]).is_err());
        assert!(run(&["--phase", "1", "--state", state]).is_err());
        assert!(commute(&["-q", "csls", "--synthetic", "10", "--gallery", "5"]).is_err());
        let other = ["-q", "csls", "--synthetic", "700", "--gallery", "750", "--noise", "5", "--seed", "3"];
        assert!(commute(&[&other[..], &["--phase", "2", "--merge", "--state", state]].concat()).is_err());
    }
}
