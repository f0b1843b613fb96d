//! `memlane.Latest`: a named slot holding the newest value of something.

use std::path::PathBuf;

use memlane::Latest;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::aio::{ready_before, Awaiting, Lent, Timer};
use crate::buffer::Bytes;
use crate::errors::{closed, ToPyErr};
use crate::wait::blocking;

/// A named latest-value slot: writers ``set`` (never waiting), readers
/// ``get`` a copy of the newest complete value (never torn) or ``wait``
/// for a newer one (``await latest.wait_async()`` in asyncio code).
#[pyclass(module = "memlane", name = "Latest")]
pub struct PyLatest {
    /// `None` after `close()`, and while `wait_async` has it.
    slot: Option<Latest>,
    /// Set while `wait_async` is pending (it holds the slot).
    awaiting: Awaiting,
}

impl PyLatest {
    fn new(slot: Latest) -> PyLatest {
        PyLatest {
            slot: Some(slot),
            awaiting: Awaiting::default(),
        }
    }

    fn get_slot(&mut self) -> PyResult<&mut Latest> {
        self.awaiting.check("latest-value slot")?;
        self.slot
            .as_mut()
            .ok_or_else(|| closed("latest-value slot"))
    }
}

#[pymethods]
impl PyLatest {
    /// Creates a slot for values of up to ``max_value`` bytes.
    #[staticmethod]
    #[pyo3(signature = (name, max_value=None, *, max_writers=None, dir=None, mode=None, page_file=false, replace_stale=false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        name: &str,
        max_value: Option<usize>,
        max_writers: Option<u32>,
        dir: Option<PathBuf>,
        mode: Option<u32>,
        page_file: bool,
        replace_stale: bool,
    ) -> PyResult<PyLatest> {
        let mut b = Latest::builder(name)
            .page_file(page_file)
            .replace_stale(replace_stale);
        if let Some(m) = max_value {
            b = b.max_value(m);
        }
        if let Some(n) = max_writers {
            b = b.max_writers(n);
        }
        if let Some(dir) = dir {
            b = b.dir(dir);
        }
        if let Some(mode) = mode {
            b = b.mode(mode);
        }
        Ok(PyLatest::new(b.create().map_err(ToPyErr::py_err)?))
    }

    /// Opens an existing slot.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None, allow_other_owner=false))]
    fn open(name: &str, dir: Option<PathBuf>, allow_other_owner: bool) -> PyResult<PyLatest> {
        let mut o = Latest::open_options(name).allow_other_owner(allow_other_owner);
        if let Some(dir) = dir {
            o = o.dir(dir);
        }
        Ok(PyLatest::new(o.open().map_err(ToPyErr::py_err)?))
    }

    /// Removes the slot's name.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None))]
    fn remove(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
        memlane::remove(dir.as_deref(), name).map_err(ToPyErr::py_err)
    }

    /// Publishes ``value`` (any contiguous buffer) as the newest; returns
    /// its version. ``TooLarge`` over ``max_value``.
    fn set(&mut self, value: &Bound<'_, PyAny>) -> PyResult<u64> {
        let value = Bytes::get(value)?;
        self.get_slot()?
            .set(value.as_slice())
            .map_err(ToPyErr::py_err)
    }

    /// The newest value as ``(version, bytes)``, or ``None`` while nothing
    /// was set; marks it seen.
    fn get<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyBytes>)>> {
        let value = self.get_slot()?.get().map_err(ToPyErr::py_err)?;
        Ok(value.map(|v| (v.version(), PyBytes::new(py, v.bytes()))))
    }

    /// Waits until a value newer than the last one read is there, at most
    /// ``timeout`` seconds; returns whether one is. Releases the GIL;
    /// Ctrl-C raises ``KeyboardInterrupt``.
    #[pyo3(signature = (timeout=None))]
    fn wait(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let slot = self.get_slot()?;
        Ok(blocking(py, timeout, |slice| slot.wait_timeout(slice).then_some(()))?.is_some())
    }

    /// ``wait`` in asyncio code: ``await latest.wait_async(timeout=None)``
    /// waits, without blocking the event loop, until a value newer than
    /// the last one read is there, at most ``timeout`` seconds; returns
    /// whether one is. Reads nothing (cancelling it loses nothing); the
    /// handle's other methods raise ``Busy`` while it is pending.
    #[pyo3(signature = (timeout=None))]
    async fn wait_async(slf: Py<Self>, timeout: Option<f64>) -> PyResult<bool> {
        let timer = Timer::new(timeout)?;
        let mut lent = Python::attach(|py| -> PyResult<_> {
            let mut this = slf.bind(py).try_borrow_mut()?;
            this.get_slot()?;
            let guard = this.awaiting.start("latest-value slot")?;
            let owner = slf.clone_ref(py);
            Ok(Lent::new(this.slot.take(), guard, move |py, slot| {
                // The flag makes every other method refuse the object, so
                // nothing holds a borrow across this (if something did, the
                // handle would be left closed rather than aliased).
                if let Ok(mut owner) = owner.bind(py).try_borrow_mut() {
                    owner.slot = slot;
                }
            }))
        })?;
        let Some(slot) = lent.item.as_mut() else {
            return Ok(false);
        };
        ready_before(slot.wait_async(), timer).await
    }

    /// The newest version (0 while nothing was set).
    #[getter]
    fn version(&mut self) -> PyResult<u64> {
        Ok(self.get_slot()?.version())
    }

    /// Whether a value newer than the last one read is there.
    fn has_changed(&mut self) -> PyResult<bool> {
        Ok(self.get_slot()?.has_changed())
    }

    /// The largest value, in bytes.
    #[getter]
    fn max_value(&mut self) -> PyResult<usize> {
        Ok(self.get_slot()?.max_value())
    }

    /// The slot's name.
    #[getter]
    fn name(&mut self) -> PyResult<String> {
        Ok(self.get_slot()?.name().to_owned())
    }

    /// The slot's file.
    #[getter]
    fn path(&mut self) -> PyResult<PathBuf> {
        Ok(self.get_slot()?.path().to_path_buf())
    }

    /// Closes this handle (its writer slot is freed; the name stays).
    /// ``Busy`` while ``wait_async`` is pending.
    fn close(&mut self) -> PyResult<()> {
        self.awaiting.check("latest-value slot")?;
        self.slot = None;
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
