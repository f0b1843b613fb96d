//! Segment names: what is allowed, and where a name lives on disk.
//!
//! Every directory entry memlane makes or recognises is named here, and
//! only here:
//!
//! | entry                                | what it is                                     |
//! |--------------------------------------|------------------------------------------------|
//! | `memlane.<name>`                     | a segment, event, channel or file link         |
//! | `.memlane-tmp.<name>.<pid>.<unique>` | a file being built, or a name `gc` set aside   |
//! | `.memlane-rm.<pid>.<unique>`         | a file a removal moved aside (Windows)         |
//! | `.memlane-lk.<name>`                 | the lock file of a page-file channel (Windows) |
//! | `.memlane-ep.<name>.p<slot>`         | a liveness token of memlane before layout 4    |
//!
//! The hidden ones start with `.`, which a valid name cannot, so none is
//! ever taken for a finished segment. The Windows kernel objects are named
//! here too ([`WAIT_OBJECT_PREFIX`]; a page-file mapping is
//! `<namespace>\memlane.<name>`, see [`file_name`]).

use crate::error::NameError;

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// The prefix of every segment file in the segment directory: the segment
/// named `chat` is the file `memlane.chat`.
pub const FILE_PREFIX: &str = "memlane.";

/// Checks that `name` is a valid segment name: 1 to [`MAX_NAME_LEN`] ASCII
/// letters, digits, `.`, `_` or `-`, not starting with `.` or `-`.
///
/// # Examples
///
/// ```
/// assert!(memlane::validate_name("sensor-7.imu").is_ok());
/// assert!(memlane::validate_name("a/b").is_err());
/// assert!(memlane::validate_name("").is_err());
/// ```
///
/// # Errors
///
/// [`NameError`] says which rule `name` breaks.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::InvalidChar {
            name: name.to_string(),
            ch,
        });
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(NameError::BadStart {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The file name (inside the segment directory) of the segment `name`.
pub(crate) fn file_name(name: &str) -> String {
    format!("{FILE_PREFIX}{name}")
}

/// The segment name encoded in a directory entry, if it is one of ours.
pub(crate) fn from_file_name(file: &str) -> Option<&str> {
    let name = file.strip_prefix(FILE_PREFIX)?;
    validate_name(name).ok().map(|()| name)
}

/// Prefix of the temporary names of files being built (see [`temp_name`]).
pub(crate) const TEMP_PREFIX: &str = ".memlane-tmp.";

/// A unique temporary file name used while a segment is being built
/// (`.memlane-tmp.<name>.<pid>.<unique>`), and by `gc` to set a name aside
/// while it checks it. It starts with `.` so it is never taken for a
/// finished segment.
pub(crate) fn temp_name(name: &str) -> String {
    format!(
        "{TEMP_PREFIX}{name}.{}.{}",
        crate::sys::current_pid(),
        unique_suffix()
    )
}

/// Prefix of the names of files moved aside on their way out (see
/// [`aside_name`]).
pub(crate) const ASIDE_PREFIX: &str = ".memlane-rm.";

/// A unique hidden name for a file on its way out (Windows, where a file
/// still open elsewhere cannot be deleted at once):
/// `.memlane-rm.<pid>.<unique>`. `gc` removes what is left under it.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn aside_name() -> String {
    format!("{ASIDE_PREFIX}{}.{}", std::process::id(), unique_suffix())
}

/// Prefix, inside the kernel-object namespace, of the names of the
/// semaphores sleepers on a wait word use on Windows:
/// `memlane-wait.<what is mapped>.<offset>.<value>`.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) const WAIT_OBJECT_PREFIX: &str = "memlane-wait.";

/// Prefix of the lock file that holds the endpoints' liveness locks of a
/// page-file channel on Windows (which has no file of its own to lock):
/// `.memlane-lk.<name>` in the segment directory.
pub(crate) const LOCK_FILE_PREFIX: &str = ".memlane-lk.";

/// The lock file name of the page-file channel `name` (Windows).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn lock_file_name(name: &str) -> String {
    format!("{LOCK_FILE_PREFIX}{name}")
}

/// Prefix of the liveness token files of memlane before channel layout 4
/// (`.memlane-ep.<name>.p<slot>`, one per slot beside the name): no longer
/// made, and removed by `gc` when nobody holds them.
pub(crate) const OLD_TOKEN_PREFIX: &str = ".memlane-ep.";

/// A suffix unique within this process (a counter) and unlikely to repeat
/// across processes with the same pid (the clock's nanoseconds).
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{n}.{nanos:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in [
            "a",
            "chat",
            "Sensor_1.imu-raw",
            "0",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert!(validate_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        assert!(matches!(validate_name(""), Err(NameError::Empty)));
        assert!(matches!(
            validate_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong { len: 201, max: 200 })
        ));
        for (n, bad) in [
            ("a/b", '/'),
            ("a b", ' '),
            ("é", 'é'),
            ("a\0", '\0'),
            ("x:y", ':'),
        ] {
            match validate_name(n) {
                Err(NameError::InvalidChar { ch, .. }) => assert_eq!(ch, bad),
                other => panic!("{n:?}: {other:?}"),
            }
        }
        assert!(matches!(
            validate_name(".."),
            Err(NameError::BadStart { .. })
        ));
        assert!(matches!(
            validate_name("-x"),
            Err(NameError::BadStart { .. })
        ));
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name("chat"), "memlane.chat");
        assert_eq!(from_file_name("memlane.chat"), Some("chat"));
        assert_eq!(from_file_name("other.chat"), None);
        assert_eq!(from_file_name("memlane."), None);
        assert!(temp_name("chat").starts_with(".memlane-tmp.chat."));
        assert!(aside_name().starts_with(".memlane-rm."));
        assert_eq!(lock_file_name("chat"), ".memlane-lk.chat");
        assert_eq!(OLD_TOKEN_PREFIX, ".memlane-ep.");
        assert_ne!(temp_name("chat"), temp_name("chat"));
    }
}
