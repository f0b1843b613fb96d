//! The receiving side of a channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout::RECORD_HEADER;
use super::liveness::{self, ReapTimer, Role, SlotLock, REAP_EVERY};
use super::ring::{self, Glance, Record, RingMem, SubState};
use super::shm::ShmRing;
use crate::error::{JoinError, RecvError, RecvTimeoutError, TryRecvError};
use crate::sync::event_word::DEFAULT_SPIN;

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
/// # let dir = std::env::temp_dir().join(format!("memlane-doc-sub-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use std::time::Duration;
/// let channel = memlane::Channel::builder("doc-sub").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// assert!(sub.try_recv().is_err()); // nothing yet
/// channel.publisher()?.send(b"one")?;
/// let msg = sub.recv_timeout(Duration::from_secs(1))?;
/// assert_eq!(&*msg, b"one"); // released when `msg` drops
/// # drop(msg);
/// # drop((sub, channel));
/// # memlane::Channel::remove_in(&dir, "doc-sub")?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    ring: Arc<ShmRing>,
    st: SubState,
    /// Messages are copied into `buf` before they are handed out (see
    /// [`Channel::copies_messages`](crate::Channel::copies_messages)).
    copy: bool,
    /// The private copy of the current message in copy mode
    /// (`max_message` bytes, allocated at the join; empty otherwise).
    buf: Box<[u8]>,
    spin: u32,
    reap: ReapTimer,
    /// The liveness lock, held for as long as this subscriber is joined;
    /// dropped (released) after `Drop::drop` frees the slot.
    _lock: SlotLock,
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
    pub(super) fn join(ring: Arc<ShmRing>) -> Result<Subscriber, JoinError> {
        let pid = crate::sys::current_pid();
        let g = *ring.geometry();
        let (st, lock) = liveness::join(
            &ring,
            Role::Subscriber,
            g.max_subscribers,
            |i| ring::take_subscriber_slot(&*ring, i, pid),
            || ring::join_failure(&g),
        )?;
        let st = st?;
        let copy = ring.copy_messages();
        let buf = if copy {
            vec![0; g.max_message as usize].into_boxed_slice()
        } else {
            Box::default()
        };
        Ok(Subscriber {
            ring,
            st,
            copy,
            buf,
            spin: DEFAULT_SPIN,
            reap: ReapTimer::new(),
            _lock: lock,
        })
    }

    /// How many times a blocking receive polls before it sleeps (default
    /// 4000, roughly 20–100 µs). Polling longer keeps latency low while
    /// messages keep coming; 0 sleeps at once.
    pub fn set_spin(&mut self, polls: u32) {
        self.spin = polls;
    }

    /// Whether this subscriber copies each message into a buffer of its
    /// own before handing it out, rather than reading it in place; see
    /// [`Channel::copies_messages`](crate::Channel::copies_messages).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("memlane-doc-scopy-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let ch = memlane::Channel::builder("scopy").dir(&dir).copy_messages(true).create()?;
    /// assert!(ch.subscriber()?.copies_messages());
    /// # drop(ch);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies_messages(&self) -> bool {
        self.copy
    }

    /// The message of a record found in place (not in copy mode).
    #[inline]
    fn message(&mut self, rec: Record) -> Message<'_> {
        Message {
            sub: self,
            len: rec.len,
        }
    }

    /// The message of a record found by a slow path, in either mode.
    #[inline]
    fn deliver(&mut self, rec: Record) -> Result<Message<'_>, crate::error::Corrupt> {
        if self.copy {
            return self.copy_out(rec);
        }
        Ok(self.message(rec))
    }

    /// Copy mode: copies the payload of `rec` (at this subscriber's
    /// position, validated by `peek`) into `buf` with a raw copy (no
    /// reference into the ring is made), then checks that the record's
    /// header still says what it said, so that what was copied is the
    /// validated record. A record rewritten meanwhile is reported (the
    /// position stays: the next receive examines the record anew).
    #[inline(never)]
    fn copy_out(&mut self, rec: Record) -> Result<Message<'_>, crate::error::Corrupt> {
        let len = rec.len as usize;
        assert!(len <= self.buf.len(), "validated against max_message");
        // SAFETY: `peek` validated the record: `payload_off + len` lies
        // inside the ring (len <= max_message, the record inside the ring),
        // and `buf` holds at least `len` bytes (asserted above) and is this
        // subscriber's own memory, so the ranges do not overlap. The ring
        // bytes are read through a raw pointer only; another process may
        // change them meanwhile, which can make the copied values wrong but
        // never makes them a reference or their bounds anything else.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ring.ring_ptr(rec.payload_off).cast_const(),
                self.buf.as_mut_ptr(),
                len,
            );
        }
        let intact = ring::still_committed(&*self.ring, self.st.pos, rec);
        self.ring.check_truncated()?;
        if !intact {
            return Err(crate::error::Corrupt::new(format!(
                "the record at position {} was rewritten while it was copied out \
                 (another process writes the channel's ring)",
                self.st.pos
            )));
        }
        Ok(Message {
            sub: self,
            len: rec.len,
        })
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when none is; [`TryRecvError::Corrupt`] when
    /// the shared state is inconsistent.
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
                if self.st.pos == self.st.published && !self.ring.segment().truncated() =>
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

    /// Every 64th empty poll of [`try_recv`](Self::try_recv): blocked on a
    /// record a dead publisher may have left open? (Rate-limited by the
    /// clock; the check reads the publishers' claim line.)
    #[inline(never)]
    fn try_recv_reaping(&mut self) -> Result<Message<'_>, TryRecvError> {
        let (ring, st) = (&self.ring, &self.st);
        if self.reap.reap_if(ring, Some(st.published), || {
            ring::blocked_on_uncommitted(&**ring, st)
        }) {
            return self.try_recv_slow();
        }
        Err(TryRecvError::Empty)
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
    fn peek_or_reap(&mut self) -> Result<Option<Record>, crate::error::Corrupt> {
        let found = ring::peek(&*self.ring, &mut self.st)?;
        self.ring.check_truncated()?;
        if let Some(rec) = found {
            return Ok(Some(rec));
        }
        self.reap_if_blocked()
    }

    /// [`peek_or_reap`](Self::peek_or_reap) found nothing.
    #[inline(never)]
    fn reap_if_blocked(&mut self) -> Result<Option<Record>, crate::error::Corrupt> {
        // Blocked on a record a dead publisher may have left open? Checked
        // now and then only: the check reads the publishers' claim line.
        let (ring, st) = (&self.ring, &self.st);
        if self.reap.maybe_reap_if(ring, Some(st.published), || {
            ring::blocked_on_uncommitted(&**ring, st)
        }) {
            return ring::peek(&*self.ring, &mut self.st);
        }
        Ok(None)
    }

    /// Waits for data until `deadline` in slices, reaping in between;
    /// false on time-out.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<bool, crate::error::Corrupt> {
        let slice = Instant::now() + REAP_EVERY;
        let until = deadline.map_or(slice, |d| d.min(slice));
        if ring::wait_for_data(&*self.ring, &mut self.st, self.spin, Some(until))? {
            return Ok(true);
        }
        // A whole slice without a message: blocked on a dead publisher's
        // open record? (Time-limited: at most every REAP_EVERY.)
        if ring::blocked_on_uncommitted(&*self.ring, &self.st)
            && self.reap.maybe_reap(&self.ring, Some(self.st.published))
        {
            return Ok(true);
        }
        Ok(deadline.is_none_or(|d| Instant::now() < d))
    }

    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] when the shared state is inconsistent.
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
        loop {
            if let Some(rec) = self.peek_or_reap()? {
                return Ok(self.deliver(rec)?);
            }
            self.wait(None)?;
        }
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none arrived in time;
    /// [`RecvTimeoutError::Corrupt`] when the shared state is inconsistent.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(rec) = self.peek_or_reap()? {
                return Ok(self.deliver(rec)?);
            }
            if !self.wait(Some(deadline))? {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    /// A blocking iterator of copied messages (ends on a corrupt channel).
    pub fn iter(&mut self) -> Iter<'_> {
        Iter { sub: self }
    }

    /// An iterator of the messages waiting now, copied.
    pub fn try_iter(&mut self) -> TryIter<'_> {
        TryIter { sub: self }
    }

    /// Ring bytes not yet read by this subscriber.
    pub fn lag(&self) -> u64 {
        use crate::sync::Ordering;
        self.ring
            .claim()
            .load(Ordering::Acquire)
            .wrapping_sub(self.st.pos)
            .min(self.ring.geometry().capacity)
    }

    /// Messages received by this subscriber.
    pub fn messages_received(&self) -> u64 {
        self.st.messages
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
/// Two words (and [`TryRecvError`] and [`RecvError`] one), so that a
/// receive's whole result travels in registers.
pub struct Message<'a> {
    sub: &'a mut Subscriber,
    /// The payload length (validated); the record is at the subscriber's
    /// position, which stays there until this message is dropped.
    len: u32,
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("len", &self.len).finish()
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        if self.sub.copy {
            return &self.sub.buf[..self.len as usize];
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
            std::slice::from_raw_parts(
                self.sub.ring.ring_ptr(off + RECORD_HEADER),
                self.len as usize,
            )
        }
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        ring::release(&*self.sub.ring, &mut self.sub.st, self.len);
    }
}

/// See [`Subscriber::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    sub: &'a mut Subscriber,
}

impl Iterator for Iter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.sub.recv().ok().map(|m| m.to_vec())
    }
}

/// See [`Subscriber::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a> {
    sub: &'a mut Subscriber,
}

impl Iterator for TryIter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.sub.try_recv().ok().map(|m| m.to_vec())
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
        assert_eq!(size_of::<TryRecvError>(), word);
        assert_eq!(size_of::<RecvError>(), word);
        assert_eq!(size_of::<Message<'static>>(), 2 * word);
        assert_eq!(
            size_of::<Result<Message<'static>, TryRecvError>>(),
            2 * word
        );
        assert_eq!(size_of::<Result<Message<'static>, RecvError>>(), 2 * word);
    }
}
