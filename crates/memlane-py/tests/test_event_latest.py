import time

import pytest

import memlane
from conftest import run_python


def test_event_notify_wait(name):
    with memlane.Event.create(name) as ev, memlane.Event.open(name) as waiter:
        assert waiter.wait(timeout=0.01) is False
        ev.notify()
        assert waiter.wait(timeout=1.0) is True
        assert waiter.wait(timeout=0) is False
        assert ev.count >= 1


def test_event_across_processes(name):
    with memlane.Event.create(name) as ev:
        child = run_python(
            "import memlane, sys\n"
            "e = memlane.Event.open(sys.argv[1])\n"
            "sys.exit(0 if e.wait(timeout=30) else 3)\n",
            name,
        )
        deadline = time.monotonic() + 30
        while child.poll() is None and time.monotonic() < deadline:
            ev.notify()
            time.sleep(0.01)
        assert child.wait(timeout=30) == 0


def test_timeout_validation(name):
    with memlane.Event.create(name) as ev:
        with pytest.raises(ValueError):
            ev.wait(timeout=-1)


def test_latest_set_get_wait(name):
    with memlane.Latest.create(name, 16) as w, memlane.Latest.open(name) as r:
        assert r.get() is None
        assert r.wait(timeout=0.01) is False
        v = w.set(b"one")
        assert r.wait(timeout=1.0)
        assert r.get() == (v, b"one")
        assert not r.has_changed()
        w.set(bytearray(b"two"))
        assert r.has_changed()
        assert r.get()[1] == b"two"
        with pytest.raises(memlane.TooLarge):
            w.set(b"x" * 17)
        assert r.max_value == 16
