//! Why an item of a node was skipped (`on-item-error = "skip"`), and the one warning per node that
//! counts the skips by reason and names the first items of each.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What went wrong with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// A render or the encoder returned an error for it.
    Error,
    /// A render or the encoder panicked on it (in process).
    Panic,
    /// A render or the encoder took its isolated worker down (a crash or a hang) on it.
    Crash,
    /// Its embedding has a NaN.
    Nan,
    /// Its embedding has an infinite value.
    Infinite,
    /// Its embedding does not have the encoder's dimension (or is not a tensor).
    WrongDimension,
    /// The node's vectors file has no row for it.
    NoRow,
    /// Its token pairs fitted the node's stitched map (an anchor, kept out of every edge).
    Anchor,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Error => "error",
            SkipReason::Panic => "panic",
            SkipReason::Crash => "crash",
            SkipReason::Nan => "NaN",
            SkipReason::Infinite => "infinite",
            SkipReason::WrongDimension => "wrong dimension",
            SkipReason::NoRow => "no row",
            SkipReason::Anchor => "anchor of the stitched map",
        })
    }
}

/// One skipped item: its index in the data set, the reason and what the plugin said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// The item's index in its data set.
    pub item: usize,
    /// The kind of failure.
    pub reason: SkipReason,
    /// The message (the plugin's error, the panic message, how the worker ended).
    pub detail: String,
}

/// Items listed per reason in the warning; the rest are counted.
const LISTED: usize = 5;

/// The warning for a node's skips: `17 of 120 items skipped: 12 NaN (items 6, 13, …), 5 panic
/// (items 3, …; first: item 3 is cursed)`. `unknown` counts skipped items whose reason was not
/// recorded (chunks cached by an older host).
pub fn summary(node: &str, items: usize, skips: &[Skip], unknown: usize) -> String {
    let mut by_reason: BTreeMap<SkipReason, Vec<&Skip>> = BTreeMap::new();
    for s in skips {
        by_reason.entry(s.reason).or_default().push(s);
    }
    let mut parts: Vec<String> = by_reason
        .iter()
        .map(|(reason, list)| {
            let mut shown: Vec<String> = list.iter().take(LISTED).map(|s| s.item.to_string()).collect();
            if list.len() > LISTED {
                shown.push("…".to_owned());
            }
            let noun = if list.len() == 1 { "item" } else { "items" };
            let first = match reason {
                SkipReason::Error | SkipReason::Panic | SkipReason::Crash => {
                    format!("; first: {}", list[0].detail)
                }
                _ => String::new(),
            };
            format!("{} {reason} ({noun} {}{first})", list.len(), shown.join(", "))
        })
        .collect();
    if unknown > 0 {
        parts.push(format!("{unknown} for a reason not recorded (cached by an older commute)"));
    }
    let total = skips.len() + unknown;
    format!("node `{node}`: {total} of {items} items skipped: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(item: usize, reason: SkipReason) -> Skip {
        Skip { item, reason, detail: format!("item {item} failed") }
    }

    #[test]
    fn the_summary_counts_by_reason_and_lists_the_first_items() {
        let mut skips: Vec<Skip> = (0..7).map(|i| skip(i * 7 + 6, SkipReason::Nan)).collect();
        skips.push(skip(3, SkipReason::Panic));
        let text = summary("broken", 120, &skips, 0);
        assert_eq!(
            text,
            "node `broken`: 8 of 120 items skipped: 1 panic (item 3; first: item 3 failed), \
             7 NaN (items 6, 13, 20, 27, 34, …)"
        );
    }

    #[test]
    fn skips_without_a_recorded_reason_are_counted_apart() {
        let text = summary("n", 10, &[skip(1, SkipReason::Infinite)], 2);
        assert!(
            text.contains("3 of 10 items skipped: 1 infinite (item 1), 2 for a reason not recorded"),
            "{text}"
        );
    }
}
