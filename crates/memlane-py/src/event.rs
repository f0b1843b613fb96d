//! `memlane.Event`: a named cross-process "data ready" signal.

use std::path::PathBuf;

use memlane::Event;
use pyo3::prelude::*;

use crate::aio::{ready_before, Awaiting, Lent, Timer};
use crate::errors::{closed, ToPyErr};
use crate::wait::blocking;

/// A named cross-process event: ``notify()`` wakes every process waiting
/// in ``wait()``.
///
/// Each handle remembers the notifications it has seen: ``wait`` returns
/// at once if one arrived since the last ``wait`` that returned ``True``
/// (``await event.wait_async()`` in asyncio code).
#[pyclass(module = "memlane", name = "Event")]
pub struct PyEvent {
    /// `None` after `close()`, and while `wait_async` has it.
    event: Option<Event>,
    /// Set while `wait_async` is pending (it holds the event).
    awaiting: Awaiting,
}

impl PyEvent {
    fn new(event: Event) -> PyEvent {
        PyEvent {
            event: Some(event),
            awaiting: Awaiting::default(),
        }
    }

    fn get(&mut self) -> PyResult<&mut Event> {
        self.awaiting.check("event")?;
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
        Ok(PyEvent::new(b.create().map_err(ToPyErr::py_err)?))
    }

    /// Opens an existing event; ``NotFound`` if there is none.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None, allow_other_owner=false))]
    fn open(name: &str, dir: Option<PathBuf>, allow_other_owner: bool) -> PyResult<PyEvent> {
        let mut o = Event::open_options(name).allow_other_owner(allow_other_owner);
        if let Some(dir) = dir {
            o = o.dir(dir);
        }
        Ok(PyEvent::new(o.open().map_err(ToPyErr::py_err)?))
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

    /// ``wait`` in asyncio code: ``await event.wait_async(timeout=None)``
    /// waits, without blocking the event loop, for a notification this
    /// handle has not seen yet, at most ``timeout`` seconds; returns
    /// whether one came. Cancelling it takes no notification; the handle's
    /// other methods raise ``Busy`` while it is pending.
    #[pyo3(signature = (timeout=None))]
    async fn wait_async(slf: Py<Self>, timeout: Option<f64>) -> PyResult<bool> {
        let timer = Timer::new(timeout)?;
        let mut lent = Python::attach(|py| -> PyResult<_> {
            let mut this = slf.bind(py).try_borrow_mut()?;
            this.get()?;
            let guard = this.awaiting.start("event")?;
            let owner = slf.clone_ref(py);
            Ok(Lent::new(this.event.take(), guard, move |py, event| {
                // As for `Latest.wait_async`: every other method refuses
                // the object meanwhile, so the borrow is free.
                if let Ok(mut owner) = owner.bind(py).try_borrow_mut() {
                    owner.event = event;
                }
            }))
        })?;
        let Some(event) = lent.item.as_mut() else {
            return Ok(false);
        };
        ready_before(event.wait_async(), timer).await
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

    /// Closes this handle (the name stays); ``Busy`` while ``wait_async``
    /// is pending.
    fn close(&mut self) -> PyResult<()> {
        self.awaiting.check("event")?;
        self.event = None;
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close()
    }
}
