//! Named shared-memory segments.
//!
//! A [`Segment`] is a named region of shared memory: created by one process
//! with [`Segment::create`] (or [`Segment::builder`] for a directory, a
//! backing file, permissions and dispositions), opened by others with
//! [`Segment::open`] (or [`Segment::open_options`] for a directory or a
//! view at an offset), read and written
//! with bounds-checked [`read`](Segment::read) and [`write`](Segment::write),
//! flushed with [`flush`](Segment::flush), and removed with
//! [`Segment::remove`]. Dropping a `Segment` unmaps it and closes its file.

pub(crate) mod header;
#[allow(unsafe_code)]
pub(crate) mod map;

use std::path::{Path, PathBuf};

pub use header::Kind;

use crate::error::{AccessError, CreateError, Missing, OpenError, RemoveError};
use crate::file::{self, CreateSpec, OpenSpec, PathSpec, RawSegment};

/// The default permission bits of new segments: owner read-write only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How a segment is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Access {
    /// Reads only; writes fail with [`AccessError::ReadOnly`].
    ReadOnly,
    /// Reads and writes, shared with every other process.
    #[default]
    ReadWrite,
    /// Private copy-on-write: local writes are never seen by other
    /// processes nor written to the backing file.
    CopyOnWrite,
}

/// What to do with a backing file (the classic file-mapping dispositions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Disposition {
    /// Create the file; fail if it exists.
    #[default]
    CreateNew,
    /// Create the file, replacing any file at the path.
    CreateAlways,
    /// Use an existing memlane file at the path; fail if there is none.
    OpenExisting,
}

/// A named shared-memory segment mapped into this process.
///
/// # Examples
///
/// ```
/// use memlane::{Access, Segment};
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-seg-").tempdir()?;
/// # std::env::set_var("MEMLANE_DIR", tmp.path());
/// let mut server = Segment::create("doc-segment", 1_000_000)?;
/// server.write(0, b"hello")?;
///
/// let client = Segment::open("doc-segment", Access::ReadOnly)?;
/// let mut buf = [0u8; 5];
/// client.read(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// Segment::remove("doc-segment")?;
/// # drop((server, client));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Segment {
    raw: RawSegment,
    access: Access,
    view_offset: u64,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.raw.name())
            .field("path", &self.raw.path())
            .field("len", &self.len())
            .field("access", &self.access)
            .field("view_offset", &self.view_offset)
            .finish()
    }
}

/// Options for creating a segment; see [`Segment::builder`].
///
/// # Examples
///
/// ```
/// use memlane::Segment;
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-segb-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let seg = Segment::builder("doc-seg-built").size(4096).dir(&dir).mode(0o660).create()?;
/// assert_eq!(seg.len(), 4096);
/// # drop(seg);
/// memlane::remove(Some(&dir), "doc-seg-built")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    name: String,
    size: u64,
    dir: Option<PathBuf>,
    file: Option<(PathBuf, Disposition)>,
    mode: u32,
    replace_stale: bool,
    page_file: bool,
}

impl SegmentBuilder {
    /// On Windows, makes the segment a page-file-backed named mapping
    /// (`Local\memlane.NAME`, `Global\` with
    /// `MEMLANE_WINDOWS_NAMESPACE=Global`) instead of a file in the
    /// segment directory: it exists only while some process has it open,
    /// and vanishes with the last handle, so it can be neither listed nor
    /// removed by name. Opening by name finds it when no file has the name.
    /// On Linux this changes nothing: segments in `/dev/shm` already live
    /// in memory (swap-backed), and persist until removed.
    ///
    /// ```
    /// use memlane::Segment;
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-pf-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let seg = Segment::builder("doc-page-file").size(4096).dir(&dir).page_file(true).create()?;
    /// # drop(seg);
    /// # let _ = memlane::remove(Some(&dir), "doc-page-file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn page_file(mut self, page_file: bool) -> Self {
        self.page_file = page_file;
        self
    }
    /// Whether a stale segment at the name (a memlane file of this user
    /// that no live process holds: its users exited or crashed) is
    /// replaced instead of reported as `AlreadyExists` (default true). A
    /// backing file is never replaced this way; see [`Disposition`].
    pub fn replace_stale(mut self, replace: bool) -> Self {
        self.replace_stale = replace;
        self
    }
    /// The size of the data region in bytes (1 or more; with
    /// [`Disposition::OpenExisting`], 0 accepts any size).
    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }
    /// Creates the segment in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Backs the segment by the file at `path` (the name still refers to
    /// it, through a small link entry in the segment directory).
    pub fn file(mut self, path: impl Into<PathBuf>, disposition: Disposition) -> Self {
        self.file = Some((path.into(), disposition));
        self
    }
    /// Permission bits (default [`DEFAULT_MODE`], owner only); applied
    /// exactly, whatever the umask. Use `0o660` for group access.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Creates the segment.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidName`] for a name that breaks the naming
    /// rules; [`CreateError::InvalidConfig`] for a size of 0 or above the
    /// maximum; [`CreateError::AlreadyExists`] if something (not stale) is
    /// at the name, or a file at the path with [`Disposition::CreateNew`];
    /// [`CreateError::NoDirectory`] if the directory does not exist;
    /// [`CreateError::PermissionDenied`]; [`CreateError::NoSpace`];
    /// [`CreateError::Open`] if a file to open with
    /// [`Disposition::OpenExisting`] cannot be used (it holds the
    /// [`OpenError`]); [`CreateError::Io`] for another OS error.
    pub fn create(self) -> Result<Segment, CreateError> {
        let opening = matches!(self.file, Some((_, Disposition::OpenExisting)));
        if self.size == 0 && !opening {
            return Err(CreateError::InvalidConfig {
                reason: "the size is 0; a segment needs at least 1 byte".into(),
            });
        }
        if self.size > header::MAX_DATA_LEN {
            return Err(CreateError::InvalidConfig {
                reason: format!(
                    "the size {} exceeds the maximum of {} bytes",
                    self.size,
                    header::MAX_DATA_LEN
                ),
            });
        }
        let spec = CreateSpec {
            name: &self.name,
            dir: self.dir.as_deref(),
            file: self.file.as_ref().map(|(p, d)| (p.as_path(), *d)),
            mode: self.mode,
            kind: Kind::Segment,
            data_len: self.size,
            replace_stale: self.replace_stale,
            page_file: self.page_file,
        };
        let raw = file::create(&spec, |_, _| {})?;
        Ok(Segment {
            raw,
            access: Access::ReadWrite,
            view_offset: 0,
        })
    }
}

/// Options for opening a segment; see [`Segment::open_options`].
///
/// # Examples
///
/// ```
/// use memlane::{Access, Segment};
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-sego-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let mut seg = Segment::builder("doc-seg-view").size(8192).dir(&dir).create()?;
/// seg.write(4096, b"second page")?;
/// let view = Segment::open_options("doc-seg-view")
///     .dir(&dir)
///     .access(Access::ReadOnly)
///     .view(4096, Some(4096))
///     .open()?;
/// assert_eq!(view.read_vec(0, 11)?, b"second page");
/// # drop((seg, view));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentOpenOptions {
    name: String,
    access: Access,
    dir: Option<PathBuf>,
    view: Option<(u64, Option<u64>)>,
    allow_other_owner: bool,
}

impl SegmentOpenOptions {
    /// Accepts a segment owned by another user (refused by default: a
    /// segment planted by someone else could be a trap).
    pub fn allow_other_owner(mut self, allow: bool) -> Self {
        self.allow_other_owner = allow;
        self
    }
    /// The access mode (default [`Access::ReadWrite`]).
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
    /// Looks in `dir` instead of `$MEMLANE_DIR` or `/dev/shm`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Maps only a view starting `offset` bytes into the segment, of `len`
    /// bytes (`None`: to the end).
    pub fn view(mut self, offset: u64, len: Option<u64>) -> Self {
        self.view = Some((offset, len));
        self
    }
    /// Opens the segment.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::NotFound`]; for what is at
    /// the name: [`OpenError::WrongKind`] (not a segment),
    /// [`OpenError::NotMemlane`], [`OpenError::IncompatibleVersion`],
    /// [`OpenError::NotReady`], [`OpenError::SizeMismatch`],
    /// [`OpenError::Corrupt`], [`OpenError::Symlink`],
    /// [`OpenError::HardLinked`], [`OpenError::NotAFile`];
    /// [`OpenError::ViewOutOfBounds`] for a view outside the segment;
    /// [`OpenError::ForeignOwner`] (see
    /// [`allow_other_owner`](Self::allow_other_owner)),
    /// [`OpenError::PermissionDenied`]; [`OpenError::Busy`] if another
    /// process keeps an exclusive lock on the file for more than 2 s
    /// (opening never waits longer than that for a lock); [`OpenError::Io`]
    /// for another OS error.
    pub fn open(self) -> Result<Segment, OpenError> {
        let raw = file::open(&OpenSpec {
            name: &self.name,
            dir: self.dir.as_deref(),
            access: self.access,
            kind: Some(Kind::Segment),
            what: Missing::Named(Kind::Segment),
            view: Some(self.view.unwrap_or((0, None))),
            allow_other_owner: self.allow_other_owner,
        })?;
        Ok(Segment {
            raw,
            access: self.access,
            view_offset: self.view.map_or(0, |v| v.0),
        })
    }
}

impl Segment {
    /// Creates a new segment of `size` bytes in `$MEMLANE_DIR` or
    /// `/dev/shm`, owner read-write only; fails if the name is taken.
    /// [`Segment::builder`] for a directory, a backing file or a mode.
    ///
    /// # Errors
    ///
    /// See [`SegmentBuilder::create`].
    #[doc(alias = "shm_open")]
    #[doc(alias = "CreateFileMapping")]
    pub fn create(name: &str, size: u64) -> Result<Segment, CreateError> {
        Segment::builder(name).size(size).create()
    }

    /// Starts building a segment named `name` with more options.
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane::{Disposition, Segment};
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-build-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let seg = Segment::builder("doc-file-backed")
    ///     .size(4096)
    ///     .dir(&dir)
    ///     .file(dir.join("data.bin"), Disposition::CreateAlways)
    ///     .create()?;
    /// seg.flush()?;
    /// # drop(seg);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(name: &str) -> SegmentBuilder {
        SegmentBuilder {
            name: name.to_string(),
            size: 0,
            dir: None,
            file: None,
            mode: DEFAULT_MODE,
            replace_stale: true,
            page_file: false,
        }
    }

    /// Opens the segment `name` in `$MEMLANE_DIR` or `/dev/shm` with
    /// `access`; [`Segment::open_options`] for a directory or a view.
    ///
    /// # Errors
    ///
    /// See [`SegmentOpenOptions::open`].
    #[doc(alias = "OpenFileMapping")]
    pub fn open(name: &str, access: Access) -> Result<Segment, OpenError> {
        Segment::open_options(name).access(access).open()
    }

    /// Starts opening the segment `name` with more options (directory,
    /// access, view, owner).
    pub fn open_options(name: &str) -> SegmentOpenOptions {
        SegmentOpenOptions {
            name: name.to_string(),
            access: Access::ReadWrite,
            dir: None,
            view: None,
            allow_other_owner: false,
        }
    }

    /// Opens a file-backed segment by the path of its file (not by name).
    ///
    /// # Errors
    ///
    /// As for [`SegmentOpenOptions::open`], with [`OpenError::NotFound`]
    /// when no file is at `path`.
    pub fn open_path(path: &Path, access: Access) -> Result<Segment, OpenError> {
        let raw = file::open_path(&PathSpec {
            path,
            access,
            kind: Some(Kind::Segment),
            view: Some((0, None)),
            allow_other_owner: false,
        })?;
        Ok(Segment {
            raw,
            access,
            view_offset: 0,
        })
    }

    /// Removes the name `name` from `$MEMLANE_DIR` or `/dev/shm` (a
    /// file-backed segment keeps its file); [`memlane::remove`](crate::remove)
    /// for another directory. Processes that have it open keep their
    /// mapping until they drop it.
    ///
    /// # Errors
    ///
    /// See [`memlane::remove`](crate::remove).
    #[doc(alias = "shm_unlink")]
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        remove(None, name)
    }

    /// The length of the mapped view in bytes.
    pub fn len(&self) -> usize {
        self.raw.data_len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.raw.name()
    }

    /// The file that holds the segment.
    pub fn path(&self) -> &Path {
        self.raw.path()
    }

    /// The access it was opened with.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Where this view starts inside the segment.
    pub fn view_offset(&self) -> u64 {
        self.view_offset
    }

    /// The size of the whole segment (not just this view).
    pub fn segment_len(&self) -> u64 {
        self.raw.info().data_len
    }

    /// The address of the view's first byte, for code outside Rust that
    /// reads the mapping in place (the C bindings, `memlane-c`); Rust code
    /// uses [`read`](Self::read) and [`write`](Self::write).
    ///
    /// The pointer is valid for [`len`](Self::len) bytes while this
    /// `Segment` lives (dropping it unmaps the view). Other processes may
    /// change the bytes at any time, so a Rust reference (`&[u8]`) to them
    /// would be undefined behaviour: copy through the raw pointer
    /// (`ptr::copy_nonoverlapping`) instead. Writing through it on a
    /// read-only view faults (the pages are mapped read-only); use
    /// [`as_mut_ptr`](Self::as_mut_ptr) to write. If another process
    /// truncates the file, bytes past its new end read as zeros (the
    /// SIGBUS guard maps them) instead of killing this process.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-asptr-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let mut seg = memlane::Segment::builder("doc-as-ptr").size(4096).dir(&dir).create()?;
    /// seg.write(0, b"hi")?;
    /// let mut copy = [0u8; 2];
    /// // SAFETY: 2 <= seg.len(), and the segment outlives the copy.
    /// unsafe { std::ptr::copy_nonoverlapping(seg.as_ptr(), copy.as_mut_ptr(), 2) };
    /// assert_eq!(&copy, b"hi");
    /// # drop(seg);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.data_ptr()
    }

    /// The writable address of the view's first byte; as
    /// [`as_ptr`](Self::as_ptr), for a view opened read-write or
    /// copy-on-write.
    ///
    /// # Errors
    ///
    /// [`AccessError::ReadOnly`] on a read-only view.
    pub fn as_mut_ptr(&mut self) -> Result<*mut u8, AccessError> {
        if !self.raw.writable() {
            return Err(AccessError::ReadOnly);
        }
        Ok(self.raw.data_ptr())
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(AccessError::OutOfBounds {
                offset,
                len,
                size: self.len(),
            }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` of the view into `buf`.
    ///
    /// # Errors
    ///
    /// [`AccessError::OutOfBounds`] if the range leaves the view,
    /// [`AccessError::Truncated`] if another process truncated the file
    /// (the bytes past its new end read as zeros).
    #[allow(unsafe_code)] // see the SAFETY comment inside
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.check(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        // SAFETY: the range is inside the mapped view (checked above); the
        // bytes are copied, never referenced, so a concurrent writer in
        // another process can change what is read but not its bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.raw.data_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if self.raw.truncated() {
            return Err(AccessError::Truncated);
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` into a new vector.
    ///
    /// # Errors
    ///
    /// As for [`Segment::read`].
    pub fn read_vec(&self, offset: usize, len: usize) -> Result<Vec<u8>, AccessError> {
        self.check(offset, len)?;
        let mut v = vec![0u8; len];
        self.read(offset, &mut v)?;
        Ok(v)
    }

    /// Copies `data` into the view at `offset`.
    ///
    /// # Errors
    ///
    /// [`AccessError::ReadOnly`] on a read-only view,
    /// [`AccessError::OutOfBounds`] if the range leaves the view,
    /// [`AccessError::Truncated`] if another process truncated the file.
    #[allow(unsafe_code)] // see the SAFETY comment inside
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        if !self.raw.writable() {
            return Err(AccessError::ReadOnly);
        }
        self.check(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: the range is inside a writable mapped view (checked
        // above); `&mut self` keeps threads of this process from racing.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.raw.data_ptr().add(offset),
                data.len(),
            )
        };
        if self.raw.truncated() {
            return Err(AccessError::Truncated);
        }
        Ok(())
    }

    /// Fills `len` bytes at `offset` with `byte`.
    ///
    /// # Errors
    ///
    /// As for [`Segment::write`].
    #[allow(unsafe_code)] // see the SAFETY comment inside
    pub fn fill(&mut self, offset: usize, len: usize, byte: u8) -> Result<(), AccessError> {
        if !self.raw.writable() {
            return Err(AccessError::ReadOnly);
        }
        self.check(offset, len)?;
        // SAFETY: as in `write`.
        unsafe { std::ptr::write_bytes(self.raw.data_ptr().add(offset), byte, len) };
        if self.raw.truncated() {
            return Err(AccessError::Truncated);
        }
        Ok(())
    }

    /// Writes the whole view back to its file and waits for it (`msync`).
    /// A no-op for copy-on-write views; harmless for `/dev/shm`.
    ///
    /// # Errors
    ///
    /// [`AccessError::Flush`] if `msync` fails.
    #[doc(alias = "msync")]
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush(&self) -> Result<(), AccessError> {
        self.flush_range(0, self.len())
    }

    /// Writes `len` bytes at `offset` back to the file (`msync`).
    ///
    /// # Errors
    ///
    /// [`AccessError::OutOfBounds`] if the range leaves the view,
    /// [`AccessError::Flush`] if `msync` fails.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        self.check(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.raw
            .flush_data_range(offset, len)
            .map_err(AccessError::Flush)
    }
}

/// Removes the name `name` from `dir` (default `$MEMLANE_DIR` or
/// `/dev/shm`), whatever it holds: a segment, an event or a channel
/// ([`Segment::remove`], [`Event::remove`](crate::Event::remove) and
/// [`Channel::remove`](crate::Channel::remove) are this with `None`). A
/// file-backed segment keeps its file. Processes that have it open keep
/// their mapping until they drop it.
///
/// # Errors
///
/// [`RemoveError::InvalidName`] for a name that breaks the naming rules,
/// [`RemoveError::NotFound`] if nothing is at the name,
/// [`RemoveError::PageFile`] for a Windows page-file segment (it has no
/// name to remove), [`RemoveError::Io`] for an OS error.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-rm-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-rm").dir(&dir).create()?;
/// memlane::remove(Some(&dir), "doc-rm")?;
/// assert!(matches!(
///     memlane::remove(Some(&dir), "doc-rm"),
///     Err(memlane::RemoveError::NotFound { .. })
/// ));
/// # drop(channel);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "shm_unlink")]
pub fn remove(dir: Option<&Path>, name: &str) -> Result<(), RemoveError> {
    file::remove(name, dir)
}

/// One entry removed (or, in a dry run, to be removed) by [`gc`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Collected {
    /// The file name in the segment directory.
    pub file: String,
    /// Why it was removed.
    pub reason: GcReason,
}

/// Why [`gc`] removed an entry; its `Display` is a short phrase for
/// people ("segment no process holds", ...).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-gcreason-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// drop(memlane::Segment::builder("doc-gcreason").size(64).dir(&dir).create()?);
/// let report = memlane::gc(Some(&dir), false)?;
/// assert_eq!(report.removed[0].reason, memlane::GcReason::Stale);
/// assert_eq!(report.removed[0].reason.to_string(), "segment no process holds");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GcReason {
    /// A segment, event or channel of this user that no process holds
    /// (its users exited or crashed without removing it).
    Stale,
    /// A file link whose backing file is gone or held by no process (the
    /// backing file itself is never removed).
    DeadLink,
    /// The temporary file of a creator that died while building it.
    LeftoverTemp,
    /// A file a removal or replacement moved aside and could not delete
    /// at the time (Windows, where an open file cannot be deleted).
    MovedAside,
    /// A liveness token file of memlane before channel layout 4 that no
    /// process holds.
    OldLivenessToken,
    /// The lock file of a page-file channel that no longer exists
    /// (Windows).
    OrphanLockFile,
}

impl std::fmt::Display for GcReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GcReason::Stale => "segment no process holds",
            GcReason::DeadLink => "file link whose file nobody holds",
            GcReason::LeftoverTemp => "temporary file of a creator that died",
            GcReason::MovedAside => "file moved aside by an earlier removal",
            GcReason::OldLivenessToken => "liveness token of an older memlane",
            GcReason::OrphanLockFile => "lock file of a page-file channel that no longer exists",
        })
    }
}

/// What [`gc`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// The directory that was cleaned.
    pub dir: PathBuf,
    /// The entries removed, in name order.
    pub removed: Vec<Collected>,
}

/// Removes what no live process holds from `dir` (default `$MEMLANE_DIR`
/// or `/dev/shm`): segments, events and channels of this user that no
/// process has open (a crash leaves them behind), file links whose file
/// is gone or unheld (the backing files themselves are never removed),
/// temporary files of creators that died mid-creation, unheld liveness
/// token files of memlane versions before channel layout 4, and on Windows
/// the lock files of page-file channels that no longer exist. A segment some live process holds is never
/// removed: every process with a segment open holds a shared `flock` on
/// its file, and `gc` removes a name only while holding the exclusive one.
/// With `dry_run`, reports without removing.
///
/// # Errors
///
/// An I/O error if the directory cannot be read.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-gc-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let seg = memlane::Segment::builder("doc-gc").size(64).dir(&dir).create()?;
/// assert!(memlane::gc(Some(&dir), false)?.removed.is_empty()); // held by `seg`
/// drop(seg); // its creator exits without removing it
/// let report = memlane::gc(Some(&dir), false)?;
/// assert_eq!(report.removed[0].file, "memlane.doc-gc");
/// assert_eq!(report.dir, dir);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn gc(dir: Option<&Path>, dry_run: bool) -> std::io::Result<GcReport> {
    gc_with(dir, dry_run, 5)
}

/// Like [`gc`], removing temporary files of dead creators only once they
/// are `tmp_age_secs` old ([`gc`] uses 5 s).
#[doc(hidden)]
pub fn gc_with(dir: Option<&Path>, dry_run: bool, tmp_age_secs: u64) -> std::io::Result<GcReport> {
    let (dir, items) = file::gc(dir, dry_run, tmp_age_secs)?;
    Ok(GcReport {
        dir,
        removed: items
            .into_iter()
            .map(|c| Collected {
                file: c.file,
                reason: c.reason,
            })
            .collect(),
    })
}

/// One memlane entry found by [`list`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentEntry {
    /// The name.
    pub name: String,
    /// The file in the segment directory.
    pub path: PathBuf,
    /// What it holds, or why its header is not valid.
    pub kind: Result<Kind, String>,
    /// The length of its data region.
    pub data_len: u64,
    /// The pid that created it.
    pub creator_pid: u32,
    /// For a file-backed segment, its backing file.
    pub target: Option<PathBuf>,
    /// Whether another process held an exclusive lock on the file when it
    /// was listed: `gc` removing it or a re-creation replacing it (for
    /// moments), or a process that is not memlane's. Opening it waits a
    /// bounded time and then fails with [`OpenError::Busy`](crate::OpenError::Busy).
    pub busy: bool,
    /// The process holding that lock, if the OS tells (Linux; pids are
    /// reused, so this is informational only).
    pub lock_holder: Option<u32>,
}

/// What [`list`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Listing {
    /// The directory searched.
    pub dir: PathBuf,
    /// The entries, in name order.
    pub entries: Vec<SegmentEntry>,
}

/// Lists the memlane entries in `dir` (default `$MEMLANE_DIR` or
/// `/dev/shm`): the directory searched and the entries, by name.
/// It never waits for a lock: an entry another process holds exclusively
/// is listed with [`SegmentEntry::busy`] set.
///
/// # Errors
///
/// An I/O error if the directory cannot be read.
///
/// # Examples
///
/// ```
/// for entry in memlane::list(None)?.entries {
///     println!("{} {:?}", entry.name, entry.kind);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn list(dir: Option<&Path>) -> std::io::Result<Listing> {
    let (dir, items) = file::list(dir)?;
    let entries = items
        .into_iter()
        .map(|l| {
            let (kind, data_len, creator_pid) = match &l.result {
                Ok(info) => (Ok(info.kind), info.data_len, info.creator_pid),
                Err(e) => (Err(e.clone()), l.file_len, 0),
            };
            SegmentEntry {
                name: l.name,
                path: l.path,
                kind,
                data_len,
                creator_pid,
                target: l.target,
                busy: l.busy.is_some(),
                lock_holder: l.busy.flatten(),
            }
        })
        .collect();
    Ok(Listing { dir, entries })
}
