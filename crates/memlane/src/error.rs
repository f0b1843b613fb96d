//! Error types: one enum per operation, each variant saying what happened
//! and what to do about it. OS errors are kept as `source()`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::name::MAX_NAME_LEN;
use crate::segment::Kind;

/// A segment name that breaks the naming rules (see [`validate_name`](crate::validate_name)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty: use 1 to {MAX_NAME_LEN} ASCII letters, digits, '.', '_' or '-'")]
    Empty,
    /// The name is longer than the maximum.
    #[error("the name is {len} bytes long; the maximum is {max}")]
    TooLong {
        /// The length given.
        len: usize,
        /// The maximum length.
        max: usize,
    },
    /// The name holds a character that is not allowed.
    #[error("invalid name {name:?}: {ch:?} is not allowed; names may contain only ASCII letters, digits, '.', '_' and '-'")]
    InvalidChar {
        /// The name given.
        name: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// The name starts with `.` or `-`.
    #[error("invalid name {name:?}: a name may not start with '.' or '-'")]
    BadStart {
        /// The name given.
        name: String,
    },
}

/// Why a segment, event or channel could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name breaks the naming rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Something already exists at the name (create-new was asked for).
    #[error("{what} already exists at {path} (remove it first with `memlane rm {name}`, or open it instead)")]
    AlreadyExists {
        /// The name given.
        name: String,
        /// What is at the name.
        what: Existing,
        /// Where it is.
        path: PathBuf,
    },
    /// A size or setting is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The directory to create the segment in does not exist.
    #[error("the segment directory {dir} does not exist (set MEMLANE_DIR or pass an existing directory)")]
    NoDirectory {
        /// The directory.
        dir: PathBuf,
    },
    /// The OS refused for lack of permission.
    #[error("permission denied creating {path}")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Not enough space on the file system (for `/dev/shm`, it is memory).
    #[error("no space for {size} bytes at {path}: free space in its file system or ask for a smaller size")]
    NoSpace {
        /// The path.
        path: PathBuf,
        /// The size asked for.
        size: u64,
    },
    /// An existing backing file to open could not be used.
    #[error("cannot use the existing file: {0}")]
    Open(#[source] Box<OpenError>),
    /// Any other OS error.
    #[error("{op} {path} failed")]
    Io {
        /// The step that failed.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What [`CreateError::AlreadyExists`] found in the way.
///
/// # Examples
///
/// ```
/// use memlane::{CreateError, Existing, Segment};
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-existing-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let seg = Segment::builder("doc-existing").size(64).dir(&dir).create()?;
/// match Segment::builder("doc-existing").size(64).dir(&dir).create() {
///     Err(CreateError::AlreadyExists { what: Existing::Segment, .. }) => {}
///     other => panic!("{other:?}"),
/// }
/// # drop(seg);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Existing {
    /// Something at the name in the segment directory: a segment, event,
    /// channel or file link of any kind, or a file memlane did not make.
    /// Displayed as "a segment".
    Segment,
    /// A page-file-backed named mapping of that name (Windows). Displayed
    /// as "a page-file segment".
    PageFile,
    /// A file at the backing-file path given with
    /// [`Disposition::CreateNew`](crate::Disposition::CreateNew).
    /// Displayed as "a file".
    File,
}

impl std::fmt::Display for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Existing::Segment => "a segment",
            Existing::PageFile => "a page-file segment",
            Existing::File => "a file",
        })
    }
}

/// What [`OpenError::NotFound`] looked for and did not find.
///
/// # Examples
///
/// ```
/// use memlane::{Channel, Kind, Missing, OpenError};
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-missing-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// match Channel::open_options("doc-missing").dir(&dir).open() {
///     Err(OpenError::NotFound { what: Missing::Named(Kind::Channel), .. }) => {}
///     other => panic!("{:?}", other.err()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// A segment, event or channel, looked up by its name in the segment
    /// directory. Displayed as the kind ("segment", "event", "channel").
    Named(Kind),
    /// A memlane file looked up by its path
    /// ([`Segment::open_path`](crate::Segment::open_path)). Displayed as
    /// "file".
    File,
    /// The backing file a file-backed segment's name points at (it was
    /// moved or removed). Displayed as "backing file".
    BackingFile,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Named(kind) => kind.fmt(f),
            Missing::File => f.write_str("file"),
            Missing::BackingFile => f.write_str("backing file"),
        }
    }
}

/// Why a segment, event or channel could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name breaks the naming rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Nothing exists at the name.
    #[error("no {what} '{name}' in {dir} (see `memlane list`)")]
    NotFound {
        /// What was looked for.
        what: Missing,
        /// The name given.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The file at the name does not start with a memlane header.
    #[error("{path} is not a memlane segment ({reason}); it was not created by memlane, remove it by hand if it is stale")]
    NotMemlane {
        /// The path.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// The segment was made by an incompatible version of memlane.
    #[error("{path} has format version {found}, this memlane reads version {expected}: use a matching memlane version, or remove and re-create it")]
    IncompatibleVersion {
        /// The path.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this library reads.
        expected: u32,
    },
    /// The channel was created to use Linux `membarrier` (see
    /// [`ChannelBuilder::membarrier`](crate::ChannelBuilder::membarrier))
    /// and this process cannot register for it.
    #[error("{path} was created to use the membarrier system call, which this process cannot use (a Linux kernel before 4.16, or a seccomp filter): allow membarrier here, or re-create the channel with membarrier(false) (`memlane create --no-membarrier`)")]
    MembarrierUnavailable {
        /// The path.
        path: PathBuf,
    },
    /// The segment's creator has not finished building it.
    #[error("{path} is not ready yet (its creator is still building it, or died doing so): retry shortly")]
    NotReady {
        /// The path.
        path: PathBuf,
    },
    /// The file length disagrees with the header.
    #[error("{path} is {file} bytes long but its header says {header}: the file was truncated or is corrupt")]
    SizeMismatch {
        /// The path.
        path: PathBuf,
        /// The length the header implies.
        header: u64,
        /// The length of the file.
        file: u64,
    },
    /// The segment is of another kind (for example a channel opened as an event).
    #[error("{path} is a memlane {found}, not a {expected}")]
    WrongKind {
        /// The path.
        path: PathBuf,
        /// The kind asked for.
        expected: Kind,
        /// The kind found.
        found: Kind,
    },
    /// The OS refused for lack of permission.
    #[error("permission denied opening {path} (check its owner and mode with `ls -l`)")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file belongs to another user (it could be a trap planted by
    /// them); open it with `allow_other_owner` if that user is trusted.
    #[error("{path} belongs to user id {owner}, not to you; if that user is trusted, open it with allow_other_owner(true) (`--allow-other-owner` on the command line)")]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
    },
    /// Another process kept an exclusive lock on the file for longer than
    /// `open` waits. memlane takes that lock only for moments (`gc`
    /// removing the name, or a re-creation replacing a stale file), so a
    /// lasting one is held by something else: anyone who can open the
    /// file can hold it.
    #[error(
        "{path} stayed locked exclusively by another process{} for {waited:?}, so it was not \
         opened: memlane holds that lock only for moments (gc, or a re-creation of the name); \
         retry, and if it lasts, stop the process holding it (see /proc/locks or `fuser`) or \
         remove the name with `memlane rm` and create it again",
        holder_text(.holder)
    )]
    Busy {
        /// The path.
        path: PathBuf,
        /// The process holding the lock, if the OS tells (Linux
        /// `/proc/locks`; informational only, pids are reused).
        holder: Option<u32>,
        /// How long `open` waited.
        waited: Duration,
    },
    /// A symlink is at the name; memlane never follows one.
    #[error("{path} is a symlink; memlane never follows symlinks at a segment name")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The file at the name has other hard links: it may be another file
    /// linked in to be overwritten through memlane.
    #[error("{path} has {links} hard links; memlane segments have exactly one, so this is not one memlane made (remove the name if it is stale)")]
    HardLinked {
        /// The path.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// Something other than a regular file is at the name.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A view outside the segment was asked for.
    #[error("the view {offset}+{len} lies outside the segment's {size} bytes")]
    ViewOutOfBounds {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// The segment's size.
        size: u64,
    },
    /// The contents of the segment are inconsistent.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// Any other OS error.
    #[error("{op} {path} failed")]
    Io {
        /// The step that failed.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// " (pid N)" when the holder of a lock is known.
fn holder_text(holder: &Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (pid {pid})"))
}

/// Why a segment could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name breaks the naming rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Nothing exists at the name.
    #[error("nothing named '{name}' in {dir} (see `memlane list`)")]
    NotFound {
        /// The name given.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The name is a page-file segment (Windows), which has no name to
    /// remove: it disappears when the last process holding it closes it.
    #[error(
        "'{name}' is a page-file segment ({object}): it cannot be removed by name, it disappears \
         when the last process holding it closes it"
    )]
    PageFile {
        /// The name given.
        name: String,
        /// The kernel object's name.
        object: String,
    },
    /// Any other OS error.
    #[error("removing {path} failed")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a read, write or flush of a segment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The range lies outside the mapped view.
    #[error("range {offset}+{len} lies outside the view of {size} bytes")]
    OutOfBounds {
        /// Offset asked for.
        offset: usize,
        /// Length asked for.
        len: usize,
        /// Length of the view.
        size: usize,
    },
    /// The view was opened read-only.
    #[error("the segment was opened read-only: open it with Access::ReadWrite or Access::CopyOnWrite to write")]
    ReadOnly,
    /// `msync` failed.
    #[error("flushing the segment failed")]
    Flush(#[source] io::Error),
    /// Another process truncated the segment's file: the bytes past its new
    /// end are gone (memlane caught the SIGBUS and read zeros instead).
    #[error(
        "the segment's file was truncated by another process; its contents are no longer valid"
    )]
    Truncated,
}

/// Which kind of endpoint of a channel: a [`Publisher`](crate::Publisher)
/// or a [`Subscriber`](crate::Subscriber). Displayed as `publisher` /
/// `subscriber`.
///
/// # Examples
///
/// ```
/// assert_eq!(memlane::EndpointRole::Subscriber.to_string(), "subscriber");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointRole {
    /// A publisher slot.
    Publisher,
    /// A subscriber slot.
    Subscriber,
}

impl std::fmt::Display for EndpointRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndpointRole::Publisher => "publisher",
            EndpointRole::Subscriber => "subscriber",
        })
    }
}

/// Why a publisher or subscriber could not join a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// Every publisher slot is taken.
    #[error("the channel already has its maximum of {max} publishers (create it with a larger max-publishers)")]
    TooManyPublishers {
        /// The maximum.
        max: u32,
    },
    /// Every subscriber slot is taken.
    #[error("the channel already has its maximum of {max} subscribers (create it with a larger max-subscribers)")]
    TooManySubscribers {
        /// The maximum.
        max: u32,
    },
    /// The channel orders joins with Linux `membarrier`, and it failed in
    /// this process (which could use it when it opened the channel: a
    /// seccomp filter installed since?).
    #[error("joining needs the membarrier system call, which now fails in this process (a seccomp filter installed after the channel was opened?); allow membarrier, or create the channel with membarrier(false)")]
    MembarrierFailed,
    /// The channel's shared state is not in a form a joiner can start
    /// from (e.g. a claim position that is not a multiple of 16): a process
    /// with write access to the channel wrote it.
    #[error("cannot join: {0}; remove and re-create the channel, and check who can write it (memlane info NAME shows its owner and mode)")]
    Corrupt(Corrupt),
    /// Publishers evicted this subscriber mid-join `attempts` times in a
    /// row: each time its join took longer than they wait for one (a few
    /// milliseconds), so it was stopped, traced or starved of CPU while
    /// joining.
    #[error("the join was cut short {attempts} times in a row: publishers evict a subscriber that takes more than a few milliseconds to join (was this process stopped, traced or starved of CPU?); try again")]
    Evicted {
        /// How many joins were tried.
        attempts: u32,
    },
    /// No slot could be taken, and some free slots are locked by a process
    /// that has not joined. Endpoints lock one byte of the channel's file
    /// per slot; anyone who can open the file (even read-only) can hold
    /// such a lock and keep the slot from being joined.
    #[error("no {role} slot of {} could be taken: {free_locked} free slot(s) are locked by a process that has not joined (anyone who can open the file, even read-only, can hold these locks); find it with `lslocks` or /proc/locks (the file's inode), stop it, and keep the file's mode closed to users you do not trust", path.display())]
    SlotsLocked {
        /// Which kind of slot.
        role: EndpointRole,
        /// The channel's file.
        path: PathBuf,
        /// How many free slots were locked.
        free_locked: u32,
    },
    /// The endpoint's liveness lock could not be taken for another reason
    /// than a holder: the channel's file could not be opened again (out of
    /// file descriptors, permissions changed, no `/proc` and the name
    /// removed) or the file system refused the lock. The OS error is kept
    /// as text, since this type is `Clone` and `Eq`.
    #[error("cannot take an endpoint's liveness lock on {}: {reason}; joining without one would let other processes take this endpoint for dead. Check the process's open-file limit and the file's permissions, and that its file system supports open-file-description locks (tmpfs, ext4 and xfs do)", path.display())]
    Liveness {
        /// The channel's file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
}

/// A violation of the channel format found in shared memory.
///
/// One word (the reason is boxed), so that the errors holding it, such as
/// [`TryRecvError`], are at most two words and a receive's whole result
/// travels in registers.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-corrupt-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-corrupt").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// match sub.try_recv() {
///     Ok(msg) => println!("{} bytes", msg.len()),
///     Err(memlane::TryRecvError::Empty) => {}
///     Err(memlane::TryRecvError::Corrupt(c)) => eprintln!("giving up: {}", c.reason()),
///     Err(e) => eprintln!("{e}"),
/// }
/// # drop((sub, channel));
/// # memlane::remove(Some(&dir), "doc-corrupt")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the channel's shared state is corrupt: {reason}")]
pub struct Corrupt {
    // A thin box on purpose: `Box<str>` or `String` would make the error,
    // and every receive's result, larger than two registers.
    #[allow(clippy::box_collection)]
    reason: Box<String>,
}

impl Corrupt {
    /// A corruption found for `reason`.
    pub(crate) fn new(reason: String) -> Corrupt {
        Corrupt {
            reason: Box::new(reason),
        }
    }

    /// What is inconsistent.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// What a lossy subscriber lost when publishers lapped it (see
/// [`Channel::lossy_subscriber`](crate::Channel::lossy_subscriber)),
/// reported once by its next receive.
///
/// One word (the counts are boxed, allocated only when it is lagged), so
/// that receive results stay two words.
///
/// `bytes` is exact: the ring bytes (records with their 16-byte headers and
/// padding) between where it was and where it goes on. `messages` comes
/// from the publishers' counters, taken again until they stand still
/// while the subscriber finds where to go on and counts what is ahead of
/// it: exact when they do within a few tries (publishers that pause,
/// finish or send less often than that takes — microseconds), otherwise
/// an estimate, off by the messages committed meanwhile.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-lagged-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-lagged").capacity(4096).dir(&dir).create()?;
/// let mut sub = channel.lossy_subscriber()?;
/// let mut publ = channel.publisher()?;
/// for i in 0..200u32 {
///     publ.try_send(&i.to_le_bytes())?; // never Full: the lossy subscriber holds nothing back
/// }
/// match sub.try_recv() {
///     Err(memlane::TryRecvError::Lagged(lag)) => assert!(lag.messages() > 0 && lag.bytes() > 0),
///     other => panic!("{other:?}"),
/// }
/// let next = u32::from_le_bytes(sub.try_recv()?[..].try_into()?); // the oldest message still there
/// assert!(next > 0);
/// # drop((sub, publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this lossy subscriber was lapped by the publishers and lost {} messages ({} ring bytes); it goes on from the oldest message still in the ring", .counts.0, .counts.1)]
pub struct Lagged {
    counts: Box<(u64, u64)>,
}

impl Lagged {
    /// A loss of `messages` messages and `bytes` ring bytes.
    pub(crate) fn new(messages: u64, bytes: u64) -> Lagged {
        Lagged {
            counts: Box::new((messages, bytes)),
        }
    }

    /// Messages lost.
    pub fn messages(&self) -> u64 {
        self.counts.0
    }

    /// Ring bytes lost (records with their headers and padding).
    pub fn bytes(&self) -> u64 {
        self.counts.1
    }
}

/// Why [`Publisher::send`](crate::Publisher::send) or [`Publisher::loan`](crate::Publisher::loan) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message is larger than the channel's maximum message size.
    #[error("the message is {len} bytes; this channel's maximum is {max} (create it with a larger max-message)")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Why [`Publisher::try_send`](crate::Publisher::try_send) or
/// [`Publisher::try_loan`](crate::Publisher::try_loan) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The slowest subscriber is a full ring behind: retry later, or use
    /// `send` to wait.
    #[error("the channel is full: the slowest subscriber is a whole ring behind")]
    Full,
    /// The message is larger than the channel's maximum message size.
    #[error("the message is {len} bytes; this channel's maximum is {max} (create it with a larger max-message)")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Why [`Publisher::send_timeout`](crate::Publisher::send_timeout) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendTimeoutError {
    /// No space freed up within the time-out.
    #[error("timed out waiting for space: the slowest subscriber is a whole ring behind")]
    Timeout,
    /// The message is larger than the channel's maximum message size.
    #[error("the message is {len} bytes; this channel's maximum is {max} (create it with a larger max-message)")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Why [`Subscriber::recv`](crate::Subscriber::recv) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// This lossy subscriber was lapped: publishers overwrote messages it
    /// had not read. It goes on from the oldest message still intact; the
    /// [`Lagged`] says how much it lost.
    #[error(transparent)]
    Lagged(Lagged),
    /// Every publisher has left: this subscriber has read everything, and
    /// no publisher has been joined for its
    /// [disconnect grace](crate::Subscriber::set_disconnect_grace) since it
    /// last saw one (a dead publisher counts as gone once it is reaped). A
    /// named channel can get publishers again: the next receive waits for
    /// (and receives) them if one has joined by then, and reports this
    /// again at once otherwise.
    #[error("every publisher has left the channel: none was joined for the subscriber's disconnect grace after it had read everything (a publisher that joins later is received by the next receive; see Subscriber::set_disconnect_grace)")]
    Disconnected,
}

/// Why [`Subscriber::try_recv`](crate::Subscriber::try_recv) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No message is waiting.
    #[error("no message is waiting")]
    Empty,
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// This lossy subscriber was lapped: publishers overwrote messages it
    /// had not read. It goes on from the oldest message still intact; the
    /// [`Lagged`] says how much it lost.
    #[error(transparent)]
    Lagged(Lagged),
    /// Every publisher has left: this subscriber has read everything, and
    /// no publisher has been joined for its
    /// [disconnect grace](crate::Subscriber::set_disconnect_grace) since it
    /// last saw one (a dead publisher counts as gone once it is reaped). A
    /// named channel can get publishers again: the next receive waits for
    /// (and receives) them if one has joined by then, and reports this
    /// again at once otherwise.
    #[error("every publisher has left the channel: none was joined for the subscriber's disconnect grace after it had read everything (a publisher that joins later is received by the next receive; see Subscriber::set_disconnect_grace)")]
    Disconnected,
}

/// Why [`Subscriber::recv_timeout`](crate::Subscriber::recv_timeout) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// No message arrived within the time-out.
    #[error("no message arrived within the time-out")]
    Timeout,
    /// The shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// This lossy subscriber was lapped: publishers overwrote messages it
    /// had not read. It goes on from the oldest message still intact; the
    /// [`Lagged`] says how much it lost.
    #[error(transparent)]
    Lagged(Lagged),
    /// Every publisher has left: this subscriber has read everything, and
    /// no publisher has been joined for its
    /// [disconnect grace](crate::Subscriber::set_disconnect_grace) since it
    /// last saw one (a dead publisher counts as gone once it is reaped). A
    /// named channel can get publishers again: the next receive waits for
    /// (and receives) them if one has joined by then, and reports this
    /// again at once otherwise.
    #[error("every publisher has left the channel: none was joined for the subscriber's disconnect grace after it had read everything (a publisher that joins later is received by the next receive; see Subscriber::set_disconnect_grace)")]
    Disconnected,
}

/// Why [`Loan::commit`](crate::Loan::commit) or
/// [`Loan::commit_len`](crate::Loan::commit_len) failed.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-commiterr-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-commiterr").dir(&dir).create()?;
/// let mut publ = channel.publisher()?;
/// let loan = publ.loan(4)?;
/// let err = loan.commit_len(5).unwrap_err(); // more than was loaned: discarded
/// assert_eq!(err, memlane::CommitError::TooLong { len: 5, loaned: 4 });
/// # drop((publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// [`commit_len`](crate::Loan::commit_len) was asked to publish more
    /// bytes than were loaned; nothing was published (the loan was
    /// discarded).
    #[error("cannot commit {len} bytes of a loan of {loaned}: loan at least as many bytes as you mean to send (Publisher::loan), and commit at most that many")]
    TooLong {
        /// The length asked for.
        len: usize,
        /// The loan's length.
        loaned: usize,
    },
    /// The message was committed, but the channel's shared state is
    /// corrupt, e.g. another process truncated its file: subscribers may
    /// not receive it (as for a [`send`](crate::Publisher::send) that
    /// reports [`SendError::Corrupt`]).
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Why [`Latest::set`](crate::Latest::set) failed.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-seterr-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let mut slot = memlane::Latest::builder("doc-set-error").max_value(2).dir(&dir).create()?;
/// match slot.set(b"too long") {
///     Err(memlane::SetError::TooLarge { len, max }) => assert_eq!((len, max), (8, 2)),
///     other => panic!("{other:?}"),
/// }
/// # drop(slot);
/// # memlane::remove(Some(&dir), "doc-set-error")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The value is longer than the slot's largest value; nothing was
    /// written.
    #[error("the value is {len} bytes; this slot holds at most {max} (create it with a larger max_value, or send a smaller value)")]
    TooLarge {
        /// The value's length.
        len: usize,
        /// The slot's `max_value`.
        max: usize,
    },
    /// Every writer slot is held by a live process.
    #[error("all {max_writers} writer slots of {} are held by live processes: drop a writer, or create the slot with more (max_writers)", path.display())]
    NoWriterSlot {
        /// The slot's file.
        path: PathBuf,
        /// Its writer slots.
        max_writers: u32,
    },
    /// A writer slot's liveness lock could not be taken for another reason
    /// than a holder (as for [`JoinError::Liveness`]).
    #[error("cannot take a writer's liveness lock on {}: {reason}; check the process's open-file limit and the file's permissions", path.display())]
    Liveness {
        /// The slot's file.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// The slot has handed out its last version number (2^52 writes).
    #[error("{} has used every version number: create it anew", path.display())]
    VersionsExhausted {
        /// The slot's file.
        path: PathBuf,
    },
}

/// Why [`Latest::get`](crate::Latest::get) failed: the slot's shared
/// words were changed by a process that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The shared words are inconsistent.
    #[error("the latest-value slot {} is corrupt: {reason}; recreate it (`memlane rm`, then create)", path.display())]
    Corrupt {
        /// The slot's file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// Every copy taken was changed while it was taken: a writer is
    /// rewriting the newest value's buffer over and over, which no writer
    /// following the protocol does.
    #[error("no stable copy of {} in {attempts} attempts: a process keeps rewriting its newest value (a writer that breaks the protocol?)", path.display())]
    Contended {
        /// The slot's file.
        path: PathBuf,
        /// Copies tried.
        attempts: u32,
    },
}
