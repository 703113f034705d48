//! `commute slurm FILE`: writes the Slurm batch scripts that run an experiment on a cluster — a
//! job array whose task I computes shard I/N of the embeddings, and a fit job that runs the
//! experiment once all of them succeeded (`afterok`) — and with `--submit` submits both.
//!
//! Every path in the scripts is absolute (the `commute` executable, the experiment, the cache,
//! the runs folder, plugin files and folders), so they run the same from any folder on any node
//! that sees those paths. The cache must be on a filesystem all nodes share.

use super::{Cli, Outcome};
use crate::value_io::write_atomic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments of `commute slurm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment file.
    file: PathBuf,
    /// Shards: tasks of the job array (`--array=1-N`).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    shards: u32,
    /// The Slurm partition of both jobs.
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// GPUs for each shard task (`--gpus-per-task`; the fit job gets none).
    #[arg(long, value_name = "G")]
    gpus_per_task: Option<u32>,
    /// Time limit of each job, in Slurm's format (`30`, `2:00:00`, `1-00:00:00`).
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// Where the scripts and the jobs' logs go [default: slurm/<experiment name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where the fit job writes its run folder.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs: PathBuf,
    #[command(flatten)]
    cache: super::cache_dir::CacheDir,
    /// Submit both jobs with sbatch and print their ids.
    #[arg(long)]
    submit: bool,
    /// Further `commute run` options for every job, after `--` (for example `-- --isolate-all`).
    #[arg(last = true, value_name = "RUN OPTIONS")]
    run_options: Vec<String>,
}

/// Why the scripts cannot be written or submitted.
#[derive(Debug, thiserror::Error)]
enum SlurmError {
    /// A value that an `#SBATCH` line cannot carry.
    #[error("{what} `{value}`: {why}")]
    BadValue { what: &'static str, value: String, why: &'static str },
    /// sbatch could not be started.
    #[error("cannot run sbatch to submit {script}: {}; is Slurm's sbatch on the PATH?", crate::error::io_reason(.reason))]
    NoSbatch { script: PathBuf, reason: std::io::Error },
    /// sbatch refused the script.
    #[error("sbatch refused {script} ({status}): {stderr}")]
    Refused { script: PathBuf, status: String, stderr: String },
    /// sbatch --parsable printed something else than a job id.
    #[error("sbatch printed `{stdout}` for {script}, not a job id")]
    NoJobId { script: PathBuf, stdout: String },
}

/// Everything the scripts say.
#[derive(Debug, Clone, PartialEq)]
struct Jobs {
    /// The experiment's name (in job names and comments).
    name: String,
    shards: u32,
    partition: Option<String>,
    gpus_per_task: Option<u32>,
    time: Option<String>,
    cpus_per_task: Option<usize>,
    /// The jobs' working folder (where `commute slurm` ran).
    workdir: PathBuf,
    /// Where the scripts and logs go.
    out: PathBuf,
    /// The `commute` executable and its global options.
    commute: Vec<String>,
    /// The experiment file.
    file: PathBuf,
    cache: PathBuf,
    runs: PathBuf,
    /// Further `commute run` options.
    run_options: Vec<String>,
}

/// `s` as one shell word: as is when it has only safe characters, else in single quotes.
fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Checks that `value` fits an `#SBATCH` line: only the characters `allowed` says.
fn sbatch_value(
    what: &'static str,
    value: &str,
    allowed: fn(char) -> bool,
    why: &'static str,
) -> Result<(), SlurmError> {
    if value.is_empty() || !value.chars().all(allowed) {
        return Err(SlurmError::BadValue { what, value: value.to_owned(), why });
    }
    Ok(())
}

fn sbatch_path(what: &'static str, path: &Path) -> Result<(), SlurmError> {
    sbatch_value(
        what,
        &path_text(path),
        |c| !c.is_whitespace() && !c.is_control() && c != '%' && c != '"' && c != '\'',
        "an #SBATCH line cannot carry spaces, quotes or `%` in a path; choose another folder",
    )
}

impl Jobs {
    /// The `commute … run FILE --cache DIR` command line both jobs share, as shell words.
    fn run_command(&self) -> String {
        let mut words: Vec<String> = self.commute.iter().map(|w| quote(w)).collect();
        words.push("run".to_owned());
        words.push(quote(&path_text(&self.file)));
        words.push("--cache".to_owned());
        words.push(quote(&path_text(&self.cache)));
        words.extend(self.run_options.iter().map(|w| quote(w)));
        words.join(" ")
    }

    fn header(&self, job: &str, log: &str, gpus: bool) -> String {
        let mut h = String::from("#!/bin/bash\n");
        let what = if job == "shards" {
            format!(
                "# Shards of experiment `{}` (written by `commute slurm`): array task I computes shard I/{} of the\n\
                 # embeddings into the shared cache; fit.sbatch runs after every task succeeded.\n",
                self.name, self.shards
            )
        } else {
            format!(
                "# Fit and evaluate experiment `{}` (written by `commute slurm`) from the embeddings the shards\n\
                 # cached; submit it with --dependency=afterok:<shards job id> (submit.sh does).\n",
                self.name
            )
        };
        h.push_str(&what);
        h.push_str(&format!("#SBATCH --job-name=commute-{}-{job}\n", self.name));
        if job == "shards" {
            h.push_str(&format!("#SBATCH --array=1-{}\n", self.shards));
        }
        h.push_str("#SBATCH --ntasks=1\n");
        h.push_str(&format!("#SBATCH --chdir={}\n", path_text(&self.workdir)));
        h.push_str(&format!("#SBATCH --output={}\n", path_text(&self.out.join("logs").join(log))));
        if let Some(p) = &self.partition {
            h.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let (true, Some(g)) = (gpus, self.gpus_per_task) {
            h.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
        }
        if let Some(c) = self.cpus_per_task {
            h.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
        }
        if let Some(t) = &self.time {
            h.push_str(&format!("#SBATCH --time={t}\n"));
        }
        h.push_str("set -euo pipefail\n");
        h
    }

    /// The job array: task I runs `commute run FILE --shard I/N`.
    fn shards_script(&self) -> String {
        let mut s = self.header("shards", "shards-%A_%a.out", true);
        s.push_str(&format!(
            "exec {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"\n",
            self.run_command(),
            self.shards
        ));
        s
    }

    /// The fit job: a plain `commute run FILE`, which finds every embedding cached.
    fn fit_script(&self) -> String {
        let mut s = self.header("fit", "fit-%j.out", false);
        s.push_str(&format!("exec {} --runs {}\n", self.run_command(), quote(&path_text(&self.runs))));
        s
    }

    /// Submits the array, then the fit job after it.
    fn submit_script(&self) -> String {
        let (shards, fit) = (self.out.join("shards.sbatch"), self.out.join("fit.sbatch"));
        format!(
            "#!/bin/sh\n\
             # Submits the shards of experiment `{name}` and the fit job that runs after all of them succeed.\n\
             set -eu\n\
             shards=$(sbatch --parsable {shards})\n\
             shards=${{shards%%;*}}\n\
             fit=$(sbatch --parsable --dependency=afterok:\"$shards\" {fit})\n\
             echo \"shards job $shards (array 1-{n})\"\n\
             echo \"fit job ${{fit%%;*}} (afterok:$shards)\"\n",
            name = self.name,
            shards = quote(&path_text(&shards)),
            fit = quote(&path_text(&fit)),
            n = self.shards,
        )
    }
}

/// A job id from `sbatch --parsable` output (`123` or `123;cluster`).
fn job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

/// `sbatch --parsable [extra…] script`, returning the job id.
fn sbatch(extra: &[String], script: &Path) -> Result<String, SlurmError> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .map_err(|reason| SlurmError::NoSbatch { script: script.to_path_buf(), reason })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(SlurmError::Refused {
            script: script.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    job_id(&stdout)
        .ok_or_else(|| SlurmError::NoJobId { script: script.to_path_buf(), stdout: stdout.trim().to_owned() })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(path).map_err(|e| crate::HostError::io(path, e))?)
}

/// The global options of this command line that the jobs' `commute` needs, after the executable.
fn commute_words(cli: &Cli) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().map_err(|e| crate::HostError::io("the commute executable", e))?;
    let mut words = vec![path_text(&exe)];
    if cli.quiet {
        words.push("-q".to_owned());
    }
    if cli.verbose > 0 {
        words.push(format!("-{}", "v".repeat(usize::from(cli.verbose.min(3)))));
    }
    if cli.no_default_plugins {
        words.push("--no-default-plugins".to_owned());
    }
    if cli.allow_insecure_plugin_dirs {
        words.push("--allow-insecure-plugin-dirs".to_owned());
    }
    if let Some(threads) = cli.threads {
        words.extend(["--threads".to_owned(), threads.to_string()]);
    }
    for dir in &cli.plugin_dirs {
        words.extend(["--plugin-dir".to_owned(), path_text(&absolute(dir)?)]);
    }
    for file in &cli.plugin_files {
        words.extend(["--plugin".to_owned(), path_text(&absolute(file)?)]);
    }
    Ok(words)
}

/// Checks the further `commute run` options: they must parse, and leave the shard, cache and
/// runs folder to `commute slurm`.
fn check_run_options(options: &[String]) -> anyhow::Result<()> {
    for option in options {
        let name = option.split('=').next().unwrap_or(option);
        if ["--shard", "--cache", "--runs"].contains(&name) {
            return Err(crate::HostError::Usage(format!(
                "`{option}` after `--`: commute slurm sets {name} itself (use its own --cache and --runs)"
            ))
            .into());
        }
    }
    let words =
        ["commute", "run", "experiment.toml"].into_iter().map(str::to_owned).chain(options.iter().cloned());
    <Cli as clap::Parser>::try_parse_from(words).map_err(|e| {
        crate::HostError::Usage(format!("the `commute run` options after `--` do not parse: {e}"))
    })?;
    Ok(())
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let registry = cli.registry();
    let exp = super::check::checked(&registry, &args.file)?;
    check_run_options(&args.run_options)?;
    if let Some(p) = &args.partition {
        sbatch_value(
            "partition",
            p,
            |c| c.is_ascii_alphanumeric() || "_-.,".contains(c),
            "a partition name is letters, digits and `_-.,`",
        )?;
    }
    if let Some(t) = &args.time {
        sbatch_value(
            "time",
            t,
            |c| c.is_ascii_alphanumeric() || ":-".contains(c),
            "a Slurm time is like `30`, `2:00:00` or `1-00:00:00`",
        )?;
    }
    let safe_name: String = exp
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '_' })
        .collect();
    let out = absolute(&args.out.clone().unwrap_or_else(|| PathBuf::from("slurm").join(&safe_name)))?;
    let workdir = absolute(Path::new("."))?;
    let workdir = workdir.canonicalize().unwrap_or(workdir);
    sbatch_path("--out folder", &out)?;
    sbatch_path("working folder", &workdir)?;
    let jobs = Jobs {
        name: safe_name,
        shards: args.shards,
        partition: args.partition.clone(),
        gpus_per_task: args.gpus_per_task,
        time: args.time.clone(),
        cpus_per_task: cli.threads,
        workdir,
        out: out.clone(),
        commute: commute_words(cli)?,
        file: absolute(&args.file)?,
        cache: absolute(&args.cache.root())?,
        runs: absolute(&args.runs)?,
        run_options: args.run_options.clone(),
    };
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| crate::HostError::write("create the folder", &logs, e))?;
    let scripts = [
        ("shards.sbatch", jobs.shards_script()),
        ("fit.sbatch", jobs.fit_script()),
        ("submit.sh", jobs.submit_script()),
    ];
    for (name, text) in &scripts {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| crate::HostError::write("make executable", &path, e))?;
        }
    }
    println!(
        "wrote {0}/shards.sbatch (array 1-{1}), {0}/fit.sbatch, {0}/submit.sh",
        out.display(),
        args.shards
    );
    if !args.submit {
        println!("submit with: {}", quote(&path_text(&out.join("submit.sh"))));
        return Ok(Outcome::Ok);
    }
    let shards = sbatch(&[], &out.join("shards.sbatch"))?;
    println!("shards job {shards} (array 1-{})", args.shards);
    let fit = sbatch(&[format!("--dependency=afterok:{shards}")], &out.join("fit.sbatch"))?;
    println!("fit job {fit} (afterok:{shards})");
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs() -> Jobs {
        Jobs {
            name: "tiny".to_owned(),
            shards: 4,
            partition: Some("gpu".to_owned()),
            gpus_per_task: Some(1),
            time: Some("2:00:00".to_owned()),
            cpus_per_task: Some(8),
            workdir: PathBuf::from("/home/me/project"),
            out: PathBuf::from("/home/me/project/slurm/tiny"),
            commute: [
                "/opt/commute/bin/commute",
                "--no-default-plugins",
                "--plugin",
                "/opt/my plugins/libx.so",
            ]
            .map(str::to_owned)
            .to_vec(),
            file: PathBuf::from("/home/me/project/tiny.toml"),
            cache: PathBuf::from("/shared/cache"),
            runs: PathBuf::from("/home/me/project/runs"),
            run_options: vec!["--isolate-all".to_owned()],
        }
    }

    #[test]
    fn the_shard_script_is_an_array_of_shard_runs() {
        assert_eq!(
            jobs().shards_script(),
            "#!/bin/bash\n\
             # Shards of experiment `tiny` (written by `commute slurm`): array task I computes shard I/4 of the\n\
             # embeddings into the shared cache; fit.sbatch runs after every task succeeded.\n\
             #SBATCH --job-name=commute-tiny-shards\n\
             #SBATCH --array=1-4\n\
             #SBATCH --ntasks=1\n\
             #SBATCH --chdir=/home/me/project\n\
             #SBATCH --output=/home/me/project/slurm/tiny/logs/shards-%A_%a.out\n\
             #SBATCH --partition=gpu\n\
             #SBATCH --gpus-per-task=1\n\
             #SBATCH --cpus-per-task=8\n\
             #SBATCH --time=2:00:00\n\
             set -euo pipefail\n\
             exec /opt/commute/bin/commute --no-default-plugins --plugin '/opt/my plugins/libx.so' run \
             /home/me/project/tiny.toml --cache /shared/cache --isolate-all --shard \"${SLURM_ARRAY_TASK_ID}/4\"\n"
        );
    }

    #[test]
    fn the_fit_script_runs_the_experiment_without_gpus_or_an_array() {
        let fit = jobs().fit_script();
        assert!(fit.contains("#SBATCH --job-name=commute-tiny-fit\n"), "{fit}");
        assert!(fit.contains("#SBATCH --output=/home/me/project/slurm/tiny/logs/fit-%j.out\n"), "{fit}");
        assert!(!fit.contains("--array") && !fit.contains("--gpus") && !fit.contains("--shard"), "{fit}");
        assert!(
            fit.contains("#SBATCH --partition=gpu\n#SBATCH --cpus-per-task=8\n#SBATCH --time=2:00:00\n"),
            "{fit}"
        );
        assert!(
            fit.ends_with(
                "exec /opt/commute/bin/commute --no-default-plugins --plugin '/opt/my plugins/libx.so' run \
                 /home/me/project/tiny.toml --cache /shared/cache --isolate-all --runs /home/me/project/runs\n"
            ),
            "{fit}"
        );
        let plain = Jobs { partition: None, gpus_per_task: None, time: None, cpus_per_task: None, ..jobs() };
        let script = plain.shards_script();
        let header: Vec<&str> = script.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        assert_eq!(header.len(), 5, "name, array, ntasks, chdir, output: {header:?}");
    }

    #[test]
    fn the_submit_script_chains_the_fit_job_after_the_array() {
        let submit = jobs().submit_script();
        assert!(
            submit.contains("shards=$(sbatch --parsable /home/me/project/slurm/tiny/shards.sbatch)\n"),
            "{submit}"
        );
        assert!(
            submit.contains(
                "fit=$(sbatch --parsable --dependency=afterok:\"$shards\" /home/me/project/slurm/tiny/fit.sbatch)\n"
            ),
            "{submit}"
        );
    }

    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(quote("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn job_ids_come_from_parsable_output_and_bad_values_are_refused() {
        assert_eq!(job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(job_id("77;cluster\n").as_deref(), Some("77"));
        assert_eq!(job_id("Submitted batch job 5"), None);
        assert_eq!(job_id(""), None);
        assert!(sbatch_path("--out folder", Path::new("/a/b c")).is_err());
        assert!(sbatch_path("--out folder", Path::new("/a/50%")).is_err());
        assert!(sbatch_path("--out folder", Path::new("/a/b")).is_ok());
        assert!(check_run_options(&[
            "--isolate-all".to_owned(),
            "--call-timeout".to_owned(),
            "30s".to_owned()
        ])
        .is_ok());
        let err = check_run_options(&["--cache=/x".to_owned()]).unwrap_err().to_string();
        assert!(err.contains("commute slurm sets --cache itself"), "{err}");
        let err = check_run_options(&["--no-such-option".to_owned()]).unwrap_err().to_string();
        assert!(err.contains("do not parse"), "{err}");
    }
}
