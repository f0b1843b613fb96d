//! The bridge's wire format: a fixed 40-byte header before each message's
//! bytes, in one Zenoh payload. Mirrored in `docs/BRIDGE.md`.
//!
//! ```text
//! offset size field
//!      0    4 magic    b"mlzb"
//!      4    1 version  1
//!      5    1 kind     0: a channel message, 1: a latest-value slot's value
//!      6    2 flags    0 (no flag is defined; a receiver rejects unknown bits)
//!      8   16 origin   the id of the bridge that first put the message on Zenoh
//!                      (128 bits, random per bridge process, little-endian)
//!     24    8 seq      per (origin, key expression): 1, 2, 3, … (little-endian)
//!     32    4 len      payload length in bytes (little-endian); must equal the
//!                      Zenoh payload's length minus 40
//!     36    4 reserved 0
//!     40  len payload  the message's bytes, as published locally
//! ```
//!
//! Every field of an inbound header is checked ([`decode`]); anything else
//! is a [`WireError`], which the bridge counts and drops.

/// Bytes of the header.
pub const HEADER_LEN: usize = 40;
/// The first four bytes of every bridge payload.
pub const MAGIC: [u8; 4] = *b"mlzb";
/// The format's version.
pub const VERSION: u8 = 1;

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
    /// The length field disagrees with the payload.
    #[error("the header says {said} payload bytes but {got} followed it")]
    Length {
        /// The header's length field.
        said: u32,
        /// The bytes after the header.
        got: usize,
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
    let len = u32::try_from(payload_len).expect("payload longer than 4 GiB");
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(h.kind.to_byte());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&h.origin.to_le_bytes());
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
}

/// Checks every field of `bytes`' header and returns it with the payload.
///
/// # Errors
///
/// A [`WireError`] naming the first field that is wrong.
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), WireError> {
    let Some((head, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(WireError::Short { len: bytes.len() });
    };
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
    if flags != 0 || reserved != 0 {
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
    if u64::from(said) != payload.len() as u64 {
        return Err(WireError::Length {
            said,
            got: payload.len(),
        });
    }
    Ok((
        Header {
            kind,
            origin: u128::from_le_bytes(origin),
            seq,
        },
        payload,
    ))
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
        v[4] = 2;
        assert_eq!(decode(&v), Err(WireError::Version(2)));
        let mut v = good.clone();
        v[5] = 9;
        assert_eq!(decode(&v), Err(WireError::Kind(9)));
        let mut v = good.clone();
        v[6] = 1;
        assert!(matches!(decode(&v), Err(WireError::Flags { flags: 1, .. })));
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
        assert_eq!(decode(&v), Err(WireError::Length { said: 3, got: 4 }));
        v.truncate(42);
        assert_eq!(decode(&v), Err(WireError::Length { said: 3, got: 2 }));
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
        }
    }
}
