//! memlane's typed API (throughput at 64 B only), over the same two
//! channels as `lane.rs`, created typed for a 64-byte plain value
//! (`[u64; 8]`):
//!
//! * `memlane-typed`: the parent sends each message with
//!   `TypedPublisher::send(&value)` and the child busy-polls
//!   `TypedSubscriber::try_recv` and copies the `&value` it gets out: the
//!   typed twin of `memlane-spin`;
//! * `memlane-typed-loan`: the parent loans each value
//!   (`TypedPublisher::loan`) and writes its first word in place, the
//!   child busy-polls and reads the first word of the `&value` in place:
//!   the typed twin of `memlane-loan`.
//!
//! What they add to their byte twins is the typed layer: the length and
//! alignment checks of each loan and receive, nothing else.

use std::io;

use memlane::zerocopy::{FromBytes, IntoBytes};
use memlane::{Channel, TryRecvError, TypedPublisher, TypedRecvError, TypedSubscriber};

use crate::{ChildProc, Job, Link, Transport};

/// The value: 64 bytes.
type Value = [u64; 8];

/// The typed transport: copies (`loan: false`) or loans.
#[derive(Debug, Clone, Copy)]
pub struct Typed {
    loan: bool,
}

impl Typed {
    /// `Some` for `memlane-typed` and `memlane-typed-loan`.
    pub fn from_name(name: &str) -> Option<Typed> {
        match name {
            "memlane-typed" => Some(Typed { loan: false }),
            "memlane-typed-loan" => Some(Typed { loan: true }),
            _ => None,
        }
    }
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn create(job: &Job, name: &str) -> io::Result<Channel> {
    if job.size != std::mem::size_of::<Value>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the typed transports measure 64-byte values only",
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
        let link = TypedLink {
            publ,
            sub,
            loan: self.loan,
        };
        Ok((link, child))
    }

    fn child(&self, job: &Job) -> io::Result<TypedLink> {
        let (ping, pong) = names(job);
        let ping = open(job, &ping)?.typed::<Value>().map_err(err)?;
        let pong = open(job, &pong)?.typed::<Value>().map_err(err)?;
        let sub = ping.subscriber().map_err(err)?;
        let publ = pong.publisher().map_err(err)?;
        Ok(TypedLink {
            publ,
            sub,
            loan: self.loan,
        })
    }
}

/// One side of the typed transports.
pub struct TypedLink {
    publ: TypedPublisher<Value>,
    sub: TypedSubscriber<Value>,
    loan: bool,
}

fn wrong_size() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a 64-byte message")
}

impl Link for TypedLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.loan {
            let (first, _) = u64::read_from_prefix(msg).map_err(|_| wrong_size())?;
            let mut loan = self.publ.loan().map_err(err)?;
            loan[0] = first;
            return loan.commit().map_err(err);
        }
        // The harness hands bytes; a typed sender has a value. Viewed in
        // place when aligned (the harness's buffers are heap vectors).
        match Value::ref_from_bytes(msg) {
            Ok(v) => self.publ.send(v),
            Err(_) => self
                .publ
                .send(&Value::read_from_bytes(msg).map_err(|_| wrong_size())?),
        }
        .map_err(err)
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.sub.try_recv() {
                Ok(v) if self.loan => {
                    buf[..8].copy_from_slice(&v[0].to_ne_bytes());
                    return Ok(std::mem::size_of::<Value>());
                }
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
