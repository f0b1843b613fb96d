//! The channel config validation (`Geometry::from_config`) over arbitrary
//! bytes and data lengths; see `memlane::fuzzing::channel_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane::fuzzing::channel_config(data);
});
