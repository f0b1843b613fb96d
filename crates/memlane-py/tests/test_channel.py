import array

import numpy as np
import pytest

import memlane


@pytest.fixture
def channel(name):
    ch = memlane.Channel.create(name, capacity=64 * 1024, max_message=8 * 1024)
    yield ch
    ch.close()


def test_send_recv_any_buffer(channel):
    sub = channel.subscriber()
    pub = channel.publisher()
    pub.send(b"bytes")
    pub.send(bytearray(b"bytearray"))
    pub.send(memoryview(b"xxmemoryview")[2:])
    pub.send(np.arange(3, dtype=np.int16))
    pub.send(array.array("i", [7]))
    assert sub.recv_bytes(timeout=1) == b"bytes"
    assert bytes(sub.recv(timeout=1)) == b"bytearray"
    assert sub.recv(timeout=1).bytes() == b"memoryview"
    with sub.recv(timeout=1) as msg:
        assert np.frombuffer(msg.view, dtype=np.int16).tolist() == [0, 1, 2]
    assert sub.recv_bytes(timeout=1) == array.array("i", [7]).tobytes()
    assert sub.messages_received == 5
    assert pub.messages_sent == 5


def test_non_contiguous_buffer_is_refused(channel):
    pub = channel.publisher()
    with pytest.raises(BufferError):
        pub.send(np.arange(10)[::2])


def test_message_view_valid_inside_with_block(channel):
    sub = channel.subscriber()
    channel.publisher().send(b"in place")
    with sub.recv(timeout=1) as msg:
        view = msg.view
        assert view.readonly
        assert bytes(view) == b"in place"
        assert msg.held
        assert len(msg) == 8
    assert not msg.held
    with pytest.raises(ValueError):
        bytes(view)
    with pytest.raises(memlane.Closed):
        msg.bytes()


def test_next_recv_refuses_while_a_buffer_is_exported(channel):
    sub = channel.subscriber()
    pub = channel.publisher()
    pub.send(b"first")
    pub.send(b"second")
    msg = sub.recv(timeout=1)
    mine = memoryview(msg)  # not made by msg.view: the caller releases it
    with pytest.raises(BufferError):
        sub.recv(timeout=1)
    mine.release()
    assert bytes(sub.recv(timeout=1)) == b"second"


def test_timeouts_and_empty(channel):
    sub = channel.subscriber()
    with pytest.raises(memlane.Timeout) as e:
        sub.recv(timeout=0.05)
    assert isinstance(e.value, TimeoutError)
    with pytest.raises(memlane.Empty):
        sub.try_recv()
    with pytest.raises(memlane.WouldBlock):
        sub.try_recv()


def test_full_and_send_timeout(name):
    with memlane.Channel.create(name, capacity=4096, max_message=1024) as ch:
        sub = ch.subscriber()
        pub = ch.publisher()
        sent = 0
        with pytest.raises(memlane.Full):
            while True:
                pub.try_send(b"x" * 1000)
                sent += 1
        assert sent >= 2
        with pytest.raises(memlane.Timeout):
            pub.send(b"x" * 1000, timeout=0.05)
        with pytest.raises(memlane.Timeout):
            pub.loan(1000, timeout=0.05)
        for _ in range(sent):
            sub.recv(timeout=1).release()
        pub.send(b"room again", timeout=1)
        assert sub.recv_bytes(timeout=1) == b"room again"


def test_too_large(channel):
    pub = channel.publisher()
    with pytest.raises(memlane.TooLarge) as e:
        pub.send(b"x" * (channel.max_message + 1))
    assert "max-message" in str(e.value)


def test_loan_commit_discard(channel):
    sub = channel.subscriber()
    pub = channel.publisher()
    with pub.loan(5) as loan:
        assert len(loan) == 5
        loan.view[:] = b"hello"
    assert sub.recv_bytes(timeout=1) == b"hello"

    loan = pub.loan(100)
    np.frombuffer(loan.view, dtype=np.uint8)[:3] = [1, 2, 3]
    loan.commit(3)
    assert sub.recv_bytes(timeout=1) == b"\x01\x02\x03"

    with pytest.raises(RuntimeError):
        with pub.loan(10) as loan:
            loan.view[:] = b"discarded!"
            raise RuntimeError("fails: discarded")
    assert not loan.active
    pub.loan(4).discard()
    with pytest.raises(memlane.Empty):
        sub.try_recv()


def test_loan_blocks_other_sends_and_exports(channel):
    pub = channel.publisher()
    loan = pub.loan(8)
    with pytest.raises(memlane.Busy):
        pub.send(b"x")
    view = memoryview(loan)
    with pytest.raises(BufferError):
        loan.commit()
    view.release()
    loan.commit()
    with pytest.raises(memlane.Closed):
        loan.commit()


def test_iteration_ends_when_publishers_leave(channel):
    sub = channel.subscriber()
    sub.set_disconnect_grace(0.05)
    with channel.publisher() as pub:
        for i in range(10):
            pub.send(str(i).encode())
    assert [m.bytes() for m in sub] == [str(i).encode() for i in range(10)]


def test_disconnected(channel):
    sub = channel.subscriber()
    sub.set_disconnect_grace(0.0)
    pub = channel.publisher()
    assert sub.publishers == 1
    pub.send(b"seen")  # a subscriber is disconnected only after it saw a publisher
    assert sub.recv_bytes(timeout=1) == b"seen"
    pub.close()
    with pytest.raises(memlane.Disconnected):
        sub.recv(timeout=5)


def test_from_oldest(channel):
    pub = channel.publisher()
    pub.send(b"early")
    late = channel.subscriber(from_oldest=True)
    assert late.recv_bytes(timeout=1) == b"early"


def test_lossy_subscriber_reports_the_lap_then_receives_intact_messages(name):
    with memlane.Channel.create(name, capacity=4096, max_message=64) as ch:
        lossy = ch.subscriber(lossy=True)
        pub = ch.publisher()
        # 1,000 messages of 48 bytes (64-byte records) through a 4 KiB ring:
        # a lossy subscriber never holds the publisher back.
        for i in range(1000):
            pub.try_send(i.to_bytes(4, "little") + bytes([i & 0xFF]) * 44)
        with pytest.raises(memlane.Lagged) as lag:
            lossy.try_recv()
        assert 0 < lag.value.messages < 1000 and lag.value.bytes > 0
        got = []
        while True:
            try:
                m = lossy.try_recv()
            except memlane.Empty:
                break
            with m:
                data = m.bytes()
            i = int.from_bytes(data[:4], "little")
            assert data == i.to_bytes(4, "little") + bytes([i & 0xFF]) * 44
            got.append(i)
        assert got == list(range(got[0], 1000))
        assert lag.value.messages + len(got) == 1000
        with pytest.raises(ValueError):
            ch.subscriber(lossy=True, from_oldest=True)


def test_open_by_name_and_errors(name):
    with pytest.raises(memlane.NotFound):
        memlane.Channel.open(name)
    with memlane.Channel.create(name, max_publishers=1) as ch:
        with memlane.Channel.open(name) as again:
            assert again.name == name
            assert again.capacity == ch.capacity
            p = again.publisher()
            with pytest.raises(memlane.TooManyEndpoints):
                again.publisher()
            p.close()
    memlane.Channel.remove(name)
    with pytest.raises(memlane.NotFound):
        memlane.Channel.remove(name)


def test_blocking_recv_releases_the_gil_and_guards_the_handle(channel):
    import threading
    import time

    sub = channel.subscriber()
    pub = channel.publisher()
    got = []
    t = threading.Thread(target=lambda: got.append(sub.recv_bytes(timeout=30)))
    t.start()
    # This thread keeps running while the other one waits in recv (the
    # GIL is released), and the handle refuses a second user meanwhile.
    deadline = time.monotonic() + 30
    while True:
        try:
            sub.lag
        except RuntimeError as e:
            assert "borrowed" in str(e)
            break
        assert time.monotonic() < deadline, "the thread never blocked in recv"
        time.sleep(0.001)
    pub.send(b"from the main thread")
    t.join(30)
    assert got == [b"from the main thread"]


def test_dropped_message_and_loan_are_released(name):
    import gc

    with memlane.Channel.create(name, capacity=8192, max_message=2048) as ch:
        sub = ch.subscriber()
        pub = ch.publisher()
        # A loan dropped without commit is discarded: the publisher can send.
        pub.loan(100)
        gc.collect()
        pub.send(b"after the dropped loan", timeout=1)
        assert sub.recv_bytes(timeout=1) == b"after the dropped loan"
        # A message object dropped while held is released (no error, and
        # the next receive works as usual).
        pub.send(b"d" * 2000, timeout=5)
        msg = sub.recv(timeout=5)
        del msg
        gc.collect()
        pub.send(b"next", timeout=5)
        assert sub.recv_bytes(timeout=5) == b"next"
