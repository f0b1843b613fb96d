//! # memlane-c — the C bindings of memlane
//!
//! A C ABI over [`memlane`]: a shared library (`libmemlane_c.so`,
//! `memlane_c.dll`), a static one (`libmemlane_c.a`) and the header
//! `include/memlane.h`, generated from this crate by cbindgen (the test
//! `tests/header.rs` fails when the committed header is out of date).
//!
//! ## Conventions
//!
//! * **Opaque handles.** `memlane_segment`, `memlane_event`,
//!   `memlane_latest`, `memlane_channel`, `memlane_publisher` and
//!   `memlane_subscriber` are only ever seen through pointers. A handle is
//!   made by a `*_create`/`*_open`/`*_new` function, which writes it to an
//!   out-parameter, and is freed by the matching `*_close` function (which
//!   accepts NULL). A handle may move between threads, but must be used by
//!   one thread at a time.
//! * **Status codes.** Every function that can fail returns a
//!   [`memlane_status`]: `MEMLANE_OK` (0) or a code saying what went wrong;
//!   [`memlane_last_error_message`] then gives a message saying what to do.
//!   Out-parameters are written only on `MEMLANE_OK` unless a function says
//!   otherwise.
//! * **No panics cross the boundary.** Every entry point runs inside
//!   `catch_unwind`; a panic (a bug in memlane) becomes `MEMLANE_PANIC`.
//! * **Bad input gives a code, not a crash.** NULL pointers give
//!   `MEMLANE_NULL_POINTER`, names that are not UTF-8 `MEMLANE_INVALID_NAME`,
//!   out-of-range numbers `MEMLANE_INVALID_ARGUMENT`.
//! * **Ownership.** Strings passed in are borrowed for the call only.
//!   Pointers handed out (a segment's bytes, a received message, a loan)
//!   point into memory the library owns, and each function says until when
//!   they stay valid. Nothing handed out is ever freed with `free()`.
//! * **Timeouts** are in milliseconds: `0` polls (returns
//!   `MEMLANE_TIMEOUT` at once if it would have to wait), [`MEMLANE_FOREVER`]
//!   waits for good.
//!
//! The Rust → C map, what is zero-copy and what copies, and how to build
//! and link: `docs/BINDINGS.md`.

// The entry points take raw pointers from C: unsafe is this crate's job.
// Every unsafe block carries a SAFETY comment; the pointer handling is in
// `ffi.rs`, which the other modules go through.
#![allow(unsafe_code)]
// The C names are the Rust names (no renaming layer in cbindgen.toml), so
// the header and this crate read the same.
#![allow(non_camel_case_types)]

mod channel;
mod event;
mod ffi;
mod latest;
mod segment;

pub use channel::*;
pub use event::*;
pub use latest::*;
pub use segment::*;

use std::ffi::c_char;

/// A timeout that waits for good.
pub const MEMLANE_FOREVER: u64 = u64::MAX;

/// What a function did: `MEMLANE_OK`, or why it failed.
///
/// [`memlane_last_error_message`] has the details of the last failure on
/// the calling thread; [`memlane_status_name`] names a code.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum memlane_status {
    /// Success.
    MEMLANE_OK = 0,
    /// Nothing happened within the timeout; with a timeout of 0, it would
    /// have had to wait (no message waiting, the channel full, no event).
    MEMLANE_TIMEOUT = 1,
    /// A latest-value slot has no value yet.
    MEMLANE_EMPTY = 2,
    /// A pointer argument that must not be NULL was NULL.
    MEMLANE_NULL_POINTER = 3,
    /// An argument is out of range (an unknown access or disposition, a
    /// size the kind does not allow).
    MEMLANE_INVALID_ARGUMENT = 4,
    /// The name (or a path) is not valid UTF-8, or breaks the naming rules
    /// (1–200 ASCII letters, digits, `.`, `_`, `-`; not starting with `.`
    /// or `-`).
    MEMLANE_INVALID_NAME = 5,
    /// Nothing by that name (or at that path, or the directory is missing).
    MEMLANE_NOT_FOUND = 6,
    /// The name is taken.
    MEMLANE_ALREADY_EXISTS = 7,
    /// The name holds another kind (opening an event as a segment…).
    MEMLANE_WRONG_KIND = 8,
    /// The operating system refused access, or the file belongs to another
    /// user.
    MEMLANE_PERMISSION_DENIED = 9,
    /// The file is not a memlane object this library can open: not made by
    /// memlane, another format version, a symlink, hard-linked.
    MEMLANE_INCOMPATIBLE = 10,
    /// An offset and length leave the segment or view.
    MEMLANE_OUT_OF_BOUNDS = 11,
    /// A write to a segment opened read-only.
    MEMLANE_READ_ONLY = 12,
    /// A message or value is larger than the channel or slot allows.
    MEMLANE_TOO_LARGE = 13,
    /// The caller's buffer is smaller than the message or value; the length
    /// needed was written to the length out-parameter.
    MEMLANE_BUFFER_TOO_SMALL = 14,
    /// Every publisher, subscriber or writer slot is taken.
    MEMLANE_NO_SLOT = 15,
    /// Every publisher has left the channel.
    MEMLANE_DISCONNECTED = 16,
    /// The object is busy: being created, locked by another process, or
    /// (on a publisher) a loan is outstanding. Retry, or finish the loan.
    MEMLANE_BUSY = 17,
    /// Shared state breaks the format (another process wrote garbage, or
    /// truncated the file).
    MEMLANE_CORRUPT = 18,
    /// An operating-system error (no space, I/O, `msync`).
    MEMLANE_IO = 19,
    /// A panic inside memlane was caught (a bug: please report it).
    MEMLANE_PANIC = 20,
    /// Any other failure; the message says which.
    MEMLANE_ERROR = 21,
    /// A lossy subscriber was lapped: publishers overwrote messages it had
    /// not read (the message says how many; [`memlane_subscriber_lost`]
    /// sums them). Receive again: it goes on from the oldest message still
    /// in the ring.
    MEMLANE_LAGGED = 22,
}

/// The message of the last failure on the calling thread: what happened,
/// to which name or path, and what to do, as a NUL-terminated UTF-8
/// string ("" if nothing failed yet).
///
/// **Ownership:** the string belongs to the library. It stays valid until
/// the next memlane call on this thread; copy it to keep it. Never free it.
///
/// # Examples
///
/// ```c
/// memlane_segment *seg = NULL;
/// if (memlane_segment_open(NULL, "missing", MEMLANE_ACCESS_READ_ONLY, &seg) != MEMLANE_OK)
///     fprintf(stderr, "%s\n", memlane_last_error_message());
/// ```
#[no_mangle]
pub extern "C" fn memlane_last_error_message() -> *const c_char {
    ffi::last_error_ptr()
}

/// The name of a status code, such as `"MEMLANE_NOT_FOUND"`: a static
/// NUL-terminated string (never freed, valid for the life of the process).
#[no_mangle]
pub extern "C" fn memlane_status_name(status: memlane_status) -> *const c_char {
    use memlane_status::*;
    let s: &'static [u8] = match status {
        MEMLANE_OK => b"MEMLANE_OK\0",
        MEMLANE_TIMEOUT => b"MEMLANE_TIMEOUT\0",
        MEMLANE_EMPTY => b"MEMLANE_EMPTY\0",
        MEMLANE_NULL_POINTER => b"MEMLANE_NULL_POINTER\0",
        MEMLANE_INVALID_ARGUMENT => b"MEMLANE_INVALID_ARGUMENT\0",
        MEMLANE_INVALID_NAME => b"MEMLANE_INVALID_NAME\0",
        MEMLANE_NOT_FOUND => b"MEMLANE_NOT_FOUND\0",
        MEMLANE_ALREADY_EXISTS => b"MEMLANE_ALREADY_EXISTS\0",
        MEMLANE_WRONG_KIND => b"MEMLANE_WRONG_KIND\0",
        MEMLANE_PERMISSION_DENIED => b"MEMLANE_PERMISSION_DENIED\0",
        MEMLANE_INCOMPATIBLE => b"MEMLANE_INCOMPATIBLE\0",
        MEMLANE_OUT_OF_BOUNDS => b"MEMLANE_OUT_OF_BOUNDS\0",
        MEMLANE_READ_ONLY => b"MEMLANE_READ_ONLY\0",
        MEMLANE_TOO_LARGE => b"MEMLANE_TOO_LARGE\0",
        MEMLANE_BUFFER_TOO_SMALL => b"MEMLANE_BUFFER_TOO_SMALL\0",
        MEMLANE_NO_SLOT => b"MEMLANE_NO_SLOT\0",
        MEMLANE_DISCONNECTED => b"MEMLANE_DISCONNECTED\0",
        MEMLANE_BUSY => b"MEMLANE_BUSY\0",
        MEMLANE_CORRUPT => b"MEMLANE_CORRUPT\0",
        MEMLANE_IO => b"MEMLANE_IO\0",
        MEMLANE_PANIC => b"MEMLANE_PANIC\0",
        MEMLANE_ERROR => b"MEMLANE_ERROR\0",
        MEMLANE_LAGGED => b"MEMLANE_LAGGED\0",
    };
    s.as_ptr().cast()
}

/// Removes the name `name` from `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`), whatever kind it holds. Processes that have it open keep
/// using it until they close it; a file-backed segment keeps its file.
///
/// `dir` and `name` are borrowed for the call.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER` (`name` NULL), `MEMLANE_INVALID_NAME`,
/// `MEMLANE_NOT_FOUND`, `MEMLANE_IO`.
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn memlane_remove(dir: *const c_char, name: *const c_char) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: the caller passes NUL-terminated strings or NULL.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        memlane::remove(dir.as_deref(), name)?;
        Ok(())
    })
}
