import subprocess
import sys

import numpy as np
import pytest

import memlane
from conftest import run_python


def test_create_open_read_write(name):
    with memlane.Segment.create(name, 4096) as seg:
        assert len(seg) == 4096
        assert seg.name == name
        assert seg.access == "rw"
        seg.write(10, b"hello")
        with memlane.Segment.open(name) as other:
            assert other.read(10, 5) == b"hello"
            assert other.read(4090) == b"\0" * 6
    memlane.Segment.remove(name)
    with pytest.raises(memlane.NotFound):
        memlane.Segment.open(name)


def test_already_exists_and_bad_name(name):
    with memlane.Segment.create(name, 4096):
        with pytest.raises(memlane.AlreadyExists) as e:
            memlane.Segment.create(name, 4096)
        assert isinstance(e.value, FileExistsError)
        assert "memlane rm" in str(e.value)
    with pytest.raises(memlane.InvalidName):
        memlane.Segment.create("bad/name", 4096)


def test_out_of_bounds_and_read_only(name):
    with memlane.Segment.create(name, 4096) as seg:
        with pytest.raises(memlane.OutOfBounds):
            seg.write(4095, b"xy")
        with memlane.Segment.open(name, "ro") as ro:
            with pytest.raises(memlane.ReadOnly):
                ro.write(0, b"x")
            view = memoryview(ro)
            assert view.readonly
            with pytest.raises(TypeError):
                view[0] = 1
            arr = np.frombuffer(ro, dtype=np.uint8)
            assert not arr.flags.writeable
            del arr
            view.release()


def test_memoryview_and_numpy_are_zero_copy(name):
    with memlane.Segment.create(name, 4096) as seg:
        arr = np.frombuffer(seg, dtype=np.uint32)
        arr[0] = 0xDEADBEEF
        assert seg.read(0, 4) == (0xDEADBEEF).to_bytes(4, sys.byteorder)
        view = seg.view
        view[8:11] = b"abc"
        assert bytes(arr[2:3].tobytes())[:3] == b"abc"
        # exported: close refuses until the numpy array is gone
        with pytest.raises(BufferError):
            seg.close()
        del arr
        seg.close()  # releases `view` (made by seg.view)
        with pytest.raises(ValueError):
            view[0]


def test_copy_on_write_is_private(name):
    with memlane.Segment.create(name, 4096) as seg:
        with memlane.Segment.open(name, "cow") as cow:
            memoryview(cow)[0:2] = b"zz"
            assert cow.read(0, 2) == b"zz"
            assert seg.read(0, 2) == b"\0\0"


def test_view_sees_writes_of_another_process(name):
    with memlane.Segment.create(name, 4096) as seg:
        view = memoryview(seg)
        child = run_python(
            "import memlane, sys\n"
            "with memlane.Segment.open(sys.argv[1]) as s:\n"
            "    s.write(100, b'from another process')\n",
            name,
        )
        assert child.wait(timeout=30) == 0
        assert bytes(view[100:120]) == b"from another process"
        view.release()


def test_partial_view(name):
    with memlane.Segment.create(name, 8192) as seg:
        seg.write(4096, b"second page")
        with memlane.Segment.open(name, "ro", offset=4096, length=4096) as part:
            assert part.view_offset == 4096
            assert len(part) == 4096
            assert part.read(0, 11) == b"second page"


def test_closed_segment_raises(name):
    seg = memlane.Segment.create(name, 4096)
    seg.close()
    assert seg.closed
    with pytest.raises(memlane.Closed):
        len(seg)
