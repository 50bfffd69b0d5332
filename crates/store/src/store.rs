//! [`Store`]: opening and creating a store, reading blobs, listing and deleting snapshots.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use rusqlite::Connection;

use crate::codec::{self, ObjectKind};
use crate::digest::{Digest, DigestSet, HashAlgo};
use crate::error::{Error, Result};
use crate::format::{ChunkParams, FORMAT_VERSION, StoreFormat};
use crate::index::{self, BlobRow};
use crate::lock::{self, LockGuard};
use crate::snapshot::{SnapshotId, SnapshotInfo};
use crate::vfs::{self, StdFs, TEMP_PREFIX, Vfs};

/// How to open (or create) a store.
#[derive(Clone, Debug)]
pub struct Options {
    /// Create the store if the directory has none. Default `false`.
    pub create: bool,
    /// For a new store: key blobs by BLAKE3-256 instead of XXH3-128. Default `false`.
    pub strong: bool,
    /// For a new store: blobs of at most this many bytes live in the index. Default 16 KiB.
    pub inline_limit: u64,
    /// For a new store: how large content is chunked (used by the tree crate). Default
    /// [`ChunkParams::default`].
    pub chunking: ChunkParams,
    /// For a new store: the format version to write, from 1 to [`FORMAT_VERSION`]. Default
    /// [`FORMAT_VERSION`] (2). A version 1 store never compresses blobs as byte planes, and
    /// builds older than them can read it.
    pub format_version: u32,
    /// zstd level for new blobs. Default 3.
    pub zstd_level: i32,
    /// How long an index write waits for another process's transaction. Default 60 s.
    pub busy_timeout: Duration,
    /// The filesystem for blob files and `FORMAT`. Default the real one, [`StdFs`].
    pub vfs: Arc<dyn Vfs>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            create: false,
            strong: false,
            inline_limit: 16 << 10,
            chunking: ChunkParams::default(),
            format_version: FORMAT_VERSION,
            zstd_level: 3,
            busy_timeout: Duration::from_secs(60),
            vfs: Arc::new(StdFs),
        }
    }
}

/// A handle to a store directory (conventionally `<project>/.autosave`). Cheap to clone; safe to
/// share between threads.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) root: Utf8PathBuf,
    pub(crate) format: StoreFormat,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) zstd_level: i32,
    /// Whether SQLite makes a COMMIT durable before it returns (read back from the connection).
    durable_commits: bool,
    /// Whether this handle has made the index's directory durable since it opened the index
    /// (see [`Store::conn_to_write`]). Read and set only while `conn` is locked.
    wal_name_durable: AtomicBool,
    conn: Mutex<Connection>,
    known: Mutex<Known>,
    /// `OPEN`, held shared for the handle's life: the index it has open is never replaced
    /// under it (see [`Store::rebuild_index`]).
    // ORDER: declared after `conn`, so dropped after it: the connection is closed (SQLite's
    // last checkpoint and WAL cleanup done) before a rebuild may take the index.
    _open: LockGuard,
}

/// Digests known to have an index row, valid while the GC generation is unchanged.
#[derive(Debug, Default)]
pub(crate) struct Known {
    generation: i64,
    set: DigestSet,
    /// Every row of the index was loaded into `set` in this generation (rows committed since by
    /// other processes aside): a digest not in `set` has no row, as of the load.
    complete: bool,
    loaded: bool,
}

/// Bounds the memory of [`Known`]; past it the cache starts over.
const KNOWN_CAP: usize = 1 << 20;

/// Names a store directory may hold; anything else means it is not ours.
const OWN_NAMES: &[&str] = &[
    "FORMAT",
    "LOCK",
    "OPEN",
    "index.sqlite",
    "index.sqlite-wal",
    "index.sqlite-shm",
    "index.sqlite-journal",
    "objects",
    "tmp",
    // The host library's session claim (lock target and holder description).
    "SESSION",
];

impl Store {
    /// Opens the existing store at `path`.
    ///
    /// Fails with [`Error::NoStore`] if there is none, [`Error::NotAStore`] if the directory
    /// holds something else, [`Error::NewerFormat`] or [`Error::BadFormat`] for a `FORMAT` this
    /// build cannot use.
    ///
    /// While [`Store::rebuild_index`] runs on the store (in any process), opening waits for it
    /// to finish, then opens the new index.
    pub fn open(path: impl AsRef<Utf8Path>) -> Result<Self> {
        Self::open_with(path, Options::default())
    }

    /// Opens the store at `path`, creating it with default settings if there is none.
    pub fn open_or_create(path: impl AsRef<Utf8Path>) -> Result<Self> {
        Self::open_with(
            path,
            Options {
                create: true,
                ..Options::default()
            },
        )
    }

    /// Opens (or with [`Options::create`], creates) the store at `path`.
    pub fn open_with(path: impl AsRef<Utf8Path>, options: Options) -> Result<Self> {
        let root = path.as_ref().to_owned();
        match read_format(&*options.vfs, &root)? {
            Some(format) => Self::open_existing(root, format, &options),
            None if options.create => Self::create(root, &options),
            None => Err(classify_missing(&*options.vfs, &root)),
        }
    }

    fn open_existing(root: Utf8PathBuf, format: StoreFormat, options: &Options) -> Result<Self> {
        // ORDER: before the index is opened, so a rebuild cannot replace it in between.
        let open = lock::shared(&root.join("OPEN"))?;
        let conn = index::open(&root.join("index.sqlite"), false, options.busy_timeout)?;
        let durable_commits = index::commits_are_durable(&conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                format,
                vfs: options.vfs.clone(),
                zstd_level: options.zstd_level,
                durable_commits,
                wal_name_durable: AtomicBool::new(false),
                conn: Mutex::new(conn),
                known: Mutex::new(Known::default()),
                _open: open,
            }),
        })
    }

    fn create(root: Utf8PathBuf, options: &Options) -> Result<Self> {
        let vfs = &*options.vfs;
        if vfs.is_dir(&root) && has_foreign_entries(vfs, &root)? {
            return Err(Error::NotAStore { path: root });
        }
        if holds_blob_files(vfs, &root)? {
            return Err(Error::MissingFormat { path: root });
        }
        let format = new_format(options)?;
        vfs::ensure_dir_all(vfs, &root)?;
        // ORDER: the store directory's own name is made durable even if an earlier, failed
        // creation made the directory: FORMAT in a directory a crash can lose is no store.
        if let Some(parent) = root.parent().filter(|p| !p.as_str().is_empty()) {
            vfs::sync_dir(vfs, parent)?;
        }
        for dir in ["objects", "tmp"] {
            vfs::ensure_dir(vfs, &root.join(dir))?;
        }
        if let Err(e) = vfs.write_new(&root.join("LOCK"), &[])
            && e.kind() != ErrorKind::AlreadyExists
        {
            return Err(Error::io("create", root.join("LOCK"), e));
        }
        let index_path = root.join("index.sqlite");
        let conn = index::open(&index_path, true, options.busy_timeout)?;
        vfs.after_commit(&index_path, index::commits_are_durable(&conn)?);
        drop(conn);
        // ORDER: FORMAT is written last, so its presence means the rest of the store exists.
        vfs::sync_dir(vfs, &root)?;
        vfs::publish(vfs, &root, "FORMAT", &[format.render().as_bytes()])?;
        vfs::sync_dir(vfs, &root)?;
        // A concurrent creator may have won the race for FORMAT: use whatever is on disk.
        let on_disk =
            read_format(vfs, &root)?.ok_or_else(|| Error::NoStore { path: root.clone() })?;
        Self::open_existing(root, on_disk, options)
    }

    /// The store directory.
    pub fn root(&self) -> &Utf8Path {
        &self.inner.root
    }

    /// The store's identity and configuration, as recorded in `FORMAT`.
    pub fn format(&self) -> &StoreFormat {
        &self.inner.format
    }

    /// The hash function of this store.
    pub fn hash_algo(&self) -> HashAlgo {
        self.inner.format.hash
    }

    /// Hashes `bytes` the way this store keys them.
    pub fn digest_of(&self, bytes: &[u8]) -> Digest {
        self.hash_algo().hash(bytes)
    }

    /// Reads a blob, re-hashing it before returning it. `Ok(None)` if the store has no such
    /// blob; [`Error::Corrupt`] or [`Error::Missing`] if it has one but cannot produce its exact
    /// bytes.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        self.reader()?.get(digest)
    }

    /// Whether the index has a row for `digest`.
    pub fn contains(&self, digest: &Digest) -> Result<bool> {
        self.check_algo(digest)?;
        index::has_blob(&self.conn(), digest)
    }

    /// Holds the shared lock for a series of reads, so garbage collection cannot remove a blob
    /// between looking it up and reading it.
    pub fn reader(&self) -> Result<Reader<'_>> {
        Ok(Reader {
            store: self,
            _lock: self.lock_shared()?,
        })
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        index::snapshots(&self.conn())
    }

    /// One snapshot, `Ok(None)` if there is no such id.
    pub fn snapshot(&self, id: SnapshotId) -> Result<Option<SnapshotInfo>> {
        index::snapshot(&self.conn(), id)
    }

    /// The newest snapshot, if any.
    pub fn latest(&self) -> Result<Option<SnapshotInfo>> {
        index::latest_snapshot(&self.conn())
    }

    /// The newest snapshot with `label` (a directory snapshot's label is its path unless one
    /// was given), if any.
    pub fn latest_labelled(&self, label: &str) -> Result<Option<SnapshotInfo>> {
        index::latest_labelled(&self.conn(), label)
    }

    /// The blobs a snapshot references besides its manifest, sorted.
    pub fn snapshot_refs(&self, id: SnapshotId) -> Result<Vec<Digest>> {
        let conn = self.conn();
        if index::snapshot(&conn, id)?.is_none() {
            return Err(Error::UnknownSnapshot { id });
        }
        index::snapshot_refs(&conn, id)
    }

    /// Deletes snapshots (their blobs stay until [`Store::gc`]). Fails with
    /// [`Error::UnknownSnapshot`], deleting nothing, if any id is unknown.
    ///
    /// The deleted snapshots' record files stay until the next GC too, marked in the same
    /// transaction as given up: [`Store::rebuild_index`] never brings a deleted snapshot back.
    pub fn delete_snapshots(&self, ids: &[SnapshotId]) -> Result<()> {
        let _lock = self.lock_shared()?;
        let mut conn = self.conn_to_write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(Error::index("begin"))?;
        let mut records = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(info) = index::snapshot(&tx, id)? else {
                return Err(Error::UnknownSnapshot { id });
            };
            index::delete_snapshot(&tx, id)?;
            records.push(info.record);
        }
        // A record is a snapshot's own (it holds a random nonce); one still named by a snapshot
        // left is kept unmarked all the same.
        let mut given_up = Vec::with_capacity(records.len());
        for record in records {
            if !index::record_in_use(&tx, &record)? {
                given_up.push(record);
            }
        }
        index::add_swept(&tx, &given_up)?;
        tx.commit().map_err(Error::index("commit"))?;
        self.committed();
        Ok(())
    }

    /// A named cache saved by [`Store::save_cache`], if any. Caches hold derived data (such as
    /// a directory snapshot's file-status cache) that makes the next operation cheaper; losing
    /// one costs time, never data.
    pub fn load_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        index::load_cache(&self.conn(), name)
    }

    /// Saves (replaces) a named cache.
    pub fn save_cache(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.save_caches(&[(name, bytes)])
    }

    /// A number that changes whenever blob rows may have left the index (a GC, forgetting
    /// damaged blobs, a rebuild): a cache that says which blobs the store holds is good only for
    /// the generation it was made at.
    pub fn gc_generation(&self) -> Result<i64> {
        index::gc_generation(&self.conn())
    }

    /// Saves (replaces) named caches in one transaction, unless the generation
    /// ([`Store::gc_generation`]) is no longer `generation`: caches made from what the store
    /// held then could vouch for blobs it has lost since. Whether they were saved.
    pub fn save_caches_at(&self, generation: i64, caches: &[(&str, &[u8])]) -> Result<bool> {
        let saved = {
            let mut conn = self.conn_to_write()?;
            // Immediate: the generation read is the one the writes land in.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(Error::index("begin a cache transaction"))?;
            if index::gc_generation(&tx)? != generation {
                return Ok(false);
            }
            for (name, bytes) in caches {
                index::save_cache(&tx, name, bytes)?;
            }
            tx.commit()
                .map_err(Error::index("commit a cache transaction"))?;
            true
        };
        self.committed();
        Ok(saved)
    }

    /// Saves (replaces) several named caches in one index transaction.
    pub fn save_caches(&self, caches: &[(&str, &[u8])]) -> Result<()> {
        {
            let mut conn = self.conn_to_write()?;
            let tx = conn
                .transaction()
                .map_err(Error::index("begin a cache transaction"))?;
            for (name, bytes) in caches {
                index::save_cache(&tx, name, bytes)?;
            }
            tx.commit()
                .map_err(Error::index("commit a cache transaction"))?;
        }
        self.committed();
        Ok(())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves SQLite itself consistent (an open
        // transaction rolls back when its guard drops), so a poisoned lock is still usable.
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, for a transaction that writes.
    ///
    /// ORDER: SQLite creates the WAL file when the first connection opens the index (and
    /// deletes it when the last one closes), and fsyncs the directory but ignores a failure of
    /// that fsync; commits written to a WAL whose name a power loss can take away would be lost
    /// with it. So before this handle's first write the store directory is fsynced, whoever
    /// created the WAL (another process's handle that created it may not have written yet).
    /// A handle that only reads, such as a snapshot of an unchanged tree, never pays for it.
    pub(crate) fn conn_to_write(&self) -> Result<MutexGuard<'_, Connection>> {
        let conn = self.conn();
        if !self.inner.wal_name_durable.load(Ordering::Acquire) {
            vfs::sync_dir(&*self.inner.vfs, &self.inner.root)?;
            self.inner.wal_name_durable.store(true, Ordering::Release);
        }
        Ok(conn)
    }

    /// Tells the filesystem that an index transaction has just committed (the second half of
    /// the commit barrier, see [`Vfs::after_commit`]).
    pub(crate) fn committed(&self) {
        let index = self.inner.root.join("index.sqlite");
        self.inner
            .vfs
            .after_commit(&index, self.inner.durable_commits);
    }

    pub(crate) fn lock_shared(&self) -> Result<LockGuard> {
        lock::shared(&self.inner.root.join("LOCK"))
    }

    pub(crate) fn lock_exclusive(&self) -> Result<LockGuard> {
        lock::try_exclusive(&self.inner.root.join("LOCK"))
    }

    pub(crate) fn check_algo(&self, digest: &Digest) -> Result<()> {
        let algo = self.hash_algo();
        if digest.algo() == algo {
            Ok(())
        } else {
            Err(Error::WrongAlgo {
                digest: *digest,
                expected: algo.name(),
            })
        }
    }

    /// The directory a blob file lives in.
    pub(crate) fn fanout_dir(&self, digest: &Digest) -> Utf8PathBuf {
        self.inner.root.join("objects").join(digest.fanout())
    }

    /// The path of a blob file.
    pub(crate) fn blob_path(&self, digest: &Digest) -> Utf8PathBuf {
        self.fanout_dir(digest).join(digest.to_string())
    }

    /// Brings the known-digest cache up to date with the GC generation; call under the lock.
    pub(crate) fn refresh_known(&self) -> Result<()> {
        let generation = index::gc_generation(&self.conn())?;
        let mut known = self.known();
        if known.generation != generation {
            known.set.clear();
            known.generation = generation;
            known.complete = false;
            known.loaded = false;
        }
        Ok(())
    }

    /// Loads every digest of the index into the known-digest cache, once per GC generation:
    /// one query instead of one per lookup (a fresh process checking a few thousand cached
    /// entries would otherwise run as many queries). Returns whether the cache now holds every
    /// row; call under the lock.
    pub(crate) fn load_known(&self) -> Result<bool> {
        if let Some(complete) = self.known().loaded_complete() {
            return Ok(complete);
        }
        let (digests, all) = index::blob_digests(&self.conn(), KNOWN_CAP)?;
        let mut known = self.known();
        for d in digests {
            known.set.insert(d);
        }
        known.loaded = true;
        known.complete = all;
        Ok(all)
    }

    pub(crate) fn known(&self) -> MutexGuard<'_, Known> {
        self.inner.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads and checks a blob given its row.
    pub(crate) fn load(&self, row: &BlobRow) -> Result<Vec<u8>> {
        self.load_kind(row).map(|(_, bytes)| bytes)
    }

    /// Like [`Store::load`], also giving the object kind a blob file's header names (`None` for
    /// an inline blob).
    pub(crate) fn load_kind(&self, row: &BlobRow) -> Result<(Option<ObjectKind>, Vec<u8>)> {
        let (kind, bytes) = match &row.inline {
            Some(payload) => {
                let at = self.inner.root.join("index.sqlite");
                let bytes = codec::decode(row.codec, payload, row.size)
                    .map_err(|r| codec::corrupt(row.digest, &at, r))?;
                (None, bytes)
            }
            None => {
                let (kind, bytes) = self.load_file(row)?;
                (Some(kind), bytes)
            }
        };
        if self.digest_of(&bytes) != row.digest {
            let at = match row.inline {
                Some(_) => self.inner.root.join("index.sqlite"),
                None => self.blob_path(&row.digest),
            };
            return Err(codec::corrupt(
                row.digest,
                &at,
                "content does not match its digest".into(),
            ));
        }
        Ok((kind, bytes))
    }

    /// Reads and decodes a blob file (without re-hashing).
    pub(crate) fn load_file(&self, row: &BlobRow) -> Result<(ObjectKind, Vec<u8>)> {
        let path = self.blob_path(&row.digest);
        let file = match self.inner.vfs.read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::Missing {
                    digest: row.digest,
                    location: path,
                });
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let corrupt = |r: String| codec::corrupt(row.digest, &path, r);
        // ORDER: the length check comes before decoding, so the index's size, not a damaged
        // header's, bounds what the decoder produces.
        let header = codec::parse_header(&file).map_err(corrupt)?;
        if header.len != row.size {
            return Err(corrupt(format!(
                "header says {} bytes, index says {}",
                header.len, row.size
            )));
        }
        let (header, bytes) = codec::decode_file(file).map_err(corrupt)?;
        Ok((header.kind, bytes))
    }
}

/// Reads blobs while holding the store's shared lock. Made by [`Store::reader`].
#[derive(Debug)]
#[must_use = "a reader holds the lock until dropped"]
pub struct Reader<'s> {
    store: &'s Store,
    _lock: LockGuard,
}

impl Reader<'_> {
    /// Like [`Store::get`], under this reader's lock.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        self.store.check_algo(digest)?;
        let row = index::blob(&self.store.conn(), digest)?;
        row.map(|row| self.store.load(&row)).transpose()
    }
}

pub(crate) fn read_format(vfs: &dyn Vfs, root: &Utf8Path) -> Result<Option<StoreFormat>> {
    let path = root.join("FORMAT");
    match vfs.read(&path) {
        Ok(bytes) => StoreFormat::parse(&path, &bytes).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotADirectory => Err(Error::NotAStore {
            path: root.to_owned(),
        }),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn classify_missing(vfs: &dyn Vfs, root: &Utf8Path) -> Error {
    let path = root.to_owned();
    match has_foreign_entries(vfs, root) {
        Ok(true) => Error::NotAStore { path },
        _ if holds_blob_files(vfs, root).unwrap_or(true) => Error::MissingFormat { path },
        _ => Error::NoStore { path },
    }
}

/// Whether a fan-out directory under `objects/` holds a file other than a temp file. Every
/// snapshot has its record there, and creation writes `FORMAT` before any blob, so a store
/// directory without `FORMAT` that holds one lost its `FORMAT`; an interrupted creation holds
/// none.
fn holds_blob_files(vfs: &dyn Vfs, root: &Utf8Path) -> Result<bool> {
    let objects = root.join("objects");
    for fanout in crate::gc::list(vfs, &objects)? {
        let dir = objects.join(&fanout);
        if !vfs.is_dir(&dir) {
            return Ok(!fanout.starts_with(TEMP_PREFIX));
        }
        if crate::gc::list(vfs, &dir)?
            .iter()
            .any(|name| !name.starts_with(TEMP_PREFIX))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn has_foreign_entries(vfs: &dyn Vfs, root: &Utf8Path) -> Result<bool> {
    let names = match vfs.list_dir(root) {
        Ok(names) => names,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("list", root, e)),
    };
    Ok(names
        .iter()
        .any(|n| !OWN_NAMES.contains(&n.as_str()) && !n.starts_with(TEMP_PREFIX)))
}

fn new_format(options: &Options) -> Result<StoreFormat> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| Error::InvalidOptions {
        reason: format!("no randomness for the store id: {e}"),
    })?;
    if !(1..=FORMAT_VERSION).contains(&options.format_version) {
        return Err(Error::InvalidOptions {
            reason: format!(
                "format version {} is not one this build writes (1 to {FORMAT_VERSION})",
                options.format_version
            ),
        });
    }
    let format = StoreFormat {
        version: options.format_version,
        store_id: u128::from_le_bytes(id),
        hash: if options.strong {
            HashAlgo::Blake3
        } else {
            HashAlgo::Xxh3_128
        },
        inline_limit: options.inline_limit,
        chunking: options.chunking,
    };
    format
        .validate()
        .map_err(|reason| Error::InvalidOptions { reason })?;
    Ok(format)
}

impl Known {
    pub(crate) fn contains(&self, digest: &Digest) -> bool {
        self.set.contains(digest)
    }

    pub(crate) fn insert(&mut self, digest: Digest) {
        if self.set.len() >= KNOWN_CAP {
            self.set.clear();
            self.complete = false;
        }
        self.set.insert(digest);
    }

    /// `Some(complete)` if the index was loaded in this generation.
    fn loaded_complete(&self) -> Option<bool> {
        self.loaded.then_some(self.complete)
    }
}
