//! The bridge's wire format: one Zenoh payload carries one or more frames
//! back to back, each a fixed 40-byte header and a message's bytes.
//! Mirrored in `docs/BRIDGE.md`.
//!
//! ```text
//! offset size field
//!      0    4 magic    b"mlzb"
//!      4    1 version  2
//!      5    1 kind     0: a channel message, 1: a latest-value slot's value
//!      6    2 flags    bit 0 MORE: another frame follows this one's bytes;
//!                      a receiver rejects every other bit
//!      8   16 origin   the id of the bridge that first put the message on Zenoh
//!                      (128 bits, random per bridge process, little-endian)
//!     24    8 seq      per (origin, key expression): 1, 2, 3, … (little-endian)
//!     32    4 len      payload length in bytes (little-endian); the frame
//!                      ends exactly where the Zenoh payload ends, unless
//!                      MORE is set: then the next frame starts there
//!     36    4 reserved 0
//!     40  len payload  the message's bytes, as published locally
//! ```
//!
//! A sending bridge puts what its channel holds at once as one batch
//! ([`Batch`]): under load one Zenoh put carries many messages, so Zenoh's
//! per-put costs are paid once per batch; a lone message is a batch of one
//! and waits for nothing.
//!
//! Every field of every inbound header is checked ([`decode`], [`frames`]);
//! anything else is a [`WireError`], which the bridge counts and drops
//! (with the rest of that payload: after a bad header there is no telling
//! where the next frame starts).

/// Bytes of the header.
pub const HEADER_LEN: usize = 40;
/// The first four bytes of every bridge payload.
pub const MAGIC: [u8; 4] = *b"mlzb";
/// The format's version.
pub const VERSION: u8 = 2;
/// Flag bit: another frame follows this one in the same payload.
pub const FLAG_MORE: u16 = 1;

/// What a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A message of a channel (every one is delivered, in order).
    Channel,
    /// A value of a latest-value slot (only the newest matters).
    Latest,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Channel => 0,
            Kind::Latest => 1,
        }
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the payload carries.
    pub kind: Kind,
    /// The bridge that first put the message on Zenoh.
    pub origin: u128,
    /// Its sequence number in the origin's stream on this key (from 1).
    pub seq: u64,
}

/// Why an inbound payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than a header.
    #[error("{len} bytes is shorter than the bridge's {HEADER_LEN}-byte header (not a memlane bridge payload)")]
    Short {
        /// The payload's length.
        len: usize,
    },
    /// The magic is wrong.
    #[error("the payload does not start with the bridge's magic \"mlzb\" (not a memlane bridge payload)")]
    Magic,
    /// Another version of the format.
    #[error("the payload's format version is {0}; this bridge reads version {VERSION} (run the same memlane-bridge version on every machine)")]
    Version(u8),
    /// An unknown kind.
    #[error("unknown payload kind {0}")]
    Kind(u8),
    /// Unknown flag bits or a non-zero reserved field.
    #[error("unknown flags {flags:#x} or reserved field {reserved:#x} set")]
    Flags {
        /// The flags field.
        flags: u16,
        /// The reserved field.
        reserved: u32,
    },
    /// A zero sequence number (they start at 1).
    #[error("sequence number 0 (sequence numbers start at 1)")]
    ZeroSeq,
    /// The length field disagrees with the payload: more bytes than the
    /// last frame's length, or fewer than a frame's length (or nothing
    /// after a frame that says another follows).
    #[error("the header says {said} payload bytes{} but {got} followed it", if *.more { " and another frame after them" } else { "" })]
    Length {
        /// The header's length field.
        said: u32,
        /// The bytes after the header.
        got: usize,
        /// Whether the header said another frame follows.
        more: bool,
    },
}

/// Writes a header for `payload_len` bytes into `out` (cleared first),
/// ready for the payload to be appended.
///
/// # Panics
///
/// If `payload_len` exceeds `u32::MAX` (memlane messages are smaller).
///
/// # Examples
///
/// ```
/// use memlane_zenoh::wire::{decode, encode_header, Header, Kind};
/// let mut buf = Vec::new();
/// let h = Header { kind: Kind::Channel, origin: 7, seq: 1 };
/// encode_header(&mut buf, h, 5);
/// buf.extend_from_slice(b"hello");
/// assert_eq!(decode(&buf), Ok((h, &b"hello"[..])));
/// ```
pub fn encode_header(out: &mut Vec<u8>, h: Header, payload_len: usize) {
    out.clear();
    put_header(out, h, payload_len);
    debug_assert_eq!(out.len(), HEADER_LEN);
}

/// Frames for one payload: messages appended one after the other, each
/// with its header (the previous one's `MORE` flag set as the next is
/// added).
///
/// # Examples
///
/// ```
/// use memlane_zenoh::wire::{frames, Batch, Header, Kind};
/// let mut batch = Batch::default();
/// batch.push(Header { kind: Kind::Channel, origin: 7, seq: 1 }, b"hello");
/// batch.push(Header { kind: Kind::Channel, origin: 7, seq: 2 }, b"world");
/// assert_eq!(batch.frames(), 2);
/// let bytes = batch.take();
/// let got: Vec<_> = frames(&bytes).map(|f| f.unwrap().1).collect();
/// assert_eq!(got, [&b"hello"[..], b"world"]);
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    last: Option<usize>,
    frames: usize,
}

impl Batch {
    /// Appends a frame: `h` and `payload`.
    ///
    /// # Panics
    ///
    /// If `payload` is longer than `u32::MAX` bytes (memlane messages are
    /// smaller).
    pub fn push(&mut self, h: Header, payload: &[u8]) {
        if let Some(at) = self.last {
            self.buf[at + 6..at + 8].copy_from_slice(&FLAG_MORE.to_le_bytes());
        }
        let at = self.buf.len();
        self.last = Some(at);
        self.buf.reserve(HEADER_LEN + payload.len());
        put_header(&mut self.buf, h, payload.len());
        self.buf.extend_from_slice(payload);
        self.frames += 1;
    }

    /// Frames in the batch.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Bytes in the batch (headers included).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether no frame was pushed.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// The payload, leaving the batch empty.
    pub fn take(&mut self) -> Vec<u8> {
        self.last = None;
        self.frames = 0;
        std::mem::take(&mut self.buf)
    }
}

fn put_header(out: &mut Vec<u8>, h: Header, payload_len: usize) {
    let len = u32::try_from(payload_len).expect("payload longer than 4 GiB");
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(h.kind.to_byte());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&h.origin.to_le_bytes());
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// The frames of a payload, each checked as [`decode`] checks one; after
/// an error, nothing more (the rest cannot be framed).
///
/// # Examples
///
/// ```
/// use memlane_zenoh::wire::{frames, Batch, Header, Kind};
/// let mut batch = Batch::default();
/// batch.push(Header { kind: Kind::Channel, origin: 7, seq: 1 }, b"hi");
/// let mut bytes = batch.take();
/// bytes.push(0); // a stray byte after the last frame
/// let mut it = frames(&bytes);
/// assert!(it.next().unwrap().is_err());
/// assert!(it.next().is_none());
/// ```
pub fn frames(bytes: &[u8]) -> Frames<'_> {
    Frames { rest: Some(bytes) }
}

/// The iterator [`frames`] returns.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(Header, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.rest.take()?;
        match decode_frame(bytes) {
            Ok((h, payload, rest)) => {
                self.rest = rest;
                Some(Ok((h, payload)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Checks every field of `bytes`' header and returns it with the payload:
/// a payload of exactly one frame.
///
/// # Errors
///
/// A [`WireError`] naming the first field that is wrong (a frame that
/// says another follows is [`WireError::Length`] here).
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), WireError> {
    match decode_frame(bytes)? {
        (h, payload, None) => Ok((h, payload)),
        (_, payload, Some(rest)) => Err(WireError::Length {
            said: payload.len() as u32,
            got: payload.len() + rest.len(),
            more: true,
        }),
    }
}

/// One frame at the start of `bytes`: its header, its payload and, if it
/// says another frame follows, the bytes after it.
#[allow(clippy::type_complexity)]
fn decode_frame(bytes: &[u8]) -> Result<(Header, &[u8], Option<&[u8]>), WireError> {
    let Some((head, after)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(WireError::Short { len: bytes.len() });
    };
    let f = decode_header(head, after.len())?;
    let (payload, rest) = after.split_at(f.len);
    Ok((f.header, payload, f.more.then_some(rest)))
}

/// A checked frame header: what [`decode_header`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The header's fields.
    pub header: Header,
    /// The frame's payload length (≤ the bytes after the header).
    pub len: usize,
    /// Whether another frame follows the payload.
    pub more: bool,
}

/// Checks every field of one frame's header, `after` being the number of
/// bytes that follow the header in the payload: the frame's length must
/// be exactly `after` for the last frame, and less than it when another
/// frame follows. For payloads that arrive in pieces (read with a reader,
/// not as one slice).
///
/// # Errors
///
/// A [`WireError`] naming the first field that is wrong.
///
/// # Examples
///
/// ```
/// use memlane_zenoh::wire::{decode_header, encode_header, Header, Kind, HEADER_LEN};
/// let mut buf = Vec::new();
/// let h = Header { kind: Kind::Channel, origin: 7, seq: 1 };
/// encode_header(&mut buf, h, 5);
/// let head: [u8; HEADER_LEN] = buf[..].try_into().unwrap();
/// let f = decode_header(&head, 5)?;
/// assert_eq!((f.header, f.len, f.more), (h, 5, false));
/// assert!(decode_header(&head, 6).is_err()); // a stray byte after it
/// # Ok::<(), memlane_zenoh::wire::WireError>(())
/// ```
pub fn decode_header(head: &[u8; HEADER_LEN], after: usize) -> Result<FrameHeader, WireError> {
    let word = |r: std::ops::Range<usize>| &head[r];
    if word(0..4) != MAGIC {
        return Err(WireError::Magic);
    }
    if head[4] != VERSION {
        return Err(WireError::Version(head[4]));
    }
    let kind = match head[5] {
        0 => Kind::Channel,
        1 => Kind::Latest,
        k => return Err(WireError::Kind(k)),
    };
    let flags = u16::from_le_bytes([head[6], head[7]]);
    let reserved = u32::from_le_bytes([head[36], head[37], head[38], head[39]]);
    if flags & !FLAG_MORE != 0 || reserved != 0 {
        return Err(WireError::Flags { flags, reserved });
    }
    let mut origin = [0u8; 16];
    origin.copy_from_slice(word(8..24));
    let mut seq = [0u8; 8];
    seq.copy_from_slice(word(24..32));
    let seq = u64::from_le_bytes(seq);
    if seq == 0 {
        return Err(WireError::ZeroSeq);
    }
    let said = u32::from_le_bytes([head[32], head[33], head[34], head[35]]);
    let more = flags & FLAG_MORE != 0;
    let length = WireError::Length {
        said,
        got: after,
        more,
    };
    // `said` fits in usize on every target memlane builds for (≥ 32 bits).
    let len = usize::try_from(said).map_err(|_| length.clone())?;
    match (more, after.cmp(&len)) {
        (false, std::cmp::Ordering::Equal) | (true, std::cmp::Ordering::Greater) => {}
        _ => return Err(length),
    }
    let header = Header {
        kind,
        origin: u128::from_le_bytes(origin),
        seq,
    };
    Ok(FrameHeader { header, len, more })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let h = Header {
            kind: Kind::Latest,
            origin: u128::MAX - 3,
            seq: u64::MAX,
        };
        encode_header(&mut v, h, payload.len());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn round_trip() {
        let v = sample(b"abc");
        let (h, p) = decode(&v).unwrap();
        assert_eq!(
            (h.kind, h.origin, h.seq, p),
            (Kind::Latest, u128::MAX - 3, u64::MAX, &b"abc"[..])
        );
        assert_eq!(decode(&sample(b"")).unwrap().1, b"");
    }

    #[test]
    fn every_field_is_checked() {
        let good = sample(b"abc");
        assert_eq!(decode(&good[..39]), Err(WireError::Short { len: 39 }));
        let mut v = good.clone();
        v[0] = b'X';
        assert_eq!(decode(&v), Err(WireError::Magic));
        let mut v = good.clone();
        v[4] = 1; // the unbatched format
        assert_eq!(decode(&v), Err(WireError::Version(1)));
        let mut v = good.clone();
        v[5] = 9;
        assert_eq!(decode(&v), Err(WireError::Kind(9)));
        let mut v = good.clone();
        v[6] = 2;
        assert!(matches!(decode(&v), Err(WireError::Flags { flags: 2, .. })));
        let mut v = good.clone();
        v[6] = 1; // MORE, with nothing after the frame
        assert_eq!(
            decode(&v),
            Err(WireError::Length {
                said: 3,
                got: 3,
                more: true
            })
        );
        let mut v = good.clone();
        v[39] = 1;
        assert!(matches!(
            decode(&v),
            Err(WireError::Flags {
                reserved: 0x0100_0000,
                ..
            })
        ));
        let mut v = good.clone();
        v[24..32].fill(0);
        assert_eq!(decode(&v), Err(WireError::ZeroSeq));
        let mut v = good.clone();
        v.push(0);
        assert_eq!(
            decode(&v),
            Err(WireError::Length {
                said: 3,
                got: 4,
                more: false
            })
        );
        v.truncate(42);
        assert_eq!(
            decode(&v),
            Err(WireError::Length {
                said: 3,
                got: 2,
                more: false
            })
        );
    }

    fn batch_of(n: u64) -> Vec<u8> {
        let mut b = Batch::default();
        for seq in 1..=n {
            let payload = vec![seq as u8; seq as usize % 7];
            b.push(
                Header {
                    kind: Kind::Channel,
                    origin: 5,
                    seq,
                },
                &payload,
            );
        }
        assert_eq!(b.frames(), n as usize);
        b.take()
    }

    #[test]
    fn batches_round_trip() {
        let bytes = batch_of(20);
        let got: Vec<_> = frames(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 20);
        for (i, (h, p)) in got.iter().enumerate() {
            let seq = i as u64 + 1;
            assert_eq!((h.seq, h.origin, h.kind), (seq, 5, Kind::Channel));
            assert_eq!(*p, &vec![seq as u8; seq as usize % 7][..]);
        }
        // A batch of one is a plain frame.
        assert!(decode(&batch_of(1)).is_ok());
        // Several frames are not one.
        assert!(matches!(
            decode(&batch_of(2)),
            Err(WireError::Length { more: true, .. })
        ));
        let mut b = Batch::default();
        assert!(b.is_empty() && b.take().is_empty());
    }

    #[test]
    fn a_bad_frame_ends_the_batch() {
        let good = batch_of(3);
        // Stray bytes after the last frame: the first two are delivered.
        let mut v = good.clone();
        v.push(1);
        let got: Vec<_> = frames(&v).collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[1].is_ok());
        assert!(matches!(
            got[2],
            Err(WireError::Length {
                more: false,
                got: 4,
                ..
            })
        ));
        // Cut inside the second frame's header.
        let first = HEADER_LEN + 1;
        let got: Vec<_> = frames(&good[..first + 10]).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Err(WireError::Short { len: 10 }));
        // The second frame's magic broken: nothing after it.
        let mut v = good.clone();
        v[first] = b'X';
        let got: Vec<_> = frames(&v).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Err(WireError::Magic));
        // A length reaching past the end.
        let mut v = good;
        v[first + 32..first + 36].copy_from_slice(&u32::MAX.to_le_bytes());
        let got: Vec<_> = frames(&v).collect();
        assert!(matches!(got[1], Err(WireError::Length { more: true, .. })));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for n in 0..2000 {
            let mut v = sample(&vec![0u8; n % 97]);
            for _ in 0..(n % 5) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % v.len();
                v[i] ^= (x >> 32) as u8;
            }
            let _ = decode(&v);
            let _ = decode(&v[..(x as usize) % (v.len() + 1)]);
            let mut b = batch_of(n as u64 % 6 + 1);
            let i = (x as usize) % b.len();
            b[i] ^= (x >> 24) as u8 | 1;
            let cut = (x as usize >> 8) % (b.len() + 1);
            assert!(frames(&b[..cut]).count() <= 6);
        }
    }
}
