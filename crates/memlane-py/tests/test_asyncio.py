"""asyncio: recv_async, send_async, async for and Latest.wait_async, woken
by another process through memlane's reactor thread; many awaiting
subscribers on few threads and ~no CPU while idle; cancellation takes
nothing; an awaiting call never blocks the loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

import memlane
from conftest import run_python

try:
    import uvloop
except ImportError:  # pragma: no cover - optional
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


def run(coro, loop_kind: str = "asyncio"):
    """Runs `coro` on a new loop of the given kind."""
    if loop_kind == "uvloop":
        return uvloop.run(coro)
    return asyncio.run(coro)


def threads() -> int:
    """This process's threads (/proc/self/task)."""
    return len(os.listdir("/proc/self/task"))


async def ticker(counter: list[int]) -> None:
    """Counts loop turns until cancelled: proof that the loop runs."""
    while True:
        await asyncio.sleep(0.01)
        counter[0] += 1


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_rust_publisher_process_wakes_awaiting_subscriber(name, memlane_cli, loop_kind):
    """The `memlane send` command (another process) wakes a task awaiting
    recv_async; `async for` then gets the rest and ends when it leaves;
    another task kept running all along."""
    lines = [b"one", b"two", b"three"]

    async def main():
        with memlane.Channel.create(name) as ch:
            sub = ch.subscriber()
            sub.set_disconnect_grace(0.2)
            ticks = [0]
            tick = asyncio.create_task(ticker(ticks))
            first = asyncio.create_task(sub.recv_async(timeout=30))
            await asyncio.sleep(0.1)  # let it register and sleep
            assert not first.done()
            sender = subprocess.Popen(
                [memlane_cli, "send", name], stdin=subprocess.PIPE
            )
            sender.stdin.write(b"\n".join(lines) + b"\n")
            sender.stdin.close()
            msg = await first
            got = [msg.bytes()]
            async for msg in sub:
                with msg:
                    got.append(bytes(msg.view))
            tick.cancel()
            assert sender.wait(timeout=30) == 0
            assert got == lines
            assert ticks[0] > 0, "the loop did not run while a receive awaited"

    run(main(), loop_kind)


MANY_SENDER = """
import memlane, sys
for name in sys.argv[1:]:
    pub = memlane.Channel.open(name).publisher()
    pub.send(name.encode(), timeout=10)
    pub.close()
"""


def test_many_awaiting_subscribers_few_threads_no_idle_cpu(name):
    """200 subscribers on 4 channels awaiting in one loop: one reactor
    thread at most is added, the idle process uses ~no CPU (a resource
    check with a loose bound, not a latency assertion), and a publisher
    process's message reaches every one of them."""
    channels = [f"{name}-{i}" for i in range(4)]
    per_channel = 50
    before = threads()

    async def main():
        chs = [memlane.Channel.create(n, max_subscribers=per_channel) for n in channels]
        subs = [(n, ch.subscriber()) for n, ch in zip(channels, chs) for _ in range(per_channel)]

        async def receive(sub):
            with await sub.recv_async(timeout=60) as msg:
                return bytes(msg.view)

        tasks = [asyncio.create_task(receive(sub)) for _, sub in subs]
        await asyncio.sleep(0.3)  # every task registered and asleep
        assert not any(t.done() for t in tasks)
        during = threads()
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(1.0)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        print(
            f"{len(subs)} awaiting subscribers: {during} threads "
            f"({before} before), {cpu * 1000:.1f} ms CPU in {wall:.2f} s idle; "
            f"reactor threads {memlane.reactor_threads()}"
        )
        reactors, multi = memlane.reactor_threads()
        assert during - before <= 1, "more than one thread was started"
        # One group holds up to 127 words; without futex_waitv, one each.
        assert reactors == 1 if multi else reactors <= len(channels)
        assert cpu < 0.1, f"{cpu:.3f} s of CPU in 1 s while idle"
        child = run_python(MANY_SENDER, *channels)
        got = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert child.wait(timeout=30) == 0
        assert got == [n.encode() for n, _ in subs]
        for _, sub in subs:
            sub.close()
        for ch in chs:
            ch.close()

    run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_cancelled_receive_takes_nothing(name, loop_kind):
    """A receive cut by asyncio.wait_for, or cancelled after its message
    arrived but before its task ran, takes nothing: the next receive gets
    the message, exactly once."""

    async def main():
        with memlane.Channel.create(name) as ch:
            sub = ch.subscriber()
            pub = ch.publisher()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.recv_async(), 0.1)
            pub.send(b"first")
            assert (await sub.recv_async(timeout=10)).bytes() == b"first"
            with pytest.raises(memlane.Empty):
                sub.try_recv()

            task = asyncio.create_task(sub.recv_async())
            await asyncio.sleep(0.05)
            pub.send(b"second")  # wakes the task...
            task.cancel()  # ...which is cancelled before it runs
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await sub.recv_async(timeout=10)).bytes() == b"second"
            with pytest.raises(memlane.Empty):
                sub.try_recv()

            # A timeout of its own: Timeout (a TimeoutError), nothing taken.
            with pytest.raises(memlane.Timeout):
                await sub.recv_async(timeout=0.05)
            pub.send(b"third")
            assert sub.recv_bytes(timeout=10) == b"third"

    run(main(), loop_kind)


def test_endpoint_busy_while_awaiting(name):
    """While a call awaits, the endpoint's other calls raise Busy (the
    pending future holds it); afterwards it works again."""

    async def main():
        with memlane.Channel.create(name) as ch:
            sub = ch.subscriber()
            pub = ch.publisher()
            task = asyncio.create_task(sub.recv_async())
            await asyncio.sleep(0.05)
            for call in (sub.try_recv, sub.close, lambda: sub.lag):
                with pytest.raises(memlane.Busy):
                    call()
            with pytest.raises(memlane.Busy):
                await sub.recv_async()
            pub.send(b"x")
            assert (await task).bytes() == b"x"
            assert sub.lag == 0
            sub.close()

    run(main())


def test_send_async_waits_for_space(name):
    """send_async on a full ring waits (other tasks run) until a slow
    subscriber frees space, then sends; its own timeout sends nothing."""

    async def main():
        with memlane.Channel.create(name, capacity=4096, max_message=1024) as ch:
            sub = ch.subscriber()
            pub = ch.publisher()
            sent = 0
            while True:
                try:
                    pub.try_send(bytes([sent]) * 1000)
                except memlane.Full:
                    break
                sent += 1
            with pytest.raises(memlane.Timeout):
                await pub.send_async(b"late" * 250, timeout=0.05)
            send = asyncio.create_task(pub.send_async(b"last" * 250, timeout=30))
            await asyncio.sleep(0.1)
            assert not send.done(), "send_async returned while the ring was full"
            with pytest.raises(memlane.Busy):
                pub.try_send(b"x")

            async def slow_subscriber():
                got = []
                for _ in range(sent + 1):
                    await asyncio.sleep(0.01)
                    got.append(await sub.recv_async(timeout=30))
                    got[-1] = got[-1].bytes()
                return got

            got = await slow_subscriber()
            await send
            assert got == [bytes([i]) * 1000 for i in range(sent)] + [b"last" * 250]
            with pytest.raises(memlane.Empty):
                sub.try_recv()

    run(main())


def test_lossy_subscriber_lagged_async(name):
    """A lapped lossy subscriber gets Lagged from recv_async, then goes on
    from the oldest message still in the ring."""

    async def main():
        with memlane.Channel.create(name, capacity=4096, max_message=256) as ch:
            sub = ch.subscriber(lossy=True)
            pub = ch.publisher()
            for i in range(200):
                pub.send(i.to_bytes(4, "little") * 16)
            with pytest.raises(memlane.Lagged) as info:
                await sub.recv_async(timeout=10)
            assert info.value.messages > 0
            first = int.from_bytes((await sub.recv_async(timeout=10)).bytes()[:4], "little")
            assert 0 < first < 200

    run(main())


LATEST_WRITER = """
import memlane, sys, time
w = memlane.Latest.open(sys.argv[1])
time.sleep(0.2)
w.set(b"from another process")
"""


def test_latest_wait_async(name):
    """Latest.wait_async: False on its timeout, True when another process
    sets a value; the handle is Busy meanwhile."""

    async def main():
        with memlane.Latest.create(name, 64) as latest:
            assert await latest.wait_async(timeout=0.05) is False
            child = run_python(LATEST_WRITER, name)
            task = asyncio.create_task(latest.wait_async(timeout=30))
            await asyncio.sleep(0.05)
            with pytest.raises(memlane.Busy):
                latest.get()
            assert await task is True
            assert latest.get() == (1, b"from another process")
            assert child.wait(timeout=30) == 0

    run(main())


def test_forked_child_awaits_with_its_own_reactor(name):
    """A child forked after this process's reactor started (multiprocessing's
    "fork" start method) inherits no reactor thread: the library starts one
    of its own there, and the child's awaiting receive is woken by a send."""

    async def start_reactor(sub):
        with pytest.raises(memlane.Timeout):
            await sub.recv_async(timeout=0.05)

    async def child_main(ch):
        sub = ch.subscriber()
        pub = ch.publisher()
        # The send comes from the loop 50 ms after the receive went to sleep.
        asyncio.get_running_loop().call_later(0.05, pub.send, b"to the child")
        with await sub.recv_async(timeout=10) as msg:
            got = bytes(msg)
        threads = memlane.reactor_threads()[0]
        sub.close()
        pub.close()
        return got, threads

    with memlane.Channel.create(name) as ch:
        sub = ch.subscriber()
        run(start_reactor(sub))
        assert memlane.reactor_threads()[0] >= 1
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            code = 1
            try:
                got, threads = asyncio.run(child_main(ch))
                code = 0 if got == b"to the child" and threads >= 1 else 2
            except BaseException:
                code = 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        sub.close()


EVENT_NOTIFIER = """
import memlane, sys, time
e = memlane.Event.open(sys.argv[1])
time.sleep(0.2)
e.notify()
"""


def test_event_wait_async(name):
    """Event.wait_async ("data ready" in asyncio code): False on its
    timeout, True when another process notifies; Busy meanwhile; a
    cancelled wait takes no notification."""

    async def main():
        with memlane.Event.create(name) as ev:
            assert await ev.wait_async(timeout=0.05) is False
            child = run_python(EVENT_NOTIFIER, name)
            task = asyncio.create_task(ev.wait_async(timeout=30))
            await asyncio.sleep(0.05)
            with pytest.raises(memlane.Busy):
                ev.notify()
            assert await task is True
            assert child.wait(timeout=30) == 0
            assert ev.count == 1
            # Seen: the next wait times out. A notification, then a wait
            # cancelled before it ran: the notification is still there.
            assert await ev.wait_async(timeout=0.05) is False
            ev.notify()
            cancelled = asyncio.create_task(ev.wait_async(timeout=30))
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert await ev.wait_async(timeout=1) is True

    run(main())
