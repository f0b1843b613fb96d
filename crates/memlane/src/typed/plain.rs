//! Plain values in place: the typed publisher's loans and the typed
//! subscriber's `&T`, over the byte API's loans and messages.
//!
//! No `unsafe` here: every view of bytes as a `T` or `[T]` goes through
//! zerocopy's checked conversions, which check the length and the
//! alignment. The ring gives each payload a 16-byte aligned address, so in
//! place they succeed for every `T` the typed API accepts. A copied
//! channel's (`Channel::copies_messages`) loans are a private buffer of
//! the publisher's, 16-byte aligned too; its received messages are a
//! private buffer of the subscriber's, a plain heap allocation whose
//! alignment Rust does not promise: when it is not aligned for `T`, the
//! value goes through a 16-byte aligned scratch buffer instead (a copy,
//! never a misaligned reference).

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use zerocopy::{ConvertError, FromBytes, Immutable, IntoBytes, KnownLayout};

use super::error::TypedRecvError;
use super::{MessageType, Plain};
use crate::channel::{Loan, Message, Publisher, Subscriber};
use crate::error::{
    CommitError, Corrupt, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};

/// 16 bytes aligned to 16: the unit of the scratch buffers and of a
/// publisher's private loan buffer.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(16))]
pub(crate) struct Chunk([u8; 16]);

impl Chunk {
    pub(crate) const ZERO: Chunk = Chunk([0; 16]);
}

/// The first `len` bytes of `scratch`, grown as needed: 16-byte aligned.
fn scratch_bytes(scratch: &mut Vec<Chunk>, len: usize) -> &mut [u8] {
    let chunks = len.div_ceil(16);
    if scratch.len() < chunks {
        scratch.resize(chunks, Chunk::ZERO);
    }
    &mut scratch.as_mut_bytes()[..len]
}

/// `bytes` as a `T` (or `[E]`): they were checked when the loan or
/// message was made (length and alignment), and neither changes after.
fn view<T: ?Sized + FromBytes + KnownLayout + Immutable>(bytes: &[u8]) -> &T {
    match T::ref_from_bytes(bytes) {
        Ok(t) => t,
        Err(_) => unreachable!("length and alignment were checked when the view was made"),
    }
}

/// As [`view`], mutably.
fn view_mut<T: ?Sized + FromBytes + IntoBytes + KnownLayout>(bytes: &mut [u8]) -> &mut T {
    match T::mut_from_bytes(bytes) {
        Ok(t) => t,
        Err(_) => unreachable!("length and alignment were checked when the view was made"),
    }
}

/// What a view of `bytes` as a `T` would hit.
enum Fit {
    Ok,
    Misaligned,
    WrongSize,
}

fn fit<T: ?Sized + FromBytes + KnownLayout + Immutable>(bytes: &[u8]) -> Fit {
    match T::ref_from_bytes(bytes) {
        Ok(_) => Fit::Ok,
        Err(ConvertError::Alignment(_)) => Fit::Misaligned,
        Err(ConvertError::Size(_)) => Fit::WrongSize,
        Err(ConvertError::Validity(v)) => match v {},
    }
}

/// Sends `T` values on a typed channel; see
/// [`TypedChannel::publisher`](crate::TypedChannel::publisher). Loans are
/// ring space filled in place ([`loan`](Self::loan),
/// [`loan_slice`](Self::loan_slice)); [`send`](Self::send) copies a value
/// you already have.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-tp-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// // The builder makes a byte channel; `typed` views it as a typed one.
/// let ch = memlane::Channel::builder("doc-tp").dir(&dir).message_type::<[u32; 2]>()
///     .create()?
///     .typed::<[u32; 2]>()?;
/// let mut sub = ch.subscriber()?;
/// let mut publ = ch.publisher()?;
/// let mut loan = publ.loan_slice(2)?; // two values, in place
/// loan[0] = [1, 2];
/// loan[1] = [3, 4];
/// loan.commit()?;
/// assert_eq!(&*sub.recv_slice()?, &[[1, 2], [3, 4]]);
/// # drop((sub, publ, ch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedPublisher<T> {
    inner: Publisher,
    _t: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for TypedPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedPublisher")
            .field("type", &std::any::type_name::<T>())
            .field("publisher", &self.inner)
            .finish()
    }
}

impl<T: Plain> TypedPublisher<T> {
    pub(super) fn new(inner: Publisher) -> Self {
        TypedPublisher {
            inner,
            _t: PhantomData,
        }
    }

    /// Sends a copy of `value` (waits while the ring is full).
    ///
    /// # Errors
    ///
    /// As for [`Publisher::send`].
    #[inline]
    pub fn send(&mut self, value: &T) -> Result<(), SendError> {
        self.inner.send(value.as_bytes())
    }

    /// Sends a copy of `value`, or fails at once if the ring is full.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::try_send`].
    #[inline]
    pub fn try_send(&mut self, value: &T) -> Result<(), TrySendError> {
        self.inner.try_send(value.as_bytes())
    }

    /// Sends a copy of `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::send_timeout`].
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends a copy of `values` as one message (any number of them, up to
    /// the channel's maximum message size).
    ///
    /// # Errors
    ///
    /// As for [`Publisher::send`]: [`SendError::TooLarge`] if the values
    /// take more bytes than the maximum message size.
    pub fn send_slice(&mut self, values: &[T]) -> Result<(), SendError> {
        self.inner.send(values.as_bytes())
    }

    /// Loans ring space for one `T` (waiting while the ring is full), to
    /// be filled in place and [`commit`](TypedLoan::commit)ted; dropped
    /// without commit, it is skipped by subscribers. Its initial value is
    /// unspecified (whatever the ring held: a valid `T`, since any bytes
    /// are one): set every field.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::loan`].
    #[inline(always)]
    pub fn loan(&mut self) -> Result<TypedLoan<'_, T>, SendError> {
        let loan = self.inner.loan(std::mem::size_of::<T>())?;
        Ok(TypedLoan::new(loan)?)
    }

    /// As [`loan`](Self::loan), but fails at once if the ring is full.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::try_loan`].
    #[inline(always)]
    pub fn try_loan(&mut self) -> Result<TypedLoan<'_, T>, TrySendError> {
        let loan = self.inner.try_loan(std::mem::size_of::<T>())?;
        Ok(TypedLoan::new(loan)?)
    }

    /// Loans ring space for `n` values, one message, to fill in place.
    ///
    /// # Errors
    ///
    /// As for [`Publisher::loan`]: [`SendError::TooLarge`] if `n` values
    /// take more than the maximum message size.
    pub fn loan_slice(&mut self, n: usize) -> Result<TypedLoan<'_, [T]>, SendError> {
        let len = n.saturating_mul(std::mem::size_of::<T>());
        let loan = self.inner.loan(len)?;
        Ok(TypedLoan::new(loan)?)
    }

    /// The byte publisher underneath.
    pub fn publisher(&mut self) -> &mut Publisher {
        &mut self.inner
    }
}

/// Ring space for a `T` (or `[T]`) loaned by a [`TypedPublisher`]: fill
/// it through `DerefMut`, publish it with [`commit`](Self::commit);
/// dropped without commit, subscribers skip it. In place in the ring when
/// the channel is read in place (see [`Loan`]).
pub struct TypedLoan<'a, T: ?Sized> {
    /// The loan, whose bytes were checked to be a `T` (length and
    /// alignment) when it was made.
    loan: Loan<'a>,
    _t: PhantomData<&'a mut T>,
}

impl<T: ?Sized> std::fmt::Debug for TypedLoan<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedLoan")
            .field("type", &std::any::type_name::<T>())
            .field("loan", &self.loan)
            .finish()
    }
}

impl<'a, T: ?Sized + FromBytes + IntoBytes + KnownLayout + Immutable> TypedLoan<'a, T> {
    /// Checks that the loan's bytes are a `T`: its length is a whole
    /// number of values by construction, and the ring and the publisher's
    /// private buffer are both 16-byte aligned (see `MAX_ALIGN`), so this
    /// fails only if that stops being true; it is then an error (the loan
    /// is dropped, discarded), never a misaligned reference.
    #[inline(always)]
    fn new(loan: Loan<'a>) -> Result<Self, Corrupt> {
        match fit::<T>(&loan) {
            Fit::Ok => Ok(TypedLoan {
                loan,
                _t: PhantomData,
            }),
            Fit::Misaligned | Fit::WrongSize => Err(loan_misfit::<T>(loan.len())),
        }
    }

    /// Publishes the value.
    ///
    /// # Errors
    ///
    /// As for [`Loan::commit`].
    #[inline(always)]
    pub fn commit(self) -> Result<(), CommitError> {
        self.loan.commit()
    }
}

#[cold]
fn loan_misfit<T: ?Sized>(len: usize) -> Corrupt {
    Corrupt::new(format!(
        "a loan of {len} bytes is not aligned or sized for `{}` (a memlane bug: please report it)",
        std::any::type_name::<T>()
    ))
}

impl<T: ?Sized + FromBytes + IntoBytes + KnownLayout + Immutable> Deref for TypedLoan<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        view(&self.loan)
    }
}

impl<T: ?Sized + FromBytes + IntoBytes + KnownLayout + Immutable> DerefMut for TypedLoan<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        view_mut(&mut self.loan)
    }
}

/// Receives `T` values on a typed channel, in place; see
/// [`TypedChannel::subscriber`](crate::TypedChannel::subscriber).
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-ts-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// // The builder makes a byte channel; `typed` views it as a typed one.
/// let ch = memlane::Channel::builder("doc-ts").dir(&dir).message_type::<u16>()
///     .create()?
///     .typed::<u16>()?;
/// let mut sub = ch.subscriber()?;
/// ch.publisher()?.send(&7)?;
/// let v = sub.recv()?; // a `&u16` in the ring (Deref)
/// assert_eq!(*v, 7);
/// # drop(v);
/// # drop((sub, ch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedSubscriber<T> {
    inner: Subscriber,
    /// Messages whose bytes are not aligned for `T` (copied channels only).
    scratch: Vec<Chunk>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedSubscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSubscriber")
            .field("type", &std::any::type_name::<T>())
            .field("subscriber", &self.inner)
            .finish()
    }
}

macro_rules! typed_recv {
    ($(#[$doc:meta])* $name:ident, $t:ty, $inner:ident ( $($arg:ident: $argty:ty),* ), $err:ty) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(&mut self $(, $arg: $argty)*) -> Result<Received<'_, $t>, TypedRecvError<$err>> {
            let msg = self.inner.$inner($($arg),*)?;
            Received::new(msg, &mut self.scratch)
        }
    };
}

impl<T: Plain> TypedSubscriber<T> {
    pub(super) fn new(inner: Subscriber) -> Self {
        TypedSubscriber {
            inner,
            scratch: Vec::new(),
            _t: PhantomData,
        }
    }

    typed_recv!(
        /// Receives one value, waiting for it (see [`Subscriber::recv`]).
        ///
        /// # Errors
        ///
        /// [`TypedRecvError::Recv`] as for [`Subscriber::recv`];
        /// [`TypedRecvError::WrongSize`] for a message that is not one `T`
        /// (it is skipped).
        recv, T, recv(), RecvError
    );
    typed_recv!(
        /// Receives one value if one is waiting (see [`Subscriber::try_recv`]).
        ///
        /// # Errors
        ///
        /// As for [`recv`](Self::recv), with [`TryRecvError`].
        try_recv, T, try_recv(), TryRecvError
    );
    typed_recv!(
        /// Receives one value, waiting at most `timeout` (see
        /// [`Subscriber::recv_timeout`]).
        ///
        /// # Errors
        ///
        /// As for [`recv`](Self::recv), with [`RecvTimeoutError`].
        recv_timeout, T, recv_timeout(timeout: Duration), RecvTimeoutError
    );
    typed_recv!(
        /// Receives one message as a slice of values, waiting for it.
        ///
        /// # Errors
        ///
        /// As for [`recv`](Self::recv); [`TypedRecvError::WrongSize`] for a
        /// message that is not a whole number of `T`.
        recv_slice, [T], recv(), RecvError
    );
    typed_recv!(
        /// Receives one message as a slice of values if one is waiting.
        ///
        /// # Errors
        ///
        /// As for [`recv_slice`](Self::recv_slice), with [`TryRecvError`].
        try_recv_slice, [T], try_recv(), TryRecvError
    );
    typed_recv!(
        /// Receives one message as a slice of values, waiting at most `timeout`.
        ///
        /// # Errors
        ///
        /// As for [`recv_slice`](Self::recv_slice), with [`RecvTimeoutError`].
        recv_slice_timeout, [T], recv_timeout(timeout: Duration), RecvTimeoutError
    );

    /// A blocking lending iterator of values, in place: each `next`
    /// receives one value as [`recv`](Self::recv) does (see
    /// [`Iter`](crate::Iter) for why it is not a std `Iterator`). It ends
    /// (`None`) once every publisher has left, or after yielding a corrupt
    /// channel's error; a message of the wrong size is yielded as an error
    /// and the iteration goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// # let tmp = tempfile::Builder::new().prefix("memlane-doc-titer-").tempdir()?;
    /// # let dir = tmp.path().to_path_buf();
    /// use std::time::Duration;
    /// // The builder makes a byte channel; `typed` views it as a typed one.
    /// let ch = memlane::Channel::builder("doc-titer").dir(&dir).message_type::<u32>()
    ///     .create()?
    ///     .typed::<u32>()?;
    /// let mut sub = ch.subscriber()?;
    /// sub.subscriber().set_disconnect_grace(Some(Duration::from_millis(20)));
    /// let mut publ = ch.publisher()?;
    /// publ.send(&1)?;
    /// publ.send(&2)?;
    /// drop(publ);
    /// let (mut it, mut sum) = (sub.iter(), 0);
    /// while let Some(v) = it.next() {
    ///     sum += *v?;
    /// }
    /// assert_eq!(sum, 3);
    /// # drop((sub, ch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> TypedIter<'_, T> {
        TypedIter {
            sub: self,
            done: false,
        }
    }

    /// The byte subscriber underneath (for [`Subscriber::set_spin`],
    /// [`Subscriber::set_disconnect_grace`], [`Subscriber::lag`]...).
    pub fn subscriber(&mut self) -> &mut Subscriber {
        &mut self.inner
    }
}

/// A blocking lending iterator of `T` values; see [`TypedSubscriber::iter`].
pub struct TypedIter<'a, T> {
    sub: &'a mut TypedSubscriber<T>,
    /// A corrupt channel was reported, or every publisher has left.
    done: bool,
}

impl<T> std::fmt::Debug for TypedIter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedIter")
            .field("type", &std::any::type_name::<T>())
            .field("done", &self.done)
            .finish()
    }
}

impl<T: Plain> TypedIter<'_, T> {
    /// Waits for the next value; `None` once every publisher has left.
    #[allow(clippy::should_implement_trait)] // a lending iterator: see `Iter`
    pub fn next(&mut self) -> Option<Result<Received<'_, T>, TypedRecvError<Corrupt>>> {
        if self.done {
            return None;
        }
        match self.sub.recv() {
            Ok(v) => Some(Ok(v)),
            Err(TypedRecvError::Recv(RecvError::Corrupt(c))) => {
                self.done = true;
                Some(Err(TypedRecvError::Recv(c)))
            }
            Err(TypedRecvError::WrongSize {
                type_name,
                len,
                size,
                slice,
            }) => Some(Err(TypedRecvError::WrongSize {
                type_name,
                len,
                size,
                slice,
            })),
            Err(_) => {
                self.done = true;
                None
            }
        }
    }
}

/// A received value (`&T` or `&[T]` through `Deref`), in place in the
/// ring while it lives; dropping it releases the ring space, as for
/// [`Message`].
pub struct Received<'a, T: ?Sized> {
    /// The message, whose bytes were checked to be a `T` (or, when
    /// `copied`, a whole number of bytes of one).
    msg: Message<'a>,
    /// The message's bytes were not aligned for `T` (copied channels
    /// only): a copy of them at the start of the subscriber's aligned
    /// scratch buffer.
    copied: Option<&'a Vec<Chunk>>,
    _t: PhantomData<&'a T>,
}

impl<T: ?Sized> std::fmt::Debug for Received<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("type", &std::any::type_name::<T>())
            .field("copied", &self.copied.is_some())
            .finish()
    }
}

/// The element type's name and size (for `WrongSize`).
trait Element {
    fn name_and_size() -> (String, usize, bool);
}
impl<T: MessageType> Element for T {
    fn name_and_size() -> (String, usize, bool) {
        (T::type_name().into_owned(), std::mem::size_of::<T>(), false)
    }
}
impl<T: MessageType> Element for [T] {
    fn name_and_size() -> (String, usize, bool) {
        (T::type_name().into_owned(), std::mem::size_of::<T>(), true)
    }
}

impl<'a, T: ?Sized + FromBytes + KnownLayout + Immutable> Received<'a, T> {
    #[inline(always)]
    #[allow(private_bounds)]
    fn new<E>(msg: Message<'a>, scratch: &'a mut Vec<Chunk>) -> Result<Self, TypedRecvError<E>>
    where
        T: Element,
    {
        let copied = match fit::<T>(&msg) {
            Fit::Ok => None,
            Fit::Misaligned => Some(copy_out(scratch, &msg)),
            Fit::WrongSize => return Err(wrong_size::<T, E>(msg.len())),
        };
        Ok(Received {
            msg,
            copied,
            _t: PhantomData,
        })
    }
}

/// A copy of `bytes` at the start of the aligned `scratch`.
#[cold]
#[inline(never)]
fn copy_out<'a>(scratch: &'a mut Vec<Chunk>, bytes: &[u8]) -> &'a Vec<Chunk> {
    scratch_bytes(scratch, bytes.len()).copy_from_slice(bytes);
    scratch
}

#[cold]
#[inline(never)]
fn wrong_size<T: ?Sized + Element, E>(len: usize) -> TypedRecvError<E> {
    let (type_name, size, slice) = T::name_and_size();
    TypedRecvError::WrongSize {
        type_name,
        len,
        size,
        slice,
    }
}

impl<T: ?Sized + FromBytes + KnownLayout + Immutable> Deref for Received<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self.copied {
            None => view(&self.msg),
            Some(s) => view(&s.as_bytes()[..self.msg.len()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scratch buffer is aligned for anything the typed API takes,
    /// and `fit` tells a misaligned view from a wrongly sized one.
    #[test]
    fn scratch_is_aligned_and_fit_tells_the_faults_apart() {
        let mut scratch = Vec::new();
        let s = scratch_bytes(&mut scratch, 40);
        assert_eq!(s.len(), 40);
        assert_eq!(s.as_ptr() as usize % 16, 0);
        assert!(matches!(fit::<[u64; 5]>(s), Fit::Ok));
        assert!(matches!(fit::<[u64; 4]>(s), Fit::WrongSize));
        assert!(matches!(fit::<[u64]>(&s[..36]), Fit::WrongSize));
        assert!(matches!(fit::<u64>(&s[1..9]), Fit::Misaligned));
        assert!(matches!(fit::<[u64]>(&s[8..40]), Fit::Ok));
    }
}
