"""memlane's asyncio receive next to its blocking receive, from Python.

Two processes ping-pong a 64-byte message over two channels; one way =
round trip / 2, median (and 99th percentile) of many:

* blocking: ``pub.send(msg)`` / ``sub.recv_bytes()`` on both sides (the
  receive spins briefly before it sleeps, so a quick reply never sleeps);
* asyncio: ``await pub.send_async(msg)`` / ``await sub.recv_async()`` on
  both sides, each in its own asyncio loop (and with ``--uvloop``, uvloop):
  a receive that finds nothing returns to the loop; memlane's reactor
  thread wakes the task with ``loop.call_soon_threadsafe``.

* asyncio over a pipe: the same ping-pong with two ``os.pipe()``s and
  ``loop.add_reader`` (the asyncio floor for a wake-up from another
  process: the loop's own epoll, no memlane).

Also the CPU time the measuring process used per round trip (all its
threads: the loop's and the reactor's).

Run after ``maturin develop --release``:

    python crates/memlane-py/bench/asyncio_latency.py [--quick] [--no-pin] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import uuid

import memlane
from bench import cpu_model  # the neighbouring benchmark script

SMALL = 64
# Not "fork": a child forked after this process awaited would inherit the
# reactor's bookkeeping without its thread (memlane refuses to await there).
CTX = mp.get_context("spawn")
PIN = None


def new_loop_runner(kind: str):
    if kind == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def echo(a: str, b: str, n: int, kind: str, ready, pin) -> None:
    if pin is not None:
        os.sched_setaffinity(0, {pin[1]})
    sub = memlane.Channel.open(a).subscriber()
    pub = memlane.Channel.open(b).publisher()
    if kind == "blocking":
        ready.send("ready")
        for _ in range(n):
            pub.send(sub.recv_bytes())
        return

    async def run():
        ready.send("ready")
        for _ in range(n):
            msg = await sub.recv_async()
            data = msg.bytes()
            msg.release()
            await pub.send_async(data)

    new_loop_runner(kind)(run())


def pipe_echo(r: int, w: int, n: int, pin) -> None:
    if pin is not None:
        os.sched_setaffinity(0, {pin[1]})

    async def run():
        loop = asyncio.get_running_loop()
        for _ in range(n):
            fut = loop.create_future()
            loop.add_reader(r, lambda f=fut: f.done() or f.set_result(None))
            await fut
            loop.remove_reader(r)
            os.write(w, os.read(r, SMALL))

    asyncio.run(run())


def pipe_latency(n: int):
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    # Forked (the child inherits the pipes; it does not use memlane).
    p = mp.get_context("fork").Process(target=pipe_echo, args=(a_r, b_w, n, PIN))
    p.start()
    msg = b"x" * SMALL
    times = []
    cpu0 = time.process_time()

    async def run():
        loop = asyncio.get_running_loop()
        for _ in range(n):
            t = time.perf_counter_ns()
            os.write(a_w, msg)
            fut = loop.create_future()
            loop.add_reader(b_r, lambda f=fut: f.done() or f.set_result(None))
            await fut
            loop.remove_reader(b_r)
            os.read(b_r, SMALL)
            times.append(time.perf_counter_ns() - t)

    asyncio.run(run())
    cpu = time.process_time() - cpu0
    p.join()
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    return times, cpu / n


def latency(n: int, kind: str):
    if kind == "pipe":
        return pipe_latency(n)
    a, b = f"abench-a-{uuid.uuid4().hex[:8]}", f"abench-b-{uuid.uuid4().hex[:8]}"
    ca, cb = memlane.Channel.create(a), memlane.Channel.create(b)
    # The channels are removed however the run ends (an error, Ctrl-C).
    try:
        sub, pub = cb.subscriber(), ca.publisher()
        r, w = CTX.Pipe(False)
        p = CTX.Process(target=echo, args=(a, b, n, kind, w, PIN))
        p.start()
        assert r.recv() == "ready"
        msg = b"x" * SMALL
        times = []
        cpu0 = time.process_time()
        if kind == "blocking":
            for _ in range(n):
                t = time.perf_counter_ns()
                pub.send(msg)
                sub.recv_bytes()
                times.append(time.perf_counter_ns() - t)
        else:

            async def run():
                for _ in range(n):
                    t = time.perf_counter_ns()
                    await pub.send_async(msg)
                    m = await sub.recv_async()
                    m.bytes()
                    m.release()
                    times.append(time.perf_counter_ns() - t)

            new_loop_runner(kind)(run())
        cpu = time.process_time() - cpu0
        p.join()
        sub.close()
        pub.close()
    finally:
        for c in (ca, cb):
            memlane.Channel.remove(c.name)
            c.close()
    return times, cpu / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place them")
    ap.add_argument("--uvloop", action="store_true", help="also on uvloop's loop")
    args = ap.parse_args()
    global PIN
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        PIN = (cpus[0], cpus[1])
        os.sched_setaffinity(0, {PIN[0]})
    n = 2000 if args.quick else 20000
    kinds = ["blocking", "asyncio"] + (["uvloop"] if args.uvloop else []) + ["pipe"]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"Python {platform.python_version()}, {platform.platform()}")
    print(f"pinned: {'parent CPU %d, child CPU %d' % PIN if PIN else 'no'}")
    print(f"load average: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"{n} round trips of {SMALL} B each")
    print()
    print("| receive | one-way p50 | one-way p99 | CPU of one process per round trip |")
    print("|---|---|---|---|")
    for kind in kinds:
        times, cpu = latency(n, kind)
        times.sort()
        p50 = statistics.median(times) / 2 / 1000
        p99 = times[int(len(times) * 0.99)] / 2 / 1000
        label = {
            "blocking": "blocking `recv_bytes` / `send`",
            "asyncio": "asyncio `await recv_async()` / `send_async`",
            "uvloop": "uvloop `await recv_async()` / `send_async`",
            "pipe": "asyncio over a pipe (`loop.add_reader`, no memlane)",
        }[kind]
        print(f"| {label} | {p50:.1f} µs | {p99:.1f} µs | {cpu * 1e6:.1f} µs |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
