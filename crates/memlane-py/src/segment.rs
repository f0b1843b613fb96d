//! `memlane.Segment`: a named shared-memory region with the buffer
//! protocol (zero-copy `memoryview(seg)`, `numpy.frombuffer(seg, ...)`).

use std::ffi::c_int;
use std::path::PathBuf;

use memlane::{Access, Segment};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffer::{self, Bytes, Views};
use crate::errors::{closed, ToPyErr};

/// `"ro"`, `"rw"` or `"cow"` as an [`Access`].
fn parse_access(access: &str) -> PyResult<Access> {
    match access {
        "ro" | "r" => Ok(Access::ReadOnly),
        "rw" => Ok(Access::ReadWrite),
        "cow" => Ok(Access::CopyOnWrite),
        other => Err(PyValueError::new_err(format!(
            "access must be 'ro' (read-only), 'rw' (read-write) or 'cow' (private copy-on-write), not {other:?}"
        ))),
    }
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::ReadOnly => "ro",
        Access::CopyOnWrite => "cow",
        _ => "rw",
    }
}

/// A named shared-memory segment mapped into this process.
///
/// Create one with ``Segment.create(name, size)``, open it elsewhere with
/// ``Segment.open(name, access="rw")``. The segment supports the buffer
/// protocol: ``memoryview(seg)`` and ``numpy.frombuffer(seg, dtype)`` see
/// the shared bytes themselves (no copy), writable unless opened
/// read-only. Other processes may change them at any time.
///
/// ``close()`` (or leaving a ``with`` block) unmaps it; it fails with
/// ``BufferError`` while a buffer exported from it (a memoryview, a numpy
/// array) is still alive, except the ones made by ``seg.view``, which are
/// released.
#[pyclass(module = "memlane", name = "Segment")]
pub struct PySegment {
    seg: Option<Segment>,
    exports: usize,
    views: Views,
}

impl PySegment {
    fn seg(&self) -> PyResult<&Segment> {
        self.seg.as_ref().ok_or_else(|| closed("segment"))
    }

    fn seg_mut(&mut self) -> PyResult<&mut Segment> {
        self.seg.as_mut().ok_or_else(|| closed("segment"))
    }

    fn wrap(seg: Segment) -> PySegment {
        PySegment {
            seg: Some(seg),
            exports: 0,
            views: Views::default(),
        }
    }
}

#[pymethods]
impl PySegment {
    /// Creates a segment of ``size`` bytes (zero-filled), failing with
    /// ``AlreadyExists`` if the name is taken.
    #[staticmethod]
    #[pyo3(signature = (name, size, *, dir=None, mode=None, page_file=false, replace_stale=false))]
    fn create(
        py: Python<'_>,
        name: &str,
        size: u64,
        dir: Option<PathBuf>,
        mode: Option<u32>,
        page_file: bool,
        replace_stale: bool,
    ) -> PyResult<PySegment> {
        let mut b = Segment::builder(name)
            .size(size)
            .page_file(page_file)
            .replace_stale(replace_stale);
        if let Some(dir) = dir {
            b = b.dir(dir);
        }
        if let Some(mode) = mode {
            b = b.mode(mode);
        }
        let seg = py.detach(|| b.create()).map_err(ToPyErr::py_err)?;
        Ok(PySegment::wrap(seg))
    }

    /// Opens an existing segment: ``access`` is ``"rw"`` (read-write,
    /// shared), ``"ro"`` (read-only) or ``"cow"`` (private copy-on-write);
    /// ``offset``/``length`` map only part of it.
    #[staticmethod]
    #[pyo3(signature = (name, access="rw", *, dir=None, allow_other_owner=false, offset=0, length=None))]
    fn open(
        py: Python<'_>,
        name: &str,
        access: &str,
        dir: Option<PathBuf>,
        allow_other_owner: bool,
        offset: u64,
        length: Option<u64>,
    ) -> PyResult<PySegment> {
        let mut o = Segment::open_options(name)
            .access(parse_access(access)?)
            .allow_other_owner(allow_other_owner);
        if offset != 0 || length.is_some() {
            o = o.view(offset, length);
        }
        if let Some(dir) = dir {
            o = o.dir(dir);
        }
        let seg = py.detach(|| o.open()).map_err(ToPyErr::py_err)?;
        Ok(PySegment::wrap(seg))
    }

    /// Removes the segment's name (processes that have it open keep their
    /// mapping); ``NotFound`` if there is none.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None))]
    fn remove(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
        memlane::remove(dir.as_deref(), name).map_err(ToPyErr::py_err)
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.seg()?.name().to_owned())
    }

    /// The segment's file.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.seg()?.path().to_path_buf())
    }

    /// ``"ro"``, ``"rw"`` or ``"cow"``.
    #[getter]
    fn access(&self) -> PyResult<&'static str> {
        Ok(access_name(self.seg()?.access()))
    }

    /// Where the mapped view starts in the segment.
    #[getter]
    fn view_offset(&self) -> PyResult<u64> {
        Ok(self.seg()?.view_offset())
    }

    /// The whole segment's size (the view may be shorter).
    #[getter]
    fn segment_len(&self) -> PyResult<u64> {
        Ok(self.seg()?.segment_len())
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.seg.is_none()
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.seg()?.len())
    }

    /// Copies ``size`` bytes (default: up to the end) at ``offset`` out.
    #[pyo3(signature = (offset=0, size=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: usize,
        size: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let seg = self.seg()?;
        let size = match size {
            Some(s) => s,
            None => seg.len().checked_sub(offset).ok_or_else(|| {
                crate::errors::OutOfBounds::new_err(format!(
                    "offset {offset} lies outside the view of {} bytes",
                    seg.len()
                ))
            })?,
        };
        let bytes = seg.read_vec(offset, size).map_err(ToPyErr::py_err)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Copies ``data`` (any contiguous buffer) in at ``offset``.
    fn write(&mut self, offset: usize, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = Bytes::get(data)?;
        self.seg_mut()?
            .write(offset, data.as_slice())
            .map_err(ToPyErr::py_err)
    }

    /// Flushes a file-backed segment's changes to its file (``msync``).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let seg = self.seg()?;
        py.detach(|| seg.flush()).map_err(ToPyErr::py_err)
    }

    /// A memoryview of the whole mapped view (zero-copy; writable unless
    /// read-only), released by ``close()``.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let mut views = std::mem::take(&mut slf.try_borrow_mut()?.views);
        let view = views.make(slf.as_any());
        slf.try_borrow_mut()?.views = views;
        view
    }

    /// Unmaps the segment (the name stays: see ``Segment.remove``).
    /// ``BufferError`` while buffers exported from it are alive.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut views = std::mem::take(&mut slf.try_borrow_mut()?.views);
        let released = views.release_all(py);
        let mut this = slf.try_borrow_mut()?;
        this.views = views;
        released?;
        if this.exports != 0 {
            return Err(PyBufferError::new_err(format!(
                "{} buffer(s) exported from this segment are still alive (memoryviews, numpy arrays): release them first (memoryview.release(), del)",
                this.exports
            )));
        }
        this.seg = None;
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(slf: &Bound<'_, Self>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        PySegment::close(slf)
    }

    fn __repr__(&self) -> String {
        match &self.seg {
            Some(s) => format!(
                "<memlane.Segment name={:?} len={} access={:?}>",
                s.name(),
                s.len(),
                access_name(s.access())
            ),
            None => "<memlane.Segment closed>".to_owned(),
        }
    }

    /// # Safety
    ///
    /// Called by Python with a `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let mut this = slf.try_borrow_mut()?;
        let seg = this.seg_mut()?;
        let len = seg.len();
        let (ptr, readonly) = match seg.as_mut_ptr() {
            Ok(p) => (p, false),
            Err(_) => (seg.as_ptr().cast_mut(), true),
        };
        // SAFETY: the mapping lives while the segment is open, and `close`
        // refuses while `exports` is not zero; a read-only mapping is
        // exported read-only (writes would fault).
        unsafe { buffer::fill(slf.as_any(), view, flags, ptr, len, readonly)? };
        this.exports += 1;
        Ok(())
    }

    /// # Safety
    ///
    /// Called by Python once per filled `Py_buffer`.
    unsafe fn __releasebuffer__(&mut self, _view: *mut ffi::Py_buffer) {
        self.exports = self.exports.saturating_sub(1);
    }
}
