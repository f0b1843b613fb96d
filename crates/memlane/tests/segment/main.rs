//! Segment behaviour: create/open/read/write, access modes, views,
//! file-backed dispositions, removal, and every header validation error.

#[path = "../common/mod.rs"]
mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::TestDir;
use memlane::{
    Access, AccessError, Channel, CreateError, Disposition, Event, Existing, Kind, Missing,
    OpenError, RemoveError, Segment,
};

fn create(dir: &TestDir, name: &str, size: u64) -> Segment {
    Segment::builder(name)
        .size(size)
        .dir(&dir.path)
        .create()
        .unwrap()
}

fn open(dir: &TestDir, name: &str, access: Access) -> Result<Segment, OpenError> {
    Segment::open_options(name)
        .dir(&dir.path)
        .access(access)
        .open()
}

#[test]
fn create_write_open_read() {
    let d = TestDir::new("seg-basic");
    let mut s = create(&d, "basic", 1_000_000);
    assert_eq!(s.len(), 1_000_000);
    assert_eq!(s.name(), "basic");
    assert_eq!(s.path(), d.path.join("memlane.basic"));
    s.write(0, b"hello").unwrap();
    s.write(999_995, b"world").unwrap();
    let r = open(&d, "basic", Access::ReadOnly).unwrap();
    assert_eq!(r.read_vec(0, 5).unwrap(), b"hello");
    assert_eq!(r.read_vec(999_995, 5).unwrap(), b"world");
    // A write through one mapping is seen through the other.
    s.write(10, b"live").unwrap();
    assert_eq!(r.read_vec(10, 4).unwrap(), b"live");
}

#[test]
fn bounds_are_checked() {
    let d = TestDir::new("seg-bounds");
    let mut s = create(&d, "b", 100);
    assert!(matches!(
        s.write(98, b"abc"),
        Err(AccessError::OutOfBounds {
            offset: 98,
            len: 3,
            size: 100
        })
    ));
    assert!(matches!(
        s.read_vec(101, 0),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert!(matches!(
        s.read_vec(usize::MAX, 2),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert!(s.read_vec(100, 0).unwrap().is_empty());
    assert!(s.flush_range(50, 51).is_err());
}

#[test]
fn read_only_refuses_writes() {
    let d = TestDir::new("seg-ro");
    let _s = create(&d, "ro", 64);
    let mut r = open(&d, "ro", Access::ReadOnly).unwrap();
    assert!(matches!(r.write(0, b"x"), Err(AccessError::ReadOnly)));
    assert_eq!(r.access(), Access::ReadOnly);
}

#[test]
fn copy_on_write_stays_private() {
    let d = TestDir::new("seg-cow");
    let mut s = create(&d, "cow", 4096);
    s.write(0, b"original").unwrap();
    let mut c = open(&d, "cow", Access::CopyOnWrite).unwrap();
    c.write(0, b"private!").unwrap();
    assert_eq!(c.read_vec(0, 8).unwrap(), b"private!");
    assert_eq!(s.read_vec(0, 8).unwrap(), b"original");
    let again = open(&d, "cow", Access::ReadOnly).unwrap();
    assert_eq!(again.read_vec(0, 8).unwrap(), b"original");
}

#[test]
fn views_at_an_offset() {
    let d = TestDir::new("seg-view");
    let mut s = create(&d, "v", 3 * 4096 + 100);
    s.write(5000, b"view-data").unwrap();
    let v = Segment::open_options("v")
        .dir(&d.path)
        .view(5000, Some(9))
        .access(Access::ReadOnly)
        .open()
        .unwrap();
    assert_eq!(v.len(), 9);
    assert_eq!(v.view_offset(), 5000);
    assert_eq!(v.segment_len(), 3 * 4096 + 100);
    assert_eq!(v.read_vec(0, 9).unwrap(), b"view-data");
    assert!(v.read_vec(5, 5).is_err());
    let tail = Segment::open_options("v")
        .dir(&d.path)
        .view(4096 * 3, None)
        .open()
        .unwrap();
    assert_eq!(tail.len(), 100);
    let e = Segment::open_options("v")
        .dir(&d.path)
        .view(4096 * 3, Some(101))
        .open()
        .unwrap_err();
    assert!(matches!(e, OpenError::ViewOutOfBounds { .. }), "{e}");
}

#[test]
fn create_new_refuses_an_existing_name() {
    let d = TestDir::new("seg-exists");
    let _s = create(&d, "taken", 10);
    let e = Segment::builder("taken")
        .size(10)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::AlreadyExists { .. }));
    let msg = e.to_string();
    assert!(msg.contains("memlane rm taken"), "{msg}");
}

#[test]
fn zero_size_and_bad_names_are_refused() {
    let d = TestDir::new("seg-bad");
    let e = Segment::builder("z")
        .size(0)
        .dir(&d.path)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::InvalidConfig { .. }), "{e}");
    for bad in ["", "a/b", "../x", ".hidden", "sp ace"] {
        let e = Segment::builder(bad)
            .size(1)
            .dir(&d.path)
            .create()
            .unwrap_err();
        assert!(matches!(e, CreateError::InvalidName(_)), "{bad}: {e}");
        assert!(matches!(
            open(&d, bad, Access::ReadOnly),
            Err(OpenError::InvalidName(_))
        ));
    }
    assert_eq!(
        std::fs::read_dir(&d.path).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[cfg(unix)] // Windows files inherit the directory's access control list.
#[test]
fn default_mode_is_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDir::new("seg-mode");
    let s = create(&d, "m", 10);
    let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let g = Segment::builder("g")
        .size(10)
        .mode(0o660)
        .dir(&d.path)
        .create()
        .unwrap();
    let mode = std::fs::metadata(g.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn remove_and_not_found() {
    let d = TestDir::new("seg-rm");
    let s = create(&d, "gone", 10);
    memlane::remove(Some(&d.path), "gone").unwrap();
    // The mapping stays usable after the name is removed.
    assert_eq!(s.read_vec(0, 1).unwrap(), [0]);
    let e = open(&d, "gone", Access::ReadOnly).unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("'gone'") && msg.contains("memlane list"),
        "{msg}"
    );
    assert!(msg.contains(&d.path.display().to_string()), "{msg}");
    assert!(matches!(
        memlane::remove(Some(&d.path), "gone"),
        Err(RemoveError::NotFound { .. })
    ));
}

/// Each kind is created with `X::builder(name)` and opened with
/// `X::open_options(name)`, both with `.dir(..)`; opening looks only in the
/// directory given, and refuses another kind.
#[test]
fn every_kind_has_a_builder_and_open_options_in_a_directory() {
    let d = TestDir::new("api-kinds");
    let other = TestDir::new("api-kinds-other");
    let _seg = create(&d, "seg", 64);
    let ev = Event::builder("ev").dir(&d.path).create().unwrap();
    let ch = Channel::builder("ch").dir(&d.path).create().unwrap();

    open(&d, "seg", Access::ReadOnly).unwrap();
    let mut client = Event::open_options("ev").dir(&d.path).open().unwrap();
    ev.notify();
    assert!(client.wait_timeout(Duration::from_secs(5)));
    let opened = Channel::open_options("ch").dir(&d.path).open().unwrap();
    assert_eq!(opened.capacity(), ch.capacity());

    // Not in another directory: NotFound names the directory searched.
    for e in [
        Segment::open_options("seg")
            .dir(&other.path)
            .open()
            .unwrap_err(),
        Event::open_options("ev")
            .dir(&other.path)
            .open()
            .unwrap_err(),
        Channel::open_options("ch")
            .dir(&other.path)
            .open()
            .unwrap_err(),
    ] {
        match e {
            OpenError::NotFound { dir, .. } => assert_eq!(dir, other.path),
            e => panic!("expected NotFound, got {e:?}"),
        }
    }
    // Another kind at the name is refused.
    for e in [
        Event::open_options("seg").dir(&d.path).open().unwrap_err(),
        Channel::open_options("ev").dir(&d.path).open().unwrap_err(),
        Segment::open_options("ch").dir(&d.path).open().unwrap_err(),
    ] {
        assert!(matches!(e, OpenError::WrongKind { .. }), "{e:?}");
    }
}

#[test]
fn event_builder_sets_mode_and_stale_replacement() {
    let d = TestDir::new("api-event");
    let ev = Event::builder("ev")
        .dir(&d.path)
        .mode(0o640)
        .create()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path.join("memlane.ev"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }
    // Held by `ev`: never replaced.
    let e = Event::builder("ev").dir(&d.path).create().unwrap_err();
    assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e:?}");
    drop(ev);
    // Stale now: replaced by default, refused with replace_stale(false).
    let e = Event::builder("ev")
        .dir(&d.path)
        .replace_stale(false)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e:?}");
    let ev = Event::builder("ev").dir(&d.path).create().unwrap();
    assert_eq!(ev.count(), 0);
}

/// `memlane::remove(dir, name)` removes any kind; `list` reports by name.
#[test]
fn remove_takes_any_kind_and_list_names_its_directory() {
    let d = TestDir::new("api-remove");
    let _seg = create(&d, "a-seg", 64);
    let _ev = Event::builder("b-ev").dir(&d.path).create().unwrap();
    let _ch = Channel::builder("c-ch").dir(&d.path).create().unwrap();
    let listing = memlane::list(Some(&d.path)).unwrap();
    assert_eq!(listing.dir, d.path);
    let kinds: Vec<_> = listing
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind.clone().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a-seg", Kind::Segment),
            ("b-ev", Kind::Event),
            ("c-ch", Kind::Channel)
        ]
    );
    for name in ["a-seg", "b-ev", "c-ch"] {
        memlane::remove(Some(&d.path), name).unwrap();
        let e = memlane::remove(Some(&d.path), name).unwrap_err();
        assert!(matches!(e, RemoveError::NotFound { .. }), "{e:?}");
    }
    assert!(memlane::list(Some(&d.path)).unwrap().entries.is_empty());
}

fn write_at(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn header_validation_errors_are_distinct() {
    let d = TestDir::new("seg-hdr");
    // Not a memlane segment: junk, and too short.
    std::fs::write(d.path.join("memlane.junk"), vec![7u8; 8192]).unwrap();
    let e = open(&d, "junk", Access::ReadOnly).unwrap_err();
    assert!(matches!(e, OpenError::NotMemlane { .. }), "{e}");
    assert!(e.to_string().contains("not a memlane segment"));
    std::fs::write(d.path.join("memlane.short"), b"MEMLANE").unwrap();
    assert!(matches!(
        open(&d, "short", Access::ReadOnly),
        Err(OpenError::NotMemlane { .. })
    ));

    // Another format version.
    let s = create(&d, "ver", 100);
    let p = s.path().to_path_buf();
    drop(s);
    write_at(&p, 8, &99u32.to_ne_bytes());
    match open(&d, "ver", Access::ReadOnly).unwrap_err() {
        OpenError::IncompatibleVersion {
            found: 99,
            expected: 1,
            ..
        } => {}
        e => panic!("{e}"),
    }

    // Not ready.
    let s = create(&d, "nr", 100);
    let p = s.path().to_path_buf();
    drop(s);
    write_at(&p, 16, &0u32.to_ne_bytes());
    assert!(matches!(
        open(&d, "nr", Access::ReadOnly),
        Err(OpenError::NotReady { .. })
    ));

    // Size mismatch: truncated and extended.
    let s = create(&d, "sz", 8192);
    let p = s.path().to_path_buf();
    drop(s);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(4096 + 100)
        .unwrap();
    match open(&d, "sz", Access::ReadOnly).unwrap_err() {
        OpenError::SizeMismatch { header, file, .. } => {
            assert_eq!((header, file), (4096 + 8192, 4196))
        }
        e => panic!("{e}"),
    }

    // Wrong kind: an event opened as a segment.
    let _ev = Event::builder("ev").dir(&d.path).create().unwrap();
    match open(&d, "ev", Access::ReadOnly).unwrap_err() {
        e @ OpenError::WrongKind {
            expected, found, ..
        } => {
            assert_eq!((expected, found), (Kind::Segment, Kind::Event));
            assert!(
                e.to_string()
                    .ends_with(" is a memlane event, not a segment"),
                "{e}"
            );
        }
        e => panic!("{e}"),
    }
}

#[test]
fn odd_files_at_the_name_are_refused() {
    let d = TestDir::new("seg-odd");
    let target = create(&d, "real", 100);
    // A symlink is never followed. (Windows lets only privileged users
    // make one; where that fails the case is skipped.)
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(target.path(), d.path.join("memlane.link"));
    #[cfg(windows)]
    let linked = std::os::windows::fs::symlink_file(target.path(), d.path.join("memlane.link"));
    match linked {
        Ok(()) => {
            let r = open(&d, "link", Access::ReadOnly);
            // Wine keeps a link it cannot resolve as a dangling entry;
            // either way the target is never opened.
            let refused = matches!(r, Err(OpenError::Symlink { .. }))
                || (cfg!(windows) && matches!(r, Err(OpenError::NotFound { .. })));
            assert!(refused, "{r:?}");
        }
        Err(e) => eprintln!("skipping the symlink case: {e}"),
    }
    // A directory.
    std::fs::create_dir(d.path.join("memlane.dir")).unwrap();
    assert!(matches!(
        open(&d, "dir", Access::ReadOnly),
        Err(OpenError::NotAFile { .. })
    ));
    // A FIFO (opened non-blocking, so this cannot hang).
    let fifo = d.path.join("memlane.fifo");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status();
    if matches!(st, Ok(s) if s.success()) {
        assert!(matches!(
            open(&d, "fifo", Access::ReadOnly),
            Err(OpenError::NotAFile { .. })
        ));
    } else {
        eprintln!("skipping the FIFO case: mkfifo is not available");
    }
    // A hard link to another file.
    std::fs::write(d.path.join("victim"), vec![0u8; 8192]).unwrap();
    std::fs::hard_link(d.path.join("victim"), d.path.join("memlane.hard")).unwrap();
    match open(&d, "hard", Access::ReadOnly) {
        Err(OpenError::HardLinked { links: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Creating over a symlink does not follow it either.
    if d.path.join("memlane.link").symlink_metadata().is_ok() {
        let e = Segment::builder("link")
            .size(10)
            .dir(&d.path)
            .create()
            .unwrap_err();
        assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e}");
        assert_eq!(target.read_vec(0, 1).unwrap(), [0]);
    }
}

#[test]
fn file_backed_dispositions() {
    let d = TestDir::new("seg-file");
    let file = d.path.join("data.bin");
    let mut s = Segment::builder("fb")
        .size(10_000)
        .dir(&d.path)
        .file(&file, Disposition::CreateNew)
        .create()
        .unwrap();
    assert_eq!(s.path(), file.canonicalize().unwrap());
    s.write(0, b"persisted").unwrap();
    s.flush().unwrap();
    drop(s);
    // The bytes reached the file.
    let raw = std::fs::read(&file).unwrap();
    assert_eq!(&raw[4096..4096 + 9], b"persisted");
    // Opened by name through the link, and by path.
    let by_name = open(&d, "fb", Access::ReadOnly).unwrap();
    assert_eq!(by_name.read_vec(0, 9).unwrap(), b"persisted");
    assert_eq!(by_name.name(), "fb");
    let by_path = Segment::open_path(&file, Access::ReadOnly).unwrap();
    assert_eq!(by_path.read_vec(0, 9).unwrap(), b"persisted");
    // Create-new refuses an existing file (under another name).
    let e = Segment::builder("fb2")
        .size(10)
        .dir(&d.path)
        .file(&file, Disposition::CreateNew)
        .create()
        .unwrap_err();
    assert!(
        matches!(
            e,
            CreateError::AlreadyExists {
                what: Existing::File,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("a file already exists at "),
        "{e}"
    );
    assert!(
        open(&d, "fb2", Access::ReadOnly).is_err(),
        "no name left behind"
    );
    // Open-existing reuses the file and its contents.
    memlane::remove(Some(&d.path), "fb").unwrap();
    assert!(file.exists(), "removing the name keeps the file");
    let again = Segment::builder("fb")
        .dir(&d.path)
        .file(&file, Disposition::OpenExisting)
        .create()
        .unwrap();
    assert_eq!(again.read_vec(0, 9).unwrap(), b"persisted");
    assert_eq!(again.len(), 10_000);
    drop(again);
    memlane::remove(Some(&d.path), "fb").unwrap();
    // Open-existing with the wrong size, and of a missing file.
    let e = Segment::builder("fb")
        .size(5)
        .dir(&d.path)
        .file(&file, Disposition::OpenExisting)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::Open(_)), "{e}");
    let e = Segment::builder("fb")
        .dir(&d.path)
        .file(d.path.join("missing.bin"), Disposition::OpenExisting)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::Open(_)), "{e}");
    // Create-always replaces the file with a fresh, zeroed one.
    let fresh = Segment::builder("fb")
        .size(20)
        .dir(&d.path)
        .file(&file, Disposition::CreateAlways)
        .create()
        .unwrap();
    assert_eq!(fresh.read_vec(0, 9).unwrap(), [0u8; 9]);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4096 + 20);
    drop(fresh);
    // A link whose file vanished reports the file as not found.
    std::fs::remove_file(&file).unwrap();
    let e = open(&d, "fb", Access::ReadOnly).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::NotFound {
                what: Missing::BackingFile,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("no backing file '"), "{e}");
}

#[test]
fn list_shows_entries_and_errors() {
    let d = TestDir::new("seg-list");
    let _a = create(&d, "alpha", 10);
    let _e = Event::builder("beta").dir(&d.path).create().unwrap();
    std::fs::write(d.path.join("memlane.gamma"), b"junk").unwrap();
    std::fs::write(d.path.join("unrelated"), b"x").unwrap();
    let listing = memlane::list(Some(&d.path)).unwrap();
    assert_eq!(listing.dir, d.path);
    let entries = listing.entries;
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    assert_eq!(entries[0].kind, Ok(Kind::Segment));
    assert_eq!(entries[0].data_len, 10);
    assert_eq!(entries[0].creator_pid, std::process::id());
    assert_eq!(entries[1].kind, Ok(Kind::Event));
    assert!(entries[2].kind.is_err());
}

#[test]
fn no_temporary_files_survive_a_failed_create() {
    let d = TestDir::new("seg-tmp");
    let _s = create(&d, "x", 10);
    let _ = Segment::builder("x")
        .size(10)
        .dir(&d.path)
        .create()
        .unwrap_err();
    let _ = Segment::builder("y")
        .size(memlane_max() + 1)
        .dir(&d.path)
        .create()
        .unwrap_err();
    let names: Vec<_> = std::fs::read_dir(&d.path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["memlane.x"]);
}

fn memlane_max() -> u64 {
    1 << 40
}

#[test]
fn missing_directory_is_reported() {
    let d = TestDir::new("seg-nodir");
    let gone = d.path.join("nope");
    let e = Segment::builder("x")
        .size(1)
        .dir(&gone)
        .create()
        .unwrap_err();
    assert!(matches!(e, CreateError::NoDirectory { .. }), "{e}");
    let e = Segment::open_options("x").dir(&gone).open().unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
}

/// A page-file segment: on Windows a named mapping (`Local\memlane.NAME`)
/// with no file, gone with its last handle; on Linux an ordinary segment.
#[test]
fn page_file_segments() {
    let d = TestDir::new("seg-pf");
    // Named mappings are per session, not per directory: a unique name.
    let name = format!("pf-{}", std::process::id());
    let mut s = Segment::builder(&name)
        .size(10_000)
        .dir(&d.path)
        .page_file(true)
        .create()
        .unwrap();
    s.write(9_000, b"paged").unwrap();
    s.flush().unwrap();
    let reader = open(&d, &name, Access::ReadOnly).unwrap();
    assert_eq!(reader.read_vec(9_000, 5).unwrap(), b"paged");
    assert_eq!(reader.len(), 10_000);
    let mut cow = open(&d, &name, Access::CopyOnWrite).unwrap();
    cow.write(0, b"mine").unwrap();
    assert_eq!(
        reader.read_vec(0, 4).unwrap(),
        [0; 4],
        "copy-on-write stays private"
    );
    // The name is taken for both kinds of segment.
    for page_file in [false, true] {
        let e = Segment::builder(&name)
            .size(10)
            .dir(&d.path)
            .page_file(page_file)
            .create()
            .unwrap_err();
        assert!(matches!(e, CreateError::AlreadyExists { .. }), "{e}");
    }
    // An event in a page-file mapping: opened by name, notified, woken.
    let ev_name = format!("pf-ev-{}", std::process::id());
    let server = Event::builder(&ev_name)
        .dir(&d.path)
        .page_file(true)
        .create()
        .unwrap();
    let mut client = Event::open_options(&ev_name).dir(&d.path).open().unwrap();
    assert!(!client.wait_timeout(std::time::Duration::from_millis(1)));
    server.notify();
    assert!(client.wait_timeout(std::time::Duration::from_secs(10)));
    drop((server, client));
    if cfg!(windows) {
        assert!(
            Event::open_options(&ev_name).dir(&d.path).open().is_err(),
            "gone with its handles"
        );
    } else {
        memlane::remove(Some(&d.path), &ev_name).unwrap();
    }
    let file = d.path.join(format!("memlane.{name}"));
    if cfg!(windows) {
        assert!(!file.exists(), "no file in the segment directory");
        let e = memlane::remove(Some(&d.path), &name).unwrap_err();
        assert!(matches!(e, RemoveError::PageFile { .. }), "{e}");
        let e = Segment::builder("pf-with-file")
            .size(10)
            .dir(&d.path)
            .page_file(true)
            .file(d.path.join("x.bin"), Disposition::CreateNew)
            .create()
            .unwrap_err();
        assert!(matches!(e, CreateError::InvalidConfig { .. }), "{e}");
        // Gone with the last view, in any process.
        drop((s, reader, cow));
        let e = open(&d, &name, Access::ReadOnly).unwrap_err();
        assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    } else {
        assert!(file.is_file(), "an ordinary segment file on Linux");
        drop((s, reader, cow));
        memlane::remove(Some(&d.path), &name).unwrap();
    }
}

/// A file a removal moved aside (Windows) but could not delete then is
/// collected by `gc` (a dry run only reports it).
#[test]
fn gc_collects_files_moved_aside() {
    let d = TestDir::new("seg-gc-aside");
    let aside = d.path.join(".memlane-rm.1.0.0");
    std::fs::write(&aside, b"left over").unwrap();
    let dry = memlane::gc(Some(&d.path), true).unwrap().removed;
    assert!(dry.iter().any(|r| r.file == ".memlane-rm.1.0.0"), "{dry:?}");
    assert!(aside.exists(), "a dry run removes nothing");
    let done = memlane::gc(Some(&d.path), false).unwrap().removed;
    assert!(
        done.iter().any(|r| r.file == ".memlane-rm.1.0.0"),
        "{done:?}"
    );
    assert!(!aside.exists());
}

/// Runs `f` on a thread and waits at most `limit` for it: a hang fails the
/// test instead of hanging the run.
#[cfg(unix)]
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("watchdog: {what} did not return within {limit:?}"))
}

/// Starts a process holding an exclusive `flock` on `path`: `flock -x -F`
/// (no fork) execs a shell that creates `ready` and then execs `sleep`, so
/// one process, the child's pid, holds the lock until it is killed. `None`
/// (with a printed note) where flock(1) is missing or has no `-F`.
#[cfg(unix)]
fn hold_exclusive(path: &std::path::Path, ready: &std::path::Path) -> Option<common::KillOnDrop> {
    use std::process::{Command, Stdio};
    let child = Command::new("flock")
        .args(["-x", "-F"])
        .arg(path)
        .args(["sh", "-c", "touch \"$0\" && exec sleep 600"])
        .arg(ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => common::KillOnDrop(Some(c)),
        Err(e) => {
            eprintln!("skipped: cannot run flock(1): {e}");
            return None;
        }
    };
    let start = std::time::Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = child.child().try_wait() {
            eprintln!("skipped: `flock -x -F` exited with {status}");
            return None;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(child)
}

/// A process of any user holding an exclusive lock on a memlane name
/// (which only `gc` and a re-creation take, for moments) hangs neither
/// `list` (the entry is marked busy) nor `open` (it gives up after a
/// bounded wait with an error naming the file and the holder).
#[cfg(unix)]
#[test]
fn a_name_locked_exclusively_hangs_neither_list_nor_open() {
    let d = TestDir::new("seg-locked");
    drop(create(&d, "x", 64)); // left behind: nobody holds it
    let _y = create(&d, "y", 64);
    let path = d.path.join("memlane.x");
    let Some(holder) = hold_exclusive(&path, &d.path.join("ready")) else {
        return;
    };
    let dir = d.path.clone();
    let entries = within(Duration::from_secs(30), "memlane::list", move || {
        memlane::list(Some(&dir)).unwrap().entries
    });
    let dir = d.path.clone();
    let r = within(Duration::from_secs(30), "Segment::open", move || {
        Segment::open_options("x").dir(&dir).open().map(|_| ())
    });
    let x = entries.iter().find(|e| e.name == "x").expect("x is listed");
    assert!(x.busy, "{x:?}");
    assert_eq!(x.kind, Ok(Kind::Segment), "its header is still read");
    assert_eq!(x.lock_holder, Some(holder.id()), "the holder is named");
    let y = entries.iter().find(|e| e.name == "y").expect("y is listed");
    assert!(!y.busy && y.lock_holder.is_none(), "{y:?}");
    match r {
        Err(OpenError::Busy {
            path: p, holder: h, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(h, Some(holder.id()));
        }
        other => panic!("{other:?}"),
    }
    // The message names the file, the holder and what to do.
    let dir = d.path.clone();
    let msg = within(Duration::from_secs(30), "Segment::open", move || {
        Segment::open_options("x")
            .dir(&dir)
            .open()
            .err()
            .unwrap()
            .to_string()
    });
    assert!(msg.contains("memlane.x"), "{msg}");
    assert!(msg.contains(&format!("pid {}", holder.id())), "{msg}");
    assert!(msg.contains("memlane rm"), "{msg}");
    // Once the holder is gone the name opens again.
    drop(holder);
    open(&d, "x", Access::ReadOnly).unwrap();
}

/// `gc` opens nothing that could block it: a FIFO at a file link's target,
/// or at any name it looks at, neither hangs it nor is removed.
#[cfg(unix)]
#[test]
fn fifos_hang_no_gc_and_stay() {
    let d = TestDir::new("seg-gc-fifo");
    let backing = d.path.join("backing");
    drop(
        Segment::builder("linked")
            .size(64)
            .dir(&d.path)
            .file(&backing, Disposition::CreateNew)
            .create()
            .unwrap(),
    );
    std::fs::remove_file(&backing).unwrap();
    let fifos = [
        "backing",
        "memlane.fifo",
        ".memlane-tmp.fifo.1.0.0",
        ".memlane-ep.gone.p0",
        ".memlane-rm.1.0.0",
    ];
    for f in fifos {
        let st = std::process::Command::new("mkfifo")
            .arg(d.path.join(f))
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
    }
    let dir = d.path.clone();
    let removed = within(Duration::from_secs(30), "gc", move || {
        memlane::gc_with(Some(&dir), false, 0).unwrap().removed
    });
    let files: Vec<&str> = removed.iter().map(|r| r.file.as_str()).collect();
    // The link whose file is gone (a FIFO is no memlane file) goes.
    assert_eq!(files, ["memlane.linked"], "{removed:?}");
    for f in fifos {
        assert!(
            d.path.join(f).symlink_metadata().is_ok(),
            "gc removed the FIFO {f}"
        );
    }
}

#[cfg(unix)]
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A file moved aside by a removal (`.memlane-rm.*`) that belongs to
/// another user is left alone, like every other entry of another user.
#[cfg(unix)]
#[test]
fn gc_leaves_other_users_files_moved_aside() {
    if !running_as_root() {
        eprintln!("skipped: needs root to give a file to another user (uid 65534)");
        return;
    }
    let d = TestDir::new("seg-gc-foreign-rm");
    let aside = d.path.join(".memlane-rm.1.0.0");
    std::fs::write(&aside, b"theirs").unwrap();
    std::os::unix::fs::chown(&aside, Some(65534), Some(65534)).unwrap();
    let removed = memlane::gc(Some(&d.path), false).unwrap().removed;
    assert!(removed.is_empty(), "{removed:?}");
    assert!(aside.exists(), "gc removed another user's file");
}
