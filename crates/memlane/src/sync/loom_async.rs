//! A loom model of the async layer's wake-up protocol (`asynk::reactor`):
//! the waiter's half of the `EventWord` pair split between a task, which
//! registers, publishes the `seq` it loaded and re-checks, and a reactor
//! thread, which compares `seq` and sleeps on it (a multi-word wait,
//! modelled on [`LoomFutex`] by checking every word under its lock). A
//! lost wake-up leaves the task waiting for the reactor forever, which
//! loom reports as a deadlock.

use loom::sync::Arc;

use super::event_word::EventWord;
use super::{AtomicU32, Barrier, Futex, LoomFutex, Ordering};

struct Shared {
    ev: EventWord,
    /// The condition.
    flag: AtomicU32,
    /// The `seq` the task loaded, plus one (0: not armed).
    armed: AtomicU32,
    /// The reactor's control word.
    control: AtomicU32,
    /// Set by the reactor when it wakes the task.
    woken: AtomicU32,
    /// The task completed without waiting: the reactor may stop.
    done: AtomicU32,
    fx: LoomFutex,
}

impl Shared {
    /// `futex_waitv`: sleeps while every word holds its value.
    fn wait_all(&self, words: &[(&AtomicU32, u32)]) {
        let g = self.fx.lock.lock().unwrap();
        if words.iter().all(|(w, v)| w.load(Ordering::SeqCst) == *v) {
            drop(self.fx.cv.wait(g).unwrap());
        }
    }

    fn kick(&self) {
        self.control.fetch_add(1, Ordering::Release);
        self.fx.wake_all(&self.control, 0, 1);
    }
}

#[test]
fn loom_async_no_lost_wakeup() {
    loom::model(|| {
        let s = Arc::new(Shared {
            ev: EventWord {
                seq: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
            },
            flag: AtomicU32::new(0),
            armed: AtomicU32::new(0),
            control: AtomicU32::new(0),
            woken: AtomicU32::new(0),
            done: AtomicU32::new(0),
            fx: LoomFutex::default(),
        });
        let n = s.clone();
        let notifier = loom::thread::spawn(move || {
            n.flag.store(1, Ordering::Release);
            n.ev.notify_waiters(&n.fx, Barrier::Fences);
        });
        let r = s.clone();
        let reactor = loom::thread::spawn(move || loop {
            let c = r.control.load(Ordering::Acquire);
            if r.done.load(Ordering::Acquire) == 1 {
                break;
            }
            let a = r.armed.load(Ordering::Acquire);
            if a == 0 {
                r.wait_all(&[(&r.control, c)]);
                continue;
            }
            let expected = a - 1;
            if r.ev.seq.load(Ordering::Acquire) != expected {
                r.woken.store(1, Ordering::Release);
                r.fx.wake_all(&r.woken, 0, 1);
                break;
            }
            r.wait_all(&[(&r.control, c), (&r.ev.seq, expected)]);
        });
        // The task: register, arm, re-check.
        s.ev.waiters.fetch_add(1, Ordering::Relaxed);
        assert!(Barrier::Fences.heavy());
        let seq = s.ev.seq.load(Ordering::Acquire);
        s.armed.store(seq + 1, Ordering::Release);
        s.kick();
        if s.flag.load(Ordering::Acquire) == 1 {
            s.done.store(1, Ordering::Release);
            s.kick();
        } else {
            // Pending: only the reactor's wake-up brings the task back.
            while s.woken.load(Ordering::Acquire) == 0 {
                s.fx.wait(&s.woken, 0, None);
            }
            assert_eq!(s.flag.load(Ordering::Acquire), 1);
        }
        s.ev.waiters.fetch_sub(1, Ordering::Relaxed);
        notifier.join().unwrap();
        reactor.join().unwrap();
    });
}
