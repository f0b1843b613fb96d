//! asyncio support: what the `async fn` methods (`Subscriber.recv_async`,
//! `Publisher.send_async`, `Latest.wait_async`, `async for`) share.
//!
//! The methods are PyO3 coroutines (feature `experimental-async`) around
//! the library's runtime-agnostic futures. While a future is pending, the
//! library's reactor thread sleeps on the channel's (slot's) wake-up word;
//! when the word moves it calls the task's `Waker`, which PyO3 implements
//! as `loop.call_soon_threadsafe(release_waiter, fut)` on the loop that
//! awaited (`release_waiter` sets the asyncio future's result unless it is
//! already done or cancelled). So no thread per awaiting call and no
//! polling while idle. See docs/BINDINGS.md, "asyncio".
//!
//! This module adds the two things the library's futures do not have: a
//! timeout (an asyncio timer, [`Timer`]) and the "one operation at a
//! time" flag of an endpoint ([`Awaiting`]).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

use crate::errors::Busy;

/// A timeout for an awaiting call: expired once its deadline passed;
/// until then it keeps an asyncio timer (`loop.call_later`) that wakes
/// the task at the deadline. Cancelled when dropped.
pub(crate) struct Timer {
    at: Option<Instant>,
    /// The `TimerHandle` of `loop.call_later`, once armed.
    handle: Option<Py<PyAny>>,
    /// The waker of the task's latest poll (PyO3 gives a new one for
    /// each), taken by the timer's callback.
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Timer {
    /// A timer for `timeout` seconds from now (`None`: never expires).
    pub(crate) fn new(timeout: Option<f64>) -> PyResult<Timer> {
        Ok(Timer {
            at: crate::wait::deadline(timeout)?,
            handle: None,
            waker: Arc::new(Mutex::new(None)),
        })
    }

    /// Whether the deadline has passed. If not, the task (`cx`) is woken
    /// at the deadline by the running loop's timer.
    pub(crate) fn expired(&mut self, py: Python<'_>, cx: &Context<'_>) -> PyResult<bool> {
        let Some(at) = self.at else {
            return Ok(false);
        };
        let now = Instant::now();
        if now >= at {
            return Ok(true);
        }
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if self.handle.is_none() {
            let waker = self.waker.clone();
            let callback =
                PyCFunction::new_closure(py, None, None, move |_args, _kwargs| -> PyResult<()> {
                    let w = waker.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(w) = w {
                        w.wake();
                    }
                    Ok(())
                })?;
            let event_loop = py
                .import(intern!(py, "asyncio"))?
                .call_method0(intern!(py, "get_running_loop"))?;
            let secs = (at - now).as_secs_f64();
            let handle = event_loop.call_method1(intern!(py, "call_later"), (secs, callback))?;
            self.handle = Some(handle.unbind());
        }
        Ok(false)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            Python::attach(|py| {
                // A loop already closed has nothing to cancel.
                let _ = handle.bind(py).call_method0(intern!(py, "cancel"));
            });
        }
    }
}

/// Marks an endpoint as used by an awaiting call: while set, its other
/// methods (and a second awaiting call) raise `Busy` instead of touching
/// the Rust endpoint the pending future borrows.
#[derive(Clone, Default)]
pub(crate) struct Awaiting(Arc<AtomicBool>);

impl Awaiting {
    /// `Busy` while an awaiting call is pending.
    pub(crate) fn check(&self, what: &str) -> PyResult<()> {
        if self.0.load(Ordering::Acquire) {
            return Err(Busy::new_err(format!(
                "an awaiting call (recv_async, send_async, wait_async, async for) on this {what} is pending: await it (or cancel its task) first"
            )));
        }
        Ok(())
    }

    /// Marks the endpoint used until the guard is dropped; `Busy` if it
    /// already is.
    pub(crate) fn start(&self, what: &str) -> PyResult<AwaitGuard> {
        self.check(what)?;
        self.0.store(true, Ordering::Release);
        Ok(AwaitGuard(self.0.clone()))
    }
}

/// Clears the [`Awaiting`] flag when dropped (the call completed, failed,
/// or its task was cancelled). Declared before the library future it
/// guards, so that it drops after it.
pub(crate) struct AwaitGuard(Arc<AtomicBool>);

impl Drop for AwaitGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What gives a lent object back to its Python object (see [`Lent`]).
type GiveBack<T> = Box<dyn FnOnce(Python<'_>, Option<T>) + Send>;

/// A handle's Rust object lent to its pending awaiting call, given back to
/// the Python object when dropped (the call completed, failed or was
/// cancelled) by `give_back`.
pub(crate) struct Lent<T> {
    pub(crate) item: Option<T>,
    give_back: Option<GiveBack<T>>,
    /// Dropped after the item is back.
    _guard: AwaitGuard,
}

impl<T> Lent<T> {
    pub(crate) fn new(
        item: Option<T>,
        guard: AwaitGuard,
        give_back: impl FnOnce(Python<'_>, Option<T>) + Send + 'static,
    ) -> Lent<T> {
        Lent {
            item,
            give_back: Some(Box::new(give_back)),
            _guard: guard,
        }
    }
}

impl<T> Drop for Lent<T> {
    fn drop(&mut self) {
        if let Some(give_back) = self.give_back.take() {
            let item = self.item.take();
            Python::attach(|py| give_back(py, item));
        }
    }
}

/// Waits for `fut` or for `timer` to expire, whichever comes first: true
/// if `fut` completed (the awaiting `wait_async`s of `Event` and `Latest`).
pub(crate) async fn ready_before(
    fut: impl Future<Output = ()>,
    mut timer: Timer,
) -> PyResult<bool> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if fut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(true));
        }
        Python::attach(|py| match timer.expired(py, cx) {
            Ok(false) => Poll::Pending,
            Ok(true) => Poll::Ready(Ok(false)),
            Err(e) => Poll::Ready(Err(e)),
        })
    })
    .await
}
