//! Directory snapshots: a directory tree as entries (regular files, symlinks, empty
//! directories), with the file-status cache kept in the store between processes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use autosave_store::{Digest, SnapshotId, Store};
use rayon::prelude::*;

use crate::cache::{ChangeCache, FileStat, RACY_MARGIN_NS};
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::node::{Node, Source};
use crate::path::EntryPath;
use crate::write::{EntryError, Report, SnapshotSpec, write_snapshot};

/// Kind of a regular file's entry.
pub const KIND_FILE: &str = "file";
/// Kind of a symbolic link's entry; its content is the link target.
pub const KIND_SYMLINK: &str = "symlink";
/// Kind of an empty directory's entry.
pub const KIND_DIR: &str = "dir";

/// The name of the store directory, never included in a directory snapshot.
pub const STORE_DIR_NAME: &str = ".autosave";

/// Snapshots the directory `root` into `store`. Files whose status is unchanged since the last
/// snapshot of `root` (by any process) are not read.
///
/// When [`SnapshotSpec::unless_manifest`] names the manifest of the last snapshot of `root` and
/// the walk finds every name exactly as that snapshot saw it (same names, kinds, modes, link
/// targets, and file statuses that were not racily clean), the tree is that manifest's without
/// anything more being looked at: a no-change snapshot by a new process costs the walk and
/// little else. (Not even the manifest is read then, which is why the outcome is a
/// [`DirWritten`] rather than a [`Written`](crate::Written) with its entries:
/// [`load_manifest`](crate::load_manifest) reads them.)
///
/// ```
/// use autosave_store::{SnapshotKind, Store};
/// use autosave_tree::{SnapshotSpec, load_manifest, snapshot_dir};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let project = dir.path().join("project");
/// std::fs::create_dir_all(project.join("data"))?;
/// std::fs::write(project.join("data/run.csv"), "t,v\n0,1\n")?;
/// let path = camino::Utf8Path::from_path(&project).expect("UTF-8").join(".autosave");
/// let store = Store::open_or_create(&path)?;
///
/// let first = snapshot_dir(&store, &project, &SnapshotSpec::new(SnapshotKind::Autosave))?;
/// assert!(first.snapshot.is_some());
/// assert_eq!(first.entries, 1);
///
/// // Nothing changed since the newest snapshot: nothing is read and nothing recorded.
/// let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
/// spec.unless_manifest = Some(first.manifest);
/// let again = snapshot_dir(&store, &project, &spec)?;
/// assert_eq!((again.snapshot, again.manifest), (None, first.manifest));
///
/// let manifest = load_manifest(&store, &again.manifest)?;
/// assert_eq!(manifest.entries()[0].path.to_string(), "data/run.csv");
/// # Ok(())
/// # }
/// ```
pub fn snapshot_dir(store: &Store, root: &Path, spec: &SnapshotSpec) -> Result<DirWritten> {
    let start = Instant::now();
    let root = std::fs::canonicalize(root).map_err(|e| Error::io("open", root, e))?;
    let names = CacheNames::of(&root);
    let unless = spec.unless_manifest;
    // The walk and the reading of the last snapshot's record need nothing from each other;
    // done at once, a snapshot of an unchanged tree costs the longer of the two rather than
    // their sum. (Only the record: it takes no store lock, so the pool's thread that reads it
    // never waits on a lock holder that may itself wait on the pool.)
    let (walked, loaded) = rayon::join(
        || walk(&root, store.root().as_std_path()),
        || -> Result<_> {
            let saved_record = store.load_cache(&names.record)?;
            let record = saved_record.as_deref().and_then(Record::decode);
            Ok((saved_record, record))
        },
    );
    let walked = walked?;
    let (saved_record, record) = loaded?;
    if let (Some(record), Some(skip)) = (&record, unless)
        && record.manifest == skip
        && let Some(report) = record.vouches_for(&walked)
    {
        // (The store holds `skip`: it is the newest snapshot's manifest, committed with it, and
        // `forget_damaged_blobs`, the one way its row can go, empties this record with it; a
        // record made before that is never saved after it, see `save_caches_at` below.)
        let bytes = walked.file_bytes();
        let meter = spec.progress.start(report.entries, bytes);
        meter.advance(report.entries, bytes);
        // A record is kept only for a snapshot without errors: its manifest holds every name.
        return Ok(DirWritten {
            snapshot: None,
            manifest: skip,
            entries: report.entries,
            report: Report {
                duration: start.elapsed(),
                ..report
            },
        });
    }
    // Caches made now are good for this generation only: forgetting damaged blobs in the
    // meantime (which empties the caches) must not be undone by saving them after it.
    let generation = store.gc_generation()?;
    let saved = store.load_cache(&names.stat)?;
    let mut cache = saved
        .as_deref()
        .map(ChangeCache::decode)
        .unwrap_or_default();
    let nodes = walked.nodes(&root);
    let mut written = write_snapshot(store, &mut cache, &nodes, spec)?;
    let mut updates: Vec<(&str, Vec<u8>)> = Vec::new();
    // An unchanged cache is not written again (that would cost a durable index transaction),
    // nor encoded again to find that out.
    if saved.is_none() || cache.changed_since_decode() {
        let encoded = cache.encode();
        if saved.as_deref() != Some(&encoded[..]) {
            updates.push((&names.stat, encoded));
        }
    }
    let clean = walked.errors.is_empty() && written.report.errors.is_empty();
    let encoded = clean
        .then(|| Record::of(&walked, &cache, written.manifest))
        .flatten()
        .map_or_else(Vec::new, |r| r.encode());
    if saved_record.as_deref().unwrap_or_default() != &encoded[..] {
        updates.push((&names.record, encoded));
    }
    if !updates.is_empty() {
        let updates: Vec<(&str, &[u8])> = updates.iter().map(|(n, b)| (*n, &b[..])).collect();
        store.save_caches_at(generation, &updates)?;
    }
    let mut errors = walked.errors;
    errors.append(&mut written.report.errors);
    written.report.errors = errors;
    written.report.duration = start.elapsed();
    Ok(DirWritten {
        snapshot: written.snapshot,
        manifest: written.manifest,
        entries: written.entries.entries().len() as u64,
        report: written.report,
    })
}

/// The outcome of [`snapshot_dir`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DirWritten {
    /// The new snapshot, or `None` if [`SnapshotSpec::unless_manifest`] matched.
    pub snapshot: Option<SnapshotId>,
    /// The manifest's digest.
    pub manifest: Digest,
    /// How many entries the manifest holds: the names snapshotted, without those that could
    /// not be read (which are in [`Report::errors`]).
    pub entries: u64,
    /// What it cost.
    pub report: Report,
}

/// The names of the two caches a directory keeps in its store.
struct CacheNames {
    /// The change cache ([`ChangeCache`]).
    stat: String,
    /// The status record of the last snapshot ([`Record`]).
    record: String,
}

impl CacheNames {
    fn of(root: &Path) -> Self {
        Self {
            stat: format!("dir-stat:{}", root.display()),
            record: format!("dir-record:{}", root.display()),
        }
    }
}

/// The nodes of a directory tree, skipping `.autosave` directories and `exclude` (the store's
/// own directory wherever it is); entries that cannot be listed or named are returned as errors.
///
/// Regular files come as [`Source::FileWithStat`] with the status the walk took, so a snapshot
/// does not examine them twice. Directories are listed in parallel.
pub fn dir_nodes(root: &Path, exclude: &Path) -> Result<(Vec<Node<'static>>, Vec<EntryError>)> {
    let walked = walk(root, exclude)?;
    let nodes = walked.nodes(root);
    Ok((nodes, walked.errors))
}

/// What the walk saw of one name: enough to tell, without reading it, that it is as a snapshot
/// saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Seen {
    /// A regular file: its status, and its permission bits.
    File { stat: FileStat, mode: u32 },
    /// A symbolic link: its target's bytes.
    Symlink { target: Vec<u8> },
    /// An empty directory (the root excepted): its permission bits and mtime.
    EmptyDir { mode: u32, mtime_ns: i64 },
}

/// A walk of a directory tree: each name as a path relative to the root (keys joined by `/`,
/// which no file name holds) and what was seen of it.
#[derive(Default)]
struct Walked {
    seen: Vec<(String, Seen)>,
    errors: Vec<EntryError>,
}

impl Walked {
    fn append(&mut self, mut other: Walked) {
        self.seen.append(&mut other.seen);
        self.errors.append(&mut other.errors);
    }

    /// Bytes of the regular files, as progress weighs them.
    fn file_bytes(&self) -> u64 {
        self.seen
            .iter()
            .map(|(_, seen)| match seen {
                Seen::File { stat, .. } => stat.size,
                _ => 0,
            })
            .sum()
    }

    /// The nodes of what was seen, below `root`.
    fn nodes(&self, root: &Path) -> Vec<Node<'static>> {
        self.seen
            .par_iter()
            .map(|(rel, seen)| {
                let at = EntryPath::new(rel.split('/'));
                match seen {
                    Seen::File { stat, mode } => Node {
                        path: at,
                        kind: KIND_FILE.into(),
                        meta: file_meta(*mode, stat.mtime_ns),
                        source: Source::FileWithStat {
                            path: root.join(rel),
                            stat: *stat,
                        },
                        token: None,
                    },
                    Seen::Symlink { target } => {
                        let target = target.clone();
                        let open = Box::new(move || -> io::Result<Box<dyn io::Read + Send>> {
                            Ok(Box::new(io::Cursor::new(target.clone())))
                        });
                        Node {
                            path: at,
                            kind: KIND_SYMLINK.into(),
                            meta: Meta::default(),
                            source: Source::Reader(open),
                            token: None,
                        }
                    }
                    Seen::EmptyDir { mode, mtime_ns } => {
                        Node::bytes(at, KIND_DIR, &[]).with_meta(file_meta(*mode, *mtime_ns))
                    }
                }
            })
            .collect()
    }
}

/// The walk behind the last snapshot of a directory, kept in the store beside the change cache:
/// every name with what was seen of it (sorted by name), the time each file's status was trusted
/// from, and the manifest the snapshot found them to make up.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    version: u8,
    manifest: Digest,
    /// Sorted by name: (name, what was seen, when a file's status was recorded).
    entries: Vec<(String, Seen, i64)>,
}

impl Record {
    const VERSION: u8 = 1;

    /// The record of a snapshot that took every name of `walked` and made up `manifest`, if the
    /// change cache vouches for each file's content under the status the walk saw (a file that
    /// changed between the walk and its reading is in the manifest with the walk's mtime but
    /// the content read: no record then, and the next snapshot checks it in full). A file's
    /// recording time is the cache's.
    fn of(walked: &Walked, cache: &ChangeCache, manifest: Digest) -> Option<Self> {
        let mut entries = Vec::with_capacity(walked.seen.len());
        for (rel, seen) in &walked.seen {
            let recorded_ns = match seen {
                Seen::File { stat, .. } => {
                    let (cached, recorded_ns) = cache.status(&EntryPath::new(rel.split('/')))?;
                    if cached != *stat {
                        return None;
                    }
                    recorded_ns
                }
                Seen::Symlink { .. } | Seen::EmptyDir { .. } => 0,
            };
            entries.push((rel.clone(), seen.clone(), recorded_ns));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(Self {
            version: Self::VERSION,
            manifest,
            entries,
        })
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("encoding plain data into a Vec cannot fail")
    }

    /// The record in `bytes`; anything else (an empty record, another version, damage) is no
    /// record, which costs only the shortcut.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let record: Self = postcard::from_bytes(bytes).ok()?;
        let sorted = record.entries.windows(2).all(|w| w[0].0 < w[1].0);
        (record.version == Self::VERSION && sorted).then_some(record)
    }

    /// When `walked` is exactly what this record saw, and no file's status was racily clean when
    /// recorded: the report of a snapshot that finds the tree unchanged (as [`write_snapshot`]
    /// counts: files skipped by status, links and empty directories read).
    fn vouches_for(&self, walked: &Walked) -> Option<Report> {
        // Names are distinct on both sides: as many, each found, is the same set.
        if !walked.errors.is_empty() || walked.seen.len() != self.entries.len() {
            return None;
        }
        let mut report = Report {
            entries: walked.seen.len() as u64,
            ..Report::default()
        };
        for (rel, seen) in &walked.seen {
            let i = self
                .entries
                .binary_search_by(|e| e.0.as_str().cmp(rel))
                .ok()?;
            let (_, recorded, recorded_ns) = &self.entries[i];
            if recorded != seen {
                return None;
            }
            match seen {
                Seen::File { stat, .. } => {
                    if stat.mtime_ns.saturating_add(RACY_MARGIN_NS) >= *recorded_ns {
                        return None;
                    }
                    report.skipped_stat += 1;
                }
                Seen::Symlink { target } => {
                    report.hashed += 1;
                    report.bytes_hashed += target.len() as u64;
                }
                Seen::EmptyDir { .. } => report.hashed += 1,
            }
        }
        Some(report)
    }
}

/// Walks the tree at `root`, skipping `.autosave` directories and `exclude`.
fn walk(root: &Path, exclude: &Path) -> Result<Walked> {
    let walk = Walk {
        exclude: std::fs::canonicalize(exclude).ok(),
    };
    walk.dir(root, &EntryPath::default(), "")
        .map_err(|e| Error::io("list", root, e))
}

struct Walk {
    exclude: Option<PathBuf>,
}

/// What one name of a directory turned out to be.
enum Found {
    Seen(String, Seen),
    Dir(PathBuf, String),
    Error(EntryError),
}

/// How many names of one directory get their status in one task: enough to pay for the task,
/// few enough that a large directory keeps every core busy.
const STAT_BATCH: usize = 64;

impl Walk {
    /// Lists `dir` (at `at`, named `rel` relative to the root): its names one after another,
    /// their statuses in parallel batches, its subdirectories in parallel.
    fn dir(&self, dir: &Path, at: &EntryPath, rel: &str) -> io::Result<Walked> {
        let mut walked = Walked::default();
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(key) = name.to_str() else {
                walked.errors.push(EntryError {
                    path: at.child(name.to_string_lossy()),
                    error: "the file name is not UTF-8".into(),
                });
                continue;
            };
            if key == STORE_DIR_NAME {
                continue;
            }
            // The store's own directory is a directory: other names need no path to compare.
            if let Some(exclude) = &self.exclude
                && entry.file_type().is_ok_and(|t| t.is_dir())
                && entry.path() == *exclude
            {
                continue;
            }
            let child = if rel.is_empty() {
                key.to_owned()
            } else {
                format!("{rel}/{key}")
            };
            entries.push((child, entry));
        }
        let empty = entries.is_empty();
        let found: Vec<Vec<Found>> = entries
            .par_chunks_mut(STAT_BATCH)
            .map(|batch| {
                batch
                    .iter_mut()
                    .map(|(child, entry)| Self::entry(entry, std::mem::take(child), at))
                    .collect()
            })
            .collect();
        let mut subdirs = Vec::new();
        for found in found.into_iter().flatten() {
            match found {
                Found::Seen(child, seen) => walked.seen.push((child, seen)),
                Found::Dir(path, child) => subdirs.push((path, child)),
                Found::Error(error) => walked.errors.push(error),
            }
        }
        let parts: Vec<Walked> = subdirs
            .into_par_iter()
            .map(|(path, child)| {
                let at = EntryPath::new(child.split('/'));
                self.dir(&path, &at, &child).unwrap_or_else(|e| Walked {
                    seen: Vec::new(),
                    errors: vec![EntryError {
                        path: at,
                        error: e.to_string(),
                    }],
                })
            })
            .collect();
        for part in parts {
            walked.append(part);
        }
        if empty && !rel.is_empty() {
            let meta = std::fs::symlink_metadata(dir)?;
            let seen = Seen::EmptyDir {
                mode: mode(&meta),
                mtime_ns: FileStat::of(&meta).mtime_ns,
            };
            walked.seen.push((rel.to_owned(), seen));
        }
        Ok(walked)
    }

    fn entry(entry: &std::fs::DirEntry, child: String, at: &EntryPath) -> Found {
        match Self::seen(entry) {
            Ok(Some(seen)) => Found::Seen(child, seen),
            Ok(None) => Found::Dir(entry.path(), child),
            Err(e) => Found::Error(EntryError {
                path: at.child(entry.file_name().to_string_lossy()),
                error: e.to_string(),
            }),
        }
    }

    /// What one name is, or `None` for a directory.
    fn seen(entry: &std::fs::DirEntry) -> io::Result<Option<Seen>> {
        // The status relative to the directory's open handle: no walk of the whole path.
        let meta = entry.metadata()?;
        let kind = meta.file_type();
        if kind.is_dir() {
            Ok(None)
        } else if kind.is_symlink() {
            let target = link_bytes(&std::fs::read_link(entry.path())?)?;
            Ok(Some(Seen::Symlink { target }))
        } else if kind.is_file() {
            Ok(Some(Seen::File {
                stat: FileStat::of(&meta),
                mode: mode(&meta),
            }))
        } else {
            Err(io::Error::other("not a regular file, directory or symlink"))
        }
    }
}

fn link_bytes(target: &Path) -> io::Result<Vec<u8>> {
    target
        .to_str()
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| io::Error::other("the link target is not UTF-8"))
}

/// `{"mode": …, "mtime_ns": …}` of a file or directory.
fn file_meta(mode: u32, mtime_ns: i64) -> Meta {
    let mut map = BTreeMap::new();
    map.insert("mode".to_owned(), Meta::Int(i64::from(mode)));
    map.insert("mtime_ns".to_owned(), Meta::Int(mtime_ns));
    Meta::Map(map)
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}
