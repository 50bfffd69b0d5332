//! The tree crate's one error type.

use std::path::PathBuf;

use autosave_store::Digest;

use crate::path::EntryPath;

/// Everything that can go wrong building, reading or restoring tree snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the store underneath.
    #[error(transparent)]
    Store(#[from] autosave_store::Error),
    /// A manifest blob that does not decode.
    #[error("damaged manifest: {reason}")]
    BadManifest {
        /// What is wrong.
        reason: String,
    },
    /// A snapshot's manifest blob is not in the store.
    #[error("manifest {digest} is not in the store")]
    MissingManifest {
        /// The manifest's digest.
        digest: Digest,
    },
    /// A blob that a manifest references is not in the store.
    #[error("blob {digest} is not in the store")]
    MissingBlob {
        /// The blob.
        digest: Digest,
    },
    /// Two entries with the same path.
    #[error("two entries have the path {path}")]
    DuplicatePath {
        /// The path.
        path: EntryPath,
    },
    /// Text that is not a path (a trailing lone `\`).
    #[error("not an entry path: {text:?}")]
    BadPath {
        /// The text.
        text: String,
    },
    /// No entry at that path in the snapshot.
    #[error("no entry {path} in the snapshot")]
    NoSuchEntry {
        /// The path.
        path: EntryPath,
    },
    /// Metadata text that is not JSON.
    #[error("bad metadata: {reason}")]
    BadMeta {
        /// What is wrong.
        reason: String,
    },
    /// A restore refused a path that would escape its target or cannot be a file name.
    #[error("refusing to restore {path}: {reason}")]
    UnsafePath {
        /// The entry's path.
        path: EntryPath,
        /// Why.
        reason: &'static str,
    },
    /// A restore into a target that holds files found one in the way, before writing anything:
    /// a file or symlink where the snapshot has a directory, or a directory where it has a
    /// file.
    #[error("cannot restore over {}: {reason}; nothing was written", path.display())]
    RestoreConflict {
        /// The path in the target.
        path: PathBuf,
        /// What is in the way.
        reason: &'static str,
    },
    /// A restore target that already holds files.
    #[error("restore target {path} is not empty")]
    TargetNotEmpty {
        /// The target directory.
        path: PathBuf,
    },
    /// An operating-system I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The tree crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
