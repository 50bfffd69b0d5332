//! Comparing two snapshots' manifests.

use std::cmp::Ordering;

use crate::manifest::{Manifest, ManifestEntry};
use crate::path::EntryPath;

/// How one path differs between two manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Only in the second manifest.
    Added {
        /// The entry's path.
        path: EntryPath,
        /// Its length.
        len: u64,
    },
    /// Only in the first.
    Removed {
        /// The entry's path.
        path: EntryPath,
        /// Its length.
        len: u64,
    },
    /// In both, but different.
    Modified {
        /// The entry's path.
        path: EntryPath,
        /// Length in the first manifest.
        old_len: u64,
        /// Length in the second.
        new_len: u64,
        /// Whether the bytes differ.
        content: bool,
        /// Whether the kind or the metadata differ.
        meta: bool,
    },
}

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &EntryPath {
        match self {
            Self::Added { path, .. } | Self::Removed { path, .. } | Self::Modified { path, .. } => {
                path
            }
        }
    }
}

/// The changes that turn `a` into `b`, in path order. Empty when `a == b`.
pub fn diff(a: &Manifest, b: &Manifest) -> Vec<Change> {
    let (mut x, mut y) = (a.entries().iter().peekable(), b.entries().iter().peekable());
    let mut out = Vec::new();
    loop {
        let order = match (x.peek(), y.peek()) {
            (None, None) => return out,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(p), Some(q)) => p.path.cmp(&q.path),
        };
        match order {
            Ordering::Less => out.push(removed(x.next().expect("peeked"))),
            Ordering::Greater => out.push(added(y.next().expect("peeked"))),
            Ordering::Equal => {
                let (p, q) = (x.next().expect("peeked"), y.next().expect("peeked"));
                out.extend(modified(p, q));
            }
        }
    }
}

fn removed(e: &ManifestEntry) -> Change {
    Change::Removed {
        path: e.path.clone(),
        len: e.content.len(),
    }
}

fn added(e: &ManifestEntry) -> Change {
    Change::Added {
        path: e.path.clone(),
        len: e.content.len(),
    }
}

fn modified(p: &ManifestEntry, q: &ManifestEntry) -> Option<Change> {
    let content = p.content != q.content;
    let meta = p.kind != q.kind || p.meta != q.meta;
    (content || meta).then(|| Change::Modified {
        path: p.path.clone(),
        old_len: p.content.len(),
        new_len: q.content.len(),
        content,
        meta,
    })
}
