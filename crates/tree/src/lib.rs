//! Snapshots of a host's data tree on top of [`autosave_store`]: manifests, incremental change
//! detection, content-defined chunking, diff and restore.
//!
//! The principal types:
//!
//! - [`Node`]: one entry of the host's tree as handed in: a path of arbitrary keys, a kind, host
//!   [`Meta`]data, and content lent as bytes, read from a file, or streamed from a reader.
//! - [`write_snapshot`] with a [`ChangeCache`]: snapshots a tree, reading only the entries whose
//!   version token or file status changed, hashing and compressing in parallel, and returns a
//!   truthful [`Report`].
//! - [`Manifest`]: the sorted entries of a snapshot, stored as a blob; [`diff`] compares two.
//! - [`restore_dir`], [`snapshot_dir`] (with its [`DirWritten`]): directory trees in and out.
//!
//! ```
//! use autosave_store::{SnapshotKind, Store};
//! use autosave_tree::{ChangeCache, EntryPath, Node, SnapshotSpec, Token, read_content, write_snapshot};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = camino::Utf8Path::from_path(dir.path()).expect("UTF-8").join(".autosave");
//! let store = Store::open_or_create(&path)?;
//! let mut cache = ChangeCache::new();
//! let signal = vec![1u8; 200_000];
//! let nodes = [
//!     Node::bytes(EntryPath::new(["arrays", "signal"]), "ndarray", &signal).with_token(Token(1)),
//!     Node::bytes(EntryPath::new(["notes", "today"]), "note", b"fit looks good"),
//! ];
//! let spec = SnapshotSpec::new(SnapshotKind::Autosave);
//! let first = write_snapshot(&store, &mut cache, &nodes, &spec)?;
//! assert_eq!(first.report.hashed, 2);
//!
//! // Same tokens: the array is not read again, and the manifest is the same.
//! let again = write_snapshot(&store, &mut cache, &nodes, &spec)?;
//! assert_eq!(again.report.skipped_token, 1);
//! assert_eq!(again.manifest, first.manifest);
//!
//! let entry = again.entries.get(&EntryPath::new(["arrays", "signal"])).expect("entry");
//! assert_eq!(read_content(&store, &entry.content)?, signal);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod chunk;
mod diff;
mod dir;
mod error;
mod fsio;
mod ingest;
mod manifest;
mod meta;
mod node;
mod path;
mod progress;
mod read;
mod restore;
mod resync;
mod write;

pub use cache::{ChangeCache, FileStat, RACY_MARGIN_NS};
pub use diff::{Change, diff};
pub use dir::{
    DirWritten, KIND_DIR, KIND_FILE, KIND_SYMLINK, STORE_DIR_NAME, dir_nodes, snapshot_dir,
};
pub use error::{Error, Result};
pub use ingest::INLINE_MAX;
pub use manifest::{Chunk, Content, Manifest, ManifestEntry};
pub use meta::{Meta, MetaError};
pub use node::{Node, OpenReader, Source, Token};
pub use path::EntryPath;
pub use read::{ContentReader, load_manifest, read_content, snapshot_manifest};
pub use restore::{Durability, RestoreOptions, RestoreReport, check_restore, restore_dir};
pub use write::{EntryError, Report, SnapshotSpec, Written, write_snapshot};
