//! The buffer protocol both ways: memoryviews this module hands out over
//! shared memory (tracked so they can be released when the memory they
//! show is given back), and the bytes of any contiguous Python buffer.

use std::ffi::c_int;

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyMemoryView, PyWeakrefReference};

/// Memoryviews made by this module over one exporter's memory, kept as
/// weak references so that they can be released (made unusable) when the
/// memory goes back to its owner: a released memoryview raises
/// `ValueError` instead of showing bytes that belong to someone else.
#[derive(Default)]
pub(crate) struct Views {
    views: Vec<Py<PyWeakrefReference>>,
}

impl Views {
    /// A new memoryview of `exporter` (through its `__getbuffer__`),
    /// remembered for [`release_all`](Self::release_all).
    pub(crate) fn make<'py>(
        &mut self,
        exporter: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let view = PyMemoryView::from(exporter)?.into_any();
        self.views
            .retain(|w| w.bind(exporter.py()).upgrade().is_some());
        self.views.push(PyWeakrefReference::new(&view)?.unbind());
        Ok(view)
    }

    /// Releases every memoryview made by [`make`](Self::make) that is
    /// still alive. Fails with `BufferError` if one is itself exported
    /// (a numpy array made from it, say): the caller must then keep the
    /// memory.
    pub(crate) fn release_all(&mut self, py: Python<'_>) -> PyResult<()> {
        while let Some(weak) = self.views.pop() {
            if let Some(view) = weak.bind(py).upgrade() {
                if let Err(e) = view.call_method0("release") {
                    self.views.push(weak);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

use pyo3::types::PyWeakrefMethods;

/// Fills `view` for `len` bytes at `ptr`, exported by `owner`.
///
/// # Safety
///
/// `view` is the `Py_buffer` handed to `__getbuffer__`; `ptr` is valid for
/// `len` bytes (writable unless `readonly`) until `owner`'s
/// `__releasebuffer__` runs for this view.
pub(crate) unsafe fn fill(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
    ptr: *mut u8,
    len: usize,
    readonly: bool,
) -> PyResult<()> {
    if readonly && flags & ffi::PyBUF_WRITABLE != 0 {
        return Err(PyBufferError::new_err(
            "this memory is read-only: it cannot be exported as a writable buffer",
        ));
    }
    let len = isize::try_from(len).map_err(|_| PyBufferError::new_err("buffer too large"))?;
    // SAFETY: `view` is a valid Py_buffer to fill (the caller's contract);
    // PyBuffer_FillInfo takes a new reference to `owner` for `view.obj`,
    // and `ptr` stays valid for `len` bytes until the view is released.
    let rc = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            ptr.cast(),
            len,
            c_int::from(readonly),
            flags,
        )
    };
    if rc != 0 {
        return Err(PyErr::fetch(owner.py()));
    }
    Ok(())
}

/// The bytes of a contiguous Python buffer (bytes, bytearray,
/// memoryview, a C-contiguous numpy array, mmap, array.array…), exported
/// for as long as this value lives.
pub(crate) struct Bytes {
    buf: PyUntypedBuffer,
}

impl Bytes {
    /// Exports `obj`'s buffer.
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
        let buf = PyUntypedBuffer::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(PyBufferError::new_err(
                "the buffer is not contiguous: pass a contiguous copy (numpy.ascontiguousarray, bytes(...))",
            ));
        }
        Ok(Bytes { buf })
    }

    /// The bytes. While the GIL is released another Python thread could
    /// change them (as for `os.write` on a `bytearray`); the exporter
    /// keeps them in place (a `bytearray` cannot be resized while
    /// exported).
    pub(crate) fn as_slice(&self) -> &[u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: the buffer is exported (so valid, and not moved nor
        // freed) as long as `self.buf` lives, C-contiguous (checked in
        // `get`), and `len_bytes` long.
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr().cast::<u8>(), len) }
    }
}
