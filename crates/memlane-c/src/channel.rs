//! Channels: publishers and subscribers exchanging messages through a
//! ring, by copy or in place (loans, in-place reads).

use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

use memlane::{
    Channel, Lagged, Loan, Message, Publisher, RecvError, RecvTimeoutError, Subscriber,
    TryRecvError,
};

use crate::ffi::{self, Fail, Timeout};
use crate::memlane_status::{self, *};

/// A named channel (opaque). Made by [`memlane_channel_create`] or
/// [`memlane_channel_open`], freed by [`memlane_channel_close`]. Its
/// publishers and subscribers keep working after it is closed.
pub struct memlane_channel {
    channel: Channel,
}

/// A channel's publisher (opaque), holding one publisher slot. Made by
/// [`memlane_publisher_new`], freed by [`memlane_publisher_close`].
pub struct memlane_publisher {
    /// The outstanding loan, if any. It borrows `*publ`: declared (so
    /// dropped) before anything frees `publ`, and while it is `Some`
    /// nothing else makes a reference to `*publ`.
    loan: Option<Loan<'static>>,
    /// The publisher, owned (from `Box::into_raw`); freed in `Drop`.
    publ: NonNull<Publisher>,
}

impl memlane_publisher {
    fn new(publ: Publisher) -> memlane_publisher {
        memlane_publisher {
            loan: None,
            publ: NonNull::from(Box::leak(Box::new(publ))),
        }
    }

    /// The publisher, when no loan borrows it.
    fn publisher(&mut self) -> Result<&mut Publisher, Fail> {
        if self.loan.is_some() {
            return Err(Fail::new(
                MEMLANE_BUSY,
                "a loan of this publisher is outstanding: commit it (memlane_publisher_commit) or discard it (memlane_publisher_discard) first",
            ));
        }
        // SAFETY: `publ` is a live Box allocation owned by this handle, and
        // no loan borrows it (checked above); `&mut self` makes this the
        // only reference for its lifetime.
        Ok(unsafe { self.publ.as_mut() })
    }
}

impl Drop for memlane_publisher {
    fn drop(&mut self) {
        // The loan first (not committed: subscribers skip it), as it
        // borrows the publisher.
        drop(self.loan.take());
        // SAFETY: `publ` came from Box::leak in `new` and is freed only
        // here; nothing borrows it any more (the loan is gone).
        drop(unsafe { Box::from_raw(self.publ.as_ptr()) });
    }
}

/// A channel's subscriber (opaque), holding one subscriber slot. Made by
/// [`memlane_subscriber_new`], freed by [`memlane_subscriber_close`].
pub struct memlane_subscriber {
    /// The message received but not released yet, if any. It borrows
    /// `*sub`: declared (so dropped) before anything frees `sub`, and while
    /// it is `Some` nothing else makes a reference to `*sub`.
    held: Option<Message<'static>>,
    /// The subscriber, owned (from `Box::into_raw`); freed in `Drop`.
    sub: NonNull<Subscriber>,
    /// A lossy subscriber's losses so far: messages and bytes (the sums
    /// of the laps reported as `MEMLANE_LAGGED`).
    lost: (u64, u64),
}

impl memlane_subscriber {
    fn new(sub: Subscriber) -> memlane_subscriber {
        memlane_subscriber {
            held: None,
            sub: NonNull::from(Box::leak(Box::new(sub))),
            lost: (0, 0),
        }
    }

    /// The held message, receiving one first if none is held.
    fn take(&mut self, timeout_ms: u64) -> Result<&Message<'static>, Fail> {
        if self.held.is_none() {
            // SAFETY: `sub` is a live Box allocation owned by this handle,
            // freed only in Drop after `held`; no message borrows it (held
            // is None), and the message made from this reference is the
            // only borrow of it until `held` is cleared. The 'static is
            // the lifetime extension `held`'s field order makes sound.
            let sub: &'static mut Subscriber = unsafe { &mut *self.sub.as_ptr() };
            let msg = match Timeout::from_ms(timeout_ms) {
                Timeout::Poll => Subscriber::try_recv(sub).map_err(|e| match e {
                    TryRecvError::Lagged(lag) => self.lagged(&lag),
                    e => e.into(),
                })?,
                Timeout::Forever => Subscriber::recv(sub).map_err(|e| match e {
                    RecvError::Lagged(lag) => self.lagged(&lag),
                    e => e.into(),
                })?,
                Timeout::For(d) => Subscriber::recv_timeout(sub, d).map_err(|e| match e {
                    RecvTimeoutError::Lagged(lag) => self.lagged(&lag),
                    e => e.into(),
                })?,
            };
            self.held = Some(msg);
        }
        Ok(self.held.as_ref().expect("set just above"))
    }
}

impl memlane_subscriber {
    /// A lossy subscriber was lapped: counts the loss, and the failure
    /// that reports it.
    fn lagged(&mut self, lag: &Lagged) -> Fail {
        self.lost.0 = self.lost.0.saturating_add(lag.messages());
        self.lost.1 = self.lost.1.saturating_add(lag.bytes());
        Fail::new(MEMLANE_LAGGED, lag.to_string())
    }
}

impl Drop for memlane_subscriber {
    fn drop(&mut self) {
        drop(self.held.take());
        // SAFETY: `sub` came from Box::leak in `new` and is freed only
        // here; nothing borrows it any more (the message is gone).
        drop(unsafe { Box::from_raw(self.sub.as_ptr()) });
    }
}

/// Creates the channel `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`), owner only. Each setting is 0 for its default: `capacity`
/// (ring bytes, a power of two, default 1 MiB), `max_message` (default
/// 64 KiB), `max_publishers` and `max_subscribers` (default 8 each).
///
/// **Ownership:** `dir` and `name` are borrowed for the call. The handle
/// written to `*out` is yours: free it with [`memlane_channel_close`]. On
/// failure `*out` is set to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`,
/// `MEMLANE_INVALID_ARGUMENT` (a setting out of range),
/// `MEMLANE_ALREADY_EXISTS`, `MEMLANE_NOT_FOUND` (no such `dir`),
/// `MEMLANE_PERMISSION_DENIED`, `MEMLANE_IO`.
///
/// # Safety
///
/// `name`, and `dir` unless NULL, are NUL-terminated strings; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_channel_create(
    dir: *const c_char,
    name: *const c_char,
    capacity: u64,
    max_message: usize,
    max_publishers: u32,
    max_subscribers: u32,
    out: *mut *mut memlane_channel,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut builder = Channel::builder(name);
        if capacity != 0 {
            builder = builder.capacity(capacity);
        }
        if max_message != 0 {
            builder = builder.max_message(max_message);
        }
        if max_publishers != 0 {
            builder = builder.max_publishers(max_publishers);
        }
        if max_subscribers != 0 {
            builder = builder.max_subscribers(max_subscribers);
        }
        if let Some(dir) = dir {
            builder = builder.dir(dir);
        }
        Ok(memlane_channel {
            channel: builder.create()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Opens the channel `name` in `dir` (NULL: `$MEMLANE_DIR`, else
/// `/dev/shm`).
///
/// **Ownership:** as for [`memlane_channel_create`].
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_NAME`, `MEMLANE_NOT_FOUND`,
/// `MEMLANE_WRONG_KIND`, `MEMLANE_PERMISSION_DENIED`,
/// `MEMLANE_INCOMPATIBLE`, `MEMLANE_BUSY`, `MEMLANE_CORRUPT`, `MEMLANE_IO`.
///
/// # Safety
///
/// As for [`memlane_channel_create`].
#[no_mangle]
pub unsafe extern "C" fn memlane_channel_open(
    dir: *const c_char,
    name: *const c_char,
    out: *mut *mut memlane_channel,
) -> memlane_status {
    let make = || {
        // SAFETY: NUL-terminated strings or NULL, by the contract.
        let dir = unsafe { ffi::opt_path(dir, "dir") }?;
        // SAFETY: as above.
        let name = unsafe { ffi::str_arg(name, "name") }?;
        let mut options = Channel::open_options(name);
        if let Some(dir) = dir {
            options = options.dir(dir);
        }
        Ok(memlane_channel {
            channel: options.open()?,
        })
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// The channel's largest message in bytes (`*max_message`) and whether
/// receives and loans copy instead of working in place (`*copies`: 1 when
/// other users can write the channel's file, 0 for the default owner-only
/// channel); either out-parameter may be NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER` (`channel` NULL).
///
/// # Safety
///
/// `channel` is NULL or a live handle; the outputs are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_channel_info(
    channel: *mut memlane_channel,
    max_message: *mut usize,
    copies: *mut c_int,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let channel = unsafe { ffi::handle(channel, "channel") }?;
        // SAFETY: NULL or writable, by the contract.
        unsafe {
            ffi::put_opt(max_message, channel.channel.max_message());
            ffi::put_opt(copies, c_int::from(channel.channel.copies_messages()));
        }
        Ok(())
    })
}

/// Closes the channel handle; NULL is a no-op. Its publishers and
/// subscribers stay usable; the name stays until `memlane_remove`.
///
/// # Safety
///
/// `channel` is NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_channel_close(channel: *mut memlane_channel) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(channel) }
}

/// Joins the channel as a publisher.
///
/// **Ownership:** the handle written to `*out` is yours: free it with
/// [`memlane_publisher_close`] (which leaves the channel). It does not
/// borrow `channel`, which may be closed first. On failure `*out` is set
/// to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_NO_SLOT` (the channel's publisher slots
/// are all taken), `MEMLANE_CORRUPT`, `MEMLANE_BUSY`, `MEMLANE_IO`.
///
/// # Safety
///
/// `channel` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_new(
    channel: *mut memlane_channel,
    out: *mut *mut memlane_publisher,
) -> memlane_status {
    let make = || {
        // SAFETY: a live handle or NULL, by the contract.
        let channel = unsafe { ffi::handle(channel, "channel") }?;
        Ok(memlane_publisher::new(channel.channel.publisher()?))
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Sends the `len` bytes at `data` as one message (copied into the ring),
/// waiting at most `timeout_ms` for room while the ring is full (`0`: fail
/// at once, `MEMLANE_FOREVER`: no limit).
///
/// # Errors
///
/// `MEMLANE_TIMEOUT` (still full), `MEMLANE_TOO_LARGE` (longer than the
/// channel's `max_message`), `MEMLANE_BUSY` (a loan is outstanding),
/// `MEMLANE_NULL_POINTER`, `MEMLANE_CORRUPT`.
///
/// # Safety
///
/// `publisher` is NULL or a live handle; `data` is NULL or has `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_send(
    publisher: *mut memlane_publisher,
    data: *const u8,
    len: usize,
    timeout_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let publisher = unsafe { ffi::handle(publisher, "publisher") }?.publisher()?;
        // SAFETY: `len` readable bytes or NULL, by the contract.
        let data = unsafe { ffi::bytes_arg(data, len, "data") }?;
        match Timeout::from_ms(timeout_ms) {
            Timeout::Poll => publisher.try_send(data)?,
            Timeout::Forever => publisher.send(data)?,
            Timeout::For(d) => publisher.send_timeout(data, d)?,
        }
        Ok(())
    })
}

/// Loans `len` bytes of ring space to fill in place (zero-copy; a private
/// buffer when the channel copies): `*data` gets its address. Publish it
/// with [`memlane_publisher_commit`], or give it up with
/// [`memlane_publisher_discard`]. With `wait` 0, fails at once when the
/// ring is full; otherwise waits for room.
///
/// **Ownership and lifetime:** the `len` bytes at `*data` belong to the
/// library; write them until the commit, discard or close of this
/// publisher, and not after. Never free them. Subscribers see nothing
/// until the commit.
///
/// # Errors
///
/// `MEMLANE_TIMEOUT` (`wait` 0 and the ring full), `MEMLANE_TOO_LARGE`,
/// `MEMLANE_BUSY` (a loan is already outstanding),
/// `MEMLANE_NULL_POINTER`, `MEMLANE_CORRUPT`.
///
/// # Safety
///
/// `publisher` is NULL or a live handle; `data` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_loan(
    publisher: *mut memlane_publisher,
    len: usize,
    wait: c_int,
    data: *mut *mut u8,
) -> memlane_status {
    ffi::guard(|| {
        let data = ffi::out_arg(data, "data")?;
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(publisher, "publisher") }?;
        handle.publisher()?;
        // SAFETY: `publ` is a live Box allocation owned by the handle,
        // freed only in Drop after `loan`; no loan borrows it (checked by
        // `publisher()` above), and the loan made from this reference is
        // the only borrow of it until `loan` is cleared.
        let publ: &'static mut Publisher = unsafe { &mut *handle.publ.as_ptr() };
        let mut loan = if wait == 0 {
            Publisher::try_loan(publ, len)?
        } else {
            Publisher::loan(publ, len)?
        };
        let ptr = loan.as_mut_ptr();
        handle.loan = Some(loan);
        // SAFETY: checked non-NULL; writable by the contract.
        unsafe { ffi::put(data, ptr) };
        Ok(())
    })
}

/// Publishes the first `len` bytes of the outstanding loan (the rest of
/// its space is skipped by subscribers). The loan ends either way.
///
/// # Errors
///
/// `MEMLANE_TOO_LARGE` (`len` longer than the loan: nothing is published),
/// `MEMLANE_INVALID_ARGUMENT` (no loan is outstanding),
/// `MEMLANE_NULL_POINTER`, `MEMLANE_CORRUPT`.
///
/// # Safety
///
/// `publisher` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_commit(
    publisher: *mut memlane_publisher,
    len: usize,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(publisher, "publisher") }?;
        let loan = handle.loan.take().ok_or_else(no_loan)?;
        Ok(loan.commit_len(len)?)
    })
}

/// Gives up the outstanding loan: nothing is published (subscribers skip
/// its space).
///
/// # Errors
///
/// `MEMLANE_INVALID_ARGUMENT` (no loan is outstanding),
/// `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `publisher` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_discard(
    publisher: *mut memlane_publisher,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(publisher, "publisher") }?;
        drop(handle.loan.take().ok_or_else(no_loan)?);
        Ok(())
    })
}

fn no_loan() -> Fail {
    Fail::new(
        MEMLANE_INVALID_ARGUMENT,
        "no loan is outstanding on this publisher (memlane_publisher_loan makes one)",
    )
}

/// Leaves the channel and frees the publisher (an outstanding loan is
/// discarded); NULL is a no-op.
///
/// # Safety
///
/// `publisher` is NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_publisher_close(publisher: *mut memlane_publisher) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(publisher) }
}

/// Where a new subscriber starts, and whether it holds publishers back
/// (the `start` of [`memlane_subscriber_new`]): at the next message
/// published, lossless.
pub const MEMLANE_SUBSCRIBE_NOW: c_int = 0;
/// At the oldest message still in the ring (the recent history, then
/// everything after), lossless.
pub const MEMLANE_SUBSCRIBE_OLDEST: c_int = 1;
/// At the next message published, **lossy**: it never holds publishers
/// back; when they lap it, a receive returns `MEMLANE_LAGGED` once and the
/// next goes on from the oldest message still in the ring (the totals lost:
/// [`memlane_subscriber_lost`]). Every message it returns was checked
/// after it was copied out: never one overwritten while read.
pub const MEMLANE_SUBSCRIBE_LOSSY: c_int = 2;

/// Joins the channel as a subscriber, starting as `start` says
/// ([`MEMLANE_SUBSCRIBE_NOW`], [`MEMLANE_SUBSCRIBE_OLDEST`] or
/// [`MEMLANE_SUBSCRIBE_LOSSY`]). A lossless subscriber receives every
/// message from its start, in order, none lost (publishers wait for it).
///
/// **Ownership:** the handle written to `*out` is yours: free it with
/// [`memlane_subscriber_close`] (which leaves the channel). It does not
/// borrow `channel`, which may be closed first. On failure `*out` is set
/// to NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER`, `MEMLANE_INVALID_ARGUMENT` (an unknown
/// `start`), `MEMLANE_NO_SLOT`, `MEMLANE_CORRUPT`, `MEMLANE_BUSY`,
/// `MEMLANE_IO`.
///
/// # Safety
///
/// `channel` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_new(
    channel: *mut memlane_channel,
    start: c_int,
    out: *mut *mut memlane_subscriber,
) -> memlane_status {
    let make = || {
        // SAFETY: a live handle or NULL, by the contract.
        let channel = unsafe { ffi::handle(channel, "channel") }?;
        let sub = match start {
            MEMLANE_SUBSCRIBE_NOW => channel.channel.subscriber()?,
            MEMLANE_SUBSCRIBE_OLDEST => channel.channel.subscriber_from_oldest()?,
            MEMLANE_SUBSCRIBE_LOSSY => channel.channel.lossy_subscriber()?,
            other => {
                return Err(Fail::new(
                    MEMLANE_INVALID_ARGUMENT,
                    format!(
                        "start {other} is none of MEMLANE_SUBSCRIBE_NOW (0), MEMLANE_SUBSCRIBE_OLDEST (1), MEMLANE_SUBSCRIBE_LOSSY (2)"
                    ),
                ))
            }
        };
        Ok(memlane_subscriber::new(sub))
    };
    // SAFETY: `out` as the caller promised.
    unsafe { ffi::make_handle(out, make) }
}

/// Receives the next message by copying it into `buf` (`cap` bytes) and
/// releasing it; `*len` gets its length. Waits at most `timeout_ms` for
/// one (`0`: only checks, `MEMLANE_FOREVER`: no limit). If a message is
/// held (see [`memlane_subscriber_read`]), that one is copied and released.
///
/// # Errors
///
/// `MEMLANE_TIMEOUT` (nothing came), `MEMLANE_BUFFER_TOO_SMALL` (`*len`
/// gets the length needed; the message is not lost: it stays held, and
/// the next `recv` or `read` returns it; `max_message` bytes always
/// suffice), `MEMLANE_DISCONNECTED` (every publisher has left),
/// `MEMLANE_NULL_POINTER`, `MEMLANE_CORRUPT`.
///
/// # Safety
///
/// `subscriber` is NULL or a live handle; `buf` is NULL or has `cap`
/// writable bytes; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_recv(
    subscriber: *mut memlane_subscriber,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
    timeout_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        let len = ffi::out_arg(len, "len")?;
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(subscriber, "subscriber") }?;
        // SAFETY: `cap` writable bytes or NULL, by the contract.
        let buf = unsafe { ffi::buf_arg(buf, cap, "buf") }?;
        let msg = handle.take(timeout_ms)?;
        // SAFETY: checked non-NULL; writable by the contract.
        unsafe { ffi::put(len, msg.len()) };
        if msg.len() > buf.len() {
            return Err(Fail::new(
                MEMLANE_BUFFER_TOO_SMALL,
                format!(
                    "the message is {} bytes, the buffer {}; it is kept for the next receive (a buffer of the channel's max_message always suffices)",
                    msg.len(),
                    buf.len()
                ),
            ));
        }
        buf[..msg.len()].copy_from_slice(msg);
        handle.held = None;
        Ok(())
    })
}

/// Receives the next message in place (zero-copy when the channel does not
/// copy; see [`memlane_channel_info`]): `*data` and `*len` get its bytes,
/// and the message stays held until [`memlane_subscriber_release`]. Waits
/// as [`memlane_subscriber_recv`] does. If a message is already held, it
/// is returned again.
///
/// **Ownership and lifetime:** the bytes belong to the ring (or the
/// subscriber's private copy); read them until `release` or `close` of
/// this subscriber, never write or free them. While held, the message's
/// ring space is not reused, so publishers wait once the ring fills:
/// release promptly.
///
/// # Errors
///
/// `MEMLANE_TIMEOUT`, `MEMLANE_DISCONNECTED`, `MEMLANE_NULL_POINTER`,
/// `MEMLANE_CORRUPT`.
///
/// # Safety
///
/// `subscriber` is NULL or a live handle; `data` and `len` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_read(
    subscriber: *mut memlane_subscriber,
    data: *mut *const u8,
    len: *mut usize,
    timeout_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        let data = ffi::out_arg(data, "data")?;
        let len = ffi::out_arg(len, "len")?;
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(subscriber, "subscriber") }?;
        let msg = handle.take(timeout_ms)?;
        // SAFETY: both checked non-NULL; writable by the contract.
        unsafe {
            ffi::put(data, msg.as_ptr());
            ffi::put(len, msg.len());
        }
        Ok(())
    })
}

/// Releases the held message (from [`memlane_subscriber_read`], or a
/// `recv` whose buffer was too small): its pointer dies, its ring space
/// goes back to publishers.
///
/// # Errors
///
/// `MEMLANE_INVALID_ARGUMENT` (no message is held),
/// `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `subscriber` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_release(
    subscriber: *mut memlane_subscriber,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(subscriber, "subscriber") }?;
        match handle.held.take() {
            Some(msg) => {
                drop(msg);
                Ok(())
            }
            None => Err(Fail::new(
                MEMLANE_INVALID_ARGUMENT,
                "no message is held by this subscriber (memlane_subscriber_read holds one)",
            )),
        }
    })
}

/// Sets how long the subscriber waits, once it has received everything
/// and no publisher is joined, before receives return
/// `MEMLANE_DISCONNECTED`: `grace_ms` milliseconds (default 1000), or
/// `MEMLANE_FOREVER` never to report it. A subscriber that has not seen a
/// publisher yet always waits for the first.
///
/// # Errors
///
/// `MEMLANE_BUSY` (a message is held: release it first),
/// `MEMLANE_NULL_POINTER`.
///
/// # Safety
///
/// `subscriber` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_set_disconnect_grace(
    subscriber: *mut memlane_subscriber,
    grace_ms: u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(subscriber, "subscriber") }?;
        if handle.held.is_some() {
            return Err(Fail::new(
                MEMLANE_BUSY,
                "a message is held by this subscriber: release it (memlane_subscriber_release) first",
            ));
        }
        let grace = match Timeout::from_ms(grace_ms) {
            Timeout::Forever => None,
            Timeout::Poll => Some(std::time::Duration::ZERO),
            Timeout::For(d) => Some(d),
        };
        // SAFETY: `sub` is the live Box allocation the handle owns, and no
        // message borrows it (held is None); `&mut` handle makes this the
        // only reference while it lives.
        unsafe { handle.sub.as_mut() }.set_disconnect_grace(grace);
        Ok(())
    })
}

/// A lossy subscriber's losses so far: the messages and bytes of every
/// lap reported as `MEMLANE_LAGGED` by this handle (0 and 0 for a lossless
/// one). Either out-parameter may be NULL.
///
/// # Errors
///
/// `MEMLANE_NULL_POINTER` (`subscriber`).
///
/// # Safety
///
/// `subscriber` is NULL or a live handle; `messages` and `bytes` are NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_lost(
    subscriber: *mut memlane_subscriber,
    messages: *mut u64,
    bytes: *mut u64,
) -> memlane_status {
    ffi::guard(|| {
        // SAFETY: a live handle or NULL, by the contract.
        let handle = unsafe { ffi::handle(subscriber, "subscriber") }?;
        if !messages.is_null() {
            // SAFETY: non-NULL, writable by the contract.
            unsafe { messages.write(handle.lost.0) };
        }
        if !bytes.is_null() {
            // SAFETY: non-NULL, writable by the contract.
            unsafe { bytes.write(handle.lost.1) };
        }
        Ok(())
    })
}

/// Leaves the channel and frees the subscriber (a held message is
/// released); NULL is a no-op.
///
/// # Safety
///
/// `subscriber` is NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn memlane_subscriber_close(subscriber: *mut memlane_subscriber) {
    // SAFETY: the caller's contract.
    unsafe { ffi::close(subscriber) }
}
