//! Typed channels: plain-old-data values sent and received in place,
//! without serialisation or copy ([`TypedChannel`]), and, with the cargo
//! feature `serde`, any serde type as a postcard-encoded message
//! (`SerdeChannel`).
//!
//! A typed channel is an ordinary channel whose segment also records what
//! it carries (a [`TypeRecord`]: name, size, alignment, encoding and a
//! layout fingerprint). Opening it as another type is a
//! [`TypeError::Mismatch`] naming both; the byte API still opens it.
//!
//! **What makes reading in place sound** is zerocopy, not the record: a
//! value is handed out as `&T` only for a `T: FromBytes + Immutable`
//! (every bit pattern is a valid `T`, and it has no interior mutability)
//! whose length matches the message exactly, at an address aligned for
//! `T` (zerocopy checks both). A record that lies, or a byte-API
//! publisher sending anything, can give wrong values or a
//! [`TypedRecvError::WrongSize`], never undefined behaviour. The ring puts
//! every payload at a 16-byte aligned address; types aligned to more than
//! [`MAX_ALIGN`] are refused at compile time.

mod error;
mod plain;
pub(crate) mod record;
pub(crate) mod schema;
#[cfg(feature = "serde")]
mod serde;

use std::borrow::Cow;
use std::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::channel::{Channel, ChannelBuilder};
use crate::error::JoinError;

#[cfg(feature = "serde")]
pub use error::{SerdeRecvError, SerdeSendError};
pub use error::{TypeError, TypedRecvError};
pub(crate) use plain::Chunk;
pub use plain::{Received, TypedIter, TypedLoan, TypedPublisher, TypedSubscriber};
pub use record::{layout_hash, Encoding, TypeRecord, MAX_NAME as MAX_TYPE_NAME};
pub use schema::{MessageDecodeError, MessageSchema, MAX_SCHEMA_DEPTH, MAX_SCHEMA_LEN};
#[cfg(feature = "serde")]
pub use serde::{SerdeChannel, SerdePublisher, SerdeSubscriber};

/// The largest alignment a typed message may have: every payload starts
/// at a 16-byte aligned address (records start at 16-byte aligned ring
/// positions, 16 bytes of record header before the payload, and the ring
/// starts on a page). A type aligned to more does not compile:
///
/// ```compile_fail
/// use memlane::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
/// #[zerocopy(crate = "memlane::zerocopy")]
/// #[repr(C, align(32))]
/// struct Wide([u8; 32]);
/// impl memlane::MessageType for Wide {}
/// let _ = memlane::Channel::builder("wide").message_type::<Wide>();
/// ```
///
/// (With `align(16)` the same code compiles.)
pub const MAX_ALIGN: usize = 16;

/// How a message type names itself in a channel's [`TypeRecord`]. Both
/// methods have defaults, so `impl MessageType for MyType {}` is enough;
/// it is implemented for the integer and float types and arrays of
/// message types.
///
/// # What the record can and cannot tell
///
/// The fingerprint hashes the name, size, alignment, encoding and
/// [`layout_hash`](Self::layout_hash). With the defaults, two programs
/// agree when they name the same type (`std::any::type_name`: module path
/// and name) of the same size and alignment. That catches a different type
/// and most changes to one, but not fields reordered or renamed within
/// the same size, and `type_name`'s text is not guaranteed to be the same
/// across compiler versions. For channels between separately built
/// programs, override `type_name` with a fixed string and `layout_hash`
/// with a hash of the field list (bump it when the type changes); Rust
/// offers no reflection of a struct's fields for memlane to do it for you.
/// None of this is needed for soundness (see the module docs): the record
/// is about catching mistakes early, with both names in the error.
///
/// # Examples
///
/// ```
/// use memlane::MessageType;
/// #[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::KnownLayout, zerocopy::Immutable)]
/// #[repr(C)]
/// struct Imu {
///     t_ns: u64,
///     accel: [f32; 3],
///     gyro_z: f32,
/// }
/// impl MessageType for Imu {
///     fn type_name() -> std::borrow::Cow<'static, str> {
///         "robot::Imu".into()
///     }
///     fn layout_hash() -> u64 {
///         memlane::layout_hash(b"t_ns: u64, accel: [f32; 3], gyro_z: f32")
///     }
/// }
/// assert_eq!(Imu::type_name(), "robot::Imu");
/// ```
pub trait MessageType: Sized + 'static {
    /// The name recorded in the channel and shown in errors and by
    /// `memlane info`: by default `std::any::type_name::<Self>()`.
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<Self>())
    }

    /// A hash of what the type's name, size and alignment do not say
    /// (its fields), folded into the fingerprint; 0 by default. See
    /// [`layout_hash`](crate::layout_hash) for a `const` hash function.
    fn layout_hash() -> u64 {
        0
    }
}

macro_rules! message_types {
    ($($t:ty),*) => { $(impl MessageType for $t {})* };
}
message_types!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

impl<T: MessageType, const N: usize> MessageType for [T; N] {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("[{}; {N}]", T::type_name()))
    }
    fn layout_hash() -> u64 {
        T::layout_hash()
    }
}

/// A plain-old-data message type: any bit pattern is a valid value, it
/// has no padding and no interior mutability (zerocopy's `FromBytes`,
/// `IntoBytes`, `Immutable`, `KnownLayout`, derived on your type), and
/// a [`MessageType`]. Implemented for every such type.
pub trait Plain: MessageType + FromBytes + IntoBytes + KnownLayout + Immutable {}
impl<T: MessageType + FromBytes + IntoBytes + KnownLayout + Immutable> Plain for T {}

/// The record of a plain type `T`; refuses (at compile time) a type that
/// the ring cannot align or that has no bytes.
fn plain_record<T: Plain>() -> TypeRecord {
    const {
        assert!(
            std::mem::align_of::<T>() <= MAX_ALIGN,
            "memlane: a typed message's alignment must be at most 16 (MAX_ALIGN)"
        );
        assert!(
            std::mem::size_of::<T>() > 0,
            "memlane: a typed message cannot be a zero-sized type"
        );
    }
    TypeRecord::new(
        &T::type_name(),
        Encoding::Plain,
        std::mem::size_of::<T>() as u64,
        std::mem::align_of::<T>() as u32,
        T::layout_hash(),
    )
}

impl ChannelBuilder {
    /// Makes the channel typed: it records `T` (see [`TypeRecord`]), so
    /// that [`Channel::typed`] opens it only as `T`. A message of a typed
    /// channel is one `T` or a slice of them; the byte API can still send
    /// and receive on it. A `T` aligned to more than [`MAX_ALIGN`] (16)
    /// bytes, or of size 0, does not compile.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-mt-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// // The builder makes a byte channel; `typed` views it as a typed one.
    /// let ch = memlane::Channel::builder("doc-mt").dir(&dir).message_type::<[f32; 4]>()
    ///     .create()?
    ///     .typed::<[f32; 4]>()?;
    /// let mut sub = ch.subscriber()?;
    /// ch.publisher()?.send(&[1.0, 2.0, 3.0, 4.0])?;
    /// assert_eq!(*sub.recv()?, [1.0, 2.0, 3.0, 4.0]);
    /// # drop((sub, ch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message_type<T: Plain>(self) -> Self {
        self.type_record(plain_record::<T>().encode())
    }

    /// Records `record` as the channel's message type: a channel of the
    /// same type as the one `record` was read from
    /// ([`Channel::message_type`], [`TypeRecord::from_bytes`]), made
    /// without the Rust type at hand (by a bridge or a recorder). Typed
    /// openers check it as they check any record.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-mtr-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use memlane::Channel;
    /// let a = Channel::builder("doc-mtr-a").dir(&dir).message_type::<u32>().create()?;
    /// let record = a.message_type()?.expect("typed");
    /// let b = Channel::builder("doc-mtr-b").dir(&dir).message_type_record(&record).create()?;
    /// assert_eq!(b.message_type()?, Some(record));
    /// assert!(b.typed::<u32>().is_ok());
    /// # drop((a, b));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message_type_record(self, record: &TypeRecord) -> Self {
        self.type_record(record.encode())
    }
}

impl Channel {
    /// The type the channel records: `None` if it was created untyped.
    ///
    /// # Errors
    ///
    /// [`TypeError::Corrupt`] when the record's bytes are not a record
    /// this memlane reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-cmt-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let ch = memlane::Channel::builder("doc-cmt").dir(&dir).create()?;
    /// assert!(ch.message_type()?.is_none());
    /// # drop(ch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message_type(&self) -> Result<Option<TypeRecord>, TypeError> {
        TypeRecord::decode(&self.type_record_bytes()).map_err(|reason| TypeError::Corrupt {
            channel: self.name().to_string(),
            reason,
        })
    }

    /// Checks that the channel records `expected`.
    fn check_type(&self, expected: TypeRecord) -> Result<(), TypeError> {
        match self.message_type()? {
            None => Err(TypeError::Untyped {
                channel: self.name().to_string(),
                expected: Box::new(expected),
            }),
            Some(found) if found.agrees_with(&expected) => Ok(()),
            Some(found) => Err(TypeError::Mismatch {
                channel: self.name().to_string(),
                expected: Box::new(expected),
                found: Box::new(found),
            }),
        }
    }

    /// This channel as a channel of `T` values, after checking that it
    /// was created for `T` ([`ChannelBuilder::message_type`]).
    ///
    /// # Errors
    ///
    /// [`TypeError::Mismatch`] (naming both types) if it records another
    /// type, [`TypeError::Untyped`] if it records none,
    /// [`TypeError::Corrupt`] if its record is unreadable.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-typed-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use memlane::{Channel, TypeError};
    /// let ch = Channel::builder("doc-typed").dir(&dir).message_type::<u32>().create()?;
    /// assert!(ch.typed::<u32>().is_ok());
    /// assert!(matches!(ch.typed::<u64>(), Err(TypeError::Mismatch { .. })));
    /// # drop(ch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn typed<T: Plain>(&self) -> Result<TypedChannel<T>, TypeError> {
        self.check_type(plain_record::<T>())?;
        Ok(TypedChannel {
            channel: self.clone(),
            _t: PhantomData,
        })
    }
}

/// A channel of plain `T` values (see [`Channel::typed`]): its
/// publishers loan space for a `T` (or a slice of them) to fill in place,
/// its subscribers read `&T` in place.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tc-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// // The builder makes a byte channel; `typed` views it as a typed one.
/// let ch: memlane::TypedChannel<u64> = memlane::Channel::builder("doc-tc").dir(&dir).message_type::<u64>()
///     .create()?
///     .typed()?;
/// let mut sub = ch.subscriber()?;
/// let mut publ = ch.publisher()?;
/// let mut loan = publ.loan()?;
/// *loan = 42; // written in place, in the ring
/// loan.commit()?;
/// publ.send_slice(&[1, 2, 3])?;
/// assert_eq!(*sub.recv()?, 42);
/// assert_eq!(&*sub.recv_slice()?, &[1, 2, 3]);
/// # drop((sub, publ, ch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedChannel<T> {
    channel: Channel,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedChannel<T> {
    fn clone(&self) -> Self {
        TypedChannel {
            channel: self.channel.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedChannel")
            .field("type", &std::any::type_name::<T>())
            .field("channel", &self.channel)
            .finish()
    }
}

impl<T: Plain> TypedChannel<T> {
    /// Joins as a publisher (see [`Channel::publisher`]).
    ///
    /// # Errors
    ///
    /// As for [`Channel::publisher`].
    pub fn publisher(&self) -> Result<TypedPublisher<T>, JoinError> {
        Ok(TypedPublisher::new(self.channel.publisher()?))
    }

    /// Joins as a subscriber (see [`Channel::subscriber`]).
    ///
    /// # Errors
    ///
    /// As for [`Channel::subscriber`].
    pub fn subscriber(&self) -> Result<TypedSubscriber<T>, JoinError> {
        Ok(TypedSubscriber::new(self.channel.subscriber()?))
    }

    /// Joins as a subscriber starting at the oldest message still in the
    /// ring (see [`Channel::subscriber_from_oldest`]).
    ///
    /// # Errors
    ///
    /// As for [`Channel::subscriber_from_oldest`].
    pub fn subscriber_from_oldest(&self) -> Result<TypedSubscriber<T>, JoinError> {
        Ok(TypedSubscriber::new(self.channel.subscriber_from_oldest()?))
    }

    /// The untyped channel (for [`Channel::info`], `flush`, and the like).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}
