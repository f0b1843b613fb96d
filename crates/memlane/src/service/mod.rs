//! Request-response services over channels: [`Client`] and [`Server`].
//!
//! A service `NAME` is made of ordinary memlane files (see
//! docs/ARCHITECTURE.md, "Request-response"):
//! - the request channel `NAME.rq`, created by the first server: every
//!   client publishes into it, every server subscribes to it;
//! - per client, a response channel `NAME.rs.PID.N` and a claim segment
//!   `NAME.cl.PID.N` (one `u64`), created by the client and removed when
//!   it is dropped.
//!
//! A request carries a fixed 32-byte header (magic, version, the client's
//! pid, number and incarnation, the request id) before its payload; a response a 16-byte
//! header (magic, status, request id). A server claims a request by a
//! compare-and-swap on the client's claim word (`2·id` → `2·id + 1`), so
//! with several servers each request is handled by exactly one.

#[allow(unsafe_code)]
mod claim;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::channel::{Channel, Liveness, Publisher, Subscriber};
use crate::error::{
    CreateError, JoinError, OpenError, RecvTimeoutError, SendTimeoutError, TrySendError,
};
use crate::segment::Segment;
use claim::{ClaimWord, CLAIM_SIZE};

const REQ_MAGIC: u32 = 0x5152_4c4d; // "MLRQ" little-endian
const RESP_MAGIC: u32 = 0x5352_4c4d; // "MLRS"
const VERSION: u16 = 1;
/// Bytes of the header before each request's payload.
pub const REQUEST_HEADER: usize = 32;
/// Bytes of the header before each response's payload.
pub const RESPONSE_HEADER: usize = 16;
/// Default time a [`Client::call`] waits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting client checks that a server is still alive: a call
/// whose every server died fails within about this long.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(50);
const STATUS_OK: u32 = 0;
const STATUS_ERR: u32 = 1;
/// Client channels a server keeps open at most.
const CACHE_LIMIT: usize = 1024;

fn req_name(service: &str) -> String {
    format!("{service}.rq")
}
fn resp_name(service: &str, pid: u32, n: u32) -> String {
    format!("{service}.rs.{pid}.{n}")
}
fn claim_name(service: &str, pid: u32, n: u32) -> String {
    format!("{service}.cl.{pid}.{n}")
}

/// Why a service could not be started or joined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No server has created the service's request channel yet.
    #[error("no server for service `{name}`: start one first (memlane serve {name} -- COMMAND)")]
    NoServer {
        /// The service.
        name: String,
    },
    /// A file of the service could not be opened.
    #[error("cannot open `{name}`: {source}")]
    Open {
        /// The file's name.
        name: String,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// A file of the service could not be created.
    #[error("cannot create `{name}`: {source}")]
    Create {
        /// The file's name.
        name: String,
        /// Why.
        #[source]
        source: CreateError,
    },
    /// The channel had no free endpoint slot.
    #[error("cannot join `{name}`: {source}")]
    Join {
        /// The channel's name.
        name: String,
        /// Why.
        #[source]
        source: JoinError,
    },
}

/// Why a [`Client::call`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No live server subscribes to the service (none started, or every
    /// one died, before or during the call).
    #[error("no live server for service `{name}`: start one (memlane serve {name} -- COMMAND) and retry")]
    NoServer {
        /// The service.
        name: String,
    },
    /// No response within the time-out. `claimed` says whether a server
    /// had taken the request (it is slow, or died while handling it) or
    /// none had (they are busy or behind).
    #[error("no response within {timeout:?} ({})", if *claimed { "a server took the request but did not answer: it is slow or died while handling it" } else { "no server took the request: the servers are busy or behind; retry or start more" })]
    Timeout {
        /// The time-out.
        timeout: Duration,
        /// Whether a server had claimed the request.
        claimed: bool,
    },
    /// The server reported an error handling the request.
    #[error("the server failed the request: {0}")]
    Remote(String),
    /// The request is larger than the service's request channel allows.
    #[error("the request is {len} bytes; the service takes at most {max} (create it with a larger max-message)")]
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// Largest payload.
        max: usize,
    },
    /// A response's payload did not have the expected type's size.
    #[error("the response is {len} bytes; the expected type has {expected}")]
    WrongSize {
        /// Bytes received.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// Encoding the request or decoding the response failed (serde form).
    #[error("serde: {0}")]
    Serde(String),
    /// A channel's shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] crate::error::Corrupt),
}

/// Why [`Server::recv_timeout`] or [`Server::respond`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No request arrived within the time-out.
    #[error("no request arrived within the time-out")]
    Timeout,
    /// The response is larger than the client's response channel allows.
    #[error("the response is {len} bytes; the client takes at most {max}")]
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// Largest payload.
        max: usize,
    },
    /// A channel's shared state is corrupt.
    #[error(transparent)]
    Corrupt(#[from] crate::error::Corrupt),
}

/// Sizes of a service's channels; see [`Server::builder`] and
/// [`Client::builder`].
#[derive(Debug, Clone)]
struct Config {
    dir: Option<PathBuf>,
    max_message: usize,
    capacity: Option<u64>,
}

impl Config {
    fn channel(&self, name: &str) -> crate::ChannelBuilder {
        let mut b = Channel::builder(name)
            .max_message(self.max_message + REQUEST_HEADER.max(RESPONSE_HEADER));
        if let Some(c) = self.capacity {
            b = b.capacity(c);
        }
        if let Some(d) = &self.dir {
            b = b.dir(d);
        }
        b
    }
    fn open(&self, name: &str) -> Result<Channel, OpenError> {
        let mut o = Channel::open_options(name);
        if let Some(d) = &self.dir {
            o = o.dir(d);
        }
        o.open()
    }
}

/// Builds a [`Server`] or a [`Client`].
#[derive(Debug, Clone)]
pub struct ServiceBuilder {
    name: String,
    cfg: Config,
}

impl ServiceBuilder {
    /// The directory of the service's files (default `$MEMLANE_DIR` or
    /// `/dev/shm`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.dir = Some(dir.into());
        self
    }
    /// Largest payload (request for a server creating the service, response
    /// for a client); default 64 KiB.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.cfg.max_message = bytes;
        self
    }
    /// Ring capacity of the channels this side creates.
    pub fn capacity(mut self, bytes: u64) -> Self {
        self.cfg.capacity = Some(bytes);
        self
    }

    /// Starts a server: opens the request channel, creating it if it does
    /// not exist, and subscribes to it.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Create`] / [`ServiceError::Open`] if the request
    /// channel can be neither created nor opened; [`ServiceError::Join`] if
    /// it has no free subscriber slot.
    pub fn server(self) -> Result<Server, ServiceError> {
        let rq = req_name(&self.name);
        let channel = match self.cfg.open(&rq) {
            Ok(c) => c,
            Err(_) => match self.cfg.channel(&rq).create() {
                Ok(c) => c,
                // Another server created it between our open and create.
                Err(CreateError::AlreadyExists { .. }) => {
                    self.cfg.open(&rq).map_err(|source| ServiceError::Open {
                        name: rq.clone(),
                        source,
                    })?
                }
                Err(source) => return Err(ServiceError::Create { name: rq, source }),
            },
        };
        let mut sub = channel.subscriber().map_err(|source| ServiceError::Join {
            name: rq.clone(),
            source,
        })?;
        sub.set_disconnect_grace(None);
        Ok(Server {
            name: self.name,
            cfg: self.cfg,
            _channel: channel,
            sub,
            clients: HashMap::new(),
            stats: ServerStats::default(),
        })
    }

    /// Starts a client: opens the request channel, creates this client's
    /// response channel and claim word.
    ///
    /// # Errors
    ///
    /// [`ServiceError::NoServer`] if no server ever created the service;
    /// [`ServiceError::Create`] if the client's files cannot be created;
    /// [`ServiceError::Join`] if the request channel has no free publisher
    /// slot.
    pub fn client(self) -> Result<Client, ServiceError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let rq = req_name(&self.name);
        let channel = match self.cfg.open(&rq) {
            Ok(c) => c,
            Err(OpenError::NotFound { .. }) => {
                return Err(ServiceError::NoServer { name: self.name })
            }
            Err(source) => return Err(ServiceError::Open { name: rq, source }),
        };
        let publ = channel.publisher().map_err(|source| ServiceError::Join {
            name: rq.clone(),
            source,
        })?;
        let max_request = publ.max_message().saturating_sub(REQUEST_HEADER);
        let pid = std::process::id();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let rs = resp_name(&self.name, pid, n);
        let resp = self
            .cfg
            .channel(&rs)
            .replace_stale(true)
            .create()
            .map_err(|source| ServiceError::Create {
                name: rs.clone(),
                source,
            })?;
        let mut sub = resp.subscriber().map_err(|source| ServiceError::Join {
            name: rs.clone(),
            source,
        })?;
        sub.set_disconnect_grace(None);
        let cl = claim_name(&self.name, pid, n);
        let mut sb = Segment::builder(&cl).size(CLAIM_SIZE).replace_stale(true);
        if let Some(d) = &self.cfg.dir {
            sb = sb.dir(d);
        }
        let claim = sb.create().map_err(|source| ServiceError::Create {
            name: cl.clone(),
            source,
        });
        let claim = match claim {
            Ok(seg) => ClaimWord::new(seg).expect("a new claim segment is writable and aligned"),
            Err(e) => {
                let _ = remove_in(&self.cfg.dir, &rs);
                return Err(e);
            }
        };
        Ok(Client {
            name: self.name,
            dir: self.cfg.dir,
            channel,
            publ,
            _resp: resp,
            sub,
            claim,
            pid,
            n,
            incarnation: incarnation(pid, n),
            next_id: 0,
            max_request,
            buf: Vec::new(),
            last_check: None,
        })
    }
}

/// A value telling this client apart from an earlier one with the same
/// pid and number (a reused pid): servers key their cache of client files
/// by it, so they never use a dead client's claim word for a new one.
fn incarnation(pid: u32, n: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(pid);
    h.write_u32(n);
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// Who sent a request, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    pid: u32,
    n: u32,
    incarnation: u64,
}

fn remove_in(dir: &Option<PathBuf>, name: &str) -> Result<(), crate::RemoveError> {
    crate::segment::remove(dir.as_deref(), name)
}

/// Starts building a server or client of the service `name`.
///
/// # Examples
///
/// ```
/// # let tmp = tempfile::Builder::new().prefix("memlane-doc-svc-").tempdir()?;
/// # let dir = tmp.path().to_path_buf();
/// let mut server = memlane::service("doc-echo").dir(&dir).server()?;
/// let mut client = memlane::service("doc-echo").dir(&dir).client()?;
/// let t = std::thread::spawn(move || {
///     let req = server.recv().unwrap();
///     server.respond(&req, &req.payload).unwrap();
/// });
/// assert_eq!(client.call(b"hi")?, b"hi");
/// t.join().unwrap();
/// # drop(client);
/// # memlane::service::remove_service(Some(&dir), "doc-echo")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn service(name: &str) -> ServiceBuilder {
    ServiceBuilder {
        name: name.to_string(),
        cfg: Config {
            dir: None,
            max_message: 64 * 1024,
            capacity: None,
        },
    }
}

/// Removes a service's request channel (clients remove their own files when
/// dropped; `memlane gc` removes those of crashed clients).
///
/// # Errors
///
/// As [`crate::remove`].
pub fn remove_service(dir: Option<&std::path::Path>, name: &str) -> Result<(), crate::RemoveError> {
    crate::segment::remove(dir, &req_name(name))
}

/// A client of a service: sends requests, receives only its own responses.
///
/// One call at a time (`&mut self`); use one client per thread for
/// concurrency. Dropping it removes its response channel and claim word.
pub struct Client {
    name: String,
    dir: Option<PathBuf>,
    channel: Channel,
    publ: Publisher,
    _resp: Channel,
    sub: Subscriber,
    claim: ClaimWord,
    pid: u32,
    n: u32,
    incarnation: u64,
    next_id: u64,
    max_request: usize,
    buf: Vec<u8>,
    last_check: Option<Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.name)
            .field("pid", &self.pid)
            .field("n", &self.n)
            .finish()
    }
}

impl Client {
    /// Whether at least one live server subscribes to the service.
    pub fn server_alive(&self) -> bool {
        self.channel
            .info()
            .subscribers
            .iter()
            .any(|s| s.state != Liveness::Dead)
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.name
    }

    /// Sends `request` and waits up to [`DEFAULT_TIMEOUT`] for its response.
    ///
    /// # Errors
    ///
    /// See [`Client::call_timeout`].
    pub fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_timeout(request, DEFAULT_TIMEOUT)
    }

    /// Sends `request` and waits up to `timeout` for its response.
    ///
    /// # Errors
    ///
    /// [`CallError::NoServer`] if no live server subscribes (checked
    /// before sending and every [`LIVENESS_CHECK`] while waiting);
    /// [`CallError::Timeout`]; [`CallError::Remote`] if the server answered
    /// with an error; [`CallError::TooLarge`]; [`CallError::Corrupt`].
    pub fn call_timeout(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now() + timeout;
        let id = self.prepare(request, deadline, timeout)?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(id, timeout));
            }
            let slice = (deadline - now).min(LIVENESS_CHECK);
            let got = match self.sub.recv_timeout(slice) {
                Ok(msg) => Some(parse_response(&msg, id)),
                Err(RecvTimeoutError::Corrupt(c)) => return Err(c.into()),
                Err(_) => None,
            };
            match got {
                Some(Some(r)) => return r,
                Some(None) => {}
                None => self.check_alive(id)?,
            }
        }
    }

    /// Checks liveness at most every LIVENESS_CHECK; on no server, cancels.
    fn check_alive(&mut self, id: u64) -> Result<(), CallError> {
        let now = Instant::now();
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < LIVENESS_CHECK)
        {
            return Ok(());
        }
        self.last_check = Some(now);
        if self.server_alive() {
            Ok(())
        } else {
            self.claim.cas(2 * id, 0);
            Err(CallError::NoServer {
                name: self.name.clone(),
            })
        }
    }

    fn timed_out(&mut self, id: u64, timeout: Duration) -> CallError {
        // Cancel: a server that has not claimed it yet never will.
        let claimed = !self.claim.cas(2 * id, 0);
        CallError::Timeout { timeout, claimed }
    }

    /// Writes the claim word and sends the request; returns its id.
    fn prepare(
        &mut self,
        request: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u64, CallError> {
        if request.len() > self.max_request {
            return Err(CallError::TooLarge {
                len: request.len(),
                max: self.max_request,
            });
        }
        // Probing the servers' liveness locks costs system calls: done at
        // most every LIVENESS_CHECK (a server that died since is caught by
        // the checks while waiting).
        let now = Instant::now();
        if self
            .last_check
            .is_none_or(|t| now.duration_since(t) >= LIVENESS_CHECK)
        {
            if !self.server_alive() {
                return Err(CallError::NoServer {
                    name: self.name.clone(),
                });
            }
            self.last_check = Some(now);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.claim.store(2 * id);
        self.buf.clear();
        self.buf.extend_from_slice(&REQ_MAGIC.to_le_bytes());
        self.buf.extend_from_slice(&VERSION.to_le_bytes());
        self.buf.extend_from_slice(&0u16.to_le_bytes());
        self.buf.extend_from_slice(&self.pid.to_le_bytes());
        self.buf.extend_from_slice(&self.n.to_le_bytes());
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.extend_from_slice(&self.incarnation.to_le_bytes());
        self.buf.extend_from_slice(request);
        // The ring can be full only while servers are behind; wait for
        // space in slices, checking that a server is still there.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.publ.send_timeout(&self.buf, left.min(LIVENESS_CHECK)) {
                Ok(()) => return Ok(id),
                Err(SendTimeoutError::Timeout) if left.is_zero() => {
                    self.claim.store(0);
                    return Err(CallError::Timeout {
                        timeout,
                        claimed: false,
                    });
                }
                Err(SendTimeoutError::Timeout) => {
                    self.last_check = None;
                    self.check_alive(id)?;
                }
                Err(SendTimeoutError::TooLarge { max, .. }) => {
                    return Err(CallError::TooLarge {
                        len: request.len(),
                        max: max.saturating_sub(REQUEST_HEADER),
                    })
                }
                Err(SendTimeoutError::Corrupt(c)) => return Err(c.into()),
            }
        }
    }

    /// Typed call: `Req` and `Resp` are plain types (see [`crate::Plain`]),
    /// sent and received as their bytes.
    ///
    /// # Errors
    ///
    /// As [`Client::call_timeout`], and [`CallError::WrongSize`] if the
    /// response has not `Resp`'s size.
    pub fn call_plain<Req, Resp>(
        &mut self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: IntoBytes + Immutable,
        Resp: FromBytes,
    {
        let bytes = self.call_timeout(request.as_bytes(), timeout)?;
        Resp::read_from_bytes(&bytes).map_err(|_| CallError::WrongSize {
            len: bytes.len(),
            expected: std::mem::size_of::<Resp>(),
        })
    }

    /// Serde call (feature `serde`): request and response postcard-encoded.
    ///
    /// # Errors
    ///
    /// As [`Client::call_timeout`], and [`CallError::Serde`] if encoding or
    /// decoding fails.
    #[cfg(feature = "serde")]
    pub fn call_serde<Req, Resp>(
        &mut self,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let enc = postcard::to_stdvec(request).map_err(|e| CallError::Serde(e.to_string()))?;
        let bytes = self.call_timeout(&enc, timeout)?;
        postcard::from_bytes(&bytes).map_err(|e| CallError::Serde(e.to_string()))
    }

    /// Async call (feature `async`): as [`Client::call_timeout`], awaiting
    /// the response on the async reactor. The time-out and the server
    /// liveness checks need no runtime timer: the future wakes on its own
    /// every [`LIVENESS_CHECK`].
    ///
    /// # Errors
    ///
    /// As [`Client::call_timeout`].
    #[cfg(feature = "async")]
    pub async fn call_async(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now() + timeout;
        let id = self.prepare(request, deadline, timeout)?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(id, timeout));
            }
            let slice = (deadline - now).min(LIVENESS_CHECK);
            let got = {
                let fut = self.sub.recv_async();
                match with_timeout(fut, slice).await {
                    Some(Ok(msg)) => Some(parse_response(&msg, id)),
                    Some(Err(crate::RecvError::Corrupt(c))) => return Err(c.into()),
                    Some(Err(_)) | None => None,
                }
            };
            match got {
                Some(Some(r)) => return r,
                Some(None) => {}
                None => self.check_alive(id)?,
            }
        }
    }
}

/// Runs `fut` for at most `t`: `None` if it did not finish in time. The
/// time limit is kept by [`timer`], one thread per process.
#[cfg(feature = "async")]
async fn with_timeout<F: std::future::Future>(fut: F, t: Duration) -> Option<F::Output> {
    use std::pin::pin;
    use std::task::Poll;
    let mut fut = pin!(fut);
    let deadline = Instant::now() + t;
    let mut armed = false;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if Instant::now() >= deadline {
            return Poll::Ready(None);
        }
        if !armed {
            timer::wake_at(deadline, cx.waker().clone());
            armed = true;
        }
        Poll::Pending
    })
    .await
}

/// A process-wide timer thread for the async call's slices: wakes each
/// registered waker at (or just after) its deadline.
#[cfg(feature = "async")]
mod timer {
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::task::Waker;
    use std::time::Instant;

    struct Timer {
        due: Mutex<Vec<(Instant, Waker)>>,
        cv: Condvar,
    }

    fn get() -> &'static Timer {
        static T: OnceLock<&'static Timer> = OnceLock::new();
        T.get_or_init(|| {
            let t: &'static Timer = Box::leak(Box::new(Timer {
                due: Mutex::new(Vec::new()),
                cv: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("memlane-timer".into())
                .spawn(move || run(t))
                .expect("spawning memlane's timer thread");
            t
        })
    }

    fn run(t: &'static Timer) {
        let mut due = t.due.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let mut i = 0;
            while i < due.len() {
                if due[i].0 <= now {
                    due.swap_remove(i).1.wake();
                } else {
                    i += 1;
                }
            }
            due = match due.iter().map(|d| d.0).min() {
                Some(next) => {
                    t.cv.wait_timeout(due, next.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => t.cv.wait(due).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Wakes `waker` at `deadline`.
    pub(super) fn wake_at(deadline: Instant, waker: Waker) {
        let t = get();
        t.due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((deadline, waker));
        t.cv.notify_one();
    }
}

fn parse_response(msg: &[u8], id: u64) -> Option<Result<Vec<u8>, CallError>> {
    if msg.len() < RESPONSE_HEADER {
        return None;
    }
    let magic = u32::from_le_bytes(msg[0..4].try_into().ok()?);
    let status = u32::from_le_bytes(msg[4..8].try_into().ok()?);
    let rid = u64::from_le_bytes(msg[8..16].try_into().ok()?);
    if magic != RESP_MAGIC || rid != id {
        // A late answer to an earlier, timed-out call, or garbage.
        return None;
    }
    let body = &msg[RESPONSE_HEADER..];
    Some(match status {
        STATUS_OK => Ok(body.to_vec()),
        _ => Err(CallError::Remote(
            String::from_utf8_lossy(body).into_owned(),
        )),
    })
}

impl Drop for Client {
    fn drop(&mut self) {
        let rs = resp_name(&self.name, self.pid, self.n);
        let cl = claim_name(&self.name, self.pid, self.n);
        let _ = remove_in(&self.dir, &rs);
        let _ = remove_in(&self.dir, &cl);
    }
}

/// A request a [`Server`] claimed; answer it with [`Server::respond`].
#[derive(Debug, Clone)]
pub struct Request {
    /// The request's payload.
    pub payload: Vec<u8>,
    /// The request id (unique per client).
    pub id: u64,
    /// The client's process id.
    pub client_pid: u32,
    client: ClientKey,
}

impl Request {
    /// The payload as a plain type, or `None` if it has not `T`'s size.
    pub fn plain<T: FromBytes>(&self) -> Option<T> {
        T::read_from_bytes(&self.payload).ok()
    }
    /// The payload postcard-decoded (feature `serde`).
    ///
    /// # Errors
    ///
    /// postcard's error if the payload is not a valid `T`.
    #[cfg(feature = "serde")]
    pub fn serde<T: serde::de::DeserializeOwned>(&self) -> Result<T, postcard::Error> {
        postcard::from_bytes(&self.payload)
    }
}

/// Counters of a [`Server`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Requests this server claimed.
    pub claimed: u64,
    /// Requests another server claimed (or the client cancelled).
    pub skipped: u64,
    /// Malformed requests skipped (bad header).
    pub malformed: u64,
    /// Requests of clients gone (their claim word missing).
    pub orphaned: u64,
    /// Responses sent.
    pub responded: u64,
    /// Responses dropped: the client was gone or not reading.
    pub dropped: u64,
}

struct ClientEnd {
    claim: ClaimWord,
    publ: Option<(Channel, Publisher)>,
}

/// A server of a service: receives requests, each claimed by exactly one
/// server, and answers them.
pub struct Server {
    name: String,
    cfg: Config,
    _channel: Channel,
    sub: Subscriber,
    clients: HashMap<ClientKey, ClientEnd>,
    stats: ServerStats,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.name)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Server {
    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Waits (forever) for the next request this server claims.
    ///
    /// # Errors
    ///
    /// [`ServeError::Corrupt`].
    pub fn recv(&mut self) -> Result<Request, ServeError> {
        loop {
            match self.recv_timeout(Duration::from_secs(3600)) {
                Err(ServeError::Timeout) => continue,
                r => return r,
            }
        }
    }

    /// Waits up to `timeout` for the next request this server claims.
    ///
    /// # Errors
    ///
    /// [`ServeError::Timeout`]; [`ServeError::Corrupt`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request, ServeError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match self.sub.recv_timeout(left) {
                Ok(m) => m.to_vec(),
                Err(RecvTimeoutError::Corrupt(c)) => return Err(c.into()),
                Err(RecvTimeoutError::Lagged(_)) => continue,
                Err(_) => return Err(ServeError::Timeout),
            };
            if let Some(r) = self.claim(msg) {
                return Ok(r);
            }
        }
    }

    /// Non-blocking: the next request this server claims among those
    /// already queued, or `None`.
    ///
    /// # Errors
    ///
    /// [`ServeError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Option<Request>, ServeError> {
        loop {
            let msg = match self.sub.try_recv() {
                Ok(m) => m.to_vec(),
                Err(crate::TryRecvError::Corrupt(c)) => return Err(c.into()),
                Err(crate::TryRecvError::Lagged(_)) => continue,
                Err(_) => return Ok(None),
            };
            if let Some(r) = self.claim(msg) {
                return Ok(Some(r));
            }
        }
    }

    /// Async receive (feature `async`): the next request this server
    /// claims.
    ///
    /// # Errors
    ///
    /// [`ServeError::Corrupt`].
    #[cfg(feature = "async")]
    pub async fn recv_async(&mut self) -> Result<Request, ServeError> {
        loop {
            let msg = match self.sub.recv_async().await {
                Ok(m) => m.to_vec(),
                Err(crate::RecvError::Corrupt(c)) => return Err(c.into()),
                Err(_) => continue,
            };
            if let Some(r) = self.claim(msg) {
                return Ok(r);
            }
        }
    }

    /// Validates a request's header and claims it; `None` to skip it.
    fn claim(&mut self, mut msg: Vec<u8>) -> Option<Request> {
        let Some((key, id)) = parse_request(&msg) else {
            self.stats.malformed += 1;
            return None;
        };
        let end = match self.client_end(key) {
            Some(e) => e,
            None => {
                self.stats.orphaned += 1;
                return None;
            }
        };
        if end.claim.cas(2 * id, 2 * id + 1) {
            self.stats.claimed += 1;
            msg.drain(..REQUEST_HEADER);
            Some(Request {
                payload: msg,
                id,
                client_pid: key.pid,
                client: key,
            })
        } else {
            self.stats.skipped += 1;
            None
        }
    }

    fn client_end(&mut self, key: ClientKey) -> Option<&mut ClientEnd> {
        if !self.clients.contains_key(&key) {
            if self.clients.len() >= CACHE_LIMIT {
                self.clients.clear();
            }
            let cl = claim_name(&self.name, key.pid, key.n);
            let mut o = Segment::open_options(&cl);
            if let Some(d) = &self.cfg.dir {
                o = o.dir(d);
            }
            let claim = ClaimWord::new(o.open().ok()?)?;
            self.clients.insert(key, ClientEnd { claim, publ: None });
        }
        self.clients.get_mut(&key)
    }

    /// Answers `request` with `response`. Never blocks: a response to a
    /// client that is gone, or whose response ring is full, is dropped and
    /// counted in [`ServerStats::dropped`].
    ///
    /// # Errors
    ///
    /// [`ServeError::TooLarge`]; [`ServeError::Corrupt`].
    pub fn respond(&mut self, request: &Request, response: &[u8]) -> Result<(), ServeError> {
        self.send_response(request, STATUS_OK, response)
    }

    /// Answers `request` with an error the client reports as
    /// [`CallError::Remote`].
    ///
    /// # Errors
    ///
    /// As [`Server::respond`].
    pub fn respond_error(&mut self, request: &Request, message: &str) -> Result<(), ServeError> {
        self.send_response(request, STATUS_ERR, message.as_bytes())
    }

    /// Answers with a plain value's bytes.
    ///
    /// # Errors
    ///
    /// As [`Server::respond`].
    pub fn respond_plain<T: IntoBytes + Immutable>(
        &mut self,
        request: &Request,
        value: &T,
    ) -> Result<(), ServeError> {
        self.respond(request, value.as_bytes())
    }

    /// Answers with a postcard-encoded value (feature `serde`).
    ///
    /// # Errors
    ///
    /// As [`Server::respond`]; an encoding failure is sent to the client
    /// as an error response.
    #[cfg(feature = "serde")]
    pub fn respond_serde<T: serde::Serialize + ?Sized>(
        &mut self,
        request: &Request,
        value: &T,
    ) -> Result<(), ServeError> {
        match postcard::to_stdvec(value) {
            Ok(v) => self.respond(request, &v),
            Err(e) => self.respond_error(request, &format!("encoding the response: {e}")),
        }
    }

    fn send_response(&mut self, req: &Request, status: u32, body: &[u8]) -> Result<(), ServeError> {
        let key = req.client;
        let name = self.name.clone();
        let cfg = self.cfg.clone();
        let Some(end) = self.client_end(key) else {
            self.stats.dropped += 1;
            return Ok(());
        };
        if end.publ.is_none() {
            let rs = resp_name(&name, key.pid, key.n);
            let opened = cfg.open(&rs).ok().and_then(|c| {
                let p = c.publisher().ok()?;
                Some((c, p))
            });
            match opened {
                Some(p) => end.publ = Some(p),
                None => {
                    self.clients.remove(&key);
                    self.stats.dropped += 1;
                    return Ok(());
                }
            }
        }
        let Some((_, publ)) = end.publ.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::with_capacity(RESPONSE_HEADER + body.len());
        buf.extend_from_slice(&RESP_MAGIC.to_le_bytes());
        buf.extend_from_slice(&status.to_le_bytes());
        buf.extend_from_slice(&req.id.to_le_bytes());
        buf.extend_from_slice(body);
        match publ.try_send(&buf) {
            Ok(()) => {
                self.stats.responded += 1;
                Ok(())
            }
            Err(TrySendError::Full) => {
                // The client is gone or not reading: drop, never wait.
                self.clients.remove(&key);
                self.stats.dropped += 1;
                Ok(())
            }
            Err(TrySendError::TooLarge { len, max }) => Err(ServeError::TooLarge {
                len: len.saturating_sub(RESPONSE_HEADER),
                max: max.saturating_sub(RESPONSE_HEADER),
            }),
            Err(TrySendError::Corrupt(c)) => Err(c.into()),
        }
    }
}

/// Parses a request header: (who sent it, request id).
fn parse_request(msg: &[u8]) -> Option<(ClientKey, u64)> {
    let h = msg.get(..REQUEST_HEADER)?;
    let magic = u32::from_le_bytes(h[0..4].try_into().ok()?);
    let version = u16::from_le_bytes(h[4..6].try_into().ok()?);
    let pid = u32::from_le_bytes(h[8..12].try_into().ok()?);
    let n = u32::from_le_bytes(h[12..16].try_into().ok()?);
    let id = u64::from_le_bytes(h[16..24].try_into().ok()?);
    let incarnation = u64::from_le_bytes(h[24..32].try_into().ok()?);
    // id 0 is never sent; 2·id + 1 must not overflow.
    if magic != REQ_MAGIC || version != VERSION || id == 0 || id >= u64::MAX / 2 {
        return None;
    }
    Some((
        ClientKey {
            pid,
            n,
            incarnation,
        },
        id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_is_validated() {
        assert_eq!(parse_request(&[0; 10]), None);
        let mut m = Vec::new();
        m.extend_from_slice(&REQ_MAGIC.to_le_bytes());
        m.extend_from_slice(&VERSION.to_le_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&7u32.to_le_bytes());
        m.extend_from_slice(&3u32.to_le_bytes());
        m.extend_from_slice(&9u64.to_le_bytes());
        m.extend_from_slice(&5u64.to_le_bytes());
        let key = ClientKey {
            pid: 7,
            n: 3,
            incarnation: 5,
        };
        assert_eq!(parse_request(&m), Some((key, 9)));
        m[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(parse_request(&m), None);
        m[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse_request(&m), None);
        m[0] ^= 1;
        assert_eq!(parse_request(&m), None);
    }

    #[test]
    fn response_for_another_id_is_ignored() {
        let mut m = Vec::new();
        m.extend_from_slice(&RESP_MAGIC.to_le_bytes());
        m.extend_from_slice(&STATUS_OK.to_le_bytes());
        m.extend_from_slice(&5u64.to_le_bytes());
        m.extend_from_slice(b"x");
        assert!(parse_response(&m, 4).is_none());
        assert_eq!(parse_response(&m, 5).unwrap().unwrap(), b"x");
        assert!(parse_response(&m[..10], 5).is_none());
    }
}
