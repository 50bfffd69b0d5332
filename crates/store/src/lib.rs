//! A content-addressed, deduplicated, compressed blob store with a SQLite index, built so that
//! nothing acknowledged is ever lost and no read ever returns wrong bytes.
//!
//! The principal types:
//!
//! - [`Store`]: a handle to a store directory (`.autosave/`): open or create it, read blobs,
//!   list and delete snapshots, [`Store::gc`], [`Store::verify`], [`Store::stats`].
//! - [`Batch`]: puts blobs (deduplicated by [`Digest`], compressed with zstd when it pays, numeric
//!   arrays as byte planes when that compresses better) and commits them together with one
//!   snapshot record, durably, in one transaction.
//! - [`Digest`]: a blob's identity, the XXH3-128 (or, in strong mode, BLAKE3-256) hash of its
//!   uncompressed bytes. Every read re-hashes what it returns.
//! - [`NewSnapshot`] / [`SnapshotInfo`]: a snapshot to commit, and one that was committed.
//!
//! Long operations report how far they have come to a [`Progress`] callback
//! ([`Store::verify_with`], [`GcOptions::progress`]).
//!
//! Blobs up to [`Options::inline_limit`] live inside the index; larger ones are files
//! `objects/<2 hex>/<hex digest>`, written once and never rewritten. The format and the commit
//! protocol, with what is on disk after a crash at each step, are in the project's
//! `docs/design.md`.
//!
//! ```
//! use autosave_store::{NewSnapshot, SnapshotKind, Store};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = camino::Utf8Path::from_path(dir.path()).expect("temp dirs are UTF-8").join(".autosave");
//! let store = Store::open_or_create(&path)?;
//!
//! let batch = store.batch()?;
//! let array = batch.put(&vec![7u8; 100_000])?.digest;
//! let manifest = batch.put_file(b"my manifest naming the array")?.digest;
//! let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, manifest);
//! snapshot.refs.push(array);
//! let commit = batch.commit(snapshot)?;
//!
//! // Storing the same bytes again writes nothing.
//! let again = store.batch()?;
//! assert!(!again.put(&vec![7u8; 100_000])?.new);
//! drop(again);
//!
//! let reopened = Store::open(&path)?;
//! assert_eq!(reopened.get(&array)?.as_deref(), Some(&vec![7u8; 100_000][..]));
//! assert_eq!(reopened.latest()?.map(|s| s.id), Some(commit.id));
//! assert!(reopened.verify(true)?.is_clean());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod codec;
mod digest;
mod error;
mod flush;
mod format;
mod gc;
mod index;
mod lock;
mod planes;
mod progress;
mod rebuild;
mod seeded;
mod snapshot;
mod stats;
mod store;
mod verify;
pub mod vfs;

pub use batch::{Batch, BatchStats, Commit, Put};
pub use codec::ZSTD_WINDOW_LOG;
pub use digest::{Digest, HashAlgo, Hasher};
pub use error::{Error, GcRefusal, Result};
pub use format::{ChunkParams, FORMAT_VERSION, StoreFormat};
pub use gc::{GcOptions, GcReport, UnindexedRecords};
pub use progress::{Meter, Progress, ProgressEvent};
pub use rebuild::{RebuildReport, RefsOf};
pub use snapshot::{NewSnapshot, SnapshotId, SnapshotInfo, SnapshotKind, now_ns};
pub use stats::Stats;
pub use store::{Options, Reader, Store};
pub use verify::{BlobRepair, Damage, Problem, VerifyReport};
pub use vfs::{StdFs, Vfs};

#[cfg(feature = "seeded-bugs")]
pub use seeded::{SeededBug, set_seeded_bug};
