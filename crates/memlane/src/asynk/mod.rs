//! Async receive, send and latest-value waits (the `async` feature).
//!
//! Runtime-agnostic: the futures use only [`std::task::Waker`], woken by
//! a small reactor of this crate (see [`reactor`] and docs/ARCHITECTURE.md,
//! "Async"), so they work under tokio, async-std, smol or a hand-written
//! executor alike.
//!
//! Every future here is *cancellation safe*: a message is taken only in
//! the poll that returns it (`Ready`), and a send writes its message only
//! in the poll that returns `Ready`; dropping a pending future takes
//! nothing, claims nothing, and unregisters its waker.

pub(crate) mod reactor;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::channel::async_hooks::{barrier, DataEvent, SpaceEvent};
use crate::error::{RecvError, SendError, TrySendError};
use crate::sync::Barrier;
use crate::{Event, Latest, Message, Publisher, Subscriber};
use reactor::{WaitSource, Waiting};

/// How often a pending receive or send looks again without a
/// notification, for the checks a blocking wait makes in its time slices
/// (dead publishers or subscribers, disconnection). Long, so that many
/// idle tasks cost next to nothing.
const RECHECK: Duration = Duration::from_secs(2);

/// When the heavy barrier failed (see `sync::Barrier::heavy`): a notifier
/// may miss this waiter, so look again this often.
const NO_BARRIER_RECHECK: Duration = Duration::from_millis(1);

/// A registration kept across polls, made at the first `Pending`.
struct Registration {
    waiting: Waiting,
    barrier_ok: bool,
}

impl Registration {
    fn arm(
        slot: &mut Option<Registration>,
        src: impl FnOnce() -> (Arc<dyn WaitSource>, Barrier),
        cx: &Context<'_>,
        deadline: Option<Instant>,
    ) {
        let reg = slot.get_or_insert_with(|| {
            let (src, barrier) = src();
            let (waiting, barrier_ok) = Waiting::new(src, barrier);
            Registration {
                waiting,
                barrier_ok,
            }
        });
        let deadline = if reg.barrier_ok {
            deadline
        } else {
            let soon = Instant::now() + NO_BARRIER_RECHECK;
            Some(deadline.map_or(soon, |d| d.min(soon)))
        };
        reg.waiting.arm(cx.waker(), deadline);
    }
}

/// The future of [`Subscriber::recv_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a> {
    sub: Option<&'a mut Subscriber>,
    reg: Option<Registration>,
}

impl std::fmt::Debug for RecvFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvFuture")
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

impl<'a> Future for RecvFuture<'a> {
    type Output = Result<Message<'a>, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sub = this
            .sub
            .as_deref_mut()
            .expect("RecvFuture polled after it completed");
        // Register (at the first Pending), arm, *then* re-check: see the
        // reactor's module docs for why no wake-up is lost.
        let ready = match sub.async_ready() {
            Ok(false) => {
                let deadline = sub.async_recheck(RECHECK);
                Registration::arm(
                    &mut this.reg,
                    || {
                        let ring = sub.async_ring().clone();
                        let b = barrier(&ring);
                        (Arc::new(DataEvent(ring)) as Arc<dyn WaitSource>, b)
                    },
                    cx,
                    Some(deadline),
                );
                sub.async_ready()
            }
            r => r,
        };
        match ready {
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
            Ok(true) => {
                this.reg = None;
                let sub = this.sub.take().expect("checked above");
                // A record is at the position: `recv` returns it at once.
                Poll::Ready(sub.recv())
            }
        }
    }
}

/// The [`Stream`](futures_core::Stream) of [`Subscriber::stream`]: each
/// message copied into a `Vec<u8>`; it ends when the subscriber is
/// disconnected.
#[must_use = "streams do nothing unless polled"]
pub struct MessageStream<'a> {
    sub: &'a mut Subscriber,
    reg: Option<Registration>,
}

impl std::fmt::Debug for MessageStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

impl futures_core::Stream for MessageStream<'_> {
    type Item = Result<Vec<u8>, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut recv = RecvFuture {
            sub: Some(&mut *this.sub),
            reg: this.reg.take(),
        };
        match Pin::new(&mut recv).poll(cx) {
            Poll::Pending => {
                this.reg = recv.reg.take();
                Poll::Pending
            }
            Poll::Ready(Ok(m)) => Poll::Ready(Some(Ok(m.to_vec()))),
            Poll::Ready(Err(RecvError::Disconnected)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// The future of [`Publisher::send_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a> {
    publ: &'a mut Publisher,
    msg: &'a [u8],
    reg: Option<Registration>,
}

impl std::fmt::Debug for SendFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture")
            .field("len", &self.msg.len())
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

impl Future for SendFuture<'_> {
    type Output = Result<(), SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let msg = this.msg;
        loop {
            match this.publ.try_send(msg) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(TrySendError::TooLarge { len, max }) => {
                    return Poll::Ready(Err(SendError::TooLarge { len, max }))
                }
                Err(TrySendError::Corrupt(c)) => return Poll::Ready(Err(SendError::Corrupt(c))),
                Err(TrySendError::Full) => {}
            }
            let publ = &mut *this.publ;
            Registration::arm(
                &mut this.reg,
                || {
                    let ring = publ.async_ring().clone();
                    let b = barrier(&ring);
                    (Arc::new(SpaceEvent(ring)) as Arc<dyn WaitSource>, b)
                },
                cx,
                Some(Instant::now() + RECHECK),
            );
            if !publ.async_has_space(msg.len()) {
                return Poll::Pending;
            }
        }
    }
}

/// The future of [`Latest::wait_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct LatestWait<'a> {
    latest: &'a mut Latest,
    reg: Option<Registration>,
}

impl std::fmt::Debug for LatestWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestWait")
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

impl Future for LatestWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let (changed, ev) = this.latest.async_source();
        if changed {
            return Poll::Ready(());
        }
        // Latest orders its wait/notify pair with fences.
        Registration::arm(
            &mut this.reg,
            || (Arc::new(ev) as Arc<dyn WaitSource>, Barrier::Fences),
            cx,
            None,
        );
        if this.latest.has_changed() {
            this.reg = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Subscriber {
    /// Waits for the next message without blocking a thread: the async
    /// [`recv`](Subscriber::recv) (feature `async`).
    ///
    /// Cancellation safe: the message is taken only when the future
    /// returns it; a future dropped before that takes nothing (the next
    /// receive gets the message). While it waits, the task is woken by
    /// this process's reactor thread (see the crate's README, "Async").
    ///
    /// # Errors
    ///
    /// As for [`recv`](Subscriber::recv): [`RecvError::Disconnected`] when
    /// every publisher has left and everything they sent was received;
    /// [`RecvError::Corrupt`] when the channel's shared memory breaks the
    /// protocol.
    ///
    /// # Panics
    ///
    /// When polled, if this is the process's first wait and the OS cannot
    /// start the reactor thread (as `std::thread::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-recvasync-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-recvasync").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// rt.block_on(async {
    ///     publ.send_async(b"hello").await?;
    ///     let msg = sub.recv_async().await?;
    ///     assert_eq!(&*msg, b"hello");
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&mut self) -> RecvFuture<'_> {
        RecvFuture {
            sub: Some(self),
            reg: None,
        }
    }

    /// The messages as a [`Stream`](futures_core::Stream) of owned copies,
    /// ending when the subscriber is disconnected (feature `async`).
    /// Cancellation safe as [`recv_async`](Subscriber::recv_async) is.
    ///
    /// # Panics
    ///
    /// When polled, if this is the process's first wait and the OS cannot
    /// start the reactor thread (as `std::thread::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-stream-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use futures_core::Stream;
    /// let channel = memlane::Channel::builder("doc-stream").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// channel.publisher()?.send(b"one")?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let mut stream = sub.stream();
    /// let first = rt.block_on(poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)));
    /// assert_eq!(first.unwrap()?, b"one");
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream(&mut self) -> MessageStream<'_> {
        MessageStream {
            sub: self,
            reg: None,
        }
    }
}

impl Publisher {
    /// Sends `msg`, waiting without blocking a thread while the ring is
    /// full: the async [`send`](Publisher::send) (feature `async`).
    ///
    /// Cancellation safe: the message is written only in the poll that
    /// returns `Ready(Ok)`; a future dropped before that has sent nothing
    /// and holds no claim.
    ///
    /// # Errors
    ///
    /// As for [`send`](Publisher::send): [`SendError::TooLarge`] if `msg`
    /// is longer than [`max_message`](Publisher::max_message);
    /// [`SendError::Corrupt`] when the shared memory breaks the protocol.
    ///
    /// # Panics
    ///
    /// When polled, if this is the process's first wait and the OS cannot
    /// start the reactor thread (as `std::thread::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-sendasync-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-sendasync").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// rt.block_on(publ.send_async(b"hi"))?;
    /// assert_eq!(&*sub.try_recv()?, b"hi");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_async<'a>(&'a mut self, msg: &'a [u8]) -> SendFuture<'a> {
        SendFuture {
            publ: self,
            msg,
            reg: None,
        }
    }
}

impl Latest {
    /// Waits without blocking a thread until there is a value newer than
    /// the one this handle last read with [`get`](Latest::get): the async
    /// [`wait`](Latest::wait) (feature `async`). Cancellation safe (it
    /// reads nothing).
    ///
    /// # Panics
    ///
    /// When polled, if this is the process's first wait and the OS cannot
    /// start the reactor thread (as `std::thread::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-lwaitasync-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let mut reader = memlane::Latest::builder("doc-wait-async").dir(&dir).create()?;
    /// let mut writer = memlane::Latest::open_options("doc-wait-async").dir(&dir).open()?;
    /// writer.set(b"new")?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// rt.block_on(reader.wait_async());
    /// assert_eq!(reader.get()?.unwrap().bytes(), b"new");
    /// # drop((reader, writer));
    /// # memlane::remove(Some(&dir), "doc-wait-async")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_async(&mut self) -> LatestWait<'_> {
        LatestWait {
            latest: self,
            reg: None,
        }
    }
}

/// The future of [`Event::wait_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a mut Event,
    reg: Option<Registration>,
}

impl std::fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWait")
            .field("registered", &self.reg.is_some())
            .finish()
    }
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.event.async_take() {
            this.reg = None;
            return Poll::Ready(());
        }
        let event = &*this.event;
        // Events order their wait/notify pair with fences.
        Registration::arm(
            &mut this.reg,
            || {
                (
                    Arc::new(event.async_source()) as Arc<dyn WaitSource>,
                    Barrier::Fences,
                )
            },
            cx,
            None,
        );
        if this.event.async_take() {
            this.reg = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Event {
    /// Waits without blocking a thread until a notification this handle
    /// has not seen yet arrives: the async [`wait`](Event::wait) (feature
    /// `async`). Cancellation safe: a notification counts as seen only
    /// when the future returns; a future dropped before that leaves it
    /// for the next wait.
    ///
    /// # Panics
    ///
    /// When polled, if this is the process's first wait and the OS cannot
    /// start the reactor thread (as `std::thread::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-ewaitasync-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let server = memlane::Event::builder("doc-ev-async").dir(&dir).create()?;
    /// let mut client = memlane::Event::open_options("doc-ev-async").dir(&dir).open()?;
    /// server.notify();
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// rt.block_on(client.wait_async()); // "data ready"
    /// # drop((server, client));
    /// # memlane::remove(Some(&dir), "doc-ev-async")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_async(&mut self) -> EventWait<'_> {
        EventWait {
            event: self,
            reg: None,
        }
    }
}

/// How many reactor threads this process runs now, and whether they sleep
/// on many words per call (`futex_waitv` on Linux 5.16+,
/// `WaitForMultipleObjects` on Windows) or on one word each (the fallback
/// for older kernels).
///
/// # Examples
///
/// ```
/// let (threads, _multi) = memlane::reactor_threads();
/// assert!(threads <= 1); // none until a future waits
/// ```
pub fn reactor_threads() -> (usize, bool) {
    reactor::threads()
}
