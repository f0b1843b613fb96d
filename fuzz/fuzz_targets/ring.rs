//! The ring decoder (`ring::peek`/`ring::release`) over a channel data
//! region filled with arbitrary bytes; see `memlane::fuzzing::ring` for the
//! input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::ring(data);
});
