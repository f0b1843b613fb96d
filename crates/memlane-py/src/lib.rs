//! The `memlane` Python package's native module (`memlane._memlane`),
//! built with PyO3 and maturin: `Segment`, `Event`, `Channel` (with
//! `Publisher`, `Subscriber`, `Message`, `Loan`) and `Latest`, wrapping
//! the Rust library. The pure-Python part of the package
//! (`python/memlane/`) re-exports them and defines the exception classes
//! (`memlane.errors`).
//!
//! Unsafe code here is the buffer protocol (filling `Py_buffer`s over
//! shared memory, reading exported buffers) and the endpoint/loan pairs
//! of `channel.rs`, each block with its justification.

#![deny(unsafe_code)]

// `unsafe` only where the buffer protocol and the borrowed endpoints need
// it (each block says why); the other modules deny it.
#[allow(unsafe_code)]
mod buffer;
#[allow(unsafe_code)]
mod channel;
mod errors;
mod event;
mod latest;
#[allow(unsafe_code)]
mod segment;
mod wait;

use pyo3::prelude::*;

/// The native part of the `memlane` package.
#[pymodule]
fn _memlane(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<segment::PySegment>()?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<latest::PyLatest>()?;
    m.add_class::<channel::PyChannel>()?;
    m.add_class::<channel::PyPublisher>()?;
    m.add_class::<channel::PySubscriber>()?;
    m.add_class::<channel::PyMessage>()?;
    m.add_class::<channel::PyLoan>()?;
    m.add("DEFAULT_CAPACITY", memlane::DEFAULT_CAPACITY)?;
    m.add("DEFAULT_MAX_MESSAGE", memlane::DEFAULT_MAX_MESSAGE)?;
    m.add("default_dir", wrap_pyfunction!(default_dir, m)?)?;
    Ok(())
}

/// The directory segments are created in by default: ``$MEMLANE_DIR`` if
/// set, else ``/dev/shm``.
#[pyfunction]
fn default_dir() -> std::path::PathBuf {
    memlane::default_dir()
}
