//! memlane's typed API (`memlane-typed`, throughput at 64 B only): the
//! same two channels as `memlane-spin` (`lane.rs`), created typed for a
//! 64-byte plain value (`[u64; 8]`); the parent sends each message with
//! `TypedPublisher::send(&value)` and the child busy-polls
//! `TypedSubscriber::try_recv` and copies the `&value` it gets out. What
//! it adds to `memlane-spin` is the typed layer: the length and alignment
//! checks of each receive, nothing else.

use std::io;

use memlane::zerocopy::{FromBytes, IntoBytes};
use memlane::{Channel, TryRecvError, TypedPublisher, TypedRecvError, TypedSubscriber};

use crate::{ChildProc, Job, Link, Transport};

/// The value: 64 bytes.
type Value = [u64; 8];

/// The typed transport.
#[derive(Debug, Clone, Copy)]
pub struct Typed;

impl Typed {
    /// `Some` for `memlane-typed`.
    pub fn from_name(name: &str) -> Option<Typed> {
        (name == "memlane-typed").then_some(Typed)
    }
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn create(job: &Job, name: &str) -> io::Result<Channel> {
    if job.size != std::mem::size_of::<Value>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "memlane-typed measures 64-byte values only",
        ));
    }
    Channel::builder(name)
        .capacity(job.ring_capacity())
        .max_message(job.size)
        .max_publishers(1)
        .max_subscribers(memlane::DEFAULT_MAX_ENDPOINTS)
        .dir(&job.dir)
        .message_type::<Value>()
        .create()
        .map_err(err)
}

fn open(job: &Job, name: &str) -> io::Result<Channel> {
    Channel::open_options(name)
        .dir(&job.dir)
        .open()
        .map_err(err)
}

fn names(job: &Job) -> (String, String) {
    (format!("{}.ping", job.tag), format!("{}.pong", job.tag))
}

impl Transport for Typed {
    type L = TypedLink;

    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(TypedLink, ChildProc)> {
        let (ping, pong) = names(job);
        let ping = create(job, &ping)?.typed::<Value>().map_err(err)?;
        let pong = create(job, &pong)?.typed::<Value>().map_err(err)?;
        let publ = ping.publisher().map_err(err)?;
        let sub = pong.subscriber().map_err(err)?;
        let child = spawn()?;
        Ok((TypedLink { publ, sub }, child))
    }

    fn child(&self, job: &Job) -> io::Result<TypedLink> {
        let (ping, pong) = names(job);
        let ping = open(job, &ping)?.typed::<Value>().map_err(err)?;
        let pong = open(job, &pong)?.typed::<Value>().map_err(err)?;
        let sub = ping.subscriber().map_err(err)?;
        let publ = pong.publisher().map_err(err)?;
        Ok(TypedLink { publ, sub })
    }
}

/// One side of the typed transport.
pub struct TypedLink {
    publ: TypedPublisher<Value>,
    sub: TypedSubscriber<Value>,
}

impl Link for TypedLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        // The harness hands bytes; a typed sender has a value. Viewed in
        // place when aligned (the harness's buffers are heap vectors).
        match Value::ref_from_bytes(msg) {
            Ok(v) => self.publ.send(v),
            Err(_) => {
                let v = Value::read_from_bytes(msg).map_err(|_| err(io::Error::other("size")))?;
                self.publ.send(&v)
            }
        }
        .map_err(err)
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.sub.try_recv() {
                Ok(v) => {
                    let bytes = v.as_bytes();
                    buf[..bytes.len()].copy_from_slice(bytes);
                    return Ok(bytes.len());
                }
                Err(TypedRecvError::Recv(TryRecvError::Empty)) => std::hint::spin_loop(),
                Err(e) => return Err(err(e)),
            }
        }
    }
}
