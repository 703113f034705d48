//! State files: each shard's pass results on disk (header, then floats), written atomically, and
//! their exact merges, refusing files of another job, a missing shard or an overlap.

use super::*;

/// What a state file belongs to: shards of different jobs never merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The rows, in words ([`CslsInput::describe`]).
    pub input: String,
    /// Number of queries.
    pub queries: usize,
    /// Number of gallery rows.
    pub gallery: usize,
    /// Width of the rows.
    pub dim: usize,
    /// Neighbourhood size.
    pub k: usize,
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} queries × {} gallery, d = {}, k = {}, {}",
            self.queries, self.gallery, self.dim, self.k, self.input
        )
    }
}

pub(super) const FORMAT: &str = "commute-csls-state";
pub(super) const VERSION: u32 = 1;
/// Floats read at a time from a state file.
pub(super) const READ_FLOATS: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Kind {
    Pass1,
    Radii,
    Pass2,
}

/// The first line of every state file (JSON); a body of little-endian f32 may follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) kind: Kind,
    pub(super) job: Job,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) shard: Option<Shard>,
    /// The query range (pass 1, pass 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) queries: Option<Range<usize>>,
    /// Whether the radii used (or made) came from every query.
    pub(super) complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) hits: Option<Hits>,
}

impl Header {
    pub(super) fn new(kind: Kind, job: &Job) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            kind,
            job: job.clone(),
            shard: None,
            queries: None,
            complete: true,
            hits: None,
        }
    }

    /// Floats in the body.
    pub(super) fn body_len(&self) -> usize {
        let range = self.queries.as_ref().map_or(0, |r| r.len());
        match self.kind {
            Kind::Pass1 => range + self.job.gallery * self.job.k,
            Kind::Radii => self.job.queries + self.job.gallery,
            Kind::Pass2 => 0,
        }
    }
}

/// The file of shard `shard`'s pass-1 state in `dir`.
pub fn pass1_path(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(format!("csls-pass1-{}-of-{}.bin", shard.index(), shard.count()))
}

/// The file of the merged radii in `dir`.
pub fn radii_path(dir: &Path) -> PathBuf {
    dir.join("csls-radii.bin")
}

/// The file of shard `shard`'s pass-2 hit counts in `dir`.
pub fn pass2_path(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(format!("csls-pass2-{}-of-{}.json", shard.index(), shard.count()))
}

/// Writes a state file atomically, so that a reader (a merge) never sees a partial one.
pub(super) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), HostError> {
    commute_sdk::atomic::write_with(path, write).map_err(|e| HostError::write("write CSLS state", path, e))
}

pub(super) fn write_header(out: &mut impl std::io::Write, header: &Header) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")
}

pub(super) fn write_floats(out: &mut impl std::io::Write, values: &[f32]) -> std::io::Result<()> {
    for chunk in values.chunks(READ_FLOATS) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// Writes shard `shard`'s pass-1 state for `job` into `dir`: its queries' `r_q`, then each gallery
/// row's k best scores (descending, padded with −∞). Returns the file written.
pub fn write_pass1(dir: &Path, job: &Job, shard: Shard, part: &Pass1) -> Result<PathBuf, HostError> {
    if part.queries != shard.range(job.queries) || part.near_queries.list_count() != job.gallery {
        return Err(HostError::Usage(format!("pass-1 state does not match shard {shard} of the job")));
    }
    let mut header = Header::new(Kind::Pass1, job);
    header.shard = Some(shard);
    header.queries = Some(part.queries.clone());
    let path = pass1_path(dir, shard);
    let k = job.k;
    write_atomically(&path, |out| {
        write_header(out, &header)?;
        write_floats(out, &part.r_query)?;
        let mut list = vec![f32::NEG_INFINITY; k];
        let mut buf = Vec::with_capacity(READ_FLOATS * 4);
        for j in 0..job.gallery {
            let (vals, _) = part.near_queries.entries(j);
            list.fill(f32::NEG_INFINITY);
            list[..vals.len()].copy_from_slice(vals);
            list.sort_by(|a, b| b.total_cmp(a));
            buf.extend(list.iter().flat_map(|v| v.to_le_bytes()));
            if buf.len() >= READ_FLOATS * 4 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    })?;
    Ok(path)
}

/// An open state file: its header, and a reader positioned at its body (whose size is checked).
pub(super) struct StateFile {
    pub(super) path: PathBuf,
    pub(super) header: Header,
    pub(super) body: BufReader<File>,
}

pub(super) fn open_state(path: &Path, kind: Kind, job: &Job) -> Result<StateFile, HostError> {
    let file = File::open(path).map_err(|e| HostError::io(path, e))?;
    let size = file.metadata().map_err(|e| HostError::io(path, e))?.len();
    let mut body = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    (&mut body).take(1 << 20).read_until(b'\n', &mut line).map_err(|e| HostError::io(path, e))?;
    if line.last() != Some(&b'\n') {
        return Err(HostError::format(path, "not a CSLS state file (no header line)"));
    }
    let header: Header = serde_json::from_slice(&line)
        .map_err(|e| HostError::format(path, format!("not a CSLS state file: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(HostError::format(
            path,
            format!(
                "state format {} version {}, expected {FORMAT} version {VERSION}",
                header.format, header.version
            ),
        ));
    }
    if header.kind != kind {
        return Err(HostError::format(
            path,
            format!("a {:?} state file where {kind:?} was expected", header.kind),
        ));
    }
    if &header.job != job {
        return Err(HostError::format(
            path,
            format!("belongs to another job ({}), not this one ({job})", header.job),
        ));
    }
    let expected = line.len() as u64 + 4 * header.body_len() as u64;
    if size != expected {
        return Err(HostError::format(
            path,
            format!("{size} bytes where its header promises {expected}: truncated or damaged"),
        ));
    }
    Ok(StateFile { path: path.to_owned(), header, body })
}

impl StateFile {
    /// Reads `n` floats of the body, `READ_FLOATS` at a time, handing each piece to `f`.
    pub(super) fn floats(&mut self, n: usize, mut f: impl FnMut(&[f32])) -> Result<(), HostError> {
        let mut bytes = vec![0u8; 4 * READ_FLOATS.min(n)];
        let mut vals = Vec::with_capacity(READ_FLOATS.min(n));
        let mut left = n;
        while left > 0 {
            let m = left.min(READ_FLOATS);
            self.body.read_exact(&mut bytes[..4 * m]).map_err(|e| HostError::io(&self.path, e))?;
            vals.clear();
            vals.extend(bytes[..4 * m].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            f(&vals);
            left -= m;
        }
        Ok(())
    }
}

/// The state files of `kind` in `dir` (by name), sorted.
pub(super) fn state_files(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>, HostError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| HostError::io(dir, e))? {
        let entry = entry.map_err(|e| HostError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str() {
            if name.starts_with(prefix) && name.ends_with(suffix) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What a merge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// Shard files merged.
    pub files: usize,
    /// Shards in the job (N of `I/N`).
    pub shards: usize,
    /// Whether every shard was there (and, for merge 2, whether the radii were complete).
    pub complete: bool,
}

/// Checks one shard file's header against the others and returns its shard.
pub(super) fn check_shard(
    file: &StateFile,
    job: &Job,
    shards: &mut Option<usize>,
    seen: &mut Vec<bool>,
) -> Result<Shard, HostError> {
    let bad = |m: String| Err(HostError::format(&file.path, m));
    let Some(shard) = file.header.shard else { return bad("no shard in the header".into()) };
    // A header's shard was checked as it was read (1 ≤ I ≤ N), like one from the command line.
    let (index, count) = (shard.index() as usize, shard.count() as usize);
    match *shards {
        None => {
            *shards = Some(count);
            *seen = vec![false; count];
        }
        Some(n) if n != count => {
            return bad(format!(
                "shard {shard} of a {count}-shard split, but other files are of a {n}-shard split"
            ))
        }
        Some(_) => {}
    }
    if file.header.queries.as_ref() != Some(&shard.range(job.queries)) {
        return bad(format!("its query range is not shard {shard}'s"));
    }
    if std::mem::replace(&mut seen[index - 1], true) {
        return bad(format!("shard {shard} appears twice"));
    }
    Ok(shard)
}

pub(super) fn missing_shards(seen: &[bool]) -> String {
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, &s)| !s).map(|(i, _)| (i + 1).to_string()).collect();
    let shown = missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    if missing.len() > 10 {
        format!("{shown}, … ({} in all)", missing.len())
    } else {
        shown
    }
}

/// Merge 1: reads every pass-1 state file of `job` in `dir`, merges them into the radii and writes
/// them to [`radii_path`]. An error when a shard is missing, unless `allow_incomplete` (the radii are
/// then marked incomplete, and so is every result computed from them).
pub fn merge_pass1_files(
    dir: &Path,
    job: &Job,
    allow_incomplete: bool,
) -> Result<(Radii, MergeReport), HostError> {
    let files = state_files(dir, "csls-pass1-", ".bin")?;
    if files.is_empty() {
        return Err(HostError::Usage(format!(
            "no pass-1 state files (csls-pass1-*.bin) in {}",
            dir.display()
        )));
    }
    let mut merger = RadiiMerger::new(job.queries, job.gallery, job.k);
    let (mut shards, mut seen) = (None, Vec::new());
    let k = job.k;
    for path in &files {
        let mut file = open_state(path, Kind::Pass1, job)?;
        let shard = check_shard(&file, job, &mut shards, &mut seen)?;
        let range = shard.range(job.queries);
        merger.claim(range.clone())?;
        let mut at = range.start;
        file.floats(range.len(), |v| {
            merger.r_query[at..at + v.len()].copy_from_slice(v);
            at += v.len();
        })?;
        let mut next = 0usize;
        let lists = &mut merger.near_queries;
        file.floats(job.gallery * k, |v| {
            for &x in v {
                lists.push(next / k, x, range.start);
                next += 1;
            }
        })?;
    }
    let count = shards.unwrap_or(0);
    let complete_shards = seen.iter().all(|&s| s);
    if !complete_shards && !allow_incomplete {
        return Err(HostError::Usage(format!(
            "pass-1 shards missing in {}: {} of {count}",
            dir.display(),
            missing_shards(&seen)
        )));
    }
    let radii = merger.finish(allow_incomplete)?;
    let mut header = Header::new(Kind::Radii, job);
    header.complete = radii.complete;
    write_atomically(&radii_path(dir), |out| {
        write_header(out, &header)?;
        write_floats(out, &radii.r_query)?;
        write_floats(out, &radii.r_gallery)
    })?;
    let report = MergeReport { files: files.len(), shards: count, complete: radii.complete };
    Ok((radii, report))
}

/// Reads the radii that merge 1 wrote into `dir` for `job`.
pub fn read_radii(dir: &Path, job: &Job) -> Result<Radii, HostError> {
    let mut file = open_state(&radii_path(dir), Kind::Radii, job)?;
    let mut r_query = Vec::with_capacity(job.queries);
    file.floats(job.queries, |v| r_query.extend_from_slice(v))?;
    let mut r_gallery = Vec::with_capacity(job.gallery);
    file.floats(job.gallery, |v| r_gallery.extend_from_slice(v))?;
    Ok(Radii { r_query, r_gallery, complete: file.header.complete })
}

/// Writes shard `shard`'s pass-2 hit counts for `job` into `dir`; `complete` says whether the
/// radii they used were. Returns the file written.
pub fn write_pass2(
    dir: &Path,
    job: &Job,
    shard: Shard,
    hits: &Hits,
    complete: bool,
) -> Result<PathBuf, HostError> {
    let mut header = Header::new(Kind::Pass2, job);
    header.shard = Some(shard);
    header.queries = Some(shard.range(job.queries));
    header.complete = complete;
    header.hits = Some(*hits);
    let path = pass2_path(dir, shard);
    write_atomically(&path, |out| write_header(out, &header))?;
    Ok(path)
}

/// Merge 2: sums the hit counts of every pass-2 state file of `job` in `dir` (summed in shard
/// order). An error when a shard is missing.
pub fn merge_pass2_files(dir: &Path, job: &Job) -> Result<(Hits, MergeReport), HostError> {
    let files = state_files(dir, "csls-pass2-", ".json")?;
    if files.is_empty() {
        return Err(HostError::Usage(format!(
            "no pass-2 state files (csls-pass2-*.json) in {}",
            dir.display()
        )));
    }
    let (mut shards, mut seen) = (None, Vec::new());
    let mut parts: Vec<(usize, Hits)> = Vec::new();
    let mut complete = true;
    for path in &files {
        let file = open_state(path, Kind::Pass2, job)?;
        let shard = check_shard(&file, job, &mut shards, &mut seen)?;
        let Some(hits) = file.header.hits else {
            return Err(HostError::format(path, "no hit counts in the header"));
        };
        if hits.queries != shard.range(job.queries).len() as u64 {
            return Err(HostError::format(
                path,
                "hit counts over another number of queries than the shard has",
            ));
        }
        complete &= file.header.complete;
        parts.push((shard.index() as usize, hits));
    }
    let count = shards.unwrap_or(0);
    if !seen.iter().all(|&s| s) {
        return Err(HostError::Usage(format!(
            "pass-2 shards missing in {}: {} of {count}",
            dir.display(),
            missing_shards(&seen)
        )));
    }
    parts.sort_by_key(|p| p.0);
    let mut total = Hits::default();
    parts.iter().for_each(|(_, h)| total.add(h));
    Ok((total, MergeReport { files: files.len(), shards: count, complete }))
}
