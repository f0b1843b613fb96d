//! `memlane.Channel`, `Publisher`, `Subscriber`, `Message` and `Loan`.
//!
//! A Rust [`Message`] and [`Loan`] borrow their subscriber or publisher;
//! a Python object cannot carry that borrow. So, as in the C bindings,
//! the Python subscriber (publisher) owns its Rust endpoint through a raw
//! pointer and keeps the one outstanding message (loan) next to it with a
//! `'static` lifetime; the Python `Message` (`Loan`) object names it by a
//! generation number and keeps the endpoint's Python object alive. The
//! message is released (the loan committed or discarded) explicitly, at
//! the end of its `with` block, or at the next receive (loan); each time,
//! memoryviews handed out over it are released first, and the release is
//! refused with `BufferError` while other buffers exported from it live.

use std::ffi::c_int;
use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use memlane::{
    Channel, Loan, Message, Publisher, RecvTimeoutError, SendTimeoutError, Subscriber,
    TryRecvError, TrySendError,
};
use pyo3::exceptions::{PyBufferError, PyStopAsyncIteration};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::aio::{Awaiting, Timer};
use crate::buffer::{self, Bytes, Views};
use crate::errors::{closed, Busy, Disconnected, Timeout, ToPyErr};
use crate::wait::blocking;

/// A raw endpoint pointer moved into a closure that runs without the GIL.
struct SendPtr<T>(NonNull<T>);

// SAFETY: the pointee (Publisher, Subscriber) is Send; the pointer is
// used only by the thread that holds the owning Python object's mutable
// borrow.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above: shared only with the closure of the thread that
// holds the borrow.
unsafe impl<T: Sync> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole wrapper).
    fn get(&self) -> *mut T {
        self.0.as_ptr()
    }
}

/// A named channel: make publishers and subscribers from it.
///
/// ``Channel.create(name)`` makes one (``AlreadyExists`` if the name is
/// taken), ``Channel.open(name)`` opens it from another process. Its
/// publishers and subscribers keep working after it is closed.
#[pyclass(module = "memlane", name = "Channel")]
pub struct PyChannel {
    channel: Option<Channel>,
}

impl PyChannel {
    fn get(&self) -> PyResult<&Channel> {
        self.channel.as_ref().ok_or_else(|| closed("channel"))
    }
}

#[pymethods]
impl PyChannel {
    /// Creates a channel. ``capacity`` (ring bytes, a power of two),
    /// ``max_message`` (bytes), ``max_publishers``/``max_subscribers``
    /// default to the library's defaults.
    #[staticmethod]
    #[pyo3(signature = (name, *, capacity=None, max_message=None, max_publishers=None, max_subscribers=None, dir=None, mode=None, copy_messages=None, membarrier=None, page_file=false, replace_stale=false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        name: &str,
        capacity: Option<u64>,
        max_message: Option<usize>,
        max_publishers: Option<u32>,
        max_subscribers: Option<u32>,
        dir: Option<PathBuf>,
        mode: Option<u32>,
        copy_messages: Option<bool>,
        membarrier: Option<bool>,
        page_file: bool,
        replace_stale: bool,
    ) -> PyResult<PyChannel> {
        let mut b = Channel::builder(name)
            .page_file(page_file)
            .replace_stale(replace_stale);
        if let Some(c) = capacity {
            b = b.capacity(c);
        }
        if let Some(m) = max_message {
            b = b.max_message(m);
        }
        if let Some(n) = max_publishers {
            b = b.max_publishers(n);
        }
        if let Some(n) = max_subscribers {
            b = b.max_subscribers(n);
        }
        if let Some(dir) = dir {
            b = b.dir(dir);
        }
        if let Some(mode) = mode {
            b = b.mode(mode);
        }
        if let Some(copy) = copy_messages {
            b = b.copy_messages(copy);
        }
        if let Some(on) = membarrier {
            b = b.membarrier(on);
        }
        let channel = py.detach(|| b.create()).map_err(ToPyErr::py_err)?;
        Ok(PyChannel {
            channel: Some(channel),
        })
    }

    /// Opens an existing channel; ``NotFound`` if there is none.
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None, allow_other_owner=false, copy_messages=None))]
    fn open(
        py: Python<'_>,
        name: &str,
        dir: Option<PathBuf>,
        allow_other_owner: bool,
        copy_messages: Option<bool>,
    ) -> PyResult<PyChannel> {
        let mut o = Channel::open_options(name).allow_other_owner(allow_other_owner);
        if let Some(dir) = dir {
            o = o.dir(dir);
        }
        if let Some(copy) = copy_messages {
            o = o.copy_messages(copy);
        }
        let channel = py.detach(|| o.open()).map_err(ToPyErr::py_err)?;
        Ok(PyChannel {
            channel: Some(channel),
        })
    }

    /// Removes the channel's name (endpoints that have it open keep working).
    #[staticmethod]
    #[pyo3(signature = (name, *, dir=None))]
    fn remove(name: &str, dir: Option<PathBuf>) -> PyResult<()> {
        memlane::remove(dir.as_deref(), name).map_err(ToPyErr::py_err)
    }

    /// Joins as a publisher (``TooManyEndpoints`` when all slots are taken).
    fn publisher(&self, py: Python<'_>) -> PyResult<PyPublisher> {
        let channel = self.get()?;
        let publ = py.detach(|| channel.publisher()).map_err(ToPyErr::py_err)?;
        Ok(PyPublisher::new(publ))
    }

    /// Joins as a subscriber: it receives what is sent from now on, or,
    /// with ``from_oldest=True``, starting at the oldest message still in
    /// the ring. With ``lossy=True`` it never holds publishers back: when
    /// they lap it, a receive raises ``Lagged`` (with the loss) once and the
    /// next goes on from the oldest message still in the ring; every message
    /// it returns was checked after it was copied out.
    #[pyo3(signature = (*, from_oldest=false, lossy=false))]
    fn subscriber(&self, py: Python<'_>, from_oldest: bool, lossy: bool) -> PyResult<PySubscriber> {
        if from_oldest && lossy {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a subscriber is either from_oldest or lossy, not both",
            ));
        }
        let channel = self.get()?;
        let sub = py
            .detach(|| {
                if lossy {
                    channel.lossy_subscriber()
                } else if from_oldest {
                    channel.subscriber_from_oldest()
                } else {
                    channel.subscriber()
                }
            })
            .map_err(ToPyErr::py_err)?;
        Ok(PySubscriber::new(sub))
    }

    /// The channel's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.get()?.name().to_owned())
    }

    /// The channel's file.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.get()?.path().to_path_buf())
    }

    /// The ring's size in bytes.
    #[getter]
    fn capacity(&self) -> PyResult<u64> {
        Ok(self.get()?.capacity())
    }

    /// The largest message, in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        Ok(self.get()?.max_message())
    }

    /// Whether messages are copied out of the ring (a channel others can
    /// write) rather than read in place.
    #[getter]
    fn copies_messages(&self) -> PyResult<bool> {
        Ok(self.get()?.copies_messages())
    }

    /// Flushes a file-backed channel to its file.
    fn flush(&self) -> PyResult<()> {
        self.get()?.flush().map_err(ToPyErr::py_err)
    }

    /// Closes this handle (publishers and subscribers made from it stay).
    fn close(&mut self) {
        self.channel = None;
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        match &self.channel {
            Some(c) => format!(
                "<memlane.Channel name={:?} capacity={} max_message={}>",
                c.name(),
                c.capacity(),
                c.max_message()
            ),
            None => "<memlane.Channel closed>".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------
// Subscriber and Message

/// A subscriber and the message it holds.
struct SubCore {
    /// The message received and not released yet. It borrows `*sub`:
    /// dropped (in `Drop`) before `sub` is freed, and while it is `Some`
    /// nothing else makes a reference to `*sub`.
    held: Option<Message<'static>>,
    /// The subscriber, owned (from `Box::leak`); freed in `Drop`.
    sub: NonNull<Subscriber>,
}

// SAFETY: Subscriber and Message are Send and Sync (asserted in memlane);
// `sub` is owned by this value alone.
unsafe impl Send for SubCore {}
// SAFETY: as above; every access goes through the Python object's
// borrow flag (`&mut` for anything that changes the state).
unsafe impl Sync for SubCore {}

impl SubCore {
    /// The subscriber, when no message borrows it.
    fn sub(&mut self) -> &mut Subscriber {
        assert!(
            self.held.is_none(),
            "a message still borrows the subscriber"
        );
        // SAFETY: `sub` is a live allocation owned by this value, no
        // message borrows it (checked), and `&mut self` makes this the
        // only reference for its lifetime.
        unsafe { self.sub.as_mut() }
    }
}

impl Drop for SubCore {
    fn drop(&mut self) {
        drop(self.held.take());
        // SAFETY: `sub` came from Box::leak and is freed only here; the
        // message borrowing it is gone.
        drop(unsafe { Box::from_raw(self.sub.as_ptr()) });
    }
}

/// A channel's subscriber: receives every message sent after it joined,
/// in order, nothing lost.
///
/// ``recv(timeout=None)`` returns a ``Message``: read it in place within
/// ``with msg:`` (``msg.view`` is a memoryview of it), or copy it with
/// ``msg.bytes()``. The message is released at the end of the ``with``
/// block, by ``msg.release()``, or at the next receive. ``recv_bytes()``
/// receives and copies in one call. Iterating (``for msg in sub``) receives
/// until every publisher has left.
///
/// In asyncio code, ``await sub.recv_async(timeout=None)`` and ``async for
/// msg in sub`` wait without blocking the event loop.
#[pyclass(module = "memlane", name = "Subscriber")]
pub struct PySubscriber {
    core: Option<SubCore>,
    /// Set while `recv_async` (or `async for`) is pending: its future
    /// borrows the subscriber, so `core()` refuses everything else.
    awaiting: Awaiting,
    /// Incremented at every release: a `Message` whose `gen` differs is
    /// gone.
    gen: u64,
    /// Buffers exported from the held message.
    exports: Arc<AtomicUsize>,
    /// Memoryviews made by `Message.view` for the held message.
    views: Views,
}

impl PySubscriber {
    fn new(sub: Subscriber) -> PySubscriber {
        PySubscriber {
            core: Some(SubCore {
                held: None,
                sub: NonNull::from(Box::leak(Box::new(sub))),
            }),
            awaiting: Awaiting::default(),
            gen: 0,
            exports: Arc::new(AtomicUsize::new(0)),
            views: Views::default(),
        }
    }

    /// The subscriber and its held message; `Busy` while an awaiting call
    /// borrows it, `Closed` after `close()`.
    fn core(&mut self) -> PyResult<&mut SubCore> {
        self.awaiting.check("subscriber")?;
        self.core.as_mut().ok_or_else(|| closed("subscriber"))
    }

    /// Releases the held message, if any: its memoryviews first.
    fn release_held(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut views = std::mem::take(&mut slf.try_borrow_mut()?.views);
        let released = views.release_all(py);
        let mut this = slf.try_borrow_mut()?;
        this.views = views;
        released?;
        let Some(core) = this.core.as_mut() else {
            return Ok(());
        };
        if core.held.is_none() {
            return Ok(());
        }
        let n = this.exports.load(Ordering::Acquire);
        if n != 0 {
            return Err(PyBufferError::new_err(format!(
                "{n} buffer(s) exported from the current message are still alive: release them (memoryview.release(), `with memoryview(msg) as m:`, del) before the next receive or the end of the message's with block"
            )));
        }
        if let Some(core) = this.core.as_mut() {
            core.held = None;
        }
        this.gen += 1;
        this.exports = Arc::new(AtomicUsize::new(0));
        Ok(())
    }

    /// Stores a received message and returns its Python object.
    fn hold(this: &mut PySubscriber, slf: &Bound<'_, Self>, msg: Message<'static>) -> PyMessage {
        let len = msg.len();
        let core = this.core.as_mut().expect("checked open before receiving");
        core.held = Some(msg);
        PyMessage {
            sub: slf.clone().unbind(),
            gen: this.gen,
            len,
            exports: this.exports.clone(),
        }
    }

    /// The subscriber pointer, for a receive (after `release_held`).
    fn sub_ptr(&mut self) -> PyResult<SendPtr<Subscriber>> {
        let core = self.core()?;
        let _ = core.sub();
        Ok(SendPtr(core.sub))
    }

    fn receive(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<PyMessage> {
        Self::release_held(slf)?;
        // Held (the borrow flag set) until the message is stored, also
        // while the GIL is released: another thread using this subscriber
        // meanwhile gets "Already borrowed" instead of a second `&mut`.
        let mut this = slf.try_borrow_mut()?;
        let ptr = this.sub_ptr()?;
        // Whatever is waiting is taken at once, with the GIL.
        {
            // SAFETY: no message borrows the subscriber (released above),
            // and `this` (the mutable borrow of the Python object that owns
            // it) is held until the message is stored in `held`, so this is
            // the only reference to `*ptr`.
            let sub: &'static mut Subscriber = unsafe { &mut *ptr.get() };
            match sub.try_recv() {
                Ok(msg) => return Ok(Self::hold(&mut this, slf, msg)),
                Err(TryRecvError::Empty) => {}
                Err(e) => return Err(e.py_err()),
            }
        }
        let py = slf.py();
        let got = blocking(py, timeout, move |slice| {
            // SAFETY: as above; each call's borrow ends when it returns
            // a timeout, and the one that returns a message hands it over.
            let sub: &'static mut Subscriber = unsafe { &mut *ptr.get() };
            match sub.recv_timeout(slice) {
                Err(RecvTimeoutError::Timeout) => None,
                other => Some(other),
            }
        })?;
        match got {
            Some(Ok(msg)) => Ok(Self::hold(&mut this, slf, msg)),
            Some(Err(e)) => Err(e.py_err()),
            None => Err(Timeout::new_err("no message arrived within the time-out")),
        }
    }

    /// `receive` for asyncio: the library's `recv_async` future, polled
    /// by PyO3's coroutine (with the GIL) and woken by the library's
    /// reactor thread; `timeout` by an asyncio timer.
    async fn receive_async(slf: Py<Self>, timeout: Option<f64>) -> PyResult<PyMessage> {
        let mut timer = Timer::new(timeout)?;
        // `_guard` is declared before `fut`, so it is dropped after it:
        // the subscriber stays marked busy as long as the future lives.
        let (_guard, ptr) = Python::attach(|py| -> PyResult<_> {
            let slf = slf.bind(py);
            Self::release_held(slf)?;
            let mut this = slf.try_borrow_mut()?;
            let ptr = this.sub_ptr()?;
            Ok((this.awaiting.start("subscriber")?, ptr))
        })?;
        // SAFETY: no message borrows the subscriber (released above), and
        // until `_guard` is dropped (after `fut`) every method of this
        // object that reaches the subscriber (`core()`) raises `Busy`, and
        // `close()` refuses, so `fut` holds the only reference to `*ptr`;
        // `slf` (kept by this future) keeps the allocation alive.
        let sub: &'static mut Subscriber = unsafe { &mut *ptr.get() };
        let mut fut = sub.recv_async();
        poll_fn(|cx| {
            Python::attach(|py| {
                let slf = slf.bind(py);
                // Borrowed before the message is taken, so that it can be
                // stored (another thread borrowing the object for a moment:
                // look again at the loop's next turn).
                let Ok(mut this) = slf.try_borrow_mut() else {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                };
                match Pin::new(&mut fut).poll(cx) {
                    Poll::Ready(Ok(msg)) => Poll::Ready(Ok(Self::hold(&mut this, slf, msg))),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e.py_err())),
                    Poll::Pending => match timer.expired(py, cx) {
                        Ok(false) => Poll::Pending,
                        Ok(true) => Poll::Ready(Err(Timeout::new_err(
                            "no message arrived within the time-out",
                        ))),
                        Err(e) => Poll::Ready(Err(e)),
                    },
                }
            })
        })
        .await
    }
}

#[pymethods]
impl PySubscriber {
    /// Receives the next message, waiting at most ``timeout`` seconds
    /// (``None``: as long as it takes; ``0``: only what is there). Raises
    /// ``Timeout``, ``Disconnected`` (every publisher left, after the
    /// disconnect grace), ``Corrupt``. Releases the previous message.
    /// Releases the GIL; Ctrl-C raises ``KeyboardInterrupt``.
    #[pyo3(signature = (timeout=None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<PyMessage> {
        Self::receive(slf, timeout)
    }

    /// Receives a waiting message without waiting; ``Empty`` if none.
    fn try_recv(slf: &Bound<'_, Self>) -> PyResult<PyMessage> {
        Self::release_held(slf)?;
        let mut this = slf.try_borrow_mut()?;
        let ptr = this.sub_ptr()?;
        // SAFETY: as in `receive`: no message borrows the subscriber and
        // `this` is held until the message is stored.
        let sub: &'static mut Subscriber = unsafe { &mut *ptr.get() };
        match sub.try_recv() {
            Ok(msg) => Ok(Self::hold(&mut this, slf, msg)),
            Err(e) => Err(e.py_err()),
        }
    }

    /// Receives the next message as ``bytes`` (one copy) and releases it.
    #[pyo3(signature = (timeout=None))]
    fn recv_bytes<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let msg = Self::receive(slf, timeout)?;
        let py = slf.py();
        let bytes = {
            let this = slf.try_borrow()?;
            let core = this.core.as_ref().expect("just received");
            let held = core.held.as_ref().expect("just received");
            PyBytes::new(py, held)
        };
        drop(msg);
        let mut this = slf.try_borrow_mut()?;
        if let Some(core) = this.core.as_mut() {
            core.held = None;
        }
        this.gen += 1;
        Ok(bytes)
    }

    /// How long after the last publisher left ``recv`` raises
    /// ``Disconnected`` (seconds; ``None``: never).
    #[pyo3(signature = (seconds))]
    fn set_disconnect_grace(slf: &Bound<'_, Self>, seconds: Option<f64>) -> PyResult<()> {
        Self::release_held(slf)?;
        let grace = match seconds {
            None => None,
            Some(s) => Some(Duration::try_from_secs_f64(s).map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("invalid grace {s}: {e}"))
            })?),
        };
        slf.try_borrow_mut()?
            .core()?
            .sub()
            .set_disconnect_grace(grace);
        Ok(())
    }

    /// Publishers joined now.
    #[getter]
    fn publishers(slf: &Bound<'_, Self>) -> PyResult<u32> {
        Self::release_held(slf)?;
        Ok(slf.try_borrow_mut()?.core()?.sub().publishers())
    }

    /// Bytes sent and not yet received by this subscriber.
    #[getter]
    fn lag(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::release_held(slf)?;
        Ok(slf.try_borrow_mut()?.core()?.sub().lag())
    }

    /// Messages received so far.
    #[getter]
    fn messages_received(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::release_held(slf)?;
        Ok(slf.try_borrow_mut()?.core()?.sub().messages_received())
    }

    /// Whether messages are private copies rather than read in place.
    #[getter]
    fn copies_messages(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::release_held(slf)?;
        Ok(slf.try_borrow_mut()?.core()?.sub().copies_messages())
    }

    /// Receives the next message in asyncio code: ``await
    /// sub.recv_async(timeout=None)`` returns a ``Message`` as ``recv``
    /// does, without blocking the event loop while it waits (another task
    /// runs meanwhile). Raises ``Timeout`` after ``timeout`` seconds
    /// (``None``: no limit), ``Disconnected``, ``Lagged`` (lossy
    /// subscribers), ``Corrupt``; ``Busy`` if another awaiting call on
    /// this subscriber is pending. Releases the previous message.
    ///
    /// Cancelling the awaiting task (``task.cancel()``,
    /// ``asyncio.wait_for``) takes nothing: the next receive gets the
    /// message. While it waits, memlane's reactor thread wakes the task
    /// through ``loop.call_soon_threadsafe``; no thread per call, no
    /// polling.
    #[pyo3(signature = (timeout=None))]
    async fn recv_async(slf: Py<Self>, timeout: Option<f64>) -> PyResult<PyMessage> {
        Self::receive_async(slf, timeout).await
    }

    /// Releases the held message and leaves the channel (``Busy`` while
    /// an awaiting call on it is pending).
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::release_held(slf)?;
        let mut this = slf.try_borrow_mut()?;
        this.awaiting.check("subscriber")?;
        this.core = None;
        Ok(())
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<PyMessage>> {
        match Self::receive(slf, None) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_instance_of::<crate::errors::Disconnected>(slf.py()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// ``async for msg in sub``: ``recv_async()`` until every publisher
    /// has left (``Disconnected`` ends the loop). A coroutine of
    /// ``_anext`` (PyO3 makes coroutines of methods, not of slots).
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method0(pyo3::intern!(slf.py(), "_anext"))
    }

    /// The coroutine behind ``__anext__``.
    async fn _anext(slf: Py<Self>) -> PyResult<PyMessage> {
        match Self::receive_async(slf, None).await {
            Err(e) if Python::attach(|py| e.is_instance_of::<Disconnected>(py)) => {
                Err(PyStopAsyncIteration::new_err(()))
            }
            other => other,
        }
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(slf: &Bound<'_, Self>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        Self::close(slf)
    }
}

/// A received message, held until released: ``with msg:`` (or
/// ``msg.release()``, or the next receive) gives it back to the channel.
///
/// ``msg.view`` (or ``memoryview(msg)``) shows the payload without a copy
/// while it is held; ``bytes(msg)`` / ``msg.bytes()`` copy it. After the
/// release, ``msg.view``'s memoryviews raise ``ValueError``.
#[pyclass(module = "memlane", name = "Message")]
pub struct PyMessage {
    sub: Py<PySubscriber>,
    gen: u64,
    len: usize,
    exports: Arc<AtomicUsize>,
}

impl PyMessage {
    /// The payload's address, if the message is still held.
    fn payload(&self, sub: &PySubscriber) -> PyResult<(*const u8, usize)> {
        match sub.core.as_ref().and_then(|c| c.held.as_ref()) {
            Some(held) if sub.gen == self.gen => Ok((held.as_ptr(), held.len())),
            _ => Err(crate::errors::Closed::new_err(
                "this message was released (its with block ended, release() was called, or the subscriber received again): copy it with bytes(msg) while it is held",
            )),
        }
    }
}

#[pymethods]
impl PyMessage {
    /// A copy of the payload.
    fn bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let sub = self.sub.bind(py).try_borrow()?;
        let (ptr, len) = self.payload(&sub)?;
        // SAFETY: the held message's payload is `len` readable bytes
        // while it is held (it is: checked, and the borrow of `sub`
        // keeps it so during the copy).
        let slice = unsafe { std::slice::from_raw_parts(ptr, len) };
        Ok(PyBytes::new(py, slice))
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.bytes(py)
    }

    /// A read-only memoryview of the payload (no copy), released with
    /// the message.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let sub = slf.try_borrow()?.sub.clone_ref(py);
        let sub = sub.bind(py);
        let mut views = std::mem::take(&mut sub.try_borrow_mut()?.views);
        let view = views.make(slf.as_any());
        sub.try_borrow_mut()?.views = views;
        view
    }

    /// Whether the message is still held.
    #[getter]
    fn held(&self, py: Python<'_>) -> PyResult<bool> {
        let sub = self.sub.bind(py).try_borrow()?;
        Ok(self.payload(&sub).is_ok())
    }

    /// Gives the message back to the channel (its memoryviews from
    /// ``.view`` are released; ``BufferError`` while other exported
    /// buffers live). Does nothing if it was released already.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let sub = self.sub.bind(py);
        if sub.try_borrow()?.gen != self.gen {
            return Ok(());
        }
        PySubscriber::release_held(sub)
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.release(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<memlane.Message len={} held={}>",
            self.len,
            if matches!(self.held(py), Ok(true)) {
                "True"
            } else {
                "False"
            }
        )
    }

    /// # Safety
    ///
    /// Called by Python with a `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.try_borrow()?;
        let sub = this.sub.bind(py).try_borrow()?;
        let (ptr, len) = this.payload(&sub)?;
        // SAFETY: the payload stays held, unchanged, while `exports` is
        // not zero: `release_held` refuses to release it until every
        // export is released.
        unsafe { buffer::fill(slf.as_any(), view, flags, ptr.cast_mut(), len, true)? };
        this.exports.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// # Safety
    ///
    /// Called by Python once per filled `Py_buffer`.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.exports.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for PyMessage {
    /// A message object that goes away while still held releases it (no
    /// buffer can be exported from it any more: each export keeps it
    /// alive), so the ring space goes back without waiting for the next
    /// receive.
    fn drop(&mut self) {
        Python::attach(|py| {
            let sub = self.sub.bind(py);
            // Busy (a receive in another thread): that receive released it.
            let Ok(mut this) = sub.try_borrow_mut() else {
                return;
            };
            if this.gen != self.gen || this.exports.load(Ordering::Acquire) != 0 {
                return;
            }
            if let Some(core) = this.core.as_mut() {
                if core.held.take().is_none() {
                    return;
                }
            }
            this.gen += 1;
            this.exports = Arc::new(AtomicUsize::new(0));
            this.views = Views::default();
        });
    }
}

// ---------------------------------------------------------------------
// Publisher and Loan

/// A publisher and its outstanding loan.
struct PubCore {
    /// The loan not committed yet. It borrows `*publ`: dropped (in
    /// `Drop`) before `publ` is freed, and while it is `Some` nothing else
    /// makes a reference to `*publ`.
    loan: Option<Loan<'static>>,
    /// The publisher, owned (from `Box::leak`); freed in `Drop`.
    publ: NonNull<Publisher>,
}

// SAFETY: Publisher and Loan are Send and Sync (asserted in memlane);
// `publ` is owned by this value alone.
unsafe impl Send for PubCore {}
// SAFETY: as above; every access goes through the Python object's
// borrow flag.
unsafe impl Sync for PubCore {}

impl PubCore {
    fn publ(&mut self) -> PyResult<&mut Publisher> {
        if self.loan.is_some() {
            return Err(Busy::new_err(
                "a loan of this publisher is outstanding: commit it (loan.commit()) or discard it (loan.discard()) first",
            ));
        }
        // SAFETY: `publ` is a live allocation owned by this value, no loan
        // borrows it (checked), and `&mut self` makes this the only
        // reference for its lifetime.
        Ok(unsafe { self.publ.as_mut() })
    }
}

impl Drop for PubCore {
    fn drop(&mut self) {
        // Not committed: subscribers skip it.
        drop(self.loan.take());
        // SAFETY: `publ` came from Box::leak and is freed only here; the
        // loan borrowing it is gone.
        drop(unsafe { Box::from_raw(self.publ.as_ptr()) });
    }
}

/// A channel's publisher.
///
/// ``send(data, timeout=None)`` copies any contiguous buffer (bytes,
/// bytearray, memoryview, numpy array) once, into the ring, waiting while
/// the ring is full. ``loan(n)`` lends ``n`` bytes of the ring to fill in
/// place (a writable memoryview) and ``commit``. In asyncio code, ``await
/// pub.send_async(data, timeout=None)`` waits for space without blocking
/// the event loop.
#[pyclass(module = "memlane", name = "Publisher")]
pub struct PyPublisher {
    core: Option<PubCore>,
    /// Set while `send_async` is pending: its future borrows the
    /// publisher, so `core()` refuses everything else.
    awaiting: Awaiting,
    gen: u64,
    exports: Arc<AtomicUsize>,
    views: Views,
}

impl PyPublisher {
    fn new(publ: Publisher) -> PyPublisher {
        PyPublisher {
            core: Some(PubCore {
                loan: None,
                publ: NonNull::from(Box::leak(Box::new(publ))),
            }),
            awaiting: Awaiting::default(),
            gen: 0,
            exports: Arc::new(AtomicUsize::new(0)),
            views: Views::default(),
        }
    }

    /// The publisher and its loan; `Busy` while an awaiting call borrows
    /// it, `Closed` after `close()`.
    fn core(&mut self) -> PyResult<&mut PubCore> {
        self.awaiting.check("publisher")?;
        self.core.as_mut().ok_or_else(|| closed("publisher"))
    }

    /// Ends the outstanding loan: committed (`Some(len)`: that many
    /// bytes, `Some(None)`: all) or discarded (`None`).
    fn end_loan(slf: &Bound<'_, Self>, gen: u64, commit: Option<Option<usize>>) -> PyResult<()> {
        let py = slf.py();
        if slf.try_borrow()?.gen != gen {
            return Err(crate::errors::Closed::new_err(
                "this loan was already committed or discarded",
            ));
        }
        let mut views = std::mem::take(&mut slf.try_borrow_mut()?.views);
        let released = views.release_all(py);
        let mut this = slf.try_borrow_mut()?;
        this.views = views;
        released?;
        let n = this.exports.load(Ordering::Acquire);
        if n != 0 {
            return Err(PyBufferError::new_err(format!(
                "{n} buffer(s) exported from this loan are still alive: release them (memoryview.release(), del) before committing or discarding it"
            )));
        }
        let loan = this.core.as_mut().and_then(|c| c.loan.take());
        this.gen += 1;
        this.exports = Arc::new(AtomicUsize::new(0));
        drop(this);
        let Some(loan) = loan else {
            return Ok(());
        };
        match commit {
            None => {
                drop(loan);
                Ok(())
            }
            Some(None) => loan.commit().map_err(ToPyErr::py_err),
            Some(Some(len)) => loan.commit_len(len).map_err(ToPyErr::py_err),
        }
    }
}

#[pymethods]
impl PyPublisher {
    /// Sends ``data`` (any contiguous buffer: one copy, into the ring),
    /// waiting at most ``timeout`` seconds for space (``None``: as long as
    /// it takes). Raises ``Timeout``, ``TooLarge``, ``Corrupt``. Releases
    /// the GIL while it waits; Ctrl-C raises ``KeyboardInterrupt``.
    #[pyo3(signature = (data, timeout=None))]
    fn send(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let data = Bytes::get(data)?;
        let bytes = data.as_slice();
        let publ = self.core()?.publ()?;
        match publ.try_send(bytes) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full) => {}
            Err(e) => return Err(e.py_err()),
        }
        let got = blocking(py, timeout, |slice| match publ.send_timeout(bytes, slice) {
            Err(SendTimeoutError::Timeout) => None,
            other => Some(other),
        })?;
        match got {
            Some(r) => r.map_err(ToPyErr::py_err),
            None => Err(Timeout::new_err(
                "timed out waiting for space: the slowest subscriber is a whole ring behind",
            )),
        }
    }

    /// Sends ``data`` in asyncio code: ``await pub.send_async(data,
    /// timeout=None)`` is ``send`` without blocking the event loop while
    /// the ring is full (another task runs meanwhile). Raises ``Timeout``
    /// after ``timeout`` seconds (``None``: no limit), ``TooLarge``,
    /// ``Corrupt``; ``Busy`` if another awaiting call on this publisher
    /// (or a loan) is pending.
    ///
    /// Cancelling the awaiting task sends nothing and claims no space:
    /// the message is written only when it fits. ``data`` stays exported
    /// (a ``bytearray`` cannot be resized) until the call ends.
    #[pyo3(signature = (data, timeout=None))]
    async fn send_async(slf: Py<Self>, data: Py<PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let mut timer = Timer::new(timeout)?;
        // Declared before `fut`, so dropped after it: the buffer stays
        // exported and the publisher marked busy while the future lives.
        let (data, _guard, ptr) = Python::attach(|py| -> PyResult<_> {
            let data = Bytes::get(data.bind(py))?;
            let mut this = slf.bind(py).try_borrow_mut()?;
            let core = this.core()?;
            core.publ()?;
            let ptr = SendPtr(core.publ);
            Ok((data, this.awaiting.start("publisher")?, ptr))
        })?;
        // SAFETY: no loan borrows the publisher (checked by `publ()`), and
        // until `_guard` is dropped (after `fut`) every method of this
        // object that reaches the publisher (`core()`) raises `Busy` and
        // `close()` refuses, so `fut` holds the only reference to `*ptr`;
        // `slf` (kept by this future) keeps the allocation alive.
        let publ: &'static mut Publisher = unsafe { &mut *ptr.get() };
        // SAFETY: `data` keeps the buffer exported (valid, not moved)
        // until it is dropped, after `fut`, the only user of the slice.
        let bytes: &'static [u8] = unsafe { &*std::ptr::from_ref(data.as_slice()) };
        let mut fut = publ.send_async(bytes);
        poll_fn(|cx| {
            Python::attach(|py| match Pin::new(&mut fut).poll(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(ToPyErr::py_err)),
                Poll::Pending => match timer.expired(py, cx) {
                    Ok(false) => Poll::Pending,
                    Ok(true) => Poll::Ready(Err(Timeout::new_err(
                        "timed out waiting for space: the slowest subscriber is a whole ring behind",
                    ))),
                    Err(e) => Poll::Ready(Err(e)),
                },
            })
        })
        .await
    }

    /// Sends ``data`` if there is space now; ``Full`` otherwise.
    fn try_send(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = Bytes::get(data)?;
        self.core()?
            .publ()?
            .try_send(data.as_slice())
            .map_err(ToPyErr::py_err)
    }

    /// Lends ``size`` bytes of the ring (zero-filled) to fill in place:
    /// returns a ``Loan`` (``loan.view`` is a writable memoryview); commit
    /// it, or leave its ``with`` block, to send. Waits at most ``timeout``
    /// seconds for space (polling; ``None``: as long as it takes).
    #[pyo3(signature = (size, timeout=None))]
    fn loan(slf: &Bound<'_, Self>, size: usize, timeout: Option<f64>) -> PyResult<PyLoan> {
        let py = slf.py();
        // Held until the loan is stored, also while the GIL is released
        // (another thread gets "Already borrowed", not a second `&mut`).
        let mut this = slf.try_borrow_mut()?;
        let ptr = {
            let core = this.core()?;
            core.publ()?;
            SendPtr(core.publ)
        };
        let attempt = move || {
            // SAFETY: no loan borrows the publisher (checked above), and
            // `this` (the mutable borrow of the Python object that owns it)
            // is held until the loan is stored, so nothing else references
            // it; a failed attempt's borrow ends when it returns.
            let publ: &'static mut Publisher = unsafe { &mut *ptr.get() };
            publ.try_loan(size)
        };
        let loan = match attempt() {
            Ok(loan) => loan,
            Err(TrySendError::Full) => {
                let got = blocking(py, timeout, |slice| {
                    let end = Instant::now() + slice;
                    let mut pause = Duration::from_micros(1);
                    loop {
                        match attempt() {
                            Err(TrySendError::Full) if Instant::now() < end => {
                                std::thread::sleep(pause);
                                pause = (pause * 2).min(Duration::from_micros(200));
                            }
                            Err(TrySendError::Full) => return None,
                            other => return Some(other),
                        }
                    }
                })?;
                match got {
                    Some(r) => r.map_err(ToPyErr::py_err)?,
                    None => {
                        return Err(Timeout::new_err(
                            "timed out waiting for space: the slowest subscriber is a whole ring behind",
                        ))
                    }
                }
            }
            Err(e) => return Err(e.py_err()),
        };
        let len = loan.len();
        let gen = this.gen;
        let exports = this.exports.clone();
        this.core()?.loan = Some(loan);
        Ok(PyLoan {
            publ: slf.clone().unbind(),
            gen,
            len,
            exports,
        })
    }

    /// The largest message, in bytes.
    #[getter]
    fn max_message(&mut self) -> PyResult<usize> {
        Ok(self.core()?.publ()?.max_message())
    }

    /// Messages sent so far.
    #[getter]
    fn messages_sent(&mut self) -> PyResult<u64> {
        Ok(self.core()?.publ()?.messages_sent())
    }

    /// Whether messages go through a private copy (a channel others can
    /// write) rather than straight into the ring.
    #[getter]
    fn copies_messages(&mut self) -> PyResult<bool> {
        Ok(self.core()?.publ()?.copies_messages())
    }

    /// Discards an outstanding loan and leaves the channel (``Busy``
    /// while an awaiting call on it is pending).
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.try_borrow()?.awaiting.check("publisher")?;
        let gen = slf.try_borrow()?.gen;
        PyPublisher::end_loan(slf, gen, None)?;
        slf.try_borrow_mut()?.core = None;
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(slf: &Bound<'_, Self>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        Self::close(slf)
    }
}

/// Ring space lent by ``Publisher.loan``: fill it through ``loan.view``
/// (a writable memoryview, no copy) and ``commit()`` it, or leave its
/// ``with`` block (commits; an exception discards it instead).
#[pyclass(module = "memlane", name = "Loan")]
pub struct PyLoan {
    publ: Py<PyPublisher>,
    gen: u64,
    len: usize,
    exports: Arc<AtomicUsize>,
}

impl Drop for PyLoan {
    /// A loan object that goes away uncommitted is discarded (as a Rust
    /// `Loan` dropped), so its publisher can send again.
    fn drop(&mut self) {
        Python::attach(|py| {
            let publ = self.publ.bind(py);
            let Ok(mut this) = publ.try_borrow_mut() else {
                return;
            };
            if this.gen != self.gen || this.exports.load(Ordering::Acquire) != 0 {
                return;
            }
            let loan = this.core.as_mut().and_then(|c| c.loan.take());
            if loan.is_none() {
                return;
            }
            this.gen += 1;
            this.exports = Arc::new(AtomicUsize::new(0));
            this.views = Views::default();
            drop(this);
            drop(loan);
        });
    }
}

#[pymethods]
impl PyLoan {
    /// A writable memoryview of the loaned bytes, released at commit.
    #[getter]
    fn view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let publ = slf.try_borrow()?.publ.clone_ref(py);
        let publ = publ.bind(py);
        let mut views = std::mem::take(&mut publ.try_borrow_mut()?.views);
        let view = views.make(slf.as_any());
        publ.try_borrow_mut()?.views = views;
        view
    }

    /// Sends the first ``length`` bytes (default: all of them).
    #[pyo3(signature = (length=None))]
    fn commit(&self, py: Python<'_>, length: Option<usize>) -> PyResult<()> {
        PyPublisher::end_loan(self.publ.bind(py), self.gen, Some(length))
    }

    /// Gives the space back without sending.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        PyPublisher::end_loan(self.publ.bind(py), self.gen, None)
    }

    /// Whether the loan is still outstanding.
    #[getter]
    fn active(&self, py: Python<'_>) -> PyResult<bool> {
        let publ = self.publ.bind(py).try_borrow()?;
        Ok(publ.gen == self.gen && publ.core.as_ref().is_some_and(|c| c.loan.is_some()))
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (exc_type, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if !self.active(py)? {
            return Ok(());
        }
        let commit = exc_type.is_none_or(|t| t.is_none());
        PyPublisher::end_loan(self.publ.bind(py), self.gen, commit.then_some(None))
    }

    /// # Safety
    ///
    /// Called by Python with a `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.try_borrow()?;
        let mut publ = this.publ.bind(py).try_borrow_mut()?;
        let gen = publ.gen;
        let loan = match publ.core.as_mut().and_then(|c| c.loan.as_mut()) {
            Some(loan) if gen == this.gen => loan,
            _ => {
                return Err(crate::errors::Closed::new_err(
                    "this loan was already committed or discarded",
                ))
            }
        };
        let (ptr, len) = (loan.as_mut_ptr(), loan.len());
        // SAFETY: the loaned bytes stay lent to this process, writable
        // and unread by anyone else, until the loan is committed or
        // discarded, which `end_loan` refuses while `exports` is not zero.
        unsafe { buffer::fill(slf.as_any(), view, flags, ptr, len, false)? };
        this.exports.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// # Safety
    ///
    /// Called by Python once per filled `Py_buffer`.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        self.exports.fetch_sub(1, Ordering::AcqRel);
    }
}
