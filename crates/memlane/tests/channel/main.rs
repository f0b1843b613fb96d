//! Channel behaviour in one process: send/receive variants, back-pressure,
//! loans, wrap-around, counters near overflow, introspection, and a
//! property test of the ring against a `VecDeque` model.

#[path = "../common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::TestDir;
use memlane::{
    Channel, CreateError, JoinError, Mode, OpenError, RecvError, RecvTimeoutError, SendError,
    SendTimeoutError, TryRecvError, TrySendError,
};
use proptest::prelude::*;

fn channel(d: &TestDir, name: &str, capacity: u64, max_message: usize) -> Channel {
    Channel::builder(name)
        .capacity(capacity)
        .max_message(max_message)
        .dir(&d.path)
        .create()
        .unwrap()
}

#[test]
fn send_and_receive_in_order() {
    let d = TestDir::new("ch-basic");
    let c = channel(&d, "basic", 64 * 1024, 1024);
    let mut s1 = c.subscriber().unwrap();
    let mut s2 = Channel::open_options("basic")
        .dir(&d.path)
        .open()
        .unwrap()
        .subscriber()
        .unwrap();
    let mut p = c.publisher().unwrap();
    for i in 0..100u32 {
        p.send(&i.to_le_bytes()[..(i % 5) as usize]).unwrap();
    }
    for s in [&mut s1, &mut s2] {
        for i in 0..100u32 {
            let m = s.try_recv().unwrap();
            assert_eq!(&*m, &i.to_le_bytes()[..(i % 5) as usize]);
        }
        assert!(matches!(s.try_recv(), Err(TryRecvError::Empty)));
    }
}

#[test]
fn empty_messages_are_messages() {
    let d = TestDir::new("ch-empty");
    let c = channel(&d, "e", 4096, 100);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    p.send(b"").unwrap();
    p.send(b"x").unwrap();
    assert!(s.try_recv().unwrap().is_empty());
    assert_eq!(s.try_recv().unwrap().to_vec(), b"x");
}

#[test]
fn late_subscriber_sees_only_later_messages() {
    let d = TestDir::new("ch-late");
    let c = channel(&d, "late", 4096, 100);
    let mut p = c.publisher().unwrap();
    p.send(b"before").unwrap();
    let mut s = c.subscriber().unwrap();
    p.send(b"after").unwrap();
    assert_eq!(s.try_recv().unwrap().to_vec(), b"after");
    assert!(s.try_recv().is_err());
}

#[test]
fn too_large_is_refused_with_both_sizes() {
    let d = TestDir::new("ch-large");
    let c = channel(&d, "l", 4096, 100);
    let mut p = c.publisher().unwrap();
    let e = p.send(&[0; 101]).unwrap_err();
    assert_eq!(e, SendError::TooLarge { len: 101, max: 100 });
    assert!(e.to_string().contains("101") && e.to_string().contains("100"));
    assert!(matches!(
        p.try_send(&[0; 101]),
        Err(TrySendError::TooLarge { .. })
    ));
    assert!(matches!(
        p.send_timeout(&[0; 101], Duration::ZERO),
        Err(SendTimeoutError::TooLarge { .. })
    ));
    assert!(p.loan(101).is_err());
    p.send(&[0; 100]).unwrap();
}

#[test]
fn bad_configurations_are_refused() {
    let d = TestDir::new("ch-config");
    let cases: [(u64, u64, u32, u32); 6] = [
        (0, 10, 1, 1),
        (5000, 10, 1, 1),
        (1024, 10, 1, 1),
        (4096, 4096, 1, 1),
        (4096, 10, 0, 1),
        (4096, 10, 1, 2000),
    ];
    for (cap, max, p, s) in cases {
        let e = Channel::builder("bad")
            .capacity(cap)
            .max_message(max as usize)
            .max_publishers(p)
            .max_subscribers(s)
            .dir(&d.path)
            .create()
            .unwrap_err();
        assert!(
            matches!(e, CreateError::InvalidConfig { .. }),
            "{cap} {max} {p} {s}: {e}"
        );
    }
    let e = Channel::builder("bad")
        .capacity(0)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("capacity is 0"), "{e}");
    assert_eq!(std::fs::read_dir(&d.path).unwrap().count(), 0);
}

#[test]
fn full_ring_back_pressure() {
    let d = TestDir::new("ch-full");
    let c = channel(&d, "full", 4096, 1000);
    let mut slow = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    let mut sent = 0;
    loop {
        match p.try_send(&[7u8; 100]) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // 100-byte payloads take 16 + 112 = 128 ring bytes: 32 fit in 4096.
    assert_eq!(sent, 32);
    let start = Instant::now();
    assert_eq!(
        p.send_timeout(&[1; 100], Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    // One receive frees one record's worth.
    drop(slow.try_recv().unwrap());
    p.try_send(&[8u8; 100]).unwrap();
    assert_eq!(p.try_send(&[8u8; 100]), Err(TrySendError::Full));
    // A blocked send proceeds as soon as the subscriber catches up.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut n = 0;
        while let Ok(m) = slow.recv_timeout(Duration::from_secs(5)) {
            drop(m);
            n += 1;
            if n == 33 {
                break;
            }
        }
        n
    });
    p.send(&[9u8; 100]).unwrap();
    assert_eq!(t.join().unwrap(), 33);
    // Once the only subscriber has left, nothing holds the publisher back.
    for _ in 0..100 {
        p.try_send(&[1; 100]).unwrap();
    }
}

#[test]
fn loans_commit_and_discard() {
    let d = TestDir::new("ch-loan");
    let c = channel(&d, "loan", 4096, 1000);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    let mut l = p.loan(5).unwrap();
    assert_eq!(l.len(), 5);
    l.copy_from_slice(b"first");
    l.commit().unwrap();
    let mut l = p.try_loan(3).unwrap();
    l.copy_from_slice(b"bad");
    drop(l); // discarded: never delivered
    p.send(b"second").unwrap();
    assert_eq!(s.try_recv().unwrap().to_vec(), b"first");
    assert_eq!(s.try_recv().unwrap().to_vec(), b"second");
    assert!(s.try_recv().is_err());
    assert_eq!(c.info().messages_sent, 2);
}

/// A blocking receive first polls on its own (tightly, as a `try_recv`
/// loop would), for its whole spin budget. With a budget of `u32::MAX`
/// polls (minutes of polling) it must still end at its deadline.
#[test]
fn a_polling_receive_still_ends_at_its_deadline() {
    let d = TestDir::new("ch-polldeadline");
    let c = channel(&d, "pd", 4096, 100);
    let mut s = c.subscriber().unwrap();
    s.set_spin(u32::MAX);
    let start = Instant::now();
    assert!(matches!(
        s.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    ));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(30));
    // Not a speed check: ignoring the deadline would poll for minutes.
    assert!(
        took < Duration::from_secs(20),
        "the polls ignored the deadline: {took:?}"
    );
}

/// The polling phase of a blocking receive hands the records it cannot
/// take plainly (here the pad before a record that did not fit before the
/// ring's end) to the general path, and receives what follows, in place
/// and in copy mode. With a budget of `u32::MAX` polls, a receive that
/// missed the record would poll for minutes before its first sleep.
#[test]
fn a_polling_receive_steps_over_a_pad_to_the_next_message() {
    for copy in [false, true] {
        let d = TestDir::new("ch-pollpad");
        let c = Channel::builder("pp")
            .capacity(4096)
            .max_message(1000)
            .copy_messages(copy)
            .dir(&d.path)
            .create()
            .unwrap();
        let mut s = c.subscriber().unwrap();
        let mut p = c.publisher().unwrap();
        // Records of 528 and 3 × 1,024 bytes (16-byte header, payload
        // rounded up to 16) leave less than 1,024 before the ring's end:
        // the next 1000-byte message goes to its start, after a pad.
        let mut end = 0;
        for (i, len) in [500, 1000, 1000, 1000].into_iter().enumerate() {
            p.send(&vec![i as u8; len]).unwrap();
            let m = s.recv().unwrap();
            assert_eq!(&*m, &vec![i as u8; len][..]);
            end = m.position() + 16 + len.next_multiple_of(16) as u64;
        }
        let pad = 4096 - end % 4096;
        assert!(pad < 1024, "the next record needs a pad");
        s.set_spin(u32::MAX);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            p.send(&[9; 1000]).unwrap();
            p.send(b"after").unwrap();
            p
        });
        let start = Instant::now();
        let m = s.recv().unwrap();
        assert_eq!(&*m, &[9; 1000][..], "copy mode {copy}");
        assert_eq!(
            m.position(),
            end + pad,
            "after the pad, at the ring's start"
        );
        drop(m);
        let m = s.recv().unwrap();
        assert_eq!((&*m, m.position()), (&b"after"[..], end + pad + 1024));
        drop(m);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "found by polling, not after minutes of it"
        );
        drop(t.join().unwrap());
    }
}

#[test]
fn recv_timeout_and_blocking_recv() {
    let d = TestDir::new("ch-recv");
    let c = channel(&d, "r", 4096, 100);
    let mut s = c.subscriber().unwrap();
    let start = Instant::now();
    assert!(matches!(
        s.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
    let c2 = c.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        c2.publisher().unwrap().send(b"wake").unwrap();
    });
    s.set_spin(0);
    assert_eq!(s.recv().unwrap().to_vec(), b"wake");
    t.join().unwrap();
}

/// `try_iter` yields the waiting messages in place and ends when none is;
/// `iter` waits for each and ends once every publisher has left.
#[test]
fn lending_iterators() {
    let d = TestDir::new("ch-iter");
    let c = channel(&d, "it", 4096, 100);
    let mut s = c.subscriber().unwrap();
    s.set_disconnect_grace(Some(Duration::from_millis(20)));
    let mut p = c.publisher().unwrap();
    for m in [&b"a"[..], b"b", b"c"] {
        p.send(m).unwrap();
    }
    let mut got = Vec::new();
    let mut it = s.try_iter();
    while let Some(m) = it.next() {
        got.push(m.unwrap().to_vec());
    }
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert!(s.try_iter().next().is_none(), "nothing waits");
    p.send(b"d").unwrap();
    assert_eq!(&*s.iter().next().unwrap().unwrap(), b"d");
    p.send(b"e").unwrap();
    drop(p);
    let mut it = s.iter();
    assert_eq!(&*it.next().unwrap().unwrap(), b"e");
    assert!(it.next().is_none(), "ends once every publisher has left");
    assert!(it.next().is_none(), "and stays ended");
}

/// A corrupt channel is yielded by the iterators as an error (once),
/// where they used to end silently.
#[cfg(unix)] // SIGBUS; Windows refuses the truncation.
#[test]
fn iterators_and_batches_yield_corruption() {
    let d = TestDir::new("ch-itercorrupt");
    let c = channel(&d, "itc", 4096, 100);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    p.send(b"ok").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(d.path.join("memlane.itc"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let mut it = s.try_iter();
    assert!(
        matches!(it.next(), Some(Err(_))),
        "the corruption is yielded"
    );
    assert!(it.next().is_none(), "once");
    assert!(matches!(s.iter().next(), Some(Err(_))));
    assert!(matches!(s.try_recv_batch(4), Err(TryRecvError::Corrupt(_))));
}

/// Runs `f` on a fresh channel in place and on one in copy mode.
fn both_modes(d: &TestDir, tag: &str, capacity: u64, max: usize, f: impl Fn(&Channel)) {
    for copy in [false, true] {
        let c = Channel::builder(&format!("{tag}-{copy}"))
            .capacity(capacity)
            .max_message(max)
            .copy_messages(copy)
            .dir(&d.path)
            .create()
            .unwrap();
        assert_eq!(c.copies_messages(), copy);
        f(&c);
    }
}

/// Batches deliver exactly what was sent, in order, across wrap-around,
/// discarded loans and partial commits, in both modes; each batch holds
/// at most `max` messages (in copy mode at most `max_message` payload
/// bytes), at least one, and releases them all when it drops.
#[test]
fn batches_read_in_place_and_release_together() {
    let d = TestDir::new("ch-batch");
    both_modes(&d, "batch", 4096, 300, |c| {
        let mut s = c.subscriber().unwrap();
        let mut p = c.publisher().unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut expect: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seq = 0u32;
        for round in 0..400 {
            // Send a few (the ring is 4 KiB: it wraps many times).
            for _ in 0..(next() % 6) {
                let len = (next() % 300) as usize;
                let msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq) as u8).collect();
                seq += 1;
                match next() % 4 {
                    0 => drop(p.try_loan(len.min(50))), // discarded (or full)
                    1 => match p.try_loan(300) {
                        Ok(mut l) => {
                            l[..len].copy_from_slice(&msg);
                            l.commit_len(len).unwrap();
                            expect.push_back(msg);
                        }
                        Err(TrySendError::Full) => {}
                        Err(e) => panic!("{e}"),
                    },
                    _ => match p.try_send(&msg) {
                        Ok(()) => expect.push_back(msg),
                        Err(TrySendError::Full) => {}
                        Err(e) => panic!("{e}"),
                    },
                }
            }
            let max = 1 + (next() % 5) as usize;
            match s.try_recv_batch(max) {
                Ok(batch) => {
                    assert!(!batch.is_empty() && batch.len() <= max, "round {round}");
                    if c.copies_messages() {
                        let bytes: usize = batch.iter().map(<[u8]>::len).sum();
                        assert!(batch.len() == 1 || bytes <= 300);
                    }
                    assert_eq!(batch.iter().len(), batch.len());
                    for (i, m) in batch.iter().enumerate() {
                        let want = expect.pop_front().expect("a message was sent");
                        assert_eq!(m, &want[..], "round {round}");
                        assert_eq!(batch.get(i), Some(&want[..]));
                    }
                    assert!(batch.get(batch.len()).is_none());
                }
                Err(TryRecvError::Empty) => {}
                Err(e) => panic!("{e}"),
            }
        }
        while let Ok(batch) = s.try_recv_batch(1000) {
            for m in &batch {
                assert_eq!(m, &expect.pop_front().unwrap()[..]);
            }
        }
        assert!(expect.is_empty(), "{} never received", expect.len());
        assert_eq!(s.lag(), 0, "every batch was released");
    });
}

/// A blocking batch waits for its first message, then takes what waits.
#[test]
fn recv_batch_waits_for_the_first_message() {
    let d = TestDir::new("ch-recvbatch");
    let c = channel(&d, "rb", 4096, 100);
    let mut s = c.subscriber().unwrap();
    let c2 = c.clone();
    let t = std::thread::spawn(move || {
        let mut p = c2.publisher().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        for m in [&b"x"[..], b"y"] {
            p.send(m).unwrap();
        }
        p
    });
    s.set_spin(0);
    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = s.recv_batch(8).unwrap();
        got.extend(batch.iter().map(<[u8]>::to_vec));
    }
    assert_eq!(got, [b"x".to_vec(), b"y".to_vec()]);
    drop(t.join().unwrap());
    assert!(matches!(s.try_recv_batch(8), Err(TryRecvError::Empty)));
}

/// Disconnection: once every publisher has left and everything they sent
/// was received, the receives say so after the grace; again at once while
/// none is back; and a publisher that joins again is received.
#[test]
fn receives_report_that_every_publisher_left() {
    let d = TestDir::new("ch-disc");
    let c = channel(&d, "disc", 4096, 100);
    let mut s = c.subscriber().unwrap();
    assert_eq!(
        s.disconnect_grace(),
        Some(memlane::DEFAULT_DISCONNECT_GRACE)
    );
    s.set_disconnect_grace(Some(Duration::from_millis(30)));
    assert_eq!(s.publishers(), 0);
    // Never saw a publisher: waits for the first, and says nothing.
    assert!(matches!(
        s.recv_timeout(Duration::from_millis(300)),
        Err(RecvTimeoutError::Timeout)
    ));
    let mut p = c.publisher().unwrap();
    assert_eq!(s.publishers(), 1);
    p.send(b"one").unwrap();
    p.send(b"two").unwrap();
    drop(p);
    assert_eq!(s.publishers(), 0);
    // What was sent comes first.
    assert_eq!(&*s.recv().unwrap(), b"one");
    assert_eq!(&*s.recv_timeout(Duration::from_secs(60)).unwrap(), b"two");
    assert_eq!(s.recv().unwrap_err(), RecvError::Disconnected);
    assert_eq!(
        s.recv_timeout(Duration::from_secs(60)).unwrap_err(),
        RecvTimeoutError::Disconnected
    );
    assert!(matches!(s.recv_batch(4), Err(RecvError::Disconnected)));
    // A busy poller learns it on its rate-limited checks.
    let start = Instant::now();
    loop {
        match s.try_recv() {
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => break,
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(60), "watchdog");
    }
    // A publisher comes back: a receive waits for it (past the grace).
    let mut p = c.publisher().unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        p.send(b"back").unwrap();
        p
    });
    assert_eq!(&*s.recv().unwrap(), b"back");
    drop(t.join().unwrap());
    // And leaves: disconnected again.
    assert_eq!(s.recv().unwrap_err(), RecvError::Disconnected);
}

/// With no grace a subscriber waits for publishers for good, as before.
#[test]
fn no_grace_never_disconnects() {
    let d = TestDir::new("ch-nograce");
    let c = channel(&d, "ng", 4096, 100);
    let mut s = c.subscriber().unwrap();
    s.set_disconnect_grace(None);
    c.publisher().unwrap().send(b"x").unwrap();
    assert_eq!(&*s.recv().unwrap(), b"x");
    assert!(matches!(
        s.recv_timeout(Duration::from_millis(500)),
        Err(RecvTimeoutError::Timeout)
    ));
}

/// Partial commits deliver exactly the bytes committed, in both modes,
/// across wrap-around; `truncate` and `commit_len` agree; a `commit_len`
/// longer than the loan fails and publishes nothing.
#[test]
fn loans_commit_in_part() {
    let d = TestDir::new("ch-partial");
    both_modes(&d, "partial", 4096, 500, |c| {
        let mut s = c.subscriber().unwrap();
        let mut p = c.publisher().unwrap();
        for i in 0..2000usize {
            let loaned = (i * 131) % 501;
            let len = (i * 7) % (loaned + 1);
            let msg: Vec<u8> = (0..len).map(|k| (k ^ i) as u8).collect();
            let mut l = p.loan(loaned).unwrap();
            l[..len].copy_from_slice(&msg);
            if i % 2 == 0 {
                l.truncate(len);
                l.truncate(loaned); // no effect: not longer
                assert_eq!(l.len(), len);
                l.commit().unwrap();
            } else {
                l.commit_len(len).unwrap();
            }
            assert_eq!(&*s.try_recv().unwrap(), &msg[..], "message {i}");
            assert!(matches!(s.try_recv(), Err(TryRecvError::Empty)));
        }
        let l = p.loan(3).unwrap();
        assert_eq!(
            l.commit_len(4).unwrap_err(),
            memlane::CommitError::TooLong { len: 4, loaned: 3 }
        );
        p.send(b"after").unwrap();
        assert_eq!(
            &*s.try_recv().unwrap(),
            b"after",
            "nothing else was published"
        );
        // A truncated loan dropped without commit is skipped whole.
        let mut l = p.loan(200).unwrap();
        l.truncate(10);
        drop(l);
        p.send(b"next").unwrap();
        assert_eq!(&*s.try_recv().unwrap(), b"next");
    });
}

/// Uninitialized loans: filled through `MaybeUninit`, committed in full or
/// in part; dropped without `assume_init`, they are skipped and their
/// bytes zeroed (seen through the next loan of the same private buffer in
/// copy mode).
#[test]
fn uninit_loans() {
    use std::mem::MaybeUninit;
    let d = TestDir::new("ch-uninit");
    both_modes(&d, "uninit", 4096, 100, |c| {
        let mut s = c.subscriber().unwrap();
        let mut p = c.publisher().unwrap();
        let mut u = p.loan_uninit(5).unwrap();
        assert_eq!(u.len(), 5);
        for (d, b) in u.iter_mut().zip(b"hello") {
            *d = MaybeUninit::new(*b);
        }
        // SAFETY: every byte was written.
        unsafe { u.assume_init() }.commit().unwrap();
        assert_eq!(&*s.try_recv().unwrap(), b"hello");

        let mut u = p.loan_uninit(50).unwrap();
        u[0] = MaybeUninit::new(b'h');
        u[1] = MaybeUninit::new(b'i');
        // SAFETY: the first two bytes were written.
        let l = unsafe { u.assume_init_len(2) };
        assert_eq!(&*l, b"hi");
        l.commit().unwrap();
        assert_eq!(&*s.try_recv().unwrap(), b"hi");

        let mut u = p.loan_uninit(8).unwrap();
        u.iter_mut().for_each(|b| *b = MaybeUninit::new(0xaa));
        drop(u); // discarded, zeroed
        let l = p.loan(8).unwrap();
        if c.copies_messages() {
            assert_eq!(&*l, [0; 8], "the private buffer was zeroed");
        }
        drop(l);
        let u = p.loan_uninit(8).unwrap();
        std::mem::forget(u); // leaked: settled (and zeroed) at the next send
        p.send(b"end").unwrap();
        assert_eq!(&*s.try_recv().unwrap(), b"end");
    });
}

/// `Loan::commit` reports a file truncated under it, as `send` does.
#[cfg(unix)] // SIGBUS; Windows refuses the truncation.
#[test]
fn a_loan_commit_reports_a_truncated_file() {
    let d = TestDir::new("ch-commit-trunc");
    let c = channel(&d, "ct", 4096, 100);
    let mut p = c.publisher().unwrap();
    let mut l = p.loan(4).unwrap();
    l.copy_from_slice(b"lost");
    std::fs::OpenOptions::new()
        .write(true)
        .open(d.path.join("memlane.ct"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    assert!(matches!(l.commit(), Err(memlane::CommitError::Corrupt(_))));
}

#[test]
fn endpoint_limits() {
    let d = TestDir::new("ch-limits");
    let c = Channel::builder("lim")
        .capacity(4096)
        .max_publishers(1)
        .max_subscribers(2)
        .dir(&d.path)
        .create()
        .unwrap();
    let p = c.publisher().unwrap();
    assert_eq!(
        c.publisher().unwrap_err(),
        JoinError::TooManyPublishers { max: 1 }
    );
    drop(p);
    let _p = c.publisher().unwrap();
    let _a = c.subscriber().unwrap();
    let b = c.subscriber().unwrap();
    assert_eq!(
        c.subscriber().unwrap_err(),
        JoinError::TooManySubscribers { max: 2 }
    );
    drop(b);
    let _b = c.subscriber().unwrap();
}

#[test]
fn info_reports_endpoints_and_counters() {
    let d = TestDir::new("ch-info");
    let c = channel(&d, "info", 8192, 512);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    for _ in 0..3 {
        p.send(b"12345").unwrap();
    }
    drop(s.try_recv().unwrap());
    // A subscriber with a backlog publishes its progress lazily: at most
    // what it really did.
    let i = c.info();
    assert!(i.subscribers[0].messages <= 1);
    assert!(i.subscribers[0].lag >= 64);
    // Once it catches up, everything is published.
    while s.try_recv().is_ok() {}
    let i = c.info();
    assert_eq!(
        (i.capacity, i.max_message, i.mode),
        (8192, 512, Mode::Lossless)
    );
    assert_eq!((i.messages_sent, i.bytes_sent), (3, 15));
    assert_eq!(i.publishers.len(), 1);
    assert_eq!(i.publishers[0].pid, std::process::id());
    assert_eq!(i.subscribers.len(), 1);
    assert_eq!(i.subscribers[0].messages, 3);
    assert_eq!(i.subscribers[0].lag, 0);
    drop(p);
    let i = c.info();
    assert_eq!(
        (i.publishers.len(), i.messages_sent),
        (0, 3),
        "counters survive a publisher leaving"
    );
}

#[test]
fn wrong_kind_and_missing_channel() {
    let d = TestDir::new("ch-kind");
    let _seg = memlane::Segment::builder("seg")
        .size(10)
        .dir(&d.path)
        .create()
        .unwrap();
    assert!(matches!(
        Channel::open_options("seg").dir(&d.path).open(),
        Err(OpenError::WrongKind { .. })
    ));
    let e = Channel::open_options("nope")
        .dir(&d.path)
        .open()
        .unwrap_err();
    assert!(e.to_string().contains("no channel 'nope'"), "{e}");
}

#[test]
fn counters_wrap_around_u64() {
    let d = TestDir::new("ch-wrap");
    let start = (u64::MAX - 3 * 4096) & !15;
    let c = Channel::builder("wrap")
        .capacity(4096)
        .max_message(1000)
        .initial_position(start)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    let mut rng = common::Rng::new(5);
    for i in 0..2000u64 {
        let len = rng.below(1001) as usize;
        let msg: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        p.send(&msg).unwrap();
        assert_eq!(s.try_recv().unwrap().to_vec(), msg);
    }
    assert!(c.info().head < start, "the counter wrapped");
}

// ---- property test against a model ----

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Loan(usize, bool),
    /// A loan passed to `mem::forget`.
    Forget(usize),
    Recv(usize),
    Join,
    Leave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..=600).prop_map(Op::Send),
        1 => (0usize..=600, any::<bool>()).prop_map(|(l, c)| Op::Loan(l, c)),
        1 => (0usize..=600).prop_map(Op::Forget),
        4 => (0usize..3).prop_map(Op::Recv),
        1 => Just(Op::Join),
        1 => (0usize..3).prop_map(Op::Leave),
    ]
}

/// How much of a subscriber's progress may be unpublished when a publisher
/// looks (the ring publishes lazily: every capacity / 16 = 256 bytes, plus
/// the record that crossed that mark, at most 16 + 608): a publisher may
/// report `Full` that much early.
const LAZY_SLACK: u64 = 4096 / 16 + 16 + 608;

/// A subscriber's queue in the model: (message, or None for a discarded
/// loan; the position after it).
type ModelQueue = VecDeque<(Option<Vec<u8>>, u64)>;

/// What the channel must do, computed from positions like a user would
/// reason about bytes in the ring.
struct Model {
    cap: u64,
    head: u64,
    /// Per subscriber: its position and its queue of (message, or None for
    /// a discarded loan, position after it).
    subs: Vec<Option<(u64, ModelQueue)>>,
    /// The position after a leaked loan's record: subscribers wait there
    /// until the publisher is used again (which completes it as discarded).
    leaked: Option<u64>,
}

impl Model {
    fn space(&self, len: usize) -> (u64, u64) {
        let rec = 16 + ((len as u64 + 15) & !15);
        let off = self.head % self.cap;
        let pad = if off + rec > self.cap {
            self.cap - off
        } else {
            0
        };
        (pad, pad + rec)
    }
    fn fits(&self, total: u64) -> bool {
        self.subs
            .iter()
            .flatten()
            .all(|(pos, _)| self.head.wrapping_sub(*pos) + total <= self.cap)
    }
    fn publish(&mut self, msg: Option<Vec<u8>>, len: usize) {
        let (_, total) = self.space(len);
        let next = self.head.wrapping_add(total);
        for (_, q) in self.subs.iter_mut().flatten() {
            q.push_back((msg.clone(), next));
        }
        self.head = next;
    }
    /// A receive: skips discarded records (advancing the position, as the
    /// ring does), then takes the next message if any.
    fn recv(&mut self, i: usize) -> Option<Vec<u8>> {
        let (pos, q) = self.subs[i].as_mut()?;
        while let Some(&(_, next)) = q.front() {
            if self.leaked == Some(next) {
                return None; // not committed yet
            }
            let (m, next) = q.pop_front().unwrap();
            *pos = next;
            if let Some(m) = m {
                return Some(m);
            }
        }
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn ring_matches_model(
        ops in proptest::collection::vec(op(), 1..400),
        start_lap in 0u64..4,
        copy in any::<bool>(),
    ) {
        check_model(ops, start_lap, copy)?;
    }
}

/// Runs `ops` against the channel (whose messages are copied if `copy`)
/// and the model side by side.
fn check_model(ops: Vec<Op>, start_lap: u64, copy: bool) -> Result<(), TestCaseError> {
    let d = TestDir::new("ch-prop");
    let cap = 4096u64;
    // Start the 64-bit counters a few laps before they wrap.
    let start = (u64::MAX - start_lap * cap - 255 * 16) & !15;
    let c = Channel::builder("prop")
        .capacity(cap)
        .max_message(600)
        .initial_position(start)
        .copy_messages(copy)
        .dir(&d.path)
        .create()
        .unwrap();
    assert_eq!(c.copies_messages(), copy);
    let mut p = c.publisher().unwrap();
    let mut subs: Vec<Option<memlane::Subscriber>> = vec![None, None, None];
    let mut model = Model {
        cap,
        head: start,
        subs: vec![None, None, None],
        leaked: None,
    };
    let mut seq = 0u32;
    let trace = std::env::var_os("MODEL_TRACE").is_some();
    for op in ops {
        if trace {
            let i = c.info();
            eprintln!(
                "{op:?} | head {} model {} | subs {:?} | model {:?}",
                i.head,
                model.head,
                i.subscribers
                    .iter()
                    .map(|s| (s.slot, s.position))
                    .collect::<Vec<_>>(),
                model
                    .subs
                    .iter()
                    .map(|s| s.as_ref().map(|(p, q)| (*p, q.len())))
                    .collect::<Vec<_>>()
            );
        }
        if matches!(op, Op::Send(_) | Op::Loan(..) | Op::Forget(_)) {
            // The publisher completes a leaked loan before anything else.
            model.leaked = None;
        }
        match op {
            Op::Forget(len) => {
                seq += 1;
                let (_, total) = model.space(len);
                let expect_ok = model.fits(total);
                let may_be_full = !model.fits(total + LAZY_SLACK);
                match p.try_loan(len) {
                    Ok(l) => {
                        prop_assert!(expect_ok);
                        std::mem::forget(l);
                        model.publish(None, len);
                        model.leaked = Some(model.head);
                    }
                    Err(TrySendError::Full) => prop_assert!(may_be_full),
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            Op::Send(len) => {
                seq += 1;
                let msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq) as u8).collect();
                let (_, total) = model.space(len);
                let expect_ok = model.fits(total);
                let may_be_full = !model.fits(total + LAZY_SLACK);
                match p.try_send(&msg) {
                    Ok(()) => {
                        prop_assert!(expect_ok, "sent but the model says full");
                        model.publish(Some(msg), len);
                    }
                    Err(TrySendError::Full) => {
                        prop_assert!(may_be_full, "full but the model has room")
                    }
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            Op::Loan(len, commit) => {
                seq += 1;
                let (_, total) = model.space(len);
                let expect_ok = model.fits(total);
                let may_be_full = !model.fits(total + LAZY_SLACK);
                match p.try_loan(len) {
                    Ok(mut l) => {
                        prop_assert!(expect_ok);
                        for (i, b) in l.iter_mut().enumerate() {
                            *b = (i as u32 ^ seq) as u8;
                        }
                        let msg = l.to_vec();
                        if commit {
                            l.commit().unwrap();
                            model.publish(Some(msg), len);
                        } else {
                            drop(l);
                            model.publish(None, len);
                        }
                    }
                    Err(TrySendError::Full) => prop_assert!(may_be_full),
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            Op::Recv(i) => {
                if let Some(s) = subs[i].as_mut() {
                    match (s.try_recv(), model.recv(i)) {
                        (Ok(m), Some(want)) => prop_assert_eq!(&*m, &want[..]),
                        (Err(TryRecvError::Empty), None) => {}
                        (got, want) => prop_assert!(
                            false,
                            "got {:?}, model {:?}",
                            got.map(|m| m.to_vec()),
                            want
                        ),
                    }
                }
            }
            Op::Join => {
                if let Some(i) = subs.iter().position(|s| s.is_none()) {
                    subs[i] = Some(c.subscriber().unwrap());
                    model.subs[i] = Some((model.head, VecDeque::new()));
                }
            }
            Op::Leave(i) => {
                subs[i] = None;
                model.subs[i] = None;
            }
        }
    }
    // Drain: every subscriber gets exactly what the model holds.
    for (i, sub) in subs.iter_mut().enumerate() {
        if let Some(s) = sub.as_mut() {
            while let Some(want) = model.recv(i) {
                let m = s.try_recv().unwrap();
                prop_assert_eq!(&*m, &want[..]);
            }
            prop_assert!(s.try_recv().is_err());
        }
    }
    Ok(())
}

/// A sequence proptest once found (kept as a regression test).
#[test]
fn model_regression_overwritten_record() {
    let ops = vec![
        Op::Join,
        Op::Send(575),
        Op::Send(311),
        Op::Send(297),
        Op::Recv(0),
        Op::Send(46),
        Op::Send(259),
        Op::Loan(570, true),
        Op::Send(83),
        Op::Send(327),
        Op::Recv(0),
        Op::Send(571),
        Op::Send(11),
        Op::Join,
        Op::Recv(0),
        Op::Send(319),
        Op::Send(527),
        Op::Recv(1),
        Op::Send(319),
        Op::Send(315),
        Op::Send(76),
        Op::Leave(0),
        Op::Loan(74, false),
        Op::Send(340),
        Op::Send(565),
        Op::Recv(1),
        Op::Send(170),
        Op::Send(206),
        Op::Recv(1),
        Op::Loan(396, false),
        Op::Send(501),
        Op::Send(260),
        Op::Send(319),
        Op::Recv(1),
        Op::Send(377),
        Op::Send(377),
        Op::Recv(1),
        Op::Loan(133, true),
        Op::Join,
        Op::Join,
        Op::Send(69),
        Op::Recv(2),
        Op::Recv(2),
        Op::Recv(0),
        Op::Join,
        Op::Recv(2),
        Op::Send(491),
        Op::Recv(0),
        Op::Recv(1),
        Op::Send(165),
        Op::Recv(2),
        Op::Recv(2),
        Op::Loan(132, true),
        Op::Send(340),
        Op::Recv(1),
        Op::Send(533),
        Op::Recv(2),
        Op::Recv(2),
        Op::Send(55),
        Op::Loan(565, false),
        Op::Loan(327, false),
        Op::Send(146),
        Op::Recv(0),
        Op::Recv(1),
        Op::Send(230),
        Op::Recv(1),
        Op::Send(269),
        Op::Send(39),
        Op::Join,
        Op::Loan(378, false),
        Op::Send(273),
        Op::Recv(0),
        Op::Recv(2),
        Op::Recv(0),
        Op::Leave(2),
        Op::Recv(1),
        Op::Send(314),
        Op::Leave(2),
        Op::Join,
        Op::Recv(2),
        Op::Recv(1),
        Op::Send(540),
        Op::Recv(1),
        Op::Recv(1),
        Op::Send(495),
        Op::Send(294),
        Op::Send(352),
        Op::Send(484),
        Op::Recv(0),
        Op::Send(316),
        Op::Recv(0),
        Op::Join,
        Op::Send(311),
        Op::Send(378),
        Op::Recv(1),
        Op::Send(419),
        Op::Join,
        Op::Recv(2),
        Op::Recv(2),
        Op::Send(260),
        Op::Leave(1),
        Op::Recv(2),
        Op::Leave(2),
        Op::Send(309),
        Op::Recv(1),
        Op::Recv(0),
        Op::Send(410),
        Op::Recv(2),
        Op::Send(512),
        Op::Send(5),
        Op::Recv(0),
        Op::Join,
        Op::Recv(2),
        Op::Recv(2),
        Op::Recv(1),
        Op::Recv(0),
        Op::Send(177),
        Op::Send(540),
        Op::Recv(2),
        Op::Send(466),
        Op::Recv(0),
        Op::Recv(0),
        Op::Join,
        Op::Leave(0),
        Op::Recv(0),
        Op::Recv(1),
        Op::Recv(1),
        Op::Leave(0),
        Op::Leave(1),
        Op::Recv(2),
        Op::Send(96),
        Op::Send(0),
        Op::Recv(0),
        Op::Send(85),
        Op::Send(468),
        Op::Recv(1),
        Op::Loan(409, false),
        Op::Send(80),
        Op::Recv(0),
        Op::Leave(2),
        Op::Recv(0),
        Op::Send(466),
        Op::Leave(2),
        Op::Send(216),
        Op::Send(360),
        Op::Join,
        Op::Recv(2),
        Op::Send(97),
        Op::Leave(0),
        Op::Send(113),
        Op::Recv(0),
        Op::Leave(2),
        Op::Recv(0),
        Op::Recv(0),
        Op::Send(205),
        Op::Send(454),
        Op::Send(298),
        Op::Leave(2),
        Op::Leave(0),
        Op::Send(454),
        Op::Leave(1),
        Op::Recv(0),
        Op::Recv(1),
        Op::Send(232),
        Op::Recv(1),
        Op::Recv(0),
        Op::Send(551),
        Op::Recv(1),
        Op::Recv(1),
        Op::Join,
        Op::Recv(2),
        Op::Send(256),
        Op::Join,
        Op::Loan(385, true),
        Op::Recv(1),
        Op::Send(248),
        Op::Recv(1),
        Op::Loan(235, false),
        Op::Send(469),
        Op::Join,
        Op::Recv(2),
        Op::Send(199),
        Op::Send(387),
        Op::Loan(56, true),
        Op::Recv(1),
        Op::Join,
        Op::Send(217),
        Op::Recv(1),
        Op::Leave(2),
        Op::Recv(2),
        Op::Send(158),
        Op::Leave(0),
        Op::Recv(1),
        Op::Recv(1),
    ];
    check_model(ops.clone(), 1, false).unwrap();
    check_model(ops, 1, true).unwrap();
}

/// The largest message fits an empty ring wherever the head is (a record
/// that would cross the ring's end is preceded by padding, so records may
/// take at most half the capacity).
#[test]
fn the_largest_message_always_fits_an_empty_ring() {
    let d = TestDir::new("ch-largest");
    let c = channel(&d, "largest", 4096, 2032);
    assert_eq!(c.max_message(), 2032);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    for shift in 0..300usize {
        // Move the head by a different amount each round, then drain.
        p.try_send(&vec![1u8; shift % 97]).unwrap();
        while s.try_recv().is_ok() {}
        p.try_send(&[7u8; 2032])
            .expect("the largest message fits an empty ring");
        assert_eq!(s.try_recv().unwrap().len(), 2032);
    }
    let e = Channel::builder("too-large")
        .capacity(4096)
        .max_message(2033)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("at most 2032 bytes"), "{e}");
}

/// A free slot whose liveness lock is held by a process that has not
/// joined (here a read lock through a read-only descriptor, which is all
/// someone with read access to the channel's file can take) makes the join
/// fail with `JoinError::SlotsLocked`, saying so, rather than "maximum of 1
/// publishers"; once the lock goes, the join works.
#[cfg(target_os = "linux")]
#[test]
fn a_free_slot_locked_by_an_outsider_is_reported_as_such() {
    use std::os::fd::AsRawFd;
    let d = TestDir::new("ch-slotlock");
    let c = Channel::builder("slotlock")
        .capacity(4096)
        .max_publishers(1)
        .dir(&d.path)
        .create()
        .unwrap();
    let outsider = std::fs::File::open(c.path()).unwrap();
    // Publisher slot 0's lock byte (see `channel/liveness.rs`: 2^62).
    let lock = |kind: libc::c_int| {
        // SAFETY: all-zero is a valid `struct flock`.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 1 << 62;
        fl.l_len = 1;
        // SAFETY: a valid descriptor and a valid `struct flock`.
        unsafe { libc::fcntl(outsider.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) }
    };
    assert_eq!(
        lock(libc::F_RDLCK),
        0,
        "a read-only descriptor takes a read lock"
    );
    let e = c.publisher().unwrap_err();
    match &e {
        JoinError::SlotsLocked {
            role, free_locked, ..
        } => {
            assert_eq!((*role, *free_locked), (memlane::EndpointRole::Publisher, 1));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("locked by a process that has not joined"),
        "{msg}"
    );
    assert!(msg.contains(&c.path().display().to_string()), "{msg}");
    assert_eq!(lock(libc::F_UNLCK), 0);
    let _p = c.publisher().expect("joins once the outsider lets go");
}

// ---- in place or copied; leaked loans ----

/// The mode is decided from who may write the file: this user's file with
/// no group/other write permission is read in place, anything else (or
/// `copy_messages(true)`) is copied.
#[cfg(unix)]
#[test]
fn messages_are_copied_unless_only_this_user_can_write_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDir::new("ch-trust");
    let own = Channel::builder("own").dir(&d.path).create().unwrap();
    assert!(!own.copies_messages(), "0600, this user's: in place");
    assert!(!own.subscriber().unwrap().copies_messages());
    assert!(!own.publisher().unwrap().copies_messages());
    assert!(!Channel::open_options("own")
        .dir(&d.path)
        .open()
        .unwrap()
        .copies_messages());
    let forced = Channel::open_options("own")
        .dir(&d.path)
        .copy_messages(true)
        .open()
        .unwrap();
    assert!(forced.copies_messages(), "forced copy");
    assert!(forced.subscriber().unwrap().copies_messages());
    assert!(forced.publisher().unwrap().copies_messages());
    let built = Channel::builder("forced")
        .dir(&d.path)
        .copy_messages(true)
        .create()
        .unwrap();
    assert!(built.copies_messages());

    let shared = Channel::builder("shared")
        .dir(&d.path)
        .mode(0o666)
        .create()
        .unwrap();
    assert!(shared.copies_messages(), "0666: others may write");
    assert!(Channel::open_options("shared")
        .dir(&d.path)
        .open()
        .unwrap()
        .copies_messages());
    let group = Channel::builder("group")
        .dir(&d.path)
        .mode(0o660)
        .create()
        .unwrap();
    assert!(group.copies_messages(), "0660: the group may write");
    let read_only_others = Channel::builder("ro")
        .dir(&d.path)
        .mode(0o644)
        .create()
        .unwrap();
    assert!(!read_only_others.copies_messages(), "others may only read");

    // Widened after creation: who opens it now copies.
    std::fs::set_permissions(own.path(), std::fs::Permissions::from_mode(0o606)).unwrap();
    assert!(Channel::open_options("own")
        .dir(&d.path)
        .open()
        .unwrap()
        .copies_messages());
    assert!(!own.copies_messages(), "decided when opened");
}

/// Copied messages and copied loans deliver exactly the bytes sent, across
/// the ring's end (pad records) and for every length up to the maximum.
#[test]
fn copied_messages_and_loans_deliver_the_bytes_sent() {
    let d = TestDir::new("ch-copy");
    let c = Channel::builder("copy")
        .capacity(4096)
        .max_message(1000)
        .copy_messages(true)
        .dir(&d.path)
        .create()
        .unwrap();
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    assert!(s.copies_messages() && p.copies_messages());
    for i in 0..3000usize {
        let len = (i * 37) % 1001;
        let msg: Vec<u8> = (0..len).map(|k| (k ^ i) as u8).collect();
        match i % 3 {
            0 => p.send(&msg).unwrap(),
            1 => {
                let mut l = p.loan(len).unwrap();
                l.copy_from_slice(&msg);
                l.commit().unwrap();
            }
            _ => {
                let mut l = p.try_loan(len).unwrap();
                l.copy_from_slice(&msg);
                assert_eq!(&*l, &msg[..]);
                drop(l); // discarded: skipped
                p.send(&msg).unwrap();
            }
        }
        let m = s.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(&*m, &msg[..], "message {i}");
    }
    assert!(matches!(s.try_recv(), Err(TryRecvError::Empty)));
}

/// A loan passed to `mem::forget` and then another send, loan or the
/// publisher's drop: the leaked claim is completed as discarded and later
/// messages arrive (before the fix, the next send overwrote the claim's
/// write-ahead record and every subscriber waited on it forever).
#[test]
fn a_forgotten_loan_does_not_wedge_the_ring() {
    let d = TestDir::new("ch-forget");
    // One publisher slot: sends take the straight path (`send_single`);
    // eight: the general one. Each in place and copied.
    for (max_publishers, copy) in [(1, false), (1, true), (8, false), (8, true)] {
        let name = format!("forget-{max_publishers}-{copy}");
        let c = Channel::builder(&name)
            .capacity(4096)
            .max_message(100)
            .max_publishers(max_publishers)
            .copy_messages(copy)
            .dir(&d.path)
            .create()
            .unwrap();
        let mut s = c.subscriber().unwrap();
        let what = format!("{max_publishers} publisher slot(s), copy {copy}");
        let recv = |s: &mut memlane::Subscriber, want: &[u8], after: &str| match s
            .recv_timeout(Duration::from_secs(2))
        {
            Ok(m) => assert_eq!(&*m, want, "{what}: {after}"),
            Err(e) => panic!("{what}: nothing after {after}: {e}"),
        };
        let mut p = c.publisher().unwrap();
        // Many rounds, so that the ring wraps (pads) while loans are leaked.
        for round in 0..200u32 {
            let mut l = p.loan(7).unwrap();
            l.copy_from_slice(b"leaked!");
            std::mem::forget(l);
            match round % 4 {
                0 => p.send(&round.to_le_bytes()).unwrap(),
                1 => p.try_send(&round.to_le_bytes()).unwrap(),
                2 => p
                    .send_timeout(&round.to_le_bytes(), Duration::from_secs(1))
                    .unwrap(),
                _ => {
                    let mut l = p.loan(4).unwrap();
                    l.copy_from_slice(&round.to_le_bytes());
                    l.commit().unwrap();
                }
            }
            recv(&mut s, &round.to_le_bytes(), "a send after a leaked loan");
        }
        // Leaked, then the publisher is dropped: its successor gets through.
        std::mem::forget(p.loan(9).unwrap());
        drop(p);
        let mut p = c.publisher().unwrap();
        p.send(b"next").unwrap();
        recv(&mut s, b"next", "a leaked loan and the publisher's drop");
        assert_eq!(p.messages_sent(), 1);
    }
}

/// One quantity, one type: message sizes are `usize` wherever they appear
/// (the default, the builder, the channel, its info, a publisher), ring
/// sizes `u64`, endpoint counts `u32`. Written with explicit types, so a
/// change of any of them fails to compile here.
#[test]
fn message_sizes_are_usize_ring_sizes_u64_counts_u32() {
    let d = TestDir::new("ch-int-types");
    let default_max: usize = memlane::DEFAULT_MAX_MESSAGE;
    let c = Channel::builder("ints").dir(&d.path).create().unwrap();
    let from_channel: usize = c.max_message();
    let info = c.info();
    let from_info: usize = info.max_message;
    let from_publisher: usize = c.publisher().unwrap().max_message();
    assert_eq!(from_channel, default_max);
    assert_eq!(from_info, default_max);
    assert_eq!(from_publisher, default_max);
    let capacity: u64 = c.capacity();
    let default_capacity: u64 = memlane::DEFAULT_CAPACITY;
    assert_eq!(capacity, default_capacity);
    assert_eq!(info.capacity, capacity);
    let endpoints: u32 = info.max_publishers;
    let default_endpoints: u32 = memlane::DEFAULT_MAX_ENDPOINTS;
    assert_eq!(endpoints, default_endpoints);
    let reaped: memlane::Reaped = c.reap();
    let (_, _): (u32, u32) = (reaped.publishers, reaped.subscribers);
    let joined: u32 = c.subscriber().unwrap().publishers();
    assert_eq!(joined, 0);
}

/// Message `i` of the replay tests: its number, then bytes derived from it,
/// 4 to 100 bytes in all.
fn numbered(i: u32) -> Vec<u8> {
    let len = 4 + (i as usize * 37) % 97;
    let mut m = i.to_le_bytes().to_vec();
    m.extend((4..len).map(|k| (i as usize * 31 + k) as u8));
    m
}

/// Receives (polling) until nothing comes for 50 ms; checks each message
/// is `numbered(n)` for consecutive `n`; returns the numbers.
fn drain_numbered(sub: &mut memlane::Subscriber) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => {
                let n = u32::from_le_bytes(m[..4].try_into().unwrap());
                assert_eq!(&*m, &numbered(n)[..], "message {n} is not whole");
                if let Some(&last) = got.last() {
                    assert_eq!(n, last + 1, "a gap or a repeat after {last}");
                }
                got.push(n);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_subscriber_from_the_oldest_gets_the_history_then_what_follows() {
    let d = TestDir::new("ch-oldest");
    let c = channel(&d, "oldest", 4096, 100);
    let mut p = c.publisher().unwrap();
    // Before a ring has been written: everything since the start.
    for i in 0..5 {
        p.send(&numbered(i)).unwrap();
    }
    let mut now = c.subscriber().unwrap();
    let mut old = c.subscriber_from_oldest().unwrap();
    p.send(&numbered(5)).unwrap();
    assert_eq!(drain_numbered(&mut old), (0..6).collect::<Vec<_>>());
    assert_eq!(drain_numbered(&mut now), vec![5]);
    drop((now, old));
    // After many laps (no subscriber holds publishers back): a whole run
    // of the newest messages, ending with the last, about a ring's worth.
    for i in 6..2000 {
        p.send(&numbered(i)).unwrap();
    }
    let mut old = c.subscriber_from_oldest().unwrap();
    let got = drain_numbered(&mut old);
    assert_eq!(*got.last().unwrap(), 1999);
    let bytes: u64 = got
        .iter()
        .map(|&n| 16 + (numbered(n).len() as u64).div_ceil(16) * 16)
        .sum();
    assert!(
        bytes > 4096 - 2 * 128 && bytes <= 4096,
        "{} messages, {bytes} ring bytes",
        got.len()
    );
    // A later one starts where the history is now.
    p.send(&numbered(2000)).unwrap();
    assert_eq!(drain_numbered(&mut old), vec![2000]);
}

#[test]
fn a_subscriber_from_the_oldest_of_an_empty_channel_gets_what_comes() {
    let d = TestDir::new("ch-oldest-empty");
    let c = channel(&d, "oldest-empty", 4096, 100);
    let mut old = c.subscriber_from_oldest().unwrap();
    assert!(matches!(old.try_recv(), Err(TryRecvError::Empty)));
    c.publisher().unwrap().send(&numbered(0)).unwrap();
    assert_eq!(drain_numbered(&mut old), vec![0]);
}

/// A lossy subscriber never holds publishers back, a lossless one of the
/// same channel still does; the lossy one reports exactly what it lost
/// (the publisher is idle while it catches up), then goes on with whole
/// messages, in order, from the oldest still in the ring.
#[test]
fn lossy_and_lossless_subscribers_share_a_channel() {
    let d = TestDir::new("ch-lossy");
    let c = channel(&d, "lossy", 4096, 100);
    let mut lossy = c.lossy_subscriber().unwrap();
    assert!(lossy.copies_messages());
    let mut p = c.publisher().unwrap();
    for i in 0..3000 {
        p.try_send(&numbered(i))
            .expect("a lossy subscriber never makes the ring full");
    }
    let lost = match lossy.try_recv() {
        Err(TryRecvError::Lagged(lag)) => {
            assert!(lag.bytes() > 0);
            lag.messages()
        }
        other => panic!("expected Lagged, got {other:?}"),
    };
    let got = drain_numbered(&mut lossy);
    assert_eq!(
        u64::from(got[0]),
        lost,
        "lost exactly the messages before the first kept"
    );
    assert_eq!(*got.last().unwrap(), 2999);
    assert!(got.len() > 10, "about a ring's worth kept: {}", got.len());

    // A lossless subscriber holds publishers back as before.
    let mut lossless = c.subscriber().unwrap();
    let mut sent = 3000;
    while p.try_send(&numbered(sent)).is_ok() {
        sent += 1;
        assert!(sent < 3200, "a lossless subscriber must fill the ring");
    }
    assert!(matches!(
        p.try_send(&numbered(sent)),
        Err(TrySendError::Full)
    ));
    assert_eq!(
        drain_numbered(&mut lossless),
        (3000..sent).collect::<Vec<_>>()
    );
    // The lossy one was not lapped by that: it reads the same, no loss.
    assert_eq!(drain_numbered(&mut lossy), (3000..sent).collect::<Vec<_>>());

    // Lapped again while iterating: the iterator says so and goes on.
    for i in sent..sent + 500 {
        p.send(&numbered(i)).unwrap();
        let _ = lossless.try_recv().unwrap();
    }
    let mut lags = 0;
    let mut last = None;
    let mut it = lossy.try_iter();
    while let Some(m) = it.next() {
        match m {
            Ok(m) => last = Some(u32::from_le_bytes(m[..4].try_into().unwrap())),
            Err(TryRecvError::Lagged(_)) => lags += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((lags, last), (1, Some(sent + 499)));
    let info = c.info();
    let s = info
        .subscribers
        .iter()
        .find(|s| s.lossy)
        .expect("the lossy one");
    assert!(s.lost_messages > lost && s.lost_bytes > 0, "{s:?}");
}

#[test]
fn inspect_reads_without_writing_and_reports_corruption() {
    let d = TestDir::new("ch-inspect");
    let c = channel(&d, "insp", 64 * 1024, 1024);
    let mut s = c.subscriber().unwrap();
    let mut p = c.publisher().unwrap();
    for i in 0..5u8 {
        p.send(&[i; 3]).unwrap();
    }
    assert_eq!(s.try_recv().unwrap().as_ref(), &[0; 3]);
    let path = c.path().to_path_buf();
    let before = std::fs::read(&path).unwrap();
    let snap = Channel::open_options("insp")
        .dir(&d.path)
        .inspect()
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before, "inspect wrote");
    assert_eq!(snap, c.info());
    assert_eq!(snap.messages_sent, 5);
    assert_eq!(snap.publishers.len(), 1);
    assert_eq!(snap.subscribers.len(), 1);
    assert_eq!(
        snap.subscribers[0].lag,
        snap.head - snap.subscribers[0].position
    );

    // A copy with garbage over the channel's configuration (just past the
    // 4096-byte segment header): an error value, not a panic.
    let mut garbage = before.clone();
    garbage[4096..4096 + 256].fill(0xA5);
    std::fs::write(d.path.join("memlane.insp-bad"), &garbage).unwrap();
    match Channel::open_options("insp-bad").dir(&d.path).inspect() {
        Err(OpenError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Not a channel: WrongKind, as from open.
    memlane::Latest::builder("insp-slot")
        .dir(&d.path)
        .max_value(8)
        .create()
        .unwrap();
    assert!(matches!(
        Channel::open_options("insp-slot").dir(&d.path).inspect(),
        Err(OpenError::WrongKind { .. })
    ));
    let slot = memlane::Latest::open_options("insp-slot")
        .dir(&d.path)
        .inspect()
        .unwrap();
    assert_eq!((slot.version, slot.writers.len()), (0, 0));
    drop((s, p, c));
}

/// KiB of the mappings of `path` present in this process's page tables
/// (`Rss` in `/proc/self/smaps`).
#[cfg(target_os = "linux")]
fn mapped_kib(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        // A mapping's header line starts with its address range.
        let header = line.split_whitespace().next().is_some_and(|w| {
            w.contains('-') && w.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        });
        if header {
            inside = line.ends_with(name);
        } else if let (true, Some(v)) = (inside, line.strip_prefix("Rss:")) {
            kib += v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib
}

/// Minor page faults this thread has taken (`/proc/thread-self/stat`,
/// field 10).
#[cfg(target_os = "linux")]
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(7).unwrap().parse().unwrap()
}

/// Joining maps the ring's pages in, so the first lap through the ring
/// takes no page faults on the message path; a handle that only opens
/// maps nothing in (it stays quick to open and close).
#[cfg(target_os = "linux")]
#[test]
fn joining_maps_the_ring_in_and_opening_does_not() {
    let d = TestDir::new("ch-populate");
    let c = channel(&d, "populate", 1 << 20, 4096);
    let path = c.path().to_path_buf();
    let opened = mapped_kib(&path);
    assert!(
        opened <= 64,
        "an open handle has {opened} KiB of its mapping in, expected only its header"
    );
    let mut p = c.publisher().unwrap();
    let mut s = c.subscriber().unwrap();
    let joined = mapped_kib(&path);
    assert!(
        joined >= 1024 + opened,
        "a joined handle has {joined} KiB of its mapping in, expected the 1 MiB ring"
    );
    // A lap and a half through the ring: 4 KiB messages (4,112-byte
    // records), received as they go, into a buffer allocated up front.
    let msg = vec![7u8; 4096];
    let mut buf = vec![0u8; 4096];
    let faults = minor_faults();
    for _ in 0..400 {
        p.send(&msg).unwrap();
        let m = s.try_recv().unwrap();
        buf.copy_from_slice(&m);
    }
    let taken = minor_faults() - faults;
    assert_eq!(buf, msg);
    // Without the join's mapping in: one per page of the ring, 256.
    assert!(
        taken < 16,
        "{taken} page faults in a lap through a joined ring"
    );
    drop((s, p, c));
}
