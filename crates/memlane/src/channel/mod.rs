//! Channels: publishers and subscribers exchanging variable-length
//! messages through a ring in a shared segment.
//!
//! Every subscriber receives every message published after it joined,
//! exactly once, in ring order; nothing is lost: when the slowest
//! subscriber is a full ring behind, [`Publisher::send`] waits,
//! [`Publisher::send_timeout`] waits up to a bound and
//! [`Publisher::try_send`] returns [`TrySendError::Full`](crate::TrySendError::Full).
//! The protocol is described in `ring.rs` and `docs/ARCHITECTURE.md`.

#[cfg(feature = "async")]
pub(crate) mod async_hooks;
pub(crate) mod layout;
pub(crate) mod liveness;
#[allow(unsafe_code)]
mod publisher;
#[allow(unsafe_code)]
pub(crate) mod region;
pub(crate) mod repair;
#[allow(unsafe_code)]
pub(crate) mod ring;
#[allow(unsafe_code)]
mod shm;
#[allow(unsafe_code)]
mod subscriber;
mod trust;
#[allow(unsafe_code)]
mod type_block;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use layout::{MAX_CAPACITY, MAX_ENDPOINTS, MIN_CAPACITY};
pub use liveness::Liveness;
pub use publisher::UninitLoan;
pub use publisher::{Loan, Publisher};
pub use subscriber::{Batch, BatchIter, DEFAULT_DISCONNECT_GRACE};
pub use subscriber::{Iter, Message, Subscriber, TryIter};

use crate::error::{CreateError, JoinError, Missing, OpenError, RemoveError};
use crate::file::{self, CreateSpec, OpenSpec};
use crate::segment::header::Kind;
use crate::segment::{Access, Disposition, DEFAULT_MODE};
use crate::sync::{Barrier, Ordering};
use layout::{Config, Geometry, SLOT_ACTIVE, SLOT_CLAIMED, SLOT_LOSSY};
use ring::RingMem;
use shm::ShmRing;

/// The default ring capacity: 1 MiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;
/// The default maximum message size: 64 KiB (or less, to fit the capacity).
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 10;
/// The default maximum number of publishers and of subscribers.
pub const DEFAULT_MAX_ENDPOINTS: u32 = 8;

/// What a channel does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Nothing is lost: publishers wait for the slowest subscriber.
    Lossless,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Lossless => "lossless",
        })
    }
}

/// A handle to a channel: makes publishers and subscribers and reports
/// on them.
///
/// # Examples
///
/// ```
/// use memlane::Channel;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-chan-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = Channel::builder("doc-chat").capacity(64 * 1024).dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// publ.send(b"hello")?;
/// assert_eq!(&*sub.recv()?, b"hello");
/// # drop((sub, publ, channel));
/// memlane::remove(Some(&dir), "doc-chat")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Channel {
    ring: Arc<ShmRing>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name())
            .field("path", &self.path())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Options for creating a channel; see [`Channel::builder`].
///
/// # Examples
///
/// ```
/// use memlane::Channel;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-chb-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = Channel::builder("doc-ch-built")
///     .dir(&dir)
///     .capacity(64 * 1024)
///     .max_message(1024)
///     .max_publishers(1)
///     .create()?;
/// assert_eq!(channel.max_message(), 1024);
/// # drop(channel);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    name: String,
    capacity: u64,
    max_message: Option<u64>,
    max_publishers: u32,
    max_subscribers: u32,
    dir: Option<PathBuf>,
    file: Option<(PathBuf, Disposition)>,
    mode: u32,
    /// The encoded type record of a typed channel (`crate::typed`), or
    /// why the type cannot be recorded (`create` fails with it).
    type_record: Option<Result<Vec<u8>, String>>,
    initial_position: u64,
    replace_stale: bool,
    page_file: bool,
    membarrier: bool,
    copy_messages: bool,
}

impl ChannelBuilder {
    /// Records an encoded type record (`crate::typed`) in the channel.
    pub(crate) fn type_record(mut self, record: Vec<u8>) -> Self {
        self.type_record = Some(Ok(record));
        self
    }

    /// Makes `create` fail with [`CreateError::InvalidConfig`]: the type
    /// asked for cannot be recorded (`reason`).
    #[cfg(feature = "schema")]
    pub(crate) fn type_record_error(mut self, reason: String) -> Self {
        self.type_record = Some(Err(reason));
        self
    }

    /// Whether the channel orders its wake-ups (and, with one publisher
    /// slot, its joins) with Linux's `membarrier` system call when this
    /// process can use it (default true). A send or receive then needs no
    /// memory fence, and a channel created with
    /// [`max_publishers(1)`](Self::max_publishers) moves its head without
    /// an atomic read-modify-write; a receiver about to sleep (and a
    /// joining subscriber) pays a `membarrier` of a few microseconds
    /// instead. Every process that opens such a channel must be able to
    /// use `membarrier` (Linux 4.16+, not blocked by seccomp), or the open
    /// fails with [`OpenError::MembarrierUnavailable`]. Off, or on other
    /// systems, both sides use fences.
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-mb-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let ch = memlane::Channel::builder("fenced")
    ///     .dir(&dir)
    ///     .membarrier(false)
    ///     .create()?;
    /// assert!(!ch.info().membarrier);
    /// # drop(ch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn membarrier(mut self, on: bool) -> Self {
        self.membarrier = on;
        self
    }

    /// Whether this process's endpoints of the channel copy every message
    /// (`true`) or decide from who can write the file (`false`, the
    /// default): see [`Channel::copies_messages`]. A channel created with a
    /// [`mode`](Self::mode) that lets group or others write is copied
    /// anyway. Copying costs a `memcpy` of each payload and is what keeps a
    /// process sound when peers it does not trust write the file.
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-copy-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let ch = memlane::Channel::builder("copied")
    ///     .dir(&dir)
    ///     .copy_messages(true)
    ///     .create()?;
    /// assert!(ch.copies_messages());
    /// let mut sub = ch.subscriber()?;
    /// ch.publisher()?.send(b"mine")?;
    /// assert_eq!(&*sub.recv()?, b"mine"); // a private copy
    /// # drop((sub, ch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copy_messages(mut self, copy: bool) -> Self {
        self.copy_messages = copy;
        self
    }

    /// On Windows, puts the channel in a page-file-backed named mapping
    /// (`Local\memlane.NAME`) that lives only while some process has it
    /// open, instead of a file in the segment directory; see
    /// [`SegmentBuilder::page_file`](crate::SegmentBuilder::page_file).
    /// The endpoints' liveness locks then live on a lock file
    /// `.memlane-lk.NAME` in the segment directory. On
    /// Linux this changes nothing.
    pub fn page_file(mut self, page_file: bool) -> Self {
        self.page_file = page_file;
        self
    }
    /// Whether a stale channel at the name (one of this user's that no
    /// live process holds: its users exited or crashed) is replaced
    /// instead of reported as `AlreadyExists` (default true).
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }
    /// Ring capacity in bytes: a power of two from 4 KiB to 16 GiB
    /// (default 1 MiB).
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self
    }
    /// Largest message in bytes: at most half the capacity less 16 (so the
    /// largest message always fits an empty ring); default 64 KiB, or that
    /// limit if smaller. (Message sizes are `usize` throughout the API:
    /// they size the slices that hold messages; ring and file sizes are
    /// `u64`.)
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes as u64);
        self
    }
    /// Most publishers at once (default 8, at most [`MAX_ENDPOINTS`]).
    pub fn max_publishers(mut self, n: u32) -> Self {
        self.max_publishers = n;
        self
    }
    /// Most subscribers at once (default 8, at most [`MAX_ENDPOINTS`]).
    pub fn max_subscribers(mut self, n: u32) -> Self {
        self.max_subscribers = n;
        self
    }
    /// Creates the channel in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Backs the channel by a file (create-new or create-always).
    pub fn file(mut self, path: impl Into<PathBuf>, disposition: Disposition) -> Self {
        self.file = Some((path.into(), disposition));
        self
    }
    /// Permission bits (default 0o600, owner only).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }
    /// Starts the position counters at `position` (a multiple of 16);
    /// for testing wrap-around of the 64-bit counters.
    #[doc(hidden)]
    pub fn initial_position(mut self, position: u64) -> Self {
        self.initial_position = position;
        self
    }

    /// Creates the channel.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidConfig`] for a capacity, message size or
    /// endpoint count out of range, or a file with
    /// [`Disposition::OpenExisting`] (open channels with
    /// [`Channel::open_options`]); [`CreateError::InvalidName`],
    /// [`CreateError::AlreadyExists`], [`CreateError::NoDirectory`],
    /// [`CreateError::PermissionDenied`], [`CreateError::NoSpace`] and
    /// [`CreateError::Io`] as for
    /// [`SegmentBuilder::create`](crate::SegmentBuilder::create).
    #[allow(unsafe_code)] // see the SAFETY comment inside
    pub fn create(self) -> Result<Channel, CreateError> {
        let max_message = self.max_message.unwrap_or_else(|| {
            (DEFAULT_MAX_MESSAGE as u64)
                .min((self.capacity / 2).saturating_sub(layout::RECORD_HEADER))
        });
        let geo = Geometry::new(
            self.capacity,
            max_message,
            self.max_publishers,
            self.max_subscribers,
            self.initial_position,
        )
        .map_err(|reason| CreateError::InvalidConfig { reason })?
        .with_barrier(if self.membarrier && crate::sys::membarrier_register() {
            Barrier::Membarrier
        } else {
            Barrier::Fences
        });
        let record: &[u8] = match &self.type_record {
            None => &[],
            Some(Ok(record)) => record,
            Some(Err(reason)) => {
                return Err(CreateError::InvalidConfig {
                    reason: reason.clone(),
                })
            }
        };
        let geo = geo
            .with_type_len(layout::round16(record.len() as u64).min(u64::from(u32::MAX)) as u32)
            .map_err(|reason| CreateError::InvalidConfig { reason })?;
        if let Some((_, Disposition::OpenExisting)) = self.file {
            return Err(CreateError::InvalidConfig {
                reason: "a channel file cannot be opened with create; use Channel::open".into(),
            });
        }
        let spec = CreateSpec {
            name: &self.name,
            dir: self.dir.as_deref(),
            file: self.file.as_ref().map(|(p, d)| (p.as_path(), *d)),
            mode: self.mode,
            kind: Kind::Channel,
            data_len: geo.data_len(),
            replace_stale: self.replace_stale,
            page_file: self.page_file,
        };
        let config = geo.config();
        let seg = file::create(&spec, |data, len| {
            assert!(len as u64 >= geo.data_len());
            // SAFETY: the data region is at least ring_offset + capacity
            // bytes, page aligned, zero-filled and not yet visible to any
            // other process; Config is plain integers.
            unsafe {
                std::ptr::write(data.cast::<Config>(), config);
                let claim = &*data
                    .add(layout::CLAIM_OFFSET as usize)
                    .cast::<std::sync::atomic::AtomicU64>();
                claim.store(geo.initial_position, std::sync::atomic::Ordering::Relaxed);
                type_block::write(data, &geo, record);
            }
        })?;
        let copy = self.copy_messages || !trust::created_private(self.mode);
        Ok(Channel {
            ring: Arc::new(ShmRing::new(seg, geo, copy)),
        })
    }
}

impl Channel {
    /// Starts building a channel named `name` with more options
    /// (directory, sizes, endpoint counts, file, mode...).
    pub fn builder(name: &str) -> ChannelBuilder {
        ChannelBuilder {
            name: name.to_string(),
            capacity: DEFAULT_CAPACITY,
            max_message: None,
            max_publishers: DEFAULT_MAX_ENDPOINTS,
            max_subscribers: DEFAULT_MAX_ENDPOINTS,
            dir: None,
            file: None,
            mode: DEFAULT_MODE,
            initial_position: 0,
            replace_stale: true,
            page_file: false,
            membarrier: true,
            copy_messages: false,
            type_record: None,
        }
    }

    /// Creates the channel `name` in `$MEMLANE_DIR` or `/dev/shm` with the
    /// default settings ([`DEFAULT_CAPACITY`], [`DEFAULT_MAX_MESSAGE`],
    /// [`DEFAULT_MAX_ENDPOINTS`]); [`Channel::builder`] for others.
    ///
    /// # Errors
    ///
    /// See [`ChannelBuilder::create`].
    pub fn create(name: &str) -> Result<Channel, CreateError> {
        Channel::builder(name).create()
    }

    /// Opens the channel `name` in `$MEMLANE_DIR` or `/dev/shm`;
    /// [`Channel::open_options`] for another directory.
    ///
    /// # Errors
    ///
    /// See [`ChannelOpenOptions::open`].
    pub fn open(name: &str) -> Result<Channel, OpenError> {
        Channel::open_options(name).open()
    }

    /// Starts opening the channel `name` with more options (directory,
    /// owner, copying).
    pub fn open_options(name: &str) -> ChannelOpenOptions {
        ChannelOpenOptions {
            name: name.to_string(),
            dir: None,
            allow_other_owner: false,
            copy_messages: false,
        }
    }

    fn open_impl(
        name: &str,
        dir: Option<&Path>,
        allow_other_owner: bool,
        copy_messages: bool,
        access: Access,
    ) -> Result<Channel, OpenError> {
        let seg = file::open(&OpenSpec {
            name,
            dir,
            access,
            kind: Some(Kind::Channel),
            what: Missing::Named(Kind::Channel),
            view: None,
            allow_other_owner,
        })?;
        Channel::from_segment(seg, copy_messages)
    }

    /// Opens a file-backed channel by the path of its file instead of its
    /// name, e.g. after a reboot emptied `/dev/shm` of its name (the file
    /// keeps the ring: subscribe with
    /// [`subscriber_from_oldest`](Channel::subscriber_from_oldest) to replay
    /// it). The file must be this user's (see
    /// [`ChannelOpenOptions::allow_other_owner`] for the rule by name).
    ///
    /// # Errors
    ///
    /// As for [`ChannelOpenOptions::open`], with [`OpenError::NotFound`]
    /// when no file is at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Channel, OpenError> {
        let seg = file::open_path(&file::PathSpec {
            path: path.as_ref(),
            access: Access::ReadWrite,
            kind: Some(Kind::Channel),
            view: None,
            allow_other_owner: false,
        })?;
        Channel::from_segment(seg, false)
    }

    #[allow(unsafe_code)] // see the SAFETY comment inside
    fn from_segment(seg: file::RawSegment, copy_messages: bool) -> Result<Channel, OpenError> {
        if seg.data_len() < std::mem::size_of::<Config>() {
            return Err(OpenError::Corrupt {
                path: seg.path().to_path_buf(),
                reason: "too small for a channel".into(),
            });
        }
        // SAFETY: the data region holds at least a Config (checked above);
        // it is copied out, never referenced.
        let config = unsafe { std::ptr::read_volatile(seg.data_ptr().cast::<Config>()) };
        let geo = Geometry::from_config(&config, seg.data_len() as u64).map_err(|reason| {
            OpenError::Corrupt {
                path: seg.path().to_path_buf(),
                reason,
            }
        })?;
        if geo.barrier == Barrier::Membarrier && !crate::sys::membarrier_register() {
            return Err(OpenError::MembarrierUnavailable {
                path: seg.path().to_path_buf(),
            });
        }
        let copy = copy_messages || !trust::opened_private(seg.file(), seg.path());
        Ok(Channel {
            ring: Arc::new(ShmRing::new(seg, geo, copy)),
        })
    }

    /// A copy of the type record's bytes (empty when untyped; see
    /// `crate::typed::record`).
    pub(crate) fn type_record_bytes(&self) -> Vec<u8> {
        type_block::read(&self.ring)
    }

    /// Removes the channel's name from `$MEMLANE_DIR` or `/dev/shm`
    /// ([`memlane::remove`](crate::remove) for another directory);
    /// processes that have it open keep it.
    ///
    /// # Errors
    ///
    /// See [`memlane::remove`](crate::remove).
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        crate::remove(None, name)
    }

    /// Writes the channel's ring and control words back to its file
    /// (`msync`; Windows `FlushViewOfFile`), so that a file-backed channel
    /// holds them after a crash of the machine, not only of its processes.
    /// Anonymous channels (`/dev/shm`) have nothing to write back to.
    ///
    /// # Errors
    ///
    /// The OS error of `msync`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-chflush-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-flush")
    ///     .dir(&dir)
    ///     .file(dir.join("ring.bin"), memlane::Disposition::CreateNew)
    ///     .create()?;
    /// channel.publisher()?.send(b"kept on disk")?;
    /// channel.flush()?;
    /// # drop(channel);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> std::io::Result<()> {
        let seg = self.ring.segment();
        seg.flush_data_range(0, seg.data_len())
    }

    /// Joins as a publisher.
    ///
    /// # Errors
    ///
    /// [`JoinError::TooManyPublishers`] when every slot is taken;
    /// [`JoinError::SlotsLocked`] when free slots are locked by a process
    /// that has not joined; [`JoinError::Liveness`] when this endpoint's
    /// liveness lock cannot be taken (it never joins without one).
    pub fn publisher(&self) -> Result<Publisher, JoinError> {
        Publisher::join(self.ring.clone())
    }

    /// Joins as a subscriber: it receives every message published from now on.
    ///
    /// # Errors
    ///
    /// [`JoinError::TooManySubscribers`] when every slot is taken;
    /// [`JoinError::SlotsLocked`] and [`JoinError::Liveness`] as for
    /// [`Channel::publisher`]; [`JoinError::Evicted`] when publishers cut
    /// its join short several times in a row (this process was stopped or
    /// starved mid-join); [`JoinError::Corrupt`] when the channel's shared
    /// state is no position a joiner can start from;
    /// [`JoinError::MembarrierFailed`] when the channel orders joins with
    /// `membarrier` and it fails in this process.
    pub fn subscriber(&self) -> Result<Subscriber, JoinError> {
        Subscriber::join(self.ring.clone(), ring::Start::Now, false)
    }

    /// Joins as a subscriber that starts at the **oldest message still in
    /// the ring**, instead of at the next one published: a late joiner gets
    /// the recent history (as much of the last `capacity` bytes of records
    /// as is intact), then everything published after, in order. On a
    /// channel whose processes have all exited or were killed (a file-backed
    /// one even after a reboot, see [`Channel::open_path`]), this replays
    /// what the ring still holds; a record whose publisher died while
    /// writing it is skipped, never delivered torn.
    ///
    /// The join holds publishers back while it looks for the oldest record
    /// (a walk over the ring's record headers, once), and like any
    /// subscriber until it has read the history.
    ///
    /// # Errors
    ///
    /// As for [`Channel::subscriber`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-oldest-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-oldest").dir(&dir).create()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"before")?;
    /// publ.send(b"anyone listened")?;
    /// let mut late = channel.subscriber_from_oldest()?;
    /// assert_eq!(&*late.recv()?, b"before");
    /// assert_eq!(&*late.recv()?, b"anyone listened");
    /// # drop((late, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscriber_from_oldest(&self) -> Result<Subscriber, JoinError> {
        Subscriber::join(self.ring.clone(), ring::Start::Oldest, false)
    }

    /// Joins as a **lossy** subscriber: it never holds publishers back.
    /// When they lap it (write a ring's worth past what it has read), its
    /// next receive returns `Lagged` with what it lost (see
    /// [`Lagged`](crate::Lagged)), and it goes on from the oldest message
    /// still in the ring. Lossless subscribers of the same channel still
    /// hold publishers back; lossy ones never do.
    ///
    /// Every message it receives is copied into its own buffer and
    /// validated after the copy: a message publishers overwrote while it
    /// was read is never handed out (it counts as lost). So
    /// [`copies_messages`](Subscriber::copies_messages) is true for it.
    ///
    /// # Errors
    ///
    /// As for [`Channel::subscriber`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-lossy-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use memlane::TryRecvError;
    /// let channel = memlane::Channel::builder("doc-lossy").capacity(4096).dir(&dir).create()?;
    /// let mut slow = channel.lossy_subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// for i in 0..1000u32 {
    ///     publ.try_send(&i.to_le_bytes())?; // never Full
    /// }
    /// let lost = match slow.try_recv() {
    ///     Err(TryRecvError::Lagged(lag)) => lag.messages(),
    ///     other => panic!("{other:?}"),
    /// };
    /// let next = u32::from_le_bytes(slow.try_recv()?[..].try_into()?);
    /// assert_eq!(u64::from(next), lost); // it lost 0..next, and goes on from there
    /// # drop((slow, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lossy_subscriber(&self) -> Result<Subscriber, JoinError> {
        Subscriber::join(self.ring.clone(), ring::Start::Now, true)
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.ring.segment().name()
    }

    /// The file that holds it.
    pub fn path(&self) -> &Path {
        self.ring.segment().path()
    }

    /// Ring capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.ring.geometry().capacity
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.ring.geometry().max_message as usize
    }

    /// Whether this handle's subscribers copy each message out of the ring
    /// (and its publishers' loans are private buffers copied in at commit)
    /// instead of reading and writing in place.
    ///
    /// In place (zero-copy) is used only when no other user can write the
    /// file: it is this user's, has one link and grants no write permission
    /// to group or others, and nobody else can put another file at its name
    /// (its directory is this user's or root's, and not writable by others
    /// or sticky, as `/dev/shm` is). The only processes that can then change
    /// a message while it is read are this user's, which can already debug
    /// and write this process. Anything else (another user's channel, a
    /// `mode(0o660)` one, or [`copy_messages(true)`](ChannelBuilder::copy_messages))
    /// copies, so that no reference into bytes an untrusted process may
    /// write is ever handed out. Decided when the channel is created or
    /// opened; on Windows, where memlane does not read access control lists,
    /// channels are read in place unless `copy_messages(true)` is asked for.
    /// See `docs/RELIABILITY.md` for what holds against a hostile writer in
    /// each mode.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-copies-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let private = memlane::Channel::builder("own").dir(&dir).create()?; // mode 0600
    /// # #[cfg(unix)]
    /// assert!(!private.copies_messages());
    /// let shared = memlane::Channel::builder("group").dir(&dir).mode(0o660).create()?;
    /// # #[cfg(unix)]
    /// assert!(shared.copies_messages());
    /// # drop((private, shared));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies_messages(&self) -> bool {
        self.ring.copy_messages()
    }

    /// Reclaims the slots of publishers and subscribers whose processes
    /// died without leaving: a dead subscriber stops holding publishers
    /// back. A dead publisher's slot is reclaimed here only if no
    /// subscriber waits on a message it had claimed but not committed;
    /// such a message is skipped (never delivered in part) by the
    /// subscribers blocked on it, which repair it themselves (only a
    /// subscriber whose own position keeps those bytes from being reused
    /// may write them). Endpoints do this by themselves when they are
    /// blocked; this is for tools and monitors. Returns how many
    /// publishers and subscribers were reclaimed.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-reap-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-reap").dir(&dir).create()?;
    /// let reaped = channel.reap();
    /// assert!(reaped.is_empty()); // nobody died
    /// assert_eq!((reaped.publishers, reaped.subscribers), (0, 0));
    /// # drop(channel);
    /// # memlane::remove(Some(&dir), "doc-reap")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reap(&self) -> Reaped {
        let (publishers, subscribers) = liveness::reap(&self.ring, None);
        Reaped {
            publishers,
            subscribers,
        }
    }

    /// A snapshot of the channel's state.
    pub fn info(&self) -> ChannelInfo {
        let m = &*self.ring;
        let g = *m.geometry();
        let head = m.claim().load(Ordering::SeqCst);
        let j = m.join();
        let mut messages = j.retired_messages.load(Ordering::Relaxed);
        let mut bytes = j.retired_bytes.load(Ordering::Relaxed);
        let mut publishers = Vec::new();
        for i in 0..g.max_publishers {
            let s = m.pub_slot(i);
            if s.state.load(Ordering::Acquire) == SLOT_ACTIVE {
                let (pm, pb) = (
                    s.messages.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                );
                messages = messages.wrapping_add(pm);
                bytes = bytes.wrapping_add(pb);
                let pid = s.pid.load(Ordering::Relaxed);
                publishers.push(PublisherInfo {
                    slot: i,
                    state: liveness::probe(m, liveness::Role::Publisher, i, pid),
                    pid,
                    messages: pm,
                    bytes: pb,
                });
            }
        }
        let mut subscribers = Vec::new();
        for i in 0..g.max_subscribers {
            let s = m.sub_slot(i);
            let state = s.state.load(Ordering::Acquire);
            if state == SLOT_ACTIVE || state == SLOT_CLAIMED || state == SLOT_LOSSY {
                let position = s.position.load(Ordering::Acquire);
                let pid = s.pid.load(Ordering::Relaxed);
                subscribers.push(SubscriberInfo {
                    slot: i,
                    state: liveness::probe(m, liveness::Role::Subscriber, i, pid),
                    pid,
                    position,
                    lag: head.wrapping_sub(position).min(g.capacity),
                    messages: s.messages.load(Ordering::Relaxed),
                    bytes: s.bytes.load(Ordering::Relaxed),
                    lossy: state == SLOT_LOSSY,
                    lost_messages: s.lost_messages.load(Ordering::Relaxed),
                    lost_bytes: s.lost_bytes.load(Ordering::Relaxed),
                });
            }
        }
        ChannelInfo {
            name: self.name().to_string(),
            path: self.path().to_path_buf(),
            capacity: g.capacity,
            max_message: g.max_message as usize,
            max_publishers: g.max_publishers,
            max_subscribers: g.max_subscribers,
            mode: Mode::Lossless,
            membarrier: g.barrier == Barrier::Membarrier,
            creator_pid: self.ring.segment().info().creator_pid,
            head,
            bytes_claimed: head.wrapping_sub(g.initial_position),
            messages_sent: messages,
            bytes_sent: bytes,
            publishers,
            subscribers,
        }
    }
}

/// Options for opening a channel; see [`Channel::open_options`].
///
/// # Examples
///
/// ```
/// use memlane::Channel;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-cho-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let created = Channel::builder("doc-ch-opened").dir(&dir).create()?;
/// let opened = Channel::open_options("doc-ch-opened")
///     .dir(&dir)
///     .copy_messages(true)
///     .open()?;
/// assert!(opened.copies_messages());
/// # drop((created, opened));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelOpenOptions {
    name: String,
    dir: Option<PathBuf>,
    allow_other_owner: bool,
    copy_messages: bool,
}

impl ChannelOpenOptions {
    /// Looks in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Accepts a channel owned by another user (refused by default).
    pub fn allow_other_owner(mut self, allow: bool) -> Self {
        self.allow_other_owner = allow;
        self
    }
    /// Copies every message even if only this user can write the file (see
    /// [`Channel::copies_messages`]; default false: decided from the file).
    pub fn copy_messages(mut self, copy: bool) -> Self {
        self.copy_messages = copy;
        self
    }
    /// Opens the channel.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::NotFound`]; for what is at
    /// the name: [`OpenError::WrongKind`] (not a channel),
    /// [`OpenError::NotMemlane`], [`OpenError::IncompatibleVersion`],
    /// [`OpenError::NotReady`], [`OpenError::SizeMismatch`],
    /// [`OpenError::Corrupt`] (its configuration is inconsistent),
    /// [`OpenError::Symlink`], [`OpenError::HardLinked`],
    /// [`OpenError::NotAFile`]; [`OpenError::MembarrierUnavailable`] if
    /// the channel uses `membarrier` and this process cannot;
    /// [`OpenError::ForeignOwner`] (see
    /// [`allow_other_owner`](Self::allow_other_owner)),
    /// [`OpenError::PermissionDenied`], [`OpenError::Busy`] (another
    /// process kept the file locked for 2 s), or [`OpenError::Io`].
    pub fn open(self) -> Result<Channel, OpenError> {
        Channel::open_impl(
            &self.name,
            self.dir.as_deref(),
            self.allow_other_owner,
            self.copy_messages,
            Access::ReadWrite,
        )
    }

    /// Opens the channel **read-only**, takes a snapshot of its state (as
    /// [`Channel::info`]) and closes it again: for monitors (`memlane
    /// top`) that must never write to what they watch. The file is opened
    /// and mapped without write access, no endpoint joins, no slot is
    /// reclaimed; liveness is probed by testing the endpoints' locks
    /// without taking them. No handle to the read-only mapping escapes, so
    /// nothing can write through it.
    ///
    /// The snapshot's counters are read from shared memory another process
    /// writes: the configuration is validated (as by
    /// [`open`](Self::open)), slot counts come from it, and `lag` is
    /// clamped to the capacity; the counters themselves are reported as
    /// found.
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane::Channel;
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-insp-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = Channel::builder("doc-inspected").dir(&dir).create()?;
    /// let mut publisher = channel.publisher()?;
    /// publisher.send(b"hello")?;
    /// let info = Channel::open_options("doc-inspected").dir(&dir).inspect()?;
    /// assert_eq!(info.messages_sent, 1);
    /// assert_eq!(info.publishers.len(), 1);
    /// # drop((publisher, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) (a corrupt channel is
    /// [`OpenError::Corrupt`], [`OpenError::NotMemlane`], ...).
    pub fn inspect(self) -> Result<ChannelInfo, OpenError> {
        let channel = Channel::open_impl(
            &self.name,
            self.dir.as_deref(),
            self.allow_other_owner,
            // Never hand out references into the read-only mapping.
            true,
            Access::ReadOnly,
        )?;
        Ok(channel.info())
    }
}

/// What [`Channel::reap`] reclaimed.
///
/// # Examples
///
/// ```
/// let nothing = memlane::Reaped::default();
/// assert!(nothing.is_empty());
/// assert_eq!(nothing.publishers + nothing.subscribers, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Reaped {
    /// Publisher slots of dead processes reclaimed.
    pub publishers: u32,
    /// Subscriber slots of dead processes reclaimed.
    pub subscribers: u32,
}

impl Reaped {
    /// Whether nothing was reclaimed.
    pub fn is_empty(&self) -> bool {
        self.publishers == 0 && self.subscribers == 0
    }
}

/// A snapshot of a channel; see [`Channel::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Name.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// Ring capacity in bytes.
    pub capacity: u64,
    /// Largest message in bytes.
    pub max_message: usize,
    /// Publisher slots.
    pub max_publishers: u32,
    /// Subscriber slots.
    pub max_subscribers: u32,
    /// Full-ring behaviour.
    pub mode: Mode,
    /// Whether wake-ups (and single-publisher joins) are ordered with
    /// Linux `membarrier` instead of fences (see
    /// [`ChannelBuilder::membarrier`]).
    pub membarrier: bool,
    /// Pid of the creator.
    pub creator_pid: u32,
    /// The claim position (next byte to be reserved).
    pub head: u64,
    /// Ring bytes reserved since creation (records, headers and padding).
    pub bytes_claimed: u64,
    /// Messages committed since creation.
    pub messages_sent: u64,
    /// Payload bytes committed since creation.
    pub bytes_sent: u64,
    /// Publishers now joined.
    pub publishers: Vec<PublisherInfo>,
    /// Subscribers now joined.
    pub subscribers: Vec<SubscriberInfo>,
}

/// One publisher in [`ChannelInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherInfo {
    /// Slot index.
    pub slot: u32,
    /// Alive, stalled (its process is stopped) or dead (reclaimable with
    /// [`Channel::reap`]); known from the liveness lock it holds on the
    /// channel's file, not from its pid.
    pub state: Liveness,
    /// Process id (as recorded; pids can be reused).
    pub pid: u32,
    /// Messages sent.
    pub messages: u64,
    /// Payload bytes sent.
    pub bytes: u64,
}

/// One subscriber in [`ChannelInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberInfo {
    /// Slot index.
    pub slot: u32,
    /// Alive, stalled (its process is stopped) or dead (reclaimable with
    /// [`Channel::reap`]); known from the liveness lock it holds on the
    /// channel's file, not from its pid.
    pub state: Liveness,
    /// Process id (as recorded; pids can be reused).
    pub pid: u32,
    /// Next byte position it will read, as last published: a subscriber
    /// with a backlog publishes its progress every `capacity / 16` bytes
    /// (and at once when it catches up or a publisher waits for space), so
    /// this, `lag`, `messages` and `bytes` may trail by that much.
    pub position: u64,
    /// Ring bytes it has yet to read (head − position).
    pub lag: u64,
    /// Messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Whether it is lossy ([`Channel::lossy_subscriber`]): it holds no
    /// publisher back.
    pub lossy: bool,
    /// A lossy subscriber's messages lost to publishers that lapped it (see
    /// [`Lagged`](crate::Lagged) for how exact).
    pub lost_messages: u64,
    /// A lossy subscriber's ring bytes lost.
    pub lost_bytes: u64,
}
