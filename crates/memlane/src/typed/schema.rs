//! A serde channel's message schema: what its postcard-encoded messages
//! contain, recorded in the type record so that a process without the
//! Rust type (the `memlane` command) can show them as JSON.
//!
//! The recorded bytes are the postcard encoding of
//! [postcard-schema](https://docs.rs/postcard-schema/0.2) 0.2's
//! `OwnedNamedType` (schema format 1), the schema its `Schema` derive
//! gives a type. Reading them needs no dependency: this module parses that
//! encoding itself, because the bytes come from shared memory and are
//! checked like everything else read there: every length against the
//! bytes left, names UTF-8, nesting at most [`MAX_SCHEMA_DEPTH`] levels,
//! at most [`MAX_SCHEMA_LEN`] bytes, nothing left over. A schema this
//! module accepts decodes any message without panicking, with its output
//! bounded (see [`MessageSchema::to_json`]).
//!
//! Writing a schema (cargo feature `schema`) takes it from postcard-schema
//! and encodes it with postcard.

use std::fmt::{self, Write as _};

/// Schema format 1: postcard bytes of postcard-schema 0.2's `OwnedNamedType`.
pub(crate) const FORMAT_POSTCARD_SCHEMA: u16 = 1;
/// Longest recorded schema, in bytes.
pub const MAX_SCHEMA_LEN: usize = 60 << 10;
/// Deepest nesting of types in a recorded schema (a struct in a `Vec` in
/// an `Option` is three levels below the message type).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// A type of the schema: its name and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Named {
    name: String,
    ty: Ty,
}

/// postcard-schema 0.2's `OwnedDataModelType`, in the same order (the
/// index is the tag on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Ty {
    Bool,
    I8,
    U8,
    I16,
    I32,
    I64,
    I128,
    U16,
    U32,
    U64,
    U128,
    Usize,
    Isize,
    F32,
    F64,
    Char,
    String,
    ByteArray,
    Option(Box<Named>),
    Unit,
    UnitStruct,
    NewtypeStruct(Box<Named>),
    Seq(Box<Named>),
    Tuple(Vec<Named>),
    TupleStruct(Vec<Named>),
    Map { key: Box<Named>, val: Box<Named> },
    Struct(Vec<(String, Named)>),
    Enum(Vec<(String, Variant)>),
    Schema,
}

/// postcard-schema 0.2's `OwnedDataModelVariant`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Variant {
    Unit,
    Newtype(Box<Named>),
    Tuple(Vec<Named>),
    Struct(Vec<(String, Named)>),
}

/// The schema a serde channel records for its messages (created with
/// `ChannelBuilder::serde_type_with_schema`, cargo feature `schema`):
/// read back with [`TypeRecord::schema`](crate::TypeRecord::schema),
/// it decodes a message to JSON without the Rust type.
///
/// `Display` renders it as Rust-like declarations of the types it uses,
/// for example `struct app::Reading { seq: u32, tags: [String] }`.
///
/// # Examples
///
/// A channel created with a schema (see
/// `ChannelBuilder::serde_type_with_schema` for the writing side), read
/// by a program that does not have the Rust type:
///
/// ```
/// fn show(ch: &memlane::Channel, msg: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
///     let t = ch.message_type()?.ok_or("an untyped channel")?;
///     match t.schema() {
///         Some(schema) => println!("{}", schema.to_json(msg)?),
///         None => println!("{} bytes of `{}`", msg.len(), t.name()),
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageSchema {
    format: u16,
    bytes: Vec<u8>,
    /// The parsed schema; `None` for a format this memlane does not read.
    root: Option<Named>,
}

impl MessageSchema {
    /// Validates recorded schema bytes of `format` (a copy from shared
    /// memory). An unknown format is kept as opaque bytes (a newer
    /// memlane wrote it): the record is still usable, the messages just
    /// cannot be shown as JSON. Never panics.
    pub(crate) fn decode(format: u16, bytes: &[u8]) -> Result<MessageSchema, String> {
        if bytes.len() > MAX_SCHEMA_LEN {
            return Err(format!(
                "a {}-byte schema is longer than {MAX_SCHEMA_LEN} bytes",
                bytes.len()
            ));
        }
        let root = match format {
            0 => return Err("schema bytes of format 0 (none)".into()),
            FORMAT_POSTCARD_SCHEMA => {
                let mut r = Reader { b: bytes, at: 0 };
                let root = parse_named(&mut r, 0).map_err(|e| format!("schema: {e}"))?;
                if r.at != bytes.len() {
                    return Err(format!(
                        "schema: {} bytes left over after the type",
                        bytes.len() - r.at
                    ));
                }
                Some(root)
            }
            _ => None,
        };
        Ok(MessageSchema {
            format,
            bytes: bytes.to_vec(),
            root,
        })
    }

    /// The schema of `M`, from its postcard-schema `Schema` derive.
    #[cfg(feature = "schema")]
    pub(crate) fn of<M: postcard_schema::Schema + ?Sized>() -> Result<MessageSchema, String> {
        let owned = postcard_schema::schema::owned::OwnedNamedType::from(M::SCHEMA);
        let bytes = postcard::to_stdvec(&owned).map_err(|e| e.to_string())?;
        MessageSchema::decode(FORMAT_POSTCARD_SCHEMA, &bytes)
    }

    /// The recorded format (1: postcard-schema 0.2's `OwnedNamedType`,
    /// postcard-encoded).
    pub fn format(&self) -> u16 {
        self.format
    }

    /// The recorded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether this memlane reads the schema's format (so that
    /// [`to_json`](Self::to_json) can decode messages).
    pub fn is_readable(&self) -> bool {
        self.root.is_some()
    }

    /// The name of the message type as the schema gives it (for a
    /// derived schema, the Rust type's name without its module path).
    pub fn type_name(&self) -> Option<&str> {
        self.root.as_ref().map(|r| r.name.as_str())
    }

    /// Decodes one postcard-encoded message to one line of JSON: the
    /// same JSON `serde_json` prints for the value (structs as objects,
    /// enums externally tagged — `"Unit"`, `{"Variant": value}` —,
    /// `Option::None` and units as `null`, non-finite floats as `null`,
    /// map keys that are not strings as strings). The whole message must
    /// be one value.
    ///
    /// The work and the output are bounded whatever the bytes: at most
    /// 65,536 values plus 8 per message byte, and 1 MiB of JSON plus 64
    /// bytes per message byte.
    ///
    /// # Errors
    ///
    /// A [`MessageDecodeError`] saying where and why the message is not an
    /// encoding of the schema's type, or that the schema's format is not
    /// one this memlane reads.
    ///
    /// # Examples
    ///
    /// See `memlane listen` (`crates/memlane-cli/src/command/listen.rs`)
    /// and the `typed` example; a schema comes from a channel:
    ///
    /// ```
    /// # fn show(ch: &memlane::Channel, msg: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(schema) = ch.message_type()?.as_ref().and_then(|t| t.schema()) {
    ///     println!("{}", schema.to_json(msg)?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_json(&self, msg: &[u8]) -> Result<String, MessageDecodeError> {
        let root = self
            .root
            .as_ref()
            .ok_or(MessageDecodeError::UnknownFormat {
                format: self.format,
            })?;
        let mut d = Decoder {
            r: Reader { b: msg, at: 0 },
            out: String::with_capacity(msg.len().saturating_mul(3).min(1 << 16) + 16),
            values_left: 65_536 + 8 * msg.len() as u64,
            max_out: (1 << 20) + 64 * msg.len(),
        };
        d.value(root)?;
        if d.r.at != msg.len() {
            return Err(MessageDecodeError::LeftOver {
                len: msg.len() - d.r.at,
            });
        }
        Ok(d.out)
    }
}

impl fmt::Display for MessageSchema {
    /// Rust-like declarations: the message type first, then each named
    /// struct or enum it uses, once, separated by `; ` (the first 64).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(root) = &self.root else {
            return write!(
                f,
                "a schema of format {} ({} bytes)",
                self.format,
                self.bytes.len()
            );
        };
        let mut decls: Vec<&Named> = Vec::new();
        collect_decls(root, &mut decls);
        if decls.first().is_none_or(|d| !std::ptr::eq(*d, root)) {
            // The message type is not itself a struct or an enum.
            write_ref(f, root)?;
            if !decls.is_empty() {
                f.write_str("; ")?;
            }
        }
        for (i, d) in decls.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write_decl(f, d)?;
        }
        if decls.len() >= MAX_DECLS {
            f.write_str("; …")?;
        }
        Ok(())
    }
}

/// Why a message does not decode with a [`MessageSchema`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageDecodeError {
    /// The message ends inside a value.
    #[error("the message ends at byte {at} inside a value of `{type_name}`")]
    Truncated {
        /// The message's length.
        at: usize,
        /// The type of the value cut short.
        type_name: String,
    },
    /// A byte that no value of the type encodes to (a `bool` of 2, an
    /// `Option` tag of 7, an enum variant past the last, invalid UTF-8, a
    /// varint too long).
    #[error("byte {at}: {reason} (reading `{type_name}`)")]
    Invalid {
        /// The offset in the message.
        at: usize,
        /// What is wrong.
        reason: String,
        /// The type being read.
        type_name: String,
    },
    /// The message holds more bytes than one value of the type.
    #[error("{len} bytes left over after the value")]
    LeftOver {
        /// Bytes after the value.
        len: usize,
    },
    /// The value is larger than decoding is allowed to make (see
    /// [`MessageSchema::to_json`]).
    #[error(
        "the message decodes to too many values or too much JSON (a sequence of empty values?)"
    )]
    TooLarge,
    /// The schema has a type this decoder cannot show (a schema inside
    /// the message).
    #[error("a value of `{type_name}` cannot be shown as JSON")]
    Unsupported {
        /// The type's name.
        type_name: String,
    },
    /// The schema is in a format this memlane does not read.
    #[error("the schema is in format {format}, which this memlane does not read")]
    UnknownFormat {
        /// The recorded format.
        format: u16,
    },
}

// ---------------------------------------------------------------------------
// Reading postcard

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    /// A postcard varint of an integer of `bits` bits: `Ok(None)` when
    /// the bytes end first, `Err` when it is longer or larger than the type.
    fn varint(&mut self, bits: u32) -> Result<Option<u128>, String> {
        let max_bytes = bits.div_ceil(7);
        let mut v: u128 = 0;
        for i in 0..max_bytes {
            let Some(b) = self.byte() else {
                return Ok(None);
            };
            v |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if bits < 128 && v >> bits != 0 {
                    return Err(format!("a varint larger than a u{bits}"));
                }
                if bits == 128 && i == max_bytes - 1 && b > 0x03 {
                    return Err("a varint larger than a u128".into());
                }
                return Ok(Some(v));
            }
        }
        Err(format!("a varint longer than {max_bytes} bytes"))
    }
}

// ---------------------------------------------------------------------------
// Parsing the schema

/// Reads a length or count (a usize varint) that must not exceed the
/// bytes left divided by `min_each` (the fewest bytes one item takes).
fn count(r: &mut Reader<'_>, min_each: usize, what: &str) -> Result<usize, String> {
    let at = r.at;
    let n = r
        .varint(64)
        .map_err(|e| format!("byte {at}: {e}"))?
        .ok_or_else(|| format!("the schema ends at byte {} in a {what}", r.b.len()))?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > r.left() / min_each.max(1) {
        return Err(format!(
            "byte {at}: a {what} of {n} does not fit the {} bytes left",
            r.left()
        ));
    }
    Ok(n)
}

fn string(r: &mut Reader<'_>) -> Result<String, String> {
    let at = r.at;
    let n = count(r, 1, "name")?;
    let s = r
        .take(n)
        .ok_or_else(|| format!("byte {at}: a name past the end"))?;
    std::str::from_utf8(s)
        .map(str::to_string)
        .map_err(|_| format!("byte {at}: a name that is not UTF-8"))
}

/// The fewest bytes a `Named` takes (an empty name and a tag).
const MIN_NAMED: usize = 2;

fn parse_named(r: &mut Reader<'_>, depth: usize) -> Result<Named, String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "types nested more than {MAX_SCHEMA_DEPTH} levels deep"
        ));
    }
    let name = string(r)?;
    let at = r.at;
    let tag = r
        .varint(32)
        .map_err(|e| format!("byte {at}: {e}"))?
        .ok_or_else(|| format!("the schema ends at byte {} in a type", r.b.len()))?;
    let inner = |r: &mut Reader<'_>| parse_named(r, depth + 1).map(Box::new);
    let list = |r: &mut Reader<'_>| -> Result<Vec<Named>, String> {
        let n = count(r, MIN_NAMED, "tuple")?;
        (0..n).map(|_| parse_named(r, depth + 1)).collect()
    };
    let fields = |r: &mut Reader<'_>| -> Result<Vec<(String, Named)>, String> {
        let n = count(r, 1 + MIN_NAMED, "struct")?;
        (0..n)
            .map(|_| Ok((string(r)?, parse_named(r, depth + 1)?)))
            .collect()
    };
    let ty = match tag {
        0 => Ty::Bool,
        1 => Ty::I8,
        2 => Ty::U8,
        3 => Ty::I16,
        4 => Ty::I32,
        5 => Ty::I64,
        6 => Ty::I128,
        7 => Ty::U16,
        8 => Ty::U32,
        9 => Ty::U64,
        10 => Ty::U128,
        11 => Ty::Usize,
        12 => Ty::Isize,
        13 => Ty::F32,
        14 => Ty::F64,
        15 => Ty::Char,
        16 => Ty::String,
        17 => Ty::ByteArray,
        18 => Ty::Option(inner(r)?),
        19 => Ty::Unit,
        20 => Ty::UnitStruct,
        21 => Ty::NewtypeStruct(inner(r)?),
        22 => Ty::Seq(inner(r)?),
        23 => Ty::Tuple(list(r)?),
        24 => Ty::TupleStruct(list(r)?),
        25 => Ty::Map {
            key: inner(r)?,
            val: inner(r)?,
        },
        26 => Ty::Struct(fields(r)?),
        27 => {
            let n = count(r, 2, "enum")?;
            let mut variants = Vec::new();
            for _ in 0..n {
                let vname = string(r)?;
                let at = r.at;
                let vtag = r
                    .varint(32)
                    .map_err(|e| format!("byte {at}: {e}"))?
                    .ok_or_else(|| format!("the schema ends at byte {} in a variant", r.b.len()))?;
                let v = match vtag {
                    0 => Variant::Unit,
                    1 => Variant::Newtype(inner(r)?),
                    2 => Variant::Tuple(list(r)?),
                    3 => Variant::Struct(fields(r)?),
                    _ => return Err(format!("byte {at}: unknown variant kind {vtag}")),
                };
                variants.push((vname, v));
            }
            Ty::Enum(variants)
        }
        28 => Ty::Schema,
        _ => return Err(format!("byte {at}: unknown type tag {tag}")),
    };
    Ok(Named { name, ty })
}

// ---------------------------------------------------------------------------
// Decoding a message to JSON

struct Decoder<'a> {
    r: Reader<'a>,
    out: String,
    values_left: u64,
    max_out: usize,
}

impl Decoder<'_> {
    fn truncated(&self, t: &Named) -> MessageDecodeError {
        MessageDecodeError::Truncated {
            at: self.r.b.len(),
            type_name: t.name.clone(),
        }
    }
    fn invalid(&self, at: usize, t: &Named, reason: impl Into<String>) -> MessageDecodeError {
        MessageDecodeError::Invalid {
            at,
            reason: reason.into(),
            type_name: t.name.clone(),
        }
    }
    fn byte(&mut self, t: &Named) -> Result<u8, MessageDecodeError> {
        self.r.byte().ok_or_else(|| self.truncated(t))
    }
    fn varint(&mut self, t: &Named, bits: u32) -> Result<u128, MessageDecodeError> {
        let at = self.r.at;
        match self.r.varint(bits) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.truncated(t)),
            Err(e) => Err(self.invalid(at, t, e)),
        }
    }
    fn signed(&mut self, t: &Named, bits: u32) -> Result<(), MessageDecodeError> {
        let n = self.varint(t, bits)?;
        let v = ((n >> 1) as i128) ^ -((n & 1) as i128);
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn unsigned(&mut self, t: &Named, bits: u32) -> Result<(), MessageDecodeError> {
        let v = self.varint(t, bits)?;
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn bytes(&mut self, t: &Named) -> Result<&[u8], MessageDecodeError> {
        let n = self.varint(t, 64)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.r.take(n).ok_or_else(|| MessageDecodeError::Truncated {
            at: self.r.b.len(),
            type_name: t.name.clone(),
        })
    }
    fn text(&mut self, t: &Named) -> Result<(), MessageDecodeError> {
        let at = self.r.at;
        let b = self.bytes(t)?;
        match std::str::from_utf8(b) {
            Ok(s) => {
                let s = s.to_string();
                json_string(&mut self.out, &s);
                Ok(())
            }
            Err(_) => Err(self.invalid(at, t, "a string that is not UTF-8")),
        }
    }
    fn float(&mut self, t: &Named, n: usize) -> Result<(), MessageDecodeError> {
        let b = self
            .r
            .take(n)
            .ok_or_else(|| MessageDecodeError::Truncated {
                at: self.r.b.len(),
                type_name: t.name.clone(),
            })?;
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(b);
        // `{:?}` writes the shortest text that reads back as the same
        // float, a valid JSON number when finite (`1.0`, `1e-7`); a `+`
        // after a positive exponent's `e`, as serde_json writes it.
        let text = if n == 4 {
            let v = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
            v.is_finite().then(|| format!("{v:?}"))
        } else {
            let v = f64::from_le_bytes(a);
            v.is_finite().then(|| format!("{v:?}"))
        };
        match text {
            Some(t) => match t.split_once('e') {
                Some((m, e)) if !e.starts_with('-') => {
                    let _ = write!(self.out, "{m}e+{e}");
                }
                _ => self.out.push_str(&t),
            },
            None => self.out.push_str("null"),
        }
        Ok(())
    }
    fn seq<'s>(
        &mut self,
        items: impl Iterator<Item = &'s Named>,
        open: char,
        close: char,
    ) -> Result<(), MessageDecodeError> {
        self.out.push(open);
        for (i, t) in items.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.value(t)?;
        }
        self.out.push(close);
        Ok(())
    }
    fn fields(&mut self, fields: &[(String, Named)]) -> Result<(), MessageDecodeError> {
        self.out.push('{');
        for (i, (name, t)) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            json_string(&mut self.out, name);
            self.out.push(':');
            self.value(t)?;
        }
        self.out.push('}');
        Ok(())
    }

    /// Appends the JSON of one value of `t`. Recursion follows the
    /// schema, so its depth is at most [`MAX_SCHEMA_DEPTH`].
    fn value(&mut self, t: &Named) -> Result<(), MessageDecodeError> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or(MessageDecodeError::TooLarge)?;
        if self.out.len() > self.max_out {
            return Err(MessageDecodeError::TooLarge);
        }
        match &t.ty {
            Ty::Bool => {
                let at = self.r.at;
                match self.byte(t)? {
                    0 => self.out.push_str("false"),
                    1 => self.out.push_str("true"),
                    b => return Err(self.invalid(at, t, format!("a bool of {b}"))),
                }
            }
            Ty::I8 => {
                let b = self.byte(t)? as i8;
                let _ = write!(self.out, "{b}");
            }
            Ty::U8 => {
                let b = self.byte(t)?;
                let _ = write!(self.out, "{b}");
            }
            Ty::I16 => self.signed(t, 16)?,
            Ty::I32 => self.signed(t, 32)?,
            Ty::I64 | Ty::Isize => self.signed(t, 64)?,
            Ty::I128 => self.signed(t, 128)?,
            Ty::U16 => self.unsigned(t, 16)?,
            Ty::U32 => self.unsigned(t, 32)?,
            Ty::U64 | Ty::Usize => self.unsigned(t, 64)?,
            Ty::U128 => self.unsigned(t, 128)?,
            Ty::F32 => self.float(t, 4)?,
            Ty::F64 => self.float(t, 8)?,
            Ty::Char => {
                let at = self.r.at;
                let b = self.bytes(t)?;
                let mut chars = std::str::from_utf8(b).ok().map(str::chars);
                match chars.as_mut().map(|c| (c.next(), c.next())) {
                    Some((Some(c), None)) => json_string(&mut self.out, c.encode_utf8(&mut [0; 4])),
                    _ => return Err(self.invalid(at, t, "a char that is not one UTF-8 character")),
                }
            }
            Ty::String => self.text(t)?,
            Ty::ByteArray => {
                let b = self.bytes(t)?;
                let mut s = String::with_capacity(b.len() * 4 + 2);
                s.push('[');
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(s, "{x}");
                }
                s.push(']');
                self.out.push_str(&s);
            }
            Ty::Option(inner) => {
                let at = self.r.at;
                match self.byte(t)? {
                    0 => self.out.push_str("null"),
                    1 => self.value(inner)?,
                    b => return Err(self.invalid(at, t, format!("an Option tag of {b}"))),
                }
            }
            Ty::Unit | Ty::UnitStruct => self.out.push_str("null"),
            Ty::NewtypeStruct(inner) => self.value(inner)?,
            Ty::Seq(inner) => {
                let n = self.varint(t, 64)?;
                // Each element costs one value of the budget, which ends
                // a count too large long before memory does.
                self.seq((0..n).map(|_| &**inner), '[', ']')?;
            }
            Ty::Tuple(items) | Ty::TupleStruct(items) => self.seq(items.iter(), '[', ']')?,
            Ty::Map { key, val } => {
                let n = self.varint(t, 64)?;
                self.out.push('{');
                let mut i: u128 = 0;
                while i < n {
                    if i > 0 {
                        self.out.push(',');
                    }
                    // JSON keys are strings: a key of another type is
                    // written as the string of its JSON.
                    let start = self.out.len();
                    self.value(key)?;
                    if !self.out[start..].starts_with('"') {
                        let k = self.out.split_off(start);
                        json_string(&mut self.out, &k);
                    }
                    self.out.push(':');
                    self.value(val)?;
                    i += 1;
                }
                self.out.push('}');
            }
            Ty::Struct(fields) => self.fields(fields)?,
            Ty::Enum(variants) => {
                let at = self.r.at;
                let idx = self.varint(t, 32)?;
                let Some((name, v)) = usize::try_from(idx).ok().and_then(|i| variants.get(i))
                else {
                    return Err(self.invalid(
                        at,
                        t,
                        format!("variant {idx} of an enum of {}", variants.len()),
                    ));
                };
                if let Variant::Unit = v {
                    json_string(&mut self.out, name);
                } else {
                    self.out.push('{');
                    json_string(&mut self.out, name);
                    self.out.push(':');
                    match v {
                        Variant::Unit => {}
                        Variant::Newtype(inner) => self.value(inner)?,
                        Variant::Tuple(items) => self.seq(items.iter(), '[', ']')?,
                        Variant::Struct(fields) => self.fields(fields)?,
                    }
                    self.out.push('}');
                }
            }
            Ty::Schema => {
                return Err(MessageDecodeError::Unsupported {
                    type_name: t.name.clone(),
                })
            }
        }
        Ok(())
    }
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0, DEL and C1 controls: a terminal may act on them.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Rendering the schema

/// The most declarations `Display` shows (which bounds its work on a
/// hostile schema: each new one is compared with those before).
const MAX_DECLS: usize = 64;

/// The structs and enums `t` uses, each once (by name and shape), `t`
/// first; at most [`MAX_DECLS`].
fn collect_decls<'a>(t: &'a Named, decls: &mut Vec<&'a Named>) {
    let is_decl = matches!(
        t.ty,
        Ty::Struct(_) | Ty::Enum(_) | Ty::TupleStruct(_) | Ty::NewtypeStruct(_) | Ty::UnitStruct
    );
    if is_decl {
        if decls.len() >= MAX_DECLS || decls.contains(&t) {
            return;
        }
        decls.push(t);
    }
    match &t.ty {
        Ty::Option(i) | Ty::NewtypeStruct(i) | Ty::Seq(i) => collect_decls(i, decls),
        Ty::Tuple(items) | Ty::TupleStruct(items) => {
            items.iter().for_each(|i| collect_decls(i, decls))
        }
        Ty::Map { key, val } => {
            collect_decls(key, decls);
            collect_decls(val, decls);
        }
        Ty::Struct(fields) => fields.iter().for_each(|(_, i)| collect_decls(i, decls)),
        Ty::Enum(variants) => {
            for (_, v) in variants {
                match v {
                    Variant::Unit => {}
                    Variant::Newtype(i) => collect_decls(i, decls),
                    Variant::Tuple(items) => items.iter().for_each(|i| collect_decls(i, decls)),
                    Variant::Struct(fields) => {
                        fields.iter().for_each(|(_, i)| collect_decls(i, decls))
                    }
                }
            }
        }
        _ => {}
    }
}

/// A use of `t`: a declared type by name, anything else by its shape.
fn write_ref(f: &mut fmt::Formatter<'_>, t: &Named) -> fmt::Result {
    match &t.ty {
        Ty::Bool => f.write_str("bool"),
        Ty::I8 => f.write_str("i8"),
        Ty::U8 => f.write_str("u8"),
        Ty::I16 => f.write_str("i16"),
        Ty::I32 => f.write_str("i32"),
        Ty::I64 => f.write_str("i64"),
        Ty::I128 => f.write_str("i128"),
        Ty::U16 => f.write_str("u16"),
        Ty::U32 => f.write_str("u32"),
        Ty::U64 => f.write_str("u64"),
        Ty::U128 => f.write_str("u128"),
        Ty::Usize => f.write_str("usize"),
        Ty::Isize => f.write_str("isize"),
        Ty::F32 => f.write_str("f32"),
        Ty::F64 => f.write_str("f64"),
        Ty::Char => f.write_str("char"),
        Ty::String => f.write_str("String"),
        Ty::ByteArray => f.write_str("bytes"),
        Ty::Option(i) => {
            f.write_str("Option<")?;
            write_ref(f, i)?;
            f.write_str(">")
        }
        Ty::Unit => f.write_str("()"),
        Ty::Seq(i) => {
            f.write_str("[")?;
            write_ref(f, i)?;
            f.write_str("]")
        }
        Ty::Tuple(items) => match items.as_slice() {
            // An array: postcard-schema describes `[T; N]` as a tuple.
            [first, rest @ ..] if !rest.is_empty() && rest.iter().all(|i| i == first) => {
                f.write_str("[")?;
                write_ref(f, first)?;
                write!(f, "; {}]", items.len())
            }
            _ => write_list(f, items, "(", ")"),
        },
        Ty::Map { key, val } => {
            f.write_str("Map<")?;
            write_ref(f, key)?;
            f.write_str(", ")?;
            write_ref(f, val)?;
            f.write_str(">")
        }
        Ty::Schema => f.write_str("Schema"),
        Ty::Struct(_)
        | Ty::Enum(_)
        | Ty::TupleStruct(_)
        | Ty::NewtypeStruct(_)
        | Ty::UnitStruct => f.write_str(&t.name),
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Named], open: &str, close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_ref(f, t)?;
    }
    f.write_str(close)
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[(String, Named)]) -> fmt::Result {
    f.write_str(" {")?;
    for (i, (name, t)) in fields.iter().enumerate() {
        f.write_str(if i > 0 { ", " } else { " " })?;
        write!(f, "{name}: ")?;
        write_ref(f, t)?;
    }
    f.write_str(if fields.is_empty() { "}" } else { " }" })
}

/// The declaration of a struct or enum.
fn write_decl(f: &mut fmt::Formatter<'_>, t: &Named) -> fmt::Result {
    match &t.ty {
        Ty::Struct(fields) => {
            write!(f, "struct {}", t.name)?;
            write_fields(f, fields)
        }
        Ty::TupleStruct(items) => {
            write!(f, "struct {}", t.name)?;
            write_list(f, items, "(", ")")
        }
        Ty::NewtypeStruct(i) => {
            write!(f, "struct {}(", t.name)?;
            write_ref(f, i)?;
            f.write_str(")")
        }
        Ty::UnitStruct => write!(f, "struct {}", t.name),
        Ty::Enum(variants) => {
            write!(f, "enum {} {{", t.name)?;
            for (i, (name, v)) in variants.iter().enumerate() {
                f.write_str(if i > 0 { ", " } else { " " })?;
                f.write_str(name)?;
                match v {
                    Variant::Unit => {}
                    Variant::Newtype(inner) => {
                        f.write_str("(")?;
                        write_ref(f, inner)?;
                        f.write_str(")")?;
                    }
                    Variant::Tuple(items) => write_list(f, items, "(", ")")?,
                    Variant::Struct(fields) => write_fields(f, fields)?,
                }
            }
            f.write_str(if variants.is_empty() { "}" } else { " }" })
        }
        _ => write_ref(f, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a `Named` the way postcard encodes postcard-schema's
    /// `OwnedNamedType` (checked against postcard-schema itself in
    /// `tests/typed`).
    fn enc(t: &Named, out: &mut Vec<u8>) {
        fn s(x: &str, out: &mut Vec<u8>) {
            varint(x.len() as u64, out);
            out.extend_from_slice(x.as_bytes());
        }
        fn varint(mut v: u64, out: &mut Vec<u8>) {
            while v >= 0x80 {
                out.push(v as u8 | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        s(&t.name, out);
        let tag = |ty: &Ty| -> u64 {
            match ty {
                Ty::Bool => 0,
                Ty::U8 => 2,
                Ty::I32 => 4,
                Ty::U32 => 8,
                Ty::String => 16,
                Ty::Option(_) => 18,
                Ty::Unit => 19,
                Ty::Seq(_) => 22,
                Ty::Tuple(_) => 23,
                Ty::Map { .. } => 25,
                Ty::Struct(_) => 26,
                Ty::Enum(_) => 27,
                _ => unimplemented!(),
            }
        };
        varint(tag(&t.ty), out);
        match &t.ty {
            Ty::Option(i) | Ty::Seq(i) => enc(i, out),
            Ty::Tuple(items) => {
                varint(items.len() as u64, out);
                items.iter().for_each(|i| enc(i, out));
            }
            Ty::Map { key, val } => {
                enc(key, out);
                enc(val, out);
            }
            Ty::Struct(fields) => {
                varint(fields.len() as u64, out);
                for (n, i) in fields {
                    s(n, out);
                    enc(i, out);
                }
            }
            Ty::Enum(vs) => {
                varint(vs.len() as u64, out);
                for (n, v) in vs {
                    s(n, out);
                    match v {
                        Variant::Unit => varint(0, out),
                        Variant::Newtype(i) => {
                            varint(1, out);
                            enc(i, out);
                        }
                        _ => unimplemented!(),
                    }
                }
            }
            _ => {}
        }
    }

    fn n(name: &str, ty: Ty) -> Named {
        Named {
            name: name.into(),
            ty,
        }
    }

    fn schema(t: &Named) -> MessageSchema {
        let mut b = Vec::new();
        enc(t, &mut b);
        MessageSchema::decode(FORMAT_POSTCARD_SCHEMA, &b).unwrap()
    }

    fn sample() -> Named {
        n(
            "Reading",
            Ty::Struct(vec![
                ("seq".into(), n("u32", Ty::U32)),
                ("ok".into(), n("bool", Ty::Bool)),
                (
                    "tag".into(),
                    n("Option<T>", Ty::Option(Box::new(n("String", Ty::String)))),
                ),
                ("xs".into(), n("[T]", Ty::Seq(Box::new(n("i32", Ty::I32))))),
                (
                    "kind".into(),
                    n(
                        "Kind",
                        Ty::Enum(vec![
                            ("Idle".into(), Variant::Unit),
                            ("Busy".into(), Variant::Newtype(Box::new(n("u8", Ty::U8)))),
                        ]),
                    ),
                ),
            ]),
        )
    }

    #[test]
    fn decodes_a_message_to_json() {
        let s = schema(&sample());
        // seq 300, ok, Some("a\"b"), [-1, 2], Busy(7)
        let msg = [0xac, 0x02, 1, 1, 3, b'a', b'"', b'b', 2, 1, 4, 1, 7];
        assert_eq!(
            s.to_json(&msg).unwrap(),
            r#"{"seq":300,"ok":true,"tag":"a\"b","xs":[-1,2],"kind":{"Busy":7}}"#
        );
        let msg = [1, 0, 0, 0, 0];
        assert_eq!(
            s.to_json(&msg).unwrap(),
            r#"{"seq":1,"ok":false,"tag":null,"xs":[],"kind":"Idle"}"#
        );
        assert_eq!(
            s.to_string(),
            "struct Reading { seq: u32, ok: bool, tag: Option<String>, xs: [i32], kind: Kind }; enum Kind { Idle, Busy(u8) }"
        );
    }

    #[test]
    fn bad_messages_are_errors() {
        let s = schema(&sample());
        assert!(matches!(
            s.to_json(&[1, 0, 0, 0]),
            Err(MessageDecodeError::Truncated { .. })
        ));
        assert!(matches!(
            s.to_json(&[1, 2, 0, 0, 0]),
            Err(MessageDecodeError::Invalid { at: 1, .. })
        ));
        assert!(matches!(
            s.to_json(&[1, 0, 0, 0, 9]),
            Err(MessageDecodeError::Invalid { at: 4, .. })
        ));
        assert!(matches!(
            s.to_json(&[1, 0, 0, 0, 0, 0]),
            Err(MessageDecodeError::LeftOver { len: 1 })
        ));
        assert!(matches!(
            s.to_json(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(MessageDecodeError::Invalid { at: 0, .. })
        ));
        // A huge count of empty values ends on the budget.
        let units = schema(&n("[T]", Ty::Seq(Box::new(n("()", Ty::Unit)))));
        assert_eq!(units.to_json(&[2]).unwrap(), "[null,null]");
        assert_eq!(
            units.to_json(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(MessageDecodeError::TooLarge)
        );
    }

    #[test]
    fn map_keys_become_strings() {
        let m = schema(&n(
            "Map",
            Ty::Map {
                key: Box::new(n("u32", Ty::U32)),
                val: Box::new(n("String", Ty::String)),
            },
        ));
        assert_eq!(m.to_json(&[1, 5, 1, b'x']).unwrap(), r#"{"5":"x"}"#);
        // Control characters (C0, DEL, C1) are escaped.
        let mut msg = vec![1, 5, 6, 0x1b, 0x7f, 0xc2, 0x9b, b'\\', b'"'];
        assert_eq!(
            m.to_json(&msg).unwrap(),
            r#"{"5":"\u001b\u007f\u009b\\\""}"#
        );
        msg[2] = 7;
        assert!(matches!(
            m.to_json(&msg),
            Err(MessageDecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn bad_schemas_are_errors_and_deep_ones_refused() {
        let mut good = Vec::new();
        enc(&sample(), &mut good);
        for cut in 0..good.len() {
            assert!(MessageSchema::decode(1, &good[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(MessageSchema::decode(1, &extra).is_err());
        assert!(MessageSchema::decode(0, &good).is_err());
        // An unknown format is kept, unreadable.
        let s = MessageSchema::decode(9, &[1, 2, 3]).unwrap();
        assert!(!s.is_readable());
        assert_eq!(
            s.to_json(&[]),
            Err(MessageDecodeError::UnknownFormat { format: 9 })
        );
        // Nesting: 64 levels of Option are fine, 65 are not.
        for (depth, ok) in [(MAX_SCHEMA_DEPTH, true), (MAX_SCHEMA_DEPTH + 1, false)] {
            let mut t = n("u8", Ty::U8);
            for _ in 0..depth {
                t = n("", Ty::Option(Box::new(t)));
            }
            let mut b = Vec::new();
            enc(&t, &mut b);
            assert_eq!(MessageSchema::decode(1, &b).is_ok(), ok, "depth {depth}");
        }
        // A deep chain of bytes never overflows the stack.
        let deep: Vec<u8> = [0u8, 18].repeat(MAX_SCHEMA_LEN / 2);
        assert!(MessageSchema::decode(1, &deep).is_err());
        assert!(MessageSchema::decode(1, &vec![0; MAX_SCHEMA_LEN + 1]).is_err());
    }

    #[test]
    fn floats_and_chars() {
        let t = n(
            "T",
            Ty::Tuple(vec![
                n("f32", Ty::F32),
                n("f64", Ty::F64),
                n("char", Ty::Char),
            ]),
        );
        // Built by hand: name "T", tag 23, 3 items.
        let mut s = vec![1, b'T', 23, 3];
        s.extend_from_slice(&[3, b'f', b'3', b'2', 13]);
        s.extend_from_slice(&[3, b'f', b'6', b'4', 14]);
        s.extend_from_slice(&[4, b'c', b'h', b'a', b'r', 15]);
        let schema = MessageSchema::decode(1, &s).unwrap();
        assert_eq!(schema.root.as_ref(), Some(&t));
        let mut msg = Vec::new();
        msg.extend_from_slice(&0.1f32.to_le_bytes());
        msg.extend_from_slice(&f64::NAN.to_le_bytes());
        msg.extend_from_slice(&[2, 0xc3, 0xa9]);
        assert_eq!(schema.to_json(&msg).unwrap(), r#"[0.1,null,"é"]"#);
        assert_eq!(schema.to_string(), "(f32, f64, char)");
    }
}
