//! memlane itself: a `ping` channel (parent → child) and a `pong` channel
//! (child → parent) in the run's directory.
//!
//! * `memlane-spin`: receivers busy-poll `try_recv`;
//! * `memlane-block`: receivers call `recv` (it polls briefly, 4000 times
//!   by default, then sleeps on the channel's futex);
//! * `memlane-sleep`: `recv` with `set_spin(0)`: every receive that finds
//!   nothing sleeps at once (the pure wake-up path);
//! * `memlane-loan`: sends are loans (`loan` + `commit`) of which only the
//!   first 8 bytes are written, and the child reads 8 bytes in place: no
//!   copy of the payload on either side (throughput).
//! * `memlane-lossy`: the child's subscribers join lossy
//!   (`Channel::lossy_subscriber`: each receive copies the message out
//!   and checks it against the publishers' claim) and busy-poll
//!   `try_recv`; latency only (a ping-pong never laps them).
//!
//! With `subscribers = N > 1` the child joins the ping channel N times and
//! a message counts as received when every one of its N subscribers has it
//! (fan-out; the subscribers share one process because this machine may
//! have only two cores, but each has its own slot and position, which is
//! all a publisher sees).

use std::io;

use memlane::{Channel, Publisher, Subscriber, TryRecvError};

use crate::{ChildProc, Job, Link, Transport};

/// How a memlane receiver waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memlane {
    /// `try_recv` in a loop.
    Spin,
    /// `recv` with the default spin.
    Block,
    /// `recv` with `set_spin(0)`.
    Sleep,
    /// Loans on send, in-place reads (busy-polling receiver).
    Loan,
    /// The child's subscribers are lossy; `try_recv` in a loop.
    Lossy,
}

impl Memlane {
    /// The mode named `name` (`memlane-spin`, `-block`, `-sleep`, `-loan`,
    /// `-lossy`).
    pub fn from_name(name: &str) -> Option<Memlane> {
        match name {
            "memlane-spin" => Some(Memlane::Spin),
            "memlane-block" => Some(Memlane::Block),
            "memlane-sleep" => Some(Memlane::Sleep),
            "memlane-loan" => Some(Memlane::Loan),
            "memlane-lossy" => Some(Memlane::Lossy),
            _ => None,
        }
    }
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn names(job: &Job) -> (String, String) {
    (format!("{}.ping", job.tag), format!("{}.pong", job.tag))
}

/// A channel for one direction of a job: one publisher (each direction
/// has exactly one, and iceoryx2's services are configured the same way),
/// which with membarrier lets it move the head without a CAS.
fn create(job: &Job, name: &str) -> io::Result<Channel> {
    Channel::builder(name)
        .capacity(job.ring_capacity())
        .max_message(job.size.max(8))
        .max_publishers(1)
        .max_subscribers(job.subscribers.max(memlane::DEFAULT_MAX_ENDPOINTS))
        .dir(&job.dir)
        .create()
        .map_err(err)
}

impl Transport for Memlane {
    type L = LaneLink;

    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(LaneLink, ChildProc)> {
        let (ping, pong) = names(job);
        let ping = create(job, &ping)?;
        let pong = create(job, &pong)?;
        let publ = ping.publisher().map_err(err)?;
        let sub = pong.subscriber().map_err(err)?;
        let child = spawn()?;
        Ok((LaneLink::new(*self, publ, vec![sub]), child))
    }

    fn child(&self, job: &Job) -> io::Result<LaneLink> {
        let (ping, pong) = names(job);
        let ping = Channel::open_options(&ping)
            .dir(&job.dir)
            .open()
            .map_err(err)?;
        let pong = Channel::open_options(&pong)
            .dir(&job.dir)
            .open()
            .map_err(err)?;
        let subs = (0..job.subscribers.max(1))
            .map(|_| {
                if *self == Memlane::Lossy {
                    ping.lossy_subscriber().map_err(err)
                } else {
                    ping.subscriber().map_err(err)
                }
            })
            .collect::<io::Result<Vec<_>>>()?;
        let publ = pong.publisher().map_err(err)?;
        Ok(LaneLink::new(*self, publ, subs))
    }
}

/// One side of the memlane transport.
pub struct LaneLink {
    mode: Memlane,
    publ: Publisher,
    subs: Vec<Subscriber>,
}

impl LaneLink {
    fn new(mode: Memlane, publ: Publisher, mut subs: Vec<Subscriber>) -> LaneLink {
        if mode == Memlane::Sleep {
            for s in &mut subs {
                s.set_spin(0);
            }
        }
        LaneLink { mode, publ, subs }
    }
}

/// Receives one message on `sub` as `mode` says, copying it (or, for
/// loans, its first 8 bytes) into `buf`.
fn recv_one(mode: Memlane, sub: &mut Subscriber, buf: &mut [u8]) -> io::Result<usize> {
    match mode {
        Memlane::Spin | Memlane::Loan | Memlane::Lossy => loop {
            match sub.try_recv() {
                Ok(m) => {
                    let n = m.len();
                    let copy = if mode == Memlane::Loan { n.min(8) } else { n };
                    buf[..copy].copy_from_slice(&m[..copy]);
                    return Ok(n);
                }
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
                Err(e) => return Err(err(e)),
            }
        },
        Memlane::Block | Memlane::Sleep => {
            let m = sub.recv().map_err(err)?;
            let n = m.len();
            buf[..n].copy_from_slice(&m);
            Ok(n)
        }
    }
}

impl Link for LaneLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if self.mode == Memlane::Loan {
            let mut loan = self.publ.loan(msg.len()).map_err(err)?;
            let n = msg.len().min(8);
            loan[..n].copy_from_slice(&msg[..n]);
            loan.commit().map_err(err)?;
            return Ok(());
        }
        self.publ.send(msg).map_err(err)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        for sub in &mut self.subs {
            n = recv_one(self.mode, sub, buf)?;
        }
        Ok(n)
    }
}
