//! Named latest-value slots: the classic "one view holding the current
//! message", made safe for several writers and any number of readers.

#[cfg(all(not(loom), any(test, feature = "fuzzing")))]
pub(crate) mod fuzz;
pub(crate) mod layout;
#[cfg(loom)]
mod loom_tests;
pub(crate) mod protocol;

#[cfg(not(loom))]
pub use api::*;

#[cfg(not(loom))]
mod api {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use super::layout::{
        Control, EventLine, Geometry, EVENT_OFFSET, LAYOUT_VERSION, SLOTS_OFFSET, SLOT_ACTIVE,
        SLOT_FREE,
    };
    pub use super::layout::{MAX_VALUE, MAX_WRITERS};
    use super::protocol::{ReadFail, View, WriteFail, WriterState, Written, READ_ATTEMPTS};
    use crate::channel::liveness::{self, LockFile, LOCK_BASE};
    use crate::channel::Liveness;
    use crate::error::Missing;
    use crate::error::{CreateError, GetError, OpenError, RemoveError, SetError};
    use crate::file::{self, CreateSpec, OpenSpec, RawSegment};
    use crate::segment::header::Kind;
    use crate::segment::{Access, DEFAULT_MODE};
    use crate::sync::event_word::DEFAULT_SPIN;
    use crate::sync::{Barrier, Ordering, OsFutex};
    use crate::sys;

    /// The default largest value: 4 KiB.
    pub const DEFAULT_MAX_VALUE: usize = 4096;
    /// The default number of writer slots.
    pub const DEFAULT_MAX_WRITERS: u32 = 8;

    /// How long a sleeping waiter sleeps at most before it re-checks by itself.
    const RECHECK: Duration = Duration::from_millis(250);

    /// A named slot holding the newest value of something: the classic
    /// shared view a writer overwrites and readers read "what is there
    /// now", without its torn reads.
    ///
    /// * [`set`](Latest::set) writes a value of up to
    ///   [`max_value`](Latest::max_value) bytes; writers never wait for
    ///   readers nor for each other. Several writers, in any processes, may
    ///   write: their writes are ordered by version, the last one wins.
    /// * [`get`](Latest::get) copies out the newest *complete* value with its
    ///   version (a seqlock over each writer's three buffers: copy, then
    ///   validate). A writer killed mid-write leaves the previous value
    ///   readable; a process that breaks the format can make a read fail
    ///   with an error, never loop or read out of bounds.
    /// * [`wait`](Latest::wait) blocks until there is a value newer than the
    ///   one this handle last read; a write makes no system call while
    ///   nobody waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane::Latest;
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-latest-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// // The server keeps the newest pose in "doc-pose"...
    /// let mut server = Latest::builder("doc-pose").max_value(1024).dir(&dir).create()?;
    /// // ...a client opens it by name and reads what is there now.
    /// let mut client = Latest::open_options("doc-pose").dir(&dir).open()?;
    /// assert!(client.get()?.is_none()); // nothing written yet
    /// server.set(b"x=1 y=2")?;
    /// server.set(b"x=2 y=2")?;
    /// let value = client.get()?.expect("a value");
    /// assert_eq!(value.bytes(), b"x=2 y=2");
    /// assert_eq!(value.version(), 2);
    /// # drop((server, client));
    /// memlane::remove(Some(&dir), "doc-pose")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub struct Latest {
        /// Shared with the async reactor while a `wait_async` is pending
        /// (so the mapping outlives its registration).
        seg: std::sync::Arc<RawSegment>,
        geo: Geometry,
        writer: Option<Writer>,
        seen: u64,
    }

    /// A held writer slot: its liveness lock and protocol state.
    struct Writer {
        lock: LockFile,
        state: WriterState,
    }

    impl std::fmt::Debug for Latest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Latest")
                .field("name", &self.seg.name())
                .field("max_value", &self.geo.max_value)
                .field("max_writers", &self.geo.max_writers)
                .field("writer_slot", &self.writer.as_ref().map(|w| w.state.slot))
                .field("seen", &self.seen)
                .finish()
        }
    }

    /// A value read from a [`Latest`]: its bytes and its version.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-value-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let mut slot = memlane::Latest::builder("doc-value").dir(&dir).create()?;
    /// slot.set(b"hello")?;
    /// let value = slot.get()?.unwrap();
    /// assert_eq!((value.version(), value.bytes()), (1, &b"hello"[..]));
    /// let bytes: Vec<u8> = value.into_bytes();
    /// # drop(slot);
    /// # memlane::remove(Some(&dir), "doc-value")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Value {
        version: u64,
        bytes: Vec<u8>,
    }

    impl Value {
        /// The value's version: 1 for the first write, growing with each
        /// (a write that another, later-versioned one overtook is never
        /// read, so versions a reader sees may skip).
        pub fn version(&self) -> u64 {
            self.version
        }
        /// The value's bytes.
        pub fn bytes(&self) -> &[u8] {
            &self.bytes
        }
        /// The value's bytes, owned.
        pub fn into_bytes(self) -> Vec<u8> {
            self.bytes
        }
    }

    impl std::ops::Deref for Value {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            &self.bytes
        }
    }

    /// A writer slot, as [`Latest::info`] reports it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct WriterInfo {
        /// The slot index.
        pub slot: u32,
        /// The pid recorded by its holder.
        pub pid: u32,
        /// Whether its holder lives.
        pub liveness: Liveness,
    }

    /// A latest-value slot's settings and state; see [`Latest::info`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct LatestInfo {
        /// Name.
        pub name: String,
        /// File.
        pub path: PathBuf,
        /// Largest value in bytes.
        pub max_value: usize,
        /// Writer slots.
        pub max_writers: u32,
        /// Pid of the creator.
        pub creator_pid: u32,
        /// The newest value's version (0: nothing written yet).
        pub version: u64,
        /// Versions handed to writers so far (at least `version`; more if
        /// writes were overtaken or are under way).
        pub writes: u64,
        /// The writer slots in use (or left by a dead writer).
        pub writers: Vec<WriterInfo>,
    }

    /// Options for creating a latest-value slot; see [`Latest::builder`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-latestb-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let slot = memlane::Latest::builder("doc-latest-built")
    ///     .dir(&dir)
    ///     .max_value(64)
    ///     .max_writers(2)
    ///     .mode(0o660)
    ///     .create()?;
    /// assert_eq!((slot.max_value(), slot.max_writers()), (64, 2));
    /// # drop(slot);
    /// # memlane::remove(Some(&dir), "doc-latest-built")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone)]
    pub struct LatestBuilder {
        name: String,
        dir: Option<PathBuf>,
        mode: u32,
        max_value: usize,
        max_writers: u32,
        replace_stale: bool,
        page_file: bool,
    }

    impl LatestBuilder {
        /// Creates the slot in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
        pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
            self.dir = Some(dir.into());
            self
        }
        /// Permission bits (default [`DEFAULT_MODE`](crate::DEFAULT_MODE),
        /// owner only); `0o660` lets the group read and write.
        pub fn mode(mut self, mode: u32) -> Self {
            self.mode = mode & 0o777;
            self
        }
        /// The largest value in bytes, 1 to [`MAX_VALUE`] (default
        /// [`DEFAULT_MAX_VALUE`]). The slot takes about
        /// `3 * max_writers * max_value` bytes.
        pub fn max_value(mut self, bytes: usize) -> Self {
            self.max_value = bytes;
            self
        }
        /// How many handles may write at once, 1 to [`MAX_WRITERS`]
        /// (default [`DEFAULT_MAX_WRITERS`]).
        pub fn max_writers(mut self, n: u32) -> Self {
            self.max_writers = n;
            self
        }
        /// Whether a stale slot at the name (one of this user's that no live
        /// process holds) is replaced instead of reported as `AlreadyExists`
        /// (default true).
        pub fn replace_stale(mut self, replace: bool) -> Self {
            self.replace_stale = replace;
            self
        }
        /// On Windows, makes the slot a page-file-backed named mapping (see
        /// [`SegmentBuilder::page_file`](crate::SegmentBuilder::page_file)).
        /// On Linux this changes nothing.
        pub fn page_file(mut self, page_file: bool) -> Self {
            self.page_file = page_file;
            self
        }

        /// Creates the slot, empty (version 0).
        ///
        /// # Errors
        ///
        /// [`CreateError::InvalidConfig`] for a `max_value` or `max_writers`
        /// out of range, [`CreateError::InvalidName`] for a name that breaks
        /// the naming rules, [`CreateError::AlreadyExists`] if something
        /// (not stale) is at the name, [`CreateError::NoDirectory`] if the
        /// directory does not exist, [`CreateError::PermissionDenied`],
        /// [`CreateError::NoSpace`], or [`CreateError::Io`] for another OS
        /// error.
        #[allow(unsafe_code)] // see the SAFETY comment inside
        pub fn create(self) -> Result<Latest, CreateError> {
            let geo = Geometry::new(self.max_value, self.max_writers)
                .map_err(|reason| CreateError::InvalidConfig { reason })?;
            let spec = CreateSpec {
                name: &self.name,
                dir: self.dir.as_deref(),
                file: None,
                mode: self.mode,
                kind: Kind::Latest,
                data_len: geo.data_len(),
                replace_stale: self.replace_stale,
                page_file: self.page_file,
            };
            let seg = file::create(&spec, |data, len| {
                assert!(len as u64 >= geo.data_len());
                // SAFETY: the data region is at least geo.data_len() bytes
                // (more than a Control), page aligned, zero-filled and not
                // yet visible to any other process; Control is atomics and
                // padding.
                let control = unsafe { &*data.cast::<Control>() };
                let set = |w: &AtomicU64, v: u64| w.store(v, Ordering::Relaxed);
                set(&control.layout_version, LAYOUT_VERSION);
                set(&control.max_value, geo.max_value as u64);
                set(&control.max_writers, u64::from(geo.max_writers));
                set(
                    &control.buffers_per_writer,
                    u64::from(super::layout::BUFFERS_PER_WRITER),
                );
            })?;
            Ok(Latest {
                seg: std::sync::Arc::new(seg),
                geo,
                writer: None,
                seen: 0,
            })
        }
    }

    /// Options for opening a latest-value slot; see [`Latest::open_options`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-latesto-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let mut server = memlane::Latest::builder("doc-latest-opened").dir(&dir).create()?;
    /// let mut client = memlane::Latest::open_options("doc-latest-opened").dir(&dir).open()?;
    /// server.set(b"ready")?;
    /// assert_eq!(client.get()?.unwrap().bytes(), b"ready");
    /// # drop((server, client));
    /// # memlane::remove(Some(&dir), "doc-latest-opened")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Debug, Clone)]
    pub struct LatestOpenOptions {
        name: String,
        dir: Option<PathBuf>,
        allow_other_owner: bool,
    }

    impl LatestOpenOptions {
        /// Looks in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
        pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
            self.dir = Some(dir.into());
            self
        }
        /// Accepts a slot owned by another user (refused by default).
        pub fn allow_other_owner(mut self, allow: bool) -> Self {
            self.allow_other_owner = allow;
            self
        }

        /// Opens the slot.
        ///
        /// # Errors
        ///
        /// [`OpenError::InvalidName`], [`OpenError::NotFound`]; for what is
        /// at the name: [`OpenError::WrongKind`] (not a latest-value slot),
        /// [`OpenError::NotMemlane`], [`OpenError::IncompatibleVersion`],
        /// [`OpenError::NotReady`], [`OpenError::SizeMismatch`],
        /// [`OpenError::Corrupt`] (its geometry is out of range or does not
        /// fit its size), [`OpenError::Symlink`], [`OpenError::HardLinked`],
        /// [`OpenError::NotAFile`]; [`OpenError::ForeignOwner`] (see
        /// [`allow_other_owner`](Self::allow_other_owner)),
        /// [`OpenError::PermissionDenied`], [`OpenError::Busy`] (another
        /// process kept the file locked for 2 s), or [`OpenError::Io`].
        pub fn open(self) -> Result<Latest, OpenError> {
            self.open_with(Access::ReadWrite)
        }

        /// Opens the slot **read-only**, takes a snapshot of its state (as
        /// [`Latest::info`]) and closes it again: for monitors (`memlane
        /// top`) that must never write to what they watch. No writer joins
        /// and no handle to the read-only mapping escapes.
        ///
        /// # Examples
        ///
        /// ```
        /// use memlane::Latest;
        /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-linsp-").tempdir()?;
        /// # let dir = tmp.path().to_path_buf();
        /// let mut slot = Latest::builder("doc-l-inspected").dir(&dir).max_value(8).create()?;
        /// slot.set(b"v1")?;
        /// let info = Latest::open_options("doc-l-inspected").dir(&dir).inspect()?;
        /// assert_eq!(info.version, 1);
        /// # drop(slot);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        ///
        /// # Errors
        ///
        /// As [`open`](Self::open).
        pub fn inspect(self) -> Result<LatestInfo, OpenError> {
            Ok(self.open_with(Access::ReadOnly)?.info())
        }

        #[allow(unsafe_code)] // see the SAFETY comment inside
        fn open_with(self, access: Access) -> Result<Latest, OpenError> {
            let seg = file::open(&OpenSpec {
                name: &self.name,
                dir: self.dir.as_deref(),
                access,
                kind: Some(Kind::Latest),
                what: Missing::Named(Kind::Latest),
                view: None,
                allow_other_owner: self.allow_other_owner,
            })?;
            let corrupt = |reason: String| OpenError::Corrupt {
                path: seg.path().to_path_buf(),
                reason,
            };
            if (seg.data_len() as u64) < SLOTS_OFFSET {
                return Err(corrupt("too small for a latest-value slot".into()));
            }
            // SAFETY: the data region (its length from this process's own
            // fstat) holds at least a Control (checked above), page aligned;
            // Control is atomics and padding. Each field is loaded once and
            // validated below.
            let control = unsafe { &*seg.data_ptr().cast::<Control>() };
            let load = |w: &AtomicU64| w.load(Ordering::Relaxed);
            let geo = Geometry::from_control(
                load(&control.layout_version),
                load(&control.max_value),
                load(&control.max_writers),
                load(&control.buffers_per_writer),
                seg.data_len() as u64,
            )
            .map_err(corrupt)?;
            Ok(Latest {
                seg: std::sync::Arc::new(seg),
                geo,
                writer: None,
                seen: 0,
            })
        }
    }

    impl Latest {
        /// Creates the slot `name` in `$MEMLANE_DIR` or `/dev/shm`, owner
        /// only, for values of up to `max_value` bytes and
        /// [`DEFAULT_MAX_WRITERS`] writers; [`Latest::builder`] for more.
        ///
        /// # Errors
        ///
        /// See [`LatestBuilder::create`].
        pub fn create(name: &str, max_value: usize) -> Result<Latest, CreateError> {
            Latest::builder(name).max_value(max_value).create()
        }

        /// Starts building a slot named `name` with more options.
        pub fn builder(name: &str) -> LatestBuilder {
            LatestBuilder {
                name: name.to_string(),
                dir: None,
                mode: DEFAULT_MODE,
                max_value: DEFAULT_MAX_VALUE,
                max_writers: DEFAULT_MAX_WRITERS,
                replace_stale: true,
                page_file: false,
            }
        }

        /// Opens the slot `name` in `$MEMLANE_DIR` or `/dev/shm`;
        /// [`Latest::open_options`] for another directory.
        ///
        /// # Errors
        ///
        /// See [`LatestOpenOptions::open`].
        pub fn open(name: &str) -> Result<Latest, OpenError> {
            Latest::open_options(name).open()
        }

        /// Starts opening the slot `name` with more options.
        pub fn open_options(name: &str) -> LatestOpenOptions {
            LatestOpenOptions {
                name: name.to_string(),
                dir: None,
                allow_other_owner: false,
            }
        }

        /// Removes the slot's name from `$MEMLANE_DIR` or `/dev/shm`
        /// ([`memlane::remove`](crate::remove) for another directory).
        ///
        /// # Errors
        ///
        /// See [`memlane::remove`](crate::remove).
        pub fn remove(name: &str) -> Result<(), RemoveError> {
            crate::remove(None, name)
        }

        fn view(&self) -> View<'_> {
            view_of(&self.seg, self.geo)
        }

        /// Writes `value` as the slot's newest value and wakes waiting
        /// readers; returns its version. The first `set` of a handle takes
        /// one of the slot's writer slots (kept until the handle is
        /// dropped, or its process dies).
        ///
        /// If another writer's `set` with a higher version completes first,
        /// this value is ordered before it and never read (the version is
        /// still returned).
        ///
        /// # Errors
        ///
        /// [`SetError::TooLarge`] for a value over
        /// [`max_value`](Latest::max_value) bytes (nothing is written),
        /// [`SetError::NoWriterSlot`] if every writer slot is held by a live
        /// process, [`SetError::Liveness`] if the slot's file could not be
        /// opened again or locked, [`SetError::VersionsExhausted`] after 2^52
        /// writes.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-set-").tempdir()?;
        /// # let dir = tmp.path().to_path_buf();
        /// let mut slot = memlane::Latest::builder("doc-set").max_value(4).dir(&dir).create()?;
        /// assert_eq!(slot.set(b"abcd")?, 1);
        /// assert!(matches!(slot.set(b"abcde"), Err(memlane::SetError::TooLarge { len: 5, max: 4 })));
        /// # drop(slot);
        /// # memlane::remove(Some(&dir), "doc-set")?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[doc(alias = "store")]
        pub fn set(&mut self, value: &[u8]) -> Result<u64, SetError> {
            if value.len() > self.geo.max_value {
                return Err(SetError::TooLarge {
                    len: value.len(),
                    max: self.geo.max_value,
                });
            }
            if self.writer.is_none() {
                self.writer = Some(self.take_writer_slot()?);
            }
            let writer = self.writer.as_mut().expect("a writer slot");
            let result = view_of(&self.seg, self.geo).write(
                &mut writer.state,
                value,
                &OsFutex,
                Barrier::Fences,
            );
            match result {
                Ok(Written::Published(v) | Written::Superseded(v)) => Ok(v),
                Err(WriteFail::VersionsExhausted) => Err(SetError::VersionsExhausted {
                    path: self.seg.path().to_path_buf(),
                }),
            }
        }

        fn take_writer_slot(&self) -> Result<Writer, SetError> {
            let liveness = |e: std::io::Error| SetError::Liveness {
                path: self.seg.path().to_path_buf(),
                reason: e.to_string(),
            };
            let lock = LockFile::open_segment(&self.seg).map_err(liveness)?;
            let view = self.view();
            for w in 0..self.geo.max_writers {
                // Free slots first is not needed: whoever holds a slot's
                // lock owns the slot, so a slot whose lock is free is free
                // or its writer died; either way it is this handle's now.
                if lock
                    .try_lock_at(LOCK_BASE + u64::from(w))
                    .map_err(liveness)?
                {
                    let pid = u64::from(sys::current_pid());
                    view.slot(w)
                        .store((pid << 32) | SLOT_ACTIVE, Ordering::Release);
                    return Ok(Writer {
                        lock,
                        state: WriterState { slot: w, next: 0 },
                    });
                }
            }
            Err(SetError::NoWriterSlot {
                path: self.seg.path().to_path_buf(),
                max_writers: self.geo.max_writers,
            })
        }

        /// Reads the newest complete value, or `None` while nothing was
        /// written, and marks it seen (for [`wait`](Latest::wait) and
        /// [`has_changed`](Latest::has_changed)).
        ///
        /// # Errors
        ///
        /// [`GetError::Corrupt`] if the slot's shared words break the format
        /// (a buffer that does not exist, a length over `max_value`),
        /// [`GetError::Contended`] if every one of many copies was changed
        /// while being taken (a writer that breaks the protocol).
        pub fn get(&mut self) -> Result<Option<Value>, GetError> {
            let mut bytes = Vec::new();
            Ok(self
                .get_into(&mut bytes)?
                .map(|version| Value { version, bytes }))
        }

        /// Like [`get`](Latest::get), into `buf` (its contents replaced; no
        /// allocation once it has room for `max_value` bytes); returns the
        /// version.
        ///
        /// # Errors
        ///
        /// As for [`get`](Latest::get).
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-getinto-").tempdir()?;
        /// # let dir = tmp.path().to_path_buf();
        /// let mut slot = memlane::Latest::builder("doc-get-into").dir(&dir).create()?;
        /// let mut buf = Vec::with_capacity(slot.max_value());
        /// assert_eq!(slot.get_into(&mut buf)?, None);
        /// slot.set(b"42")?;
        /// assert_eq!(slot.get_into(&mut buf)?, Some(1));
        /// assert_eq!(buf, b"42");
        /// # drop(slot);
        /// # memlane::remove(Some(&dir), "doc-get-into")?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn get_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<u64>, GetError> {
            let path = || self.seg.path().to_path_buf();
            match self.view().read(buf) {
                Ok(v) => {
                    if let Some(v) = v {
                        self.seen = v;
                    }
                    Ok(v)
                }
                Err(ReadFail::BadBuffer(b)) => Err(GetError::Corrupt {
                    path: path(),
                    reason: format!(
                        "the current value names buffer {b}; there are {}",
                        self.geo.buffers()
                    ),
                }),
                Err(ReadFail::BadLength(len)) => Err(GetError::Corrupt {
                    path: path(),
                    reason: format!(
                        "the current value is {len} bytes long; the maximum is {}",
                        self.geo.max_value
                    ),
                }),
                Err(ReadFail::Contended) => Err(GetError::Contended {
                    path: path(),
                    attempts: READ_ATTEMPTS,
                }),
            }
        }

        /// The newest value's version, 0 while nothing was written (one
        /// load; nothing is copied).
        pub fn version(&self) -> u64 {
            self.view().version()
        }

        /// Whether there is a value newer than the one this handle last read.
        pub fn has_changed(&self) -> bool {
            self.version() > self.seen
        }

        /// Blocks until there is a value newer than the one this handle last
        /// read with [`get`](Latest::get) (at once if there already is);
        /// `get` then reads it. Spins briefly, then sleeps on the slot's
        /// event.
        pub fn wait(&mut self) {
            while !self.wait_deadline(None) {}
        }

        /// Like [`wait`](Latest::wait), for at most `timeout`; returns
        /// whether a newer value is there.
        ///
        /// # Examples
        ///
        /// ```
        /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-lwait-").tempdir()?;
        /// # let dir = tmp.path().to_path_buf();
        /// use std::time::Duration;
        /// let mut reader = memlane::Latest::builder("doc-wait").dir(&dir).create()?;
        /// let mut writer = memlane::Latest::open_options("doc-wait").dir(&dir).open()?;
        /// assert!(!reader.wait_timeout(Duration::from_millis(1)));
        /// writer.set(b"new")?;
        /// assert!(reader.wait_timeout(Duration::from_secs(1)));
        /// assert_eq!(reader.get()?.unwrap().bytes(), b"new");
        /// assert!(!reader.has_changed());
        /// # drop((reader, writer));
        /// # memlane::remove(Some(&dir), "doc-wait")?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
            self.wait_deadline(Some(Instant::now() + timeout))
        }

        /// Hooks of the async layer (`crate::asynk`): whether a newer
        /// value than the one last read is there, and the slot's event.
        #[cfg(feature = "async")]
        pub(crate) fn async_source(&self) -> (bool, LatestEvent) {
            let ev = LatestEvent {
                seg: self.seg.clone(),
                geo: self.geo,
            };
            (self.has_changed(), ev)
        }

        fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
            let seen = self.seen;
            let view = self.view();
            view.event.wait_until(
                &OsFutex,
                Barrier::Fences,
                DEFAULT_SPIN / 4,
                deadline,
                RECHECK,
                || view.version() > seen,
            )
        }

        /// The largest value in bytes.
        pub fn max_value(&self) -> usize {
            self.geo.max_value
        }

        /// The number of writer slots.
        pub fn max_writers(&self) -> u32 {
            self.geo.max_writers
        }

        /// The slot's name.
        pub fn name(&self) -> &str {
            self.seg.name()
        }

        /// The slot's file.
        pub fn path(&self) -> &Path {
            self.seg.path()
        }

        /// Settings, versions and writers (each writer slot that is not
        /// free, with whether its process lives).
        pub fn info(&self) -> LatestInfo {
            let view = self.view();
            let writers = (0..self.geo.max_writers)
                .filter_map(|w| {
                    let word = view.slot(w).load(Ordering::Acquire);
                    if word & 0xffff_ffff == SLOT_FREE {
                        return None;
                    }
                    let pid = (word >> 32) as u32;
                    let liveness = if !liveness::byte_held(&self.seg, LOCK_BASE + u64::from(w)) {
                        Liveness::Dead
                    } else if sys::process_stopped(pid) {
                        Liveness::Stalled
                    } else {
                        Liveness::Alive
                    };
                    Some(WriterInfo {
                        slot: w,
                        pid,
                        liveness,
                    })
                })
                .collect();
            let info = self.seg.info();
            LatestInfo {
                name: self.seg.name().to_string(),
                path: self.seg.path().to_path_buf(),
                max_value: self.geo.max_value,
                max_writers: self.geo.max_writers,
                creator_pid: info.creator_pid,
                version: view.version(),
                writes: view.next_version.load(Ordering::Relaxed),
                writers,
            }
        }
    }

    /// A slot's "value changed" event, for the async reactor (holds the
    /// mapping).
    #[cfg(feature = "async")]
    pub(crate) struct LatestEvent {
        seg: std::sync::Arc<RawSegment>,
        geo: Geometry,
    }

    #[cfg(feature = "async")]
    impl crate::asynk::reactor::WaitSource for LatestEvent {
        fn event(&self) -> &crate::sync::event_word::EventWord {
            view_of(&self.seg, self.geo).event
        }
    }

    /// The shared words of the slot mapped by `seg`, laid out by `geo` (a
    /// function of the two fields, so that a writer's state can be borrowed
    /// beside it).
    #[allow(unsafe_code)] // see the SAFETY comment inside
    fn view_of(seg: &RawSegment, geo: Geometry) -> View<'_> {
        let base = seg.data_ptr();
        // SAFETY: the data region is at least geo.data_len() bytes
        // (validated on open, made so on create), page aligned, and lives
        // as long as `seg`; Control and EventLine are atomics and padding
        // at 8-aligned offsets 0 and EVENT_OFFSET; the words from
        // SLOTS_OFFSET to data_len() are 8-aligned and accessed only as
        // atomics by every process.
        unsafe {
            let control = &*base.cast::<Control>();
            let event = &*base.add(EVENT_OFFSET as usize).cast::<EventLine>();
            let words = std::slice::from_raw_parts(
                base.add(SLOTS_OFFSET as usize).cast::<AtomicU64>(),
                geo.words(),
            );
            View {
                geo,
                current: &control.current,
                next_version: &control.next_version,
                event: &event.event,
                words,
            }
        }
    }

    impl Drop for Latest {
        fn drop(&mut self) {
            if let Some(w) = self.writer.take() {
                // Free before unlocking: a slot whose lock is free is taken
                // by the next writer whatever its word says.
                self.view()
                    .slot(w.state.slot)
                    .store(SLOT_FREE, Ordering::Release);
                w.lock.unlock_at(LOCK_BASE + u64::from(w.state.slot));
            }
        }
    }
}
