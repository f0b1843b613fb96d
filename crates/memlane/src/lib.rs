//! # memlane — fast, safe inter-process communication over named shared memory
//!
//! * [`Segment`]: a named shared-memory region, anonymous (`/dev/shm`) or
//!   backed by a file, opened read-only, read-write or copy-on-write, with
//!   bounds-checked reads and writes, views at an offset and flushes.
//! * [`Event`]: a named cross-process "data ready" signal (a shared futex:
//!   no system call when nobody sleeps).
//! * [`Latest`]: a named slot holding the newest value of something (the
//!   classic one-view pattern without torn reads): writers never wait,
//!   readers copy the newest complete value or wait for a new one.
//! * [`Channel`]: publishers and subscribers, each in any process,
//!   exchanging variable-length messages through a ring; nothing is lost,
//!   receives block, time out or poll, sends can be loans; reads and loans
//!   are zero-copy when only this user can write the channel, and private
//!   copies otherwise ([`Channel::copies_messages`]).
//! * Typed channels ([`ChannelBuilder::message_type`], [`Channel::typed`]):
//!   plain-old-data values loaned and read in place, one or a slice per
//!   message, the type recorded in the channel and checked on open; with
//!   the feature `serde`, any serde type, postcard-encoded, and with the
//!   feature `schema` its schema recorded too, so that programs without
//!   the type decode the messages to JSON ([`MessageSchema`]).
//!
//! ```
//! use memlane::Channel;
//! # let tmp = tempfile::Builder::new().prefix("memlane-doc-lib-").tempdir()?;
//! # let dir = tmp.path().to_path_buf();
//! # std::env::set_var("MEMLANE_DIR", &dir);
//! // One process creates the channel and publishes...
//! let channel = Channel::create("doc-quickstart")?;
//! // ...another (here the same one) opens it by name and subscribes.
//! let mut sub = Channel::open("doc-quickstart")?.subscriber()?;
//! channel.publisher()?.send(b"data ready")?;
//! assert_eq!(&*sub.recv()?, b"data ready");
//! Channel::remove("doc-quickstart")?;
//! # drop((channel, sub));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## One way to create, open and remove
//!
//! Each kind has the same four entry points: `X::create(name, ..)` and
//! `X::open(name, ..)` for the default directory and settings, and the
//! builders for everything else, `X::builder(name)` ([`SegmentBuilder`],
//! [`EventBuilder`], [`ChannelBuilder`], ending in `.create()`) and
//! `X::open_options(name)` ([`SegmentOpenOptions`], [`EventOpenOptions`],
//! [`ChannelOpenOptions`], ending in `.open()`), each with `.dir(..)`.
//! Whole-directory operations are free functions taking `Option<&Path>`:
//! [`remove`], [`list`], [`gc`].
//!
//! ## Integer types
//!
//! `usize` for lengths and offsets of memory in this process (message
//! lengths, a mapped view's length and offsets); `u64` for sizes and
//! positions of shared files and rings (segment sizes, ring capacity,
//! counters), which can exceed 4 GiB in a 32-bit process; `u32` for
//! endpoint and slot counts and pids.
//!
//! The shared-memory layout and the atomic protocols are described in
//! `docs/ARCHITECTURE.md`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

// `unsafe` is allowed only in the modules that map memory or touch it
// through raw pointers (they say which inside); everything else denies it.
// Async receive/send/wait and their reactor (feature `async`); no unsafe.
#[cfg(all(feature = "async", not(loom)))]
mod asynk;
#[cfg(not(loom))]
mod channel;
#[cfg_attr(loom, allow(dead_code))]
mod error;
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod event;
mod fault;
#[cfg_attr(loom, allow(dead_code, unused_imports))]
mod latest;
// The file layer under every kind: creates, opens, lists and removes
// memlane files. Unsafe in create.rs, link.rs and page_file.rs (a new
// file's header and initial state written through its mapping, a
// page-file header copied out) and in RawSegment::data_ptr; open.rs and
// dir.rs deny it again.
#[cfg(not(loom))]
#[allow(unsafe_code)]
mod file;
// The fuzz targets' entry points: built for the fuzz crate and the tests
// (feature `fuzzing`), not in every build.
#[cfg(all(not(loom), any(test, feature = "fuzzing")))]
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod fuzzing;
#[cfg_attr(loom, allow(dead_code))]
mod name;
#[cfg(not(loom))]
mod segment;
// Request-response services over channels; unsafe only in service/claim.rs
// (the claim word viewed as an atomic).
#[cfg(not(loom))]
pub mod service;
#[allow(unsafe_code)]
mod sync;
// Under `--cfg loom` only the header (for `Kind`, which the errors name).
#[cfg(loom)]
#[allow(dead_code)]
mod segment {
    #[path = "header.rs"]
    pub(crate) mod header;
    pub use header::Kind;
}
#[cfg_attr(loom, allow(dead_code))]
#[allow(unsafe_code)]
mod sys;
#[cfg(all(test, not(loom)))]
mod test_support;
// Typed channels over the byte API; no `unsafe` (zerocopy's checked
// conversions view the bytes as values).
#[cfg(not(loom))]
mod typed;

// Under `--cfg loom` only the protocols are built, against loom's atomics,
// for model checking (`RUSTFLAGS="--cfg loom" cargo test -p memlane --lib loom`).
#[cfg(loom)]
#[allow(unsafe_code, dead_code, unused_imports)]
mod channel {
    #[path = "layout.rs"]
    pub(crate) mod layout;
    #[cfg(test)]
    #[path = "loom_tests.rs"]
    mod loom_tests;
    #[path = "repair.rs"]
    pub(crate) mod repair;
    #[path = "ring.rs"]
    pub(crate) mod ring;
}

#[cfg(all(feature = "async", not(loom)))]
pub use asynk::{reactor_threads, EventWait, LatestWait, MessageStream, RecvFuture, SendFuture};
#[cfg(not(loom))]
pub use channel::{
    Channel, ChannelBuilder, ChannelInfo, ChannelOpenOptions, Iter, Liveness, Loan, Message, Mode,
    Publisher, PublisherInfo, Reaped, Subscriber, SubscriberInfo, TryIter, DEFAULT_CAPACITY,
    DEFAULT_MAX_ENDPOINTS, DEFAULT_MAX_MESSAGE, MAX_CAPACITY, MAX_ENDPOINTS, MIN_CAPACITY,
};
pub use error::{
    AccessError, CreateError, EndpointRole, Existing, GetError, JoinError, Missing, NameError,
    OpenError, RecvError, RecvTimeoutError, RemoveError, SendError, SendTimeoutError, SetError,
    TryRecvError, TrySendError,
};
#[cfg(not(loom))]
pub use event::{Event, EventBuilder, EventOpenOptions};
#[cfg(not(loom))]
pub use latest::{
    Latest, LatestBuilder, LatestInfo, LatestOpenOptions, Value, WriterInfo, DEFAULT_MAX_VALUE,
    DEFAULT_MAX_WRITERS, MAX_VALUE, MAX_WRITERS,
};
pub use name::{validate_name, FILE_PREFIX, MAX_NAME_LEN};
pub use segment::Kind;
#[cfg(not(loom))]
pub use segment::{
    gc, gc_with, list, remove, Access, Collected, Disposition, GcReason, GcReport, Listing,
    Segment, SegmentBuilder, SegmentEntry, SegmentOpenOptions, DEFAULT_MODE,
};
#[cfg(not(loom))]
pub use service::{service, CallError, Client, Request, ServeError, Server, ServiceError};

#[cfg(not(loom))]
pub use channel::{Batch, BatchIter, UninitLoan, DEFAULT_DISCONNECT_GRACE};
pub use error::CommitError;
pub use error::Corrupt;
pub use error::Lagged;
/// The postcard-schema version a serde channel's schema is taken from
/// (feature `schema`, see `ChannelBuilder::serde_type_with_schema`):
/// derive its `Schema` on your message types with `#[postcard(crate =
/// memlane::postcard_schema)]` beside the derive, or depend on
/// postcard-schema 0.2 (feature `derive`) yourself.
#[cfg(all(not(loom), feature = "schema"))]
pub use postcard_schema;
#[cfg(not(loom))]
pub use typed::{
    layout_hash, Encoding, MessageDecodeError, MessageSchema, MessageType, Plain, Received,
    TypeError, TypeRecord, TypedChannel, TypedIter, TypedLoan, TypedPublisher, TypedRecvError,
    TypedSubscriber, MAX_ALIGN, MAX_SCHEMA_DEPTH, MAX_SCHEMA_LEN, MAX_TYPE_NAME,
};
#[cfg(all(not(loom), feature = "serde"))]
pub use typed::{SerdeChannel, SerdePublisher, SerdeRecvError, SerdeSendError, SerdeSubscriber};
/// The zerocopy version memlane's typed API is built on: derive its
/// traits on your message types with `#[zerocopy(crate =
/// "memlane::zerocopy")]` beside the derive, or depend on zerocopy 0.8
/// (feature `derive`) yourself.
#[cfg(not(loom))]
pub use zerocopy;

// The public handles, builders, results and errors can move to and be
// shared between threads; checked at compile time so that a change that
// loses it is noticed. None is deliberately `!Sync`: what changes a
// handle's state (`recv`, `send`, `wait`, `write`) takes `&mut self`.
#[cfg(not(loom))]
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Segment>();
    send_sync::<Event>();
    send_sync::<Latest>();
    send_sync::<LatestBuilder>();
    send_sync::<LatestOpenOptions>();
    send_sync::<LatestInfo>();
    send_sync::<Value>();
    send_sync::<SetError>();
    send_sync::<GetError>();
    send_sync::<Channel>();
    send_sync::<Publisher>();
    send_sync::<Subscriber>();
    send_sync::<Message<'static>>();
    send_sync::<Loan<'static>>();
    send_sync::<Batch<'static>>();
    send_sync::<ChannelInfo>();
    send_sync::<SegmentEntry>();
    send_sync::<GcReport>();
    send_sync::<Listing>();
    send_sync::<SegmentBuilder>();
    send_sync::<SegmentOpenOptions>();
    send_sync::<EventBuilder>();
    send_sync::<EventOpenOptions>();
    send_sync::<ChannelBuilder>();
    send_sync::<ChannelOpenOptions>();
    send_sync::<Reaped>();
    send_sync::<CreateError>();
    send_sync::<OpenError>();
    send_sync::<RemoveError>();
    send_sync::<AccessError>();
    send_sync::<JoinError>();
    send_sync::<SendError>();
    send_sync::<TrySendError>();
    send_sync::<SendTimeoutError>();
    send_sync::<RecvError>();
    send_sync::<TryRecvError>();
    send_sync::<RecvTimeoutError>();
    #[cfg(feature = "async")]
    {
        send_sync::<RecvFuture<'static>>();
        send_sync::<SendFuture<'static>>();
        send_sync::<LatestWait<'static>>();
        send_sync::<EventWait<'static>>();
        send_sync::<MessageStream<'static>>();
    }
    send_sync::<CommitError>();
    send_sync::<NameError>();
    send_sync::<Existing>();
    send_sync::<Missing>();
    send_sync::<GcReason>();
    send_sync::<Corrupt>();
    send_sync::<Lagged>();
    send_sync::<TypedChannel<u64>>();
    send_sync::<TypedPublisher<u64>>();
    send_sync::<TypedSubscriber<u64>>();
    send_sync::<Received<'static, u64>>();
    send_sync::<Received<'static, [u64]>>();
    send_sync::<TypedLoan<'static, u64>>();
    send_sync::<TypeError>();
    send_sync::<TypeRecord>();
    send_sync::<MessageSchema>();
    send_sync::<MessageDecodeError>();
    send_sync::<TypedRecvError<RecvError>>();
};

#[cfg(not(loom))]
/// The directory anonymous segments live in: `$MEMLANE_DIR` if set, else `/dev/shm`.
pub fn default_dir() -> std::path::PathBuf {
    sys::segment_dir(None)
}
