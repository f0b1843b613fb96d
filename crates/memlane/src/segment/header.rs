//! The segment header: the first [`HEADER_REGION`] bytes of every memlane
//! file.
//!
//! ```text
//! offset size field         meaning
//!      0    8 magic         b"MEMLANE\0"
//!      8    4 version       FORMAT_VERSION
//!     12    4 kind          1 segment, 2 event, 3 channel, 4 link
//!     16    4 ready         READY_VALUE once the segment is complete (stored last, Release)
//!     20    4 flags         reserved, 0
//!     24    8 data_offset   always HEADER_REGION (4096)
//!     32    8 data_len      bytes of the data region; file length = data_offset + data_len
//!     40    4 creator_pid   pid of the creating process (informational only)
//!     44    4 reserved      0
//!     48    8 created_ns    creation time, ns since the Unix epoch (informational)
//!     56   72 reserved      0
//!    128 3968 (padding to HEADER_REGION, so the data region is page aligned)
//! ```
//!
//! All integers are native-endian: a segment is shared between processes
//! of one machine. Decoding works on a copy of the bytes ([`decode`]) so
//! that it never holds a reference into memory another process may write.

use std::sync::atomic::{AtomicU32, Ordering};

/// The magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"MEMLANE\0";
/// The format version this library reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The value of the ready word once the header is complete.
pub const READY_VALUE: u32 = 0x5245_4459; // "REDY"
/// Bytes reserved for the header; the data region starts here.
pub const HEADER_REGION: u64 = 4096;
/// The encoded size of [`Header`].
pub const HEADER_SIZE: usize = 128;
/// The largest data region accepted (1 TiB): anything larger is taken for
/// corruption.
pub const MAX_DATA_LEN: u64 = 1 << 40;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// Raw bytes ([`Segment`](crate::Segment)).
    Segment = 1,
    /// A data-ready event ([`Event`](crate::Event)).
    Event = 2,
    /// A channel ([`Channel`](crate::Channel)).
    Channel = 3,
    /// A name that points at a file-backed segment elsewhere.
    Link = 4,
    /// A latest-value slot ([`Latest`](crate::Latest)).
    Latest = 5,
}

impl Kind {
    /// Decodes a kind number.
    pub fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Segment),
            2 => Some(Kind::Event),
            3 => Some(Kind::Channel),
            4 => Some(Kind::Link),
            5 => Some(Kind::Latest),
            _ => None,
        }
    }

    /// A lower-case word for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Event => "event",
            Kind::Channel => "channel",
            Kind::Link => "file link",
            Kind::Latest => "latest",
        }
    }
}

/// The lower-case words of messages: [`Kind::as_str`] ("segment",
/// "event", "channel", "file link"), but "latest-value slot" for
/// [`Kind::Latest`] (whose `as_str`, "latest", is the short form `memlane
/// list` shows).
impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Latest => f.write_str("latest-value slot"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The header as laid out in shared memory. The creator writes it through
/// its mapping while the file still has a temporary name, stores
/// [`Header::ready`] last (atomically, Release), and only then renames the
/// file into place. Openers read a copy of the bytes (`pread`) and check
/// every field, the ready word included, so a file published by any other
/// means (or by a creator that died before the store) is reported "not
/// ready" rather than used half-built.
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// A [`Kind`] number.
    pub kind: u32,
    /// [`READY_VALUE`] once complete; stored last with Release.
    pub ready: AtomicU32,
    /// Reserved, 0.
    pub flags: u32,
    /// Always [`HEADER_REGION`].
    pub data_offset: u64,
    /// Length of the data region.
    pub data_len: u64,
    /// Creator's pid (informational).
    pub creator_pid: u32,
    /// Reserved, 0.
    pub reserved0: u32,
    /// Creation time in ns since the epoch (informational).
    pub created_ns: u64,
    /// Reserved, 0.
    pub reserved: [u8; 72],
}

const _: () = {
    assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
    assert!(std::mem::align_of::<Header>() == 8);
    assert!(std::mem::offset_of!(Header, magic) == 0);
    assert!(std::mem::offset_of!(Header, version) == 8);
    assert!(std::mem::offset_of!(Header, kind) == 12);
    assert!(std::mem::offset_of!(Header, ready) == 16);
    assert!(std::mem::offset_of!(Header, flags) == 20);
    assert!(std::mem::offset_of!(Header, data_offset) == 24);
    assert!(std::mem::offset_of!(Header, data_len) == 32);
    assert!(std::mem::offset_of!(Header, creator_pid) == 40);
    assert!(std::mem::offset_of!(Header, reserved0) == 44);
    assert!(std::mem::offset_of!(Header, created_ns) == 48);
    assert!(std::mem::offset_of!(Header, reserved) == 56);
};

/// A validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// What the segment holds.
    pub kind: Kind,
    /// Length of the data region.
    pub data_len: u64,
    /// Creator's pid.
    pub creator_pid: u32,
    /// Creation time, ns since the epoch.
    pub created_ns: u64,
}

/// Why a header is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    TooShort(u64),
    /// Wrong magic.
    BadMagic,
    /// Another format version.
    Version(u32),
    /// Not published yet.
    NotReady,
    /// Unknown kind number.
    BadKind(u32),
    /// Inconsistent offsets or lengths.
    Corrupt(String),
    /// The file length disagrees with the header.
    SizeMismatch {
        /// What the header implies.
        header: u64,
        /// The file length.
        file: u64,
    },
}

// Where each field sits in the encoded bytes: taken from the `#[repr(C)]`
// struct itself, so the codec cannot drift from the layout the const
// assertions above pin down.
const MAGIC_AT: usize = std::mem::offset_of!(Header, magic);
const VERSION_AT: usize = std::mem::offset_of!(Header, version);
const KIND_AT: usize = std::mem::offset_of!(Header, kind);
const READY_AT: usize = std::mem::offset_of!(Header, ready);
const DATA_OFFSET_AT: usize = std::mem::offset_of!(Header, data_offset);
const DATA_LEN_AT: usize = std::mem::offset_of!(Header, data_len);
const CREATOR_PID_AT: usize = std::mem::offset_of!(Header, creator_pid);
const CREATED_NS_AT: usize = std::mem::offset_of!(Header, created_ns);

/// Writes `v` at byte `off` of an encoded header.
fn put(b: &mut [u8; HEADER_SIZE], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn u32_at(b: &[u8; HEADER_SIZE], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(a)
}

fn u64_at(b: &[u8; HEADER_SIZE], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

/// Encodes a complete header, with the ready word still 0 (the creator
/// publishes it last).
pub fn encode(kind: Kind, data_len: u64, creator_pid: u32, created_ns: u64) -> [u8; HEADER_SIZE] {
    let mut b = [0u8; HEADER_SIZE];
    put(&mut b, MAGIC_AT, &MAGIC);
    put(&mut b, VERSION_AT, &FORMAT_VERSION.to_ne_bytes());
    put(&mut b, KIND_AT, &(kind as u32).to_ne_bytes());
    put(&mut b, DATA_OFFSET_AT, &HEADER_REGION.to_ne_bytes());
    put(&mut b, DATA_LEN_AT, &data_len.to_ne_bytes());
    put(&mut b, CREATOR_PID_AT, &creator_pid.to_ne_bytes());
    put(&mut b, CREATED_NS_AT, &created_ns.to_ne_bytes());
    b
}

#[cfg(test)]
/// Marks an encoded header as ready (tests build valid headers with it).
pub fn set_ready(b: &mut [u8; HEADER_SIZE]) {
    put(b, READY_AT, &READY_VALUE.to_ne_bytes());
}

/// Validates a copy of the header bytes against the file length from
/// `fstat` (never trusting the header for the mapping length).
pub fn decode(bytes: &[u8], file_len: u64) -> Result<HeaderInfo, HeaderError> {
    if bytes.len() < HEADER_SIZE || file_len < HEADER_REGION {
        return Err(HeaderError::TooShort(file_len.min(bytes.len() as u64)));
    }
    let mut b = [0u8; HEADER_SIZE];
    b.copy_from_slice(&bytes[..HEADER_SIZE]);
    if b[MAGIC_AT..MAGIC_AT + MAGIC.len()] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32_at(&b, VERSION_AT);
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    if u32_at(&b, READY_AT) != READY_VALUE {
        return Err(HeaderError::NotReady);
    }
    let kind_raw = u32_at(&b, KIND_AT);
    let kind = Kind::from_u32(kind_raw).ok_or(HeaderError::BadKind(kind_raw))?;
    let data_offset = u64_at(&b, DATA_OFFSET_AT);
    if data_offset != HEADER_REGION {
        return Err(HeaderError::Corrupt(format!(
            "data offset is {data_offset}, expected {HEADER_REGION}"
        )));
    }
    let data_len = u64_at(&b, DATA_LEN_AT);
    if data_len > MAX_DATA_LEN {
        return Err(HeaderError::Corrupt(format!(
            "data length {data_len} exceeds the maximum {MAX_DATA_LEN}"
        )));
    }
    let expected = HEADER_REGION + data_len;
    if expected != file_len {
        return Err(HeaderError::SizeMismatch {
            header: expected,
            file: file_len,
        });
    }
    Ok(HeaderInfo {
        kind,
        data_len,
        creator_pid: u32_at(&b, CREATOR_PID_AT),
        created_ns: u64_at(&b, CREATED_NS_AT),
    })
}

/// Like [`decode`], for a mapping whose length is the segment's rounded up
/// to a page (a page-file-backed named mapping on Windows): the header's
/// data length must fit in `region_len` instead of matching it exactly.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn decode_in_region(bytes: &[u8], region_len: u64) -> Result<HeaderInfo, HeaderError> {
    if let Some(b) = bytes.get(..HEADER_SIZE) {
        let mut h = [0u8; HEADER_SIZE];
        h.copy_from_slice(b);
        let expected = HEADER_REGION.saturating_add(u64_at(&h, DATA_LEN_AT));
        if expected <= region_len {
            return decode(bytes, expected);
        }
    }
    decode(bytes, region_len)
}

/// Publishes the ready word of a header mapped at `ready` (Release: every
/// byte of the segment written before it is visible to whoever sees it).
pub fn publish_ready(ready: &AtomicU32) {
    ready.store(READY_VALUE, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(kind: Kind, len: u64) -> [u8; HEADER_SIZE] {
        let mut b = encode(kind, len, 42, 7);
        set_ready(&mut b);
        b
    }

    #[test]
    fn round_trip() {
        let b = valid(Kind::Channel, 8192);
        let info = decode(&b, HEADER_REGION + 8192).unwrap();
        assert_eq!(
            info,
            HeaderInfo {
                kind: Kind::Channel,
                data_len: 8192,
                creator_pid: 42,
                created_ns: 7
            }
        );
    }

    #[test]
    fn rejects_each_fault() {
        let good = valid(Kind::Segment, 100);
        let len = HEADER_REGION + 100;
        assert_eq!(decode(&good[..10], len), Err(HeaderError::TooShort(10)));
        assert_eq!(decode(&good, 100), Err(HeaderError::TooShort(100)));
        let mut b = good;
        b[0] = b'X';
        assert_eq!(decode(&b, len), Err(HeaderError::BadMagic));
        let mut b = good;
        b[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(decode(&b, len), Err(HeaderError::Version(2)));
        let b = encode(Kind::Segment, 100, 1, 1);
        assert_eq!(decode(&b, len), Err(HeaderError::NotReady));
        let mut b = good;
        b[12..16].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(decode(&b, len), Err(HeaderError::BadKind(99)));
        let mut b = good;
        b[24..32].copy_from_slice(&0u64.to_ne_bytes());
        assert!(matches!(decode(&b, len), Err(HeaderError::Corrupt(_))));
        let mut b = good;
        b[32..40].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(matches!(decode(&b, len), Err(HeaderError::Corrupt(_))));
        assert_eq!(
            decode(&good, len + 1),
            Err(HeaderError::SizeMismatch {
                header: len,
                file: len + 1
            })
        );
    }

    #[test]
    #[allow(unsafe_code)] // reads the encoded bytes back as the struct
    fn encoding_matches_the_struct_layout() {
        let b = valid(Kind::Event, 64);
        // SAFETY: Header is repr(C), 128 bytes, of plain integers and one
        // AtomicU32 (valid for any bit pattern); `b` is 128 bytes. The read is
        // unaligned-safe through read_unaligned.
        let h: Header = unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<Header>()) };
        assert_eq!(h.magic, MAGIC);
        assert_eq!(h.version, FORMAT_VERSION);
        assert_eq!(h.kind, Kind::Event as u32);
        assert_eq!(h.ready.load(Ordering::Relaxed), READY_VALUE);
        assert_eq!(h.data_offset, HEADER_REGION);
        assert_eq!(h.data_len, 64);
        assert_eq!(h.creator_pid, 42);
        assert_eq!(h.created_ns, 7);
    }
}
