//! Parsing of argument values: sizes (`64KiB`, `1M`, `4096`), durations
//! (`500ms`, `1.5s`, `1m`) and names. Used as clap value parsers, so a bad
//! value is a usage error (exit status 2) with the reason.

use std::time::Duration;

/// Parses a byte size: an unsigned integer with an optional binary unit,
/// case-insensitive: `k`/`KB`/`KiB` (1024), `M`/`MB`/`MiB`, `G`/`GB`/`GiB`,
/// `T`/`TB`/`TiB`, or `B` for bytes.
///
/// # Errors
///
/// A message saying what is wrong: empty, negative, not a number, an
/// unknown unit, or a value over 2^64 − 1 bytes.
pub fn size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty size: give a number of bytes, such as 4096, 64KiB or 1MiB".into());
    }
    if s.starts_with('-') {
        return Err(format!("{s:?}: a size cannot be negative"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = (&s[..split], s[split..].trim_start());
    if digits.is_empty() {
        return Err(format!(
            "{s:?} is not a size: give a number of bytes, such as 4096, 64KiB or 1MiB"
        ));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB or TiB; k, M, G also work)"
            ))
        }
    };
    let too_big = || format!("{s:?} is too large (the maximum is {} bytes)", u64::MAX);
    let n: u64 = digits.parse().map_err(|_| too_big())?;
    n.checked_mul(1u64 << shift).ok_or_else(too_big)
}

/// Parses a duration: a non-negative number, possibly with a fraction,
/// and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m` (minutes) or `h`.
///
/// # Errors
///
/// A message saying what is wrong: empty, negative, a missing or unknown
/// unit, or a value too large.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration: give a number and a unit, such as 500ms, 2s or 1m".into());
    }
    if s.starts_with('-') {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim_start());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!(
            "{s:?} is not a duration: give a number and a unit, such as 500ms, 1.5s or 1m"
        ));
    }
    let unit_ns: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "{s:?} has no unit: add one, such as 500ms, 2s or 1m"
            ))
        }
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)"
            ))
        }
    };
    let too_big = || format!("{s:?} is too long a duration");
    // Exact arithmetic in nanoseconds: int * unit + frac * unit / 10^digits.
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_big())?
    };
    let mut nanos = int.checked_mul(unit_ns).ok_or_else(too_big)?;
    let mut scale = unit_ns;
    for d in frac.bytes() {
        scale /= 10;
        nanos = nanos.saturating_add(u128::from(d - b'0') * scale);
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_big())?;
    // The remainder is below 10^9, so it fits.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Checks a channel or segment name with [`memlane::validate_name`].
///
/// # Errors
///
/// The library's message saying which rule the name breaks.
pub fn name(s: &str) -> Result<String, memlane::NameError> {
    memlane::validate_name(s)?;
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("64k"), Ok(64 << 10));
        assert_eq!(size("64 KB"), Ok(64 << 10));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("1M"), Ok(1 << 20));
        assert_eq!(size("1mib"), Ok(1 << 20));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("16G"), Ok(16 << 30));
        assert_eq!(size("2TiB"), Ok(2 << 40));
        assert_eq!(size("100B"), Ok(100));
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "", "  ", "-1", "-1KiB", "KiB", "12XB", "1.5MiB", "1 2", "0x100", "1MiBs",
        ] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(size("12XB").unwrap_err().contains("unknown unit"));
        assert!(size("-4").unwrap_err().contains("negative"));
        assert!(size("").unwrap_err().contains("empty"));
        assert!(size("18446744073709551616")
            .unwrap_err()
            .contains("too large"));
        assert!(size("16777216TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("3.s"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert_eq!(duration("1ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("1.0000000001s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "", "-1s", "5", "1.5", "s", ".s", "1.2.3s", "2x", "1 s s", "1sec",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(duration("5").unwrap_err().contains("no unit"));
        assert!(duration("2x").unwrap_err().contains("unknown unit"));
        assert!(duration("-1s").unwrap_err().contains("negative"));
        assert!(duration("99999999999999999999999h")
            .unwrap_err()
            .contains("too long"));
        assert!(duration("18446744073709551616s")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn names() {
        assert_eq!(name("chat").as_deref(), Ok("chat"));
        assert!(name("a/b").is_err());
        assert!(name("").is_err());
        assert!(name("-x").is_err());
    }
}
