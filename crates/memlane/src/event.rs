//! Named cross-process "data ready" events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{CreateError, Missing, OpenError, RemoveError};
use crate::file::{self, CreateSpec, OpenSpec, RawSegment};
use crate::segment::header::Kind;
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
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-ev-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let server = Event::builder("doc-ready").dir(&dir).create()?;
/// let mut client = Event::open_options("doc-ready").dir(&dir).open()?;
/// assert!(!client.wait_timeout(Duration::from_millis(1)));
/// server.notify();
/// assert!(client.wait_timeout(Duration::from_secs(1)));
/// # memlane::remove(Some(&dir), "doc-ready")?;
/// # drop((server, client));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Event {
    /// Shared with the async reactor's entry while a `wait_async` waits
    /// (the reactor reads the word; the mapping must outlive it).
    seg: std::sync::Arc<RawSegment>,
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

/// Options for creating an event; see [`Event::builder`].
///
/// # Examples
///
/// ```
/// use memlane::Event;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-evb-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let ready = Event::builder("doc-ev-built").dir(&dir).mode(0o660).create()?;
/// ready.notify();
/// assert_eq!(ready.count(), 1);
/// # drop(ready);
/// memlane::remove(Some(&dir), "doc-ev-built")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventBuilder {
    name: String,
    dir: Option<PathBuf>,
    mode: u32,
    replace_stale: bool,
    page_file: bool,
}

impl EventBuilder {
    /// Creates the event in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Permission bits (default [`DEFAULT_MODE`](crate::DEFAULT_MODE),
    /// owner only); `0o660` lets the group notify and wait.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }
    /// Whether a stale event at the name (one of this user's that no live
    /// process holds) is replaced instead of reported as `AlreadyExists`
    /// (default true).
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }
    /// On Windows, makes the event a page-file-backed named mapping
    /// (`Local\memlane.NAME`: it lives while some process has it open; see
    /// [`SegmentBuilder::page_file`](crate::SegmentBuilder::page_file)).
    /// On Linux this changes nothing.
    pub fn page_file(mut self, page_file: bool) -> Self {
        self.page_file = page_file;
        self
    }

    /// Creates the event.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidName`] for a name that breaks the naming
    /// rules, [`CreateError::AlreadyExists`] if something (not stale) is at
    /// the name, [`CreateError::NoDirectory`] if the directory does not
    /// exist, [`CreateError::PermissionDenied`], [`CreateError::NoSpace`],
    /// or [`CreateError::Io`] for another OS error.
    pub fn create(self) -> Result<Event, CreateError> {
        let spec = CreateSpec {
            name: &self.name,
            dir: self.dir.as_deref(),
            file: None,
            mode: self.mode,
            kind: Kind::Event,
            data_len: 64,
            replace_stale: self.replace_stale,
            page_file: self.page_file,
        };
        let seg = file::create(&spec, |_, _| {})?;
        Ok(Event {
            seg: std::sync::Arc::new(seg),
            seen: 0,
        })
    }
}

/// Options for opening an event; see [`Event::open_options`].
///
/// # Examples
///
/// ```
/// use memlane::Event;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-evo-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let server = Event::builder("doc-ev-opened").dir(&dir).create()?;
/// let client = Event::open_options("doc-ev-opened").dir(&dir).open()?;
/// server.notify();
/// assert_eq!(client.count(), 1);
/// # drop((server, client));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventOpenOptions {
    name: String,
    dir: Option<PathBuf>,
    allow_other_owner: bool,
}

impl EventOpenOptions {
    /// Looks in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Accepts an event owned by another user (refused by default).
    pub fn allow_other_owner(mut self, allow: bool) -> Self {
        self.allow_other_owner = allow;
        self
    }

    /// Opens the event.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::NotFound`]; for what is at
    /// the name: [`OpenError::WrongKind`] (not an event),
    /// [`OpenError::NotMemlane`], [`OpenError::IncompatibleVersion`],
    /// [`OpenError::NotReady`], [`OpenError::SizeMismatch`],
    /// [`OpenError::Corrupt`] (too small for an event),
    /// [`OpenError::Symlink`], [`OpenError::HardLinked`],
    /// [`OpenError::NotAFile`]; [`OpenError::ForeignOwner`] (see
    /// [`allow_other_owner`](Self::allow_other_owner)),
    /// [`OpenError::PermissionDenied`], [`OpenError::Busy`] (another
    /// process kept the file locked for 2 s), or [`OpenError::Io`].
    pub fn open(self) -> Result<Event, OpenError> {
        let seg = file::open(&OpenSpec {
            name: &self.name,
            dir: self.dir.as_deref(),
            access: Access::ReadWrite,
            kind: Some(Kind::Event),
            what: Missing::Named(Kind::Event),
            view: None,
            allow_other_owner: self.allow_other_owner,
        })?;
        if seg.data_len() < std::mem::size_of::<EventWord>() {
            return Err(OpenError::Corrupt {
                path: seg.path().to_path_buf(),
                reason: "too small for an event".into(),
            });
        }
        Ok(Event {
            seg: std::sync::Arc::new(seg),
            seen: 0,
        })
    }
}

impl Event {
    /// Creates the event `name` in `$MEMLANE_DIR` or `/dev/shm`, owner
    /// only; [`Event::builder`] for another directory, mode or a page-file
    /// event.
    ///
    /// # Errors
    ///
    /// See [`EventBuilder::create`].
    #[doc(alias = "CreateEvent")]
    pub fn create(name: &str) -> Result<Event, CreateError> {
        Event::builder(name).create()
    }

    /// Starts building an event named `name` with more options.
    pub fn builder(name: &str) -> EventBuilder {
        EventBuilder {
            name: name.to_string(),
            dir: None,
            mode: DEFAULT_MODE,
            replace_stale: true,
            page_file: false,
        }
    }

    /// Opens the event `name` in `$MEMLANE_DIR` or `/dev/shm`;
    /// [`Event::open_options`] for another directory.
    ///
    /// # Errors
    ///
    /// See [`EventOpenOptions::open`].
    #[doc(alias = "OpenEvent")]
    pub fn open(name: &str) -> Result<Event, OpenError> {
        Event::open_options(name).open()
    }

    /// Starts opening the event `name` with more options.
    pub fn open_options(name: &str) -> EventOpenOptions {
        EventOpenOptions {
            name: name.to_string(),
            dir: None,
            allow_other_owner: false,
        }
    }

    /// Removes the event's name from `$MEMLANE_DIR` or `/dev/shm`
    /// ([`memlane::remove`](crate::remove) for another directory).
    ///
    /// # Errors
    ///
    /// See [`memlane::remove`](crate::remove).
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        crate::remove(None, name)
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

    /// Takes a notification this handle has not seen yet, if one came
    /// (the condition of [`wait`](Self::wait), without waiting).
    #[cfg(feature = "async")]
    pub(crate) fn async_take(&mut self) -> bool {
        let now = self.word().seq.load(Ordering::SeqCst);
        if now != self.seen {
            self.seen = now;
            return true;
        }
        false
    }

    /// The event's word, for the async reactor (holds the mapping).
    #[cfg(feature = "async")]
    pub(crate) fn async_source(&self) -> EventSource {
        EventSource(self.seg.clone())
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

/// An event's word for the async reactor (holds the mapping).
#[cfg(feature = "async")]
pub(crate) struct EventSource(std::sync::Arc<RawSegment>);

#[cfg(feature = "async")]
impl crate::asynk::reactor::WaitSource for EventSource {
    fn event(&self) -> &EventWord {
        // SAFETY: as for `Event::word`: the data region holds an
        // EventWord (checked on open), page aligned, mapped while the Arc
        // lives.
        unsafe { &*self.0.data_ptr().cast::<EventWord>() }
    }
}
