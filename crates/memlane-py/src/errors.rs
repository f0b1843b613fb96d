//! The Rust errors mapped to the exception classes of `memlane.errors`
//! (defined in Python, so that they can also derive from the built-in
//! exceptions a caller already catches: `TimeoutError`, `FileNotFoundError`…).

use memlane::{
    AccessError, CommitError, CreateError, GetError, JoinError, OpenError, RecvError,
    RecvTimeoutError, RemoveError, SendError, SendTimeoutError, SetError, TryRecvError,
    TrySendError,
};
use pyo3::PyErr;

pyo3::import_exception!(memlane.errors, Error);
pyo3::import_exception!(memlane.errors, InvalidName);
pyo3::import_exception!(memlane.errors, InvalidConfig);
pyo3::import_exception!(memlane.errors, NotFound);
pyo3::import_exception!(memlane.errors, AlreadyExists);
pyo3::import_exception!(memlane.errors, PermissionDenied);
pyo3::import_exception!(memlane.errors, NotReady);
pyo3::import_exception!(memlane.errors, Busy);
pyo3::import_exception!(memlane.errors, IncompatibleVersion);
pyo3::import_exception!(memlane.errors, InvalidSegment);
pyo3::import_exception!(memlane.errors, Corrupt);
pyo3::import_exception!(memlane.errors, NoSpace);
pyo3::import_exception!(memlane.errors, OutOfBounds);
pyo3::import_exception!(memlane.errors, ReadOnly);
pyo3::import_exception!(memlane.errors, IoError);
pyo3::import_exception!(memlane.errors, TooManyEndpoints);
pyo3::import_exception!(memlane.errors, Timeout);
pyo3::import_exception!(memlane.errors, Full);
pyo3::import_exception!(memlane.errors, Empty);
pyo3::import_exception!(memlane.errors, Disconnected);
pyo3::import_exception!(memlane.errors, Lagged);
pyo3::import_exception!(memlane.errors, TooLarge);
pyo3::import_exception!(memlane.errors, Closed);

/// The error's message followed by its sources' (`open /dev/shm/x failed:
/// No such file or directory`).
pub(crate) fn message(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A Rust error as a Python exception of the class that names its kind.
pub(crate) trait ToPyErr {
    /// The exception.
    fn py_err(self) -> PyErr;
}

impl ToPyErr for OpenError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            OpenError::InvalidName(_) => InvalidName::new_err(text),
            OpenError::NotFound { .. } => NotFound::new_err(text),
            OpenError::NotReady { .. } => NotReady::new_err(text),
            OpenError::PermissionDenied { .. } | OpenError::ForeignOwner { .. } => {
                PermissionDenied::new_err(text)
            }
            OpenError::Busy { .. } => Busy::new_err(text),
            OpenError::IncompatibleVersion { .. } => IncompatibleVersion::new_err(text),
            OpenError::Corrupt { .. } | OpenError::SizeMismatch { .. } => Corrupt::new_err(text),
            OpenError::NotMemlane { .. }
            | OpenError::WrongKind { .. }
            | OpenError::Symlink { .. }
            | OpenError::HardLinked { .. }
            | OpenError::NotAFile { .. } => InvalidSegment::new_err(text),
            OpenError::ViewOutOfBounds { .. } => OutOfBounds::new_err(text),
            OpenError::Io { .. } => IoError::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for CreateError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            CreateError::InvalidName(_) => InvalidName::new_err(text),
            CreateError::AlreadyExists { .. } => AlreadyExists::new_err(text),
            CreateError::InvalidConfig { .. } => InvalidConfig::new_err(text),
            CreateError::NoDirectory { .. } => NotFound::new_err(text),
            CreateError::PermissionDenied { .. } => PermissionDenied::new_err(text),
            CreateError::NoSpace { .. } => NoSpace::new_err(text),
            CreateError::Open(inner) => {
                let err = (*inner).py_err();
                // Keep the class of the open failure, with this message.
                let _ = text;
                err
            }
            CreateError::Io { .. } => IoError::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for RemoveError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            RemoveError::InvalidName(_) => InvalidName::new_err(text),
            RemoveError::NotFound { .. } => NotFound::new_err(text),
            RemoveError::Io { .. } => IoError::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for AccessError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            AccessError::OutOfBounds { .. } => OutOfBounds::new_err(text),
            AccessError::ReadOnly => ReadOnly::new_err(text),
            AccessError::Flush(_) => IoError::new_err(text),
            AccessError::Truncated => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for JoinError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            JoinError::TooManyPublishers { .. }
            | JoinError::TooManySubscribers { .. }
            | JoinError::SlotsLocked { .. } => TooManyEndpoints::new_err(text),
            JoinError::Corrupt(_) => Corrupt::new_err(text),
            JoinError::Evicted { .. } => Busy::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for SendError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            SendError::TooLarge { .. } => TooLarge::new_err(text),
            SendError::Corrupt(_) => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for TrySendError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            TrySendError::Full => Full::new_err(text),
            TrySendError::TooLarge { .. } => TooLarge::new_err(text),
            TrySendError::Corrupt(_) => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for SendTimeoutError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            SendTimeoutError::Timeout => Timeout::new_err(text),
            SendTimeoutError::TooLarge { .. } => TooLarge::new_err(text),
            SendTimeoutError::Corrupt(_) => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for CommitError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            CommitError::TooLong { .. } => TooLarge::new_err(text),
            CommitError::Corrupt(_) => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for RecvError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            RecvError::Disconnected => Disconnected::new_err(text),
            RecvError::Corrupt(_) => Corrupt::new_err(text),
            RecvError::Lagged(lag) => Lagged::new_err((text, lag.messages(), lag.bytes())),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for TryRecvError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            TryRecvError::Empty => Empty::new_err(text),
            TryRecvError::Disconnected => Disconnected::new_err(text),
            TryRecvError::Corrupt(_) => Corrupt::new_err(text),
            TryRecvError::Lagged(lag) => Lagged::new_err((text, lag.messages(), lag.bytes())),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for RecvTimeoutError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            RecvTimeoutError::Timeout => Timeout::new_err(text),
            RecvTimeoutError::Disconnected => Disconnected::new_err(text),
            RecvTimeoutError::Corrupt(_) => Corrupt::new_err(text),
            RecvTimeoutError::Lagged(lag) => Lagged::new_err((text, lag.messages(), lag.bytes())),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for SetError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            SetError::TooLarge { .. } => TooLarge::new_err(text),
            SetError::NoWriterSlot { .. } => TooManyEndpoints::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for GetError {
    fn py_err(self) -> PyErr {
        let text = message(&self);
        match self {
            GetError::Corrupt { .. } => Corrupt::new_err(text),
            _ => Error::new_err(text),
        }
    }
}

impl ToPyErr for std::io::Error {
    fn py_err(self) -> PyErr {
        IoError::new_err(message(&self))
    }
}

/// The exception for a handle used after `close()`.
pub(crate) fn closed(what: &str) -> PyErr {
    Closed::new_err(format!("this {what} was closed"))
}
