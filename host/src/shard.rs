//! Shards: `I/N`, and sharded extraction — which embedding chunks shard I of N owns, the embedding
//! sets a run needs, and `commute run FILE --shard I/N`, which computes only its shard's missing
//! chunks. (`commute csls` splits its queries by the same [`Shard`], into contiguous ranges.)
//!
//! A chunk (one cache entry of [`crate::extract::CHUNK`] items) belongs to shard
//! `1 + k mod N`, where `k` is the first 8 bytes of its sha256 cache key read as a big-endian
//! integer. A chunk's key depends only on the encoder and the ids of its items, so every process
//! on every machine computes the same partition, and adding items to a data set leaves every
//! unchanged chunk in its shard (only the last, partial chunk and the new ones get new keys).
//!
//! Shards cover what a plain run extracts ([`plan`]): the parent and child node of every edge and,
//! for edges with operators, the operators' items and images in both spaces. Data sets are
//! generated in every shard (cheap, and items are known by their content); only encoding is split.
//! Shards write into one cache folder, which may be shared between machines: entries are written
//! under unique temporary names and renamed into place (see [`crate::cache`]).

use crate::cache::{Cache, Key};
use crate::experiment::Experiment;
use crate::extract::Extractor;
use crate::HostError;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count`, counted from 1 to `count` (as `SLURM_ARRAY_TASK_ID` in an array
/// `1-N`). Written `I/N`. Work splits by it in two ways: by hash ([`Shard::owns`], for cache
/// entries, stable when items are added) or into contiguous ranges ([`Shard::range`], for ordered
/// rows such as `commute csls`'s queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawShard")]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard as written in a file, checked by [`Shard::new`] when read.
#[derive(serde::Deserialize)]
struct RawShard {
    index: u32,
    count: u32,
}

impl TryFrom<RawShard> for Shard {
    type Error = ShardError;

    fn try_from(raw: RawShard) -> Result<Shard, ShardError> {
        Shard::new(raw.index, raw.count)
    }
}

/// A shard that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N` with two whole numbers.
    #[error("`{0}` is not a shard: write I/N, shard I of N counted from 1 (for example 2/8)")]
    Syntax(String),
    /// N is zero.
    #[error("shard `{0}`: the number of shards N must be at least 1")]
    NoShards(String),
    /// I is not in 1..=N.
    #[error("shard `{given}`: shards are counted from 1, so I must be between 1 and {count}")]
    OutOfRange {
        /// The shard as written.
        given: String,
        /// N.
        count: u32,
    },
}

impl Shard {
    /// Shard `index` of `count` (1 ≤ `index` ≤ `count`).
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        let given = format!("{index}/{count}");
        if count == 0 {
            return Err(ShardError::NoShards(given));
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange { given, count });
        }
        Ok(Shard { index, count })
    }

    /// I, from 1.
    pub fn index(self) -> u32 {
        self.index
    }

    /// N.
    pub fn count(self) -> u32 {
        self.count
    }

    /// The shard (1..=`count`) of the chunk with cache key `key`. Keys are sha256 hex; any
    /// other string is hashed first, so that it too has a fixed shard.
    pub fn of_key(key: &str, count: u32) -> u32 {
        let head = key.get(..16).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        let k = match head.and_then(|h| u64::from_str_radix(h, 16).ok()) {
            Some(k) => k,
            None => {
                let digest = Sha256::digest(key.as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                u64::from_be_bytes(first)
            }
        };
        (k % u64::from(count.max(1))) as u32 + 1
    }

    /// Whether the chunk with cache key `key` is this shard's.
    pub fn owns(self, key: &str) -> bool {
        Shard::of_key(key, self.count) == self.index
    }

    /// This shard's part of `n` ordered items, `[(I−1)·n/N, I·n/N)`: the N ranges are contiguous,
    /// cover `0..n` and differ in length by at most one.
    pub fn range(self, n: usize) -> std::ops::Range<usize> {
        let at = |i: u32| (u128::from(i) * n as u128 / u128::from(self.count.max(1))) as usize;
        at(self.index - 1)..at(self.index)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (i, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let number = |x: &str| {
            let x = x.trim();
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            x.parse::<u32>().map_err(|_| syntax())
        };
        let (index, count) = (number(i)?, number(n)?);
        Shard::new(index, count).map_err(|e| match e {
            ShardError::OutOfRange { count, .. } => ShardError::OutOfRange { given: s.to_owned(), count },
            ShardError::NoShards(_) => ShardError::NoShards(s.to_owned()),
            other => other,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard did with the chunks it met, each distinct chunk counted once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// This shard's chunks that were missing, computed and written.
    pub computed: usize,
    /// Items in the computed chunks.
    pub computed_items: usize,
    /// This shard's chunks found in the cache (intact).
    pub cached: usize,
    /// Chunks of other shards, left to them.
    pub elsewhere: usize,
}

/// An extractor's shard filter ([`Extractor::with_shard`]): picks, from each set of chunk keys,
/// the shard's chunks not met before and counts what becomes of them.
#[derive(Debug)]
pub struct ShardFilter {
    shard: Shard,
    seen: HashSet<Key>,
    tally: Tally,
}

impl ShardFilter {
    /// A filter for `shard` that has met no chunk yet.
    pub fn new(shard: Shard) -> ShardFilter {
        ShardFilter { shard, seen: HashSet::new(), tally: Tally::default() }
    }

    /// The shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// What was done so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The positions in `keys` of this shard's chunks not met before (a chunk two sets share,
    /// such as a node's and its operator's items, is handled once); counts the other shards'
    /// chunks not met before.
    pub fn select(&mut self, keys: &[Key]) -> Vec<usize> {
        let mut mine = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if !self.seen.insert(key.clone()) {
                continue;
            }
            if self.shard.owns(key) {
                mine.push(i);
            } else {
                self.tally.elsewhere += 1;
            }
        }
        mine
    }

    /// Records that of the chunks [`Self::select`] returned, `cached` were in the cache and
    /// `computed`, holding `items` items, were computed.
    pub fn record(&mut self, cached: usize, computed: usize, items: usize) {
        self.tally.cached += cached;
        self.tally.computed += computed;
        self.tally.computed_items += items;
    }
}

/// One thing a run embeds with a node's encoder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EmbeddingSet {
    /// The node's items.
    Node(String),
    /// An operator of the node's data set: its items and their images, in the node's space.
    Operator {
        /// The node.
        node: String,
        /// The operator's name in the node's data set.
        operator: String,
    },
    /// A controlled edit's truth in the node's space (`[tree] edits`): the node's items with
    /// operator `operator` of data set `at` applied and rendered again.
    Edited {
        /// The node.
        node: String,
        /// The data set the operator belongs to.
        at: String,
        /// The operator.
        operator: String,
    },
}

impl EmbeddingSet {
    /// The node whose encoder embeds the set.
    pub fn node(&self) -> &str {
        match self {
            EmbeddingSet::Node(node)
            | EmbeddingSet::Operator { node, .. }
            | EmbeddingSet::Edited { node, .. } => node,
        }
    }

    /// The operator, for an operator's set.
    pub fn operator(&self) -> Option<&str> {
        match self {
            EmbeddingSet::Node(_) => None,
            EmbeddingSet::Operator { operator, .. } | EmbeddingSet::Edited { operator, .. } => Some(operator),
        }
    }
}

impl fmt::Display for EmbeddingSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbeddingSet::Node(node) => write!(f, "{node}"),
            EmbeddingSet::Operator { node, operator } => write!(f, "{node} ∘ {operator}"),
            EmbeddingSet::Edited { node, at, operator } => write!(f, "{node} ∘ {at}.{operator}"),
        }
    }
}

/// The sets a plain `commute run` embeds, each once, in the order it embeds them: for each edge
/// its parent and child node, then for each operator pair the parent's operator in the parent's
/// space and the child's in the child's; then, for each `[tree]` edit, its truth in the parent,
/// the edited child and every sibling whose items are rendered from the edited data set.
pub fn plan(exp: &Experiment) -> Vec<EmbeddingSet> {
    let mut sets: Vec<EmbeddingSet> = Vec::new();
    let mut add = |set: EmbeddingSet| {
        if !sets.contains(&set) {
            sets.push(set);
        }
    };
    for edge in &exp.edges {
        add(EmbeddingSet::Node(edge.parent.clone()));
        add(EmbeddingSet::Node(edge.child.clone()));
        for pair in &edge.operators {
            add(EmbeddingSet::Operator { node: edge.parent.clone(), operator: pair.parent.clone() });
            add(EmbeddingSet::Operator { node: edge.child.clone(), operator: pair.child.clone() });
        }
    }
    for edit in &exp.tree.edits {
        let (Some(parent), Some(child)) = (exp.parent_of(&edit.child), exp.node(&edit.child)) else {
            continue;
        };
        let at = child.data.clone();
        let mut nodes = vec![parent.to_owned(), edit.child.clone()];
        nodes.extend(exp.children_of(parent).filter(|c| *c != edit.child).map(str::to_owned));
        for node in nodes {
            let rendered = exp.node(&node).is_some_and(|n| exp.render_chain(&n.data, &at).is_some());
            if rendered {
                add(EmbeddingSet::Edited { node, at: at.clone(), operator: edit.operator.clone() });
            }
        }
    }
    sets
}

/// What `commute run FILE --shard I/N` did.
#[derive(Debug)]
pub struct ShardRun {
    /// The shard.
    pub shard: Shard,
    /// Chunks computed, cached and left to other shards.
    pub tally: Tally,
    /// The embedding sets met.
    pub sets: usize,
    /// Sets whose plugin failed (with the error); the shard went on with the others.
    pub failed: Vec<(EmbeddingSet, String)>,
    /// The cache's counters: (hits, misses, corrupt, writes).
    pub cache: (usize, usize, usize, usize),
}

impl fmt::Display for ShardRun {
    /// One line, plus one per failed set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let (hits, misses, corrupt, writes) = self.cache;
        writeln!(
            f,
            "shard {}: {} chunks computed ({} items), {} cached, {} left to other shards, in {} embedding sets \
             (cache: {hits} hits, {misses} misses, {corrupt} corrupt, {writes} writes)",
            self.shard,
            t.computed,
            t.computed_items,
            t.cached,
            t.elsewhere,
            self.sets
        )?;
        for (set, error) in &self.failed {
            writeln!(f, "failed: {set}: {error}")?;
        }
        Ok(())
    }
}

/// Computes `shard`'s missing chunks of every set a run of `exp` embeds ([`plan`]) into `cache`
/// (the extractor's), fitting nothing. A set whose plugin fails (as
/// [`HostError::fails_only_its_node`] says) is recorded and the shard goes on with the others,
/// skipping the later sets of a node that failed; any other error (the cache) stops it.
pub fn run_shard(
    extractor: Extractor<'_>,
    exp: &Experiment,
    cache: &Cache,
    shard: Shard,
) -> Result<ShardRun, HostError> {
    let mut extractor = extractor.with_shard(shard);
    let sets = plan(exp);
    let mut failed = Vec::new();
    let mut failed_nodes: HashMap<String, String> = HashMap::new();
    for set in &sets {
        if let Some(error) = failed_nodes.get(set.node()) {
            tracing::debug!(set = %set, "skipped: node failed earlier in this shard ({error})");
            continue;
        }
        let result = match set {
            EmbeddingSet::Node(node) => extractor.node(node).map(drop),
            EmbeddingSet::Operator { node, operator } => extractor.operator(node, operator).map(drop),
            EmbeddingSet::Edited { node, at, operator } => extractor.edited(node, at, operator).map(drop),
        };
        match result {
            Ok(()) => {}
            Err(e) if e.fails_only_its_node() => {
                tracing::error!(set = %set, shard = %shard, "failed: {e}");
                if let EmbeddingSet::Node(node) = set {
                    failed_nodes.insert(node.clone(), e.to_string());
                }
                failed.push((set.clone(), e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(ShardRun {
        shard,
        tally: extractor.shard_tally().unwrap_or_default(),
        sets: sets.len(),
        failed,
        cache: cache.stats.snapshot(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyBuilder;
    use crate::extract::chunk_keys;

    #[test]
    fn ranges_are_contiguous_cover_everything_and_differ_by_at_most_one() {
        for (count, n) in [(7u32, 2_500_000usize), (7, 40), (3, 2), (1, 9), (5, 0)] {
            let ranges: Vec<_> = (1..=count).map(|i| Shard::new(i, count).unwrap().range(n)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[ranges.len() - 1].end, n);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start), "{ranges:?}");
            let (lo, hi) = (ranges.iter().map(|r| r.len()).min(), ranges.iter().map(|r| r.len()).max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{count} shards of {n}: {ranges:?}");
        }
        // Large n: the product I·n is taken in 128 bits.
        assert_eq!(Shard::new(3, 3).unwrap().range(usize::MAX).end, usize::MAX);
    }

    #[test]
    fn a_shard_read_from_a_file_is_checked_like_one_written_on_the_command_line() {
        let shard: Shard = serde_json::from_str(r#"{"index": 2, "count": 5}"#).unwrap();
        assert_eq!(shard, Shard::new(2, 5).unwrap());
        assert_eq!(serde_json::to_string(&shard).unwrap(), r#"{"index":2,"count":5}"#);
        for bad in
            [r#"{"index": 0, "count": 5}"#, r#"{"index": 6, "count": 5}"#, r#"{"index": 1, "count": 0}"#]
        {
            let err = serde_json::from_str::<Shard>(bad).unwrap_err().to_string();
            assert!(err.contains("shard"), "{bad}: {err}");
        }
    }

    #[test]
    fn shards_parse_from_one_and_reject_what_cannot_be() {
        let s: Shard = "2/8".parse().unwrap();
        assert_eq!((s.index(), s.count(), s.to_string()), (2, 8, "2/8".to_owned()));
        assert_eq!(" 1 / 1 ".parse::<Shard>().unwrap(), Shard::new(1, 1).unwrap());
        for bad in ["", "3", "1/", "/4", "a/4", "1/b", "-1/4", "+1/4", "1.5/4", "1/2/3", "99999999999/4"] {
            assert_eq!(bad.parse::<Shard>(), Err(ShardError::Syntax(bad.to_owned())), "{bad}");
        }
        assert_eq!("0/4".parse::<Shard>(), Err(ShardError::OutOfRange { given: "0/4".to_owned(), count: 4 }));
        assert_eq!("5/4".parse::<Shard>(), Err(ShardError::OutOfRange { given: "5/4".to_owned(), count: 4 }));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::NoShards("0/0".to_owned())));
        let message = "5/4".parse::<Shard>().unwrap_err().to_string();
        assert_eq!(message, "shard `5/4`: shards are counted from 1, so I must be between 1 and 4");
    }

    fn keys(n: usize) -> Vec<Key> {
        (0..n).map(|i| KeyBuilder::new("chunk").text(&i.to_string()).finish()).collect()
    }

    #[test]
    fn every_key_has_exactly_one_shard_and_the_shards_are_balanced() {
        let keys = keys(4000);
        for count in [1u32, 2, 3, 7] {
            let shards: Vec<Shard> = (1..=count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut sizes = vec![0usize; count as usize];
            for key in &keys {
                let owners: Vec<u32> = shards.iter().filter(|s| s.owns(key)).map(|s| s.index()).collect();
                assert_eq!(owners.len(), 1, "{key} has owners {owners:?} of {count}");
                assert_eq!(owners[0], Shard::of_key(key, count));
                sizes[owners[0] as usize - 1] += 1;
            }
            let expected = keys.len() / count as usize;
            for size in sizes {
                assert!(size.abs_diff(expected) < expected / 5 + 5, "unbalanced: {size} vs {expected}");
            }
        }
    }

    #[test]
    fn the_shard_is_the_first_eight_bytes_of_the_key_and_any_string_has_one() {
        let key = format!("{:016x}{}", 1_000_003u64, "f".repeat(48));
        assert_eq!(Shard::of_key(&key, 10), 4);
        assert_eq!(Shard::of_key(&key, 1), 1);
        // Not hex (never a cache key, but still a fixed answer in range).
        let odd = Shard::of_key("not a key", 5);
        assert!((1..=5).contains(&odd));
        assert_eq!(odd, Shard::of_key("not a key", 5));
    }

    #[test]
    fn adding_items_changes_only_the_last_chunk_and_adds_new_ones() {
        // A chunk's key (and so its shard) depends on the encoder and its own items only.
        let ids = keys(300);
        let (before, after) = (chunk_keys("encoder", &ids[..200]), chunk_keys("encoder", &ids));
        assert_eq!((before.len(), after.len()), (4, 5));
        assert_eq!(before[..3], after[..3], "the three whole chunks keep their keys, so their shards");
        assert_ne!(before[3], after[3], "the partial chunk grew");
        assert_ne!(chunk_keys("other encoder", &ids[..64])[0], before[0]);
    }

    #[test]
    fn a_filter_picks_its_chunks_once_and_counts_the_others_once() {
        let keys = keys(50);
        let shard = Shard::new(2, 3).unwrap();
        let mut filter = ShardFilter::new(shard);
        let mine = filter.select(&keys);
        assert!(!mine.is_empty() && mine.len() < keys.len());
        assert!(mine.iter().all(|&i| shard.owns(&keys[i])));
        assert_eq!(filter.tally().elsewhere, keys.len() - mine.len());
        // The same keys again (an operator's items equal to its node's): nothing new.
        assert!(filter.select(&keys).is_empty());
        assert_eq!(filter.tally().elsewhere, keys.len() - mine.len());
        filter.record(1, mine.len() - 1, 100);
        assert_eq!(
            filter.tally(),
            Tally {
                computed: mine.len() - 1,
                computed_items: 100,
                cached: 1,
                elsewhere: keys.len() - mine.len()
            }
        );
        // All shards together pick every key exactly once.
        let mut picked: Vec<usize> =
            (1..=3).flat_map(|i| ShardFilter::new(Shard::new(i, 3).unwrap()).select(&keys)).collect();
        picked.sort_unstable();
        assert_eq!(picked, (0..keys.len()).collect::<Vec<_>>());
    }

    #[test]
    fn the_summary_is_one_line_per_shard_and_one_per_failure() {
        let run = ShardRun {
            shard: Shard::new(1, 4).unwrap(),
            tally: Tally { computed: 3, computed_items: 150, cached: 1, elsewhere: 12 },
            sets: 5,
            failed: vec![(EmbeddingSet::Operator { node: "a".into(), operator: "up".into() }, "boom".into())],
            cache: (1, 3, 0, 3),
        };
        assert_eq!(
            run.to_string(),
            "shard 1/4: 3 chunks computed (150 items), 1 cached, 12 left to other shards, in 5 embedding sets \
             (cache: 1 hits, 3 misses, 0 corrupt, 3 writes)\nfailed: a ∘ up: boom\n"
        );
    }
}
