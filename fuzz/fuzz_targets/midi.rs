//! Fuzz target `midi`: `read_smf` on arbitrary bytes; what it reads writes back and reads again.

#![no_main]

use commute_sdk::midi::{read_smf, write_smf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(score) = read_smf(data) {
        assert!(score.notes.iter().all(|n| n.pitch <= 127 && n.onset_s.is_finite() && n.duration_s >= 0.0));
        let again = read_smf(&write_smf(&score)).expect("a written score reads back");
        assert_eq!(again.notes.len(), score.notes.len());
    }
});
