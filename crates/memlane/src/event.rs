//! Named cross-process "data ready" events.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{CreateError, OpenError, RemoveError};
use crate::segment::header::Kind;
use crate::segment::raw::{self, CreateSpec, RawSegment};
use crate::segment::{Access, DEFAULT_MODE};
use crate::sync::event_word::{EventWord, DEFAULT_SPIN};
use crate::sync::{Barrier, Ordering, OsFutex};

/// How long a sleeping waiter sleeps at most before it re-checks by itself.
const RECHECK: Duration = Duration::from_millis(250);

/// A named event that one process notifies and others wait on: the
/// classic "data ready" signal.
///
/// The event counts notifications. Each handle remembers how many it has
/// seen; [`wait`](Event::wait) returns as soon as there is one it has not
/// (so a notification made before the waiter opened the event is not
/// lost), and marks all current ones seen. Every handle sees every
/// notification: one `notify` wakes all waiters. `notify` makes no system
/// call when nobody sleeps (a shared futex on Linux).
///
/// # Examples
///
/// ```
/// use memlane::Event;
/// use std::time::Duration;
/// # let dir = std::env::temp_dir().join(format!("memlane-doc-ev-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let server = Event::create_in(&dir, "doc-ready")?;
/// let mut client = Event::open_in(&dir, "doc-ready")?;
/// assert!(!client.wait_timeout(Duration::from_millis(1)));
/// server.notify();
/// assert!(client.wait_timeout(Duration::from_secs(1)));
/// # Event::remove_in(&dir, "doc-ready")?;
/// # drop((server, client));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Event {
    seg: RawSegment,
    seen: u32,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.seg.name())
            .field("seen", &self.seen)
            .finish()
    }
}

impl Event {
    /// Creates the event `name` in `$MEMLANE_DIR` or `/dev/shm`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create(name: &str) -> Result<Event, CreateError> {
        Self::create_impl(name, None, false)
    }

    /// Creates the event `name` as a page-file-backed named mapping on
    /// Windows (`Local\memlane.NAME`: it lives while some process has it
    /// open; see [`SegmentBuilder::page_file`](crate::SegmentBuilder::page_file)),
    /// in `dir` if given. On Linux the same as [`Event::create_in`].
    ///
    /// # Errors
    ///
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create_page_file(dir: Option<&Path>, name: &str) -> Result<Event, CreateError> {
        Self::create_impl(name, dir, true)
    }

    /// Creates the event `name` in `dir`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create_in(dir: &Path, name: &str) -> Result<Event, CreateError> {
        Self::create_impl(name, Some(dir), false)
    }

    fn create_impl(name: &str, dir: Option<&Path>, page_file: bool) -> Result<Event, CreateError> {
        let spec = CreateSpec {
            name,
            dir,
            file: None,
            mode: DEFAULT_MODE,
            kind: Kind::Event,
            data_len: 64,
            replace_stale: true,
            page_file,
        };
        let seg = raw::create(&spec, |_, _| {})?;
        Ok(Event { seg, seen: 0 })
    }

    /// Opens the event `name`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open(name: &str) -> Result<Event, OpenError> {
        Self::open_impl(name, None)
    }

    /// Opens the event `name` in `dir`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open_in(dir: &Path, name: &str) -> Result<Event, OpenError> {
        Self::open_impl(name, Some(dir))
    }

    fn open_impl(name: &str, dir: Option<&Path>) -> Result<Event, OpenError> {
        let seg = raw::open(
            name,
            dir,
            Access::ReadWrite,
            Some(Kind::Event),
            "event",
            None,
            false,
        )?;
        if seg.data_len() < std::mem::size_of::<EventWord>() {
            return Err(OpenError::Corrupt {
                path: seg.path().to_path_buf(),
                reason: "too small for an event".into(),
            });
        }
        Ok(Event { seg, seen: 0 })
    }

    /// Removes the event's name.
    ///
    /// # Errors
    ///
    /// As for [`Segment::remove`](crate::Segment::remove).
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        raw::remove(name, None)
    }

    /// Removes the event's name from `dir`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::remove`](crate::Segment::remove).
    pub fn remove_in(dir: &Path, name: &str) -> Result<(), RemoveError> {
        raw::remove(name, Some(dir))
    }

    fn word(&self) -> &EventWord {
        // SAFETY: the data region is at least 8 bytes (checked on open,
        // 64 on create) and page aligned; EventWord is two AtomicU32.
        unsafe { &*self.seg.data_ptr().cast::<EventWord>() }
    }

    /// Signals the event: wakes every waiter, in any process.
    #[doc(alias = "SetEvent")]
    pub fn notify(&self) {
        self.word().notify_count(&OsFutex, Barrier::Fences);
    }

    /// Waits until a notification this handle has not seen yet arrives.
    #[doc(alias = "WaitForSingleObject")]
    pub fn wait(&mut self) {
        while !self.wait_deadline(None) {}
    }

    /// Like [`Event::wait`], for at most `timeout`; returns whether a
    /// notification came.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_deadline(Some(Instant::now() + timeout))
    }

    fn wait_deadline(&mut self, deadline: Option<Instant>) -> bool {
        let seen = self.seen;
        let word = self.word();
        let mut now = seen;
        let ok = word.wait_until(
            &OsFutex,
            Barrier::Fences,
            DEFAULT_SPIN / 4,
            deadline,
            RECHECK,
            || {
                now = word.seq.load(Ordering::SeqCst);
                now != seen
            },
        );
        if ok {
            self.seen = now;
        }
        ok
    }

    /// Notifications so far (wrapping).
    pub fn count(&self) -> u32 {
        self.word().seq.load(Ordering::SeqCst)
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        self.seg.name()
    }
}
