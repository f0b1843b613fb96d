"""memlane: fast, safe inter-process communication over named shared memory.

* :class:`Segment` — a named shared-memory region (buffer protocol: zero-copy
  ``memoryview(seg)`` and ``numpy.frombuffer(seg, ...)``).
* :class:`Event` — a named cross-process "data ready" signal.
* :class:`Channel` — publishers and subscribers exchanging variable-length
  messages through a ring, nothing lost (:class:`Publisher`,
  :class:`Subscriber`, :class:`Message`, :class:`Loan`).
* :class:`Latest` — a named slot holding the newest value of something.

Every blocking call takes ``timeout`` (seconds, ``None`` for no limit),
releases the GIL while it waits and raises ``KeyboardInterrupt`` on Ctrl-C.
In asyncio code, ``await sub.recv_async()``, ``async for msg in sub``,
``await pub.send_async(data)`` and ``await latest.wait_async()`` wait
without blocking the event loop (woken by memlane's reactor thread).
Failures raise subclasses of :class:`memlane.errors.Error`.

>>> import memlane
>>> with memlane.Channel.create("py-doc") as ch:
...     sub = ch.subscriber()
...     ch.publisher().send(b"hello")
...     with sub.recv(timeout=1.0) as msg:
...         bytes(msg.view)
b'hello'
"""

from . import errors
from ._memlane import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_MESSAGE,
    Channel,
    Event,
    Latest,
    Loan,
    Message,
    Publisher,
    Segment,
    Subscriber,
    default_dir,
    reactor_threads,
)
from .errors import (
    AlreadyExists,
    Busy,
    Closed,
    Corrupt,
    Disconnected,
    Empty,
    Error,
    Full,
    IncompatibleVersion,
    InvalidConfig,
    InvalidName,
    InvalidSegment,
    IoError,
    Lagged,
    NoSpace,
    NotFound,
    NotReady,
    OutOfBounds,
    PermissionDenied,
    ReadOnly,
    Timeout,
    TooLarge,
    TooManyEndpoints,
    WouldBlock,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_MESSAGE",
    "Channel",
    "Event",
    "Latest",
    "Loan",
    "Message",
    "Publisher",
    "Segment",
    "Subscriber",
    "default_dir",
    "errors",
    "reactor_threads",
    *errors.__all__,
]
