//! [`ChangeCache`]: what the last snapshot saw for each path, so the next one reads only what
//! changed.
//!
//! For each path the cache keeps the host's version token or a file's status (size, mtime, inode,
//! ctime, device), and the content as stored. A hit is used only if the store still holds every
//! blob of that content, so a cache can never make a snapshot reference bytes its store lacks
//! (after GC, or when the host points the session at another store).
//!
//! **Racy clean files.** A file modified within the same timestamp tick as the snapshot that
//! read it can change again without changing its status. As git's index does, a file whose mtime
//! is not comfortably older than the moment its status was recorded is never trusted from the
//! cache: it is read again (cheaply: the store dedupes it) until it has been quiet for
//! [`RACY_MARGIN_NS`].

use std::collections::HashMap;
use std::sync::Arc;

use autosave_store::Digest;

use crate::manifest::{Content, Manifest};
use crate::node::Token;
use crate::path::EntryPath;

/// How much older than the recording time a file's mtime must be to trust its status. Covers
/// coarse filesystem clocks (a jiffy on Linux, 2 s on FAT).
pub const RACY_MARGIN_NS: i64 = 2_000_000_000;

/// A file's status as far as change detection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status-change time, ns since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
}

impl FileStat {
    /// The status of `meta`.
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// The status of `meta`.
    #[cfg(not(unix))]
    pub fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        Self {
            size: meta.len(),
            mtime_ns,
            ctime_ns: 0,
            ino: 0,
            dev: 0,
        }
    }
}

/// What one path looked like when last snapshotted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cached {
    pub(crate) token: Option<Token>,
    pub(crate) stat: Option<FileStat>,
    /// When the status was taken (before the content was read), ns since the epoch.
    pub(crate) recorded_ns: i64,
    /// The digest of the whole content, for content large enough to be chunked: equal bytes
    /// then reuse the chunk list without chunking again.
    pub(crate) whole: Option<Digest>,
    pub(crate) kind: String,
    pub(crate) meta: String,
    pub(crate) content: Content,
}

/// Per-path memory of the last snapshot, bound to one store.
#[derive(Clone, Debug, Default)]
pub struct ChangeCache {
    store_id: Option<u128>,
    entries: HashMap<EntryPath, Cached>,
    /// The manifest the entries make up, as last written.
    last: Option<(Digest, Arc<Manifest>)>,
    /// The entries changed since the cache was decoded (or made).
    changed: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Persisted {
    version: u8,
    store_id: u128,
    entries: Vec<(EntryPath, Cached)>,
}

impl ChangeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of paths remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.changed |= !self.entries.is_empty();
        self.entries.clear();
        self.last = None;
    }

    /// Whether the entries changed since [`ChangeCache::decode`] made the cache: when they did
    /// not, its encoding is the one it was decoded from, and need not be saved again.
    pub fn changed_since_decode(&self) -> bool {
        self.changed
    }

    /// Binds the cache to a store; if it was bound to another one, everything is forgotten.
    pub fn bind(&mut self, store_id: u128) {
        if self.store_id != Some(store_id) {
            self.changed = true;
            self.entries.clear();
            self.last = None;
            self.store_id = Some(store_id);
        }
    }

    /// Remembers the manifest's content for each path whose current token the host knows
    /// (`token_of`): for a host that has just loaded or restored that snapshot, so that its
    /// first autosave reads nothing the snapshot already holds.
    pub fn seed(&mut self, manifest: &Manifest, token_of: impl Fn(&EntryPath) -> Option<Token>) {
        self.changed = true;
        // The entries no longer make up the last manifest exactly: were it kept, a tree of as
        // many hits as that manifest has entries would be taken for it.
        self.last = None;
        for entry in manifest.entries() {
            if let Some(token) = token_of(&entry.path) {
                let cached = Cached {
                    token: Some(token),
                    stat: None,
                    recorded_ns: 0,
                    whole: None,
                    kind: entry.kind.clone(),
                    meta: entry.meta.clone(),
                    content: entry.content.clone(),
                };
                self.entries.insert(entry.path.clone(), cached);
            }
        }
    }

    /// What is remembered for `path` if its token is `token`.
    pub(crate) fn by_token(&self, path: &EntryPath, token: Token) -> Option<&Cached> {
        self.entries.get(path).filter(|c| c.token == Some(token))
    }

    /// What is remembered for `path`, whatever it is.
    pub(crate) fn get(&self, path: &EntryPath) -> Option<&Cached> {
        self.entries.get(path)
    }

    /// What is remembered for `path` if its whole content hashed to `whole`.
    pub(crate) fn by_whole(&self, path: &EntryPath, whole: Digest) -> Option<&Cached> {
        self.entries.get(path).filter(|c| c.whole == Some(whole))
    }

    /// The chunk list last stored for `path`, whatever its status or token now: the starting
    /// point for re-chunking content that changed ([`crate::resync`]).
    pub(crate) fn chunks_of(&self, path: &EntryPath) -> Option<&[crate::manifest::Chunk]> {
        match &self.entries.get(path)?.content {
            Content::Chunks(chunks) => Some(chunks),
            _ => None,
        }
    }

    /// The manifest last written from this cache, if it still describes every entry.
    pub(crate) fn last_manifest(&self) -> Option<&(Digest, Arc<Manifest>)> {
        self.last.as_ref()
    }

    /// The content remembered for `path` if the file's status is unchanged and was not racy
    /// when recorded.
    pub(crate) fn by_stat(&self, path: &EntryPath, stat: &FileStat) -> Option<&Cached> {
        self.entries
            .get(path)
            .filter(|c| c.stat.as_ref() == Some(stat))
            .filter(|c| stat.mtime_ns.saturating_add(RACY_MARGIN_NS) < c.recorded_ns)
    }

    /// The status remembered for `path` and when it was recorded, if it has one.
    pub(crate) fn status(&self, path: &EntryPath) -> Option<(FileStat, i64)> {
        let cached = self.entries.get(path)?;
        Some((cached.stat?, cached.recorded_ns))
    }

    /// Records the manifest the remembered entries make up, when a snapshot found every one of
    /// them exactly as remembered.
    pub(crate) fn set_last(&mut self, manifest: (Digest, Arc<Manifest>)) {
        self.last = Some(manifest);
    }

    /// Replaces the whole cache with what a snapshot just saw.
    pub(crate) fn replace(
        &mut self,
        entries: HashMap<EntryPath, Cached>,
        manifest: (Digest, Arc<Manifest>),
    ) {
        self.changed |= self.entries != entries;
        self.entries = entries;
        self.last = Some(manifest);
    }

    /// The cache's bytes, for keeping it across processes ([`autosave_store::Store::save_cache`]);
    /// equal caches give equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        let persisted = Persisted {
            version: 2,
            store_id: self.store_id.unwrap_or(0),
            entries: {
                // Sorted, so that an unchanged cache encodes to the same bytes.
                let mut entries: Vec<_> = self
                    .entries
                    .iter()
                    .map(|(p, c)| (p.clone(), c.clone()))
                    .collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                entries
            },
        };
        postcard::to_stdvec(&persisted).expect("encoding plain data into a Vec cannot fail")
    }

    /// A cache from [`ChangeCache::encode`]'s bytes; anything unreadable gives an empty cache
    /// (a cache is only an optimisation).
    pub fn decode(bytes: &[u8]) -> Self {
        match postcard::from_bytes::<Persisted>(bytes) {
            Ok(p) if p.version == 2 => Self {
                store_id: Some(p.store_id),
                entries: p.entries.into_iter().collect(),
                last: None,
                changed: false,
            },
            _ => Self {
                changed: true,
                ..Self::default()
            },
        }
    }
}
