"""Python and the `memlane` command (Rust) on the same channel, both ways;
a Python publisher killed with SIGKILL mid-send; Ctrl-C in a blocked call."""

import hashlib
import os
import select
import signal
import subprocess
import sys
import time

import pytest

import memlane
from conftest import run_python

N = 500


def payload(i: int) -> bytes:
    return f"message {i} {'x' * (i % 97)}".encode()


def test_rust_publishes_python_receives(name, memlane_cli):
    with memlane.Channel.create(name) as ch:
        sub = ch.subscriber()
        sub.set_disconnect_grace(0.2)
        lines = b"".join(payload(i) + b"\n" for i in range(N))
        sent = subprocess.run(
            [memlane_cli, "send", name], input=lines, capture_output=True, timeout=60
        )
        assert sent.returncode == 0, sent.stderr
        got = hashlib.sha256()
        n = 0
        for msg in sub:
            with msg:
                got.update(msg.view)
                got.update(b"\n")
            n += 1
        assert n == N
        assert got.hexdigest() == hashlib.sha256(lines).hexdigest()


def test_python_publishes_rust_receives(name, memlane_cli, tmp_path):
    with memlane.Channel.create(name) as ch:
        ready = tmp_path / "ready"
        listen = subprocess.Popen(
            [memlane_cli, "listen", name, "-n", str(N), "--format", "hex",
             "--ready-file", str(ready), "--timeout", "30s"],
            stdout=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "memlane listen did not subscribe"
            assert listen.poll() is None
            time.sleep(0.01)
        pub = ch.publisher()
        for i in range(N):
            pub.send(payload(i), timeout=10)
        out, _ = listen.communicate(timeout=60)
        assert listen.returncode == 0
        received = [bytes.fromhex(line) for line in out.decode().split()]
        sha = lambda msgs: hashlib.sha256(b"\0".join(msgs)).hexdigest()
        assert len(received) == N
        assert sha(received) == sha([payload(i) for i in range(N)])


KILLED_SENDER = """
import memlane, sys
pub = memlane.Channel.open(sys.argv[1]).publisher()
print("joined", flush=True)
while True:
    with pub.loan(512) as loan:
        loan.view[:5] = b"dying"
    pub.send(b"y" * 300)
"""


def test_killed_python_publisher_blocks_nobody(name):
    with memlane.Channel.create(name, capacity=64 * 1024) as ch:
        sub = ch.subscriber()
        child = run_python(KILLED_SENDER, name, stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"joined\n"
        # Let it run (the ring fills: it is mid-send or mid-loan), then kill.
        for _ in range(50):
            sub.recv(timeout=30).release()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Everything it completed can be drained...
        while True:
            try:
                sub.recv(timeout=0.5).release()
            except memlane.Timeout:
                break
            except memlane.Disconnected:
                break
        # ...and another publisher and the subscriber carry on.
        pub = ch.publisher()
        for i in range(200):
            pub.send(payload(i), timeout=10)
        for i in range(200):
            assert sub.recv_bytes(timeout=10) == payload(i)


BLOCKED_RECEIVER = """
import memlane, sys, time
import signal
# Python leaves SIGINT ignored when it starts with it ignored (as in a
# background job of a non-interactive shell); Ctrl-C's usual handler here.
signal.signal(signal.SIGINT, signal.default_int_handler)
sub = memlane.Channel.open(sys.argv[1]).subscriber()
print("waiting", flush=True)
try:
    sub.recv()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
"""


BLOCKED_SENDER = """
import memlane, sys
import signal
# Python leaves SIGINT ignored when it starts with it ignored (as in a
# background job of a non-interactive shell); Ctrl-C's usual handler here.
signal.signal(signal.SIGINT, signal.default_int_handler)
pub = memlane.Channel.open(sys.argv[1]).publisher()
try:
    while True:
        pub.try_send(b"x" * 1000)
except memlane.Full:
    pass
print("waiting", flush=True)
try:
    pub.%s
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
"""


def readline_within(pipe, seconds: float) -> bytes:
    """The next line from a child's pipe, or b"" if none starts within
    `seconds`: a child that never answers fails the test instead of hanging it."""
    ready, _, _ = select.select([pipe], [], [], seconds)
    return pipe.readline() if ready else b""


@pytest.mark.parametrize("call", ["recv", "event", "send", "loan"])
def test_ctrl_c_interrupts_a_blocked_call(name, call):
    sub = None
    if call == "recv":
        ctx = memlane.Channel.create(name)
        code = BLOCKED_RECEIVER
    elif call == "event":
        ctx = memlane.Event.create(name)
        code = BLOCKED_RECEIVER.replace(
            "memlane.Channel.open(sys.argv[1]).subscriber()",
            "memlane.Event.open(sys.argv[1])",
        ).replace("sub.recv()", "sub.wait()")
    else:
        # A full ring: the subscriber here never reads.
        ctx = memlane.Channel.create(name, capacity=4096, max_message=1024)
        sub = ctx.subscriber()
        code = BLOCKED_SENDER % ("send(b'y' * 1000)" if call == "send" else "loan(1000)")
    with ctx:
        child = run_python(code, name, stdout=subprocess.PIPE)
        try:
            assert readline_within(child.stdout, 60) == b"waiting\n"
            time.sleep(0.3)  # let it block
            start = time.monotonic()
            child.send_signal(signal.SIGINT)
            assert readline_within(child.stdout, 30) == b"interrupted\n"
            elapsed = time.monotonic() - start
            assert child.wait(timeout=30) == 42
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        print(f"{call}: KeyboardInterrupt {elapsed * 1000:.1f} ms after SIGINT")
        assert elapsed < 1.0
    if sub is not None:
        sub.close()
