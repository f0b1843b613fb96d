//! The type record a typed channel carries: what its messages are.
//!
//! Written once by the creator between the subscriber slots and the ring
//! (`Config::type_len` bytes, see `channel/layout.rs`), copied out and
//! validated by every typed opener and by `memlane info`. Byte offsets,
//! native-endian integers (mirrored in `docs/ARCHITECTURE.md`):
//!
//! ```text
//! offset  size       field
//!      0     4       magic        0x45505954 ("TYPE")
//!      4     2       version      1
//!      6     2       encoding     1 = plain (the bytes of the value), 2 = postcard (serde)
//!      8     8       size         bytes of one value (plain); size_of the Rust type (postcard, informational)
//!     16     4       align        alignment of the type
//!     20     4       name_len     1..=MAX_NAME bytes of UTF-8
//!     24     8       fingerprint  FNV-1a 64 of name, size, align, encoding and the type's layout hash
//!     32     4       schema_len   bytes of the schema, 0..=MAX_SCHEMA_LEN (0: none)
//!     36     2       schema_format 0 = none, 1 = postcard bytes of postcard-schema 0.2's
//!                                  `OwnedNamedType` (see `schema.rs`); 0 exactly when schema_len is 0
//!     38    26       reserved     0
//!     64  name_len   name
//!     64 + name_len  schema_len  the schema (postcard encodings only)
//! ```
//!
//! The record is padded with zeros to a multiple of 16. A reader that
//! predates the schema (same layout and record version) checks that
//! `schema_len` bytes fit after the name and ignores them.

use std::fmt;

use super::schema::{MessageSchema, MAX_SCHEMA_LEN};

/// Bytes of the record before the name.
pub(crate) const FIXED: usize = 64;
/// Longest recorded type name, in bytes (longer names are cut at a
/// character boundary; the fingerprint covers the whole name).
pub const MAX_NAME: usize = 1024;
const MAGIC: u32 = 0x4550_5954;
const VERSION: u16 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 4;
const ENCODING_AT: usize = 6;
const SIZE_AT: usize = 8;
const ALIGN_AT: usize = 16;
const NAME_LEN_AT: usize = 20;
const FINGERPRINT_AT: usize = 24;
const SCHEMA_LEN_AT: usize = 32;
const SCHEMA_FORMAT_AT: usize = 36;
const _: () = {
    assert!(ENCODING_AT == VERSION_AT + 2 && SIZE_AT == ENCODING_AT + 2);
    assert!(ALIGN_AT == SIZE_AT + 8 && NAME_LEN_AT == ALIGN_AT + 4);
    assert!(FINGERPRINT_AT == NAME_LEN_AT + 4 && SCHEMA_LEN_AT == FINGERPRINT_AT + 8);
    assert!(SCHEMA_FORMAT_AT == SCHEMA_LEN_AT + 4);
    // 26 reserved bytes, then the name.
    assert!(FIXED == SCHEMA_FORMAT_AT + 2 + 26 && FIXED % 16 == 0);
    // The largest record fits the channel's type record area.
    assert!(
        FIXED + MAX_NAME + MAX_SCHEMA_LEN + 16 <= crate::channel::layout::MAX_TYPE_LEN as usize
    );
};

/// How a typed channel's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// The bytes of the value itself, read in place (a
    /// [`TypedChannel`](crate::TypedChannel)); a message is one value or a
    /// slice of them.
    Plain,
    /// The value encoded with postcard (a `SerdeChannel`, cargo feature
    /// `serde`).
    Postcard,
}

impl Encoding {
    fn code(self) -> u16 {
        match self {
            Encoding::Plain => 1,
            Encoding::Postcard => 2,
        }
    }
    fn from_code(code: u16) -> Option<Encoding> {
        match code {
            1 => Some(Encoding::Plain),
            2 => Some(Encoding::Postcard),
            _ => None,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Plain => "plain",
            Encoding::Postcard => "postcard",
        })
    }
}

/// What a typed channel carries: recorded when it is created typed
/// ([`ChannelBuilder::message_type`](crate::ChannelBuilder::message_type)),
/// read back with [`Channel::message_type`](crate::Channel::message_type).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-rec-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// use memlane::{Channel, Encoding};
/// let ch = Channel::builder("doc-rec").dir(&dir).message_type::<u64>().create()?;
/// let rec = ch.message_type()?.expect("created typed");
/// assert_eq!((rec.name(), rec.size(), rec.align(), rec.encoding()), ("u64", 8, 8, Encoding::Plain));
/// # drop(ch);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRecord {
    name: String,
    encoding: Encoding,
    size: u64,
    align: u32,
    fingerprint: u64,
    schema: Option<MessageSchema>,
}

impl TypeRecord {
    /// A record; `name` is cut to [`MAX_NAME`] bytes (the fingerprint is
    /// computed here, over the whole name and `layout_hash`).
    pub(crate) fn new(
        name: &str,
        encoding: Encoding,
        size: u64,
        align: u32,
        layout_hash: u64,
    ) -> TypeRecord {
        let mut h = Fnv::new();
        h.bytes(name.as_bytes());
        h.bytes(&size.to_le_bytes());
        h.bytes(&align.to_le_bytes());
        h.bytes(&encoding.code().to_le_bytes());
        h.bytes(&layout_hash.to_le_bytes());
        let mut cut = name.len().min(MAX_NAME);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        TypeRecord {
            name: name[..cut].to_string(),
            encoding,
            size,
            align,
            fingerprint: h.finish(),
            schema: None,
        }
    }

    /// The same record with a message schema (a postcard encoding only).
    #[cfg(any(feature = "schema", feature = "fuzzing", test))]
    pub(crate) fn with_schema(mut self, schema: MessageSchema) -> TypeRecord {
        self.schema = Some(schema);
        self
    }

    /// Whether a channel recording `self` can be opened as `expected`:
    /// the same name, encoding, size, alignment and fingerprint, and, when
    /// both have a schema of the same format, the same schema. (A side
    /// without a schema, or with one in another format, cannot check it:
    /// a schema'd channel opens with [`Channel::serde`](crate::Channel::serde),
    /// and a channel without one with `Channel::serde_with_schema`.)
    pub(crate) fn agrees_with(&self, expected: &TypeRecord) -> bool {
        let same = self.name == expected.name
            && self.encoding == expected.encoding
            && self.size == expected.size
            && self.align == expected.align
            && self.fingerprint == expected.fingerprint;
        match (&self.schema, &expected.schema) {
            (Some(a), Some(b)) if a.format() == b.format() => same && a == b,
            _ => same,
        }
    }

    /// The type's name (by default `std::any::type_name`; see
    /// [`MessageType::type_name`](crate::MessageType::type_name)).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// How messages are encoded.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// Bytes of one value (for [`Encoding::Plain`], each message is a
    /// whole number of them).
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Alignment of the type, in bytes.
    pub fn align(&self) -> u32 {
        self.align
    }
    /// The layout fingerprint: a 64-bit FNV-1a hash of the name, size,
    /// alignment, encoding and the type's
    /// [`layout_hash`](crate::MessageType::layout_hash).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
    /// The message schema a serde channel records (created with
    /// `ChannelBuilder::serde_type_with_schema`, cargo feature `schema`),
    /// which decodes its messages to JSON without the Rust type; `None`
    /// for plain types and serde channels created without one.
    pub fn schema(&self) -> Option<&MessageSchema> {
        self.schema.as_ref()
    }

    /// The record as a channel stores it, for tools that carry a
    /// channel's type elsewhere (memlane-bridge sends it to the machines
    /// it forwards to) and re-create a channel of that type with
    /// [`ChannelBuilder::message_type_record`](crate::ChannelBuilder::message_type_record).
    /// Integers are in the machine's byte order.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-recbytes-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use memlane::{Channel, TypeRecord};
    /// let a = Channel::builder("doc-rec-a").dir(&dir).message_type::<[f32; 3]>().create()?;
    /// let bytes = a.message_type()?.expect("typed").to_bytes();
    /// // Elsewhere: a channel of the same type, without the Rust type at hand.
    /// let record = TypeRecord::from_bytes(&bytes)?;
    /// let b = Channel::builder("doc-rec-b").dir(&dir).message_type_record(&record).create()?;
    /// assert!(b.typed::<[f32; 3]>().is_ok());
    /// # drop((a, b));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Reads bytes made by [`to_bytes`](Self::to_bytes), checking every
    /// field as a typed open checks a channel's record. Never panics,
    /// whatever the bytes.
    ///
    /// # Errors
    ///
    /// [`TypeError::BadRecord`](crate::TypeError::BadRecord) naming what is
    /// wrong (no bytes at all included).
    ///
    /// # Examples
    ///
    /// ```
    /// use memlane::{TypeError, TypeRecord};
    /// assert!(matches!(TypeRecord::from_bytes(b"garbage"), Err(TypeError::BadRecord { .. })));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<TypeRecord, crate::TypeError> {
        match TypeRecord::decode(bytes) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(crate::TypeError::BadRecord {
                reason: "no bytes".into(),
            }),
            Err(reason) => Err(crate::TypeError::BadRecord { reason }),
        }
    }

    /// The bytes stored in the channel, padded to a multiple of 16.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let schema: &[u8] = self.schema.as_ref().map_or(&[], |s| s.as_bytes());
        let format = self.schema.as_ref().map_or(0, |s| s.format());
        let mut b = vec![0u8; FIXED + self.name.len() + schema.len()];
        let mut put = |at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
        put(MAGIC_AT, &MAGIC.to_ne_bytes());
        put(VERSION_AT, &VERSION.to_ne_bytes());
        put(ENCODING_AT, &self.encoding.code().to_ne_bytes());
        put(SIZE_AT, &self.size.to_ne_bytes());
        put(ALIGN_AT, &self.align.to_ne_bytes());
        put(NAME_LEN_AT, &(self.name.len() as u32).to_ne_bytes());
        put(FINGERPRINT_AT, &self.fingerprint.to_ne_bytes());
        put(SCHEMA_LEN_AT, &(schema.len() as u32).to_ne_bytes());
        put(SCHEMA_FORMAT_AT, &format.to_ne_bytes());
        put(FIXED, self.name.as_bytes());
        put(FIXED + self.name.len(), schema);
        b.resize(b.len().next_multiple_of(16), 0);
        b
    }

    /// Validates a copy of a channel's type record bytes: `Ok(None)` for
    /// an untyped channel (no bytes), `Err(reason)` for bytes that are
    /// not a record this version reads. Never panics, whatever the bytes.
    pub(crate) fn decode(b: &[u8]) -> Result<Option<TypeRecord>, String> {
        if b.is_empty() {
            return Ok(None);
        }
        let u16_at = |at: usize| b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]));
        let u32_at = |at: usize| {
            b.get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        let u64_at = |at: usize| {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_ne_bytes)
        };
        if b.len() < FIXED {
            return Err(format!(
                "the type record is {} bytes, less than its {FIXED}-byte header",
                b.len()
            ));
        }
        if u32_at(MAGIC_AT) != Some(MAGIC) {
            return Err("the type record has the wrong magic".into());
        }
        match u16_at(VERSION_AT) {
            Some(VERSION) => {}
            v => {
                return Err(format!(
                    "type record version {} (this memlane reads {VERSION})",
                    v.unwrap_or(0)
                ))
            }
        }
        let code = u16_at(ENCODING_AT).unwrap_or(0);
        let encoding =
            Encoding::from_code(code).ok_or_else(|| format!("unknown message encoding {code}"))?;
        let size = u64_at(SIZE_AT).unwrap_or(0);
        let align = u32_at(ALIGN_AT).unwrap_or(0);
        if !align.is_power_of_two() {
            return Err(format!("alignment {align} is not a power of two"));
        }
        if encoding == Encoding::Plain && (size == 0 || size % u64::from(align) != 0) {
            return Err(format!(
                "a plain type of {size} bytes with alignment {align} is impossible"
            ));
        }
        let name_len = u32_at(NAME_LEN_AT).unwrap_or(0) as usize;
        if name_len == 0 || name_len > MAX_NAME {
            return Err(format!("type name length {name_len} (1 to {MAX_NAME})"));
        }
        let schema_len = u32_at(SCHEMA_LEN_AT).unwrap_or(0) as usize;
        let schema_format = u16_at(SCHEMA_FORMAT_AT).unwrap_or(0);
        let name = b
            .get(FIXED..FIXED + name_len)
            .ok_or_else(|| format!("a {name_len}-byte type name does not fit the record"))?;
        if b.len() - FIXED - name_len < schema_len {
            return Err(format!(
                "a {schema_len}-byte schema does not fit the record"
            ));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| "the type name is not UTF-8".to_string())?
            .to_string();
        let schema = match (schema_len, schema_format) {
            (0, 0) => None,
            (0, f) => return Err(format!("schema format {f} without schema bytes")),
            (_, 0) => return Err(format!("{schema_len} schema bytes of no format")),
            _ if encoding != Encoding::Postcard => {
                return Err(format!("a schema on a {encoding} type"))
            }
            _ if schema_len > MAX_SCHEMA_LEN => {
                return Err(format!(
                    "a {schema_len}-byte schema is longer than {MAX_SCHEMA_LEN} bytes"
                ))
            }
            (len, format) => {
                let at = FIXED + name_len;
                let bytes = b
                    .get(at..at + len)
                    .ok_or_else(|| format!("a {len}-byte schema does not fit the record"))?;
                Some(MessageSchema::decode(format, bytes)?)
            }
        };
        Ok(Some(TypeRecord {
            name,
            encoding,
            size,
            align,
            fingerprint: u64_at(FINGERPRINT_AT).unwrap_or(0),
            schema,
        }))
    }
}

impl fmt::Display for TypeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({}", self.name, self.encoding)?;
        if self.encoding == Encoding::Plain {
            write!(f, ", {} bytes", self.size)?;
        }
        write!(
            f,
            ", align {}, fingerprint {:#018x}",
            self.align, self.fingerprint
        )?;
        if let Some(s) = &self.schema {
            // A short hash: two schemas that differ show different ones.
            write!(f, ", schema {:#010x}", layout_hash(s.as_bytes()) >> 32)?;
        }
        f.write_str(")")
    }
}

/// FNV-1a, 64 bits: a small, well-known, non-cryptographic hash. The
/// fingerprint detects mistakes (two programs disagreeing on a type), not
/// attacks: a process that can write the channel can write any record.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0 = fnv_fold(self.0, b);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const fn fnv_fold(mut h: u64, b: &[u8]) -> u64 {
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// A 64-bit FNV-1a hash of `bytes`, usable in `const` context: a
/// convenient [`MessageType::layout_hash`](crate::MessageType::layout_hash)
/// of a description of the type's fields.
///
/// # Examples
///
/// ```
/// const H: u64 = memlane::layout_hash(b"t: u64, accel: [f32; 3]");
/// assert_ne!(H, memlane::layout_hash(b"accel: [f32; 3], t: u64"));
/// ```
pub const fn layout_hash(bytes: &[u8]) -> u64 {
    fnv_fold(Fnv::new().0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty() {
        let r = TypeRecord::new("app::Imu", Encoding::Plain, 24, 8, 7);
        let b = r.encode();
        assert_eq!(b.len() % 16, 0);
        assert_eq!(TypeRecord::decode(&b), Ok(Some(r.clone())));
        assert_eq!(TypeRecord::decode(&[]), Ok(None));
        // The fingerprint covers each part.
        for other in [
            TypeRecord::new("app::Imv", Encoding::Plain, 24, 8, 7),
            TypeRecord::new("app::Imu", Encoding::Postcard, 24, 8, 7),
            TypeRecord::new("app::Imu", Encoding::Plain, 32, 8, 7),
            TypeRecord::new("app::Imu", Encoding::Plain, 24, 4, 7),
            TypeRecord::new("app::Imu", Encoding::Plain, 24, 8, 8),
        ] {
            assert_ne!(other.fingerprint(), r.fingerprint());
        }
    }

    /// The encoding against the format written out with literal offsets
    /// (`docs/ARCHITECTURE.md`).
    #[test]
    fn encoding_matches_literal_offsets() {
        let r = TypeRecord::new("ab", Encoding::Postcard, 0x0102_0304_0506_0708, 8, 0);
        let b = r.encode();
        assert_eq!(b.len(), 80);
        assert_eq!(b[0..4], 0x4550_5954u32.to_ne_bytes());
        assert_eq!(b[4..6], 1u16.to_ne_bytes());
        assert_eq!(b[6..8], 2u16.to_ne_bytes());
        assert_eq!(b[8..16], 0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(b[16..20], 8u32.to_ne_bytes());
        assert_eq!(b[20..24], 2u32.to_ne_bytes());
        assert_eq!(b[24..32], r.fingerprint().to_ne_bytes());
        assert_eq!(b[32..36], [0; 4]);
        assert!(b[36..64].iter().all(|&x| x == 0));
        assert_eq!(&b[64..66], b"ab");
        assert!(b[66..].iter().all(|&x| x == 0));
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let name = "é".repeat(MAX_NAME);
        let r = TypeRecord::new(&name, Encoding::Plain, 1, 1, 0);
        assert!(r.name().len() <= MAX_NAME && r.name().len() >= MAX_NAME - 1);
        assert_eq!(TypeRecord::decode(&r.encode()), Ok(Some(r)));
    }

    #[test]
    fn each_fault_is_an_error() {
        let good = TypeRecord::new("x", Encoding::Plain, 4, 4, 0).encode();
        let faults: [(usize, &[u8]); 8] = [
            (MAGIC_AT, &[0, 0, 0, 0]),
            (VERSION_AT, &[9, 0]),
            (ENCODING_AT, &[7, 0]),
            (SIZE_AT, &[0; 8]),
            (ALIGN_AT, &[3, 0, 0, 0]),
            (NAME_LEN_AT, &[0, 0, 0, 0]),
            (NAME_LEN_AT, &[200, 0, 0, 0]),
            (SCHEMA_LEN_AT, &[255, 255, 0, 0]),
        ];
        for (at, bytes) in faults {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            assert!(TypeRecord::decode(&b).is_err(), "fault at {at}");
        }
        let mut b = good.clone();
        b[FIXED] = 0xff;
        assert!(TypeRecord::decode(&b).is_err(), "name not UTF-8");
        assert!(TypeRecord::decode(&good[..10]).is_err());
    }

    /// A postcard schema of `struct S { a: u8 }` (name "S", tag 26, one
    /// field "a" of type "u8", tag 2).
    const SCHEMA: &[u8] = &[1, b'S', 26, 1, 1, b'a', 2, b'u', b'8', 2];

    fn with_schema() -> TypeRecord {
        let mut r = TypeRecord::new("app::S", Encoding::Postcard, 1, 1, 0);
        r.schema = Some(MessageSchema::decode(1, SCHEMA).unwrap());
        r
    }

    #[test]
    fn the_schema_follows_the_name() {
        let r = with_schema();
        let b = r.encode();
        assert_eq!(b[32..36], (SCHEMA.len() as u32).to_ne_bytes());
        assert_eq!(b[36..38], 1u16.to_ne_bytes());
        assert!(b[38..64].iter().all(|&x| x == 0));
        assert_eq!(&b[64..70], b"app::S");
        assert_eq!(&b[70..70 + SCHEMA.len()], SCHEMA);
        assert_eq!(b.len(), 80);
        assert_eq!(TypeRecord::decode(&b), Ok(Some(r.clone())));
        assert!(r.to_string().contains(", schema 0x"), "{r}");
        // Agreement: the schema counts only when both sides have one.
        let plain = TypeRecord::new("app::S", Encoding::Postcard, 1, 1, 0);
        assert!(r.agrees_with(&plain) && plain.agrees_with(&r));
        let mut other = with_schema();
        other.schema =
            Some(MessageSchema::decode(1, &[1, b'S', 26, 1, 1, b'b', 2, b'u', b'8', 2]).unwrap());
        assert!(!r.agrees_with(&other));
        assert_ne!(r.to_string(), other.to_string());
    }

    #[test]
    fn each_schema_fault_is_an_error() {
        let good = with_schema().encode();
        let faults: [(usize, &[u8]); 5] = [
            // Bytes without a format, a format without bytes.
            (SCHEMA_FORMAT_AT, &[0, 0]),
            (SCHEMA_LEN_AT, &[0, 0, 0, 0]),
            // A schema on a plain type.
            (ENCODING_AT, &[1, 0]),
            // Longer than the record, and a broken schema.
            (SCHEMA_LEN_AT, &[27, 0, 0, 0]),
            (70 + 2, &[99]),
        ];
        for (at, bytes) in faults {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            assert!(TypeRecord::decode(&b).is_err(), "fault at {at}");
        }
        // An unknown format is kept, opaque.
        let mut b = good.clone();
        b[SCHEMA_FORMAT_AT..SCHEMA_FORMAT_AT + 2].copy_from_slice(&7u16.to_ne_bytes());
        let r = TypeRecord::decode(&b).unwrap().unwrap();
        assert!(!r.schema().unwrap().is_readable());
    }

    /// Garbage of every length never panics.
    #[test]
    fn public_bytes_round_trip_and_are_checked() {
        use crate::TypeError;
        for r in [
            TypeRecord::new("u32", Encoding::Plain, 4, 4, 9),
            with_schema(),
        ] {
            assert_eq!(TypeRecord::from_bytes(&r.to_bytes()).unwrap(), r);
        }
        let bad = |b: &[u8]| matches!(TypeRecord::from_bytes(b), Err(TypeError::BadRecord { .. }));
        assert!(bad(&[]));
        let mut b = with_schema().to_bytes();
        b[MAGIC_AT] ^= 1;
        assert!(bad(&b));
        let mut b = with_schema().to_bytes();
        b[SCHEMA_LEN_AT..SCHEMA_LEN_AT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(bad(&b));
        let b = with_schema().to_bytes();
        assert!(bad(&b[..FIXED + 2]));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in 0..600 {
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = TypeRecord::decode(&b);
            // With a valid magic and version, the rest still random.
            if b.len() >= FIXED {
                b[..4].copy_from_slice(&MAGIC.to_ne_bytes());
                b[4..6].copy_from_slice(&VERSION.to_ne_bytes());
                b[6] = 1;
                b[7] = 0;
                let _ = TypeRecord::decode(&b);
            }
        }
    }
}
