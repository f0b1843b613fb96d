//! The benchmark itself (Unix: it measures a Unix stream socket next to
//! the bridge and Zenoh); see `main.rs`.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use memlane::Channel;
use memlane_zenoh::config::{BridgeConfig, Direction, Route};
use memlane_zenoh::wire::Kind;
use memlane_zenoh::zenoh::{self, qos::CongestionControl, Wait};

const PING: u8 = b'P';
const TPUT: u8 = b'T';
const END: u8 = b'E';

/// Sends and receives one message; the path's two ends.
trait Link {
    fn send(&mut self, msg: &[u8]);
    /// The next message, or None after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>>;
}

// ---- Unix socket ----
struct Unix(BufReader<UnixStream>, UnixStream);

impl Link for Unix {
    fn send(&mut self, msg: &[u8]) {
        self.1.write_all(&(msg.len() as u32).to_le_bytes()).unwrap();
        self.1.write_all(msg).unwrap();
    }
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.0.get_ref().set_read_timeout(Some(timeout)).unwrap();
        let mut len = [0u8; 4];
        self.0.read_exact(&mut len).ok()?;
        let mut v = vec![0u8; u32::from_le_bytes(len) as usize];
        self.0.read_exact(&mut v).unwrap();
        Some(v)
    }
}

// ---- Zenoh ----
struct Zenoh {
    _session: zenoh::Session,
    publ: zenoh::pubsub::Publisher<'static>,
    sub: zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>,
    /// How long a receive polls the queue before it blocks
    /// (`BENCH_ZENOH_POLL_US`, default 0): Zenoh's subscriber has no such
    /// setting, so this stands for an application that polls, as the
    /// bridge's outbound subscriber does.
    poll: Duration,
}

/// A Zenoh configuration on 127.0.0.1 TCP: listening on and/or connecting to
/// the given ports, multicast scouting off.
fn zenoh_config(listen: Option<u16>, connect: Option<u16>) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    if let Some(p) = listen {
        c.insert_json5("listen/endpoints", &format!("[\"tcp/127.0.0.1:{p}\"]"))
            .unwrap();
    }
    if let Some(p) = connect {
        c.insert_json5("connect/endpoints", &format!("[\"tcp/127.0.0.1:{p}\"]"))
            .unwrap();
    }
    c
}

fn zenoh_session(listen: Option<u16>, connect: Option<u16>) -> zenoh::Session {
    zenoh::open(zenoh_config(listen, connect)).wait().unwrap()
}

impl Zenoh {
    fn new(session: zenoh::Session, out: &str, inp: &str) -> Zenoh {
        let publ = session
            .declare_publisher(out.to_string())
            .congestion_control(CongestionControl::Block)
            .wait()
            .unwrap();
        let sub = session
            .declare_subscriber(inp.to_string())
            .with(zenoh::handlers::FifoChannel::new(1024))
            .wait()
            .unwrap();
        let poll_us = std::env::var("BENCH_ZENOH_POLL_US").map_or(0, |s| s.parse().unwrap());
        Zenoh {
            _session: session,
            publ,
            sub,
            poll: Duration::from_micros(poll_us),
        }
    }
}

impl Link for Zenoh {
    fn send(&mut self, msg: &[u8]) {
        self.publ.put(msg.to_vec()).wait().unwrap();
    }
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let start = Instant::now();
        while start.elapsed() < self.poll {
            if let Ok(Some(s)) = self.sub.try_recv() {
                return Some(s.payload().to_bytes().into_owned());
            }
            std::hint::spin_loop();
        }
        let s = self.sub.recv_timeout(timeout).ok()??;
        Some(s.payload().to_bytes().into_owned())
    }
}

// ---- memlane (through the bridges) ----
struct Memlane {
    publ: memlane::Publisher,
    sub: memlane::Subscriber,
}

impl Memlane {
    fn new(dir: &Path, out: &str, inp: &str) -> Memlane {
        let open = |name: &str| -> Channel {
            let start = Instant::now();
            loop {
                match Channel::open_options(name).dir(dir).open() {
                    Ok(c) => return c,
                    Err(_) if start.elapsed() < Duration::from_secs(30) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("open {name}: {e}"),
                }
            }
        };
        let (o, i) = (open(out), open(inp));
        let mut sub = i.subscriber().unwrap();
        // Four processes share the CPUs here: a receiver that spins
        // before it sleeps would take the time the others need.
        sub.set_spin(
            std::env::var("BENCH_SPIN")
                .map(|s| s.parse().unwrap())
                .unwrap_or(0),
        );
        Memlane {
            sub,
            publ: o.publisher().unwrap(),
        }
    }
}

impl Link for Memlane {
    fn send(&mut self, msg: &[u8]) {
        self.publ.send(msg).unwrap();
    }
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.sub.recv_timeout(timeout).ok().map(|m| m.to_vec())
    }
}

/// The echo side: pings back, counts throughput messages, answers END with the count.
fn echo(link: &mut dyn Link) {
    let mut count = 0u64;
    loop {
        let Some(m) = link.recv(Duration::from_secs(600)) else {
            return;
        };
        match m.first() {
            Some(&PING) => link.send(&m),
            Some(&TPUT) => count += 1,
            Some(&END) => {
                let mut r = vec![END];
                r.extend_from_slice(&count.to_le_bytes());
                link.send(&r);
                count = 0;
            }
            _ => return,
        }
    }
}

struct Results {
    p50: Duration,
    p99: Duration,
}

/// Round trips of `size` bytes: one-way median and p99.
fn latency(link: &mut dyn Link, size: usize, n: usize) -> Results {
    let mut msg = vec![0u8; size.max(16)];
    msg[0] = PING;
    // Until the path answers (the first messages may find no subscriber yet).
    let mut seq = 0u64;
    loop {
        seq += 1;
        msg[1..9].copy_from_slice(&seq.to_le_bytes());
        link.send(&msg);
        if let Some(r) = link.recv(Duration::from_millis(200)) {
            if r[1..9] == msg[1..9] {
                break;
            }
        }
    }
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        seq += 1;
        msg[1..9].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        link.send(&msg);
        loop {
            let r = link
                .recv(Duration::from_secs(30))
                .expect("echo within 30 s");
            if r[1..9] == msg[1..9] {
                break;
            }
        }
        if i >= n / 10 {
            rtts.push(t0.elapsed() / 2);
        }
    }
    rtts.sort();
    Results {
        p50: rtts[rtts.len() / 2],
        p99: rtts[rtts.len() * 99 / 100],
    }
}

/// Messages per second of `size` bytes one way.
fn throughput(link: &mut dyn Link, size: usize, n: u64) -> f64 {
    let mut msg = vec![0u8; size.max(16)];
    msg[0] = TPUT;
    let t0 = Instant::now();
    for _ in 0..n {
        link.send(&msg);
    }
    link.send(&[END; 16]);
    let r = link.recv(Duration::from_secs(600)).expect("the count");
    let dt = t0.elapsed();
    let got = u64::from_le_bytes(r[1..9].try_into().unwrap());
    assert_eq!(got, n, "every message arrived");
    n as f64 / dt.as_secs_f64()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn me() -> Command {
    Command::new(std::env::current_exe().unwrap())
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run_bridge(dir: &str, port: u16, listen: bool, out: &str, inp: &str) {
    let mut cfg = BridgeConfig {
        dir: Some(PathBuf::from(dir)),
        capacity: Some(4 << 20),
        max_message: Some(1 << 20),
        // The bridge's own default (0) unless BENCH_BRIDGE_SPIN says otherwise.
        spin: std::env::var("BENCH_BRIDGE_SPIN")
            .map_or(BridgeConfig::default().spin, |s| s.parse().unwrap()),
        ..BridgeConfig::default()
    };
    cfg.routes
        .push(Route::parse(out, Direction::Out, Kind::Channel).unwrap());
    cfg.routes
        .push(Route::parse(inp, Direction::In, Kind::Channel).unwrap());
    let (l, c) = if listen {
        (Some(port), None)
    } else {
        (None, Some(port))
    };
    let _bridge = memlane_zenoh::Bridge::start(&cfg, zenoh_config(l, c)).unwrap();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Sizes, with round trips and throughput messages per round.
const SIZES: [(usize, usize, u64); 3] = [
    (64, 2_000, 100_000),
    (4096, 1_000, 25_000),
    (65536, 400, 2_500),
];

/// One measurement of one path at one size.
struct Row {
    path: &'static str,
    size: usize,
    lat: Results,
    rate: f64,
}

fn measure(path: &'static str, link: &mut dyn Link, size: usize, n_lat: usize, n_tput: u64) -> Row {
    let lat = latency(link, size, n_lat);
    let rate = throughput(link, size, n_tput);
    eprintln!(
        "{path:>6} {size:>6} B: one-way p50 {:>9.1?} p99 {:>9.1?}; {:>10.0} msg/s ({:.1} MB/s)",
        lat.p50,
        lat.p99,
        rate,
        rate * size as f64 / 1e6
    );
    Row {
        path,
        size,
        lat,
        rate,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("unix-echo") => {
            let s = UnixStream::connect(&args[2]).unwrap();
            let mut link = Unix(BufReader::new(s.try_clone().unwrap()), s);
            return echo(&mut link);
        }
        Some("zenoh-echo") => {
            let s = zenoh_session(Some(args[2].parse().unwrap()), None);
            return echo(&mut Zenoh::new(s, "bench/pong", "bench/ping"));
        }
        Some("memlane-echo") => {
            return echo(&mut Memlane::new(Path::new(&args[2]), "pong", "ping"))
        }
        Some("bridge") => {
            let listen = args[4] == "listen";
            return run_bridge(
                &args[2],
                args[3].parse().unwrap(),
                listen,
                &args[5],
                &args[6],
            );
        }
        _ => {}
    }
    // `bridge_bench [ROUNDS]`: the paths are measured in turn, size by
    // size, ROUNDS times (default 5), so that a noisy moment of a shared
    // machine falls on all of them; the tables give medians over rounds.
    let rounds: usize = args.get(1).map(|r| r.parse().expect("ROUNDS")).unwrap_or(5);
    println!(
        "CPU: {} ({} CPUs online; flags: {}); {rounds} interleaved rounds",
        memlane_benchkit::cpu_model().unwrap_or_else(|| "unknown".into()),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memlane_benchkit::cpu_flags().unwrap_or_default()
    );
    let tmp = std::env::temp_dir().join(format!("memlane-bridge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    let path = tmp.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut children = Kill(vec![me()
        .args(["unix-echo", path.to_str().unwrap()])
        .spawn()
        .unwrap()]);
    let (s, _) = listener.accept().unwrap();
    let mut unix = Unix(BufReader::new(s.try_clone().unwrap()), s);

    let port = free_port();
    children.0.push(
        me().args(["zenoh-echo", &port.to_string()])
            .spawn()
            .unwrap(),
    );
    let mut zenoh = Zenoh::new(zenoh_session(None, Some(port)), "bench/ping", "bench/pong");

    let (a, b) = (tmp.join("a"), tmp.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (a, b) = (
        a.to_str().unwrap().to_string(),
        b.to_str().unwrap().to_string(),
    );
    let port = free_port().to_string();
    for args in [
        &["bridge", &a, &port, "listen", "ping", "pong"][..],
        &["bridge", &b, &port, "connect", "pong", "ping"],
        &["memlane-echo", &b],
    ] {
        children.0.push(me().args(args).spawn().unwrap());
    }
    let mut bridge = Memlane::new(Path::new(&a), "ping", "pong");

    // `BENCH_PATHS=zenoh,bridge` and `BENCH_SIZES=4096` narrow a run (for a
    // profiler, say); `BENCH_TPUT_X=N` sends N times as many throughput
    // messages per round.
    let only = |var: &str| {
        std::env::var(var)
            .ok()
            .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
    };
    let (paths, sizes) = (only("BENCH_PATHS"), only("BENCH_SIZES"));
    let tput_x: u64 = std::env::var("BENCH_TPUT_X").map_or(1, |s| s.parse().expect("BENCH_TPUT_X"));
    let wanted = |list: &Option<Vec<String>>, item: &str| {
        list.as_ref().is_none_or(|l| l.iter().any(|x| x == item))
    };
    let mut rows = Vec::new();
    for round in 0..rounds {
        eprintln!("round {}", round + 1);
        for &(size, n_lat, n_tput) in &SIZES {
            if !wanted(&sizes, &size.to_string()) {
                continue;
            }
            let links: [(&'static str, &mut dyn Link); 3] = [
                ("unix", &mut unix),
                ("zenoh", &mut zenoh),
                ("bridge", &mut bridge),
            ];
            for (name, link) in links {
                if wanted(&paths, name) {
                    rows.push(measure(name, link, size, n_lat, n_tput * tput_x));
                }
            }
        }
    }
    drop(children);
    let _ = std::fs::remove_dir_all(&tmp);

    let of =
        |p: &'static str, size: usize| rows.iter().filter(move |r| r.path == p && r.size == size);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("\nMedians over {rounds} rounds:\n");
    println!("| path | size | one-way p50 | one-way p99 | msg/s | MB/s |");
    println!("|---|---|---|---|---|---|");
    for p in ["unix", "zenoh", "bridge"] {
        for &(size, _, _) in &SIZES {
            if of(p, size).next().is_none() {
                continue;
            }
            let p50 = median(of(p, size).map(|r| us(r.lat.p50)).collect());
            let p99 = median(of(p, size).map(|r| us(r.lat.p99)).collect());
            let rate = median(of(p, size).map(|r| r.rate).collect());
            println!(
                "| {p} | {size} B | {p50:.1} µs | {p99:.1} µs | {rate:.0} | {:.1} |",
                rate * size as f64 / 1e6
            );
        }
    }
    println!("\nRatios per round (median, range):\n");
    println!("| size | bridge / zenoh one-way p50 | bridge / zenoh throughput |");
    println!("|---|---|---|");
    for &(size, _, _) in &SIZES {
        let pairs: Vec<(&Row, &Row)> = of("bridge", size).zip(of("zenoh", size)).collect();
        if pairs.is_empty() {
            continue;
        }
        let lat: Vec<f64> = pairs
            .iter()
            .map(|(b, z)| b.lat.p50.as_secs_f64() / z.lat.p50.as_secs_f64())
            .collect();
        let tput: Vec<f64> = pairs.iter().map(|(b, z)| b.rate / z.rate).collect();
        let range = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            format!("{lo:.2}–{hi:.2}")
        };
        println!(
            "| {size} B | {:.2} ({}) | {:.2} ({}) |",
            median(lat.clone()),
            range(&lat),
            median(tput.clone()),
            range(&tput)
        );
    }
}
