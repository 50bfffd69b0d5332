//! Directory snapshots: a directory tree as entries (regular files, symlinks, empty
//! directories), with the file-status cache kept in the store between processes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use autosave_store::Store;

use crate::cache::ChangeCache;
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
    // An unchanged cache is not written again (that would cost a durable index transaction).
    let encoded = cache.encode();
    if saved.as_deref() != Some(&encoded[..]) {
        store.save_cache(&cache_name, &encoded)?;
    }
    unreadable.append(&mut written.report.errors);
    written.report.errors = unreadable;
    Ok(written)
}

/// The nodes of a directory tree, skipping `.autosave` directories and `exclude` (the store's
/// own directory wherever it is); entries that cannot be listed or named are returned as errors.
pub fn dir_nodes(root: &Path, exclude: &Path) -> Result<(Vec<Node<'static>>, Vec<EntryError>)> {
    let exclude = std::fs::canonicalize(exclude).ok();
    let mut walk = Walk {
        nodes: Vec::new(),
        errors: Vec::new(),
        exclude,
    };
    walk.dir(root, &EntryPath::default())
        .map_err(|e| Error::io("list", root, e))?;
    Ok((walk.nodes, walk.errors))
}

struct Walk {
    nodes: Vec<Node<'static>>,
    errors: Vec<EntryError>,
    exclude: Option<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, at: &EntryPath) -> io::Result<()> {
        let mut empty = true;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(key) = name.to_str() else {
                self.errors.push(EntryError {
                    path: at.child(name.to_string_lossy()),
                    error: "the file name is not UTF-8".into(),
                });
                continue;
            };
            let path = entry.path();
            if key == STORE_DIR_NAME || self.exclude.as_deref() == Some(path.as_path()) {
                continue;
            }
            empty = false;
            if let Err(e) = self.entry(&path, at.child(key)) {
                self.errors.push(EntryError {
                    path: at.child(key),
                    error: e.to_string(),
                });
            }
        }
        if empty && !at.keys().is_empty() {
            let meta = std::fs::symlink_metadata(dir)?;
            let node = Node::bytes(at.clone(), KIND_DIR, &[]).with_meta(file_meta(&meta));
            self.nodes.push(node);
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, at: EntryPath) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            self.dir(path, &at)
        } else if kind.is_symlink() {
            let target = link_bytes(&std::fs::read_link(path)?)?;
            let open = Box::new(move || -> io::Result<Box<dyn io::Read + Send>> {
                Ok(Box::new(io::Cursor::new(target.clone())))
            });
            self.nodes.push(Node {
                path: at,
                kind: KIND_SYMLINK.into(),
                meta: Meta::default(),
                source: Source::Reader(open),
                token: None,
            });
            Ok(())
        } else if kind.is_file() {
            self.nodes
                .push(Node::file(at, KIND_FILE, path).with_meta(file_meta(&meta)));
            Ok(())
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
fn file_meta(meta: &std::fs::Metadata) -> Meta {
    let mut map = BTreeMap::new();
    map.insert("mode".to_owned(), Meta::Int(i64::from(mode(meta))));
    let mtime = crate::cache::FileStat::of(meta).mtime_ns;
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
