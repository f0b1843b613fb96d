//! Latest-value slots: the newest value of something, never a backlog.

use std::ffi::c_char;

use memlane::Latest;

use crate::ffi::{self, Fail, Timeout};
use crate::memlane_status::{self, *};

/// A named latest-value slot (opaque). Made by [`memlane_latest_create`]
/// or [`memlane_latest_open`], freed by [`memlane_latest_close`].
pub struct memlane_latest {
    latest: Latest,
    /// Where a read lands before it is copied to the caller's buffer
    /// (`max_value` bytes, allocated once).
    buf: Vec<u8>,
}

impl memlane_latest {
    fn new(latest: Latest) -> memlane_latest {
        let buf = Vec::with_capacity(latest.max_value());
        memlane_latest { latest, buf }
    }
}

/// Creates the latest-value slot `name` in `dir` (NULL: `$MEMLANE_DIR`,
/// else `/dev/shm`) for values of up to `max_value` bytes (0: the default,
/// 4096), owner only.
///
/// **Ownership:** `dir` and `name` are borrowed for the call. The handle
/// written to `*out` is yours: free it with [`memlane_latest_close`]. On
/// failure `*out` is set to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`,
/// `MEMLANE_INVALID_ARGUMENT` (`max_value` too large),
/// `MEMLANE_ALREADY_EXISTS`, `MEMLANE_NOT_FOUND` (no such `dir`),
/// `MEMLANE_PERMISSION_DENIED`, `MEMLANE_IO`.
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_create(
    dir: *const c_char,
    name: *const c_char,
    max_value: usize,
    out: *mut *mut memlane_latest,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut builder = Latest::builder(name);
        if max_value != 0 {
            builder = builder.max_value(max_value);
        }
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        Ok(memlane_latest::new(builder.create()?))
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Opens the latest-value slot `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`).
///
/// **Ownership:** as for [`memlane_latest_create`].
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`, `MEMLANE_NOT_FOUND`,
/// `MEMLANE_WRONG_KIND`, `MEMLANE_PERMISSION_DENIED`,
/// `MEMLANE_INCOMPATIBLE`, `MEMLANE_BUSY`, `MEMLANE_CORRUPT`, `MEMLANE_IO`.
///
/// # Safety
///
/// As for [`memlane_latest_create`].
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_open(
    dir: *const c_char,
    name: *const c_char,
    out: *mut *mut memlane_latest,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut options = Latest::open_options(name);
        if let Some(dir) = dir {
            options = options.dir(dir);
        }
        Ok(memlane_latest::new(options.open()?))
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// The largest value the slot holds, in bytes (to size a buffer for
/// [`memlane_latest_get`]).
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `latest` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_max_value(
    latest: *mut memlane_latest,
    out: *mut usize,
) -> memlane_status {
    ffi::guard(|| {
        let out = ffi::out_arg(out, "out")?;
        // SAFETY: a live handle or NULL, by the contract.
        let latest = unsafe { ffi::handle(latest, "latest") }?;
        // SAFETY: checked non-NULL; writable by the contract.
        unsafe { ffi::put(out, latest.latest.max_value()) };
        Ok(())
    })
}

/// Makes the `len` bytes at `data` the slot's value (copied in; the
/// writer never waits), and writes its version to `*version` unless NULL.
/// The first `set` from a handle takes a writer slot (held until close).
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_TOO_LARGE` (more than `max_value`),
/// `MEMLANE_NO_SLOT` (every writer slot held by a live process),
/// `MEMLANE_IO`, `MEMLANE_ERROR` (every version number used).
///
/// # Safety
///
/// `latest` is NULL or a live handle; `data` is NULL or has `len` readable
/// bytes; `version` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_set(
    latest: *mut memlane_latest,
    data: *const u8,
    len: usize,
    version: *mut u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let latest = unsafe { ffi::handle(latest, "latest") }?;
        // SAFETY: `len` readable bytes or NULL, by the contract.
        let data = unsafe { ffi::bytes_arg(data, len, "data") }?;
        let v = latest.latest.set(data)?;
        // SAFETY: NULL or writable, by the contract.
        unsafe { ffi::put_opt(version, v) };
        Ok(())
    })
}

/// Copies the newest complete value into `buf` (`cap` bytes), its length
/// to `*len` and its version to `*version` (unless NULL), and marks it
/// seen for [`memlane_latest_wait`].
///
/// **Ownership:** `buf` is yours; the value is copied (never torn).
///
/// # Errors
///
/// `MEMLANE_EMPTY` while nothing was written (`*len` is 0),
/// `MEMLANE_BUFFER_TOO_SMALL` when the value is longer than `cap` (`*len`
/// gets its length; nothing is copied; a buffer of
/// [`memlane_latest_max_value`] bytes is always enough),
/// `MEMLANE_NULL_POINTER`, `MEMLANE_CORRUPT`, `MEMLANE_BUSY` (a writer
/// breaking the protocol kept rewriting it).
///
/// # Safety
///
/// `latest` is NULL or a live handle; `buf` is NULL or has `cap` writable
/// bytes; `len` is NULL or writable; `version` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_get(
    latest: *mut memlane_latest,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
    version: *mut u64,
) -> memlane_status {
    ffi::guard(|| {
        let len = ffi::out_arg(len, "len")?;
        // SAFETY: a live handle or NULL, by the contract.
        let latest = unsafe { ffi::handle(latest, "latest") }?;
        // SAFETY: `cap` writable bytes or NULL, by the contract.
        let buf = unsafe { ffi::buf_arg(buf, cap, "buf") }?;
        let memlane_latest { latest, buf: value } = latest;
        let Some(v) = latest.get_into(value)? else {
            // SAFETY: checked non-NULL; writable by the contract.
            unsafe { ffi::put(len, 0) };
            return Err(Fail::new(
                MEMLANE_EMPTY,
                format!("the latest-value slot '{}' has no value yet", latest.name()),
            ));
        };
        // SAFETY: checked non-NULL; writable by the contract.
        unsafe { ffi::put(len, value.len()) };
        if value.len() > buf.len() {
            return Err(Fail::new(
                MEMLANE_BUFFER_TOO_SMALL,
                format!(
                    "the value is {} bytes, the buffer {}; pass a buffer of memlane_latest_max_value ({}) bytes",
                    value.len(),
                    buf.len(),
                    latest.max_value()
                ),
            ));
        }
        buf[..value.len()].copy_from_slice(value);
        // SAFETY: NULL or writable, by the contract.
        unsafe { ffi::put_opt(version, v) };
        Ok(())
    })
}

/// Waits until the slot holds a newer value than the last one this handle
/// read, for at most `timeout_ms` (`0`: only checks, `MEMLANE_FOREVER`: no
/// limit). Returns at once if it already does.
///
/// # Errors
///
/// `MEMLANE_TIMEOUT`, `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `latest` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_wait(
    latest: *mut memlane_latest,
    timeout_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let latest = unsafe { ffi::handle(latest, "latest") }?;
        let newer = match Timeout::from_ms(timeout_ms) {
            Timeout::Forever => {
                latest.latest.wait();
                true
            }
            Timeout::Poll => latest.latest.has_changed(),
            Timeout::For(d) => latest.latest.wait_timeout(d),
        };
        if newer {
            Ok(())
        } else {
            Err(Fail::timeout(format!(
                "no newer value in '{}' within {timeout_ms} ms",
                latest.latest.name()
            )))
        }
    })
}

/// Closes the slot (releasing its writer slot, if it wrote) and frees the
/// handle; NULL is a no-op. The name stays until `memlane_remove`.
///
/// # Safety
///
/// `latest` is NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_latest_close(latest: *mut memlane_latest) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(latest) }
}
