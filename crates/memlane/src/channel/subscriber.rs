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
/// assert_eq!(&*msg, b"one"); // read in place; released when `msg` drops
/// # drop(msg);
/// # drop((sub, channel));
/// # memlane::Channel::remove_in(&dir, "doc-sub")?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber {
    ring: Arc<ShmRing>,
    st: SubState,
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
        Ok(Subscriber {
            ring,
            st,
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

    #[inline]
    fn message(&mut self, rec: Record) -> Message<'_> {
        Message {
            sub: self,
            len: rec.len,
        }
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
            Glance::Plain(rec) if !self.ring.segment().truncated() => {
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
            Glance::Plain(rec) if !self.ring.segment().truncated() => Some(rec),
            _ => None,
        }
    }

    /// [`try_recv`](Self::try_recv) for everything else: nothing yet, pad
    /// or discarded records, a truncated file, words to examine closely.
    #[inline(never)]
    fn try_recv_slow(&mut self) -> Result<Message<'_>, TryRecvError> {
        if let Some(rec) = self.peek_or_reap()? {
            return Ok(self.message(rec));
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
                return Ok(self.message(rec));
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
                return Ok(self.message(rec));
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

/// A received message, read in place in the ring; released (its space
/// handed back to publishers) when dropped. Copy it out with
/// [`to_vec`](slice::to_vec) to keep it.
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
        let off = self.sub.st.pos & self.sub.ring.geometry().mask;
        // SAFETY: the record at the subscriber's position (ring offset
        // `off`) was validated: len <= max_message and the whole record
        // inside the ring. Until this message is dropped the position stays
        // there, so no honest publisher can claim these bytes; a hostile
        // process can change their values but never their bounds.
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
