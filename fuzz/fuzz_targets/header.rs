//! The segment header decoder (`segment::header::decode`) over arbitrary
//! bytes and file lengths; see `memlane::fuzzing::header`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::header(data);
});
