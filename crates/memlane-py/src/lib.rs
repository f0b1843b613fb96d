//! The `memlane` Python package's native module (`memlane._memlane`),
//! built with PyO3 and maturin: `Segment`, `Event`, `Channel` (with
//! `Publisher`, `Subscriber`, `Message`, `Loan`) and `Latest`, wrapping
//! the Rust library. The pure-Python part of the package
//! (`python/memlane/`) re-exports them and defines the exception classes
//! (`memlane.errors`). The asyncio methods (`recv_async`, `send_async`,
//! `wait_async`, `async for`) are PyO3 coroutines over the library's
//! futures (`aio.rs`).
//!
//! Unsafe code here is the buffer protocol (filling `Py_buffer`s over
//! shared memory, reading exported buffers) and the endpoint/loan pairs
//! of `channel.rs`, each block with its justification.

#![deny(unsafe_code)]

// `unsafe` only where the buffer protocol and the borrowed endpoints need
// it (each block says why); the other modules deny it.
mod aio;
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
    m.add("reactor_threads", wrap_pyfunction!(reactor_threads, m)?)?;
    Ok(())
}

/// The directory segments are created in by default: ``$MEMLANE_DIR`` if
/// set, else ``/dev/shm``.
#[pyfunction]
fn default_dir() -> std::path::PathBuf {
    memlane::default_dir()
}

/// The threads memlane's reactor runs in this process for the asyncio
/// methods, as ``(threads, multi)``: ``threads`` is 0 until the first
/// awaiting call and then 1 per 127 distinct channels (slots) awaited on;
/// ``multi`` says whether each sleeps on many of them at once
/// (``futex_waitv``, Linux 5.16+) rather than on one each.
#[pyfunction]
fn reactor_threads() -> (usize, bool) {
    memlane::reactor_threads()
}
