//! Printing helpers: untrusted bytes escaped for a terminal, sizes and
//! latencies for a person.

use std::fmt::Write as _;

/// Escapes bytes another process wrote so that printing them cannot
/// control the terminal: valid UTF-8 is kept except `\` (as `\\`), control
/// characters (`\n`, `\r`, `\t`, `\0`, others as `\x1b` or `\u{85}`) and
/// invisible direction or format marks (`\u{202e}`); bytes that are not
/// UTF-8 become `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                c if c.is_control() && (c as u32) < 0x80 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || is_invisible_format(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Characters that change how the text around them is shown without
/// showing themselves (bidirectional overrides, zero-width marks).
fn is_invisible_format(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

/// Escapes a path for printing. On Unix a path may hold any bytes but NUL,
/// and is escaped like any other bytes. On Windows `\` is the separator
/// (no name can hold one) and is kept as it is; each name between them is
/// escaped, its unpaired surrogates (not UTF-8 in the WTF-8 encoding that
/// `as_encoded_bytes` gives) printed as `\xNN`.
pub fn path(p: &std::path::Path) -> String {
    let bytes = p.as_os_str().as_encoded_bytes();
    if cfg!(windows) {
        bytes
            .split(|&b| b == b'\\')
            .map(escape)
            .collect::<Vec<_>>()
            .join("\\")
    } else {
        escape(bytes)
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A byte count for a person: `1 MiB`, `1.50 KiB`, `100 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >= 1u64 << (10 * (unit + 1)) {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let scale = 1u64 << (10 * unit);
    if bytes % scale == 0 {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.2} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// A byte count with its exact value: `1 MiB (1048576 bytes)`, or only
/// the bytes when that is not a whole number of KiB: `65520 bytes`.
pub fn size_exact(bytes: u64) -> String {
    if bytes < 1024 || bytes.trailing_zeros() < 10 {
        format!("{bytes} bytes")
    } else {
        format!("{} ({bytes} bytes)", size(bytes))
    }
}

/// How a channel orders its wake-ups, for `create` and `info`.
pub fn barriers(membarrier: bool) -> &'static str {
    if membarrier {
        "membarrier (no fence per message)"
    } else {
        "fences"
    }
}

/// A latency in nanoseconds for a person: `850 ns`, `1.23 µs`, `4.56 ms`.
pub fn nanos(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_untrusted_bytes() {
        assert_eq!(escape(b"hello"), "hello");
        assert_eq!(escape(b""), "");
        assert_eq!(escape(b"a\nb\tc\r\\"), "a\\nb\\tc\\r\\\\");
        assert_eq!(escape(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape(b"\x00\x7f"), "\\0\\x7f");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(escape("caf\u{e9} \u{85}".as_bytes()), "caf\u{e9} \\u{85}");
        assert_eq!(escape("a\u{202e}b".as_bytes()), "a\\u{202e}b");
    }

    #[test]
    fn paths_escape_like_bytes_but_keep_windows_separators() {
        use std::path::Path;
        assert_eq!(path(Path::new("/tmp/a b")), "/tmp/a b");
        assert_eq!(path(Path::new("x\u{202e}y")), "x\\u{202e}y");
        if cfg!(windows) {
            assert_eq!(
                path(Path::new(r"C:\Temp\memlane.chat")),
                r"C:\Temp\memlane.chat"
            );
        } else {
            assert_eq!(path(Path::new(r"a\b")), r"a\\b");
        }
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(b"\x00\xabZ"), "00ab5a");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(100), "100 B");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(size_exact(65520), "65520 bytes");
        assert_eq!(size_exact(65536), "64 KiB (65536 bytes)");
        assert_eq!(size_exact(10), "10 bytes");
    }

    #[test]
    fn latencies() {
        assert_eq!(nanos(850), "850 ns");
        assert_eq!(nanos(1_234), "1.23 µs");
        assert_eq!(nanos(4_560_000), "4.56 ms");
    }
}
