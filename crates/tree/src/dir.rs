//! Directory snapshots: a directory tree as entries (regular files, symlinks, empty
//! directories), with the file-status cache kept in the store between processes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use autosave_store::Store;
use rayon::prelude::*;

use crate::cache::{ChangeCache, FileStat};
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::node::{Node, Source};
use crate::path::EntryPath;
use crate::write::{EntryError, SnapshotSpec, Written, write_snapshot};

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
pub fn snapshot_dir(store: &Store, root: &Path, spec: &SnapshotSpec) -> Result<Written> {
    let root = std::fs::canonicalize(root).map_err(|e| Error::io("open", root, e))?;
    let cache_name = format!("dir-stat:{}", root.display());
    let saved = store.load_cache(&cache_name)?;
    let mut cache = saved
        .as_deref()
        .map(ChangeCache::decode)
        .unwrap_or_default();
    let (nodes, mut unreadable) = dir_nodes(&root, store.root().as_std_path())?;
    let mut written = write_snapshot(store, &mut cache, &nodes, spec)?;
    // An unchanged cache is not written again (that would cost a durable index transaction),
    // nor encoded again to find that out.
    if saved.is_none() || cache.changed_since_decode() {
        let encoded = cache.encode();
        if saved.as_deref() != Some(&encoded[..]) {
            store.save_cache(&cache_name, &encoded)?;
        }
    }
    unreadable.append(&mut written.report.errors);
    written.report.errors = unreadable;
    Ok(written)
}

/// The nodes of a directory tree, skipping `.autosave` directories and `exclude` (the store's
/// own directory wherever it is); entries that cannot be listed or named are returned as errors.
///
/// Regular files come as [`Source::FileWithStat`] with the status the walk took, so a snapshot
/// does not examine them twice. Directories are listed in parallel.
pub fn dir_nodes(root: &Path, exclude: &Path) -> Result<(Vec<Node<'static>>, Vec<EntryError>)> {
    let walk = Walk {
        exclude: std::fs::canonicalize(exclude).ok(),
    };
    let listing = walk
        .dir(root, &EntryPath::default())
        .map_err(|e| Error::io("list", root, e))?;
    Ok((listing.nodes, listing.errors))
}

struct Walk {
    exclude: Option<PathBuf>,
}

/// What a directory holds, in the order it was listed.
#[derive(Default)]
struct Listing {
    nodes: Vec<Node<'static>>,
    errors: Vec<EntryError>,
}

impl Listing {
    fn append(&mut self, mut other: Listing) {
        self.nodes.append(&mut other.nodes);
        self.errors.append(&mut other.errors);
    }
}

impl Walk {
    fn dir(&self, dir: &Path, at: &EntryPath) -> io::Result<Listing> {
        let mut listing = Listing::default();
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(key) = name.to_str() else {
                listing.errors.push(EntryError {
                    path: at.child(name.to_string_lossy()),
                    error: "the file name is not UTF-8".into(),
                });
                continue;
            };
            let path = entry.path();
            if key == STORE_DIR_NAME || self.exclude.as_deref() == Some(path.as_path()) {
                continue;
            }
            entries.push((at.child(key), entry, path));
        }
        let empty = entries.is_empty();
        let parts: Vec<Listing> = entries
            .into_par_iter()
            .map(|(at, entry, path)| {
                self.entry(&entry, path, &at).unwrap_or_else(|e| Listing {
                    nodes: Vec::new(),
                    errors: vec![EntryError {
                        path: at,
                        error: e.to_string(),
                    }],
                })
            })
            .collect();
        for part in parts {
            listing.append(part);
        }
        if empty && !at.keys().is_empty() {
            let meta = std::fs::symlink_metadata(dir)?;
            let node = Node::bytes(at.clone(), KIND_DIR, &[]).with_meta(file_meta(&meta));
            listing.nodes.push(node);
        }
        Ok(listing)
    }

    fn entry(
        &self,
        entry: &std::fs::DirEntry,
        path: PathBuf,
        at: &EntryPath,
    ) -> io::Result<Listing> {
        // The status relative to the directory's open handle: no walk of the whole path.
        let meta = entry.metadata()?;
        let kind = meta.file_type();
        let node = if kind.is_dir() {
            return self.dir(&path, at);
        } else if kind.is_symlink() {
            let target = link_bytes(&std::fs::read_link(&path)?)?;
            let open = Box::new(move || -> io::Result<Box<dyn io::Read + Send>> {
                Ok(Box::new(io::Cursor::new(target.clone())))
            });
            Node {
                path: at.clone(),
                kind: KIND_SYMLINK.into(),
                meta: Meta::default(),
                source: Source::Reader(open),
                token: None,
            }
        } else if kind.is_file() {
            Node {
                path: at.clone(),
                kind: KIND_FILE.into(),
                meta: file_meta(&meta),
                source: Source::FileWithStat {
                    path,
                    stat: FileStat::of(&meta),
                },
                token: None,
            }
        } else {
            return Err(io::Error::other("not a regular file, directory or symlink"));
        };
        Ok(Listing {
            nodes: vec![node],
            errors: Vec::new(),
        })
    }
}

fn link_bytes(target: &Path) -> io::Result<Vec<u8>> {
    target
        .to_str()
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| io::Error::other("the link target is not UTF-8"))
}

/// `{"mode": …, "mtime_ns": …}` of a file or directory.
fn file_meta(meta: &std::fs::Metadata) -> Meta {
    let mut map = BTreeMap::new();
    map.insert("mode".to_owned(), Meta::Int(i64::from(mode(meta))));
    let mtime = FileStat::of(meta).mtime_ns;
    map.insert("mtime_ns".to_owned(), Meta::Int(mtime));
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
