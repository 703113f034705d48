//! Fuzz target `wav`: the workspace's WAV reader (`commute_sdk::wav::read`) on arbitrary bytes.

#![no_main]

use commute_sdk::wav::read as read_wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = read_wav(data) {
        assert!(audio.sample_rate > 0);
    }
});
