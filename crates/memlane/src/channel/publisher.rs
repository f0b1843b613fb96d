//! The sending side of a channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout::RECORD_HEADER;
use super::liveness::{self, ReapTimer, Role, SlotLock, REAP_EVERY};
use super::ring::{self, Claim, PubState, RingMem};
use super::shm::ShmRing;
use crate::error::{Corrupt, JoinError, SendError, SendTimeoutError, TrySendError};

/// Sends messages on a channel. Made by [`Channel::publisher`](crate::Channel::publisher);
/// leaves the channel when dropped. Several publishers, in any processes,
/// may send at once.
///
/// [`send`](Self::send) and its variants copy the message into the ring.
/// A [`Loan`] is the ring space itself when only this user can write the
/// channel's file, and otherwise a private buffer copied in at commit; see
/// [`copies_messages`](Self::copies_messages). A loan leaked with
/// `mem::forget` is completed as discarded at the next send, loan or drop.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("memlane-doc-pub-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let channel = memlane::Channel::builder("doc-pub").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// publ.send(b"copied")?;
/// let mut loan = publ.loan(6)?;
/// loan.copy_from_slice(b"loaned");
/// loan.commit();
/// assert_eq!(sub.recv()?.to_vec(), b"copied");
/// assert_eq!(sub.recv()?.to_vec(), b"loaned");
/// # drop((sub, publ, channel));
/// # memlane::Channel::remove_in(&dir, "doc-pub")?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Publisher {
    ring: Arc<ShmRing>,
    st: PubState,
    reap: ReapTimer,
    /// The claim of the loan this publisher handed out, until the loan is
    /// committed or dropped. Still set when the publisher is used again:
    /// the loan was leaked (`mem::forget`), and its claim is completed as
    /// a discarded record first (see [`Publisher::settle_leaked_loan`]).
    loaned: Option<Claim>,
    /// Loans are private buffers copied into the ring at commit
    /// (see [`Channel::copies_messages`](crate::Channel::copies_messages)).
    copy: bool,
    /// The private buffer of copied loans (`max_message` bytes, allocated
    /// at the first such loan and reused).
    buf: Vec<u8>,
    /// The liveness lock, held for as long as this publisher is joined;
    /// dropped (released) after `Drop::drop` frees the slot.
    _lock: SlotLock,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("slot", &self.st.slot)
            .finish()
    }
}

impl Publisher {
    pub(super) fn join(ring: Arc<ShmRing>) -> Result<Publisher, JoinError> {
        let pid = crate::sys::current_pid();
        let g = *ring.geometry();
        let (st, lock) = liveness::join(
            &ring,
            Role::Publisher,
            g.max_publishers,
            |i| ring::take_publisher_slot(&*ring, i, pid),
            || JoinError::TooManyPublishers {
                max: g.max_publishers,
            },
        )?;
        let copy = ring.copy_messages();
        Ok(Publisher {
            ring,
            st,
            reap: ReapTimer::new(),
            loaned: None,
            copy,
            buf: Vec::new(),
            _lock: lock,
        })
    }

    /// The largest message this channel takes.
    pub fn max_message(&self) -> usize {
        self.ring.geometry().max_message as usize
    }

    /// Whether this publisher's loans are private buffers copied into the
    /// ring at [`Loan::commit`] rather than ring space written in place;
    /// see [`Channel::copies_messages`](crate::Channel::copies_messages).
    /// Copying sends ([`send`](Self::send) and the like) copy either way.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("memlane-doc-pcopy-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let ch = memlane::Channel::builder("pcopy").dir(&dir).copy_messages(true).create()?;
    /// assert!(ch.publisher()?.copies_messages());
    /// # drop(ch);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies_messages(&self) -> bool {
        self.copy
    }

    /// A loan was leaked (`mem::forget`) and this publisher is used again:
    /// completes its claim as a discarded record, as dropping the loan
    /// would have, before anything else overwrites the write-ahead record
    /// of that claim. Without this, the claim could never be committed or
    /// repaired, and every subscriber would wait on it forever.
    #[cold]
    #[inline(never)]
    fn settle_leaked_loan(&mut self) {
        if let Some(claim) = self.loaned.take() {
            ring::commit(&*self.ring, &mut self.st, claim, true);
            ring::hold_straight_path(&mut self.st, false);
        }
    }

    /// Hands out a loan of `claim` (just made).
    #[inline]
    fn lend(&mut self, claim: Claim) -> Loan<'_> {
        // Until the loan is committed or dropped, sends take the general
        // path, which settles a leaked loan first.
        ring::hold_straight_path(&mut self.st, true);
        self.loaned = Some(claim);
        if self.copy && self.buf.is_empty() {
            self.buf = vec![0; self.max_message()];
        }
        Loan { publ: self, claim }
    }

    /// The loan of `claim` ends (committed, or dropped as discarded).
    #[inline]
    fn end_loan(&mut self, claim: Claim, discard: bool) {
        self.loaned = None;
        ring::commit(&*self.ring, &mut self.st, claim, discard);
        ring::hold_straight_path(&mut self.st, false);
    }

    #[inline]
    fn check_len(&self, len: usize) -> Result<u32, (usize, usize)> {
        let max = self.max_message();
        if len > max {
            Err((len, max))
        } else {
            Ok(len as u32)
        }
    }

    #[inline]
    fn write_commit(&mut self, c: Claim, msg: &[u8]) -> Result<(), Corrupt> {
        // SAFETY: the claim reserves record_size(len) bytes at its ring
        // offset, inside the ring.
        unsafe { ring::write_payload(&*self.ring, c.off(self.ring.geometry()), msg) };
        ring::commit(&*self.ring, &mut self.st, c, false);
        self.ring.check_truncated()
    }

    /// Sends `msg`, waiting while the slowest subscriber is a ring behind.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] if `msg` exceeds the maximum message size.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        // A single writer's common case in one straight run (see
        // `ring::send_single`); everything else below.
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        if self.loaned.is_some() {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(msg.len())
            .map_err(|(len, max)| SendError::TooLarge { len, max })?;
        let c = self.claim_wait(len)?;
        Ok(self.write_commit(c, msg)?)
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the slowest subscriber is a ring behind;
    /// [`TrySendError::TooLarge`] if `msg` exceeds the maximum.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        if self.loaned.is_some() {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(msg.len())
            .map_err(|(len, max)| TrySendError::TooLarge { len, max })?;
        let c = self.claim_now(len)?.ok_or(TrySendError::Full)?;
        Ok(self.write_commit(c, msg)?)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] if no room freed up in time;
    /// [`SendTimeoutError::TooLarge`] if `msg` exceeds the maximum.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        if self.loaned.is_some() {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(msg.len())
            .map_err(|(len, max)| SendTimeoutError::TooLarge { len, max })?;
        let c = self
            .claim_blocking(len, Some(Instant::now() + timeout))?
            .ok_or(SendTimeoutError::Timeout)?;
        Ok(self.write_commit(c, msg)?)
    }

    #[inline]
    fn claim_wait(&mut self, len: u32) -> Result<Claim, Corrupt> {
        if let Some(c) = ring::try_claim(&*self.ring, &mut self.st, len)? {
            return Ok(c);
        }
        self.claim_wait_slow(len)
    }

    /// [`claim_wait`](Self::claim_wait) when the ring had no room at once.
    #[inline(never)]
    fn claim_wait_slow(&mut self, len: u32) -> Result<Claim, Corrupt> {
        loop {
            if let Some(c) = self.claim_blocking(len, None)? {
                return Ok(c);
            }
        }
    }

    #[inline]
    fn claim_now(&mut self, len: u32) -> Result<Option<Claim>, Corrupt> {
        if let Some(c) = ring::try_claim(&*self.ring, &mut self.st, len)? {
            return Ok(Some(c));
        }
        // Full: a dead subscriber may be what holds us back.
        if self.reap.maybe_reap(&self.ring, None) {
            return ring::try_claim(&*self.ring, &mut self.st, len);
        }
        Ok(None)
    }

    fn claim_blocking(
        &mut self,
        len: u32,
        deadline: Option<Instant>,
    ) -> Result<Option<Claim>, Corrupt> {
        loop {
            if let Some(c) = self.claim_now(len)? {
                return Ok(Some(c));
            }
            // Sleep in slices, looking for dead subscribers in between.
            let slice = Instant::now() + REAP_EVERY;
            let until = deadline.map_or(slice, |d| d.min(slice));
            if !ring::wait_for_space(&*self.ring, &mut self.st, len, Some(until))
                && deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Ok(None);
            }
        }
    }

    /// Reserves `len` bytes in the ring to be filled through the returned
    /// [`Loan`], waiting for room; [`Loan::commit`] publishes them. The loan
    /// is the ring space itself (zero-copy) when only this user can write
    /// the channel, and a private buffer copied into the ring at commit
    /// otherwise (see [`copies_messages`](Self::copies_messages)). A loan
    /// dropped without commit is skipped by subscribers; so is one that is
    /// leaked (`mem::forget`), once this publisher is used again or dropped.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] if `len` exceeds the maximum.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, SendError> {
        if self.loaned.is_some() {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(len)
            .map_err(|(len, max)| SendError::TooLarge { len, max })?;
        let claim = self.claim_wait(len)?;
        Ok(self.lend(claim))
    }

    /// Like [`Publisher::loan`] but fails at once when the ring is full.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::try_send`].
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_>, TrySendError> {
        if self.loaned.is_some() {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(len)
            .map_err(|(len, max)| TrySendError::TooLarge { len, max })?;
        let claim = self.claim_now(len)?.ok_or(TrySendError::Full)?;
        Ok(self.lend(claim))
    }

    /// Messages sent by this publisher.
    pub fn messages_sent(&self) -> u64 {
        self.st.messages
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // A leaked loan's claim is completed before the slot (and its
        // write-ahead record) is given up.
        self.settle_leaked_loan();
        // The slot is FREE before `_lock` is released (fields drop after
        // this body).
        ring::leave_publisher(&*self.ring, &self.st);
    }
}

/// Ring space reserved by [`Publisher::loan`], filled through
/// `DerefMut<Target = [u8]>` and published by [`Loan::commit`]; dropped
/// without commit, it is skipped by subscribers.
///
/// **In place or copied.** When only this user can write the channel (see
/// [`Channel::copies_messages`](crate::Channel::copies_messages)), the
/// slice is the reserved ring space itself: what is written there is what
/// subscribers read, with no copy. Otherwise it is a private buffer of the
/// publisher's, copied into the ring at commit: a `&mut [u8]` must not
/// point at bytes another process may change, and a process of another
/// user can write the file. The slice's initial contents are unspecified
/// (whatever the ring or the buffer last held); write all of it.
///
/// **Leaked loans.** A loan passed to `mem::forget` is neither committed
/// nor dropped; the publisher notices at its next send, loan or drop and
/// completes the reserved record as discarded first, so the ring moves on.
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("memlane-doc-loan-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let channel = memlane::Channel::builder("doc-loan").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// let mut loan = publ.loan(5)?;
/// loan.copy_from_slice(b"hello");
/// loan.commit();
/// drop(publ.loan(3)?); // not committed: skipped
/// assert_eq!(&*sub.recv()?, b"hello");
/// # drop((sub, publ, channel));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Loan<'a> {
    publ: &'a mut Publisher,
    claim: Claim,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("len", &self.claim.len())
            .field("copied", &self.publ.copy)
            .finish()
    }
}

impl Loan<'_> {
    /// Publishes the loaned bytes (copied into the ring first, if the
    /// loan is a private buffer).
    pub fn commit(self) {
        let mut this = std::mem::ManuallyDrop::new(self);
        let claim = this.claim;
        let publ: &mut Publisher = this.publ;
        if publ.copy {
            let len = claim.len() as usize;
            // SAFETY: the claim reserves record_size(len) bytes at its ring
            // offset, inside the ring, for this publisher alone.
            unsafe {
                ring::write_payload(
                    &*publ.ring,
                    claim.off(publ.ring.geometry()),
                    &publ.buf[..len],
                )
            };
        }
        publ.end_loan(claim, false);
    }
}

impl std::ops::Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let len = self.claim.len() as usize;
        if self.publ.copy {
            return &self.publ.buf[..len];
        }
        // SAFETY: in-place loans exist only when no other user can write
        // the file (`trust.rs`). The claim gives this publisher exclusive
        // use of the payload bytes until commit: no subscriber reads them
        // before the stamp is stored and no other publisher can claim them;
        // `len` was bounded by max_message and the record fits inside the
        // ring.
        unsafe {
            std::slice::from_raw_parts(
                self.publ
                    .ring
                    .ring_ptr(self.claim.off(self.publ.ring.geometry()) + RECORD_HEADER),
                len,
            )
        }
    }
}

impl std::ops::DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.claim.len() as usize;
        if self.publ.copy {
            return &mut self.publ.buf[..len];
        }
        // SAFETY: as for `deref`; `&mut self` makes the borrow unique here.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.publ
                    .ring
                    .ring_ptr(self.claim.off(self.publ.ring.geometry()) + RECORD_HEADER),
                len,
            )
        }
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        // Not committed: publish it as a discarded record so the ring moves on.
        let claim = self.claim;
        self.publ.end_loan(claim, true);
    }
}
