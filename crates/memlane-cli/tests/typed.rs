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
