//! The engine: one thread per route and direction, between memlane's
//! blocking API and Zenoh's synchronous (`Wait`) API.
//!
//! **Out** (local → Zenoh): a lossless memlane subscriber reads the channel;
//! each message gets a header ([`crate::wire`]) with this bridge's id and
//! the route's next sequence number, and is put with
//! `CongestionControl::Block` (reliable, never dropped by Zenoh when its
//! queues fill: the put waits, and so, through the ring, do local
//! publishers).
//!
//! **In** (Zenoh → local): a Zenoh subscriber with a bounded FIFO feeds a
//! thread that checks each header, drops what is malformed, oversized,
//! its own or already seen (counted), reports gaps in an origin's sequence
//! numbers, and publishes the rest into the local ring with a loan.
//!
//! **No echo.** A bridge forwarding a channel both ways would read back,
//! with its outbound subscriber, what its inbound side just published. The
//! inbound side notes each loan's ring position ([`memlane::Loan::position`])
//! before committing it; the outbound side skips messages at those
//! positions ([`memlane::Message::position`]). Positions grow, so the
//! noted ones form a queue consumed in order. What another bridge puts is
//! thus published locally and never sent back, and each bridge ignores its
//! own puts if Zenoh delivers them to it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use memlane::{Channel, Latest};
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;
use zenoh::Wait;

use crate::config::{BridgeConfig, FullPolicy, Route};
use crate::stats::{RouteCounters, Stats};
use crate::wire::{self, Header, Kind, HEADER_LEN};

/// How often blocked loops look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Samples queued between Zenoh and an inbound thread.
const INBOUND_QUEUE: usize = 1024;

/// A route's Zenoh subscriber: samples queued for its inbound thread.
type InboundSubscriber =
    zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>;

/// The route's Zenoh subscriber (other sessions' samples only), queueing
/// up to [`INBOUND_QUEUE`] samples for its thread.
fn declare_inbound(
    session: &zenoh::Session,
    ctx: &Ctx,
    declare: impl Fn(zenoh::Error) -> BridgeError,
) -> Result<InboundSubscriber, BridgeError> {
    session
        .declare_subscriber(ctx.key.clone())
        .allowed_origin(Locality::Remote)
        .with(zenoh::handlers::FifoChannel::new(INBOUND_QUEUE))
        .wait()
        .map_err(declare)
}

/// A bridge that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The Zenoh session did not open (bad configuration, a port in use…).
    #[error("cannot open the Zenoh session: {0}")]
    Zenoh(String),
    /// A Zenoh declaration failed (an invalid key expression…).
    #[error("route {name} ({key}): {message}")]
    Declare {
        /// The local name.
        name: String,
        /// The key expression.
        key: String,
        /// Zenoh's message.
        message: String,
    },
    /// A local channel or slot could not be opened or created.
    #[error("route {name}: {message}")]
    Local {
        /// The local name.
        name: String,
        /// memlane's message.
        message: String,
    },
    /// No route is configured.
    #[error("no route: give --out, --in or --both (or routes in a --config file)")]
    NoRoutes,
}

/// A running bridge. Dropping it stops it (as [`Bridge::shutdown`]).
pub struct Bridge {
    id: u128,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    routes: Vec<(Route, String, Arc<RouteCounters>)>,
    /// Matching listeners and queryables, kept alive.
    keep: Vec<Box<dyn std::any::Any + Send>>,
    session: Option<zenoh::Session>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("id", &format_args!("{:032x}", self.id))
            .field("routes", &self.routes.len())
            .finish()
    }
}

/// Positions (channels) or versions (slots) this bridge published itself,
/// shared by the inbound and outbound sides of one local name.
type Own = Arc<Mutex<VecDeque<u64>>>;

/// A random 128-bit id (std's randomly keyed SipHash over the time, the
/// process id and a counter).
fn random_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        h.write_usize(i);
        *p = h.finish();
    }
    (u128::from(parts[0]) << 64) | u128::from(parts[1])
}

impl Bridge {
    /// Opens a Zenoh session with `zenoh_config` and starts forwarding every
    /// route of `config`. Local channels and slots that do not exist are
    /// created (with `config.capacity` / `config.max_message`, else
    /// memlane's defaults).
    ///
    /// # Errors
    ///
    /// [`BridgeError`]: the session does not open, a key expression is
    /// invalid, a local name cannot be opened or created.
    pub fn start(
        config: &BridgeConfig,
        zenoh_config: zenoh::Config,
    ) -> Result<Bridge, BridgeError> {
        if config.routes.is_empty() {
            return Err(BridgeError::NoRoutes);
        }
        let session = zenoh::open(zenoh_config)
            .wait()
            .map_err(|e| BridgeError::Zenoh(e.to_string()))?;
        let mut bridge = Bridge {
            id: random_id(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            routes: Vec::new(),
            keep: Vec::new(),
            session: Some(session.clone()),
        };
        tracing::info!(bridge_id = %format_args!("{:032x}", bridge.id), zid = %session.zid(), "bridge starting");
        // Names forwarded both ways share the record of their own publications.
        let mut own: HashMap<String, Own> = HashMap::new();
        let mut outbound_names = std::collections::HashSet::new();
        for r in &config.routes {
            if r.direction.outbound() {
                outbound_names.insert(r.name.clone());
            }
        }
        // Outbound sides first: their subscribers must join before any
        // inbound side publishes, so that they see (and skip) all of it.
        for pass in [true, false] {
            for r in &config.routes {
                if (pass && !r.direction.outbound()) || (!pass && !r.direction.inbound()) {
                    continue;
                }
                let key = r.key_expr(&config.prefix);
                let counters = match bridge.routes.iter().find(|(x, _, _)| x == r) {
                    Some((_, _, c)) => c.clone(),
                    None => {
                        let c = Arc::new(RouteCounters::default());
                        bridge.routes.push((r.clone(), key.clone(), c.clone()));
                        c
                    }
                };
                let own = outbound_names
                    .contains(&r.name)
                    .then(|| own.entry(r.name.clone()).or_default().clone());
                let ctx = Ctx {
                    id: bridge.id,
                    name: r.name.clone(),
                    key: key.clone(),
                    counters,
                    stop: bridge.stop.clone(),
                    own,
                    full: config.full,
                };
                let declare = |e: zenoh::Error| BridgeError::Declare {
                    name: r.name.clone(),
                    key: key.clone(),
                    message: e.to_string(),
                };
                match (pass, r.kind) {
                    (true, Kind::Channel) => {
                        bridge.start_out_channel(config, &session, ctx, declare)?
                    }
                    (false, Kind::Channel) => {
                        bridge.start_in_channel(config, &session, ctx, declare)?
                    }
                    (true, Kind::Latest) => {
                        bridge.start_out_latest(config, &session, ctx, declare)?
                    }
                    (false, Kind::Latest) => {
                        bridge.start_in_latest(config, &session, ctx, declare)?
                    }
                }
            }
        }
        Ok(bridge)
    }

    /// This bridge's origin id, as in its wire headers.
    pub fn id(&self) -> u128 {
        self.id
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            bridge_id: format!("{:032x}", self.id),
            routes: self
                .routes
                .iter()
                .map(|(r, key, c)| c.snapshot(&r.name, key, r.direction, r.kind))
                .collect(),
        }
    }

    /// Stops every thread (each within about 100 ms, or when a blocked put
    /// or full ring frees up), closes the session and returns the final
    /// counters.
    pub fn shutdown(mut self) -> Stats {
        self.stop_all();
        self.stats()
    }

    fn stop_all(&mut self) {
        self.stop.store(true, Relaxed);
        // Listeners before the publishers they watch (dropped by the threads).
        self.keep.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(s) = self.session.take() {
            let _ = s.close().wait();
        }
    }

    fn open_channel(config: &BridgeConfig, name: &str) -> Result<Channel, BridgeError> {
        let local = |e: &dyn std::fmt::Display| BridgeError::Local {
            name: name.to_string(),
            message: e.to_string(),
        };
        let mut open = Channel::open_options(name);
        if let Some(d) = &config.dir {
            open = open.dir(d);
        }
        match open.open() {
            Ok(c) => Ok(c),
            Err(memlane::OpenError::NotFound { .. }) => {
                let mut b = Channel::builder(name);
                if let Some(d) = &config.dir {
                    b = b.dir(d);
                }
                if let Some(c) = config.capacity {
                    b = b.capacity(c);
                }
                if let Some(m) = config.max_message {
                    b = b.max_message(m);
                }
                match b.create() {
                    Ok(c) => {
                        tracing::info!(channel = name, "created the local channel");
                        Ok(c)
                    }
                    // Created by someone else meanwhile.
                    Err(memlane::CreateError::AlreadyExists { .. }) => {
                        let mut open = Channel::open_options(name);
                        if let Some(d) = &config.dir {
                            open = open.dir(d);
                        }
                        open.open().map_err(|e| local(&e))
                    }
                    Err(e) => Err(local(&e)),
                }
            }
            Err(e) => Err(local(&e)),
        }
    }

    fn open_latest(config: &BridgeConfig, name: &str) -> Result<Latest, BridgeError> {
        let local = |e: &dyn std::fmt::Display| BridgeError::Local {
            name: name.to_string(),
            message: e.to_string(),
        };
        let mut open = Latest::open_options(name);
        if let Some(d) = &config.dir {
            open = open.dir(d);
        }
        match open.open() {
            Ok(l) => Ok(l),
            Err(memlane::OpenError::NotFound { .. }) => {
                let mut b = Latest::builder(name).max_value(config.max_message.unwrap_or(4096));
                if let Some(d) = &config.dir {
                    b = b.dir(d);
                }
                b.create().map_err(|e| local(&e))
            }
            Err(e) => Err(local(&e)),
        }
    }

    fn spawn(&mut self, what: &str, f: impl FnOnce() + Send + 'static) {
        let t = std::thread::Builder::new()
            .name(what.chars().take(15).collect())
            .spawn(f)
            .expect("spawn a bridge thread");
        self.threads.push(t);
    }

    fn start_out_channel(
        &mut self,
        config: &BridgeConfig,
        session: &zenoh::Session,
        ctx: Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<(), BridgeError> {
        let channel = Self::open_channel(config, &ctx.name)?;
        let mut sub = channel.subscriber().map_err(|e| BridgeError::Local {
            name: ctx.name.clone(),
            message: e.to_string(),
        })?;
        sub.set_disconnect_grace(None);
        sub.set_spin(config.spin);
        let publisher = self.declare_outbound(session, &ctx, &declare)?;
        self.spawn(&format!("out {}", ctx.name), move || {
            out_channel(ctx, sub, publisher)
        });
        Ok(())
    }

    /// The route's Zenoh publisher (reliable, blocking when congested,
    /// to other sessions only), its matching status watched.
    fn declare_outbound(
        &mut self,
        session: &zenoh::Session,
        ctx: &Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<zenoh::pubsub::Publisher<'static>, BridgeError> {
        let publisher = session
            .declare_publisher(ctx.key.clone())
            .congestion_control(CongestionControl::Block)
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(declare)?;
        self.watch_matching(&publisher, ctx)?;
        Ok(publisher)
    }

    fn watch_matching(
        &mut self,
        publisher: &zenoh::pubsub::Publisher<'static>,
        ctx: &Ctx,
    ) -> Result<(), BridgeError> {
        let (counters, key) = (ctx.counters.clone(), ctx.key.clone());
        let listener = publisher
            .matching_listener()
            .callback(move |status| {
                counters.out_matched.store(status.matching(), Relaxed);
                if status.matching() {
                    let unmatched = counters.out_unmatched.load(Relaxed);
                    tracing::info!(key = %key, put_while_none_matched = unmatched, "a remote subscriber matches: forwarding");
                } else {
                    tracing::warn!(key = %key, "no remote subscriber: messages put now reach nobody (the receivers will report the gap)");
                }
            })
            .wait()
            .map_err(|e| BridgeError::Declare {
                name: ctx.name.clone(),
                key: ctx.key.clone(),
                message: e.to_string(),
            })?;
        self.keep.push(Box::new(listener));
        Ok(())
    }

    fn start_in_channel(
        &mut self,
        config: &BridgeConfig,
        session: &zenoh::Session,
        ctx: Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<(), BridgeError> {
        let channel = Self::open_channel(config, &ctx.name)?;
        let publ = channel.publisher().map_err(|e| BridgeError::Local {
            name: ctx.name.clone(),
            message: e.to_string(),
        })?;
        let sub = declare_inbound(session, &ctx, &declare)?;
        let max = channel.max_message();
        self.spawn(&format!("in {}", ctx.name), move || {
            in_channel(ctx, sub, publ, max)
        });
        Ok(())
    }

    fn start_out_latest(
        &mut self,
        config: &BridgeConfig,
        session: &zenoh::Session,
        ctx: Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<(), BridgeError> {
        let slot = Self::open_latest(config, &ctx.name)?;
        let publisher = self.declare_outbound(session, &ctx, &declare)?;
        // The newest value forwarded, for late joiners' queries.
        let newest: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let (n, key) = (newest.clone(), ctx.key.clone());
        let queryable = session
            .declare_queryable(ctx.key.clone())
            .callback(move |query| {
                let v = n.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(v) = v {
                    if let Err(e) = query.reply(key.clone(), v).wait() {
                        tracing::debug!(error = %e, "reply to a query for the newest value");
                    }
                }
            })
            .wait()
            .map_err(&declare)?;
        self.keep.push(Box::new(queryable));
        self.spawn(&format!("out {}", ctx.name), move || {
            out_latest(ctx, slot, publisher, newest)
        });
        Ok(())
    }

    fn start_in_latest(
        &mut self,
        config: &BridgeConfig,
        session: &zenoh::Session,
        ctx: Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<(), BridgeError> {
        let slot = Self::open_latest(config, &ctx.name)?;
        let sub = declare_inbound(session, &ctx, &declare)?;
        // The newest value held by the other bridges' queryables, if any.
        let replies = session
            .get(ctx.key.clone())
            .timeout(Duration::from_secs(2))
            .wait()
            .map_err(&declare)?;
        self.spawn(&format!("in {}", ctx.name), move || {
            in_latest(ctx, sub, replies, slot)
        });
        Ok(())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// What a route's thread needs.
struct Ctx {
    id: u128,
    name: String,
    key: String,
    counters: Arc<RouteCounters>,
    stop: Arc<AtomicBool>,
    own: Option<Own>,
    full: FullPolicy,
}

impl Ctx {
    /// Whether `pos` is one this bridge published itself (consumed).
    fn is_own(&self, pos: u64) -> bool {
        let Some(own) = &self.own else { return false };
        let mut q = own.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&front) = q.front() {
            if front < pos {
                q.pop_front(); // passed (cannot happen with a lossless subscriber)
            } else if front == pos {
                q.pop_front();
                return true;
            } else {
                break;
            }
        }
        false
    }

    fn note_own(&self, pos: u64) {
        if let Some(own) = &self.own {
            own.lock().unwrap_or_else(|e| e.into_inner()).push_back(pos);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }
}

/// Logs the first few of a kind of drop, then every 1000th.
fn should_log(count: u64) -> bool {
    count <= 10 || count.is_multiple_of(1000)
}

/// The framed payload of `msg`: the header with the route's next sequence
/// number, then the bytes.
fn frame(ctx: &Ctx, seq: &mut u64, kind: Kind, msg: &[u8]) -> Vec<u8> {
    *seq += 1;
    let mut buf = Vec::with_capacity(HEADER_LEN + msg.len());
    let h = Header {
        kind,
        origin: ctx.id,
        seq: *seq,
    };
    wire::encode_header(&mut buf, h, msg.len());
    buf.extend_from_slice(msg);
    buf
}

/// Puts a framed payload (`len` message bytes) and counts it.
fn put(ctx: &Ctx, publisher: &zenoh::pubsub::Publisher<'_>, framed: Vec<u8>, len: usize) {
    match publisher.put(framed).wait() {
        Ok(()) => {
            if !ctx.counters.out_matched.load(Relaxed) {
                ctx.counters.out_unmatched.fetch_add(1, Relaxed);
            }
            ctx.counters.out_forwarded.fetch_add(1, Relaxed);
            ctx.counters.out_bytes.fetch_add(len as u64, Relaxed);
        }
        Err(e) => {
            let n = ctx.counters.out_errors.fetch_add(1, Relaxed) + 1;
            if should_log(n) {
                tracing::error!(key = %ctx.key, error = %e, errors = n, "put failed");
            }
        }
    }
}

fn out_channel(
    ctx: Ctx,
    mut sub: memlane::Subscriber,
    publisher: zenoh::pubsub::Publisher<'static>,
) {
    let mut seq = 0u64;
    while !ctx.stopping() {
        match sub.recv_timeout(POLL) {
            Ok(msg) => {
                if ctx.is_own(msg.position()) {
                    ctx.counters.out_echo_skipped.fetch_add(1, Relaxed);
                    continue;
                }
                // Copied out (framed), the ring slot is released before a
                // put that may wait.
                let framed = frame(&ctx, &mut seq, Kind::Channel, &msg);
                let len = msg.len();
                drop(msg);
                put(&ctx, &publisher, framed, len);
            }
            Err(memlane::RecvTimeoutError::Timeout)
            | Err(memlane::RecvTimeoutError::Disconnected) => {}
            Err(e) => {
                let n = ctx.counters.out_errors.fetch_add(1, Relaxed) + 1;
                tracing::error!(channel = %ctx.name, error = %e, "receive failed");
                if should_log(n) {
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

fn out_latest(
    ctx: Ctx,
    mut slot: Latest,
    publisher: zenoh::pubsub::Publisher<'static>,
    newest: Arc<Mutex<Option<Vec<u8>>>>,
) {
    let mut seq = 0u64;
    let mut sent_version = 0u64;
    let mut buf = Vec::with_capacity(slot.max_value());
    loop {
        match slot.get_into(&mut buf) {
            Ok(Some(v)) if v != sent_version => {
                sent_version = v;
                if ctx.is_own(v) {
                    ctx.counters.out_echo_skipped.fetch_add(1, Relaxed);
                } else {
                    let framed = frame(&ctx, &mut seq, Kind::Latest, &buf);
                    *newest.lock().unwrap_or_else(|e| e.into_inner()) = Some(framed.clone());
                    put(&ctx, &publisher, framed, buf.len());
                }
            }
            Ok(_) => {}
            Err(e) => {
                ctx.counters.out_errors.fetch_add(1, Relaxed);
                tracing::error!(slot = %ctx.name, error = %e, "read failed");
            }
        }
        if ctx.stopping() {
            return;
        }
        slot.wait_timeout(POLL);
    }
}

/// Per (origin, key): the last sequence number accepted.
#[derive(Default)]
struct Sequences {
    last: HashMap<(u128, String), u64>,
}

enum Verdict {
    Deliver,
    Drop,
}

/// Checks a sample's header; counts and logs what is dropped.
fn check<'a>(
    ctx: &Ctx,
    seqs: &mut Sequences,
    sample: &'a zenoh::sample::Sample,
    bytes: &'a [u8],
    want: Kind,
    max: usize,
) -> Option<&'a [u8]> {
    let c = &ctx.counters;
    let (h, payload) = match wire::decode(bytes) {
        Ok(x) => x,
        Err(e) => {
            let n = c.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
            if should_log(n) {
                tracing::warn!(key = %sample.key_expr(), error = %e, dropped = n, "dropped a malformed inbound payload");
            }
            return None;
        }
    };
    if h.origin == ctx.id {
        c.in_own.fetch_add(1, Relaxed);
        return None;
    }
    if h.kind != want {
        let n = c.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
        if should_log(n) {
            tracing::warn!(key = %sample.key_expr(), kind = ?h.kind, dropped = n, "dropped an inbound payload of the wrong kind (a channel and a slot bridged to one key?)");
        }
        return None;
    }
    if payload.len() > max {
        let n = c.in_dropped_oversized.fetch_add(1, Relaxed) + 1;
        if should_log(n) {
            tracing::warn!(key = %sample.key_expr(), len = payload.len(), max, dropped = n, "dropped an inbound message larger than the local maximum");
        }
        return None;
    }
    let verdict = match seqs
        .last
        .get_mut(&(h.origin, sample.key_expr().as_str().to_string()))
    {
        None => {
            c.in_origins.fetch_add(1, Relaxed);
            tracing::info!(key = %sample.key_expr(), origin = %format_args!("{:032x}", h.origin), seq = h.seq, "first message from a bridge");
            seqs.last
                .insert((h.origin, sample.key_expr().as_str().to_string()), h.seq);
            Verdict::Deliver
        }
        Some(last) if h.seq <= *last => Verdict::Drop,
        Some(last) => {
            if h.seq > *last + 1 {
                let missed = h.seq - *last - 1;
                c.in_missed.fetch_add(missed, Relaxed);
                tracing::warn!(key = %sample.key_expr(), origin = %format_args!("{:032x}", h.origin), missed, from = *last + 1, to = h.seq - 1, "gap: messages put while the link was down never arrived; forwarding resumed");
            }
            *last = h.seq;
            Verdict::Deliver
        }
    };
    match verdict {
        Verdict::Deliver => Some(payload),
        Verdict::Drop => {
            c.in_dropped_duplicate.fetch_add(1, Relaxed);
            None
        }
    }
}

fn in_channel(ctx: Ctx, sub: InboundSubscriber, mut publ: memlane::Publisher, max: usize) {
    let mut seqs = Sequences::default();
    while !ctx.stopping() {
        let sample = match sub.recv_timeout(POLL) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(_) => return, // the session closed
        };
        let bytes = sample.payload().to_bytes();
        let Some(payload) = check(&ctx, &mut seqs, &sample, &bytes, Kind::Channel, max) else {
            continue;
        };
        let mut spins = 0u32;
        let loan = loop {
            match publ.try_loan(payload.len()) {
                Ok(loan) => break Some(loan),
                Err(memlane::TrySendError::Full) if ctx.full == FullPolicy::Block => {
                    if ctx.stopping() {
                        return;
                    }
                    spins += 1;
                    if spins < 64 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                Err(memlane::TrySendError::Full) => {
                    let n = ctx.counters.in_dropped_full.fetch_add(1, Relaxed) + 1;
                    if should_log(n) {
                        tracing::warn!(channel = %ctx.name, dropped = n, "the local ring is full: dropped an inbound message (--full drop)");
                    }
                    break None;
                }
                Err(e) => {
                    let n = ctx.counters.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
                    if should_log(n) {
                        tracing::error!(channel = %ctx.name, error = %e, "cannot publish locally: dropped");
                    }
                    break None;
                }
            }
        };
        let Some(mut loan) = loan else { continue };
        loan.copy_from_slice(payload);
        ctx.note_own(loan.position());
        match loan.commit() {
            Ok(()) => {
                ctx.counters.in_forwarded.fetch_add(1, Relaxed);
                ctx.counters
                    .in_bytes
                    .fetch_add(payload.len() as u64, Relaxed);
            }
            Err(e) => tracing::error!(channel = %ctx.name, error = %e, "commit failed"),
        }
    }
}

fn in_latest(
    ctx: Ctx,
    sub: InboundSubscriber,
    replies: zenoh::handlers::FifoChannelHandler<zenoh::query::Reply>,
    mut slot: Latest,
) {
    let mut seqs = Sequences::default();
    let max = slot.max_value();
    let mut set = |sample: &zenoh::sample::Sample, seqs: &mut Sequences| {
        let bytes = sample.payload().to_bytes();
        if let Some(value) = check(&ctx, seqs, sample, &bytes, Kind::Latest, max) {
            // Holding the record while setting: the outbound side checks
            // a version it read only after the version is noted here.
            let mut own = ctx
                .own
                .as_ref()
                .map(|o| o.lock().unwrap_or_else(|e| e.into_inner()));
            let result = slot.set(value);
            if let (Ok(v), Some(q)) = (&result, own.as_mut()) {
                q.push_back(*v);
            }
            drop(own);
            match result {
                Ok(_) => {
                    ctx.counters.in_forwarded.fetch_add(1, Relaxed);
                    ctx.counters.in_bytes.fetch_add(value.len() as u64, Relaxed);
                }
                Err(e) => tracing::error!(slot = %ctx.name, error = %e, "set failed"),
            }
        }
    };
    // The current value from the other bridges first, then what changes.
    while let Ok(reply) = replies.recv() {
        if let Ok(sample) = reply.result() {
            set(sample, &mut seqs);
        }
    }
    while !ctx.stopping() {
        match sub.recv_timeout(POLL) {
            Ok(Some(s)) => set(&s, &mut seqs),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}
