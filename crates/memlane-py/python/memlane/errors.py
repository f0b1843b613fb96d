"""The exceptions memlane raises: one class per failure a caller would catch.

Every one derives from :class:`Error`; where a built-in exception means the
same thing, the class derives from it too (``Timeout`` is a ``TimeoutError``,
``NotFound`` a ``FileNotFoundError``...), so code that already catches those
keeps working.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InvalidName",
    "InvalidConfig",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "NotReady",
    "Busy",
    "IncompatibleVersion",
    "InvalidSegment",
    "Corrupt",
    "NoSpace",
    "OutOfBounds",
    "ReadOnly",
    "IoError",
    "TooManyEndpoints",
    "Timeout",
    "WouldBlock",
    "Full",
    "Empty",
    "Disconnected",
    "Lagged",
    "TooLarge",
    "Closed",
]


class Error(Exception):
    """Base class of every memlane error."""


class InvalidName(Error, ValueError):
    """The name is empty, too long, or has characters other than ASCII
    letters, digits, '.', '_' and '-'."""


class InvalidConfig(Error, ValueError):
    """A size or count given at creation is out of range."""


class NotFound(Error, FileNotFoundError):
    """Nothing of that kind exists under that name (see ``memlane list``)."""


class AlreadyExists(Error, FileExistsError):
    """The name is taken: remove it first, or open it instead."""


class PermissionDenied(Error, PermissionError):
    """The file's mode or owner does not let this process use it."""


class NotReady(Error):
    """Its creator is still building it (or died doing so): retry shortly."""


class Busy(Error):
    """The object is in use in a way that excludes this call (an outstanding
    loan, a join cut short): finish the other use, or retry."""


class IncompatibleVersion(Error):
    """The file was made by a memlane with another format version."""


class InvalidSegment(Error):
    """The file at that name is not a memlane object of the kind asked for."""


class Corrupt(InvalidSegment):
    """Shared state broke the format (a process that does not follow it
    wrote there, or the file was truncated): remove and re-create it."""


class NoSpace(Error, OSError):
    """The file system has no room for the segment."""


class OutOfBounds(Error, IndexError):
    """An offset/length lies outside the segment's view."""


class ReadOnly(Error):
    """A write to a segment opened read-only."""


class IoError(Error, OSError):
    """A system call failed (the message names it and the file)."""


class TooManyEndpoints(Error):
    """Every publisher, subscriber or writer slot is taken."""


class Timeout(Error, TimeoutError):
    """A blocking call's ``timeout`` passed first."""


class WouldBlock(Error):
    """A non-blocking call (``try_*``) could not proceed now."""


class Full(WouldBlock):
    """The channel is full: the slowest subscriber is a whole ring behind."""


class Empty(WouldBlock):
    """No message is waiting."""


class Disconnected(Error):
    """Every publisher has left the channel and everything was received."""


class TooLarge(Error, ValueError):
    """The message or value is longer than the channel's/slot's maximum."""


class Closed(Error, ValueError):
    """The handle was closed, or the message/loan was already released."""


class Lagged(Error):
    """A lossy subscriber was lapped: publishers overwrote messages it had
    not read yet. ``messages`` and ``bytes`` say how much it lost (the byte
    count is exact; the message count is exact unless publishers commit
    without a pause while it is taken). Receive again: it goes on from the
    oldest message still in the ring."""

    def __init__(self, message: str, messages: int = 0, bytes: int = 0) -> None:
        super().__init__(message)
        #: Messages lost in this lap.
        self.messages = messages
        #: Ring bytes lost in this lap.
        self.bytes = bytes
