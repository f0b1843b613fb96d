//! Segments: named shared memory, read and written in place or by copy.

use std::ffi::c_char;

use memlane::{Access, Disposition, Segment};

use crate::ffi::{self, Fail};
use crate::memlane_status::{self, *};

/// A named shared-memory segment mapped into this process (opaque).
/// Made by `memlane_segment_create*` / `memlane_segment_open*`, freed by
/// [`memlane_segment_close`].
pub struct memlane_segment {
    seg: Segment,
}

/// Open for reading only: writes fail with `MEMLANE_READ_ONLY`.
pub const MEMLANE_ACCESS_READ_ONLY: u32 = 0;
/// Open for reading and writing, shared with every other process.
pub const MEMLANE_ACCESS_READ_WRITE: u32 = 1;
/// Private copy-on-write: writes stay in this process.
pub const MEMLANE_ACCESS_COPY_ON_WRITE: u32 = 2;

/// Create the backing file; fail if it exists.
pub const MEMLANE_DISPOSITION_CREATE_NEW: u32 = 0;
/// Create the backing file, replacing any file at the path.
pub const MEMLANE_DISPOSITION_CREATE_ALWAYS: u32 = 1;
/// Use an existing memlane file at the path.
pub const MEMLANE_DISPOSITION_OPEN_EXISTING: u32 = 2;

fn access(value: u32) -> Result<Access, Fail> {
    match value {
        MEMLANE_ACCESS_READ_ONLY => Ok(Access::ReadOnly),
        MEMLANE_ACCESS_READ_WRITE => Ok(Access::ReadWrite),
        MEMLANE_ACCESS_COPY_ON_WRITE => Ok(Access::CopyOnWrite),
        other => Err(Fail::new(
            MEMLANE_INVALID_ARGUMENT,
            format!("access {other} is not one of MEMLANE_ACCESS_READ_ONLY (0), _READ_WRITE (1) or _COPY_ON_WRITE (2)"),
        )),
    }
}

fn disposition(value: u32) -> Result<Disposition, Fail> {
    match value {
        MEMLANE_DISPOSITION_CREATE_NEW => Ok(Disposition::CreateNew),
        MEMLANE_DISPOSITION_CREATE_ALWAYS => Ok(Disposition::CreateAlways),
        MEMLANE_DISPOSITION_OPEN_EXISTING => Ok(Disposition::OpenExisting),
        other => Err(Fail::new(
            MEMLANE_INVALID_ARGUMENT,
            format!("disposition {other} is not one of MEMLANE_DISPOSITION_CREATE_NEW (0), _CREATE_ALWAYS (1) or _OPEN_EXISTING (2)"),
        )),
    }
}

/// Creates the segment `name` of `size` bytes (zero-filled) in `dir`
/// (NULL: `$MEMLANE_DIR`, else `/dev/shm`), owner read-write only, opened
/// read-write, and stores its handle in `*out`.
///
/// **Ownership:** `dir` and `name` are borrowed for the call. The handle
/// written to `*out` is yours: free it with [`memlane_segment_close`].
/// On failure `*out` is set to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER` (`name` or `out` NULL), `MEMLANE_INVALID_NAME`,
/// `MEMLANE_ALREADY_EXISTS`, `MEMLANE_NOT_FOUND` (no such `dir`),
/// `MEMLANE_PERMISSION_DENIED`, `MEMLANE_IO` (no space, an OS error).
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_create(
    dir: *const c_char,
    name: *const c_char,
    size: u64,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut builder = Segment::builder(name).size(size);
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        Ok(memlane_segment {
            seg: builder.create()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Creates the segment `name` of `size` bytes as a page-file-backed named
/// mapping on Windows (`Local\memlane.NAME`, the classic
/// `CreateFileMapping(INVALID_HANDLE_VALUE, ..)`): it exists only while
/// some process has it open, so it cannot be removed or listed by name;
/// [`memlane_segment_open`] finds it when no file has the name. On Linux
/// this is [`memlane_segment_create`] with the default directory:
/// `/dev/shm` is already memory (swap-backed).
///
/// **Ownership:** as for [`memlane_segment_create`].
///
/// # Errors
///
/// As [`memlane_segment_create`].
///
/// # Safety
///
/// `name` is a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_create_page_file(
    name: *const c_char,
    size: u64,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    let make = || {
        // SAFETY: a NUL-terminated string or NULL, by the contract.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        Ok(memlane_segment {
            seg: Segment::builder(name).size(size).page_file(true).create()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Like [`memlane_segment_create`], with the data kept in the file at
/// `path` (created or opened as `disposition` says, a
/// `MEMLANE_DISPOSITION_*`); the name in `dir` still finds it.
/// [`memlane_segment_flush`] writes it back to disk.
///
/// **Ownership:** as for [`memlane_segment_create`].
///
/// # Errors
///
/// As [`memlane_segment_create`], plus `MEMLANE_INVALID_ARGUMENT` for an
/// unknown disposition and the open errors for `OPEN_EXISTING`.
///
/// # Safety
///
/// `name` and `path`, and `dir` unless NULL, are NUL-terminated strings;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_create_file(
    dir: *const c_char,
    name: *const c_char,
    size: u64,
    path: *const c_char,
    disposition: u32,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        // SAFETY: as above.
        let path = unsafe { ffi::str_arg(path, "path") }?;
        let disposition = self::disposition(disposition)?;
        let mut builder = Segment::builder(name).size(size).file(path, disposition);
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        Ok(memlane_segment {
            seg: builder.create()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Opens the segment `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`) with `access` (a `MEMLANE_ACCESS_*`), the whole of it.
///
/// **Ownership:** as for [`memlane_segment_create`].
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_ARGUMENT` (unknown access),
/// `MEMLANE_INVALID_NAME`, `MEMLANE_NOT_FOUND`, `MEMLANE_WRONG_KIND` (the
/// name is an event, a channel…), `MEMLANE_PERMISSION_DENIED`,
/// `MEMLANE_INCOMPATIBLE`, `MEMLANE_BUSY` (still being created),
/// `MEMLANE_CORRUPT`, `MEMLANE_IO`.
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_open(
    dir: *const c_char,
    name: *const c_char,
    access: u32,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    // SAFETY: forwarded contract.
    unsafe { memlane_segment_open_view(dir, name, access, 0, 0, out) }
}

/// Like [`memlane_segment_open`], mapping only the view of `len` bytes at
/// `offset` of the segment (`len` 0: up to its end). Pointers and offsets
/// of the other functions are then relative to the view.
///
/// **Ownership:** as for [`memlane_segment_create`].
///
/// # Errors
///
/// As [`memlane_segment_open`], plus `MEMLANE_OUT_OF_BOUNDS` when the
/// view leaves the segment.
///
/// # Safety
///
/// As for [`memlane_segment_open`].
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_open_view(
    dir: *const c_char,
    name: *const c_char,
    access: u32,
    offset: u64,
    len: u64,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut options = Segment::open_options(name)
            .access(self::access(access)?)
            .view(offset, (len != 0).then_some(len));
        if let Some(dir) = dir {
            options = options.dir(dir);
        }
        Ok(memlane_segment {
            seg: options.open()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Opens a file-backed segment by the path of its file instead of its name.
///
/// **Ownership:** as for [`memlane_segment_create`].
///
/// # Errors
///
/// As [`memlane_segment_open`] (`MEMLANE_NOT_FOUND` when no file is at
/// `path`).
///
/// # Safety
///
/// `path` is a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_open_path(
    path: *const c_char,
    access: u32,
    out: *mut *mut memlane_segment,
) -> memlane_status {
    let make = || {
        // SAFETY: a NUL-terminated string or NULL, by the contract.
        let path = unsafe { ffi::str_arg(path, "path") }?;
        Ok(memlane_segment {
            seg: Segment::open_path(path.as_ref(), self::access(access)?)?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// The view's bytes in place: `*data` gets the address of its first byte,
/// `*len` its length (either may be NULL if not wanted).
///
/// **Ownership and lifetime:** the memory belongs to the mapping, not to
/// you: never free it. It stays valid until [`memlane_segment_close`] on
/// this handle; other processes may change it at any time (that is the
/// point of shared memory: synchronise with an event, a channel or your
/// own protocol). Writing through it faults on a read-only view: use
/// [`memlane_segment_data_mut`] to write.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER` if `seg` is NULL.
///
/// # Safety
///
/// `seg` is NULL or a live segment handle; `data` and `len` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_data(
    seg: *mut memlane_segment,
    data: *mut *const u8,
    len: *mut usize,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let seg = unsafe { ffi::handle(seg, "seg") }?;
        // SAFETY: NULL or writable, by the contract.
        unsafe {
            ffi::put_opt(data, seg.seg.as_ptr());
            ffi::put_opt(len, seg.seg.len());
        }
        Ok(())
    })
}

/// Like [`memlane_segment_data`], a writable address, for a view opened
/// read-write or copy-on-write.
///
/// **Ownership and lifetime:** as for [`memlane_segment_data`].
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_READ_ONLY` (then nothing is written).
///
/// # Safety
///
/// As for [`memlane_segment_data`].
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_data_mut(
    seg: *mut memlane_segment,
    data: *mut *mut u8,
    len: *mut usize,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let seg = unsafe { ffi::handle(seg, "seg") }?;
        let ptr = seg.seg.as_mut_ptr()?;
        // SAFETY: NULL or writable, by the contract.
        unsafe {
            ffi::put_opt(data, ptr);
            ffi::put_opt(len, seg.seg.len());
        }
        Ok(())
    })
}

/// Copies `len` bytes at `offset` of the view into `buf` (bounds-checked).
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_OUT_OF_BOUNDS`, `MEMLANE_CORRUPT` (the
/// file was truncated by another process: bytes past its end read as 0).
///
/// # Safety
///
/// `seg` is NULL or a live segment handle; `buf` is NULL or has `len`
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_read(
    seg: *mut memlane_segment,
    offset: usize,
    buf: *mut u8,
    len: usize,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let seg = unsafe { ffi::handle(seg, "seg") }?;
        // SAFETY: `len` writable bytes or NULL, by the contract.
        let buf = unsafe { ffi::buf_arg(buf, len, "buf") }?;
        Ok(seg.seg.read(offset, buf)?)
    })
}

/// Copies `len` bytes from `data` into the view at `offset`
/// (bounds-checked).
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_READ_ONLY`, `MEMLANE_OUT_OF_BOUNDS`,
/// `MEMLANE_CORRUPT` (truncated by another process).
///
/// # Safety
///
/// `seg` is NULL or a live segment handle; `data` is NULL or has `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_write(
    seg: *mut memlane_segment,
    offset: usize,
    data: *const u8,
    len: usize,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let seg = unsafe { ffi::handle(seg, "seg") }?;
        // SAFETY: `len` readable bytes or NULL, by the contract.
        let data = unsafe { ffi::bytes_arg(data, len, "data") }?;
        Ok(seg.seg.write(offset, data)?)
    })
}

/// Writes the whole view back to its file and waits for it (`msync`,
/// `FlushViewOfFile`); a no-op for copy-on-write views, harmless for
/// `/dev/shm`.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_IO`.
///
/// # Safety
///
/// `seg` is NULL or a live segment handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_flush(seg: *mut memlane_segment) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let seg = unsafe { ffi::handle(seg, "seg") }?;
        Ok(seg.seg.flush()?)
    })
}

/// Unmaps the segment and frees the handle; NULL is a no-op. Pointers from
/// [`memlane_segment_data`] die with it. The name stays (other processes
/// can still open it) until `memlane_remove`.
///
/// # Safety
///
/// `seg` is NULL or a live segment handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_segment_close(seg: *mut memlane_segment) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(seg) }
}
