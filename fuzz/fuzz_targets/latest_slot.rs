//! The latest-value slot's decoder (its control words, then reads and a
//! write over arbitrary buffer words); see `memlane::fuzzing::latest_slot`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::latest_slot(data);
});
