//! Micro-benchmarks of memlane's hot paths, in one process:
//!
//! * `send`: a copying send with no subscriber (the claim, the copy, the
//!   commit and the notify check; nothing waits, nothing wakes);
//! * `send+try_recv`: a send and its receive by one subscriber, same thread;
//! * `try_recv/empty`: polling an empty channel;
//! * `loan+commit`: a zero-copy loan committed without writing, at 64 B and
//!   1 MiB (the same cost: nothing is copied);
//! * `event/notify, no waiter`: `Event::notify` when nobody sleeps (no
//!   system call).
//!
//! Channels live in a private directory, removed at the end.
//! Run: `cargo bench -p memlane --bench hot_paths`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlane::{Channel, Event};

/// A private directory for the benchmark's names, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let base = if std::fs::metadata("/dev/shm").is_ok_and(|m| m.is_dir()) {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("memlane-hot-paths-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).expect("create a private benchmark directory");
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn channel(dir: &Dir, name: &str, capacity: u64, max_message: usize) -> Channel {
    Channel::builder(name)
        .capacity(capacity)
        .max_message(max_message)
        .dir(&dir.0)
        .create()
        .expect("create a benchmark channel")
}

fn hot_paths(c: &mut Criterion) {
    let dir = Dir::new();

    let mut g = c.benchmark_group("send");
    for size in [8usize, 64, 1024] {
        let ch = channel(&dir, &format!("send-{size}"), 1 << 20, 64 << 10);
        let mut publ = ch.publisher().expect("publisher");
        let msg = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("no subscriber", size), &msg, |b, msg| {
            b.iter(|| publ.send(black_box(msg)).expect("send"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("send+try_recv");
    for size in [8usize, 64, 1024] {
        let ch = channel(&dir, &format!("pair-{size}"), 1 << 20, 64 << 10);
        let mut publ = ch.publisher().expect("publisher");
        let mut sub = ch.subscriber().expect("subscriber");
        let msg = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("one subscriber", size), &msg, |b, msg| {
            b.iter(|| {
                publ.send(black_box(msg)).expect("send");
                let m = sub.try_recv().expect("a message is waiting");
                black_box(m[0]);
            })
        });
    }
    g.finish();

    {
        let ch = channel(&dir, "empty", 1 << 20, 64 << 10);
        let _publ = ch.publisher().expect("publisher");
        let mut sub = ch.subscriber().expect("subscriber");
        c.bench_function("try_recv/empty", |b| {
            b.iter(|| black_box(sub.try_recv().is_err()))
        });
    }

    let mut g = c.benchmark_group("loan+commit");
    for size in [64usize, 1 << 20] {
        let ch = channel(&dir, &format!("loan-{size}"), 4 << 20, 1 << 20);
        let mut publ = ch.publisher().expect("publisher");
        g.bench_with_input(
            BenchmarkId::new("no subscriber", size),
            &size,
            |b, &size| {
                b.iter(|| {
                    let mut loan = publ.loan(size).expect("loan");
                    loan[0] = 1;
                    loan.commit().unwrap();
                })
            },
        );
    }
    let ch = channel(&dir, "copy-1MiB", 4 << 20, 1 << 20);
    let mut publ = ch.publisher().expect("publisher");
    let big = vec![7u8; 1 << 20];
    g.bench_function("copying send for comparison/1048576", |b| {
        b.iter(|| publ.send(black_box(&big)).expect("send"))
    });
    g.finish();

    // The typed API next to the byte API it is built on, 64-byte values.
    let mut g = c.benchmark_group("typed 64 B");
    let typed = |name: &str| {
        Channel::builder(name)
            .capacity(1 << 20)
            .dir(&dir.0)
            .message_type::<[u64; 8]>()
            .create()
            .expect("create a typed benchmark channel")
            .typed::<[u64; 8]>()
            .expect("typed")
    };
    {
        let ch = typed("typed-bytes");
        let mut publ = ch.channel().publisher().expect("publisher");
        let mut sub = ch.channel().subscriber().expect("subscriber");
        let msg = [7u8; 64];
        g.bench_function("bytes: send+try_recv", |b| {
            b.iter(|| {
                publ.send(black_box(&msg)).expect("send");
                let m = sub.try_recv().expect("a message is waiting");
                black_box(m[63]);
            })
        });
        g.bench_function("bytes: loan+commit+try_recv", |b| {
            b.iter(|| {
                let mut loan = publ.loan(64).expect("loan");
                loan[0] = 1;
                loan.commit().unwrap();
                let m = sub.try_recv().expect("a message is waiting");
                black_box(m[0]);
            })
        });
    }
    {
        let ch = typed("typed-typed");
        let mut publ = ch.publisher().expect("publisher");
        let mut sub = ch.subscriber().expect("subscriber");
        let value = [7u64; 8];
        g.bench_function("typed: send+try_recv", |b| {
            b.iter(|| {
                publ.send(black_box(&value)).expect("send");
                let m = sub.try_recv().expect("a message is waiting");
                black_box(m[7]);
            })
        });
        g.bench_function("typed: loan+commit+try_recv", |b| {
            b.iter(|| {
                let mut loan = publ.loan().expect("loan");
                loan[0] = 1;
                loan.commit().unwrap();
                let m = sub.try_recv().expect("a message is waiting");
                black_box(m[0]);
            })
        });
    }
    g.finish();

    let ev = Event::builder("ev")
        .dir(&dir.0)
        .create()
        .expect("create an event");
    c.bench_function("event/notify, no waiter", |b| b.iter(|| ev.notify()));
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
