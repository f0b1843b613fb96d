//! A typed channel's type record (`TypeRecord::decode`) over arbitrary
//! bytes; see `memlane::fuzzing::type_record`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::type_record(data);
});
