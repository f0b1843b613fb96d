//! Any serde type as a postcard-encoded message (cargo feature `serde`).

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{SerdeRecvError, SerdeSendError};
use super::record::{Encoding, TypeRecord};
use super::MessageType;
use crate::channel::{Channel, ChannelBuilder, Message, Publisher, Subscriber};
use crate::error::{
    JoinError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

/// The record of `M` with its postcard-schema schema, or why the schema
/// cannot be recorded.
#[cfg(feature = "schema")]
fn schema_record<M: MessageType + postcard_schema::Schema>() -> Result<TypeRecord, String> {
    let schema = super::schema::MessageSchema::of::<M>().map_err(|reason| {
        format!(
            "the schema of `{}` cannot be recorded ({reason})",
            M::type_name()
        )
    })?;
    Ok(serde_record::<M>().with_schema(schema))
}

fn serde_record<M: MessageType>() -> TypeRecord {
    TypeRecord::new(
        &M::type_name(),
        Encoding::Postcard,
        std::mem::size_of::<M>() as u64,
        std::mem::align_of::<M>() as u32,
        M::layout_hash(),
    )
}

impl ChannelBuilder {
    /// Makes the channel carry `M` values encoded with postcard (a compact
    /// binary serde format): it records `M` (see
    /// [`TypeRecord`](crate::TypeRecord), encoding
    /// [`Postcard`](crate::Encoding::Postcard)), so that
    /// [`Channel::serde`] opens it only as `M`. Feature `serde`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-st-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Cmd { verb: String, speed: f32 }
    /// impl memlane::MessageType for Cmd {}
    ///
    /// // The builder makes a byte channel; `serde` views it as a typed one.
    /// let ch = memlane::Channel::builder("doc-st").dir(&dir).serde_type::<Cmd>()
    ///     .create()?
    ///     .serde::<Cmd>()?;
    /// let mut sub = ch.subscriber()?;
    /// ch.publisher()?.send(&Cmd { verb: "go".into(), speed: 0.5 })?;
    /// assert_eq!(sub.recv()?, Cmd { verb: "go".into(), speed: 0.5 });
    /// # drop((sub, ch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serde_type<M: MessageType + Serialize + DeserializeOwned>(self) -> Self {
        self.type_record(serde_record::<M>().encode())
    }

    /// As [`serde_type`](Self::serde_type), and records `M`'s schema (its
    /// [postcard-schema](crate::postcard_schema) `Schema`, derived beside
    /// `Serialize`), so that a process without the Rust type can decode
    /// the messages ([`MessageSchema::to_json`](crate::MessageSchema::to_json);
    /// `memlane listen` prints them as JSON lines). Openers check it:
    /// [`Channel::serde_with_schema`] refuses a channel whose schema
    /// differs; [`Channel::serde`] checks the name and fingerprint only.
    /// Feature `schema`.
    ///
    /// The schema is what postcard-schema's derive says, which follows
    /// the Rust type: serde attributes that change the encoding
    /// (`skip`, `flatten`, `untagged`, `with`) are not reflected, so do not
    /// use them on a type sent with a schema. `rename` is.
    ///
    /// A schema longer than [`MAX_SCHEMA_LEN`](crate::MAX_SCHEMA_LEN)
    /// bytes or nested deeper than [`MAX_SCHEMA_DEPTH`](crate::MAX_SCHEMA_DEPTH)
    /// makes [`create`](Self::create) fail with
    /// [`CreateError::InvalidConfig`](crate::CreateError::InvalidConfig).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-sts-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use memlane::postcard_schema::Schema;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    /// #[postcard(crate = memlane::postcard_schema)]
    /// struct Cmd { verb: String, speed: Option<f32> }
    /// impl memlane::MessageType for Cmd {}
    ///
    /// let raw = memlane::Channel::builder("doc-sts").dir(&dir).serde_type_with_schema::<Cmd>()
    ///     .create()?;
    /// let mut bytes = raw.subscriber()?;
    /// let ch = raw.serde_with_schema::<Cmd>()?;
    /// ch.publisher()?.send(&Cmd { verb: "go".into(), speed: Some(0.5) })?;
    ///
    /// // Any process can decode the message with the recorded schema.
    /// let schema = ch.channel().message_type()?.unwrap().schema().unwrap().clone();
    /// assert_eq!(schema.to_string(), "struct Cmd { verb: String, speed: Option<f32> }");
    /// let msg = bytes.recv()?;
    /// assert_eq!(schema.to_json(&msg)?, r#"{"verb":"go","speed":0.5}"#);
    /// # drop(msg);
    /// # drop((bytes, ch, raw));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "schema")]
    pub fn serde_type_with_schema<M>(self) -> Self
    where
        M: MessageType + Serialize + DeserializeOwned + postcard_schema::Schema,
    {
        match schema_record::<M>() {
            Ok(record) => self.type_record(record.encode()),
            Err(reason) => self.type_record_error(reason),
        }
    }
}

impl Channel {
    /// This channel as a channel of postcard-encoded `M` values, after
    /// checking that it was created for `M` ([`ChannelBuilder::serde_type`]).
    /// Feature `serde`.
    ///
    /// # Errors
    ///
    /// As for [`Channel::typed`]: [`TypeError::Mismatch`](crate::TypeError::Mismatch)
    /// naming both types, [`TypeError::Untyped`](crate::TypeError::Untyped),
    /// [`TypeError::Corrupt`](crate::TypeError::Corrupt).
    pub fn serde<M: MessageType + Serialize + DeserializeOwned>(
        &self,
    ) -> Result<SerdeChannel<M>, crate::TypeError> {
        self.check_type(serde_record::<M>())?;
        Ok(SerdeChannel {
            channel: self.clone(),
            _m: PhantomData,
        })
    }

    /// As [`serde`](Self::serde), and, when the channel records a schema
    /// ([`ChannelBuilder::serde_type_with_schema`]), checks that it is
    /// `M`'s (a channel created without one opens as with `serde`).
    /// Feature `schema`.
    ///
    /// # Errors
    ///
    /// As for [`Channel::serde`]; [`TypeError::Mismatch`](crate::TypeError::Mismatch)
    /// also when the schemas differ; [`TypeError::Schema`](crate::TypeError::Schema)
    /// if `M`'s schema is too large or deep to record.
    #[cfg(feature = "schema")]
    pub fn serde_with_schema<M>(&self) -> Result<SerdeChannel<M>, crate::TypeError>
    where
        M: MessageType + Serialize + DeserializeOwned + postcard_schema::Schema,
    {
        let expected = schema_record::<M>().map_err(|reason| crate::TypeError::Schema {
            channel: self.name().to_string(),
            reason,
        })?;
        self.check_type(expected)?;
        Ok(SerdeChannel {
            channel: self.clone(),
            _m: PhantomData,
        })
    }
}

/// A channel of postcard-encoded `M` values; see [`Channel::serde`].
pub struct SerdeChannel<M> {
    channel: Channel,
    _m: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for SerdeChannel<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerdeChannel")
            .field("type", &std::any::type_name::<M>())
            .field("channel", &self.channel)
            .finish()
    }
}

impl<M> Clone for SerdeChannel<M> {
    fn clone(&self) -> Self {
        SerdeChannel {
            channel: self.channel.clone(),
            _m: PhantomData,
        }
    }
}

impl<M: MessageType + Serialize + DeserializeOwned> SerdeChannel<M> {
    /// Joins as a publisher.
    ///
    /// # Errors
    ///
    /// As for [`Channel::publisher`].
    pub fn publisher(&self) -> Result<SerdePublisher<M>, JoinError> {
        Ok(SerdePublisher {
            inner: self.channel.publisher()?,
            buf: Vec::new(),
            _m: PhantomData,
        })
    }

    /// Joins as a subscriber.
    ///
    /// # Errors
    ///
    /// As for [`Channel::subscriber`].
    pub fn subscriber(&self) -> Result<SerdeSubscriber<M>, JoinError> {
        Ok(SerdeSubscriber {
            inner: self.channel.subscriber()?,
            _m: PhantomData,
        })
    }

    /// The untyped channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

/// Sends `M` values, each encoded with postcard into a buffer of the
/// publisher's (reused) and sent as one message.
pub struct SerdePublisher<M> {
    inner: Publisher,
    buf: Vec<u8>,
    _m: PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for SerdePublisher<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerdePublisher")
            .field("type", &std::any::type_name::<M>())
            .field("publisher", &self.inner)
            .finish()
    }
}

impl<M: MessageType + Serialize> SerdePublisher<M> {
    fn encode<E>(&mut self, value: &M) -> Result<&[u8], SerdeSendError<E>> {
        self.buf.clear();
        let buf = std::mem::take(&mut self.buf);
        self.buf = postcard::to_extend(value, buf).map_err(|source| SerdeSendError::Encode {
            type_name: M::type_name().into_owned(),
            source,
        })?;
        Ok(&self.buf)
    }

    /// Encodes and sends `value` (waits while the ring is full).
    ///
    /// # Errors
    ///
    /// [`SerdeSendError::Encode`] if postcard cannot encode it;
    /// [`SerdeSendError::Send`] as for [`Publisher::send`] (an encoding
    /// longer than the maximum message size is [`SendError::TooLarge`]).
    pub fn send(&mut self, value: &M) -> Result<(), SerdeSendError<SendError>> {
        self.encode(value)?;
        Ok(self.inner.send(&self.buf)?)
    }

    /// Encodes and sends `value`, or fails at once if the ring is full.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send), with [`TrySendError`].
    pub fn try_send(&mut self, value: &M) -> Result<(), SerdeSendError<TrySendError>> {
        self.encode(value)?;
        Ok(self.inner.try_send(&self.buf)?)
    }

    /// Encodes and sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send), with [`SendTimeoutError`].
    pub fn send_timeout(
        &mut self,
        value: &M,
        timeout: Duration,
    ) -> Result<(), SerdeSendError<SendTimeoutError>> {
        self.encode(value)?;
        Ok(self.inner.send_timeout(&self.buf, timeout)?)
    }

    /// The byte publisher underneath.
    pub fn publisher(&mut self) -> &mut Publisher {
        &mut self.inner
    }
}

/// Receives `M` values, decoding each message with postcard (from the
/// ring in place, or the private copy of a copied channel).
pub struct SerdeSubscriber<M> {
    inner: Subscriber,
    _m: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for SerdeSubscriber<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerdeSubscriber")
            .field("type", &std::any::type_name::<M>())
            .field("subscriber", &self.inner)
            .finish()
    }
}

/// Decodes a whole message; trailing bytes are an error too.
fn decode<M: MessageType + DeserializeOwned, E>(msg: Message<'_>) -> Result<M, SerdeRecvError<E>> {
    let fail = |reason: String, source| SerdeRecvError::Decode {
        type_name: M::type_name().into_owned(),
        len: msg.len(),
        reason,
        source,
    };
    match postcard::take_from_bytes::<M>(&msg) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(fail(format!("{} bytes left over", rest.len()), None)),
        Err(e) => Err(fail(e.to_string(), Some(e))),
    }
}

impl<M: MessageType + DeserializeOwned> SerdeSubscriber<M> {
    /// Receives and decodes one value, waiting for it.
    ///
    /// # Errors
    ///
    /// [`SerdeRecvError::Recv`] as for [`Subscriber::recv`];
    /// [`SerdeRecvError::Decode`] for a message that is not a postcard
    /// encoding of `M` (it is skipped).
    pub fn recv(&mut self) -> Result<M, SerdeRecvError<RecvError>> {
        decode(self.inner.recv()?)
    }

    /// Receives and decodes one value if one is waiting.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv), with [`TryRecvError`].
    pub fn try_recv(&mut self) -> Result<M, SerdeRecvError<TryRecvError>> {
        decode(self.inner.try_recv()?)
    }

    /// Receives and decodes one value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv), with [`RecvTimeoutError`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<M, SerdeRecvError<RecvTimeoutError>> {
        decode(self.inner.recv_timeout(timeout)?)
    }

    /// The byte subscriber underneath.
    pub fn subscriber(&mut self) -> &mut Subscriber {
        &mut self.inner
    }
}
