//! The engine: one thread per route and direction, between memlane's
//! blocking API and Zenoh's synchronous (`Wait`) API.
//!
//! **Out** (local → Zenoh): a lossless memlane subscriber reads the channel;
//! each message gets a header ([`crate::wire`]) with this bridge's id and
//! the route's next sequence number, and is put with
//! `CongestionControl::Block` (reliable, never dropped by Zenoh when its
//! queues fill: the put waits, and so, through the ring, do local
//! publishers; for up to 80 % of the lease, see [`tie_waits_to_the_lease`]).
//!
//! Whatever else the channel holds at that moment joins the same put as a
//! batch of frames (up to 47.5 KiB, so that it fits one Zenoh transport
//! batch, see [`BATCH_BYTES`]; or 1024 messages): a lone message waits for
//! nothing, a burst pays Zenoh's per-put costs once per batch.
//!
//! **In** (Zenoh → local): a Zenoh subscriber's callback, on the Zenoh
//! thread that received the sample, checks each frame's header, drops what
//! is malformed, oversized, its own or already seen (counted), reports gaps
//! in an origin's sequence numbers, and publishes the rest into the local
//! ring with a loan. (Latest-value slots: a thread fed by a bounded FIFO.)
//!
//! **No echo.** A bridge forwarding a channel both ways would read back,
//! with its outbound subscriber, what its inbound side just published. The
//! inbound side notes each loan's ring position ([`memlane::Loan::position`])
//! before committing it; the outbound side skips messages at those
//! positions ([`memlane::Message::position`]). Positions grow, so the
//! noted ones form a queue consumed in order. What another bridge puts is
//! thus published locally and never sent back, and each bridge ignores its
//! own puts if Zenoh delivers them to it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memlane::{Channel, Latest, TypeRecord};
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;
use zenoh::Wait;

use crate::config::{BridgeConfig, FullPolicy, Route};
use crate::stats::{RouteCounters, Stats};
use crate::wire::{self, Header, Kind, HEADER_LEN};

/// How often blocked loops look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Zenoh's configuration key: how long a `CongestionControl::Block` put
/// may wait for room before Zenoh closes the session (µs; 5 s by default).
const WAIT_BEFORE_CLOSE_KEY: &str =
    "transport/link/tx/queue/congestion_control/block/wait_before_close";
/// Zenoh's default for [`WAIT_BEFORE_CLOSE_KEY`]: 5 s, in µs.
const ZENOH_WAIT_BEFORE_CLOSE_US: u64 = 5_000_000;
/// How long a blocking put may wait, in percent of the lease, unless the
/// Zenoh configuration says otherwise ([`tie_waits_to_the_lease`]).
const PUT_WAIT_PERCENT_OF_LEASE: u32 = 80;
/// Zenoh's configuration key: how many keep-alives a link sends per lease
/// when it has nothing else to send (4 by default).
const KEEP_ALIVE_KEY: &str = "transport/link/tx/keep_alive";
/// Zenoh's default for [`KEEP_ALIVE_KEY`].
const ZENOH_KEEP_ALIVE: u64 = 4;
/// The bridge's default for [`KEEP_ALIVE_KEY`] ([`tie_waits_to_the_lease`]).
const KEEP_ALIVES_PER_LEASE: u64 = 20;
/// Zenoh's configuration key: the lease (ms; 10 s by default). A link on
/// which the receiving side reads nothing for the remote's lease is closed.
const LEASE_KEY: &str = "transport/link/tx/lease";
/// How long [`Bridge::shutdown`] lets its threads finish what they are
/// doing; one still waiting then (a put to a remote that reads nothing) is
/// left to end on its own.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Samples queued between Zenoh and an inbound thread.
const INBOUND_QUEUE: usize = 1024;
/// Where each bridge in peer mode declares its session's liveliness token,
/// `@memlane/bridge/peer/<zid>` (a verbatim chunk: no wildcard of anyone
/// else's matches it), for the [split watch](Bridge::split). Only peers:
/// a peer relays its clients' declarations to other peers, so a client's
/// token would reach peers that have no connection to it.
const ALIVE_PREFIX: &str = "@memlane/bridge/peer";
/// How often the split watch compares the remote bridges this session
/// routes to with its connections.
const SPLIT_CHECK: Duration = Duration::from_secs(1);

/// A route's Zenoh subscriber: samples queued for its inbound thread.
type InboundSubscriber =
    zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>;

/// A slot route's Zenoh subscriber (other sessions' samples only),
/// queueing up to [`INBOUND_QUEUE`] samples for its thread.
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
    /// The configuration does not hold together (see [`BridgeConfig::check`]).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// A route as the bridge runs it.
struct RouteEntry {
    route: Route,
    key: String,
    counters: Arc<RouteCounters>,
    full: Option<FullPolicy>,
}

/// A running bridge. Dropping it stops it (as [`Bridge::shutdown`]).
pub struct Bridge {
    id: u128,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Per route: its key expression, counters and, for a channel
    /// forwarded inbound, the policy its full ring follows.
    routes: Vec<RouteEntry>,
    /// Matching listeners and queryables, kept alive.
    keep: Vec<Box<dyn std::any::Any + Send>>,
    session: Option<zenoh::Session>,
    /// Set by the split watch (see [`Bridge::split`]).
    split: Arc<AtomicBool>,
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
    /// invalid, a local name cannot be opened or created, the
    /// configuration fails [`BridgeConfig::check`].
    pub fn start(
        config: &BridgeConfig,
        zenoh_config: zenoh::Config,
    ) -> Result<Bridge, BridgeError> {
        if config.routes.is_empty() {
            return Err(BridgeError::NoRoutes);
        }
        config.check()?;
        let mut zenoh_config = zenoh_config;
        let stall_budget = tie_waits_to_the_lease(&mut zenoh_config)?;
        let watch_splits = splits_are_seen_directly(&zenoh_config);
        let lease = lease_of(&zenoh_config);
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
            split: Arc::new(AtomicBool::new(false)),
        };
        tracing::info!(bridge_id = %format_args!("{:032x}", bridge.id), zid = %session.zid(), "bridge starting");
        if watch_splits {
            bridge.watch_for_splits(&session, lease)?;
        }
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
                let full = r.full_policy(config.full);
                let counters = match bridge.routes.iter().find(|e| &e.route == r) {
                    Some(e) => e.counters.clone(),
                    None => {
                        let c = Arc::new(RouteCounters::default());
                        bridge.routes.push(RouteEntry {
                            route: r.clone(),
                            key: key.clone(),
                            counters: c.clone(),
                            full: (r.direction.inbound() && r.kind == Kind::Channel)
                                .then_some(full),
                        });
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
                    full,
                    stall_budget,
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

    /// Whether Zenoh has lost this session's connection to a remote bridge
    /// it still routes to: the remote's liveliness token has been visible
    /// for a lease with no connection to its session. Then Zenoh reports
    /// the remote's subscribers as matching and accepts puts for them, and
    /// nothing reaches them, for good (a Zenoh 1.10 fault; see
    /// docs/BRIDGE.md, Limits). Reopening the session in the same process
    /// does not mend it (the lost connection lives on, unreachable, and the
    /// remote keeps it); ending the process does: stop the bridge and start
    /// it again, as `memlane-bridge` does itself. Watched in peer mode
    /// while no router is connected (through a router, remote bridges are
    /// reached without a connection to them), once a second.
    pub fn split(&self) -> bool {
        self.split.load(Relaxed)
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            bridge_id: format!("{:032x}", self.id),
            routes: self
                .routes
                .iter()
                .map(|e| {
                    let r = &e.route;
                    e.counters
                        .snapshot(&r.name, &e.key, r.direction, r.kind, e.full)
                })
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
        // Threads see the flag within POLL; a put waiting for a remote that
        // reads nothing returns only when Zenoh gives up on it, and until
        // then Zenoh cannot close the session either.
        let start = std::time::Instant::now();
        while self.threads.iter().any(|t| !t.is_finished()) && start.elapsed() < STOP_GRACE {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stuck = self.threads.iter().any(|t| !t.is_finished());
        let threads: Vec<_> = self.threads.drain(..).collect();
        let session = self.session.take();
        let finish = move || {
            for t in threads {
                let _ = t.join();
            }
            if let Some(s) = session {
                let _ = s.close().wait();
            }
        };
        if stuck {
            tracing::warn!("a put still waits for a remote that reads nothing: stopping without waiting for it (Zenoh gives up on it within the lease)");
            let spawned = std::thread::Builder::new()
                .name("memlane-bridge-stop".into())
                .spawn(finish);
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a thread to finish stopping: the session is left open");
            }
        } else {
            finish();
        }
    }

    /// Declares this session's liveliness token and watches the remote
    /// bridges' tokens against the session's connections (see
    /// [`split`](Self::split)): a remote whose token stays visible for
    /// `lease` with no connection to its session sets the split flag.
    fn watch_for_splits(
        &mut self,
        session: &zenoh::Session,
        lease: Duration,
    ) -> Result<(), BridgeError> {
        let zerr = |e: zenoh::Error| BridgeError::Zenoh(e.to_string());
        let own = session.zid().to_string();
        let token = session
            .liveliness()
            .declare_token(format!("{ALIVE_PREFIX}/{own}"))
            .wait()
            .map_err(zerr)?;
        let remotes: Arc<Mutex<HashSet<String>>> = Arc::default();
        let seen = remotes.clone();
        let watcher = session
            .liveliness()
            .declare_subscriber(format!("{ALIVE_PREFIX}/*"))
            .history(true)
            .callback(move |sample| {
                let Some(zid) = sample.key_expr().as_str().rsplit('/').next() else {
                    return;
                };
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                match sample.kind() {
                    zenoh::sample::SampleKind::Put => seen.insert(zid.to_string()),
                    zenoh::sample::SampleKind::Delete => seen.remove(zid),
                };
            })
            .wait()
            .map_err(zerr)?;
        self.keep.push(Box::new(token));
        self.keep.push(Box::new(watcher));
        let (session, split, stop) = (session.clone(), self.split.clone(), self.stop.clone());
        self.spawn("split watch", move || {
            let mut since = HashMap::new();
            let mut next = Instant::now() + SPLIT_CHECK;
            while !stop.load(Relaxed) {
                // Stops within POLL; looks every SPLIT_CHECK.
                std::thread::sleep(POLL);
                if Instant::now() < next {
                    continue;
                }
                next += SPLIT_CHECK;
                // Through a router, remote bridges are reached without a
                // connection of this session's to them.
                if session.info().routers_zid().wait().next().is_some() {
                    since.clear();
                    continue;
                }
                let connected: HashSet<String> = session
                    .info()
                    .peers_zid()
                    .wait()
                    .map(|z| z.to_string())
                    .collect();
                let mut tokens = remotes.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tokens.remove(&own);
                let lost = split_peers(&tokens, &connected, &mut since, Instant::now(), lease);
                if !lost.is_empty() && !split.swap(true, Relaxed) {
                    tracing::error!(
                        remote = ?lost,
                        "Zenoh routes to a remote bridge this session has no connection to \
                         (for a lease): whatever is put for it is lost (a Zenoh 1.10 fault after \
                         a frozen peer's return, docs/BRIDGE.md, Limits)"
                    );
                }
            }
        });
        Ok(())
    }

    /// Opens the local channel, or creates it (with `record` as its message
    /// type, asked for only then).
    fn open_channel(
        config: &BridgeConfig,
        name: &str,
        record: impl FnOnce() -> Option<TypeRecord>,
    ) -> Result<Channel, BridgeError> {
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
                let mut b = Channel::builder(name).membarrier(config.membarrier);
                if let Some(d) = &config.dir {
                    b = b.dir(d);
                }
                if let Some(c) = config.capacity {
                    b = b.capacity(c);
                }
                if let Some(m) = config.max_message {
                    b = b.max_message(m);
                }
                let record = record();
                if let Some(r) = &record {
                    b = b.message_type_record(r);
                }
                match b.create() {
                    Ok(c) => {
                        match &record {
                            Some(r) => {
                                tracing::info!(channel = name, message_type = %r, "created the local channel with the remote channel's message type")
                            }
                            None => tracing::info!(channel = name, "created the local channel"),
                        }
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
        let channel = Self::open_channel(config, &ctx.name, || None)?;
        self.offer_type(session, &channel, &ctx, &declare)?;
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

    /// A typed channel's message type, for the bridges that create the
    /// channel on their machines: a queryable on `KEY/@memlane-type`
    /// answering with the record's bytes.
    fn offer_type(
        &mut self,
        session: &zenoh::Session,
        channel: &Channel,
        ctx: &Ctx,
        declare: impl Fn(zenoh::Error) -> BridgeError,
    ) -> Result<(), BridgeError> {
        let record = match channel.message_type() {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(channel = %ctx.name, error = %e, "the message type is not forwarded");
                return Ok(());
            }
        };
        tracing::info!(channel = %ctx.name, message_type = %record, "offering the message type to remote bridges");
        let (bytes, key) = (record.to_bytes(), type_key(&ctx.key));
        let reply_key = key.clone();
        let queryable = session
            .declare_queryable(key)
            .callback(move |query| {
                if let Err(e) = query.reply(reply_key.clone(), bytes.clone()).wait() {
                    tracing::debug!(error = %e, "reply to a query for the message type");
                }
            })
            .wait()
            .map_err(declare)?;
        self.keep.push(Box::new(queryable));
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
        let channel = Self::open_channel(config, &ctx.name, || remote_type(session, &ctx.key))?;
        let publ = channel.publisher().map_err(|e| BridgeError::Local {
            name: ctx.name.clone(),
            message: e.to_string(),
        })?;
        let state = Mutex::new(Inbound {
            seqs: Sequences::default(),
            publ,
            max: channel.max_message(),
            room: Room::new(channel.capacity()),
        });
        // Zenoh may call back from several threads (one per link): the
        // lock keeps each origin's frames in order and the publisher to
        // one caller at a time.
        let sub = session
            .declare_subscriber(ctx.key.clone())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                in_channel(&ctx, &mut st, &sample);
            })
            .wait()
            .map_err(declare)?;
        self.keep.push(Box::new(sub));
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

/// Sets how long the bridge lets back-pressure last, from Zenoh's lease
/// in `config` (10 s by default), and returns the stall budget: how long an
/// inbound message may wait for room in a full ring (half the lease).
///
/// That wait holds the Zenoh thread that read the message, which then reads
/// nothing more from the link; were it held for the lease, Zenoh would
/// close the session and lose what every route had in flight. (The
/// receiving side applies the *remote's* lease: the bridge assumes both
/// sides use the same.) On the sending side, a blocking put waits at most
/// [`WAIT_BEFORE_CLOSE_KEY`] before Zenoh closes the session: unless
/// `config` sets it to something other than Zenoh's default (5 s, the
/// budget itself), the bridge sets it to 80 % of the lease, so that the
/// remote's budget runs out first (with 3 s to spare by default, for the
/// remote to read through what had piled up in the link).
///
/// And so that a remote that reads nothing *and* sends nothing (a frozen
/// process, a machine gone) is given up by the put's limit, before the
/// lease expires: when the lease expires while a put waits, Zenoh cannot
/// close the link until the put gives up, then closes the transport twice
/// (the put's failure, then the lease's close once the link is closed: a
/// keep-alive period of flushing and up to 10 s of TCP linger later, or at
/// once when the remote resets the connection); a remote
/// reconnecting between both has its new transport deleted by the second
/// close (Zenoh 1.10 removes it from its table by the peer's id): the
/// remote's subscribers still match, but every put to them is dropped
/// without an error, for good. The lease expires at the earliest one
/// keep-alive period (the lease / `transport/link/tx/keep_alive`) short of
/// the lease after the remote's last message: unless `config` sets it, the
/// bridge sends keep-alives 20 times per lease rather than Zenoh's four,
/// which leaves a put 1.5 s (of the default lease) after the remote's
/// freeze to begin waiting, and shortens that window.
fn tie_waits_to_the_lease(config: &mut zenoh::Config) -> Result<Duration, BridgeError> {
    let number = |key: &str| {
        config
            .get_json(key)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let lease = lease_of(config);
    let keep_alive = number(KEEP_ALIVE_KEY);
    let wait = number(WAIT_BEFORE_CLOSE_KEY).map(Duration::from_micros);
    let zerr = |e: zenoh::Error| BridgeError::Zenoh(e.to_string());
    let keep_alive = if keep_alive == Some(ZENOH_KEEP_ALIVE) {
        config
            .insert_json5(KEEP_ALIVE_KEY, &KEEP_ALIVES_PER_LEASE.to_string())
            .map_err(zerr)?;
        KEEP_ALIVES_PER_LEASE
    } else {
        keep_alive.unwrap_or(ZENOH_KEEP_ALIVE)
    };
    let (wait, budget) = if wait == Some(Duration::from_micros(ZENOH_WAIT_BEFORE_CLOSE_US)) {
        let shorter = lease * PUT_WAIT_PERCENT_OF_LEASE / 100;
        config
            .insert_json5(WAIT_BEFORE_CLOSE_KEY, &shorter.as_micros().to_string())
            .map_err(zerr)?;
        (shorter, lease / 2)
    } else {
        let wait = wait.unwrap_or(lease);
        (wait, lease.min(wait) / 2)
    };
    if put_limit_meets_the_lease(lease, wait, keep_alive) {
        tracing::warn!(
            wait_before_close_ms = wait.as_millis() as u64,
            lease_ms = lease.as_millis() as u64,
            keep_alive,
            "a blocked put may wait until the lease can expire (wait_before_close >= lease - \
             lease / keep_alive): a peer that freezes while a put waits may have its session \
             closed twice, and if it returns in between, its new session is lost on this side \
             (matched, but nothing arrives): make wait_before_close shorter (docs/BRIDGE.md, Limits)"
        );
    }
    Ok(budget)
}

/// Whether a put waiting `wait` can still wait when the lease expires for
/// a remote that went silent just before the put began: the lease expires
/// at the earliest one keep-alive period (`lease / keep_alive`) short of
/// the lease. Then Zenoh closes the session twice, see
/// [`tie_waits_to_the_lease`].
fn put_limit_meets_the_lease(lease: Duration, wait: Duration, keep_alive: u64) -> bool {
    let period = lease / u32::try_from(keep_alive.max(1)).unwrap_or(u32::MAX);
    wait + period >= lease
}

/// The lease of a Zenoh configuration (10 s unless set).
fn lease_of(config: &zenoh::Config) -> Duration {
    let ms = config
        .get_json(LEASE_KEY)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_millis(ms.unwrap_or(10_000))
}

/// Whether, with this Zenoh configuration, every remote bridge whose
/// liveliness token the session sees is one it is connected to: in peer
/// mode (the default), where peers do not relay for each other (Zenoh 1.10
/// ignores the former `routing/peer/mode = "linkstate"`), unless a router is
/// connected (checked as it runs). The split watch is meaningful only then.
fn splits_are_seen_directly(config: &zenoh::Config) -> bool {
    let mode = config.get_json("mode").unwrap_or_default();
    !(mode.contains("client") || mode.contains("router"))
}

/// The remote bridges whose liveliness `tokens` this session has seen for
/// `after` or longer while not `connected` to them (`since` holds when
/// each was first seen so; the others are forgotten, so that a remote must
/// be missing for `after` in a row).
fn split_peers(
    tokens: &HashSet<String>,
    connected: &HashSet<String>,
    since: &mut HashMap<String, Instant>,
    now: Instant,
    after: Duration,
) -> Vec<String> {
    since.retain(|zid, _| tokens.contains(zid) && !connected.contains(zid));
    let mut lost = Vec::new();
    for zid in tokens.difference(connected) {
        let first = *since.entry(zid.clone()).or_insert(now);
        if now.duration_since(first) >= after {
            lost.push(zid.clone());
        }
    }
    lost.sort();
    lost
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Where a typed channel's message type is offered: a verbatim chunk
/// (`@…`), which no wildcard of a data subscription matches.
fn type_key(key: &str) -> String {
    format!("{key}/@memlane-type")
}

/// The message type a remote bridge offers for `key`, if one answers
/// within 2 s with a record that passes every check (a key with
/// wildcards has no one type: none is asked for).
fn remote_type(session: &zenoh::Session, key: &str) -> Option<TypeRecord> {
    if key.contains('*') || key.contains('$') {
        return None;
    }
    let replies = match session
        .get(type_key(key))
        .timeout(Duration::from_secs(2))
        .wait()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(key, error = %e, "cannot ask for the remote message type");
            return None;
        }
    };
    while let Ok(reply) = replies.recv() {
        let Ok(sample) = reply.result() else { continue };
        match TypeRecord::from_bytes(&sample.payload().to_bytes()) {
            Ok(r) => return Some(r),
            Err(e) => tracing::warn!(key, error = %e, "ignored a remote message type"),
        }
    }
    tracing::info!(
        key,
        "no remote bridge offers a message type (yet): the channel is created untyped"
    );
    None
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
    /// How long an inbound message waits for room in a full ring under
    /// `--full block` before the route drops instead ([`tie_waits_to_the_lease`]).
    stall_budget: Duration,
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

/// Puts a payload of `frames` framed messages (`len` message bytes) and
/// counts it.
fn put(
    ctx: &Ctx,
    publisher: &zenoh::pubsub::Publisher<'_>,
    payload: Vec<u8>,
    frames: usize,
    len: usize,
) {
    let c = &ctx.counters;
    match publisher.put(payload).wait() {
        Ok(()) => {
            if !c.out_matched.load(Relaxed) {
                c.out_unmatched.fetch_add(frames as u64, Relaxed);
            }
            c.out_puts.fetch_add(1, Relaxed);
            c.out_forwarded.fetch_add(frames as u64, Relaxed);
            c.out_bytes.fetch_add(len as u64, Relaxed);
        }
        Err(e) => {
            let n = c.out_errors.fetch_add(1, Relaxed) + 1;
            if should_log(n) {
                tracing::error!(key = %ctx.key, error = %e, errors = n, messages = frames, "put failed: its messages are lost");
            }
        }
    }
}

/// An outbound batch holds at most this many bytes (headers included): a
/// put must fit one of Zenoh's transport batches, or Zenoh fragments it
/// and the receiving bridge reads it in pieces. Zenoh sizes a TCP link's
/// batches from the socket's MSS (zenoh-link-tcp: the largest multiple of
/// MSS/2 below 64 KiB, the smaller of both ends'): 65,160 bytes on an
/// Ethernet link (MSS 1,448), 49,152 on Linux loopback (MSS 32,768 on the
/// accepting end). 48 KiB less 512 bytes for Zenoh's own headers fits
/// both. Measured on loopback: 4 KiB messages travel 11 to a put instead
/// of 7 with the former 32 KiB, for about a fifth more throughput; 60 KiB
/// puts arrived fragmented. A message larger than this travels alone.
const BATCH_BYTES: usize = 48 * 1024 - 512;
/// …and at most this many messages.
const BATCH_MESSAGES: usize = 1024;

/// A route's outbound batch and the sequence numbers it stamps.
struct Outbound {
    batch: wire::Batch,
    seq: u64,
}

impl Outbound {
    /// Appends `msg` unless this bridge published it itself; puts the
    /// batch first if `msg` would not fit in it.
    fn add(
        &mut self,
        ctx: &Ctx,
        publisher: &zenoh::pubsub::Publisher<'_>,
        msg: &memlane::Message<'_>,
    ) {
        if ctx.is_own(msg.position()) {
            ctx.counters.out_echo_skipped.fetch_add(1, Relaxed);
            return;
        }
        if !self.batch.is_empty() && self.batch.bytes() + HEADER_LEN + msg.len() > BATCH_BYTES {
            self.flush(ctx, publisher);
        }
        self.seq += 1;
        let h = Header {
            kind: Kind::Channel,
            origin: ctx.id,
            seq: self.seq,
        };
        self.batch.push(h, msg);
    }

    fn full(&self) -> bool {
        self.batch.bytes() >= BATCH_BYTES || self.batch.frames() >= BATCH_MESSAGES
    }

    fn flush(&mut self, ctx: &Ctx, publisher: &zenoh::pubsub::Publisher<'_>) {
        if !self.batch.is_empty() {
            let frames = self.batch.frames();
            // The message bytes: the batch without its headers.
            let bytes = self.batch.bytes() - frames * HEADER_LEN;
            put(ctx, publisher, self.batch.take(), frames, bytes);
        }
    }
}

fn out_channel(
    ctx: Ctx,
    mut sub: memlane::Subscriber,
    publisher: zenoh::pubsub::Publisher<'static>,
) {
    let mut out = Outbound {
        batch: wire::Batch::default(),
        seq: 0,
    };
    while !ctx.stopping() {
        match sub.recv_timeout(POLL) {
            Ok(msg) => out.add(&ctx, &publisher, &msg),
            Err(memlane::RecvTimeoutError::Timeout)
            | Err(memlane::RecvTimeoutError::Disconnected) => continue,
            Err(e) => {
                let n = ctx.counters.out_errors.fetch_add(1, Relaxed) + 1;
                tracing::error!(channel = %ctx.name, error = %e, "receive failed");
                if should_log(n) {
                    std::thread::sleep(POLL);
                }
                continue;
            }
        }
        // What else the channel holds now joins the batch: a lone message
        // waits for nothing, a burst costs one put per batch.
        while !out.full() {
            match sub.try_recv() {
                Ok(msg) => out.add(&ctx, &publisher, &msg),
                Err(_) => break, // empty, or an error the next receive reports
            }
        }
        out.flush(&ctx, &publisher);
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
                    put(&ctx, &publisher, framed, 1, buf.len());
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

/// What to do with one frame of an inbound payload.
enum Frame {
    /// Publish its bytes.
    Deliver,
    /// Dropped (counted): go on with the payload's next frame.
    Skip,
    /// Malformed (counted): the rest of the payload cannot be framed.
    Stop,
}

/// Checks a frame of an inbound sample; counts and logs what is dropped.
fn check(
    ctx: &Ctx,
    seqs: &mut Sequences,
    sample: &zenoh::sample::Sample,
    frame: Result<(Header, usize), wire::WireError>,
    want: Kind,
    max: usize,
) -> Frame {
    let c = &ctx.counters;
    let (h, len) = match frame {
        Ok(x) => x,
        Err(e) => {
            let n = c.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
            if should_log(n) {
                tracing::warn!(key = %sample.key_expr(), error = %e, dropped = n, "dropped a malformed inbound payload (from that frame on)");
            }
            return Frame::Stop;
        }
    };
    if h.origin == ctx.id {
        c.in_own.fetch_add(1, Relaxed);
        return Frame::Skip;
    }
    if h.kind != want {
        let n = c.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
        if should_log(n) {
            tracing::warn!(key = %sample.key_expr(), kind = ?h.kind, dropped = n, "dropped an inbound payload of the wrong kind (a channel and a slot bridged to one key?)");
        }
        return Frame::Stop;
    }
    if len > max {
        let n = c.in_dropped_oversized.fetch_add(1, Relaxed) + 1;
        if should_log(n) {
            tracing::warn!(key = %sample.key_expr(), len, max, dropped = n, "dropped an inbound message larger than the local maximum");
        }
        return Frame::Skip;
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
        Verdict::Deliver => Frame::Deliver,
        Verdict::Drop => {
            c.in_dropped_duplicate.fetch_add(1, Relaxed);
            Frame::Skip
        }
    }
}

/// An inbound channel route's state, behind the Zenoh callback's lock.
struct Inbound {
    seqs: Sequences,
    publ: memlane::Publisher,
    max: usize,
    room: Room,
}

/// Whether an inbound route's ring has been full for longer than the stall
/// budget ("overflowing"): then a message that does not fit is dropped
/// (counted) after a few yields, not the budget, until the local
/// subscribers are seen consuming again: room appearing during those
/// yields, or more than the ring's size published since the last drop
/// (which the ring, full then, could only take if they read).
struct Room {
    overflowing: bool,
    /// Dropped since the route began to overflow.
    dropped: u64,
    /// Message bytes published since the last drop.
    since_drop: u64,
    /// The ring's size in bytes.
    capacity: u64,
}

impl Room {
    fn new(capacity: u64) -> Room {
        Room {
            overflowing: false,
            dropped: 0,
            since_drop: 0,
            capacity,
        }
    }

    /// The subscribers consume again: waits for room return to the budget.
    fn drained(&mut self, ctx: &Ctx) {
        if self.overflowing {
            self.overflowing = false;
            tracing::warn!(channel = %ctx.name, dropped_while_full = self.dropped, "the local subscribers consume again: inbound messages wait for room again");
            self.dropped = 0;
        }
    }
}

/// Publishes the frames of an inbound sample into the local ring, on the
/// Zenoh thread that received it (no hand-off to another thread: one
/// wake-up less per message). A full ring under `--full block` holds that
/// thread, and so, through TCP and the remote bridge's blocking put, the
/// remote publishers: back-pressure end to end.
fn in_channel(ctx: &Ctx, st: &mut Inbound, sample: &zenoh::sample::Sample) {
    ctx.counters.in_samples.fetch_add(1, Relaxed);
    let Inbound {
        seqs,
        publ,
        max,
        room,
    } = st;
    // One wake-up of sleeping subscribers for the whole batch, not one per
    // message (each after the first would find them woken but not yet
    // running: a wasted system call).
    publ.with_one_wakeup(|publ| {
        let mut into = Into {
            seqs,
            publ,
            max: *max,
            room,
        };
        in_frames(ctx, &mut into, sample);
    });
}

/// Where an inbound sample's frames go.
struct Into<'a> {
    seqs: &'a mut Sequences,
    publ: &'a mut memlane::Publisher,
    max: usize,
    room: &'a mut Room,
}

/// [`in_channel`] inside its quiet stretch.
fn in_frames(ctx: &Ctx, st: &mut Into<'_>, sample: &zenoh::sample::Sample) {
    let payload = sample.payload();
    let mut slices = payload.slices();
    let (first, second) = (slices.next(), slices.next());
    if second.is_some() {
        // In pieces (Zenoh reassembled fragments): read each frame from
        // the pieces straight into its loan rather than join them first.
        return in_pieces(ctx, st, sample);
    }
    for frame in wire::frames(first.unwrap_or_default()) {
        let (h, bytes) = split(frame);
        match check(ctx, st.seqs, sample, h, Kind::Channel, st.max) {
            Frame::Deliver => {}
            Frame::Skip => continue,
            Frame::Stop => return,
        }
        let fill = |loan: &mut [u8]| {
            loan.copy_from_slice(bytes);
            true
        };
        if publish(ctx, st.publ, st.room, bytes.len(), fill) == Published::Stopping {
            return;
        }
    }
}

/// A decoded frame as [`check`] takes it, and its bytes (none if it is
/// malformed).
#[allow(clippy::type_complexity)]
fn split(
    frame: Result<(Header, &[u8]), wire::WireError>,
) -> (Result<(Header, usize), wire::WireError>, &[u8]) {
    match frame {
        Ok((h, bytes)) => (Ok((h, bytes.len())), bytes),
        Err(e) => (Err(e), &[]),
    }
}

/// [`in_channel`] for a payload in several slices, read with a reader.
fn in_pieces(ctx: &Ctx, st: &mut Into<'_>, sample: &zenoh::sample::Sample) {
    use std::io::Read;
    let payload = sample.payload();
    let mut reader = payload.reader();
    let mut left = payload.len();
    loop {
        let mut head = [0u8; HEADER_LEN];
        let frame = if left < HEADER_LEN {
            Err(wire::WireError::Short { len: left })
        } else if reader.read_exact(&mut head).is_err() {
            Err(wire::WireError::Short { len: 0 })
        } else {
            left -= HEADER_LEN;
            wire::decode_header(&head, left)
        };
        let (h, more) = match frame {
            Ok(f) => {
                left -= f.len;
                (Ok((f.header, f.len)), f.more)
            }
            Err(e) => (Err(e), false),
        };
        let len = h.as_ref().map_or(0, |&(_, len)| len);
        let skip = match check(ctx, st.seqs, sample, h, Kind::Channel, st.max) {
            Frame::Deliver => {
                let fill = |loan: &mut [u8]| reader.read_exact(loan).is_ok();
                match publish(ctx, st.publ, st.room, len, fill) {
                    Published::Yes => false,
                    Published::Dropped => true, // its bytes are still to be passed
                    Published::Stopping => return,
                }
            }
            Frame::Skip => true,
            Frame::Stop => return,
        };
        if skip {
            let skipped = std::io::copy(&mut (&mut reader).take(len as u64), &mut std::io::sink());
            if skipped.ok() != Some(len as u64) {
                return; // cannot happen: the length was checked against the payload's
            }
        }
        if !more {
            return;
        }
    }
}

/// What [`publish`] did with a message.
#[derive(Debug, PartialEq, Eq)]
enum Published {
    /// Published (`fill` was called).
    Yes,
    /// Dropped and counted without calling `fill` (a full ring under
    /// `--full drop`, a local error).
    Dropped,
    /// Not published: the bridge is stopping.
    Stopping,
}

/// Publishes one inbound message of `len` bytes, written into its loan by
/// `fill` (or drops it, counted, by the `--full` policy).
///
/// Under `--full block` a full ring is waited for, up to the stall budget
/// (half Zenoh's lease): a local subscriber that consumes slowly thus slows
/// the remote publishers down and loses nothing. One that consumes nothing
/// for that long (paused, hung) makes the route drop, counted in
/// `in_dropped_full`, without waiting, until the ring has room again: a
/// longer wait would make Zenoh close the whole session (its lease), losing
/// what every route had in flight.
fn publish(
    ctx: &Ctx,
    publ: &mut memlane::Publisher,
    room: &mut Room,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> Published {
    let mut spins = 0u32;
    let mut waiting_since = None;
    let mut loan = loop {
        match publ.try_loan(len) {
            Ok(loan) => {
                if waiting_since.is_some() {
                    room.drained(ctx); // room appeared: a subscriber read
                }
                room.since_drop = room.since_drop.saturating_add(len as u64);
                if room.since_drop > room.capacity {
                    room.drained(ctx);
                }
                break loan;
            }
            Err(memlane::TrySendError::Full) if ctx.full == FullPolicy::Block => {
                if ctx.stopping() {
                    return Published::Stopping;
                }
                let since = *waiting_since.get_or_insert_with(std::time::Instant::now);
                let stalled = if room.overflowing {
                    spins >= 64
                } else {
                    since.elapsed() >= ctx.stall_budget
                };
                if stalled {
                    if !room.overflowing {
                        room.overflowing = true;
                        tracing::warn!(channel = %ctx.name, waited = ?ctx.stall_budget, "the local ring stayed full (its subscribers consume nothing): dropping inbound messages that do not fit, counted, until they consume again (a longer wait would make Zenoh close the session)");
                    }
                    room.dropped += 1;
                    room.since_drop = 0;
                    ctx.counters.in_dropped_full.fetch_add(1, Relaxed);
                    return Published::Dropped;
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
                    tracing::warn!(channel = %ctx.name, dropped = n, "the local ring is full: dropped an inbound message (its full policy: drop)");
                }
                return Published::Dropped;
            }
            Err(e) => {
                let n = ctx.counters.in_dropped_malformed.fetch_add(1, Relaxed) + 1;
                if should_log(n) {
                    tracing::error!(channel = %ctx.name, error = %e, "cannot publish locally: dropped");
                }
                return Published::Dropped;
            }
        }
    };
    if !fill(&mut loan) {
        // Dropped uncommitted: the loan is discarded.
        ctx.counters.in_dropped_malformed.fetch_add(1, Relaxed);
        tracing::error!(channel = %ctx.name, "an inbound message ended early: dropped");
        return Published::Yes; // its bytes were read, as far as they went
    }
    ctx.note_own(loan.position());
    match loan.commit() {
        Ok(()) => {
            ctx.counters.in_forwarded.fetch_add(1, Relaxed);
            ctx.counters.in_bytes.fetch_add(len as u64, Relaxed);
        }
        Err(e) => tracing::error!(channel = %ctx.name, error = %e, "commit failed"),
    }
    Published::Yes
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
        ctx.counters.in_samples.fetch_add(1, Relaxed);
        let bytes = sample.payload().to_bytes();
        for frame in wire::frames(&bytes) {
            let (h, value) = split(frame);
            match check(&ctx, seqs, sample, h, Kind::Latest, max) {
                Frame::Deliver => {}
                Frame::Skip => continue,
                Frame::Stop => return,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Zenoh's default configuration with `sets` (key, JSON5 value) applied.
    fn config_with(sets: &[(&str, &str)]) -> zenoh::Config {
        let mut config = zenoh::Config::default();
        for (k, v) in sets {
            config.insert_json5(k, v).unwrap();
        }
        config
    }

    fn waits(sets: &[(&str, &str)]) -> (Duration, String) {
        let mut config = config_with(sets);
        let budget = tie_waits_to_the_lease(&mut config).unwrap();
        (budget, config.get_json(WAIT_BEFORE_CLOSE_KEY).unwrap())
    }

    #[test]
    fn back_pressure_waits_follow_the_lease() {
        // Zenoh's defaults: lease 10 s; a blocked put may wait 80 % of the
        // lease, an inbound message half of it.
        assert_eq!(waits(&[]), (Duration::from_secs(5), "8000000".into()));
        // A longer lease lengthens both.
        assert_eq!(
            waits(&[(LEASE_KEY, "40000")]),
            (Duration::from_secs(20), "32000000".into())
        );
        // A put's wait set by the user is kept, and bounds the budget.
        assert_eq!(
            waits(&[(WAIT_BEFORE_CLOSE_KEY, "2000000")]),
            (Duration::from_secs(1), "2000000".into())
        );
        assert_eq!(
            waits(&[(WAIT_BEFORE_CLOSE_KEY, "60000000")]),
            (Duration::from_secs(5), "60000000".into())
        );
    }

    #[test]
    fn a_put_limit_that_reaches_the_lease_is_told_apart() {
        let s = Duration::from_secs;
        // The bridge's defaults: 8 s against a lease of 10 s, expiring at
        // the earliest 0.5 s early.
        assert!(!put_limit_meets_the_lease(s(10), s(8), 20));
        // The former default (the lease itself), and Zenoh's four
        // keep-alives with the bridge's 8 s (the lease may expire at 7.5 s).
        assert!(put_limit_meets_the_lease(s(10), s(10), 20));
        assert!(put_limit_meets_the_lease(s(10), s(8), 4));
        assert!(!put_limit_meets_the_lease(s(10), s(7), 4));
        // A keep-alive count of 0 does not divide by zero.
        assert!(put_limit_meets_the_lease(s(10), s(1), 0));
    }

    #[test]
    fn a_remote_is_split_after_a_lease_routed_to_without_a_connection() {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let (t0, lease) = (Instant::now(), Duration::from_secs(10));
        let mut since = HashMap::new();
        // "b" is connected; "c" is routed to (its token seen) without a
        // connection: not yet split, and still not 9 s later.
        assert!(split_peers(&set(&["b", "c"]), &set(&["b"]), &mut since, t0, lease).is_empty());
        let at = |s| t0 + Duration::from_secs(s);
        assert!(split_peers(&set(&["b", "c"]), &set(&["b"]), &mut since, at(9), lease).is_empty());
        // A lease in a row: split.
        assert_eq!(
            split_peers(&set(&["b", "c"]), &set(&["b"]), &mut since, at(10), lease),
            ["c"]
        );
        // Connected again (or its token gone) in between: the count starts
        // over.
        let mut since = HashMap::new();
        split_peers(&set(&["c"]), &set(&[]), &mut since, t0, lease);
        split_peers(&set(&["c"]), &set(&["c"]), &mut since, at(5), lease);
        assert!(split_peers(&set(&["c"]), &set(&[]), &mut since, at(12), lease).is_empty());
        assert_eq!(
            split_peers(&set(&["c"]), &set(&[]), &mut since, at(22), lease),
            ["c"]
        );
        split_peers(&set(&[]), &set(&[]), &mut since, at(23), lease);
        assert!(since.is_empty(), "a token gone is forgotten");
    }

    #[test]
    fn splits_are_watched_between_peers_only() {
        let watched = |sets: &[(&str, &str)]| splits_are_seen_directly(&config_with(sets));
        assert!(watched(&[]));
        assert!(watched(&[("mode", "\"peer\"")]));
        assert!(!watched(&[("mode", "\"client\"")]));
        assert!(!watched(&[("mode", "\"router\"")]));
    }

    #[test]
    fn keep_alives_are_twenty_per_lease_unless_configured() {
        let keep_alive = |sets: &[(&str, &str)]| {
            let mut config = config_with(sets);
            tie_waits_to_the_lease(&mut config).unwrap();
            config.get_json(KEEP_ALIVE_KEY).unwrap()
        };
        assert_eq!(keep_alive(&[]), "20");
        assert_eq!(keep_alive(&[(KEEP_ALIVE_KEY, "6")]), "6");
    }
}
