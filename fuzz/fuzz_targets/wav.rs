//! Fuzz target `wav`: the host's WAV reader (`value_io::read_wav`) on arbitrary bytes.

#![no_main]

use commute_host::value_io::read_wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = read_wav(data) {
        assert!(audio.sample_rate > 0);
    }
});
