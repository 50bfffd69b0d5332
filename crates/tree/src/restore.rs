//! Restoring a directory snapshot into a directory.
//!
//! Every path is checked before anything is written ([`check_restore`]): a key that is empty,
//! `.` or `..`, or holds `/` or NUL, and a path below a symlink entry, could escape the target
//! and are refused with [`Error::UnsafePath`]; in a target that already holds files, a file or
//! symlink where the snapshot has a directory, or a directory where it has a file, is refused
//! with [`Error::RestoreConflict`]. Files are written through temp file + rename, with mode and
//! mtime.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use autosave_store::{Meter, Progress, Reader, Store};
use rayon::prelude::*;

use crate::dir::{KIND_DIR, KIND_SYMLINK};
use crate::error::{Error, Result};
use crate::fsio;
use crate::manifest::{Chunk, Content, Manifest, ManifestEntry};
use crate::meta::Meta;
use crate::path::EntryPath;
use crate::read::{blob_under, content_under};

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore into a target that already holds files, replacing those the snapshot has.
    /// Default `false`: a non-empty target is [`Error::TargetNotEmpty`].
    pub force: bool,
    /// Restore only this entry and what lies below it. Default: everything.
    pub only: Option<EntryPath>,
    /// Where to report entries written of those to restore, with the bytes of their files
    /// (counted as they are written). Default: nowhere.
    pub progress: Progress,
    /// Whether the restore waits for its files to reach the disk. Default:
    /// [`Durability::Synced`].
    pub durability: Durability,
}

/// Whether a restore makes its files durable before it returns.
///
/// Either way each file is written to a temp file and renamed into place, so a reader never
/// sees half a file, and the snapshot in the store is untouched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every file is fsynced before its rename and every directory before the restore returns:
    /// once it returns, a crash loses nothing it wrote.
    #[default]
    Synced,
    /// Nothing is fsynced: the restore returns once the bytes are with the operating system, as
    /// `cp`, `tar` and the restores of restic, borg and git do. A crash soon after may leave
    /// restored files empty or partial, or replaced files without their old content; restoring
    /// again from the store repairs them. For a target that will be thrown away, or checked
    /// anyway, this is about as fast as the disk's cache.
    Unsynced,
}

/// What a restore wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Regular files written.
    pub files: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Empty directories created.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Temp files removed that earlier restores, killed mid-file, left in the target's
    /// directories.
    pub stale_temps_removed: u64,
}

/// Restores the entries of `manifest` under `target`. Makes the checks of [`check_restore`]
/// first: when one fails, nothing is written.
pub fn restore_dir(
    store: &Store,
    manifest: &Manifest,
    target: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let entries = check_restore(manifest, target, options)?;
    // One shared lock for the whole restore: no garbage collection can remove a blob of the
    // snapshot between two of its reads.
    let reader = store.reader()?;
    // check_restore found the target empty, missing, or (with force) clear of conflicts.
    std::fs::create_dir_all(target).map_err(|e| Error::io("mkdir", target, e))?;
    let sync = options.durability == Durability::Synced;
    let mut report = RestoreReport::default();
    // Every directory first, so that the files can then be written in any order.
    let mut dirs = BTreeSet::from([target.to_path_buf()]);
    let file_bytes = entries
        .iter()
        .filter(|e| is_file(e))
        .map(|e| e.content.len());
    let meter = options
        .progress
        .start(entries.len() as u64, file_bytes.sum());
    for entry in &entries {
        make_parents(target, &entry.path, &mut dirs)?;
        if entry.kind == KIND_DIR {
            let path = local_path(target, &entry.path);
            fsio::ensure_dir(&path).map_err(|e| Error::io("mkdir", &path, e))?;
            report.dirs += 1;
            dirs.insert(path);
            meter.advance(1, 0);
        }
    }
    // A restore into the same target that was killed (Ctrl-C) left its temp files there (only
    // a target that holds files, which takes `force`, can have any).
    if options.force {
        report.stale_temps_removed = dirs.iter().map(|d| fsio::remove_stale_temps(d)).sum();
    }
    // Files and symlinks in parallel. A durable restore has each wait on its fsync, so more
    // threads than cores keep the disk and the decompression busy together. Without fsyncs
    // nothing waits: more threads than cores would only contend, spinning on the lock of a
    // file whose chunks several of them write (10-15 % slower on 2 cores at 1 GiB).
    let leaves: Vec<&&ManifestEntry> = entries.iter().filter(|e| e.kind != KIND_DIR).collect();
    let restore_all = || {
        leaves
            .par_iter()
            .map(|entry| {
                let leaf = restore_leaf(&reader, entry, target, &meter, sync)?;
                meter.advance(1, 0);
                Ok(leaf)
            })
            .collect::<Result<Vec<Leaf>>>()
    };
    let pool = match sync {
        true => rayon::ThreadPoolBuilder::new()
            .num_threads(RESTORE_THREADS)
            .build()
            .ok(),
        false => None,
    };
    let done = in_pool(pool.as_ref(), restore_all)?;
    for leaf in done {
        match leaf {
            Leaf::File(bytes) => {
                report.files += 1;
                report.bytes += bytes;
            }
            Leaf::Symlink => report.symlinks += 1,
        }
    }
    finish_dirs(&entries, target)?;
    if sync {
        // Together, as the files: a directory fsync waits on the disk, and fsyncs issued at once
        // share its cache flushes.
        in_pool(pool.as_ref(), || {
            dirs.par_iter()
                .try_for_each(|dir| fsio::sync_dir(dir).map_err(|e| Error::io("fsync", dir, e)))
        })?;
    }
    Ok(report)
}

/// Threads that write the files of a durable restore.
const RESTORE_THREADS: usize = 8;

/// Runs `f` in `pool`, or in the global pool without one.
fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// What restoring one file or symlink did.
enum Leaf {
    File(u64),
    Symlink,
}

/// The entries a restore of `manifest` into `target` would write, once it has checked that it
/// can write them all: [`Error::NoSuchEntry`] if [`RestoreOptions::only`] names nothing,
/// [`Error::UnsafePath`] for a path that could leave the target, [`Error::TargetNotEmpty`]
/// without [`RestoreOptions::force`], and with it [`Error::RestoreConflict`] where the target
/// holds a directory at a file's path or a non-directory at a directory's. Writes nothing, so a
/// dry run can make the same checks.
pub fn check_restore<'m>(
    manifest: &'m Manifest,
    target: &Path,
    options: &RestoreOptions,
) -> Result<Vec<&'m ManifestEntry>> {
    let entries: Vec<&ManifestEntry> = manifest
        .entries()
        .iter()
        .filter(|e| options.only.as_ref().is_none_or(|p| e.path.starts_with(p)))
        .collect();
    if let Some(only) = &options.only
        && entries.is_empty()
    {
        return Err(Error::NoSuchEntry { path: only.clone() });
    }
    check_paths(&entries)?;
    match std::fs::read_dir(target) {
        Ok(mut names) => {
            if names.next().is_some() {
                if !options.force {
                    return Err(Error::TargetNotEmpty {
                        path: target.to_path_buf(),
                    });
                }
                check_conflicts(&entries, target)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("list", target, e)),
    }
    Ok(entries)
}

/// Refuses, before anything is written, an entry the target's own files stand in the way of: a
/// file or symlink where the entry needs a directory (one of its parents, or itself for a
/// directory entry), or a directory where it is a file or symlink.
fn check_conflicts(entries: &[&ManifestEntry], target: &Path) -> Result<()> {
    let mut dirs: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for entry in entries {
        let keys = entry.path.keys();
        let mut at = target.to_path_buf();
        for (i, key) in keys.iter().enumerate() {
            at.push(key);
            let wants_dir = i + 1 < keys.len() || entry.kind == KIND_DIR;
            if wants_dir && dirs.contains(&at) {
                continue;
            }
            let conflict = |reason| Error::RestoreConflict {
                path: at.clone(),
                reason,
            };
            match std::fs::symlink_metadata(&at) {
                // Nothing there, nor below it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(Error::io("stat", &at, e)),
                Ok(m) if wants_dir && !m.is_dir() => {
                    return Err(conflict(
                        "the target has a file or symlink where the snapshot has a directory",
                    ));
                }
                Ok(_) if wants_dir => {
                    dirs.insert(at.clone());
                }
                Ok(m) if m.is_dir() => {
                    return Err(conflict(
                        "the target has a directory where the snapshot has a file or symlink",
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

/// Refuses any path that could leave the target, before anything is written.
fn check_paths(entries: &[&ManifestEntry]) -> Result<()> {
    let links: BTreeSet<&EntryPath> = entries
        .iter()
        .filter(|e| e.kind == KIND_SYMLINK)
        .map(|e| &e.path)
        .collect();
    for entry in entries {
        let unsafe_path = |reason| Error::UnsafePath {
            path: entry.path.clone(),
            reason,
        };
        if entry.path.keys().is_empty() {
            return Err(unsafe_path("the path has no keys"));
        }
        if let Some(reason) = entry.path.keys().iter().find_map(|k| bad_key(k)) {
            return Err(unsafe_path(reason));
        }
        let below_link = (1..entry.path.keys().len())
            .any(|n| links.contains(&EntryPath::new(entry.path.keys()[..n].iter().cloned())));
        if below_link {
            return Err(unsafe_path("it lies below a symlink"));
        }
    }
    Ok(())
}

fn bad_key(key: &str) -> Option<&'static str> {
    match key {
        "" => Some("a key is empty"),
        "." | ".." => Some("a key is `.` or `..`"),
        k if k.contains('/') => Some("a key contains `/`"),
        k if k.contains('\0') => Some("a key contains NUL"),
        k if cfg!(windows) && k.contains(['\\', ':']) => Some("a key contains `\\` or `:`"),
        _ => None,
    }
}

fn is_file(entry: &ManifestEntry) -> bool {
    entry.kind != KIND_DIR && entry.kind != KIND_SYMLINK
}

/// Restores one file or symlink; its directory exists already.
fn restore_leaf(
    reader: &Reader<'_>,
    entry: &ManifestEntry,
    target: &Path,
    meter: &Meter<'_>,
    sync: bool,
) -> Result<Leaf> {
    let path = local_path(target, &entry.path);
    let at = &path;
    let io = |op: &'static str| move |e| Error::io(op, at, e);
    if entry.kind == KIND_SYMLINK {
        let target = String::from_utf8(content_under(reader, &entry.content)?).map_err(|_| {
            Error::BadManifest {
                reason: format!("symlink {} has a target that is not UTF-8", entry.path),
            }
        })?;
        fsio::write_symlink(&path, &target).map_err(io("symlink"))?;
        return Ok(Leaf::Symlink);
    }
    let (mode, mtime) = mode_and_mtime(&entry.meta);
    let bytes = match &entry.content {
        // A chunked file: its chunks are fetched, verified and written at their offsets in
        // parallel, so one large file does not decompress on one core.
        Content::Chunks(chunks) if chunks.len() > 1 => {
            let fill = |file: &mut File| write_chunks(reader, chunks, file, meter, sync);
            fsio::write_file_with(&path, mode, mtime, sync, fill).map_err(io("write"))?
        }
        content => {
            let fill = |file: &mut File| write_blobs(reader, content, file, meter, sync);
            fsio::write_file_with(&path, mode, mtime, sync, fill).map_err(io("write"))?
        }
    };
    Ok(Leaf::File(bytes))
}

/// Writes the content's blobs (each verified as it is read) one after the other straight from
/// the decoded bytes; returns the file's length. Each blob's bytes start for the disk as soon
/// as they are written ([`fsio::WriteBehind`]).
fn write_blobs(
    reader: &Reader<'_>,
    content: &Content,
    file: &mut File,
    meter: &Meter<'_>,
    sync: bool,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    let file = &*file;
    let behind = fsio::WriteBehind::new(file, content.len(), sync);
    let mut put = |bytes: &[u8]| -> std::io::Result<()> {
        fsio::write_at(file, bytes, written)?;
        behind.wrote(written, bytes.len() as u64);
        meter.advance(0, bytes.len() as u64);
        written += bytes.len() as u64;
        Ok(())
    };
    if let Content::Inline(bytes) = content {
        put(bytes)?;
    }
    for digest in content.digests() {
        put(&blob_under(reader, &digest).map_err(std::io::Error::other)?)?;
    }
    if written != content.len() {
        return Err(std::io::Error::other(format!(
            "the content holds {written} bytes, the manifest says {}",
            content.len()
        )));
    }
    Ok(written)
}

/// Writes each chunk at its offset of `file`; returns the file's length. Each chunk starts for
/// the disk as soon as it is written ([`fsio::WriteBehind`]).
fn write_chunks(
    reader: &Reader<'_>,
    chunks: &[Chunk],
    file: &mut File,
    meter: &Meter<'_>,
    sync: bool,
) -> std::io::Result<u64> {
    let mut at = 0u64;
    let placed: Vec<(u64, &Chunk)> = chunks
        .iter()
        .map(|c| {
            let placed = (at, c);
            at += c.len;
            placed
        })
        .collect();
    file.set_len(at)?;
    let file = &*file;
    let behind = fsio::WriteBehind::new(file, at, sync);
    placed.par_iter().try_for_each(|&(offset, chunk)| {
        let bytes = blob_under(reader, &chunk.digest).map_err(std::io::Error::other)?;
        if bytes.len() as u64 != chunk.len {
            return Err(std::io::Error::other(format!(
                "chunk {} holds {} bytes, the manifest says {}",
                chunk.digest,
                bytes.len(),
                chunk.len
            )));
        }
        fsio::write_at(file, &bytes, offset)?;
        behind.wrote(offset, chunk.len);
        meter.advance(0, chunk.len);
        Ok(())
    })?;
    Ok(at)
}

fn local_path(target: &Path, path: &EntryPath) -> PathBuf {
    let mut out = target.to_path_buf();
    out.extend(path.keys());
    out
}

/// Creates the directories above an entry (and notes them for the final fsync), refusing
/// anything on the way that is not a real directory (a symlink there could lead outside the
/// target).
fn make_parents(target: &Path, path: &EntryPath, dirs: &mut BTreeSet<PathBuf>) -> Result<()> {
    let mut at = target.to_path_buf();
    for key in &path.keys()[..path.keys().len() - 1] {
        at.push(key);
        if dirs.insert(at.clone()) {
            fsio::ensure_dir(&at).map_err(|e| Error::io("mkdir", &at, e))?;
        }
    }
    Ok(())
}

/// Applies directory modes and mtimes, deepest first.
fn finish_dirs(entries: &[&ManifestEntry], target: &Path) -> Result<()> {
    for entry in entries.iter().rev().filter(|e| e.kind == KIND_DIR) {
        let path = local_path(target, &entry.path);
        let (mode, mtime) = mode_and_mtime(&entry.meta);
        fsio::finish_dir(&path, mode, mtime).map_err(|e| Error::io("set mode", &path, e))?;
    }
    Ok(())
}

/// The `mode` and `mtime_ns` of a directory snapshot's metadata, where present.
fn mode_and_mtime(meta: &str) -> (Option<u32>, Option<i64>) {
    let Ok(Meta::Map(map)) = Meta::from_json(meta) else {
        return (None, None);
    };
    let int = |k: &str| match map.get(k) {
        Some(Meta::Int(v)) => Some(*v),
        _ => None,
    };
    (
        int("mode").and_then(|m| u32::try_from(m).ok()),
        int("mtime_ns"),
    )
}
