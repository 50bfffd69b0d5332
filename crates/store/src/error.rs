//! The store's one error type.

use camino::Utf8PathBuf;

use crate::digest::Digest;
use crate::snapshot::SnapshotId;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no store at the path (no `FORMAT` file, or no directory at all).
    #[error("no autosave store at {path}")]
    NoStore {
        /// The store directory that was asked for.
        path: Utf8PathBuf,
    },
    /// The directory exists and holds other files, but it is not a store.
    #[error("{path} is not an autosave store (it has files but no FORMAT)")]
    NotAStore {
        /// The directory.
        path: Utf8PathBuf,
    },
    /// The store's `FORMAT` file is gone, but its blob files are there: a store whose
    /// configuration was lost, not an interrupted creation (which writes `FORMAT` before any
    /// blob). Opening with [`crate::Options::create`] refuses too, rather than make a new store
    /// over the old data (with another id and perhaps another hash, its blobs would read as
    /// damaged).
    #[error(
        "store {path} holds blob files but its FORMAT file is missing; put FORMAT back from a \
         backup (a new store is not created over existing data)"
    )]
    MissingFormat {
        /// The store directory.
        path: Utf8PathBuf,
    },
    /// The store was written by a newer version of this library.
    #[error("store {path} has format version {found}; this build reads up to {supported}")]
    NewerFormat {
        /// The `FORMAT` file.
        path: Utf8PathBuf,
        /// The version found on disk.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// `FORMAT` exists but cannot be parsed or fails its checksum.
    #[error("damaged FORMAT file {path}: {reason}")]
    BadFormat {
        /// The `FORMAT` file.
        path: Utf8PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Creation options that cannot make a usable store.
    #[error("invalid store options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// An operating-system I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("create", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory involved.
        path: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error from the SQLite index.
    #[error("index {op}: {source}")]
    Index {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A blob's stored bytes do not decode to the bytes its digest names.
    #[error("corrupt blob {digest} at {location}: {reason}")]
    Corrupt {
        /// The blob.
        digest: Digest,
        /// Where it lives: a file path or `index.sqlite`.
        location: Utf8PathBuf,
        /// What is wrong (bad header, checksum mismatch, truncated, ...).
        reason: String,
    },
    /// The index names a blob whose file is gone.
    #[error("missing blob {digest}: {location} does not exist")]
    Missing {
        /// The blob.
        digest: Digest,
        /// Where its file should be.
        location: Utf8PathBuf,
    },
    /// A damaged snapshot record or index row.
    #[error("damaged index: {reason}")]
    DamagedIndex {
        /// What is wrong.
        reason: String,
    },
    /// A digest of the other algorithm, or text that is no digest.
    #[error("not a digest: {text:?}")]
    BadDigest {
        /// The offending input.
        text: String,
    },
    /// A digest made with another algorithm than the store's.
    #[error("digest {digest} does not belong to this store (it uses {expected})")]
    WrongAlgo {
        /// The digest.
        digest: Digest,
        /// The store's algorithm name.
        expected: &'static str,
    },
    /// No snapshot with that id.
    #[error("no snapshot {id}")]
    UnknownSnapshot {
        /// The id asked for.
        id: SnapshotId,
    },
    /// A snapshot references a blob that is not in the index.
    #[error("snapshot references blob {digest} which is not stored")]
    DanglingReference {
        /// The blob.
        digest: Digest,
    },
    /// The exclusive lock is held elsewhere (a writer or reader is active; for
    /// [`crate::Store::rebuild_index`], any open handle).
    #[error("store {path} is busy: another process is using it")]
    Busy {
        /// The lock file: `LOCK`, or `OPEN` for a rebuild.
        path: Utf8PathBuf,
    },
    /// Garbage collection refused to run because it would be unsafe.
    #[error("gc refused: {reason}")]
    GcRefused {
        /// Why.
        reason: GcRefusal,
    },
}

/// Why garbage collection would not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GcRefusal {
    /// Referenced blobs are missing: sweeping now could destroy the evidence needed for repair.
    #[error("{count} referenced blob(s) are missing, first {first}; run verify and repair first")]
    MissingBlobs {
        /// How many.
        count: usize,
        /// The first one found.
        first: Digest,
    },
    /// Snapshot record files have no index row: the index may have lost those snapshots, and
    /// [`crate::Store::rebuild_index`] would bring them back. Collect with
    /// [`crate::UnindexedRecords::Delete`] to delete them instead.
    #[error(
        "{count} snapshot record(s) are not in the index, first {first} (snapshots the index \
         lost, or commits that were interrupted); rebuild the index to bring them back, or \
         collect with them deleted"
    )]
    UnindexedSnapshots {
        /// How many.
        count: usize,
        /// The first one, by digest.
        first: Digest,
    },
    /// No snapshot is left, so every blob would be deleted.
    #[error("it would delete every blob ({blobs} blobs, no snapshot left)")]
    WouldDeleteEverything {
        /// How many blobs there are.
        blobs: u64,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<Utf8PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An index error from SQLite; one that says the index file is damaged is
    /// [`Error::DamagedIndex`] (the store's own data is intact, and a rebuild makes a new index).
    pub(crate) fn index(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                Self::DamagedIndex {
                    reason: format!("{op}: {source}"),
                }
            }
            _ => Self::Index { op, source },
        }
    }
}
