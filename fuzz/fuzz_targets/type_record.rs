//! A typed channel's type record (`TypeRecord::decode`) and a serde
//! channel's recorded schema with a message decoded by it, over arbitrary
//! bytes; see `memlane::fuzzing::type_record`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::type_record(data);
});
