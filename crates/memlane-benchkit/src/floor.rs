//! The hardware floor: the least any shared-memory transport can do on
//! this machine, measured the same way as everything else.
//!
//! * `floor-spin`: per direction one buffer whose first cache line holds a
//!   sequence word, the length and the first 56 payload bytes; the sender
//!   copies the payload in and bumps the sequence (Release), the receiver
//!   busy-polls it (Acquire) and copies the payload out. At 8 B this is
//!   one cache line ping-ponged between the two cores.
//! * `floor-futex`: the same, but the receiver sleeps in `FUTEX_WAIT` on
//!   the (shared) sequence word and the sender always calls `FUTEX_WAKE`:
//!   the cost of a cross-process wake-up. Windows has no cross-process
//!   futex (`WaitOnAddress` stays inside one process), so there the
//!   receiver sleeps on a named auto-reset event per direction, which the
//!   sender always signals (`SetEvent` / `WaitForSingleObject`): the cost
//!   of a cross-process wake-up through a kernel object. [`BLOCKING_FLOOR`]
//!   says which one this build measures.
//! * `floor-ring`: a minimal single-producer/single-consumer byte ring
//!   (throughput only): length-prefixed records, head and tail on separate
//!   128-byte lines, each side caching the other's index and reloading it
//!   only when the ring looks full/empty; the head is published after
//!   every record.
//! * [`memcpy`]: one-process copy bandwidth into a ring-sized buffer.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::shm::Shm;
use crate::sys::{self, Wakeup};
use crate::{bad, ChildProc, Job, Link, ThroughputResult, Transport, Workload};

/// What the blocking floor (`floor-futex`) sleeps and wakes with on this
/// platform, for reports: a shared futex on Linux, named auto-reset events
/// on Windows.
pub const BLOCKING_FLOOR: &str = sys::BLOCKING_FLOOR;

/// Which floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// A cache line (and payload buffer) ping-ponged with busy polling.
    Spin,
    /// The same with a shared futex wait/wake (Windows: named auto-reset
    /// events, see [`BLOCKING_FLOOR`]).
    Futex,
    /// A minimal SPSC byte ring (throughput).
    Ring,
    /// The busy-polling floor in the shape of a ring: per direction a
    /// 1 MiB region of slots (a sequence word, the length, the payload;
    /// 16-byte aligned, as memlane's records), each message in the next
    /// slot. What moving through fresh lines costs next to `floor-spin`,
    /// which reuses one buffer whose lines stay in the two caches.
    Lines,
}

impl Floor {
    /// The floor named `name` (`floor-spin`, `floor-futex`, `floor-ring`,
    /// `floor-lines`).
    pub fn from_name(name: &str) -> Option<Floor> {
        match name {
            "floor-spin" => Some(Floor::Spin),
            "floor-futex" => Some(Floor::Futex),
            "floor-ring" => Some(Floor::Ring),
            "floor-lines" => Some(Floor::Lines),
            _ => None,
        }
    }
}

/// Byte offset of the payload in a ping-pong buffer.
const PAYLOAD: usize = 8;

fn half_len(size: usize) -> usize {
    (PAYLOAD + size).next_multiple_of(4096)
}

/// `floor-lines`: the region of slots per direction (a memlane channel's
/// default ring).
const LINES_REGION: u64 = 1 << 20;

/// `floor-lines`: a slot of a `size`-byte message (16 bytes of sequence
/// word and length, the payload, 16-byte aligned: memlane's record size).
/// Both sides know the job's size, so both wrap at the same slot.
fn lines_slot(size: usize) -> u64 {
    (16 + size as u64).next_multiple_of(16)
}

/// Ring layout: head line, tail line, data at 4096.
const HEAD: usize = 0;
const TAIL: usize = 128;
const DATA: usize = 4096;
/// A ring header saying "the rest of the ring is padding".
const WRAP: u64 = u64::MAX;

impl Transport for Floor {
    type L = FloorLink;

    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(FloorLink, ChildProc)> {
        let len = match self {
            Floor::Ring => {
                if job.workload != Workload::Throughput {
                    return Err(bad("floor-ring measures throughput only"));
                }
                DATA + job.ring_capacity() as usize
            }
            Floor::Lines => {
                if job.workload != Workload::Latency || lines_slot(job.size) > LINES_REGION {
                    return Err(bad("floor-lines measures latency of messages up to 1 MiB"));
                }
                2 * LINES_REGION as usize
            }
            _ => 2 * half_len(job.size),
        };
        let shm = Shm::create(&job.path("floor"), len)?;
        let wakeup = match self {
            Floor::Futex => Some(Wakeup::create(job)?),
            _ => None,
        };
        let child = spawn()?;
        Ok((FloorLink::new(*self, shm, wakeup, job, true), child))
    }

    fn child(&self, job: &Job) -> io::Result<FloorLink> {
        let shm = Shm::open(&job.path("floor"))?;
        let wakeup = match self {
            Floor::Futex => Some(Wakeup::open(job)?),
            _ => None,
        };
        Ok(FloorLink::new(*self, shm, wakeup, job, false))
    }
}

/// One side of a floor transport.
pub struct FloorLink {
    kind: Floor,
    shm: Shm,
    /// `floor-futex`: how the receiver sleeps and the sender wakes it.
    wakeup: Option<Wakeup>,
    /// Ping-pong: my outgoing and incoming buffers, and the last sequence seen.
    out: usize,
    inc: usize,
    seq_out: u32,
    seq_seen: u32,
    /// Ring: capacity, my index and the cached index of the other side.
    /// Lines: the slot size, and the offsets of my next outgoing and
    /// incoming slots.
    cap: u64,
    head: u64,
    tail: u64,
}

impl FloorLink {
    fn new(kind: Floor, shm: Shm, wakeup: Option<Wakeup>, job: &Job, parent: bool) -> FloorLink {
        let h = match kind {
            Floor::Lines => LINES_REGION as usize,
            _ => half_len(job.size),
        };
        let (out, inc) = if parent { (0, h) } else { (h, 0) };
        FloorLink {
            kind,
            shm,
            wakeup,
            out,
            inc,
            seq_out: 0,
            seq_seen: 0,
            cap: match kind {
                Floor::Lines => lines_slot(job.size),
                _ => job.ring_capacity(),
            },
            head: 0,
            tail: 0,
        }
    }

    fn ring_send(&mut self, msg: &[u8]) {
        let cap = self.cap;
        let rec = 8 + (msg.len() as u64).next_multiple_of(8);
        let mut off = self.head & (cap - 1);
        let pad = if off + rec > cap { cap - off } else { 0 };
        // Producer: `head` is mine, `tail` is the cached consumer index.
        while self.head + pad + rec - self.tail > cap {
            self.tail = self.shm.u64_at(TAIL).load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        if pad > 0 {
            self.shm
                .u64_at(DATA + off as usize)
                .store(WRAP, Ordering::Relaxed);
            self.head += pad;
            off = 0;
        }
        self.shm.write(DATA + off as usize + 8, msg);
        self.shm
            .u64_at(DATA + off as usize)
            .store(msg.len() as u64, Ordering::Relaxed);
        self.head += rec;
        // Release: pairs with the consumer's Acquire load of the head.
        self.shm.u64_at(HEAD).store(self.head, Ordering::Release);
    }

    fn lines_send(&mut self, msg: &[u8]) -> io::Result<()> {
        if 16 + msg.len() as u64 > self.cap {
            return Err(bad("floor-lines: a message longer than the job's size"));
        }
        let off = self.out + self.head as usize;
        self.shm.write(off + 16, msg);
        self.shm
            .u64_at(off + 8)
            .store(msg.len() as u64, Ordering::Relaxed);
        self.seq_out = self.seq_out.wrapping_add(1);
        // Release: pairs with the receiver's Acquire load of the sequence.
        self.shm
            .u64_at(off)
            .store(u64::from(self.seq_out), Ordering::Release);
        self.head = next_slot(self.head, self.cap);
        Ok(())
    }

    fn lines_recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let off = self.inc + self.tail as usize;
        let want = u64::from(self.seq_seen.wrapping_add(1));
        while self.shm.u64_at(off).load(Ordering::Acquire) != want {
            std::hint::spin_loop();
        }
        self.seq_seen = self.seq_seen.wrapping_add(1);
        let len = self.shm.u64_at(off + 8).load(Ordering::Relaxed) as usize;
        if len > buf.len() || 16 + len as u64 > self.cap {
            return Err(bad(format!("floor-lines: bad length {len}")));
        }
        self.shm.read(off + 16, &mut buf[..len]);
        self.tail = next_slot(self.tail, self.cap);
        Ok(len)
    }

    fn ring_recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = self.cap;
        loop {
            // Consumer: `tail` is mine, `head` is the cached producer index.
            while self.tail == self.head {
                self.head = self.shm.u64_at(HEAD).load(Ordering::Acquire);
                std::hint::spin_loop();
            }
            let off = self.tail & (cap - 1);
            let hdr = self.shm.u64_at(DATA + off as usize).load(Ordering::Relaxed);
            if hdr == WRAP {
                self.tail += cap - off;
                continue;
            }
            let len = hdr as usize;
            if len > buf.len() || off + 8 + len as u64 > cap {
                return Err(bad(format!("floor ring: bad record length {len}")));
            }
            self.shm.read(DATA + off as usize + 8, &mut buf[..len]);
            self.tail += 8 + (len as u64).next_multiple_of(8);
            // Release: pairs with the producer's Acquire load of the tail.
            self.shm.u64_at(TAIL).store(self.tail, Ordering::Release);
            return Ok(len);
        }
    }
}

/// `floor-lines`: the slot after the one at `at`, back to the region's
/// start where a whole slot no longer fits.
fn next_slot(at: u64, slot: u64) -> u64 {
    if at + 2 * slot > LINES_REGION {
        0
    } else {
        at + slot
    }
}

impl Link for FloorLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self.kind {
            Floor::Ring => {
                self.ring_send(msg);
                return Ok(());
            }
            Floor::Lines => return self.lines_send(msg),
            _ => {}
        }
        self.shm.write(self.out + PAYLOAD, msg);
        self.shm
            .u32_at(self.out + 4)
            .store(msg.len() as u32, Ordering::Relaxed);
        self.seq_out = self.seq_out.wrapping_add(1);
        let seq = self.shm.u32_at(self.out);
        // Release: pairs with the receiver's Acquire load of the sequence.
        seq.store(self.seq_out, Ordering::Release);
        if let Some(wakeup) = &self.wakeup {
            wakeup.wake(seq)?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.kind {
            Floor::Ring => return self.ring_recv(buf),
            Floor::Lines => return self.lines_recv(buf),
            _ => {}
        }
        let seq = self.shm.u32_at(self.inc);
        loop {
            let s = seq.load(Ordering::Acquire);
            if s != self.seq_seen {
                self.seq_seen = s;
                break;
            }
            match &self.wakeup {
                Some(wakeup) => wakeup.wait(seq, s)?,
                None => std::hint::spin_loop(),
            }
        }
        let len = self.shm.u32_at(self.inc + 4).load(Ordering::Relaxed) as usize;
        if len > buf.len() {
            return Err(bad(format!("floor: bad length {len}")));
        }
        self.shm.read(self.inc + PAYLOAD, &mut buf[..len]);
        Ok(len)
    }
}

/// One-process memcpy bandwidth: `count` copies of `size` bytes into
/// successive slots of a 4 MiB (or larger) buffer, as a ring would.
pub fn memcpy(size: usize, count: u64) -> ThroughputResult {
    let src = crate::payload(size);
    let slots = ((4usize << 20) / size.max(1)).max(2);
    let mut dst = vec![0u8; slots * size];
    // Touch everything once so page faults stay out of the timing.
    for (i, chunk) in dst.chunks_mut(size.max(1)).enumerate() {
        chunk.copy_from_slice(&src[..chunk.len()]);
        std::hint::black_box(i);
    }
    let t0 = Instant::now();
    for i in 0..count as usize {
        let at = (i % slots) * size;
        dst[at..at + size].copy_from_slice(&src);
        std::hint::black_box(&mut dst);
    }
    ThroughputResult::local("memcpy", size, count, t0.elapsed())
}
