//! The CLI's argument parsers (`size`, `duration`, `name`) over arbitrary
//! strings. They live in the binary crate `memlane-cli`, so the file is
//! compiled in here as it is (it needs only std and `memlane`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/memlane-cli/src/parse.rs"]
#[allow(dead_code)]
mod parse;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(n) = parse::size(&s) {
        // Units are case-insensitive, and the value round-trips in bytes.
        assert_eq!(parse::size(&s.to_ascii_uppercase()), Ok(n), "{s:?}");
        assert_eq!(parse::size(&n.to_string()), Ok(n), "{s:?}");
    }
    if let Ok(d) = parse::duration(&s) {
        // The value round-trips in nanoseconds.
        assert_eq!(
            parse::duration(&format!("{}ns", d.as_nanos())),
            Ok(d),
            "{s:?}"
        );
    }
    let _ = parse::name(&s);
});
