//! Typed channels: plain values in place across processes, the type
//! record (wrong types, untyped channels, garbage records), messages of
//! the wrong size, slices, copied channels, and serde channels.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use common::{expect_success, fnv1a, spawn_role, Rng, TestDir, ROLE_ENV};
use memlane::zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
use memlane::{Channel, Encoding, MessageType, OpenError, TryRecvError, TypeError, TypedRecvError};

/// 64 bytes: a sequence number, a checksum of the data, and data.
#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Sample {
    seq: u64,
    sum: u64,
    data: [u32; 12],
}

impl MessageType for Sample {
    fn type_name() -> std::borrow::Cow<'static, str> {
        "tests::Sample".into()
    }
    fn layout_hash() -> u64 {
        memlane::layout_hash(b"seq: u64, sum: u64, data: [u32; 12]")
    }
}

/// Same size and alignment as `Sample`, another type.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Other {
    words: [u64; 8],
}
impl MessageType for Other {}

fn fill(seq: u64, s: &mut Sample) {
    let mut rng = Rng::new(seq);
    s.seq = seq;
    for w in &mut s.data {
        *w = rng.next() as u32;
    }
    s.sum = fnv1a(s.data.as_bytes());
}

fn check(s: &Sample, seq: u64) {
    assert_eq!(s.seq, seq, "in order, none lost");
    assert_eq!(s.sum, fnv1a(s.data.as_bytes()), "message {seq} intact");
}

fn open(dir: &TestDir, name: &str) -> Channel {
    Channel::open_options(name)
        .dir(&dir.path)
        .open()
        .expect("open")
}

const N: u64 = 20_000;

/// The publisher child: `N` samples through loans (every 100th as a
/// slice of three, loaned in place), then leaves.
#[test]
fn child_typed_publisher() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("typed-pub") {
        return;
    }
    let dir = std::env::var("MEMLANE_TEST_DIR").unwrap();
    let name = std::env::var("MEMLANE_TEST_NAME").unwrap();
    let ch = Channel::open_options(&name).dir(&dir).open().unwrap();
    let ch = ch.typed::<Sample>().unwrap();
    let mut publ = ch.publisher().unwrap();
    let mut seq = 0;
    while seq < N {
        if seq % 100 == 99 && seq + 3 <= N {
            let mut loan = publ.loan_slice(3).unwrap();
            for (i, s) in loan.iter_mut().enumerate() {
                fill(seq + i as u64, s);
            }
            loan.commit().unwrap();
            seq += 3;
        } else {
            let mut loan = publ.loan().unwrap();
            fill(seq, &mut loan);
            loan.commit().unwrap();
            seq += 1;
        }
    }
    println!("SENT {seq}");
}

#[test]
fn typed_values_cross_processes_in_place_with_checksums() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-mp");
    let ch = Channel::builder("typed-mp")
        .dir(&dir.path)
        .capacity(64 * 1024)
        .message_type::<Sample>()
        .create()
        .unwrap();
    let ch = ch.typed::<Sample>().unwrap();
    let mut sub = ch.subscriber().unwrap();
    assert!(!sub.subscriber().copies_messages(), "read in place");
    let child = spawn_role(
        "child_typed_publisher",
        "typed-pub",
        &[
            ("MEMLANE_TEST_DIR", dir.path.display().to_string()),
            ("MEMLANE_TEST_NAME", "typed-mp".to_string()),
        ],
    );
    let mut seq = 0;
    while seq < N {
        // Slices where the publisher sent them; single values elsewhere.
        if seq % 100 == 99 && seq + 3 <= N {
            let got = sub.recv_slice_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(got.len(), 3);
            for (i, s) in got.iter().enumerate() {
                check(s, seq + i as u64);
            }
            seq += 3;
        } else {
            let got = sub.recv_timeout(Duration::from_secs(20)).unwrap();
            check(&got, seq);
            seq += 1;
        }
    }
    let out = child.wait(Duration::from_secs(60));
    let stdout = expect_success(&out, "typed publisher");
    assert!(stdout.contains(&format!("SENT {N}")), "{stdout}");
}

#[test]
fn opening_with_another_type_is_an_error_naming_both() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-wrong");
    let ch = Channel::builder("typed-wrong")
        .dir(&dir.path)
        .message_type::<Sample>()
        .create()
        .unwrap();
    let again = open(&dir, "typed-wrong");
    let rec = again.message_type().unwrap().expect("typed");
    assert_eq!(rec.name(), "tests::Sample");
    assert_eq!(
        (rec.size(), rec.align(), rec.encoding()),
        (64, 8, Encoding::Plain)
    );
    assert!(again.typed::<Sample>().is_ok());
    // Same size and alignment, another type.
    let err = again.typed::<Other>().unwrap_err();
    let TypeError::Mismatch {
        ref expected,
        ref found,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(found.name(), "tests::Sample");
    assert!(expected.name().ends_with("Other"), "{expected}");
    let text = err.to_string();
    assert!(
        text.contains("tests::Sample") && text.contains("Other"),
        "{text}"
    );
    // Another size.
    let err = again.typed::<u64>().unwrap_err();
    assert!(err.to_string().contains("`u64`"), "{err}");
    // Same name, size and alignment, another layout hash: a changed type.
    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
    #[repr(C)]
    struct Reordered {
        sum: u64,
        seq: u64,
        data: [u32; 12],
    }
    impl MessageType for Reordered {
        fn type_name() -> std::borrow::Cow<'static, str> {
            "tests::Sample".into()
        }
        fn layout_hash() -> u64 {
            memlane::layout_hash(b"sum: u64, seq: u64, data: [u32; 12]")
        }
    }
    assert!(matches!(
        again.typed::<Reordered>(),
        Err(TypeError::Mismatch { .. })
    ));
    drop((ch, again));
}

#[test]
fn byte_api_opens_typed_channels_and_untyped_channels_refuse_types() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-bytes");
    let typed = Channel::builder("typed")
        .dir(&dir.path)
        .message_type::<u32>()
        .create()
        .unwrap();
    // The byte API on a typed channel: both ways.
    let t = typed.typed::<u32>().unwrap();
    let mut tsub = t.subscriber().unwrap();
    let mut bsub = typed.subscriber().unwrap();
    typed
        .publisher()
        .unwrap()
        .send(&7u32.to_ne_bytes())
        .unwrap();
    assert_eq!(*tsub.try_recv().unwrap(), 7);
    assert_eq!(&*bsub.try_recv().unwrap(), &7u32.to_ne_bytes());

    let untyped = Channel::builder("untyped").dir(&dir.path).create().unwrap();
    assert!(untyped.message_type().unwrap().is_none());
    let err = untyped.typed::<u32>().unwrap_err();
    assert!(matches!(err, TypeError::Untyped { .. }), "{err:?}");
    assert!(err.to_string().contains("created untyped"), "{err}");
}

#[test]
fn a_message_of_the_wrong_size_is_a_typed_error_and_skipped() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-size");
    let ch = Channel::builder("typed-size")
        .dir(&dir.path)
        .message_type::<u64>()
        .create()
        .unwrap();
    let t = ch.typed::<u64>().unwrap();
    let mut sub = t.subscriber().unwrap();
    let mut bytes = ch.publisher().unwrap();
    bytes.send(b"abc").unwrap();
    bytes.send(&[0u8; 16]).unwrap();
    bytes.send(&[1u8; 12]).unwrap();
    bytes.send(&[]).unwrap();
    let err = sub.try_recv().unwrap_err();
    assert!(
        matches!(
            err,
            TypedRecvError::WrongSize {
                len: 3,
                size: 8,
                slice: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`u64`"), "{err}");
    // Two values are a slice, not one value.
    assert!(matches!(
        sub.try_recv(),
        Err(TypedRecvError::WrongSize { len: 16, .. })
    ));
    let err = sub.try_recv_slice().unwrap_err();
    assert!(
        matches!(
            err,
            TypedRecvError::WrongSize {
                len: 12,
                slice: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sub.try_recv_slice().unwrap().len(), 0, "an empty slice");
    assert!(matches!(
        sub.try_recv(),
        Err(TypedRecvError::Recv(TryRecvError::Empty))
    ));
}

#[test]
fn the_lending_iterator_reports_wrong_sizes_and_ends_when_publishers_leave() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-iter");
    let ch = Channel::builder("typed-iter")
        .dir(&dir.path)
        .message_type::<u32>()
        .create()
        .unwrap();
    let t = ch.typed::<u32>().unwrap();
    let mut sub = t.subscriber().unwrap();
    sub.subscriber()
        .set_disconnect_grace(Some(Duration::from_millis(20)));
    let mut publ = t.publisher().unwrap();
    publ.send(&5).unwrap();
    publ.publisher().send(b"odd").unwrap();
    publ.send(&7).unwrap();
    drop(publ);
    let mut it = sub.iter();
    assert_eq!(*it.next().unwrap().unwrap(), 5);
    assert!(matches!(
        it.next(),
        Some(Err(TypedRecvError::WrongSize { len: 3, .. }))
    ));
    assert_eq!(*it.next().unwrap().unwrap(), 7);
    assert!(it.next().is_none(), "every publisher has left");
}

#[test]
fn slices_and_copied_channels() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    let dir = TestDir::new("typed-slices");
    for copy in [false, true] {
        let name = format!("slices-{copy}");
        let ch = Channel::builder(&name)
            .dir(&dir.path)
            .copy_messages(copy)
            .message_type::<Sample>()
            .create()
            .unwrap()
            .typed::<Sample>()
            .unwrap();
        let mut sub = ch.subscriber().unwrap();
        let mut publ = ch.publisher().unwrap();
        assert_eq!(publ.publisher().copies_messages(), copy);
        let mut values = [Sample::new_zeroed(); 5];
        for (i, v) in values.iter_mut().enumerate() {
            fill(i as u64, v);
        }
        publ.send_slice(&values).unwrap();
        let mut loan = publ.loan_slice(2).unwrap();
        loan.copy_from_slice(&values[..2]);
        loan.commit().unwrap();
        publ.send(&values[4]).unwrap();
        drop(publ.loan().unwrap()); // not committed: skipped
        let mut loan = publ.try_loan().unwrap();
        *loan = values[3];
        loan.commit().unwrap();
        assert_eq!(&*sub.try_recv_slice().unwrap(), &values[..]);
        assert_eq!(&*sub.try_recv_slice().unwrap(), &values[..2]);
        assert_eq!(*sub.try_recv().unwrap(), values[4]);
        assert_eq!(*sub.try_recv().unwrap(), values[3]);
        // Too many values for one message.
        let max = publ.publisher().max_message() / 64;
        assert!(matches!(
            publ.loan_slice(max + 1),
            Err(memlane::SendError::TooLarge { .. })
        ));
    }
}

/// Garbage over the type record, or its length in the config, is an
/// error on open (or from `message_type`/`typed`), never a panic.
#[test]
fn garbage_type_records_never_panic() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    use std::io::{Seek, SeekFrom, Write};
    let dir = TestDir::new("typed-garbage");
    let ch = Channel::builder("garbage")
        .dir(&dir.path)
        .message_type::<Sample>()
        .create()
        .unwrap();
    drop(ch);
    let path = dir.path.join("memlane.garbage");
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // Data region at 4096; P = S = 8: the record at 640 + 16 * 128.
    let record_at = 4096 + 640 + 16 * 128;
    let type_len_at = 4096 + 52;
    let mut rng = Rng::new(7);
    let (mut corrupt, mut accepted) = (0, 0);
    for round in 0..300 {
        let len = 1 + rng.below(96) as usize;
        let at = record_at + rng.below(96);
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        file.seek(SeekFrom::Start(at)).unwrap();
        file.write_all(&junk).unwrap();
        if round % 50 == 49 {
            // The record's length in the config.
            file.seek(SeekFrom::Start(type_len_at)).unwrap();
            file.write_all(&(rng.next() as u32).to_ne_bytes()).unwrap();
        }
        match Channel::open_options("garbage").dir(&dir.path).open() {
            Ok(ch) => match ch.message_type() {
                Ok(_) => {
                    accepted += 1;
                    assert!(ch.typed::<Sample>().is_err() || junk.iter().all(|&b| b == 0));
                }
                Err(TypeError::Corrupt { .. }) => corrupt += 1,
                Err(e) => panic!("{e:?}"),
            },
            Err(OpenError::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(corrupt > 0, "garbage was noticed ({accepted} accepted)");
}

mod serde_channels {
    use super::*;
    use memlane::SerdeRecvError;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Command {
        verb: String,
        speed: f32,
        targets: Vec<u16>,
    }
    impl MessageType for Command {}

    #[test]
    fn serde_values_round_trip_and_undecodable_messages_are_typed_errors() {
        if std::env::var(ROLE_ENV).is_ok() {
            return;
        }
        let dir = TestDir::new("typed-serde");
        let raw = Channel::builder("serde")
            .dir(&dir.path)
            .serde_type::<Command>()
            .create()
            .unwrap();
        let rec = raw.message_type().unwrap().unwrap();
        assert_eq!(rec.encoding(), Encoding::Postcard);
        assert!(rec.name().ends_with("Command"));
        let ch = raw.serde::<Command>().unwrap();
        let mut sub = ch.subscriber().unwrap();
        let mut publ = ch.publisher().unwrap();
        let cmd = Command {
            verb: "go".into(),
            speed: 1.5,
            targets: vec![1, 2, 300],
        };
        publ.send(&cmd).unwrap();
        let mut bytes = raw.publisher().unwrap();
        bytes.send(&[0xff, 0xff, 0xff]).unwrap();
        let mut trailing = postcard::to_stdvec(&cmd).unwrap();
        trailing.push(0);
        bytes.send(&trailing).unwrap();
        publ.try_send(&cmd).unwrap();
        assert_eq!(sub.try_recv().unwrap(), cmd);
        let err = sub.try_recv().unwrap_err();
        assert!(
            matches!(err, SerdeRecvError::Decode { len: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("does not decode as"), "{err}");
        let err = sub.try_recv().unwrap_err();
        assert!(err.to_string().contains("1 bytes left over"), "{err}");
        assert_eq!(sub.try_recv().unwrap(), cmd);
        // A serde channel is not a plain one, nor one of another serde type.
        assert!(matches!(
            raw.typed::<u64>(),
            Err(TypeError::Mismatch { .. })
        ));
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Other(String);
        impl MessageType for Other {}
        assert!(matches!(
            raw.serde::<Other>(),
            Err(TypeError::Mismatch { .. })
        ));
    }
}
