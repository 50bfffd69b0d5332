//! Finding orphaned sessions: stores under a base directory that no live process holds.

use std::path::Path;

use autosave_store::{Store, now_ns};
use camino::{Utf8Path, Utf8PathBuf};

use crate::claim::Claim;
use crate::error::{Error, Result};
use crate::session::{Options, SaveReport, Session};

/// A store that no live session holds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Orphan {
    /// The store directory.
    pub store_dir: Utf8PathBuf,
    /// When its newest snapshot was taken, ns since the epoch (`None`: no snapshot).
    pub newest_ns: Option<i64>,
    /// Bytes its blobs take on disk.
    pub stored_bytes: u64,
    /// Whether it holds an autosave newer than, and different from, its last explicit save.
    pub recoverable: bool,
}

impl Orphan {
    /// How long ago its newest snapshot was taken, in ns.
    pub fn age_ns(&self) -> Option<i64> {
        self.newest_ns.map(|t| now_ns().saturating_sub(t))
    }

    /// Discards its recoverable autosaves, after taking the store's claim (so a session that
    /// came alive since the scan is never disturbed: that gives [`Error::Locked`]).
    pub fn discard(&self) -> Result<Option<SaveReport>> {
        let options = Options {
            store_dir: Some(self.store_dir.clone()),
            ..Options::default()
        };
        let mut session = Session::open(&self.store_dir, options)?;
        match session.recovery()? {
            Some(recovery) => session.discard(&recovery).map(Some),
            None => Ok(None),
        }
    }
}

/// Lists orphaned stores at `base` and in the directories directly below it (each either a
/// store itself or a project holding `.autosave/`). Stores held by a live session are skipped.
pub fn scan(base: impl AsRef<Utf8Path>) -> Result<Vec<Orphan>> {
    let base = base.as_ref();
    let mut candidates = vec![base.to_owned(), base.join(autosave_tree::STORE_DIR_NAME)];
    let entries = std::fs::read_dir(base).map_err(|e| Error::Io {
        op: "list",
        path: base.to_owned(),
        source: e,
    })?;
    for entry in entries.flatten() {
        if let Ok(path) = Utf8PathBuf::try_from(entry.path()) {
            candidates.push(path.join(autosave_tree::STORE_DIR_NAME));
            candidates.push(path);
        }
    }
    let mut out = Vec::new();
    for dir in candidates {
        if is_store(&dir) && Claim::is_held(&dir)?.is_none() {
            out.push(describe(&dir)?);
        }
    }
    out.sort_by(|a, b| a.store_dir.cmp(&b.store_dir));
    out.dedup_by(|a, b| a.store_dir == b.store_dir);
    Ok(out)
}

fn is_store(dir: &Utf8Path) -> bool {
    Path::new(dir.as_str()).join("FORMAT").is_file()
}

fn describe(dir: &Utf8Path) -> Result<Orphan> {
    let options = Options {
        store_dir: Some(dir.to_owned()),
        read_only: true,
        ..Options::default()
    };
    let session = Session::open(dir, options)?;
    let store: &Store = session.store();
    Ok(Orphan {
        store_dir: dir.to_owned(),
        newest_ns: store.latest()?.map(|s| s.created_ns),
        stored_bytes: store.stats()?.stored_bytes,
        recoverable: session.recovery()?.is_some(),
    })
}
