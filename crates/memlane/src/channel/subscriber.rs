//! The receiving side of a channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout::RECORD_HEADER;
use super::liveness::{self, ReapTimer, Role, SlotLock, REAP_EVERY};
use super::region::HasRegion;
use super::ring::{self, Glance, Record, RingMem, SubState};
use super::shm::ShmRing;
use crate::error::{Corrupt, JoinError, Lagged, RecvError, RecvTimeoutError, TryRecvError};
use crate::sync::event_word::{SpinCheck, DEFAULT_SPIN};

/// Receives every message published on a channel after it joined, once,
/// in order. Made by [`Channel::subscriber`](crate::Channel::subscriber);
/// leaves the channel (and stops holding publishers back) when dropped.
///
/// A received [`Message`] is read in place in the ring when only this
/// user can write the channel's file, and is otherwise a copy in a buffer
/// this subscriber owns (`max_message` bytes, allocated at the join); see
/// [`copies_messages`](Self::copies_messages) and
/// [`Channel::copies_messages`](crate::Channel::copies_messages).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-sub-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// use std::time::Duration;
/// let channel = memlane::Channel::builder("doc-sub").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// assert!(sub.try_recv().is_err()); // nothing yet
/// channel.publisher()?.send(b"one")?;
/// let msg = sub.recv_timeout(Duration::from_secs(1))?;
/// assert_eq!(&*msg, b"one"); // released when `msg` drops
/// # drop(msg);
/// # drop((sub, channel));
/// # memlane::remove(Some(&dir), "doc-sub")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    ring: Arc<ShmRing>,
    st: SubState,
    /// Messages are copied into `buf` before they are handed out (see
    /// [`Channel::copies_messages`](crate::Channel::copies_messages)).
    copy: bool,
    /// The payload length of the [`Message`] handed out last (validated);
    /// kept here so that a message is one word.
    len: u32,
    /// The private copy of the current message (or batch) in copy mode
    /// (`max_message` bytes, allocated at the join; empty otherwise).
    buf: Box<[u8]>,
    /// The payload lengths of the current [`Batch`] (validated), reused.
    batch: Vec<u32>,
    spin: u32,
    /// Whether a publisher shares this subscriber's only CPU (then a
    /// blocking receive polls once, not `spin` times).
    cpu_sharing: ring::CpuSharing,
    reap: ReapTimer,
    /// Whether publishers are around (see [`Subscriber::set_disconnect_grace`]).
    presence: Presence,
    /// The disconnect grace; `None`: never disconnected.
    grace: Option<Duration>,
    /// `st.messages` at the last presence check: more since means a
    /// publisher was there in between.
    seen_messages: u64,
    /// Lossy: never holds publishers back; reads are copied and validated
    /// against the claim (`ring::lapped`) and a lap is reported.
    lossy: bool,
    /// Lossy: the position this receive started at (what it validates).
    check_from: u64,
    /// Lossy: the publishers' message total when it joined.
    joined_total: u64,
    /// Lossy: messages lost so far.
    lost_messages: u64,
    /// Lossy: ring bytes lost so far.
    lost_bytes: u64,
    /// The liveness lock, held for as long as this subscriber is joined;
    /// dropped (released) after `Drop::drop` frees the slot.
    _lock: SlotLock,
}

/// How many times a lapped lossy subscriber tries to take its loss count
/// while the publishers' total stands still (see `Subscriber::lapped_now`).
const LAG_COUNT_TRIES: u32 = 8;

/// Why a look at the ring gave no record.
enum Fault {
    Corrupt(Corrupt),
    Lagged(Lagged),
}

impl From<Corrupt> for Fault {
    fn from(c: Corrupt) -> Fault {
        Fault::Corrupt(c)
    }
}

impl From<Fault> for TryRecvError {
    fn from(f: Fault) -> TryRecvError {
        match f {
            Fault::Corrupt(c) => TryRecvError::Corrupt(c),
            Fault::Lagged(l) => TryRecvError::Lagged(l),
        }
    }
}

impl From<Fault> for RecvTimeoutError {
    fn from(f: Fault) -> RecvTimeoutError {
        match f {
            Fault::Corrupt(c) => RecvTimeoutError::Corrupt(c),
            Fault::Lagged(l) => RecvTimeoutError::Lagged(l),
        }
    }
}

impl From<Fault> for RecvError {
    fn from(f: Fault) -> RecvError {
        match f {
            Fault::Corrupt(c) => RecvError::Corrupt(c),
            Fault::Lagged(l) => RecvError::Lagged(l),
        }
    }
}

/// What a subscriber knows of its channel's publishers, from its presence
/// checks (slow paths only: see [`Subscriber::set_disconnect_grace`]).
///
/// | state | meaning | next |
/// |---|---|---|
/// | `Waiting` | no publisher seen since the join | `Connected` when one is |
/// | `Connected` | a publisher was joined at the last check | `Alone(now)` when none is |
/// | `Alone(t)` | none joined since `t` | `Connected` when one is; `Disconnected` after the grace |
/// | `Disconnected` | reported; receives say so at once | `Connected` when one is |
///
/// Messages received since the last check count as a publisher seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Waiting,
    Connected,
    Alone(Instant),
    Disconnected,
}

/// The default [disconnect grace](Subscriber::set_disconnect_grace): one
/// second, long enough for a publisher to restart, short enough that a
/// subscriber whose publishers are gone learns it.
pub const DEFAULT_DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// What [`Subscriber::poll`] found.
enum Poll {
    /// A plain committed record at the position.
    Found(Record),
    /// Something for the general path to examine (a pad, a discarded
    /// record, a word that needs a closer look, a truncated file).
    Look,
    /// The spin budget ran out (or the deadline passed): sleep.
    Spun,
    /// Not polled (a lossy subscriber, or a publisher pinned to this
    /// CPU): the general wait's own spin policy applies.
    Skipped,
}

/// How a wait for data ended.
enum Waited {
    /// Look again: data, a reap, or a slice passed.
    Again,
    /// The deadline passed.
    TimedOut,
    /// The subscriber is disconnected.
    Disconnected,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("slot", &self.st.slot)
            .field("position", &self.st.pos)
            .finish()
    }
}

impl Subscriber {
    pub(super) fn join(
        ring: Arc<ShmRing>,
        start: ring::Start,
        lossy: bool,
    ) -> Result<Subscriber, JoinError> {
        ring.populate();
        let pid = crate::sys::current_pid();
        let g = *ring.geometry();
        let (st, lock) = liveness::join(
            &ring,
            Role::Subscriber,
            g.max_subscribers,
            |i| ring::take_subscriber_slot(&*ring, i, pid, start, lossy),
            || ring::join_failure(&g),
        )?;
        let st = st?;
        // A lossy subscriber reads bytes publishers may overwrite at any
        // time: always into its own buffer, validated after the copy.
        let copy = ring.copy_messages() || lossy;
        let joined_total = if lossy {
            ring::committed_messages(&*ring)
        } else {
            0
        };
        let check_from = st.pos;
        let buf = if copy {
            vec![0; g.max_message as usize].into_boxed_slice()
        } else {
            Box::default()
        };
        Ok(Subscriber {
            ring,
            st,
            copy,
            len: 0,
            buf,
            batch: Vec::new(),
            spin: DEFAULT_SPIN,
            cpu_sharing: ring::CpuSharing::new(crate::sys::pinned_cpu()),
            reap: ReapTimer::new(),
            presence: Presence::Waiting,
            grace: Some(DEFAULT_DISCONNECT_GRACE),
            seen_messages: 0,
            lossy,
            check_from,
            joined_total,
            lost_messages: 0,
            lost_bytes: 0,
            _lock: lock,
        })
    }

    /// How many times a blocking receive polls before it sleeps (default
    /// 4000, roughly 20–100 µs). Polling longer keeps latency low while
    /// messages keep coming; 0 sleeps at once.
    ///
    /// On Linux, a subscriber whose thread may run on one CPU only (its
    /// affinity mask when it joined: `taskset -c 0`, or a single online
    /// CPU) polls at most once, whatever this says, while a publisher pinned to
    /// that same CPU is active: that publisher cannot run while the
    /// subscriber polls, so polling would only delay its message.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-spin-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-spin").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// sub.set_spin(0); // sleep at once: no busy polling
    /// channel.publisher()?.send(b"x")?;
    /// assert_eq!(&*sub.recv()?, b"x");
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_spin(&mut self, polls: u32) {
        self.spin = polls;
    }

    /// How long a subscriber that has read everything goes on waiting once
    /// no publisher is joined before its receives report
    /// [`Disconnected`](RecvError::Disconnected); `None` waits for good
    /// (receives never report it). Default [`DEFAULT_DISCONNECT_GRACE`].
    ///
    /// **The rule.** A subscriber is disconnected when (1) it has read every
    /// message committed so far and nothing is claimed after them, (2) it
    /// had seen a publisher since it joined (joined at one of its checks, or
    /// a message received), and (3) at its checks since then, for at least
    /// the grace, no publisher was joined. A publisher that died counts as
    /// gone once it is reaped, which the check does (a stopped one still
    /// counts as joined). A subscriber that has never seen a publisher
    /// waits for the first one: a named channel's publishers may start
    /// after its subscribers (use [`recv_timeout`](Self::recv_timeout) to
    /// bound that wait, or [`publishers`](Self::publishers) to look).
    ///
    /// **After it.** Named channels can get publishers again: the next
    /// receive looks at once, and reports `Disconnected` again if none is
    /// joined, or waits for and receives the messages of one that is.
    ///
    /// **Cost.** The checks read the publisher slots and test their
    /// liveness locks, so they run only where a receive would wait anyway:
    /// when a blocking receive has found nothing for a while (about every
    /// 200 ms, and when the grace ends), and on the rate-limited checks of
    /// an empty [`try_recv`](Self::try_recv) (every 64th poll, at most
    /// every 200 ms). The receive of a waiting message and an empty poll
    /// read nothing more. So `Disconnected` comes between the grace and
    /// the grace plus about 200 ms after the last publisher left (plus the
    /// time its death takes to notice, for a killed one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-grace-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-grace").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// sub.set_disconnect_grace(Some(Duration::from_millis(50)));
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"last words")?;
    /// drop(publ); // every publisher has left
    /// assert_eq!(&*sub.recv()?, b"last words"); // what was sent is still received
    /// assert_eq!(sub.recv().unwrap_err(), memlane::RecvError::Disconnected);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_disconnect_grace(&mut self, grace: Option<Duration>) {
        self.grace = grace;
    }

    /// The disconnect grace (see [`set_disconnect_grace`](Self::set_disconnect_grace)).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-getgrace-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-getgrace").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// assert_eq!(sub.disconnect_grace(), Some(memlane::DEFAULT_DISCONNECT_GRACE));
    /// sub.set_disconnect_grace(None);
    /// assert_eq!(sub.disconnect_grace(), None);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disconnect_grace(&self) -> Option<Duration> {
        self.grace
    }

    /// How many publishers are joined now, after reclaiming the slots of
    /// publishers whose processes died (a stopped publisher still counts).
    /// It reads every publisher slot and tests the liveness lock of each
    /// one in use (a system call each): for decisions, not for every
    /// message. A count of endpoints, so a `u32`, like
    /// [`ChannelBuilder::max_publishers`](crate::ChannelBuilder::max_publishers)
    /// and [`ChannelInfo::max_publishers`](crate::ChannelInfo::max_publishers).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-pubs-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-pubs").dir(&dir).create()?;
    /// let sub = channel.subscriber()?;
    /// assert_eq!(sub.publishers(), 0);
    /// let publ = channel.publisher()?;
    /// assert_eq!(sub.publishers(), 1);
    /// drop(publ);
    /// assert_eq!(sub.publishers(), 0);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publishers(&self) -> u32 {
        liveness::joined_publishers(&self.ring, Some(self.st.published))
    }

    /// Whether this subscriber copies each message into a buffer of its
    /// own before handing it out, rather than reading it in place; see
    /// [`Channel::copies_messages`](crate::Channel::copies_messages).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-scopy-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let ch = memlane::Channel::builder("scopy").dir(&dir).copy_messages(true).create()?;
    /// assert!(ch.subscriber()?.copies_messages());
    /// # drop(ch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies_messages(&self) -> bool {
        self.copy
    }

    /// The message of a record found in place (not in copy mode).
    #[inline]
    fn message(&mut self, rec: Record) -> Message<'_> {
        self.len = rec.len;
        Message { sub: self }
    }

    /// The message of a record found by a slow path, in either mode.
    #[inline]
    fn deliver(&mut self, rec: Record) -> Result<Message<'_>, Fault> {
        if self.copy {
            return self.copy_out(rec);
        }
        Ok(self.message(rec))
    }

    /// Copy mode: copies the payload of `rec` (at ring position `p`,
    /// validated by `peek` or `glance`) into `buf` at `at` with a raw copy
    /// (no reference into the ring is made), then checks that the record's
    /// header still says what it said, so that what was copied is the
    /// validated record. False if it was rewritten meanwhile.
    #[inline(never)]
    fn copy_record(&mut self, p: u64, rec: Record, at: usize) -> bool {
        let len = rec.len as usize;
        assert!(at + len <= self.buf.len(), "checked against the buffer");
        // SAFETY: `peek`/`glance` validated the record: `payload_off + len`
        // lies inside the ring (len <= max_message, the record inside the
        // ring), and `buf` holds at least `at + len` bytes (asserted above)
        // and is this subscriber's own memory, so the ranges do not
        // overlap. The ring bytes are read through a raw pointer only;
        // another process may change them meanwhile, which can make the
        // copied values wrong but never makes them a reference or their
        // bounds anything else.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ring.region().ring_ptr(rec.payload_off).cast_const(),
                self.buf.as_mut_ptr().add(at),
                len,
            );
        }
        ring::still_committed(&*self.ring, p, rec)
    }

    /// Copy mode: the message of `rec`, at this subscriber's position,
    /// copied out (see [`copy_record`](Self::copy_record)). A record
    /// rewritten meanwhile is reported (the position stays: the next
    /// receive examines the record anew).
    #[inline(never)]
    fn copy_out(&mut self, rec: Record) -> Result<Message<'_>, Fault> {
        let intact = self.copy_record(self.st.pos, rec, 0);
        self.ring.check_truncated()?;
        if self.lapped() {
            // Publishers may have overwritten what was read (the record,
            // or a header skipped on the way): never handed out.
            return Err(self.lapped_now());
        }
        if !intact {
            return Err(rewritten(self.st.pos).into());
        }
        self.len = rec.len;
        Ok(Message { sub: self })
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    ///
    /// * [`TryRecvError::Empty`] when no message is waiting.
    /// * [`TryRecvError::Disconnected`] when none is and every publisher
    ///   has left (reported by the rate-limited checks of empty polls: see
    ///   [`set_disconnect_grace`](Self::set_disconnect_grace)).
    /// * [`TryRecvError::Corrupt`] when the channel's shared memory breaks the
    ///   protocol (a process with write access wrote it): a record
    ///   overwritten before this subscriber read it, a record with unknown
    ///   flags, a malformed pad record, or a record longer than
    ///   `max_message` or crossing the ring's end; or when the channel's
    ///   file was truncated by another process while mapped; or, in copy
    ///   mode, when a record was rewritten while it was copied out.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tryrecv-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-tryrecv").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// assert_eq!(sub.try_recv().unwrap_err(), memlane::TryRecvError::Empty);
    /// channel.publisher()?.send(b"now")?;
    /// assert_eq!(&*sub.try_recv()?, b"now");
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<Message<'_>, TryRecvError> {
        // The common cases inline, in registers: a plain committed record,
        // or (a busy-polling receiver's loop) nothing yet, with nothing to
        // publish and no reap check due. Everything else: the slow path.
        match ring::glance(&*self.ring, self.st.pos) {
            Glance::Plain(rec) if !self.copy && !self.ring.segment().truncated() => {
                return Ok(self.message(rec));
            }
            Glance::Empty
                if self.st.pos == self.st.published
                    && !self.lossy
                    && !self.ring.segment().truncated() =>
            {
                if self.reap.tick() {
                    return self.try_recv_reaping();
                }
                return Err(TryRecvError::Empty);
            }
            _ => {}
        }
        self.try_recv_slow()
    }

    /// Every 64th empty poll of [`try_recv`](Self::try_recv): the checks
    /// of [`idle_checks`](Self::idle_checks).
    #[inline(never)]
    fn try_recv_reaping(&mut self) -> Result<Message<'_>, TryRecvError> {
        if self.idle_checks()? {
            return self.try_recv_slow();
        }
        Err(TryRecvError::Empty)
    }

    /// The rate-limited checks of an empty poll (at most every
    /// [`REAP_EVERY`]; the caller calls this every 64th poll): blocked on a
    /// record a dead publisher may have left open? (The check reads the
    /// publishers' claim line.) Disconnected? `Ok(true)`: a reap may have
    /// freed something to look at again.
    #[inline(never)]
    fn idle_checks(&mut self) -> Result<bool, TryRecvError> {
        let Some(now) = self.reap.due_now() else {
            return Ok(false);
        };
        if ring::blocked_on_uncommitted(&*self.ring, &self.st)
            && liveness::reap(&self.ring, self.pin()) != (0, 0)
        {
            return Ok(true);
        }
        if self.disconnected(now) {
            return Err(TryRecvError::Disconnected);
        }
        Ok(false)
    }

    /// The presence check (see [`Presence`]), for a subscriber that found
    /// nothing to read: whether it is disconnected. Reads the publisher
    /// slots; slow paths only.
    #[inline(never)]
    fn disconnected(&mut self, now: Instant) -> bool {
        let Some(grace) = self.grace else {
            return false;
        };
        let received = self.st.messages != self.seen_messages;
        self.seen_messages = self.st.messages;
        if liveness::joined_publishers(&self.ring, self.pin()) > 0 {
            self.presence = Presence::Connected;
            return false;
        }
        if received {
            // A publisher was there since the last check, and is gone.
            self.presence = Presence::Alone(now);
        }
        let gone = match self.presence {
            Presence::Waiting => false,
            Presence::Connected => {
                self.presence = Presence::Alone(now);
                false
            }
            Presence::Alone(since) => now.saturating_duration_since(since) >= grace,
            Presence::Disconnected => true,
        };
        // Drained: nothing claimed past this subscriber's position (a
        // commit on its way, or a dead publisher's claim just repaired,
        // is read first).
        if gone && !ring::blocked_on_uncommitted(&*self.ring, &self.st) {
            self.presence = Presence::Disconnected;
            return true;
        }
        false
    }

    /// A plain committed record at the position (and the file not
    /// truncated): the common case of a blocking receive.
    #[inline(always)]
    fn plain(&self) -> Option<Record> {
        match ring::glance(&*self.ring, self.st.pos) {
            Glance::Plain(rec) if !self.copy && !self.ring.segment().truncated() => Some(rec),
            _ => None,
        }
    }

    /// [`try_recv`](Self::try_recv) for everything else: nothing yet, pad
    /// or discarded records, a truncated file, words to examine closely.
    #[inline(never)]
    fn try_recv_slow(&mut self) -> Result<Message<'_>, TryRecvError> {
        if let Some(rec) = self.peek_or_reap()? {
            return Ok(self.deliver(rec)?);
        }
        Err(TryRecvError::Empty)
    }

    /// The next record; when blocked on a record whose publisher may have
    /// died, reclaims dead publishers (rate-limited) and looks again.
    #[inline]
    fn peek_or_reap(&mut self) -> Result<Option<Record>, Fault> {
        if self.lossy {
            self.check_from = self.st.pos;
            if ring::behind(&*self.ring, self.st.pos) {
                return Err(self.lapped_now());
            }
        }
        let found = match ring::peek(&*self.ring, &mut self.st) {
            Ok(found) => found,
            // Headers overwritten while they were read look corrupt.
            Err(_) if self.lapped() => return Err(self.lapped_now()),
            Err(c) => return Err(c.into()),
        };
        self.ring.check_truncated()?;
        if let Some(rec) = found {
            return Ok(Some(rec));
        }
        if self.lapped() {
            // A skipped header may have been overwritten while read.
            return Err(self.lapped_now());
        }
        Ok(self.reap_if_blocked()?)
    }

    /// The position this subscriber holds for repairs of dead publishers'
    /// claims (see `repair::repair_dead_publisher`): its published position,
    /// or none for a lossy subscriber, whose position holds no publisher
    /// back (so bytes it has not read may be reused at any time).
    #[inline]
    fn pin(&self) -> Option<u64> {
        (!self.lossy).then_some(self.st.published)
    }

    /// Whether this is a lossy subscriber and publishers have claimed past
    /// a ring beyond the position its receive began at (`check_from`), so
    /// that what it read may have been overwritten (see `ring::lapped`).
    #[inline]
    fn lapped(&self) -> bool {
        self.lossy && ring::lapped(&*self.ring, self.check_from)
    }

    /// A lossy subscriber was lapped: goes on from the oldest record still
    /// in the ring (`ring::resync`) and says what was lost (see [`Lagged`]
    /// for how exact).
    #[cold]
    #[inline(never)]
    fn lapped_now(&mut self) -> Fault {
        let m = &*self.ring;
        let from = self.check_from;
        // The count is exact when the publishers' total does not move
        // while the oldest record is found and the messages from there to
        // the head are counted (a commit in between would be counted on
        // one side only); tried a few times, else the last try's estimate.
        let (total, next, ahead) = {
            let mut tries = 0;
            loop {
                tries += 1;
                let total = ring::committed_messages(m);
                let next = ring::resync(m);
                let head = m.claim().load(crate::sync::Ordering::Acquire);
                let ahead = ring::count_messages(m, next, head);
                let settled = ahead.is_some() && ring::committed_messages(m) == total;
                if settled || tries == LAG_COUNT_TRIES {
                    break (total, next, ahead.unwrap_or(0));
                }
            }
        };
        let messages = total
            .wrapping_sub(self.joined_total)
            .saturating_sub(self.st.messages)
            .saturating_sub(self.lost_messages)
            .saturating_sub(ahead)
            .min(1 << 62);
        let gap = next.wrapping_sub(from);
        let bytes = if gap < 1 << 63 { gap } else { 0 };
        self.lost_messages += messages;
        self.lost_bytes += bytes;
        self.st.pos = next;
        self.check_from = next;
        let slot = m.sub_slot(self.st.slot);
        slot.lost_messages
            .store(self.lost_messages, crate::sync::Ordering::Relaxed);
        slot.lost_bytes
            .store(self.lost_bytes, crate::sync::Ordering::Relaxed);
        ring::publish(m, &mut self.st);
        Fault::Lagged(Lagged::new(messages, bytes))
    }

    /// [`peek_or_reap`](Self::peek_or_reap) found nothing.
    #[inline(never)]
    fn reap_if_blocked(&mut self) -> Result<Option<Record>, crate::error::Corrupt> {
        // Blocked on a record a dead publisher may have left open? Checked
        // now and then only: the check reads the publishers' claim line.
        let pin = self.pin();
        let (ring, st) = (&self.ring, &self.st);
        if self
            .reap
            .maybe_reap_if(ring, pin, || ring::blocked_on_uncommitted(&**ring, st))
        {
            return ring::peek(&*self.ring, &mut self.st);
        }
        Ok(None)
    }

    /// Waits for data until `deadline` in slices, reaping and checking for
    /// disconnection in between; polls `spin` times before each sleep.
    fn wait(&mut self, deadline: Option<Instant>, spin: u32) -> Result<Waited, Fault> {
        let now = Instant::now();
        let mut slice = now + REAP_EVERY;
        if let (Presence::Alone(since), Some(grace)) = (self.presence, self.grace) {
            // Wake when the grace ends, to report it then.
            slice = slice.min(since + grace).max(now);
        }
        let until = deadline.map_or(slice, |d| d.min(slice));
        let woke = ring::wait_for_data(
            &*self.ring,
            &mut self.st,
            spin,
            Some(until),
            self.lossy,
            &mut self.cpu_sharing,
        );
        if self.lapped() {
            // What the wait's looks skipped or saw may have been overwritten.
            return Err(self.lapped_now());
        }
        if woke? {
            return Ok(Waited::Again);
        }
        // A whole slice without a message: blocked on a dead publisher's
        // open record? (Time-limited: at most every REAP_EVERY.)
        if ring::blocked_on_uncommitted(&*self.ring, &self.st)
            && self.reap.maybe_reap(&self.ring, self.pin())
        {
            return Ok(Waited::Again);
        }
        let now = Instant::now();
        if self.disconnected(now) {
            return Ok(Waited::Disconnected);
        }
        if deadline.is_some_and(|d| now >= d) {
            return Ok(Waited::TimedOut);
        }
        Ok(Waited::Again)
    }

    /// The next record, waiting until `deadline` (the slow path of every
    /// blocking receive).
    #[inline]
    fn wait_record(&mut self, deadline: Option<Instant>) -> Result<Record, RecvTimeoutError> {
        // The spin budget of this receive, spent by `poll`.
        let mut polls = crate::sync::spins(self.spin);
        loop {
            if let Some(rec) = self.peek_or_reap()? {
                return Ok(rec);
            }
            // Reported already: look again at once (a publisher may have
            // joined since), rather than after a slice.
            if self.presence == Presence::Disconnected && self.disconnected(Instant::now()) {
                return Err(RecvTimeoutError::Disconnected);
            }
            let mut spin = self.spin;
            if polls > 0 {
                match self.poll(deadline, &mut polls) {
                    Poll::Found(rec) => return Ok(rec),
                    Poll::Look => continue,
                    Poll::Spun => spin = 0,
                    Poll::Skipped => polls = 0,
                }
            }
            match self.wait(deadline, spin)? {
                Waited::Again => {}
                Waited::TimedOut => return Err(RecvTimeoutError::Timeout),
                Waited::Disconnected => return Err(RecvTimeoutError::Disconnected),
            }
        }
    }

    /// The spin phase of a blocking receive, as tight as a caller's own
    /// `try_recv` loop: looks at the position's stamp and meta words only
    /// ([`ring::glance`], inline), with a `spin_loop` hint between them and
    /// the deadline read every 64th, until a plain record is there, or
    /// something the general path must examine (a pad, a discarded record,
    /// a word to look at closely, a truncated file), or `polls` (the
    /// receive's budget, `set_spin`, decremented here) runs out. Entered
    /// after [`peek_or_reap`](Self::peek_or_reap) found nothing (so the
    /// position is published). Not for a lossy subscriber (whose looks need
    /// the lap checks), nor when a publisher is pinned to this subscriber's
    /// one CPU (see `ring::CpuSharing`: the wait then sleeps after one
    /// look).
    ///
    /// The general wait's polls test the record through [`ring::peek`] from
    /// inside the event's wait loop and go back out through it: 8 B one-way
    /// 1.16–1.24× a `try_recv` loop's; with this phase 1.00–1.06×
    /// (`docs/benchmarks/`).
    fn poll(&mut self, deadline: Option<Instant>, polls: &mut u32) -> Poll {
        if self.lossy || self.cpu_sharing.check(&*self.ring, SpinCheck::FirstMiss) {
            return Poll::Skipped;
        }
        let mut i = 0u32;
        while *polls > 0 {
            *polls -= 1;
            i = i.wrapping_add(1);
            // The truncation flag after the look (a fault the look itself
            // took is seen at once), as in `try_recv`.
            match ring::glance(&*self.ring, self.st.pos) {
                Glance::Plain(rec) if !self.ring.segment().truncated() => return Poll::Found(rec),
                Glance::Empty if !self.ring.segment().truncated() => {}
                _ => return Poll::Look,
            }
            if i % 64 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                return Poll::Spun;
            }
            crate::sync::spin_loop();
        }
        Poll::Spun
    }

    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// * [`RecvError::Disconnected`] when every publisher has left and
    ///   everything they sent was received (see
    ///   [`set_disconnect_grace`](Self::set_disconnect_grace)).
    /// * [`RecvError::Corrupt`] when the channel's shared memory breaks the
    ///   protocol (a process with write access wrote it): a record
    ///   overwritten before this subscriber read it, a record with unknown
    ///   flags, a malformed pad record, or a record longer than
    ///   `max_message` or crossing the ring's end; or when the channel's
    ///   file was truncated by another process while mapped; or, in copy
    ///   mode, when a record was rewritten while it was copied out.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-recv-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-recv").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(move || publ.send(b"from a thread"));
    ///     assert_eq!(&*sub.recv().unwrap(), b"from a thread");
    /// });
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn recv(&mut self) -> Result<Message<'_>, RecvError> {
        if let Some(rec) = self.plain() {
            return Ok(self.message(rec));
        }
        self.recv_slow()
    }

    /// [`recv`](Self::recv) when no plain record is waiting.
    #[inline(never)]
    fn recv_slow(&mut self) -> Result<Message<'_>, RecvError> {
        let rec = self.wait_record(None).map_err(untimed)?;
        Ok(self.deliver(rec)?)
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    ///
    /// * [`RecvTimeoutError::Timeout`] if no message arrived in time.
    /// * [`RecvTimeoutError::Disconnected`] when every publisher has left
    ///   and everything they sent was received (see
    ///   [`set_disconnect_grace`](Self::set_disconnect_grace)).
    /// * [`RecvTimeoutError::Corrupt`] when the channel's shared memory breaks the
    ///   protocol (a process with write access wrote it): a record
    ///   overwritten before this subscriber read it, a record with unknown
    ///   flags, a malformed pad record, or a record longer than
    ///   `max_message` or crossing the ring's end; or when the channel's
    ///   file was truncated by another process while mapped; or, in copy
    ///   mode, when a record was rewritten while it was copied out.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-recvtimeout-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::time::Duration;
    /// let channel = memlane::Channel::builder("doc-recvtimeout").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let err = sub.recv_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err, memlane::RecvTimeoutError::Timeout);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>, RecvTimeoutError> {
        let rec = self.wait_record(Some(Instant::now() + timeout))?;
        Ok(self.deliver(rec)?)
    }

    /// Takes up to `max` messages that are waiting now, in place, to be
    /// read together and released together when the [`Batch`] drops (one
    /// release, so the position is published at most once for the whole
    /// batch). A batch holds at least one message (`max` 0 counts as 1);
    /// it ends before `max` at the first record that is not a plain
    /// committed message (nothing yet, the ring's end, a discarded loan),
    /// which the next receive handles. In copy mode the batch is copied
    /// into the subscriber's buffer, so it also ends before the payloads
    /// exceed `max_message` bytes in all (see [`Batch`]).
    ///
    /// # Errors
    ///
    /// As for [`try_recv`](Self::try_recv):
    ///
    /// * [`TryRecvError::Empty`] when no message is waiting.
    /// * [`TryRecvError::Disconnected`] when none is and every publisher
    ///   has left (reported by the rate-limited checks of empty polls).
    /// * [`TryRecvError::Corrupt`] when the channel's shared memory breaks
    ///   the protocol, its file was truncated, or (copy mode) the batch's
    ///   first record was rewritten while it was copied out; see
    ///   [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batch-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-batch").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// for m in [&b"a"[..], b"bb", b"ccc"] {
    ///     publ.send(m)?;
    /// }
    /// let batch = sub.try_recv_batch(2)?;
    /// assert_eq!(batch.len(), 2);
    /// let total: usize = batch.iter().map(<[u8]>::len).sum();
    /// assert_eq!(total, 3);
    /// drop(batch); // releases both
    /// assert_eq!(&*sub.try_recv()?, b"ccc");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_batch(&mut self, max: usize) -> Result<Batch<'_>, TryRecvError> {
        let Some(first) = self.peek_or_reap()? else {
            if self.reap.tick() && self.idle_checks()? {
                if let Some(first) = self.peek_or_reap()? {
                    return Ok(self.fill_batch(first, max)?);
                }
            }
            return Err(TryRecvError::Empty);
        };
        Ok(self.fill_batch(first, max)?)
    }

    /// Waits for the next message, then takes it and up to `max - 1` more
    /// that are waiting, as [`try_recv_batch`](Self::try_recv_batch) does.
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv):
    ///
    /// * [`RecvError::Disconnected`] when every publisher has left and
    ///   everything they sent was received.
    /// * [`RecvError::Corrupt`] when the channel's shared memory breaks the
    ///   protocol, its file was truncated, or (copy mode) the batch's first
    ///   record was rewritten while it was copied out; see
    ///   [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-recvbatch-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-recvbatch").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"1")?;
    /// publ.send(b"2")?;
    /// let batch = sub.recv_batch(16)?;
    /// assert_eq!(batch.len(), 2);
    /// # drop(batch);
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_batch(&mut self, max: usize) -> Result<Batch<'_>, RecvError> {
        let first = self.wait_record(None).map_err(untimed)?;
        Ok(self.fill_batch(first, max)?)
    }

    /// A batch starting with `first` (a validated record at the position):
    /// it and the plain committed records that follow it, up to `max`.
    fn fill_batch(&mut self, first: Record, max: usize) -> Result<Batch<'_>, Fault> {
        self.batch.clear();
        let max = max.max(1);
        let mut p = self.st.pos;
        let mut rec = first;
        let mut copied = 0;
        loop {
            if self.copy {
                if copied + rec.len as usize > self.buf.len() && !self.batch.is_empty() {
                    break;
                }
                if !self.copy_record(p, rec, copied) {
                    if self.batch.is_empty() {
                        self.ring.check_truncated()?;
                        if self.lapped() {
                            return Err(self.lapped_now());
                        }
                        return Err(rewritten(p).into());
                    }
                    break; // reported by the next receive
                }
                copied += rec.len as usize;
            }
            self.batch.push(rec.len);
            p = p.wrapping_add(super::layout::record_size(u64::from(rec.len)));
            if self.batch.len() >= max {
                break;
            }
            match ring::glance(&*self.ring, p) {
                Glance::Plain(next) => rec = next,
                _ => break,
            }
        }
        self.ring.check_truncated()?;
        if self.lapped() {
            // Some of what was copied may have been overwritten meanwhile:
            // none of it is handed out.
            self.batch.clear();
            return Err(self.lapped_now());
        }
        Ok(Batch { sub: self })
    }

    /// A blocking lending iterator: each [`next`](Iter::next) waits for a
    /// message, as [`recv`](Self::recv) does.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-iter-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::time::Duration;
    /// let channel = memlane::Channel::builder("doc-iter").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// sub.set_disconnect_grace(Some(Duration::from_millis(20)));
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"one")?;
    /// publ.send(b"two")?;
    /// drop(publ);
    /// let mut seen = 0;
    /// let mut it = sub.iter();
    /// while let Some(msg) = it.next() {
    ///     seen += msg?.len(); // in place (or a private copy): no allocation
    /// }
    /// assert_eq!(seen, 6); // ended when every publisher had left
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_> {
        Iter {
            sub: self,
            done: false,
        }
    }

    /// A lending iterator of the messages waiting now: each
    /// [`next`](TryIter::next) takes one as [`try_recv`](Self::try_recv)
    /// does, and the iteration ends when none is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tryiter-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-tryiter").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"a")?;
    /// publ.send(b"b")?;
    /// let mut got = Vec::new();
    /// let mut it = sub.try_iter();
    /// while let Some(msg) = it.next() {
    ///     got.extend_from_slice(&msg?);
    /// }
    /// assert_eq!(got, b"ab");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_> {
        TryIter {
            sub: self,
            done: false,
        }
    }

    /// Ring bytes not yet read by this subscriber (record headers and
    /// padding included; at most the capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-lag-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-lag").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// assert_eq!(sub.lag(), 0);
    /// channel.publisher()?.send(b"unread")?;
    /// assert!(sub.lag() > 0);
    /// drop(sub.recv()?);
    /// assert_eq!(sub.lag(), 0);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lag(&self) -> u64 {
        use crate::sync::Ordering;
        self.ring
            .claim()
            .load(Ordering::Acquire)
            .wrapping_sub(self.st.pos)
            .min(self.ring.geometry().capacity)
    }

    /// Messages received by this subscriber (counted when each is
    /// released).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-received-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-received").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// channel.publisher()?.send(b"one")?;
    /// drop(sub.recv()?);
    /// assert_eq!(sub.messages_received(), 1);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn messages_received(&self) -> u64 {
        self.st.messages
    }
}

/// The error of a copy whose record was rewritten meanwhile.
#[cold]
fn rewritten(p: u64) -> crate::error::Corrupt {
    crate::error::Corrupt::new(format!(
        "the record at position {p} was rewritten while it was copied out \
         (another process writes the channel's ring)"
    ))
}

/// A receive without deadline's error.
fn untimed(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Corrupt(c) => RecvError::Corrupt(c),
        RecvTimeoutError::Disconnected => RecvError::Disconnected,
        RecvTimeoutError::Lagged(l) => RecvError::Lagged(l),
        RecvTimeoutError::Timeout => unreachable!("a wait without deadline never times out"),
    }
}

/// Hooks of the async layer (`crate::asynk`).
#[cfg(feature = "async")]
impl Subscriber {
    /// Whether [`recv`](Self::recv) would return at once (a message or an
    /// error), without taking anything: the condition an async receive
    /// re-checks. Runs the periodic checks of a blocking wait (dead
    /// publishers, disconnection), themselves rate-limited.
    pub(crate) fn async_ready(&mut self) -> Result<bool, RecvError> {
        if self.peek_or_reap()?.is_some() {
            return Ok(true);
        }
        if self.presence == Presence::Disconnected && self.disconnected(Instant::now()) {
            return Err(RecvError::Disconnected);
        }
        // At most every REAP_EVERY, as for the empty polls of `try_recv`.
        match self.idle_checks() {
            Ok(true) => Ok(self.peek_or_reap()?.is_some()),
            Ok(false) | Err(TryRecvError::Empty) => Ok(false),
            Err(TryRecvError::Disconnected) => Err(RecvError::Disconnected),
            Err(TryRecvError::Corrupt(c)) => Err(c.into()),
            Err(TryRecvError::Lagged(l)) => Err(RecvError::Lagged(l)),
        }
    }

    /// When an async receive should look again without a notification:
    /// when the disconnect grace ends, else after `period`.
    pub(crate) fn async_recheck(&self, period: Duration) -> Instant {
        let now = Instant::now();
        match (self.presence, self.grace) {
            (Presence::Alone(since), Some(grace)) => (since + grace).max(now).min(now + period),
            _ => now + period,
        }
    }

    /// The ring (its data event is what an async receive waits on).
    pub(crate) fn async_ring(&self) -> &Arc<ShmRing> {
        &self.ring
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // The slot is FREE before `_lock` is released (fields drop after
        // this body).
        ring::leave_subscriber(&*self.ring, &self.st);
    }
}

/// A received message; released (its space handed back to publishers)
/// when dropped. Copy it out with [`to_vec`](slice::to_vec) to keep it.
///
/// **In place or copied.** When only this user can write the channel
/// (see [`Channel::copies_messages`](crate::Channel::copies_messages)),
/// the slice it derefs to is the record's payload in the ring itself
/// (zero-copy): the only processes that could change it while it is read
/// are this user's, which can already write this process's memory.
/// Otherwise the receive copied the payload into a buffer the
/// [`Subscriber`] owns and checked that the record was not rewritten
/// during the copy; the slice is that private copy, which no other process
/// can change. Either way, a peer with write access can make the bytes
/// wrong (it can write any message it likes), so check what you need to
/// trust; see `docs/RELIABILITY.md`.
///
/// One word (its length is kept in the subscriber), so that a receive's
/// whole result, with the two-word [`TryRecvError`], [`RecvTimeoutError`]
/// or [`RecvError`], travels in two registers.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-message-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-message").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// channel.publisher()?.send(b"keep me")?;
/// let msg = sub.recv()?;
/// assert_eq!(msg.len(), 7); // a `&[u8]` through Deref
/// let kept: Vec<u8> = msg.to_vec();
/// drop(msg); // released: the ring space goes back to publishers
/// assert_eq!(kept, b"keep me");
/// # drop((sub, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Message<'a> {
    /// The record is at the subscriber's position, which stays there until
    /// this message is dropped; its validated payload length is `sub.len`.
    sub: &'a mut Subscriber,
}

impl Message<'_> {
    /// The message's position in the channel's ring: a byte count since the
    /// ring began, unique to this message for the channel's whole life (it
    /// only grows, so later messages have larger positions). Equal to the
    /// [`Loan::position`](crate::Loan::position) its publisher saw.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-msgpos-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-msgpos").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"one")?;
    /// publ.send(b"two")?;
    /// let first = sub.recv()?.position();
    /// assert!(sub.recv()?.position() > first);
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.sub.st.pos
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("len", &self.sub.len)
            .finish()
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let len = self.sub.len as usize;
        if self.sub.copy {
            return &self.sub.buf[..len];
        }
        let off = self.sub.st.pos & self.sub.ring.geometry().mask;
        // SAFETY: in place only when no other user can write the file
        // (`trust.rs`): every process that can is this user's, and trusted
        // like this one. The record at the subscriber's position (ring
        // offset `off`) was validated: len <= max_message and the whole
        // record inside the ring. Until this message is dropped the
        // position stays there, so no honest publisher can claim these
        // bytes.
        unsafe {
            std::slice::from_raw_parts(self.sub.ring.region().ring_ptr(off + RECORD_HEADER), len)
        }
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        ring::release(&*self.sub.ring, &mut self.sub.st, self.sub.len);
    }
}

/// Messages read in place together and released together; see
/// [`Subscriber::try_recv_batch`]. Iterate it (`for msg in &batch`,
/// [`iter`](Self::iter)) or index it ([`get`](Self::get)): each message is
/// a `&[u8]` borrowed from the batch, with no copy and no allocation.
///
/// **In place or copied**, as for [`Message`]: in place, each slice is
/// the payload in the ring; in copy mode the batch's payloads were copied
/// into the subscriber's buffer (each record checked after its copy), and
/// the slices are that private copy.
///
/// Dropping the batch releases all of its messages at once; a batch
/// passed to `mem::forget` releases none (they are received again).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchtype-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-batchtype").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// publ.send(b"x")?;
/// publ.send(b"yz")?;
/// let batch = sub.try_recv_batch(8)?;
/// let mut seen = Vec::new();
/// for msg in &batch {
///     seen.push(msg.to_vec());
/// }
/// assert_eq!(seen, [b"x".to_vec(), b"yz".to_vec()]);
/// drop(batch); // releases both
/// # drop((sub, publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batch<'a> {
    /// The batch starts at the subscriber's position; `sub.batch` holds
    /// the validated payload lengths of its records, which follow each
    /// other from there (in copy mode, `sub.buf` holds their payloads one
    /// after the other).
    sub: &'a mut Subscriber,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("lens", &self.sub.batch)
            .finish()
    }
}

impl Batch<'_> {
    /// How many messages the batch holds (at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchlen-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-batchlen").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// channel.publisher()?.send(b"only")?;
    /// let batch = sub.try_recv_batch(8)?;
    /// assert_eq!(batch.len(), 1);
    /// assert!(!batch.is_empty());
    /// # drop(batch);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.sub.batch.len()
    }

    /// Whether the batch holds no message (never: a batch holds at least
    /// one).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchempty-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-batchempty").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// channel.publisher()?.send(b"")?; // an empty message still makes a batch
    /// let batch = sub.try_recv_batch(8)?;
    /// assert!(!batch.is_empty());
    /// # drop(batch);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.sub.batch.is_empty()
    }

    /// The messages, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchiter-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-batchiter").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"a")?;
    /// publ.send(b"bc")?;
    /// let batch = sub.try_recv_batch(8)?;
    /// let lens: Vec<usize> = batch.iter().map(<[u8]>::len).collect();
    /// assert_eq!(lens, [1, 2]);
    /// # drop(batch);
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            sub: self.sub,
            index: 0,
            pos: self.sub.st.pos,
            copied: 0,
        }
    }

    /// Message `index`, if the batch holds that many.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchget-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-batchget").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"first")?;
    /// publ.send(b"second")?;
    /// let batch = sub.try_recv_batch(8)?;
    /// assert_eq!(batch.get(1), Some(&b"second"[..]));
    /// assert_eq!(batch.get(2), None);
    /// # drop(batch);
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter().nth(index)
    }
}

impl<'b> IntoIterator for &'b Batch<'_> {
    type Item = &'b [u8];
    type IntoIter = BatchIter<'b>;
    fn into_iter(self) -> BatchIter<'b> {
        self.iter()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        let sub = &mut *self.sub;
        for &len in &sub.batch {
            ring::release(&*sub.ring, &mut sub.st, len);
        }
        sub.batch.clear();
    }
}

/// The messages of a [`Batch`], as `&[u8]`; see [`Batch::iter`]. An
/// [`ExactSizeIterator`].
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-batchiterty-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-batchiterty").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// publ.send(b"a")?;
/// publ.send(b"b")?;
/// let batch = sub.try_recv_batch(8)?;
/// let mut it = batch.iter();
/// assert_eq!(it.len(), 2);
/// assert_eq!(it.next(), Some(&b"a"[..]));
/// assert_eq!(it.len(), 1);
/// # drop(batch);
/// # drop((sub, publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchIter<'b> {
    sub: &'b Subscriber,
    index: usize,
    /// Position of the record `index`.
    pos: u64,
    /// Copy mode: offset of its payload in the buffer.
    copied: usize,
}

impl<'b> Iterator for BatchIter<'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        let sub = self.sub;
        let len = *sub.batch.get(self.index)?;
        self.index += 1;
        let at = self.pos;
        self.pos = at.wrapping_add(super::layout::record_size(u64::from(len)));
        if sub.copy {
            let from = self.copied;
            self.copied += len as usize;
            return Some(&sub.buf[from..from + len as usize]);
        }
        let off = at & sub.ring.geometry().mask;
        // SAFETY: as for `Message::deref`: in place only when no other user
        // can write the file. Each record of the batch was validated at its
        // position (`peek` or `glance`: len <= max_message and the whole
        // record inside the ring), and the batch holds the subscriber's
        // position at its first record until it drops, so no honest
        // publisher can claim these bytes while the batch (which this
        // borrow outlives not) lives.
        Some(unsafe {
            std::slice::from_raw_parts(
                sub.ring.region().ring_ptr(off + RECORD_HEADER),
                len as usize,
            )
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.sub.batch.len() - self.index;
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// A blocking lending iterator of messages; see [`Subscriber::iter`].
///
/// Not a [`std::iter::Iterator`]: each message borrows the subscriber (it
/// is read in place, and released when dropped), and an `Iterator`'s items
/// cannot borrow from the iterator. So `next` is a method of its own, used
/// with `while let Some(msg) = it.next()`; the price of the std trait
/// would be a copy (and an allocation) per message. To read many messages
/// with the std trait, use [`Subscriber::try_recv_batch`]: a [`Batch`] is
/// iterated as `&[u8]` in place.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-itertype-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// use std::time::Duration;
/// let channel = memlane::Channel::builder("doc-itertype").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// sub.set_disconnect_grace(Some(Duration::from_millis(20)));
/// channel.publisher()?.send(b"bye")?; // the publisher leaves at once
/// let mut it: memlane::Iter<'_> = sub.iter();
/// assert_eq!(&*it.next().unwrap()?, b"bye");
/// assert!(it.next().is_none()); // every publisher has left
/// # drop((sub, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<'a> {
    sub: &'a mut Subscriber,
    /// An error was yielded, or the subscriber is disconnected.
    done: bool,
}

impl Iter<'_> {
    /// Waits for the next message. `None` once every publisher has left
    /// (see [`Subscriber::set_disconnect_grace`]; with no grace, it never
    /// ends). A corrupt channel is yielded as `Some(Err(RecvError::Corrupt))`
    /// once, and ends the iteration; receive again to look again. A lossy
    /// subscriber's lap is yielded as `Some(Err(RecvError::Lagged))` and
    /// the iteration goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-iternext-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::time::Duration;
    /// let channel = memlane::Channel::builder("doc-iternext").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// sub.set_disconnect_grace(Some(Duration::from_millis(20)));
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"1")?;
    /// publ.send(b"2")?;
    /// drop(publ);
    /// let mut n = 0;
    /// let mut it = sub.iter();
    /// while let Some(msg) = it.next() {
    ///     n += msg?.len();
    /// }
    /// assert_eq!(n, 2);
    /// # drop((sub, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::should_implement_trait)] // a lending iterator: see the type's docs
    pub fn next(&mut self) -> Option<Result<Message<'_>, RecvError>> {
        if self.done {
            return None;
        }
        match self.sub.recv() {
            Ok(msg) => Some(Ok(msg)),
            // A lossy subscriber's lap: said, and the iteration goes on.
            Err(e @ RecvError::Lagged(_)) => Some(Err(e)),
            Err(RecvError::Disconnected) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A lending iterator of the messages waiting now; see
/// [`Subscriber::try_iter`] (and [`Iter`] for why it is not a std
/// `Iterator`).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tryitertype-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-tryitertype").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// channel.publisher()?.send(b"waiting")?;
/// let mut it: memlane::TryIter<'_> = sub.try_iter();
/// assert_eq!(&*it.next().unwrap()?, b"waiting");
/// assert!(it.next().is_none()); // nothing more now
/// # drop((sub, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TryIter<'a> {
    sub: &'a mut Subscriber,
    /// An error was yielded.
    done: bool,
}

impl TryIter<'_> {
    /// The next message if one is waiting; `None` when none is (or every
    /// publisher has left). A corrupt channel is yielded as
    /// `Some(Err(TryRecvError::Corrupt))` once, and ends the iteration; a
    /// lossy subscriber's lap as `Some(Err(TryRecvError::Lagged))`, and the
    /// iteration goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tryiternext-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-tryiternext").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"a")?;
    /// publ.send(b"b")?;
    /// let mut got = Vec::new();
    /// let mut it = sub.try_iter();
    /// while let Some(msg) = it.next() {
    ///     got.extend_from_slice(&msg?);
    /// }
    /// assert_eq!(got, b"ab");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::should_implement_trait)] // a lending iterator: see `Iter`
    pub fn next(&mut self) -> Option<Result<Message<'_>, TryRecvError>> {
        if self.done {
            return None;
        }
        match self.sub.try_recv() {
            Ok(msg) => Some(Ok(msg)),
            // A lossy subscriber's lap: said, and the iteration goes on.
            Err(e @ TryRecvError::Lagged(_)) => Some(Err(e)),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// A receive's result travels in two registers (see [`Message`]).
    #[test]
    fn receive_results_are_two_words() {
        let word = size_of::<usize>();
        assert_eq!(size_of::<Message<'static>>(), word);
        // Two boxed variants (Corrupt, Lagged) need a tag word beside the
        // box; the whole results still fit two registers.
        assert_eq!(size_of::<RecvError>(), 2 * word);
        assert_eq!(size_of::<TryRecvError>(), 2 * word);
        assert_eq!(
            size_of::<Result<Message<'static>, TryRecvError>>(),
            2 * word
        );
        assert_eq!(
            size_of::<Result<Message<'static>, RecvTimeoutError>>(),
            2 * word
        );
        assert_eq!(size_of::<Result<Message<'static>, RecvError>>(), 2 * word);
    }
}
