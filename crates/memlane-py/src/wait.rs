//! Blocking calls: the GIL released, the wait cut into slices so that
//! Ctrl-C (and any other signal handler) runs between them.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest stretch spent without the GIL before signals are checked:
/// Ctrl-C raises `KeyboardInterrupt` at most this long after it arrives
/// (plus the time to take the GIL back).
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A timeout in seconds (`None`: no limit) as a deadline.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be None or a number of seconds >= 0, not {t}"
        ))),
        // Very long timeouts (inf included) wait without a limit.
        Some(t) => Ok(Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))),
    }
}

/// Runs `step` with the GIL released, each time for a slice of at most
/// [`SLICE`] (zero once the deadline is reached, so a zero timeout still
/// makes one attempt), until it returns `Some`; between slices it checks
/// for signals (so `KeyboardInterrupt` propagates). `Ok(None)` when the
/// timeout (seconds; `None`: none) passes first.
pub(crate) fn blocking<T: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut step: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let deadline = deadline(timeout)?;
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(done) = py.detach(|| step(slice)) {
            return Ok(Some(done));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
