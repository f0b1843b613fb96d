//! The Zenoh bridge's wire format (`memlane_zenoh::wire`) over arbitrary
//! inbound payloads, and batches framed from arbitrary messages; see
//! `memlane_zenoh::fuzzing::wire`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    memlane_zenoh::fuzzing::wire(data);
});
