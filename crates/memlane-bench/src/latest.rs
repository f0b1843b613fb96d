//! The latest-value comparison: memlane's [`memlane::Latest`] against
//! iceoryx2's blackboard, with a plain copy as the floor, in one process.
//!
//! Per value size, in interleaved rounds (each operation once per round, in
//! the order of [`OPS`]; the median round of each is reported):
//!
//! * `copy` (the floor): the value copied into a `Vec`, as `get_into`
//!   leaves it (clear, then extend from a slice), the method of
//!   `memlane bench`;
//! * `latest-get`: `Latest::get_into` of a value nobody writes, through a
//!   second handle opened by name, as a reader would;
//! * `blackboard-get`: `EntryHandle::get` of an iceoryx2 blackboard entry
//!   nobody writes (a blackboard of one key whose value type is
//!   `[u8; N]`), through a reader port of the same service: it copies the
//!   value out of one of the entry's two cells and confirms with a
//!   compare-exchange on the entry's write counter that no write overtook
//!   the copy; the value comes back by value (on the stack), not in a `Vec`;
//! * `latest-set`: `Latest::set` with nobody waiting;
//! * `blackboard-set`: `EntryHandleMut::update_with_copy` of the same bytes
//!   (copy into the cell not being read, then a `fetch_add` of the write
//!   counter). A blackboard has no waiters to check: it cannot wake a
//!   reader (that takes a separate iceoryx2 event service).
//!
//! The value written never changes, so what is timed is the operation, not
//! a change of data. Both slots live in shared memory; the reading and the
//! writing handle of each sit in this one process.

use std::hint::black_box;
use std::io;
use std::path::Path;

use iceoryx2::port::reader::EntryHandle;
use iceoryx2::port::writer::EntryHandleMut;
use iceoryx2::prelude::*;
use memlane::Latest;
use memlane_benchkit::latest::{median_rows, per_op, OpResult};
use memlane_benchkit::{bad, payload};

/// The operations, in the order they run within a round and are reported.
pub const OPS: &[&str] = &[
    "copy",
    "latest-get",
    "blackboard-get",
    "latest-set",
    "blackboard-set",
];

/// Value sizes: the blackboard's value type is a fixed-size array, so each
/// size is a separate instantiation (see [`measure`]).
pub const SIZES: &[usize] = &[64, 4096];

/// Operations per round and rounds for values of `size` bytes.
pub fn counts(size: usize, quick: bool) -> (u64, u32) {
    let n: u64 = if size > 1024 { 100_000 } else { 1_000_000 };
    if quick {
        ((n / 1000).max(100), 2)
    } else {
        (n, 7)
    }
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

fn ierr(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2 blackboard: {e:?}"))
}

/// The figures of [`OPS`] for values of `size` bytes (one of [`SIZES`]):
/// `count` operations per round, `rounds` interleaved rounds. The memlane
/// slot (named after `tag`) is made in `dir` and removed before returning;
/// the blackboard service (also named after `tag`) goes with its ports.
///
/// # Errors
///
/// A size not in [`SIZES`]; any failure to create, open, write or read the
/// memlane slot or the blackboard; a read that returns other bytes than
/// were written.
pub fn measure(
    dir: &Path,
    tag: &str,
    size: usize,
    count: u64,
    rounds: u32,
) -> io::Result<Vec<OpResult>> {
    match size {
        64 => measure_n::<64>(dir, tag, count, rounds),
        4096 => measure_n::<4096>(dir, tag, count, rounds),
        other => Err(bad(format!(
            "the latest-value comparison has no {other}-byte blackboard value type"
        ))),
    }
}

/// A blackboard of one key (`0`) holding a `[u8; N]`, with a reader's and
/// a writer's handle of that entry. Fields drop in order: the handles
/// before their ports, the ports before the service and the node.
struct Blackboard<const N: usize> {
    get: EntryHandle<ipc::Service, u64, [u8; N]>,
    set: EntryHandleMut<ipc::Service, u64, [u8; N]>,
    _reader: iceoryx2::port::reader::Reader<ipc::Service, u64>,
    _writer: iceoryx2::port::writer::Writer<ipc::Service, u64>,
    _service: iceoryx2::service::port_factory::blackboard::PortFactory<ipc::Service, u64>,
    _node: Node<ipc::Service>,
}

impl<const N: usize> Blackboard<N> {
    fn create(tag: &str, value: [u8; N]) -> io::Result<Self> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(ierr)?;
        let name = ServiceName::new(&format!("memlane-bench/{tag}/blackboard")).map_err(ierr)?;
        let service = node
            .service_builder(&name)
            .blackboard_creator::<u64>()
            .max_readers(1)
            .add::<[u8; N]>(0, value)
            .create()
            .map_err(ierr)?;
        let writer = service.writer_builder().create().map_err(ierr)?;
        let reader = service.reader_builder().create().map_err(ierr)?;
        let set = writer.entry::<[u8; N]>(&0).map_err(ierr)?;
        let get = reader.entry::<[u8; N]>(&0).map_err(ierr)?;
        Ok(Blackboard {
            get,
            set,
            _reader: reader,
            _writer: writer,
            _service: service,
            _node: node,
        })
    }
}

fn measure_n<const N: usize>(
    dir: &Path,
    tag: &str,
    count: u64,
    rounds: u32,
) -> io::Result<Vec<OpResult>> {
    let value = payload(N);
    let array: [u8; N] = value
        .as_slice()
        .try_into()
        .map_err(|_| bad("payload of the wrong size"))?;
    let name = format!("{tag}.latest");
    let mut writer = Latest::builder(&name)
        .max_value(N)
        .max_writers(1)
        .dir(dir)
        .create()
        .map_err(err)?;
    let mut reader = Latest::open_options(&name).dir(dir).open().map_err(err)?;
    writer.set(&value).map_err(err)?;
    let bb = Blackboard::<N>::create(tag, array)?;
    bb.set.update_with_copy(array);

    let mut buf = Vec::with_capacity(N);
    let mut copy = Vec::with_capacity(N);
    let rounds = rounds.max(1);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
    for _ in 0..rounds {
        samples[0].push(per_op(count, || {
            copy.clear();
            copy.extend_from_slice(black_box(&value));
            black_box(&mut copy);
            Ok(())
        })?);
        samples[1].push(per_op(count, || {
            let v = reader.get_into(&mut buf).map_err(err)?;
            black_box((v, &mut buf));
            Ok(())
        })?);
        samples[2].push(per_op(count, || {
            black_box(bb.get.get());
            Ok(())
        })?);
        samples[3].push(per_op(count, || {
            black_box(writer.set(black_box(&value)).map_err(err)?);
            Ok(())
        })?);
        samples[4].push(per_op(count, || {
            bb.set.update_with_copy(black_box(array));
            Ok(())
        })?);
    }
    if buf != value {
        return Err(bad("latest-get read back something else than was set"));
    }
    if *bb.get.get() != array {
        return Err(bad("blackboard-get read back something else than was set"));
    }
    drop(bb);
    drop((writer, reader));
    memlane::remove(Some(dir), &name).map_err(err)?;
    Ok(median_rows(OPS, samples, N, count, rounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation at every size, in order, nothing left in the
    /// directory, and the rows in `RESULTS.md` (tiny counts: figures are
    /// never asserted).
    #[test]
    fn measure_reports_every_operation_and_cleans_up() {
        let dir = memlane_benchkit::TempDir::new("latest-cmp-test").unwrap();
        let mut all = Vec::new();
        for &size in SIZES {
            let tag = format!("t{size}-{}", std::process::id());
            let rows = measure(dir.path(), &tag, size, 50, 2).unwrap();
            let names: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
            assert_eq!(names, OPS);
            for r in &rows {
                assert_eq!((r.size, r.ops, r.rounds), (size, 50, 2));
                assert!(r.ns_per_op.is_finite() && r.ns_per_op >= 0.0);
            }
            all.extend(rows);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(measure(dir.path(), "t100", 100, 1, 1).is_err());

        let md = crate::report::markdown(&crate::Results {
            latest: all,
            quick: true,
            ..crate::Results::default()
        });
        assert!(md.contains("## Latest value"), "{md}");
        for row in [
            "| read, unchanged value | 64 B | ",
            "| read, unchanged value | 4 KiB | ",
            "| write, nobody waiting | 64 B | ",
            "| write, nobody waiting | 4 KiB | ",
        ] {
            let line = md.lines().find(|l| l.starts_with(row));
            let line = line.unwrap_or_else(|| panic!("no row {row:?} in\n{md}"));
            // Figures and ratios in every column: nothing missing.
            assert!(!line.contains('–'), "{line}");
            assert_eq!(line.matches(" ns |").count(), 3, "{line}");
            assert_eq!(line.matches("× |").count(), 3, "{line}");
        }
    }
}
