//! Loom model checks of the latest-value protocol (`RUSTFLAGS="--cfg
//! loom"`): every interleaving of writers and readers within loom's bounds.
//! A value's bytes all derive from its first, and it spans two words, so a
//! torn copy (words of two writes) is seen; a lost wake-up shows as a
//! deadlock.

use loom::sync::Arc;

use super::layout::Geometry;
use super::protocol::{HeapSlot, WriterState, Written};
use crate::sync::{Barrier, LoomFutex};

fn value(v: u8) -> Vec<u8> {
    (0..16).map(|i| v.wrapping_add(i)).collect()
}

fn whole(out: &[u8]) -> bool {
    out.len() == 16 && out == value(out[0]).as_slice()
}

struct Model {
    slot: HeapSlot,
    futex: LoomFutex,
}

fn model(writers: u32) -> Arc<Model> {
    Arc::new(Model {
        slot: HeapSlot::new(Geometry::new(16, writers).unwrap()),
        futex: LoomFutex::default(),
    })
}

fn write(m: &Model, state: &mut WriterState, v: u8) -> Written {
    m.slot
        .view()
        .write(state, &value(v), &m.futex, Barrier::Fences)
        .unwrap()
}

/// Two writers race one reader: the reader gets nothing or one of the two
/// values whole, and the higher version is what stays.
#[test]
fn loom_two_writers_one_reader() {
    loom::model(|| {
        let m = model(2);
        let ws: Vec<_> = (0..2u32)
            .map(|slot| {
                let m = m.clone();
                loom::thread::spawn(move || {
                    let mut st = WriterState { slot, next: 0 };
                    write(&m, &mut st, 10 * (slot as u8 + 1))
                })
            })
            .collect();
        let mut out = Vec::new();
        if let Some(v) = m.slot.view().read(&mut out).unwrap() {
            assert!(v == 1 || v == 2);
            assert!(whole(&out), "torn: {out:?}");
        }
        let results: Vec<Written> = ws.into_iter().map(|t| t.join().unwrap()).collect();
        // Exactly one write holds version 2 and it is published.
        assert!(results.contains(&Written::Published(2)));
        let v = m.slot.view().read(&mut out).unwrap();
        assert_eq!(v, Some(2));
        assert!(whole(&out));
    });
}

/// One writer writes four times (a full round of its three buffers, the
/// last reusing the first) while a reader reads twice: versions never go
/// back, and each value read is whole.
#[test]
fn loom_a_writer_laps_its_buffers_under_a_reader() {
    loom::model(|| {
        let m = model(1);
        let r = {
            let m = m.clone();
            loom::thread::spawn(move || {
                let mut out = Vec::new();
                let mut last = 0;
                for _ in 0..2 {
                    if let Some(v) = m.slot.view().read(&mut out).unwrap() {
                        assert!(v >= last);
                        last = v;
                        assert!(whole(&out), "torn: {out:?}");
                        assert_eq!(out[0], v as u8 * 20);
                    }
                }
            })
        };
        let mut st = WriterState { slot: 0, next: 0 };
        for v in 1..=4u8 {
            write(&m, &mut st, v * 20);
        }
        r.join().unwrap();
    });
}

/// A reader waiting for the first value is woken by the write (no lost
/// wake-up: a deadlock would fail the model).
#[test]
fn loom_a_waiting_reader_is_woken() {
    loom::model(|| {
        let m = model(1);
        let w = {
            let m = m.clone();
            loom::thread::spawn(move || {
                let mut st = WriterState { slot: 0, next: 0 };
                write(&m, &mut st, 7);
            })
        };
        let view = m.slot.view();
        let ok = view.event.wait_until(
            &m.futex,
            Barrier::Fences,
            0,
            None,
            std::time::Duration::from_secs(1),
            || view.version() > 0,
        );
        assert!(ok);
        let mut out = Vec::new();
        assert_eq!(view.read(&mut out).unwrap(), Some(1));
        assert!(whole(&out));
        w.join().unwrap();
    });
}
