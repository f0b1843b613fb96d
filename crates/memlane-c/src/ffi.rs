//! What every entry point shares: the panic guard, the thread-local last
//! error, argument checks (NULL, UTF-8), handles in and out, timeouts, and
//! the mapping of memlane's error enums to status codes.

use std::any::Any;
use std::cell::RefCell;
use std::error::Error;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use memlane::{
    AccessError, CommitError, CreateError, GetError, JoinError, OpenError, RecvError,
    RecvTimeoutError, RemoveError, SendError, SendTimeoutError, SetError, TryRecvError,
    TrySendError,
};

use crate::memlane_status::{self, *};

thread_local! {
    /// The message of the last failure on this thread, NUL-terminated.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The pointer `memlane_last_error_message` hands out: valid until the
/// next call that sets the message on this thread.
///
/// Never panics: during thread teardown, when the thread-local is gone
/// already, it returns a static empty string instead.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.try_borrow().map(|m| m.as_ptr()).ok())
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

fn set_last_error(message: &str) {
    // A message with a NUL inside (a path from the OS, say) is cut there
    // rather than lost.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`/`try_borrow_mut`: this runs outside `catch_unwind` (after
    // it), so it must not panic, even during thread teardown; the message
    // is lost then, the status code is not.
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = message;
        }
    });
}

/// A failed call: its status code and the message to keep.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: memlane_status,
    pub(crate) message: String,
}

impl Fail {
    pub(crate) fn new(status: memlane_status, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }

    /// A failure described by an error and its chain of sources.
    fn of(status: memlane_status, error: &dyn Error) -> Fail {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(e) = source {
            message.push_str(": ");
            message.push_str(&e.to_string());
            source = e.source();
        }
        Fail { status, message }
    }

    pub(crate) fn timeout(what: impl Into<String>) -> Fail {
        Fail::new(MEMLANE_TIMEOUT, what)
    }
}

/// Runs an entry point's body: a panic becomes `MEMLANE_PANIC`, an error
/// its status code, and both set the thread's last error message.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Fail>) -> memlane_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MEMLANE_OK,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "internal error: memlane panicked ({}); the handle used may be unusable now, close it. Please report this as a bug",
                panic_text(&*payload)
            ));
            MEMLANE_PANIC
        }
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "no message"
    }
}

fn null(what: &str) -> Fail {
    Fail::new(
        MEMLANE_NULL_POINTER,
        format!("`{what}` is NULL; pass a valid pointer"),
    )
}

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Fail::new(
            MEMLANE_INVALID_NAME,
            format!("`{what}` is not valid UTF-8 ({e}); names and paths must be UTF-8"),
        )
    })
}

/// An optional path argument: NULL is `None`.
///
/// # Safety
///
/// As for [`str_arg`].
pub(crate) unsafe fn opt_path(ptr: *const c_char, what: &str) -> Result<Option<PathBuf>, Fail> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    Ok(Some(PathBuf::from(unsafe { str_arg(ptr, what) }?)))
}

/// Borrows `len` bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
///
/// Unless `len` is 0, `ptr` points to `len` readable bytes that are not
/// written during `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, `len` readable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` writable bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
///
/// Unless `len` is 0, `ptr` points to `len` writable bytes used by
/// nothing else during `'a`.
pub(crate) unsafe fn buf_arg<'a>(
    ptr: *mut u8,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Fail> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, `len` writable, unaliased bytes by the contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks that an out-parameter is not NULL (before any work is done).
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> Result<*mut T, Fail> {
    if ptr.is_null() {
        Err(null(what))
    } else {
        Ok(ptr)
    }
}

/// Writes `value` to an out-parameter checked with [`out_arg`].
///
/// # Safety
///
/// `ptr` is non-NULL, aligned and writable for a `T`.
pub(crate) unsafe fn put<T>(ptr: *mut T, value: T) {
    // SAFETY: the caller's contract; `T` is a plain C value (integer or
    // pointer), so nothing is dropped by the overwrite.
    unsafe { ptr.write(value) }
}

/// Writes `value` to an out-parameter unless it is NULL (optional outputs).
///
/// # Safety
///
/// `ptr` is NULL, or aligned and writable for a `T`.
pub(crate) unsafe fn put_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL, and the caller's contract.
        unsafe { ptr.write(value) }
    }
}

/// Runs `make` and hands its result to C through `out` as an owned handle
/// (`*out` is NULL on failure).
///
/// # Safety
///
/// `out` is NULL (an error) or aligned and writable for a pointer.
pub(crate) unsafe fn make_handle<T>(
    out: *mut *mut T,
    make: impl FnOnce() -> Result<T, Fail>,
) -> memlane_status {
    guard(|| {
        let out = out_arg(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { put(out, std::ptr::null_mut()) };
        let handle = Box::into_raw(Box::new(make()?));
        // SAFETY: as above. Ownership passes to C, back through `close`.
        unsafe { put(out, handle) };
        Ok(())
    })
}

/// The handle behind a pointer from [`make_handle`].
///
/// # Safety
///
/// `ptr` is NULL or a live handle of type `T` made by this library, used
/// by no other thread during `'a`.
pub(crate) unsafe fn handle<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Fail> {
    // SAFETY: a live, unaliased Box allocation by the caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

/// Frees a handle from [`make_handle`]; NULL is a no-op. A panic in the
/// handle's destructor is caught (and the handle is gone either way).
///
/// # Safety
///
/// `ptr` is NULL or a live handle of type `T` made by this library, not
/// used again afterwards.
pub(crate) unsafe fn close<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the pointer came from Box::into_raw in make_handle and is
    // given back once, by the caller's contract.
    let boxed = unsafe { Box::from_raw(ptr) };
    let _ = guard(|| {
        drop(boxed);
        Ok(())
    });
}

/// A timeout in milliseconds as C passes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timeout {
    /// 0: do not wait.
    Poll,
    /// `MEMLANE_FOREVER`.
    Forever,
    /// Anything else.
    For(Duration),
}

impl Timeout {
    pub(crate) fn from_ms(ms: u64) -> Timeout {
        match ms {
            0 => Timeout::Poll,
            crate::MEMLANE_FOREVER => Timeout::Forever,
            ms => Timeout::For(Duration::from_millis(ms)),
        }
    }
}

// ---- memlane's errors as status codes --------------------------------------

impl From<CreateError> for Fail {
    fn from(e: CreateError) -> Fail {
        let status = match &e {
            CreateError::InvalidName(_) => MEMLANE_INVALID_NAME,
            CreateError::AlreadyExists { .. } => MEMLANE_ALREADY_EXISTS,
            CreateError::InvalidConfig { .. } => MEMLANE_INVALID_ARGUMENT,
            CreateError::NoDirectory { .. } => MEMLANE_NOT_FOUND,
            CreateError::PermissionDenied { .. } => MEMLANE_PERMISSION_DENIED,
            CreateError::NoSpace { .. } | CreateError::Io { .. } => MEMLANE_IO,
            CreateError::Open(open) => open_status(open),
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

fn open_status(e: &OpenError) -> memlane_status {
    match e {
        OpenError::InvalidName(_) => MEMLANE_INVALID_NAME,
        OpenError::NotFound { .. } => MEMLANE_NOT_FOUND,
        OpenError::WrongKind { .. } => MEMLANE_WRONG_KIND,
        OpenError::PermissionDenied { .. } | OpenError::ForeignOwner { .. } => {
            MEMLANE_PERMISSION_DENIED
        }
        OpenError::NotMemlane { .. }
        | OpenError::IncompatibleVersion { .. }
        | OpenError::Symlink { .. }
        | OpenError::HardLinked { .. }
        | OpenError::NotAFile { .. }
        | OpenError::MembarrierUnavailable { .. } => MEMLANE_INCOMPATIBLE,
        OpenError::NotReady { .. } | OpenError::Busy { .. } => MEMLANE_BUSY,
        OpenError::SizeMismatch { .. } | OpenError::Corrupt { .. } => MEMLANE_CORRUPT,
        OpenError::ViewOutOfBounds { .. } => MEMLANE_OUT_OF_BOUNDS,
        OpenError::Io { .. } => MEMLANE_IO,
        _ => MEMLANE_ERROR,
    }
}

impl From<OpenError> for Fail {
    fn from(e: OpenError) -> Fail {
        Fail::of(open_status(&e), &e)
    }
}

impl From<RemoveError> for Fail {
    fn from(e: RemoveError) -> Fail {
        let status = match &e {
            RemoveError::InvalidName(_) => MEMLANE_INVALID_NAME,
            RemoveError::NotFound { .. } => MEMLANE_NOT_FOUND,
            RemoveError::PageFile { .. } => MEMLANE_INVALID_ARGUMENT,
            RemoveError::Io { .. } => MEMLANE_IO,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<AccessError> for Fail {
    fn from(e: AccessError) -> Fail {
        let status = match &e {
            AccessError::OutOfBounds { .. } => MEMLANE_OUT_OF_BOUNDS,
            AccessError::ReadOnly => MEMLANE_READ_ONLY,
            AccessError::Flush(_) => MEMLANE_IO,
            AccessError::Truncated => MEMLANE_CORRUPT,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<JoinError> for Fail {
    fn from(e: JoinError) -> Fail {
        let status = match &e {
            JoinError::TooManyPublishers { .. }
            | JoinError::TooManySubscribers { .. }
            | JoinError::SlotsLocked { .. } => MEMLANE_NO_SLOT,
            JoinError::Corrupt(_) => MEMLANE_CORRUPT,
            JoinError::Evicted { .. } => MEMLANE_BUSY,
            JoinError::MembarrierFailed | JoinError::Liveness { .. } => MEMLANE_IO,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<SendError> for Fail {
    fn from(e: SendError) -> Fail {
        let status = match &e {
            SendError::TooLarge { .. } => MEMLANE_TOO_LARGE,
            SendError::Corrupt(_) => MEMLANE_CORRUPT,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<TrySendError> for Fail {
    fn from(e: TrySendError) -> Fail {
        let status = match &e {
            TrySendError::Full => MEMLANE_TIMEOUT,
            TrySendError::TooLarge { .. } => MEMLANE_TOO_LARGE,
            TrySendError::Corrupt(_) => MEMLANE_CORRUPT,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<SendTimeoutError> for Fail {
    fn from(e: SendTimeoutError) -> Fail {
        let status = match &e {
            SendTimeoutError::Timeout => MEMLANE_TIMEOUT,
            SendTimeoutError::TooLarge { .. } => MEMLANE_TOO_LARGE,
            SendTimeoutError::Corrupt(_) => MEMLANE_CORRUPT,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<CommitError> for Fail {
    fn from(e: CommitError) -> Fail {
        let status = match &e {
            CommitError::TooLong { .. } => MEMLANE_TOO_LARGE,
            CommitError::Corrupt(_) => MEMLANE_CORRUPT,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<RecvError> for Fail {
    fn from(e: RecvError) -> Fail {
        let status = match &e {
            RecvError::Corrupt(_) => MEMLANE_CORRUPT,
            RecvError::Disconnected => MEMLANE_DISCONNECTED,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<TryRecvError> for Fail {
    fn from(e: TryRecvError) -> Fail {
        let status = match &e {
            TryRecvError::Empty => MEMLANE_TIMEOUT,
            TryRecvError::Corrupt(_) => MEMLANE_CORRUPT,
            TryRecvError::Disconnected => MEMLANE_DISCONNECTED,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<RecvTimeoutError> for Fail {
    fn from(e: RecvTimeoutError) -> Fail {
        let status = match &e {
            RecvTimeoutError::Timeout => MEMLANE_TIMEOUT,
            RecvTimeoutError::Corrupt(_) => MEMLANE_CORRUPT,
            RecvTimeoutError::Disconnected => MEMLANE_DISCONNECTED,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<SetError> for Fail {
    fn from(e: SetError) -> Fail {
        let status = match &e {
            SetError::TooLarge { .. } => MEMLANE_TOO_LARGE,
            SetError::NoWriterSlot { .. } => MEMLANE_NO_SLOT,
            SetError::Liveness { .. } => MEMLANE_IO,
            SetError::VersionsExhausted { .. } => MEMLANE_ERROR,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

impl From<GetError> for Fail {
    fn from(e: GetError) -> Fail {
        let status = match &e {
            GetError::Corrupt { .. } => MEMLANE_CORRUPT,
            GetError::Contended { .. } => MEMLANE_BUSY,
            _ => MEMLANE_ERROR,
        };
        Fail::of(status, &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: the pointer is the thread's NUL-terminated message, read
        // before any other call on this thread.
        unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, MEMLANE_PANIC);
        assert!(last_error().contains("boom"), "{}", last_error());
    }

    #[test]
    fn a_failure_sets_the_message_and_success_keeps_it() {
        assert_eq!(
            guard(|| Err(Fail::new(MEMLANE_NOT_FOUND, "no such thing"))),
            MEMLANE_NOT_FOUND
        );
        assert_eq!(guard(|| Ok(())), MEMLANE_OK);
        assert_eq!(last_error(), "no such thing");
        // A NUL inside a message does not lose it.
        let _ = guard(|| Err(Fail::new(MEMLANE_ERROR, "a\0b")));
        assert_eq!(last_error(), "a\\0b");
    }

    #[test]
    fn string_arguments_are_checked() {
        // SAFETY: NULL, and NUL-terminated literals.
        unsafe {
            let err = str_arg(std::ptr::null(), "name").unwrap_err();
            assert_eq!(err.status, MEMLANE_NULL_POINTER);
            let err = str_arg(c"\xff".as_ptr(), "name").unwrap_err();
            assert_eq!(err.status, MEMLANE_INVALID_NAME);
            assert_eq!(str_arg(c"ok".as_ptr(), "name").unwrap(), "ok");
            assert_eq!(opt_path(std::ptr::null(), "dir").unwrap(), None);
        }
    }

    #[test]
    fn timeouts_in_milliseconds() {
        assert!(matches!(Timeout::from_ms(0), Timeout::Poll));
        assert!(matches!(Timeout::from_ms(u64::MAX), Timeout::Forever));
        assert!(matches!(Timeout::from_ms(5), Timeout::For(d) if d == Duration::from_millis(5)));
    }

    #[test]
    fn errors_map_to_their_codes() {
        let e = memlane::Segment::open_options("no-such-segment-anywhere")
            .dir(std::env::temp_dir())
            .open()
            .unwrap_err();
        let fail = Fail::from(e);
        assert_eq!(fail.status, MEMLANE_NOT_FOUND);
        assert!(fail.message.contains("no-such-segment-anywhere"));
        let fail = Fail::from(AccessError::ReadOnly);
        assert_eq!(fail.status, MEMLANE_READ_ONLY);
    }
}
