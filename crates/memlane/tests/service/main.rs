//! Request-response services: many client processes × several server
//! processes (each request answered exactly once, each client only its own
//! responses), time-outs, a killed server, a killed client, malformed
//! requests, and the typed, serde and async forms.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use common::{expect_success, fnv1a, spawn_role, TestDir, ROLE_ENV};
use memlane::service::{service, CallError};

const CALLS: u64 = 300;
/// How long a test's server waits for a request before the test fails
/// (a watchdog, never a timing assertion).
const WAIT: Duration = Duration::from_secs(60);

fn env(k: &str) -> String {
    std::env::var(k).unwrap()
}

/// The answer to a request: its checksum, then the request reversed.
fn answer(req: &[u8]) -> Vec<u8> {
    let mut v = fnv1a(req).to_le_bytes().to_vec();
    v.extend(req.iter().rev());
    v
}

/// A server child: answers until the stop file exists, then prints how
/// many requests it claimed.
#[test]
fn child_server() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("server") {
        return;
    }
    let dir = env("MEMLANE_TEST_DIR");
    let name = env("MEMLANE_TEST_NAME");
    let mut server = service(&name).dir(&dir).server().unwrap();
    println!("READY");
    let stop = std::path::Path::new(&dir).join("stop");
    let hang = std::env::var("HANG").is_ok();
    loop {
        match server.recv_timeout(Duration::from_millis(50)) {
            Ok(req) => {
                if hang {
                    // Claims and never answers (killed by the test).
                    std::thread::sleep(Duration::from_secs(3600));
                }
                server.respond(&req, &answer(&req.payload)).unwrap();
            }
            Err(memlane::ServeError::Timeout) => {
                if stop.exists() {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    let s = server.stats();
    println!("CLAIMED {} MALFORMED {}", s.claimed, s.malformed);
}

/// A client child: CALLS calls with distinct payloads, each response
/// checked.
#[test]
fn child_client() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("client") {
        return;
    }
    let dir = env("MEMLANE_TEST_DIR");
    let name = env("MEMLANE_TEST_NAME");
    let me: u64 = env("CLIENT").parse().unwrap();
    let mut client = service(&name).dir(&dir).client().unwrap();
    for i in 0..CALLS {
        let req: Vec<u8> =
            format!("client {me} call {i} {}", "x".repeat((i % 50) as usize)).into_bytes();
        let resp = client.call_timeout(&req, Duration::from_secs(60)).unwrap();
        assert_eq!(resp, answer(&req), "client {me} call {i}");
    }
    println!("DONE {CALLS}");
}

fn claimed(out: &str) -> u64 {
    let l = out.lines().find(|l| l.starts_with("CLAIMED")).expect(out);
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn many_clients_and_servers_each_request_answered_once() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-mp");
    let name = "svc-mp";
    let vars = |extra: Vec<(&'static str, String)>| {
        let mut v = vec![
            ("MEMLANE_TEST_DIR", dir.path.display().to_string()),
            ("MEMLANE_TEST_NAME", name.to_string()),
        ];
        v.extend(extra);
        v
    };
    let mut servers: Vec<_> = (0..3)
        .map(|_| spawn_role("child_server", "server", &vars(vec![])))
        .collect();
    for s in &mut servers {
        common::wait_ready(s);
    }
    let clients: Vec<_> = (0..4)
        .map(|i| {
            spawn_role(
                "child_client",
                "client",
                &vars(vec![("CLIENT", i.to_string())]),
            )
        })
        .collect();
    for c in clients {
        let out = c.wait(Duration::from_secs(120));
        let s = expect_success(&out, "client");
        assert!(s.contains(&format!("DONE {CALLS}")), "{s}");
    }
    std::fs::write(dir.path.join("stop"), b"").unwrap();
    let mut total = 0;
    for s in servers {
        let out = s.wait(Duration::from_secs(60));
        total += claimed(&expect_success(&out, "server"));
    }
    assert_eq!(
        total,
        4 * CALLS,
        "every request claimed by exactly one server"
    );
    // The clients removed their own files: only the request channel is left.
    memlane::service::remove_service(Some(&dir.path), name).unwrap();
    let left: Vec<_> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "stop")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn no_server_and_timeouts() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-to");
    // Never created.
    let e = service("svc-none").dir(&dir.path).client().unwrap_err();
    assert!(matches!(e, memlane::ServiceError::NoServer { .. }), "{e}");
    // Created, server gone.
    let server = service("svc-to").dir(&dir.path).server().unwrap();
    let mut client = service("svc-to").dir(&dir.path).client().unwrap();
    // A server that claims but never answers: Timeout, claimed.
    let mut server = server;
    let t = std::thread::spawn(move || {
        let r = server.recv_timeout(WAIT).unwrap();
        (server, r)
    });
    let e = client
        .call_timeout(b"q", Duration::from_millis(300))
        .unwrap_err();
    let (mut server, req) = t.join().unwrap();
    assert!(matches!(e, CallError::Timeout { claimed: true, .. }), "{e}");
    // Its late answer is ignored by the next call, which gets its own.
    server.respond(&req, b"late").unwrap();
    let t = std::thread::spawn(move || {
        let r = server.recv_timeout(WAIT).unwrap();
        server.respond(&r, b"fresh").unwrap();
        server
    });
    assert_eq!(client.call(b"q2").unwrap(), b"fresh");
    let server = t.join().unwrap();
    // No server took it: Timeout, unclaimed, and then cancelled (a server
    // that reads it later skips it).
    let mut server = server;
    let e = client
        .call_timeout(b"q3", Duration::from_millis(100))
        .unwrap_err();
    assert!(
        matches!(e, CallError::Timeout { claimed: false, .. }),
        "{e}"
    );
    assert!(matches!(server.try_recv(), Ok(None)));
    assert_eq!(server.stats().skipped, 1);
    drop(server);
    let e = client.call(b"q4").unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }), "{e}");
    drop(client);
    memlane::service::remove_service(Some(&dir.path), "svc-to").unwrap();
}

#[test]
fn killed_server_fails_the_call_not_hangs() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-kill");
    let name = "svc-kill";
    let vars = vec![
        ("MEMLANE_TEST_DIR", dir.path.display().to_string()),
        ("MEMLANE_TEST_NAME", name.to_string()),
        ("HANG", "1".to_string()),
    ];
    let mut server = spawn_role("child_server", "server", &vars);
    common::wait_ready(&mut server);
    let mut client = service(name).dir(&dir.path).client().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SIGKILL on Unix, TerminateProcess on Windows: no clean-up runs.
        server.child().kill().unwrap();
        server
    });
    // A time-out far longer than the test: the liveness check ends it.
    let e = client
        .call_timeout(b"q", Duration::from_secs(600))
        .unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }), "{e}");
    drop(killer.join().unwrap());
    drop(client);
    memlane::service::remove_service(Some(&dir.path), name).unwrap();
}

/// A client child that sends one request and waits to be killed.
#[test]
fn child_stuck_client() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("stuck") {
        return;
    }
    let mut client = service(&env("MEMLANE_TEST_NAME"))
        .dir(env("MEMLANE_TEST_DIR"))
        .client()
        .unwrap();
    println!("READY");
    let _ = client.call_timeout(b"stuck", Duration::from_secs(3600));
}

#[test]
fn killed_client_does_not_block_the_server() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-ck");
    let name = "svc-ck";
    let mut server = service(name).dir(&dir.path).server().unwrap();
    let vars = vec![
        ("MEMLANE_TEST_DIR", dir.path.display().to_string()),
        ("MEMLANE_TEST_NAME", name.to_string()),
    ];
    let mut stuck = spawn_role("child_stuck_client", "stuck", &vars);
    common::wait_ready(&mut stuck);
    let req = server.recv_timeout(WAIT).unwrap();
    assert_eq!(req.payload, b"stuck");
    stuck.child().kill().unwrap();
    drop(stuck.wait(Duration::from_secs(30)));
    // Answering the dead client neither blocks nor fails.
    server.respond(&req, b"to nobody").unwrap();
    let mut client = service(name).dir(&dir.path).client().unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..100 {
            let r = server.recv_timeout(WAIT).unwrap();
            server.respond(&r, &r.payload).unwrap();
        }
        server
    });
    for i in 0..100u32 {
        assert_eq!(client.call(&i.to_le_bytes()).unwrap(), i.to_le_bytes());
    }
    let server = t.join().unwrap();
    // The answer to the dead client was sent into its orphaned ring or
    // dropped; the other 100 were delivered.
    let st = server.stats();
    assert_eq!(st.responded + st.dropped, 101, "{st:?}");
    drop((client, server));
    memlane::service::remove_service(Some(&dir.path), name).unwrap();
    let _ = memlane::gc(Some(&dir.path), false);
}

#[test]
fn malformed_requests_are_counted_and_skipped() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-bad");
    let mut server = service("svc-bad").dir(&dir.path).server().unwrap();
    let ch = memlane::Channel::open_options("svc-bad.rq")
        .dir(&dir.path)
        .open()
        .unwrap();
    let mut publ = ch.publisher().unwrap();
    publ.send(b"short").unwrap();
    publ.send(&[0u8; 64]).unwrap();
    // A well-formed header naming a client that does not exist.
    let mut fake = Vec::new();
    fake.extend_from_slice(b"MLRQ");
    fake.extend_from_slice(&1u16.to_le_bytes());
    fake.extend_from_slice(&[0, 0]);
    fake.extend_from_slice(&1u32.to_le_bytes());
    fake.extend_from_slice(&7u32.to_le_bytes());
    fake.extend_from_slice(&1u64.to_le_bytes());
    fake.extend_from_slice(&1u64.to_le_bytes());
    publ.send(&fake).unwrap();
    assert!(matches!(server.try_recv(), Ok(None)));
    assert_eq!(server.stats().malformed, 2);
    assert_eq!(server.stats().orphaned, 1);
    drop((publ, ch, server));
    memlane::service::remove_service(Some(&dir.path), "svc-bad").unwrap();
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
#[repr(C)]
struct Add {
    a: u64,
    b: u64,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Greeting {
    who: String,
    times: u32,
}

#[test]
fn typed_serde_and_async_forms() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("svc-typed");
    let mut server = service("svc-typed").dir(&dir.path).server().unwrap();
    let mut client = service("svc-typed").dir(&dir.path).client().unwrap();
    let t = std::thread::spawn(move || {
        let r = server.recv_timeout(WAIT).unwrap();
        let add: Add = r.plain().unwrap();
        server.respond_plain(&r, &(add.a + add.b)).unwrap();
        let r = server.recv_timeout(WAIT).unwrap();
        let g: Greeting = r.serde().unwrap();
        server
            .respond_serde(&r, &g.who.repeat(g.times as usize))
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = server.recv_async().await.unwrap();
            server.respond(&r, &answer(&r.payload)).unwrap();
        });
        let r = server.recv_timeout(WAIT).unwrap();
        server.respond_error(&r, "no such thing").unwrap();
        server
    });
    let sum: u64 = client
        .call_plain(&Add { a: 2, b: 40 }, Duration::from_secs(30))
        .unwrap();
    assert_eq!(sum, 42);
    let s: String = client
        .call_serde(
            &Greeting {
                who: "ab".into(),
                times: 3,
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(s, "ababab");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = rt
        .block_on(client.call_async(b"async", Duration::from_secs(30)))
        .unwrap();
    assert_eq!(resp, answer(b"async"));
    let e = client.call(b"what").unwrap_err();
    assert!(
        matches!(&e, CallError::Remote(m) if m == "no such thing"),
        "{e}"
    );
    let server = t.join().unwrap();
    // The async call's time-out, kept without a runtime timer.
    let e = rt
        .block_on(client.call_async(b"nobody reads", Duration::from_millis(200)))
        .unwrap_err();
    assert!(
        matches!(e, CallError::Timeout { claimed: false, .. }),
        "{e}"
    );
    drop(server);
    let e = rt
        .block_on(client.call_async(b"x", Duration::from_secs(600)))
        .unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }), "{e}");
    drop(client);
    memlane::service::remove_service(Some(&dir.path), "svc-typed").unwrap();
}
