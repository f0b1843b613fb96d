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

/// Serde channels with a recorded schema (feature `schema`): the schema
/// is postcard-schema's own encoding, decodes messages to the JSON
/// serde_json prints, is compared on open, and is validated when read.
mod schema_channels {
    use std::collections::BTreeMap;

    use super::*;
    use memlane::postcard_schema::schema::owned::OwnedNamedType;
    use memlane::postcard_schema::Schema;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Point {
        x: f32,
        y: f64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    enum Kind {
        Idle,
        Busy(u8),
        Moving(i16, bool),
        Turning { angle: f32, left: bool },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Meters(f64);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Marker;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Reading {
        seq: u32,
        t_ns: u64,
        delta: i64,
        big: u128,
        small: i128,
        ok: bool,
        letter: char,
        name: String,
        note: Option<String>,
        missing: Option<u8>,
        at: Point,
        path: Vec<Point>,
        kinds: Vec<Kind>,
        accel: [f32; 3],
        pair: (u16, String),
        range: Meters,
        marker: Marker,
        counts: BTreeMap<String, u32>,
        by_id: BTreeMap<u32, bool>,
        raw: Vec<u8>,
    }
    impl MessageType for Reading {
        fn type_name() -> std::borrow::Cow<'static, str> {
            "tests::Reading".into()
        }
    }

    fn reading(i: u32) -> Reading {
        Reading {
            seq: i,
            t_ns: 1_700_000_000_000_000_000 + u64::from(i),
            delta: -(i64::from(i) * 1_000_003),
            big: u128::MAX - u128::from(i),
            small: i128::MIN + i128::from(i),
            ok: i % 2 == 0,
            letter: ['a', 'é', '"', '\n'][i as usize % 4],
            name: format!("sensor \"{i}\"\t\\ ✓"),
            note: (i % 2 == 1).then(|| "odd".to_string()),
            missing: None,
            at: Point {
                x: 0.1 * i as f32,
                y: -2.5e-7,
            },
            path: (0..i % 3)
                .map(|k| Point {
                    x: k as f32,
                    y: 1e300,
                })
                .collect(),
            kinds: vec![
                Kind::Idle,
                Kind::Busy(i as u8),
                Kind::Moving(-3, true),
                Kind::Turning {
                    angle: 1.25,
                    left: false,
                },
            ],
            accel: [0.0, -9.81, f32::MAX],
            pair: (65535, String::new()),
            range: Meters(12.5),
            marker: Marker,
            counts: [("a".to_string(), 1), ("b\u{1}".to_string(), 2)].into(),
            by_id: [(3, true), (40, false)].into(),
            raw: vec![0, 255, i as u8],
        }
    }

    fn create(dir: &TestDir, name: &str) -> Channel {
        Channel::builder(name)
            .dir(&dir.path)
            .serde_type_with_schema::<Reading>()
            .create()
            .unwrap()
    }

    #[test]
    fn messages_decode_to_the_json_serde_json_prints() {
        if std::env::var(ROLE_ENV).is_ok() {
            return;
        }
        let dir = TestDir::new("schema-json");
        let raw = create(&dir, "readings");
        let rec = open(&dir, "readings").message_type().unwrap().unwrap();
        let schema = rec.schema().expect("a schema is recorded").clone();
        // The recorded bytes are postcard-schema's own encoding.
        let owned: OwnedNamedType = postcard::from_bytes(schema.as_bytes()).unwrap();
        assert_eq!(owned, OwnedNamedType::from(Reading::SCHEMA));
        assert_eq!(schema.format(), 1);
        assert_eq!(schema.type_name(), Some("Reading"));
        let text = schema.to_string();
        assert!(
            text.starts_with("struct Reading { seq: u32, t_ns: u64,"),
            "{text}"
        );
        assert!(text.contains("accel: [f32; 3]"), "{text}");
        assert!(
            text.contains("enum Kind { Idle, Busy(u8), Moving(i16, bool), Turning { angle: f32, left: bool } }"),
            "{text}"
        );

        let ch = raw.serde_with_schema::<Reading>().unwrap();
        let mut bytes = raw.subscriber().unwrap();
        let mut publ = ch.publisher().unwrap();
        for i in 0..8 {
            let value = reading(i);
            publ.send(&value).unwrap();
            let msg = bytes.try_recv().unwrap();
            let json = schema.to_json(&msg).unwrap();
            assert_eq!(json, serde_json::to_string(&value).unwrap(), "message {i}");
        }
    }

    /// Same name, size and alignment as `Reading`, a field renamed.
    mod other {
        use super::*;
        #[derive(Debug, Serialize, Deserialize, Schema)]
        #[postcard(crate = memlane::postcard_schema)]
        pub struct Reading {
            number: u32,
            t_ns: u64,
            delta: i64,
            big: u128,
            small: i128,
            ok: bool,
            letter: char,
            name: String,
            note: Option<String>,
            missing: Option<u8>,
            at: Point,
            path: Vec<Point>,
            kinds: Vec<Kind>,
            accel: [f32; 3],
            pair: (u16, String),
            range: Meters,
            marker: Marker,
            counts: BTreeMap<String, u32>,
            by_id: BTreeMap<u32, bool>,
            raw: Vec<u8>,
        }
        impl MessageType for Reading {
            fn type_name() -> std::borrow::Cow<'static, str> {
                "tests::Reading".into()
            }
        }
    }

    #[test]
    fn another_schema_is_a_mismatch_naming_both() {
        if std::env::var(ROLE_ENV).is_ok() {
            return;
        }
        assert_eq!(
            (size_of::<Reading>(), align_of::<Reading>()),
            (size_of::<other::Reading>(), align_of::<other::Reading>()),
            "the test needs two types the record alone cannot tell apart"
        );
        let dir = TestDir::new("schema-mismatch");
        let raw = create(&dir, "readings");
        let again = open(&dir, "readings");
        assert!(again.serde_with_schema::<Reading>().is_ok());
        // Without a schema, only the name and fingerprint are compared.
        assert!(again.serde::<other::Reading>().is_ok());
        let err = again.serde_with_schema::<other::Reading>().unwrap_err();
        let TypeError::Mismatch {
            expected, found, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_ne!(expected.schema(), found.schema());
        let msg = err.to_string();
        assert_eq!(
            msg.matches("`tests::Reading` (postcard").count(),
            2,
            "{msg}"
        );
        assert_eq!(msg.matches(", schema 0x").count(), 2, "{msg}");
        drop(raw);

        // A channel created without a schema opens with one: it cannot be
        // checked, and messages still decode with the type.
        let plain = Channel::builder("plain")
            .dir(&dir.path)
            .serde_type::<Reading>()
            .create()
            .unwrap();
        assert!(plain.message_type().unwrap().unwrap().schema().is_none());
        let ch = plain.serde_with_schema::<Reading>().unwrap();
        let mut sub = ch.subscriber().unwrap();
        ch.publisher().unwrap().send(&reading(1)).unwrap();
        assert_eq!(sub.try_recv().unwrap(), reading(1));
    }

    /// Garbage over the schema bytes is an error on `message_type` and
    /// on every typed open, never a panic; a schema'd channel with a
    /// broken schema is still reachable with the byte API.
    #[test]
    fn garbage_schema_bytes_are_errors_never_panics() {
        if std::env::var(ROLE_ENV).is_ok() {
            return;
        }
        use std::io::{Read, Seek, SeekFrom, Write};
        let dir = TestDir::new("schema-garbage");
        drop(create(&dir, "garbage"));
        let path = dir.path.join("memlane.garbage");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        // Data region at 4096; P = S = 8: the record at 640 + 16 * 128,
        // its schema after the 64-byte header and the name.
        let record_at = 4096 + 640 + 16 * 128;
        let schema_at = record_at + 64 + "tests::Reading".len() as u64;
        let mut len = [0u8; 4];
        file.seek(SeekFrom::Start(record_at + 32)).unwrap();
        file.read_exact(&mut len).unwrap();
        let schema_len = u32::from_ne_bytes(len) as u64;
        assert!(schema_len > 100, "{schema_len}");
        let mut original = vec![0u8; schema_len as usize];
        file.seek(SeekFrom::Start(schema_at)).unwrap();
        file.read_exact(&mut original).unwrap();

        // One known fault: the message type's tag (after its name,
        // "Reading") set to an unknown one.
        file.seek(SeekFrom::Start(schema_at + 8)).unwrap();
        file.write_all(&[99]).unwrap();
        let ch = open(&dir, "garbage");
        let err = ch.message_type().unwrap_err();
        assert!(
            matches!(&err, TypeError::Corrupt { reason, .. } if reason.contains("unknown type tag 99")),
            "{err}"
        );
        assert!(matches!(
            ch.serde_with_schema::<Reading>(),
            Err(TypeError::Corrupt { .. })
        ));
        assert!(ch.subscriber().is_ok(), "the byte API still opens it");
        drop(ch);

        let mut rng = Rng::new(11);
        let (mut corrupt, mut accepted) = (0, 0);
        for _ in 0..400 {
            file.seek(SeekFrom::Start(schema_at)).unwrap();
            file.write_all(&original).unwrap();
            for _ in 0..1 + rng.below(4) {
                let at = schema_at + rng.below(schema_len);
                file.seek(SeekFrom::Start(at)).unwrap();
                file.write_all(&[rng.next() as u8]).unwrap();
            }
            let ch = open(&dir, "garbage");
            match ch.message_type() {
                Ok(Some(rec)) => {
                    accepted += 1;
                    // Whatever it says, decoding a message never panics.
                    if let Some(s) = rec.schema() {
                        let msg = postcard::to_stdvec(&reading(3)).unwrap();
                        let _ = s.to_json(&msg);
                        let _ = s.to_string();
                    }
                }
                Ok(None) => panic!("the record went away"),
                Err(TypeError::Corrupt { .. }) => corrupt += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(corrupt > 0, "garbage was noticed ({accepted} accepted)");
    }
}

/// A type whose schema is too large to record: creating its channel with
/// a schema fails with a clear error, and so does opening with one.
#[test]
fn a_schema_too_large_to_record_is_a_clear_error() {
    if std::env::var(ROLE_ENV).is_ok() {
        return;
    }
    // 32,768 `u8`s as nested arrays: a schema of over 100 KiB.
    #[derive(serde::Serialize, serde::Deserialize, memlane::postcard_schema::Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Cube([[[u8; 32]; 32]; 32]);
    impl MessageType for Cube {}

    let dir = TestDir::new("schema-large");
    let err = Channel::builder("cube")
        .dir(&dir.path)
        .serde_type_with_schema::<Cube>()
        .create()
        .unwrap_err();
    assert!(
        matches!(&err, memlane::CreateError::InvalidConfig { reason }
            if reason.contains("the schema of `") && reason.contains("is longer than 61440 bytes")),
        "{err}"
    );
    // Without a schema it works; opening with one is refused, clearly.
    let ch = Channel::builder("cube")
        .dir(&dir.path)
        .serde_type::<Cube>()
        .create()
        .unwrap();
    assert!(ch.serde::<Cube>().is_ok());
    let err = ch.serde_with_schema::<Cube>().unwrap_err();
    assert!(matches!(err, TypeError::Schema { .. }), "{err:?}");
    assert!(
        err.to_string().contains("open it with `Channel::serde`"),
        "{err}"
    );
}
