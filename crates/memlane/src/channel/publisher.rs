//! The sending side of a channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout::{self, RECORD_HEADER};
use super::liveness::{self, ReapTimer, Role, SlotLock, REAP_EVERY};
use super::region::HasRegion;
use super::ring::{self, Claim, PubState, RingMem};
use super::shm::ShmRing;
use crate::error::{CommitError, Corrupt, JoinError, SendError, SendTimeoutError, TrySendError};
use crate::typed::Chunk;
use zerocopy::IntoBytes;

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
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-pub-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-pub").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// publ.send(b"copied")?;
/// let mut loan = publ.loan(6)?;
/// loan.copy_from_slice(b"loaned");
/// loan.commit()?;
/// assert_eq!(sub.recv()?.to_vec(), b"copied");
/// assert_eq!(sub.recv()?.to_vec(), b"loaned");
/// # drop((sub, publ, channel));
/// # memlane::remove(Some(&dir), "doc-pub")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Publisher {
    ring: Arc<ShmRing>,
    st: PubState,
    reap: ReapTimer,
    /// Loans are private buffers copied into the ring at commit
    /// (see [`Channel::copies_messages`](crate::Channel::copies_messages)).
    copy: bool,
    /// The private buffer of copied loans (`max_message` bytes, allocated
    /// at the first such loan and reused), 16-byte aligned like a payload
    /// in the ring, so that a typed loan can view it as a value.
    buf: Vec<Chunk>,
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
        ring.populate();
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
        // Subscribers pinned to the same one CPU sleep instead of polling
        // while this publisher cannot run (see `ring::CpuSharing`).
        ring.pub_slot(st.slot).cpu.store(
            layout::cpu_hint(crate::sys::pinned_cpu()),
            crate::sync::Ordering::Relaxed,
        );
        let copy = ring.copy_messages();
        Ok(Publisher {
            ring,
            st,
            reap: ReapTimer::new(),
            copy,
            buf: Vec::new(),
            _lock: lock,
        })
    }

    /// The largest message this channel takes, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-pmax-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-pmax").max_message(512).dir(&dir).create()?;
    /// let publ = channel.publisher()?;
    /// assert_eq!(publ.max_message(), 512);
    /// # drop((publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.ring.geometry().max_message as usize
    }

    /// Whether this publisher's loans are private buffers copied into the
    /// ring at [`Loan::commit`] rather than ring space written in place;
    /// see [`Channel::copies_messages`](crate::Channel::copies_messages).
    /// Copying sends ([`send`](Self::send) and the like) copy either way.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-pcopy-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let ch = memlane::Channel::builder("pcopy").dir(&dir).copy_messages(true).create()?;
    /// assert!(ch.publisher()?.copies_messages());
    /// # drop(ch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies_messages(&self) -> bool {
        self.copy
    }

    /// A loan was leaked (`mem::forget`) and this publisher is used again:
    /// completes its claim as a discarded record, as dropping the loan
    /// would have, before anything else overwrites the write-ahead record
    /// of that claim. Without this, the claim could never be committed or
    /// repaired, and every subscriber would wait on it forever. The claim
    /// is read back from the write-ahead record: a loan records nothing
    /// but the one byte `st.loan` in the publisher (stores on the way
    /// from a claim to its commit cost throughput, see
    /// `ring::claim_straight`).
    #[cold]
    #[inline(never)]
    fn settle_leaked_loan(&mut self) {
        let kind = std::mem::replace(&mut self.st.loan, 0);
        if kind == 0 {
            return;
        }
        if let Some(claim) = ring::own_open_claim(&*self.ring, &self.st) {
            if kind == ring::LOAN_OUT_UNINIT {
                self.zero_loaned(claim, 0, claim.len() as usize);
            }
            ring::commit(&*self.ring, &mut self.st, claim, true);
        }
    }

    /// Hands out a loan of `claim` (just made).
    #[inline(always)]
    fn lend(&mut self, claim: Claim) -> Loan<'_> {
        // Until the loan is committed or dropped, sends take the general
        // path, which settles a leaked loan first.
        self.st.loan = ring::LOAN_OUT;
        if self.copy && self.buf.is_empty() {
            self.buf = vec![Chunk::ZERO; self.max_message().div_ceil(16)];
        }
        Loan {
            publ: self,
            claim,
            len: claim.len(),
        }
    }

    /// The loan of `claim` ends (committed, or dropped as discarded) with
    /// `len <= claim.len()` bytes.
    #[inline(always)]
    fn end_loan(&mut self, claim: Claim, len: u32, discard: bool) {
        let claim = if len < claim.len() {
            ring::shorten_claim(&*self.ring, claim, len)
        } else {
            claim
        };
        ring::commit(&*self.ring, &mut self.st, claim, discard);
        self.st.loan = 0;
    }

    /// Zeroes bytes `from..to` of the loan of `claim` (the ring space, or
    /// the private buffer in copy mode): bytes an [`UninitLoan`] exposed as
    /// `MaybeUninit` and nobody vouched for, so that every byte a later
    /// loan exposes as `u8` is initialized.
    #[cold]
    fn zero_loaned(&mut self, claim: Claim, from: usize, to: usize) {
        if from >= to {
            return;
        }
        if self.copy {
            self.buf.as_mut_bytes()[from..to].fill(0);
            return;
        }
        let off = claim.off(self.ring.geometry()) + RECORD_HEADER + from as u64;
        // SAFETY: in place, the claim gives this publisher exclusive use of
        // its payload bytes until commit, and `from..to` lies within the
        // claimed payload (`to <= claim.len()`), inside the ring.
        unsafe { std::ptr::write_bytes(self.ring.region().ring_ptr(off), 0, to - from) };
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
    /// * [`SendError::TooLarge`] if `msg` is longer than
    ///   [`max_message`](Self::max_message); nothing is sent.
    /// * [`SendError::Corrupt`] if the claim position in shared memory is
    ///   not a multiple of 16 (a process with write access to the channel
    ///   wrote it), or if the channel's file was truncated by another
    ///   process while mapped (the message may then not reach subscribers).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-send-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-send").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"hello")?;
    /// assert_eq!(&*sub.recv()?, b"hello");
    /// let too_big = vec![0; publ.max_message() + 1];
    /// assert!(matches!(publ.send(&too_big), Err(memlane::SendError::TooLarge { .. })));
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        // A single writer's common case in one straight run (see
        // `ring::send_single`); everything else out of line.
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        self.send_general(msg)
    }

    /// [`send`](Self::send) for everything but a single writer's common
    /// case. Out of line, so that the straight path inlined into the
    /// caller stays small: no registers to save for this part (on the path
    /// from a message's arrival to the reply, every instruction counts; see
    /// `docs/benchmarks/`).
    #[inline(never)]
    fn send_general(&mut self, msg: &[u8]) -> Result<(), SendError> {
        if self.st.loan != 0 {
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
    /// * [`TrySendError::Full`] when the slowest subscriber is a ring
    ///   behind (after reclaiming the slots of dead subscribers, now and
    ///   then); nothing is sent.
    /// * [`TrySendError::TooLarge`] if `msg` is longer than
    ///   [`max_message`](Self::max_message); nothing is sent.
    /// * [`TrySendError::Corrupt`] as for [`send`](Self::send): the claim
    ///   position is not a multiple of 16, or the channel's file was
    ///   truncated by another process.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-trysend-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-trysend")
    ///     .capacity(4096)
    ///     .dir(&dir)
    ///     .create()?;
    /// let _sub = channel.subscriber()?; // reads nothing: the ring fills up
    /// let mut publ = channel.publisher()?;
    /// let msg = [0u8; 100];
    /// let sent = std::iter::from_fn(|| publ.try_send(&msg).ok()).count();
    /// assert!(sent > 0);
    /// assert_eq!(publ.try_send(&msg), Err(memlane::TrySendError::Full));
    /// # drop((_sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        self.try_send_general(msg)
    }

    /// [`try_send`](Self::try_send) for everything but a single writer's
    /// common case (out of line, as [`send_general`](Self::send_general)).
    #[inline(never)]
    fn try_send_general(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        if self.st.loan != 0 {
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
    /// * [`SendTimeoutError::Timeout`] if no room freed up in time;
    ///   nothing is sent.
    /// * [`SendTimeoutError::TooLarge`] if `msg` is longer than
    ///   [`max_message`](Self::max_message); nothing is sent.
    /// * [`SendTimeoutError::Corrupt`] as for [`send`](Self::send): the
    ///   claim position is not a multiple of 16, or the channel's file was
    ///   truncated by another process.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-sendtimeout-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::time::Duration;
    /// let channel = memlane::Channel::builder("doc-sendtimeout")
    ///     .capacity(4096)
    ///     .dir(&dir)
    ///     .create()?;
    /// let _sub = channel.subscriber()?; // reads nothing: the ring fills up
    /// let mut publ = channel.publisher()?;
    /// let msg = [0u8; 100];
    /// while publ.try_send(&msg).is_ok() {}
    /// let err = publ.send_timeout(&msg, Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err, memlane::SendTimeoutError::Timeout);
    /// # drop((_sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        if ring::send_single(&*self.ring, &mut self.st, msg) {
            return Ok(self.ring.check_truncated()?);
        }
        if self.st.loan != 0 {
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
        // Full: sleeping subscribers owed a wake-up must have it now, or
        // they would not make the room this publisher waits for.
        ring::wake_owed(&*self.ring, &mut self.st);
        // A dead subscriber may be what holds us back.
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
    /// * [`SendError::TooLarge`] if `len` is more than
    ///   [`max_message`](Self::max_message); nothing is reserved.
    /// * [`SendError::Corrupt`] if the claim position in shared memory is
    ///   not a multiple of 16 (a process with write access to the channel
    ///   wrote it). A truncated file is reported by [`Loan::commit`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-loanfn-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-loanfn").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan(5)?;
    /// loan.copy_from_slice(b"hello");
    /// loan.commit()?;
    /// assert_eq!(&*sub.recv()?, b"hello");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, SendError> {
        // The common case in one straight run, inlined into the caller
        // (see `ring::claim_straight`); everything else out of line.
        if self.st.loan == 0 {
            if let Some(h) = ring::claim_straight(&*self.ring, &mut self.st, len) {
                return Ok(self.lend(ring::straight_claim(h, len)));
            }
        }
        let claim = self.loan_claim(len)?;
        Ok(self.lend(claim))
    }

    /// The claim of [`loan`](Self::loan) off its straight path.
    #[inline(never)]
    fn loan_claim(&mut self, len: usize) -> Result<Claim, SendError> {
        if self.st.loan != 0 {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(len)
            .map_err(|(len, max)| SendError::TooLarge { len, max })?;
        Ok(self.claim_wait(len)?)
    }

    /// Like [`loan`](Self::loan), as uninitialized bytes: an
    /// [`UninitLoan`] derefs to `[MaybeUninit<u8>]`, for code that fills a
    /// buffer it is given as uninitialized (a reader, a foreign function),
    /// and becomes a [`Loan`] by [`assume_init`](UninitLoan::assume_init)
    /// or [`assume_init_len`](UninitLoan::assume_init_len) once written.
    ///
    /// # Errors
    ///
    /// As for [`loan`](Self::loan): [`SendError::TooLarge`] if `len` is
    /// more than [`max_message`](Self::max_message), [`SendError::Corrupt`]
    /// if the claim position is not a multiple of 16.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-uninit-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::mem::MaybeUninit;
    /// let channel = memlane::Channel::builder("doc-uninit").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan_uninit(16)?;
    /// let n = b"filled".len();
    /// for (dst, src) in loan.iter_mut().zip(b"filled") {
    ///     *dst = MaybeUninit::new(*src);
    /// }
    /// // SAFETY: the first `n` bytes were written just above.
    /// let loan = unsafe { loan.assume_init_len(n) };
    /// loan.commit()?;
    /// assert_eq!(&*sub.recv()?, b"filled");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn loan_uninit(&mut self, len: usize) -> Result<UninitLoan<'_>, SendError> {
        let loan = self.loan(len)?;
        loan.publ.st.loan = ring::LOAN_OUT_UNINIT;
        Ok(UninitLoan { loan })
    }

    /// Like [`Publisher::loan`] but fails at once when the ring is full.
    ///
    /// # Errors
    ///
    /// * [`TrySendError::Full`] when the slowest subscriber is a ring
    ///   behind (after reclaiming the slots of dead subscribers, now and
    ///   then); nothing is reserved.
    /// * [`TrySendError::TooLarge`] if `len` is more than
    ///   [`max_message`](Self::max_message); nothing is reserved.
    /// * [`TrySendError::Corrupt`] if the claim position in shared memory
    ///   is not a multiple of 16. (A truncated file is reported by
    ///   [`Loan::commit`].)
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tryloan-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-tryloan").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// match publ.try_loan(2) {
    ///     Ok(mut loan) => {
    ///         loan.copy_from_slice(b"ok");
    ///         loan.commit()?;
    ///     }
    ///     Err(memlane::TrySendError::Full) => { /* come back later */ }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// assert_eq!(&*sub.recv()?, b"ok");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_>, TrySendError> {
        if self.st.loan == 0 {
            if let Some(h) = ring::claim_straight(&*self.ring, &mut self.st, len) {
                return Ok(self.lend(ring::straight_claim(h, len)));
            }
        }
        let claim = self.try_loan_claim(len)?;
        Ok(self.lend(claim))
    }

    /// The claim of [`try_loan`](Self::try_loan) off its straight path.
    #[inline(never)]
    fn try_loan_claim(&mut self, len: usize) -> Result<Claim, TrySendError> {
        if self.st.loan != 0 {
            self.settle_leaked_loan();
        }
        let len = self
            .check_len(len)
            .map_err(|(len, max)| TrySendError::TooLarge { len, max })?;
        self.claim_now(len)?.ok_or(TrySendError::Full)
    }

    /// Runs `f` with this publisher, waking sleeping subscribers once, when
    /// `f` returns (or panics), instead of at each message it sends or
    /// commits. For a burst written in one go — a bridge publishing the
    /// messages of a network batch, a replay — where each wake-up after
    /// the first finds the subscriber woken but not yet running, and is a
    /// wasted system call. Subscribers that poll see every message as soon
    /// as it is committed; only sleeping ones wait for the end of `f`, so
    /// keep `f` to the burst. If the ring fills inside `f`, the owed
    /// wake-up is made at once (the sleepers are what makes room).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-onewake-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-onewake").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// publ.with_one_wakeup(|p| {
    ///     for m in [&b"a"[..], b"b", b"c"] {
    ///         p.send(m)?;
    ///     }
    ///     Ok::<(), memlane::SendError>(())
    /// })?;
    /// assert_eq!(&*sub.recv()?, b"a");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_one_wakeup<R>(&mut self, f: impl FnOnce(&mut Publisher) -> R) -> R {
        /// Ends the quiet stretch, also when `f` panics.
        struct Quiet<'a> {
            publ: &'a mut Publisher,
            outer: u8,
        }
        impl Drop for Quiet<'_> {
            fn drop(&mut self) {
                let p = &mut *self.publ;
                // Nested, the outer stretch makes the wake-up.
                if self.outer == 0 {
                    ring::wake_owed(&*p.ring, &mut p.st);
                    p.st.quiet = 0;
                }
            }
        }
        let outer = self.st.quiet;
        if outer == 0 {
            self.st.quiet = ring::QUIET_ON;
        }
        let q = Quiet { publ: self, outer };
        f(q.publ)
    }

    /// Messages sent by this publisher (loans dropped without commit not
    /// counted).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-psent-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-psent").dir(&dir).create()?;
    /// let mut publ = channel.publisher()?;
    /// publ.send(b"one")?;
    /// publ.send(b"two")?;
    /// assert_eq!(publ.messages_sent(), 2);
    /// # drop((publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn messages_sent(&self) -> u64 {
        self.st.messages
    }
}

/// Hooks of the async layer (`crate::asynk`).
#[cfg(feature = "async")]
impl Publisher {
    /// Whether a claim of `len` bytes could succeed now (asking the
    /// subscribers to report their progress if not): the condition an
    /// async send re-checks after registering as a waiter for space.
    pub(crate) fn async_has_space(&mut self, len: usize) -> bool {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        ring::has_space(&*self.ring, &mut self.st, len)
    }

    /// The ring (its space event is what an async send waits on).
    pub(crate) fn async_ring(&self) -> &Arc<ShmRing> {
        &self.ring
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
/// `DerefMut<Target = [u8]>` and published by [`Loan::commit`] (all of it)
/// or [`Loan::commit_len`] (its first bytes: loan the most you may need,
/// send what you wrote); dropped without commit, it is skipped by
/// subscribers.
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
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-loan-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-loan").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// let mut loan = publ.loan(5)?;
/// loan.copy_from_slice(b"hello");
/// loan.commit()?;
/// drop(publ.loan(3)?); // not committed: skipped
/// let mut loan = publ.loan(100)?;
/// loan[..2].copy_from_slice(b"hi");
/// loan.commit_len(2)?; // the first 2 bytes only
/// assert_eq!(&*sub.recv()?, b"hello");
/// assert_eq!(&*sub.recv()?, b"hi");
/// # drop((sub, publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Loan<'a> {
    publ: &'a mut Publisher,
    /// The claim, of the length loaned.
    claim: Claim,
    /// The length to commit (at most the claim's; see [`Loan::truncate`]).
    len: u32,
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("len", &self.len)
            .field("loaned", &self.claim.len())
            .field("copied", &self.publ.copy)
            .finish()
    }
}

impl<'a> Loan<'a> {
    /// The record's position in the channel's ring: a byte count since the
    /// ring began, unique to this message for the channel's whole life (it
    /// only grows). A subscriber receiving this message sees the same value
    /// in [`Message::position`](crate::Message::position), so a process
    /// that both publishes and subscribes can tell its own messages apart
    /// (as the Zenoh bridge does to avoid echoes).
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-loanpos-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-loanpos").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan(2)?;
    /// loan.copy_from_slice(b"hi");
    /// let mine = loan.position();
    /// loan.commit()?;
    /// assert_eq!(sub.recv()?.position(), mine);
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.claim.pos
    }

    /// Publishes the loaned bytes (copied into the ring first, if the
    /// loan is a private buffer): all of them, or the first
    /// [`truncate`](Self::truncate) kept.
    ///
    /// # Errors
    ///
    /// [`CommitError::Corrupt`] when the channel's file was truncated by
    /// another process (as [`Publisher::send`] reports it): the message may
    /// not reach subscribers, and the channel is unusable. `commit` never
    /// returns [`CommitError::TooLong`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-commit-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-commit").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan(3)?;
    /// loan.copy_from_slice(b"abc");
    /// loan.commit()?;
    /// assert_eq!(&*sub.recv()?, b"abc");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn commit(self) -> Result<(), CommitError> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let (claim, len) = (this.claim, this.len);
        let publ: &mut Publisher = this.publ;
        if publ.copy {
            // SAFETY: the claim reserves record_size(claim.len()) bytes at
            // its ring offset, inside the ring, for this publisher alone,
            // and `len <= claim.len()`.
            unsafe {
                ring::write_payload(
                    &*publ.ring,
                    claim.off(publ.ring.geometry()),
                    &publ.buf.as_bytes()[..len as usize],
                )
            };
        }
        publ.end_loan(claim, len, false);
        Ok(publ.ring.check_truncated()?)
    }

    /// Publishes the first `len` bytes of the loan: [`truncate`](Self::truncate)
    /// then [`commit`](Self::commit). The ring space past them is handed
    /// back as a discarded record (subscribers skip it without reading it).
    ///
    /// # Errors
    ///
    /// * [`CommitError::TooLong`] if `len` exceeds the loan's length (the
    ///   loan is then discarded, nothing is published).
    /// * [`CommitError::Corrupt`] as for [`commit`](Self::commit): the
    ///   channel's file was truncated by another process.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-commitlen-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-commitlen").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan(publ.max_message())?; // room for the largest
    /// let n = {
    ///     let text = b"short";
    ///     loan[..text.len()].copy_from_slice(text);
    ///     text.len()
    /// };
    /// loan.commit_len(n)?;
    /// assert_eq!(&*sub.recv()?, b"short");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit_len(mut self, len: usize) -> Result<(), CommitError> {
        if len > self.len as usize {
            return Err(CommitError::TooLong {
                len,
                loaned: self.len as usize,
            });
        }
        self.truncate(len);
        self.commit()
    }

    /// Shortens the loan to its first `len` bytes (no effect if it is not
    /// longer), as [`Vec::truncate`] does: the slice it derefs to, and what
    /// [`commit`](Self::commit) publishes, end there.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-truncate-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// let channel = memlane::Channel::builder("doc-truncate").dir(&dir).create()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan(10)?;
    /// loan.truncate(4);
    /// assert_eq!(loan.len(), 4);
    /// # drop(loan);
    /// # drop((publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.len = len as u32;
        }
    }

    /// The loaned bytes' address: in the ring, or the private buffer.
    #[inline]
    fn ptr(&self) -> *mut u8 {
        if self.publ.copy {
            return self.publ.buf.as_ptr().cast::<u8>().cast_mut();
        }
        let off = self.claim.off(self.publ.ring.geometry()) + RECORD_HEADER;
        // SAFETY: the claimed record lies inside the ring, so its payload
        // offset is at most the capacity.
        unsafe { self.publ.ring.region().ring_ptr(off) }
    }
}

impl std::ops::Deref for Loan<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let len = self.len as usize;
        if self.publ.copy {
            return &self.publ.buf.as_bytes()[..len];
        }
        // SAFETY: in-place loans exist only when no other user can write
        // the file (`trust.rs`). The claim gives this publisher exclusive
        // use of the payload bytes until commit: no subscriber reads them
        // before the stamp is stored and no other publisher can claim them;
        // `len <= claim.len()`, which was bounded by max_message, and the
        // record fits inside the ring. The bytes are initialized: the file
        // was zero-filled, and bytes an `UninitLoan` exposed are written or
        // zeroed before it ends.
        unsafe { std::slice::from_raw_parts(self.ptr(), len) }
    }
}

impl std::ops::DerefMut for Loan<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len as usize;
        if self.publ.copy {
            return &mut self.publ.buf.as_mut_bytes()[..len];
        }
        // SAFETY: as for `deref`; `&mut self` makes the borrow unique here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), len) }
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        // Not committed: publish it as a discarded record so the ring moves on.
        let (claim, len) = (self.claim, self.len);
        self.publ.end_loan(claim, len, true);
    }
}

/// Ring space reserved by [`Publisher::loan_uninit`], as uninitialized
/// bytes: it derefs to `[MaybeUninit<u8>]`, and becomes a [`Loan`] (to
/// commit) by [`assume_init`](Self::assume_init) or
/// [`assume_init_len`](Self::assume_init_len). In place or a private
/// buffer, as a [`Loan`] is. Dropped (or leaked) without becoming a
/// `Loan`, it is skipped by subscribers, and its bytes are zeroed first:
/// writing `MaybeUninit::uninit()` through it de-initializes them, and a
/// later loan of the same bytes hands them out as `u8`.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-uninitloan-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let channel = memlane::Channel::builder("doc-uninitloan").dir(&dir).create()?;
/// let mut sub = channel.subscriber()?;
/// let mut publ = channel.publisher()?;
/// let mut loan = publ.loan_uninit(3)?;
/// loan.iter_mut().for_each(|b| {
///     b.write(7);
/// });
/// // SAFETY: every byte was written just above.
/// unsafe { loan.assume_init() }.commit()?;
/// assert_eq!(&*sub.recv()?, [7, 7, 7]);
/// # drop((sub, publ, channel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct UninitLoan<'a> {
    /// The loan; its bytes are exposed as `MaybeUninit` only.
    loan: Loan<'a>,
}

impl std::fmt::Debug for UninitLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UninitLoan")
            .field("len", &self.loan.len)
            .field("copied", &self.loan.publ.copy)
            .finish()
    }
}

impl<'a> UninitLoan<'a> {
    /// The loan, with every byte taken as initialized.
    ///
    /// # Safety
    ///
    /// Every byte of the loan has been initialized (written) since
    /// [`Publisher::loan_uninit`] made it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-assumeinit-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::mem::MaybeUninit;
    /// let channel = memlane::Channel::builder("doc-assumeinit").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan_uninit(2)?;
    /// loan.copy_from_slice(&[MaybeUninit::new(b'o'), MaybeUninit::new(b'k')]);
    /// // SAFETY: both bytes were written just above.
    /// unsafe { loan.assume_init() }.commit()?;
    /// assert_eq!(&*sub.recv()?, b"ok");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn assume_init(self) -> Loan<'a> {
        self.into_loan()
    }

    /// The loan's first `len` bytes as a [`Loan`] (as if
    /// [truncated](Loan::truncate) to `len`; no effect if it is not
    /// longer), taken as initialized; the bytes after them are zeroed.
    ///
    /// # Safety
    ///
    /// The first `len` bytes of the loan (all of them, if it is shorter)
    /// have been initialized (written) since [`Publisher::loan_uninit`]
    /// made it.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-assumeinitlen-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::mem::MaybeUninit;
    /// let channel = memlane::Channel::builder("doc-assumeinitlen").dir(&dir).create()?;
    /// let mut sub = channel.subscriber()?;
    /// let mut publ = channel.publisher()?;
    /// let mut loan = publ.loan_uninit(64)?;
    /// loan[0].write(b'!');
    /// // SAFETY: the first byte was written just above.
    /// let loan = unsafe { loan.assume_init_len(1) };
    /// assert_eq!(loan.len(), 1);
    /// loan.commit()?;
    /// assert_eq!(&*sub.recv()?, b"!");
    /// # drop((sub, publ, channel));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn assume_init_len(self, len: usize) -> Loan<'a> {
        let loaned = self.loan.len as usize;
        let keep = len.min(loaned);
        let claim = self.loan.claim;
        let mut loan = self.into_loan();
        // The caller vouches for the first `keep` bytes; the rest is
        // zeroed before the loan exposes anything.
        loan.publ.zero_loaned(claim, keep, loaned);
        loan.truncate(keep);
        loan
    }

    /// The inner loan, no longer marked uninitialized. The caller makes
    /// sure its bytes are initialized before they are exposed (the
    /// `assume_init` callers vouch for them, or zero them).
    fn into_loan(self) -> Loan<'a> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again (ManuallyDrop), so
        // the loan moved out of it is owned once.
        let loan = unsafe { std::ptr::read(&this.loan) };
        loan.publ.st.loan = ring::LOAN_OUT;
        loan
    }
}

impl std::ops::Deref for UninitLoan<'_> {
    type Target = [std::mem::MaybeUninit<u8>];
    fn deref(&self) -> &[std::mem::MaybeUninit<u8>] {
        // SAFETY: the loan's bytes (see `Loan::deref`), viewed as
        // `MaybeUninit<u8>`, which has the layout of `u8` and asks nothing
        // of its contents.
        unsafe {
            std::slice::from_raw_parts(self.loan.ptr().cast_const().cast(), self.loan.len as usize)
        }
    }
}

impl std::ops::DerefMut for UninitLoan<'_> {
    fn deref_mut(&mut self) -> &mut [std::mem::MaybeUninit<u8>] {
        // SAFETY: as for `deref`; `&mut self` makes the borrow unique. What
        // is written through it may de-initialize bytes: they are zeroed
        // before a `Loan` exposes them as `u8` (`assume_init_len`, `Drop`,
        // `Publisher::settle_leaked_loan`) unless the caller vouches for them.
        unsafe { std::slice::from_raw_parts_mut(self.loan.ptr().cast(), self.loan.len as usize) }
    }
}

impl Drop for UninitLoan<'_> {
    fn drop(&mut self) {
        // Discarded: zero what may have been de-initialized (the inner
        // loan's drop then discards the record).
        let (claim, len) = (self.loan.claim, self.loan.len as usize);
        self.loan.publ.zero_loaned(claim, 0, len);
        self.loan.publ.st.loan = ring::LOAN_OUT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `with_one_wakeup` holds wake-ups back for its stretch only: nested
    /// stretches leave it to the outer one, and a panic inside ends it.
    #[test]
    fn quiet_stretches_end_also_on_panic() {
        let dir = std::env::temp_dir().join(format!(
            "memlane-quiet-{}-{}",
            std::process::id(),
            crate::name::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let channel = crate::Channel::builder("quiet").dir(&dir).create().unwrap();
        let mut sub = channel.subscriber().unwrap();
        let mut publ = channel.publisher().unwrap();
        assert_eq!(publ.st.quiet, 0);
        publ.with_one_wakeup(|p| {
            p.send(b"1").unwrap();
            assert_eq!(p.st.quiet, ring::QUIET_OWED);
            p.with_one_wakeup(|p| p.send(b"2").unwrap());
            assert_eq!(
                p.st.quiet,
                ring::QUIET_OWED,
                "the inner stretch leaves it owed"
            );
        });
        assert_eq!(publ.st.quiet, 0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            publ.with_one_wakeup(|p| {
                p.send(b"3").unwrap();
                panic!("inside");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(publ.st.quiet, 0, "a panic ends the stretch");
        for want in [&b"1"[..], b"2", b"3"] {
            assert_eq!(&*sub.try_recv().unwrap(), want);
        }
        drop((sub, publ, channel));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
