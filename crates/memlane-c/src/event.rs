//! Events: a named cross-process "data ready" signal.

use std::ffi::c_char;

use memlane::Event;

use crate::ffi::{self, Fail, Timeout};
use crate::memlane_status;

/// A named cross-process event (opaque). Made by [`memlane_event_create`]
/// or [`memlane_event_open`], freed by [`memlane_event_close`].
pub struct memlane_event {
    event: Event,
}

/// Creates the event `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`), owner only, and stores its handle in `*out`.
///
/// **Ownership:** `dir` and `name` are borrowed for the call. The handle
/// written to `*out` is yours: free it with [`memlane_event_close`]. On
/// failure `*out` is set to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`, `MEMLANE_ALREADY_EXISTS`,
/// `MEMLANE_NOT_FOUND` (no such `dir`), `MEMLANE_PERMISSION_DENIED`,
/// `MEMLANE_IO`.
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_event_create(
    dir: *const c_char,
    name: *const c_char,
    out: *mut *mut memlane_event,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut builder = Event::builder(name);
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        Ok(memlane_event {
            event: builder.create()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Opens the event `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`). Notifications sent before it was opened count: the first
/// wait returns at once if the event was ever notified.
///
/// **Ownership:** as for [`memlane_event_create`].
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`, `MEMLANE_NOT_FOUND`,
/// `MEMLANE_WRONG_KIND`, `MEMLANE_PERMISSION_DENIED`,
/// `MEMLANE_INCOMPATIBLE`, `MEMLANE_BUSY`, `MEMLANE_CORRUPT`, `MEMLANE_IO`.
///
/// # Safety
///
/// As for [`memlane_event_create`].
#[no_mangle]
pub unsafe extern "C" fn memlane_event_open(
    dir: *const c_char,
    name: *const c_char,
    out: *mut *mut memlane_event,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut options = Event::open_options(name);
        if let Some(dir) = dir {
            options = options.dir(dir);
        }
        Ok(memlane_event {
            event: options.open()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Signals the event: wakes every waiter, in any process (no system call
/// when nobody waits).
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_event_notify(event: *mut memlane_event) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let event = unsafe { ffi::handle(event, "event") }?;
        event.event.notify();
        Ok(())
    })
}

/// Waits until a notification this handle has not seen yet arrives, for
/// at most `timeout_ms` milliseconds (`0`: only checks,
/// `MEMLANE_FOREVER`: no limit).
///
/// # Errors
///
/// `MEMLANE_TIMEOUT` if none came in time, `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_event_wait(
    event: *mut memlane_event,
    timeout_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let event = unsafe { ffi::handle(event, "event") }?;
        let came = match Timeout::from_ms(timeout_ms) {
            Timeout::Forever => {
                event.event.wait();
                true
            }
            Timeout::Poll => event.event.wait_timeout(std::time::Duration::ZERO),
            Timeout::For(d) => event.event.wait_timeout(d),
        };
        if came {
            Ok(())
        } else {
            Err(Fail::timeout(format!(
                "no notification of event '{}' within {timeout_ms} ms",
                event.event.name()
            )))
        }
    })
}

/// Closes the event and frees the handle; NULL is a no-op. The name stays
/// until `memlane_remove`.
///
/// # Safety
///
/// `event` is NULL or a live event handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_event_close(event: *mut memlane_event) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(event) }
}
