//! The command on typed channels (made with the library's
//! `ChannelBuilder::message_type`): `info` shows the type record, `listen`
//! prints each message's values in hex.

mod common;

use common::{listen, run, TempDir};
use memlane::Channel;

#[test]
fn info_shows_the_type_and_listen_prints_values_in_hex() {
    let dir = TempDir::new("typed");
    let ch = Channel::builder("imu")
        .dir(dir.path())
        .message_type::<[u16; 2]>()
        .create()
        .unwrap();

    let info = run(&dir, &["info", "imu"]).ok();
    assert!(
        info.stdout
            .contains("messages:       `[u16; 2]` (plain, 4 bytes, align 2, fingerprint 0x"),
        "{info:#?}"
    );
    let json = run(&dir, &["info", "imu", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("info --json is JSON");
    assert_eq!(v["message_type"]["name"], "[u16; 2]");
    assert_eq!(v["message_type"]["encoding"], "plain");
    assert_eq!(v["message_type"]["size"], 4);
    assert_eq!(v["message_type"]["align"], 2);

    let untyped = Channel::builder("raw").dir(dir.path()).create().unwrap();
    let info = run(&dir, &["info", "raw"]).ok();
    assert!(
        info.stdout.contains("messages:       bytes (untyped)"),
        "{info:#?}"
    );
    let json = run(&dir, &["info", "raw", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["message_type"].is_null(), "{v}");
    drop(untyped);

    let text = listen(&dir, "imu", &["--count", "2"]);
    let json = listen(&dir, "imu", &["--count", "2", "--format", "json"]);
    let mut publ = ch.typed::<[u16; 2]>().unwrap().publisher().unwrap();
    publ.send(&[0x0102, 0x0304]).unwrap();
    publ.send_slice(&[[1, 2], [3, 4]]).unwrap();
    let text = text.finish().ok();
    let le = cfg!(target_endian = "little");
    let lines: Vec<&str> = text.stdout.lines().collect();
    if le {
        assert_eq!(lines, ["02010403", "01000200 03000400"]);
    }
    let json = json.finish().ok();
    let first: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "[u16; 2]");
    assert_eq!(first["len"], 4);
    if le {
        assert_eq!(first["hex"], "02010403");
    }
}

/// A serde channel that records its schema (the library's
/// `ChannelBuilder::serde_type_with_schema`): `info` shows the schema,
/// `listen` prints each message as the JSON serde_json prints for it, and
/// a message that does not decode is reported without ending the listen.
mod schema {
    use super::*;
    use memlane::postcard_schema::Schema;
    use memlane::MessageType;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Point {
        x: f32,
        y: f64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    enum State {
        Idle,
        Busy(u8),
        Turning { angle: f32, left: bool },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Schema)]
    #[postcard(crate = memlane::postcard_schema)]
    struct Reading {
        seq: u32,
        delta: i64,
        name: String,
        note: Option<String>,
        at: Point,
        path: Vec<Point>,
        state: State,
        ok: bool,
    }
    impl MessageType for Reading {
        fn type_name() -> std::borrow::Cow<'static, str> {
            "cli::Reading".into()
        }
    }

    fn reading(i: u32) -> Reading {
        Reading {
            seq: i,
            delta: -7 * i64::from(i),
            name: format!("imu \"{i}\"\n"),
            note: (i % 2 == 1).then(|| "odd".into()),
            at: Point { x: 0.5, y: 0.1 },
            path: (0..i)
                .map(|k| Point {
                    x: k as f32,
                    y: -1e-9,
                })
                .collect(),
            state: [
                State::Idle,
                State::Busy(3),
                State::Turning {
                    angle: -1.25,
                    left: true,
                },
            ][i as usize % 3]
                .clone(),
            ok: i % 2 == 0,
        }
    }

    #[test]
    fn info_shows_the_schema_and_listen_prints_json_lines() {
        let dir = TempDir::new("schema");
        let raw = Channel::builder("readings")
            .dir(dir.path())
            .serde_type_with_schema::<Reading>()
            .create()
            .unwrap();

        let info = run(&dir, &["info", "readings"]).ok();
        assert!(
            info.stdout.contains(
                "schema:         struct Reading { seq: u32, delta: i64, name: String, note: Option<String>, at: Point, path: [Point], state: State, ok: bool }; struct Point { x: f32, y: f64 }; enum State { Idle, Busy(u8), Turning { angle: f32, left: bool } } ("
            ),
            "{info:#?}"
        );
        let json = run(&dir, &["info", "readings", "--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(v["message_type"]["name"], "cli::Reading");
        assert!(v["message_type"]["schema"]
            .as_str()
            .unwrap()
            .starts_with("struct Reading {"));
        assert!(v["message_type"]["schema_len"].as_u64().unwrap() > 50);

        let text = listen(&dir, "readings", &["--count", "6"]);
        let json = listen(&dir, "readings", &["--count", "6", "--format", "json"]);
        let hex = listen(&dir, "readings", &["--count", "1", "--format", "hex"]);
        let ch = raw.serde_with_schema::<Reading>().unwrap();
        let mut publ = ch.publisher().unwrap();
        let mut bytes = raw.publisher().unwrap();
        let values: Vec<Reading> = (0..5).map(reading).collect();
        for v in &values[..3] {
            publ.send(v).unwrap();
        }
        // Not a `Reading`: a bool of 7 where `ok` is, then the good ones go on.
        let mut bad = postcard::to_stdvec(&values[3]).unwrap();
        *bad.last_mut().unwrap() = 7;
        bytes.send(&bad).unwrap();
        publ.send(&values[3]).unwrap();
        publ.send(&values[4]).unwrap();

        let text = text.finish().ok();
        let expected: Vec<String> = values
            .iter()
            .map(|v| serde_json::to_string(v).unwrap())
            .collect();
        let lines: Vec<&str> = text.stdout.lines().collect();
        assert_eq!(lines, expected, "{text:#?}");
        assert!(
            text.stderr.contains(&format!(
                "message 3 ({} bytes) is not a `cli::Reading`: byte {}: a bool of 7",
                bad.len(),
                bad.len() - 1
            )),
            "{text:#?}"
        );

        let json = json.finish().ok();
        let lines: Vec<serde_json::Value> = json
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 6, "{json:#?}");
        for (i, v) in [0, 1, 2, 4, 5].into_iter().zip(&values) {
            assert_eq!(lines[i]["seq"], i);
            assert_eq!(lines[i]["type"], "cli::Reading");
            assert_eq!(lines[i]["value"]["seq"], v.seq);
            assert_eq!(lines[i]["value"]["name"], v.name.as_str());
        }
        assert_eq!(lines[1]["value"]["state"]["Busy"], 3);
        assert_eq!(lines[2]["value"]["state"]["Turning"]["left"], true);
        assert!(lines[3]["value"].is_null());
        assert!(lines[3]["error"].as_str().unwrap().contains("a bool of 7"));
        assert_eq!(lines[3]["len"], bad.len());

        let hex = hex.finish().ok();
        let first = postcard::to_stdvec(&values[0]).unwrap();
        let want: String = first.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.stdout.trim(), want);
    }

    /// Garbage in the recorded schema: `info` says the record is
    /// unreadable, `listen` warns and shows the messages as bytes; neither
    /// panics.
    #[test]
    fn a_broken_schema_is_a_clear_error() {
        let dir = TempDir::new("schema-bad");
        let raw = Channel::builder("broken")
            .dir(dir.path())
            .serde_type_with_schema::<Reading>()
            .create()
            .unwrap();
        let path = dir.path().join("memlane.broken");
        let file = std::fs::read(&path).unwrap();
        // The record starts with its magic, "TYPE" (native-endian);
        // the schema's message type tag follows "Reading" after the
        // 64-byte header and the name.
        let magic = 0x4550_5954u32.to_ne_bytes();
        let at = file.windows(4).position(|w| w == magic).unwrap();
        let tag = at + 64 + "cli::Reading".len() + 1 + "Reading".len();
        assert_eq!(file[tag], 26, "the struct tag");
        // In place (Windows refuses to truncate a file that is mapped).
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(tag as u64)).unwrap();
            f.write_all(&[99]).unwrap();
        }

        let info = run(&dir, &["info", "broken"]).ok();
        assert!(
            info.stdout.contains("messages:       unreadable: channel 'broken' has an unreadable type record (schema: byte 8: unknown type tag 99)"),
            "{info:#?}"
        );
        let listener = listen(&dir, "broken", &["--count", "1", "--format", "hex"]);
        raw.publisher().unwrap().send(&[1, 2, 3]).unwrap();
        let out = listener.finish().ok();
        assert_eq!(out.stdout, "010203\n");
        assert!(
            out.stderr
                .contains("warning: channel 'broken' has an unreadable type record"),
            "{out:#?}"
        );
    }
}
