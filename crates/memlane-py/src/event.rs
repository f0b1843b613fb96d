//! `memlane.Event`: a named cross-process "data ready" signal.

use std::path::PathBuf;

use memlane::Event;
use pyo3::prelude::*;

use crate::errors::{closed, ToPyErr};
use crate::wait::blocking;

/// A named cross-process event: ``notify()`` wakes every process waiting
/// in ``wait()``.
///
/// Each handle remembers the notifications it has seen: ``wait`` returns
/// at once if one arrived since the last ``wait`` that returned ``True``.
#[pyclass(module = "memlane", name = "Event")]
pub struct PyEvent {
    event: Option<Event>,
}

impl PyEvent {
    fn get(&mut self) -> PyResult<&mut Event> {
        self.event.as_mut().ok_or_else(|| closed("event"))
    }
}

#[pymethods]
impl PyEvent {
    /// Creates the event; ``AlreadyExists`` if the name is taken.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None, mode=None, page_file=false, replace_stale=false))]
    fn create(
        name: &str,
        dir: Option<PathBuf>,
        mode: Option<u32>,
        page_file: bool,
        replace_stale: bool,
    ) -> PyResult<PyEvent> {
        let mut b = Event::builder(name)
            .page_file(page_file)
            .replace_stale(replace_stale);
        if let Some(dir) = dir {
            b = b.dir(dir);
        }
        if let Some(mode) = mode {
            b = b.mode(mode);
        }
        Ok(PyEvent {
            event: Some(b.create().map_err(ToPyErr::py_err)?),
        })
    }

    /// Opens an existing event; ``NotFound`` if there is none.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None, allow_other_owner=false))]
    fn open(name: &str, dir: Option<PathBuf>, allow_other_owner: bool) -> PyResult<PyEvent> {
        let mut o = Event::open_options(name).allow_other_owner(allow_other_owner);
        if let Some(dir) = dir {
            o = o.dir(dir);
        }
        Ok(PyEvent {
            event: Some(o.open().map_err(ToPyErr::py_err)?),
        })
    }

    /// Removes the event's name.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None))]
    fn remove(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
        memlane::remove(dir.as_deref(), name).map_err(ToPyErr::py_err)
    }

    /// Wakes every waiter, in any process.
    fn notify(&mut self) -> PyResult<()> {
        self.get()?.notify();
        Ok(())
    }

    /// Waits for a notification this handle has not seen yet, at most
    /// ``timeout`` seconds (``None``: no limit); returns whether one came.
    /// Releases the GIL; Ctrl-C raises ``KeyboardInterrupt``.
    #[pyo3(signature = (timeout=None))]
    fn wait(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let event = self.get()?;
        let got = blocking(py, timeout, |slice| event.wait_timeout(slice).then_some(()))?;
        Ok(got.is_some())
    }

    /// The number of notifications so far (wraps around).
    #[getter]
    fn count(&mut self) -> PyResult<u32> {
        Ok(self.get()?.count())
    }

    /// The event's name.
    #[getter]
    fn name(&mut self) -> PyResult<String> {
        Ok(self.get()?.name().to_owned())
    }

    /// Closes this handle (the name stays).
    fn close(&mut self) {
        self.event = None;
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }
}
