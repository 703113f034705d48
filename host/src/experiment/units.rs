//! Units in experiment files and on the command line: time limits (`30`, `500ms`, `2m`) and memory
//! sizes (`2048`, `512MiB`, `4GiB`).

use std::time::Duration;

/// Reads a duration: seconds as a number (`30`, `2.5`) or with a unit (`500ms`, `30s`, `2m`, `1h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration; write seconds (`30`) or `500ms`, `30s`, `2m`, `1h`")
    })?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s, m or h")),
    };
    seconds_to_duration(seconds).ok_or_else(|| format!("`{text}`: a time limit must be more than 0"))
}

/// A positive, finite number of seconds as a duration.
pub fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds > 0.0 && seconds < 1e9).then(|| Duration::from_secs_f64(seconds))
}

/// Reads a memory size in MiB: a number of MiB (`2048`) or with a unit (`512MiB`, `4GiB`).
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a memory size; write MiB (`2048`) or `512MiB`, `4GiB`"))?;
    let mib = match unit {
        "" | "M" | "MB" | "MiB" => Some(value),
        "G" | "GB" | "GiB" => value.checked_mul(1024),
        other => return Err(format!("unknown unit `{other}` in `{text}`; use MiB or GiB")),
    };
    match mib {
        Some(m) if m > 0 => Ok(m),
        _ => Err(format!("`{text}`: a memory limit must be more than 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1 h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0").unwrap_err().contains("more than 0"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 days").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn memory_sizes_parse_in_mib() {
        assert_eq!(parse_memory_mib("2048").unwrap(), 2048);
        assert_eq!(parse_memory_mib("512MiB").unwrap(), 512);
        assert_eq!(parse_memory_mib("4 GiB").unwrap(), 4096);
        assert!(parse_memory_mib("0").is_err());
        assert!(parse_memory_mib("1.5GiB").is_err());
        assert!(parse_memory_mib("4TiB").is_err());
    }
}
