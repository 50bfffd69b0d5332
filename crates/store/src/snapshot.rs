//! Snapshot records: what a committed snapshot is, and what a caller gives to commit one.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::Digest;

/// A snapshot's number in its store. Ids only grow; a deleted id is never reused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SnapshotId(pub u64);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SnapshotId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Why a snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum SnapshotKind {
    /// Taken by the autosave timer; superseded by the next explicit save.
    Autosave,
    /// The user saved: a baseline.
    Explicit,
}

impl SnapshotKind {
    /// The name stored in the index.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Autosave => "autosave",
            Self::Explicit => "explicit",
        }
    }

    /// Parses a name written by [`SnapshotKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "autosave" => Some(Self::Autosave),
            "explicit" => Some(Self::Explicit),
            _ => None,
        }
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot to commit: its root (the manifest blob) and every blob it references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSnapshot {
    /// Why it was taken.
    pub kind: SnapshotKind,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: i64,
    /// The blob that describes the snapshot (for the tree crate, its manifest).
    pub manifest: Digest,
    /// The snapshot this one was derived from, if any.
    pub parent: Option<SnapshotId>,
    /// A short host-chosen label.
    pub label: String,
    /// Host metadata, conventionally JSON.
    pub meta: String,
    /// Every blob the snapshot needs besides the manifest. Garbage collection keeps exactly
    /// these (and the manifests) alive, so leaving one out lets GC delete it.
    pub refs: Vec<Digest>,
}

impl NewSnapshot {
    /// A snapshot of `kind` rooted at `manifest`, created now, with no parent, label, meta or
    /// other references.
    pub fn new(kind: SnapshotKind, manifest: Digest) -> Self {
        Self {
            kind,
            created_ns: now_ns(),
            manifest,
            parent: None,
            label: String::new(),
            meta: String::new(),
            refs: Vec::new(),
        }
    }
}

/// A committed snapshot as listed by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// Its id.
    pub id: SnapshotId,
    /// Why it was taken.
    pub kind: SnapshotKind,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: i64,
    /// Its root blob.
    pub manifest: Digest,
    /// The snapshot it was derived from.
    pub parent: Option<SnapshotId>,
    /// Host label.
    pub label: String,
    /// Host metadata.
    pub meta: String,
    /// The snapshot record blob, a self-describing copy of this row kept as a file so that a
    /// lost index can be rebuilt.
    pub record: Digest,
}

/// The snapshot record blob's payload (postcard), kept beside the index row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RecordV1 {
    pub(crate) kind: SnapshotKind,
    pub(crate) created_ns: i64,
    pub(crate) manifest: Digest,
    pub(crate) parent: Option<SnapshotId>,
    pub(crate) label: String,
    pub(crate) meta: String,
    /// Distinguishes two otherwise identical records so each snapshot has its own blob.
    pub(crate) nonce: u64,
}

impl RecordV1 {
    /// The snapshot this record describes, referencing `refs`, as a rebuild or an adoption
    /// lists it again (without a parent: its id is not kept).
    pub(crate) fn snapshot(&self, refs: Vec<Digest>) -> NewSnapshot {
        let mut snapshot = NewSnapshot::new(self.kind, self.manifest);
        snapshot.created_ns = self.created_ns;
        snapshot.label.clone_from(&self.label);
        snapshot.meta.clone_from(&self.meta);
        snapshot.refs = refs;
        snapshot
    }
}

/// Nanoseconds since the Unix epoch, saturating; a clock before 1970 reads as 0.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
