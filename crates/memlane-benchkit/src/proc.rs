//! Processes: the private directory, starting and pinning the child, and
//! the line protocol on its standard output (`ready`, `done`).

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::{sys, Job};

/// How long the parent waits for a `ready` or `done` line.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);

/// A private directory for a run's files (channels, shared memory, FIFOs,
/// sockets): on Unix under `/dev/shm` when it is writable (so shared memory
/// is tmpfs), else (and on Windows) in the system temporary directory.
/// Removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory named after `tag`, the process id, a
    /// counter and the time.
    ///
    /// # Errors
    ///
    /// If neither location is writable.
    pub fn new(tag: &str) -> io::Result<TempDir> {
        let leaf = unique(tag);
        if let Some(shm) = sys::SHM_DIR {
            let shm = Path::new(shm).join(&leaf);
            if std::fs::create_dir(&shm).is_ok() {
                return Ok(TempDir(shm));
            }
        }
        let tmp = std::env::temp_dir().join(&leaf);
        std::fs::create_dir(&tmp)?;
        Ok(TempDir(tmp))
    }

    /// Creates a fresh directory inside `parent`.
    ///
    /// # Errors
    ///
    /// If `parent` is not writable.
    pub fn new_in(parent: &Path, tag: &str) -> io::Result<TempDir> {
        let path = parent.join(unique(tag));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tag-PID-COUNTER-NANOS`.
fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Pins the calling thread (and threads and processes it starts later) to
/// `cpu`, if the machine has it. Returns whether it did. (A child must be
/// able to pin itself elsewhere: `available_parallelism` would only count
/// the inherited mask, so this just asks the kernel.)
///
/// Linux: `sched_setaffinity` of the calling thread. Windows:
/// `SetProcessAffinityMask` of the whole process (CPUs 0 to 63 of the
/// first processor group), since children inherit the process's mask, not
/// a thread's.
pub fn pin_to_cpu(cpu: usize) -> bool {
    sys::pin_to_cpu(cpu)
}

/// How to start this program in its child role: the executable and the
/// arguments before the job's `key=value` ones.
#[derive(Debug, Clone)]
pub struct Launcher {
    exe: PathBuf,
    prefix: Vec<OsString>,
}

impl Launcher {
    /// The current executable, with `prefix` arguments selecting the child
    /// role (e.g. `["bench-child"]`).
    ///
    /// # Errors
    ///
    /// If the current executable cannot be found.
    pub fn current_exe(prefix: &[&str]) -> io::Result<Launcher> {
        Ok(Launcher {
            exe: std::env::current_exe()?,
            prefix: prefix.iter().map(OsString::from).collect(),
        })
    }

    /// Starts the child for `job`. It inherits standard error; its
    /// standard output carries the line protocol.
    ///
    /// # Errors
    ///
    /// If the process cannot be started.
    pub fn spawn(&self, job: &Job) -> io::Result<ChildProc> {
        let mut child = Command::new(&self.exe)
            .args(&self.prefix)
            .args(job.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        sys::contain_child(&child);
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let done = Arc::new(AtomicBool::new(false));
        let killer = match sys::Killer::new(&child) {
            Ok(k) => k,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        watchdog(killer, job, done.clone());
        Ok(ChildProc {
            child,
            lines: rx,
            done,
        })
    }
}

/// Kills the child and ends this process if a job runs far too long (a
/// busy-polling side would otherwise spin forever on a dead peer).
fn watchdog(killer: sys::Killer, job: &Job, done: Arc<AtomicBool>) {
    let dir = job.dir.clone();
    let what = format!("{} {} {} B", job.transport, job.workload.as_str(), job.size);
    std::thread::spawn(move || {
        let limit = Duration::from_secs(600);
        let step = Duration::from_millis(200);
        let mut waited = Duration::ZERO;
        while waited < limit {
            std::thread::sleep(step);
            waited += step;
            if done.load(Ordering::Acquire) {
                return;
            }
        }
        eprintln!("error: benchmark '{what}' did not finish in {limit:?}; stopping");
        killer.kill();
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(1);
    });
}

/// A running child.
#[derive(Debug)]
pub struct ChildProc {
    child: Child,
    lines: mpsc::Receiver<String>,
    done: Arc<AtomicBool>,
}

impl ChildProc {
    /// Waits for the line `want` from the child.
    ///
    /// # Errors
    ///
    /// If the child exits, says something else, or stays silent too long.
    pub fn expect_line(&mut self, want: &str) -> io::Result<()> {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) if line == want => Ok(()),
            Ok(line) => Err(io::Error::other(format!(
                "benchmark child said {line:?}, expected {want:?}"
            ))),
            Err(_) => {
                let status = self.child.wait()?;
                Err(io::Error::other(format!(
                    "benchmark child exited ({status}) before saying {want:?}; see its messages above"
                )))
            }
        }
    }

    /// Waits for the child to exit successfully.
    ///
    /// # Errors
    ///
    /// If it failed.
    pub fn finish(mut self) -> io::Result<()> {
        let status = self.child.wait()?;
        self.done.store(true, Ordering::Release);
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "benchmark child failed ({status}); see its messages above"
            )))
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// In the child: die with the parent (a spinning child must not outlive
/// it). Linux: `PR_SET_PDEATHSIG`; Windows: nothing here, the parent put the
/// child in a kill-on-close job object when it started it.
pub(crate) fn die_with_parent() {
    sys::die_with_parent();
}
