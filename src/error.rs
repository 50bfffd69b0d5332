//! The host-facing library's one error type.

use camino::Utf8PathBuf;

use crate::claim::Holder;

/// Everything a session can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the store.
    #[error(transparent)]
    Store(#[from] autosave_store::Error),
    /// From the tree layer.
    #[error(transparent)]
    Tree(#[from] autosave_tree::Error),
    /// Another live session holds the store.
    #[error("store {path} is in use by {holder}")]
    Locked {
        /// The store directory.
        path: Utf8PathBuf,
        /// Who holds it, as far as it said.
        holder: Holder,
    },
    /// A write was asked of a read-only session.
    #[error("this session is read-only")]
    ReadOnly,
    /// The options given to [`crate::Session::open`] make no sense.
    #[error("invalid session options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// The [`crate::Driver`]'s loop is gone (it stopped, or its thread panicked).
    #[error("the autosave driver has stopped")]
    DriverStopped,
    /// An operating-system I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}
