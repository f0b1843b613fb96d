//! The typed API's errors.

use super::record::TypeRecord;

/// Why a channel cannot be used with a type ([`Channel::typed`](crate::Channel::typed),
/// [`Channel::message_type`](crate::Channel::message_type)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// The channel was created for another type.
    #[error("channel '{channel}' carries {found}, not {expected}: open it with its own type (see `memlane info {channel}`)")]
    Mismatch {
        /// The channel's name.
        channel: String,
        /// The type this code asked for.
        expected: Box<TypeRecord>,
        /// The type the channel records.
        found: Box<TypeRecord>,
    },
    /// Bytes given as a type record ([`TypeRecord::from_bytes`]) are not
    /// one this version of memlane reads.
    #[error("not a memlane type record ({reason}); it must come from `TypeRecord::to_bytes` of the same memlane format on a machine of the same byte order")]
    BadRecord {
        /// What is wrong with the bytes.
        reason: String,
    },
    /// The channel was created without a type: it carries bytes.
    #[error("channel '{channel}' was created untyped (byte messages), so it cannot be opened as {expected}: create it with `ChannelBuilder::message_type`, or use the byte API (`Channel::publisher`, `Channel::subscriber`)")]
    Untyped {
        /// The channel's name.
        channel: String,
        /// The type this code asked for.
        expected: Box<TypeRecord>,
    },
    /// The channel's type record is not one this version of memlane
    /// reads (another process wrote garbage over it, or a newer memlane
    /// wrote it).
    #[error("channel '{channel}' has an unreadable type record ({reason}); re-create the channel")]
    Corrupt {
        /// The channel's name.
        channel: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The type's schema cannot be recorded or compared: it is longer
    /// than [`MAX_SCHEMA_LEN`](crate::MAX_SCHEMA_LEN) bytes or nested
    /// deeper than [`MAX_SCHEMA_DEPTH`](crate::MAX_SCHEMA_DEPTH) levels
    /// (feature `schema`).
    #[error("channel '{channel}': {reason}; open it with `Channel::serde`, which does not compare schemas")]
    Schema {
        /// The channel's name.
        channel: String,
        /// What is wrong with the schema.
        reason: String,
    },
}

/// A typed receive failed: the receive itself (`E` is [`RecvError`](crate::RecvError),
/// [`TryRecvError`](crate::TryRecvError) or [`RecvTimeoutError`](crate::RecvTimeoutError)),
/// or the message was not of the channel's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedRecvError<E> {
    /// The receive failed (empty, timed out, disconnected, corrupt).
    #[error(transparent)]
    Recv(#[from] E),
    /// A message of the wrong length: not one value (or, for the slice
    /// receives, not a whole number of values) of the channel's type. It
    /// was sent with the byte API or by a process that breaks the type
    /// record. It is skipped; the next receive gets the next message.
    #[error("a message of {len} bytes is not {} `{type_name}` ({size} bytes each); it was skipped", if *.slice { "a slice of" } else { "one" })]
    WrongSize {
        /// The type's name.
        type_name: String,
        /// The message's length.
        len: usize,
        /// Bytes of one value.
        size: usize,
        /// A slice receive (any whole number of values) or not (exactly one).
        slice: bool,
    },
}

impl<E> TypedRecvError<E> {
    /// The receive's own error, if that is what failed.
    pub fn recv_error(&self) -> Option<&E> {
        match self {
            TypedRecvError::Recv(e) => Some(e),
            TypedRecvError::WrongSize { .. } => None,
        }
    }
}

/// A serde receive failed: the receive itself, or the message did not
/// decode as the channel's type (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerdeRecvError<E> {
    /// The receive failed (empty, timed out, disconnected, corrupt).
    #[error(transparent)]
    Recv(#[from] E),
    /// The message is not a postcard encoding of the type (sent with the
    /// byte API, by another version of the type, or garbage). It is
    /// skipped; the next receive gets the next message.
    #[error(
        "a message of {len} bytes does not decode as `{type_name}` ({reason}); it was skipped"
    )]
    Decode {
        /// The type's name.
        type_name: String,
        /// The message's length.
        len: usize,
        /// What postcard reported (or the count of bytes left over).
        reason: String,
        /// postcard's error, when it reported one.
        #[source]
        source: Option<postcard::Error>,
    },
}

/// A serde send failed: the value did not encode, or the send itself
/// failed (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerdeSendError<E> {
    /// The send failed (full, timed out, too long, corrupt).
    #[error(transparent)]
    Send(#[from] E),
    /// postcard could not encode the value (a `Serialize` impl failed, or
    /// a sequence of unknown length).
    #[error("a `{type_name}` value does not encode with postcard: {source}")]
    Encode {
        /// The type's name.
        type_name: String,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
}
