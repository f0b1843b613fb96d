"""memlane from Python next to the usual ways Python processes talk.

One-way latency (two processes ping-pong a 64-byte message; one way = round
trip / 2, median of many) and throughput (one process sends 64 B or 1 MiB
messages as fast as it can, the other receives each one as `bytes`) for:

* memlane (Channel; `recv_bytes`, and for 1 MiB also read in place), with
  its default membarrier-based wake-up ordering and with membarrier=False
* multiprocessing.Queue
* multiprocessing.Pipe (send_bytes / recv_bytes)
* multiprocessing.shared_memory + two semaphores (a ring of slots)
* iceoryx2's Python package (publish-subscribe of byte slices; its
  subscribers poll, so its receiver busy-polls)

Run after `maturin develop --release` (or `pip install crates/memlane-py`):

    python crates/memlane-py/bench/bench.py [--quick] [--no-pin]

The sender runs on the first CPU and the receiver on the second (unless
--no-pin), as in the Rust benchmarks.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import platform
import statistics
import struct
import sys
import time
import uuid
from multiprocessing import shared_memory

import memlane

SMALL = 64
LARGE = 1 << 20
CTX = mp.get_context("fork")

# With --pin (the default) the parent runs on CPU 0 and every child on
# CPU 1, as the Rust benchmarks do: a receiver that spins before it sleeps
# (memlane, iceoryx2) must not share a CPU with the process it waits for.
PIN = None


def _pinned(target, *args):
    if PIN is not None:
        os.sched_setaffinity(0, {PIN[1]})
    return target(*args)


class _Process:
    """multiprocessing's Process, the child pinned to the second CPU."""

    def __init__(self, target, args):
        self._p = CTX.Process(target=_pinned, args=(target, *args))

    def start(self):
        self._p.start()

    def join(self):
        self._p.join()


def round_trips(n, send, recv):
    """Times n round trips of a SMALL-byte message: send it, wait for the
    echo (nanoseconds each)."""
    msg = b"x" * SMALL
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        send(msg)
        recv()
        times.append(time.perf_counter_ns() - t)
    return times


def timed_receive(recv, count, size, out):
    """In a receiving process: says "ready" on out, receives count messages
    of size bytes (recv returns each one's length), then sends the seconds
    from the first to the last."""
    out.send("ready")
    first = None
    for i in range(count):
        assert recv() == size
        if i == 0:
            first = time.perf_counter()
    out.send(time.perf_counter() - first)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- memlane


def ml_echo(a, b, n, ready):
    sub = memlane.Channel.open(a).subscriber()
    pub = memlane.Channel.open(b).publisher()
    ready.send("ready")
    for _ in range(n):
        pub.send(sub.recv_bytes())


def ml_latency(n, membarrier=True):
    a, b = f"bench-a-{uuid.uuid4().hex[:8]}", f"bench-b-{uuid.uuid4().hex[:8]}"
    ca = memlane.Channel.create(a, membarrier=membarrier)
    cb = memlane.Channel.create(b, membarrier=membarrier)
    sub = cb.subscriber()
    pub = ca.publisher()
    r, w = CTX.Pipe(False)
    p = _Process(target=ml_echo, args=(a, b, n, w))
    p.start()
    assert r.recv() == "ready"
    times = round_trips(n, pub.send, sub.recv_bytes)
    p.join()
    for c in (ca, cb):
        memlane.Channel.remove(c.name)
    return times


def ml_sink(name, count, size, in_place, out):
    sub = memlane.Channel.open(name).subscriber()

    def receive():
        if in_place:
            with sub.recv() as m:
                return len(m)
        return len(sub.recv_bytes())

    timed_receive(receive, count, size, out)


def ml_throughput(count, size, in_place=False, membarrier=True):
    name = f"bench-t-{uuid.uuid4().hex[:8]}"
    cap = 1 << 22 if size <= 4096 else 1 << 23
    ch = memlane.Channel.create(
        name, capacity=cap, max_message=max(size, 4096), membarrier=membarrier
    )
    r, w = CTX.Pipe(False)
    p = _Process(target=ml_sink, args=(name, count, size, in_place, w))
    p.start()
    assert r.recv() == "ready"
    pub = ch.publisher()
    msg = os.urandom(size)
    for _ in range(count):
        pub.send(msg)
    elapsed = r.recv()
    p.join()
    memlane.Channel.remove(name)
    return (count - 1) / elapsed


# ------------------------------------------------- multiprocessing.Queue


def q_echo(a, b, n):
    for _ in range(n):
        b.put(a.get())


def q_latency(n):
    a, b = CTX.Queue(), CTX.Queue()
    p = _Process(target=q_echo, args=(a, b, n))
    p.start()
    times = round_trips(n, a.put, b.get)
    p.join()
    return times


def q_sink(q, count, size, out):
    timed_receive(lambda: len(q.get()), count, size, out)


def q_throughput(count, size):
    q = CTX.Queue(maxsize=1024)
    r, w = CTX.Pipe(False)
    p = _Process(target=q_sink, args=(q, count, size, w))
    p.start()
    assert r.recv() == "ready"
    msg = os.urandom(size)
    for _ in range(count):
        q.put(msg)
    elapsed = r.recv()
    p.join()
    return (count - 1) / elapsed


# -------------------------------------------------- multiprocessing.Pipe


def pipe_echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_latency(n):
    here, there = CTX.Pipe()
    p = _Process(target=pipe_echo, args=(there, n))
    p.start()
    times = round_trips(n, here.send_bytes, here.recv_bytes)
    p.join()
    return times


def pipe_sink(conn, count, size, out):
    timed_receive(lambda: len(conn.recv_bytes()), count, size, out)


def pipe_throughput(count, size):
    r_conn, w_conn = CTX.Pipe(False)
    r, w = CTX.Pipe(False)
    p = _Process(target=pipe_sink, args=(r_conn, count, size, w))
    p.start()
    assert r.recv() == "ready"
    msg = os.urandom(size)
    for _ in range(count):
        w_conn.send_bytes(msg)
    elapsed = r.recv()
    p.join()
    return (count - 1) / elapsed


# ------------------------------ multiprocessing.shared_memory + semaphores


class ShmRing:
    """`slots` slots of `size` bytes + an 8-byte length, guarded by a
    counting semaphore of free slots and one of full slots."""

    def __init__(self, slots, size, name=None):
        self.slots, self.size = slots, size
        self.stride = size + 8
        if name is None:
            self.shm = shared_memory.SharedMemory(create=True, size=slots * self.stride)
        else:
            self.shm = shared_memory.SharedMemory(name=name)
        self.free = CTX.Semaphore(slots)
        self.full = CTX.Semaphore(0)
        self.pos = 0

    def put(self, data):
        self.free.acquire()
        off = (self.pos % self.slots) * self.stride
        buf = self.shm.buf
        struct.pack_into("<Q", buf, off, len(data))
        buf[off + 8 : off + 8 + len(data)] = data
        self.pos += 1
        self.full.release()

    def get(self):
        self.full.acquire()
        off = (self.pos % self.slots) * self.stride
        buf = self.shm.buf
        (n,) = struct.unpack_from("<Q", buf, off)
        data = bytes(buf[off + 8 : off + 8 + n])
        self.pos += 1
        self.free.release()
        return data


def shm_echo(a, b, n):
    for _ in range(n):
        b.put(a.get())


def shm_latency(n):
    a, b = ShmRing(1, SMALL), ShmRing(1, SMALL)
    p = _Process(target=shm_echo, args=(a, b, n))
    p.start()
    times = round_trips(n, a.put, b.get)
    p.join()
    for ring in (a, b):
        ring.shm.close()
        ring.shm.unlink()
    return times


def shm_sink(ring, count, size, out):
    timed_receive(lambda: len(ring.get()), count, size, out)


def shm_throughput(count, size):
    ring = ShmRing(64 if size <= 4096 else 4, size)
    r, w = CTX.Pipe(False)
    p = _Process(target=shm_sink, args=(ring, count, size, w))
    p.start()
    assert r.recv() == "ready"
    msg = os.urandom(size)
    for _ in range(count):
        ring.put(msg)
    elapsed = r.recv()
    p.join()
    ring.shm.close()
    ring.shm.unlink()
    return (count - 1) / elapsed


# ------------------------------------------------------------ iceoryx2


def iox_service(iox2, node, name, depth):
    b = node.service_builder(iox2.ServiceName.new(name)).publish_subscribe(
        iox2.Slice[ctypes.c_uint8]
    )
    b = b.enable_safe_overflow(False).subscriber_max_buffer_size(depth).history_size(0)
    return b.open_or_create()


def iox_publisher(iox2, service, size):
    return (
        service.publisher_builder()
        .initial_max_slice_len(size)
        .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
        .create()
    )


def iox_send(pub, data):
    sample = pub.loan_slice_uninit(len(data))
    ctypes.memmove(sample.payload().data_ptr, data, len(data))
    sample.assume_init().send()


def iox_recv(sub):
    while True:
        sample = sub.receive()
        if sample is not None:
            payload = sample.payload()
            return ctypes.string_at(payload.data_ptr, payload.number_of_elements)


def iox_echo(a, b, n, ready):
    import iceoryx2 as iox2

    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    sub = iox_service(iox2, node, a, 16).subscriber_builder().create()
    pub = iox_publisher(iox2, iox_service(iox2, node, b, 16), SMALL)
    ready.send("ready")
    for _ in range(n):
        iox_send(pub, iox_recv(sub))


def iox_latency(n):
    import iceoryx2 as iox2

    a, b = f"bench/a/{uuid.uuid4().hex}", f"bench/b/{uuid.uuid4().hex}"
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    pub = iox_publisher(iox2, iox_service(iox2, node, a, 16), SMALL)
    sub = iox_service(iox2, node, b, 16).subscriber_builder().create()
    r, w = CTX.Pipe(False)
    p = _Process(target=iox_echo, args=(a, b, n, w))
    p.start()
    assert r.recv() == "ready"
    time.sleep(0.1)
    times = round_trips(n, lambda m: iox_send(pub, m), lambda: iox_recv(sub))
    p.join()
    return times


def iox_sink(name, count, size, out):
    import iceoryx2 as iox2

    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    sub = iox_service(iox2, node, name, 16).subscriber_builder().create()
    timed_receive(lambda: len(iox_recv(sub)), count, size, out)


def iox_throughput(count, size):
    import iceoryx2 as iox2

    name = f"bench/t/{uuid.uuid4().hex}"
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    service = iox_service(iox2, node, name, 16)
    r, w = CTX.Pipe(False)
    p = _Process(target=iox_sink, args=(name, count, size, w))
    p.start()
    assert r.recv() == "ready"
    time.sleep(0.1)
    pub = iox_publisher(iox2, service, size)
    msg = os.urandom(size)
    for _ in range(count):
        iox_send(pub, msg)
    elapsed = r.recv()
    p.join()
    return (count - 1) / elapsed


# ---------------------------------------------------------------- main


def fmt_rate(rate, size):
    if size >= 1 << 20:
        return f"{rate * size / 1e9:.2f} GB/s ({rate:,.0f} msg/s)"
    return f"{rate / 1e6:.3f} M msg/s ({rate * size / 1e6:.0f} MB/s)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place the two processes"
    )
    args = ap.parse_args()
    global PIN
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        PIN = (cpus[0], cpus[1])
        os.sched_setaffinity(0, {PIN[0]})
    k = 10 if args.quick else 1
    n_lat = 20000 // k
    n_small = 200000 // k
    n_large = 2000 // k

    peers = [
        ("memlane", ml_latency, ml_throughput),
        (
            "memlane, membarrier=False",
            lambda n: ml_latency(n, membarrier=False),
            lambda c, s: ml_throughput(c, s, membarrier=False),
        ),
        ("multiprocessing.Queue", q_latency, q_throughput),
        ("multiprocessing.Pipe", pipe_latency, pipe_throughput),
        ("shared_memory + semaphores", shm_latency, shm_throughput),
        ("iceoryx2 (Python, busy-poll receive)", iox_latency, iox_throughput),
    ]
    try:
        import iceoryx2  # noqa: F401
    except Exception as e:  # not installed or not working
        print(f"iceoryx2: skipped ({e})")
        peers.pop()

    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"Python {platform.python_version()}, {platform.platform()}")
    print(f"pinned: {'parent CPU %d, children CPU %d' % PIN if PIN else 'no'}")
    print(f"load average: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    rows = []
    for label, lat, thr in peers:
        row = {"name": label}
        try:
            times = lat(n_lat)
            row["lat"] = statistics.median(times) / 2 / 1000
            row["small"] = thr(n_small, SMALL)
            row["large"] = thr(n_large, LARGE)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
        rows.append(row)
        print(row, flush=True)
        if label == "memlane":
            try:
                rows.append(
                    {"name": "memlane, 1 MiB read in place (no copy)",
                     "large": ml_throughput(n_large, LARGE, in_place=True)}
                )
                print(rows[-1], flush=True)
            except Exception as e:
                print("memlane in place:", e)

    base = rows[0]
    print()
    print("| transport | one-way latency, 64 B (median) | 64 B throughput | 1 MiB throughput |")
    print("|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | failed: {r['error']} | | |")
            continue
        lat = f"{r['lat']:.1f} µs" if "lat" in r else ""
        if "lat" in r and r is not base:
            lat += f" ({r['lat'] / base['lat']:.1f}× memlane)"
        small = fmt_rate(r["small"], SMALL) if "small" in r else ""
        if "small" in r and r is not base:
            small += f" (memlane {base['small'] / r['small']:.1f}×)"
        large = fmt_rate(r["large"], LARGE)
        if r is not base:
            large += f" (memlane {base['large'] / r['large']:.1f}×)"
        print(f"| {r['name']} | {lat} | {small} | {large} |")


if __name__ == "__main__":
    sys.exit(main())
