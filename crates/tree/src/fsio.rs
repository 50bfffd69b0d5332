//! The tree crate's one module that writes files (for restores): temp file in the target
//! directory → write → fsync → rename, and directory fsyncs.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prefix of temp files a restore leaves behind if it dies mid-file.
pub(crate) const TEMP_PREFIX: &str = ".autosave-restore-";

fn temp_path(dir: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()))
}

/// Removes the temp files in `dir` that restores left behind when they were killed mid-file
/// (Ctrl-C ends the command-line tool at once): those whose name carries the id of a process
/// that no longer runs. Returns how many it removed. Best effort: a file it cannot remove, or
/// a directory it cannot list, is left as it is.
///
/// Only Linux tells here whether a process runs (`/proc/PID`); elsewhere nothing is removed,
/// since the temp file of a restore still running into the same directory must stay.
pub(crate) fn remove_stale_temps(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if pid != own
            && !process_runs(pid)
            && entry.file_type().is_ok_and(|t| !t.is_dir())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with id `pid` runs (may be a different one that reused the id).
fn process_runs(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Writes a file at `path` atomically (readers see the old file or the whole new one): the
/// content is written by `fill` into a new temp file, at any offsets and from any number of
/// threads (`fill` returns the file's length), then `mode` (on Unix) and `mtime_ns` are set,
/// with `sync` the data is made durable, and the temp file is renamed to `path`.
pub(crate) fn write_file_with(
    path: &Path,
    mode: Option<u32>,
    mtime_ns: Option<i64>,
    sync: bool,
    fill: impl FnOnce(&mut File) -> io::Result<u64>,
) -> io::Result<u64> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let temp = temp_path(dir);
    let result = write_temp(&temp, fill, mode, mtime_ns, sync).and_then(|n| {
        rename(&temp, path)?;
        Ok(n)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes `bytes` at `offset` of `file` (positional: threads can write different parts at once).
#[cfg(unix)]
pub(crate) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Writes `bytes` at `offset` of `file` (positional: threads can write different parts at once).
#[cfg(windows)]
pub(crate) fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Starts writing `len` bytes at `offset` of `file` to the disk now, without waiting for them.
///
/// A durable restore fsyncs every file before its rename. Left alone, the kernel holds a file's
/// dirty pages until that fsync, so the disk idles while bytes are decompressed and then writes
/// the whole file at once. Started here, as each large part is written, the writing overlaps
/// the decompression and the fsync finds most of the file on the disk already. (A restore
/// without fsyncs starts it too for a file of [`DROP_EVERY`] bytes or more, so that
/// [`drop_clean_pages`] finds pages to drop.)
///
/// On Linux this is `posix_fadvise(POSIX_FADV_DONTNEED)` over the range's whole pages: it starts
/// writeback of their dirty pages and would drop the clean ones, of which there are none right
/// after the write. Each call also drains the per-CPU page lists when it cannot drop a page, so
/// it is made only for ranges of at least [`WRITEBACK_MIN`] bytes: smaller parts are fsynced
/// soon enough anyway. Best effort: it changes when the bytes reach the disk, never whether;
/// an fsync, if any, still decides that, so an error here is ignored.
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use rustix::fs::{Advice, fadvise};
    const PAGE: u64 = 4096;
    let end = offset.saturating_add(len) / PAGE * PAGE;
    if len < WRITEBACK_MIN || end <= offset {
        return;
    }
    if let Some(len) = std::num::NonZeroU64::new(end - offset) {
        let _ = fadvise(file, offset, Some(len), Advice::DontNeed);
    }
}

/// Starts writing a range of `file` to the disk now (a no-op on this platform).
#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// The smallest written range whose writeback [`start_writeback`] starts early.
pub(crate) const WRITEBACK_MIN: u64 = 256 << 10;

/// Drops the pages of `file` that are clean (on the disk already) from the page cache.
///
/// A restore writes bytes that it will not read again, so once they are on the disk the page
/// cache holding them too buys nothing, and the next file's pages can be those same pages.
/// Left cached, the bytes of a large restore take fresh memory for every page; on a virtual
/// machine whose host takes back the memory its guest frees, touching fresh memory costs a
/// page fault on the host for each page, which made writing 1 GiB durably take 2.3-2.5 s
/// against 0.3-0.5 s with the pages dropped as they reach the disk (docs/performance.md,
/// "Restores and the page cache").
/// Dirty pages and pages under writeback stay. Best effort: it changes what stays in memory,
/// never what is on the disk, so an error here is ignored.
#[cfg(target_os = "linux")]
pub(crate) fn drop_clean_pages(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Drops the clean pages of a file from the page cache (a no-op on this platform).
#[cfg(not(target_os = "linux"))]
pub(crate) fn drop_clean_pages(_file: &File) {}

/// How many bytes a restore writes to one file between two [`drop_clean_pages`].
pub(crate) const DROP_EVERY: u64 = 16 << 20;

/// What a restore does as it writes a file's bytes: it starts their writeback
/// ([`start_writeback`]), and every [`DROP_EVERY`] bytes it drops the file's pages that are on
/// the disk by then ([`drop_clean_pages`]), so a large file does not hold its whole length in
/// memory (until its fsync, or without one, until the kernel writes it back). Nothing here
/// waits for the disk. Without an fsync to come, a file shorter than [`DROP_EVERY`] is left to
/// the kernel, as before: it would have nothing to drop, and early writeback is the disk work
/// a restore without fsyncs is there to spare. Parts may be reported from several threads, in
/// any order.
pub(crate) struct WriteBehind<'f> {
    file: &'f File,
    active: bool,
    written: std::sync::atomic::AtomicU64,
}

impl<'f> WriteBehind<'f> {
    /// For `file`, of `len` bytes, written for a restore that fsyncs it (`sync`) or not.
    pub(crate) fn new(file: &'f File, len: u64, sync: bool) -> Self {
        Self {
            file,
            active: sync || len >= DROP_EVERY,
            written: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `len` bytes at `offset` were written.
    pub(crate) fn wrote(&self, offset: u64, len: u64) {
        if !self.active {
            return;
        }
        start_writeback(self.file, offset, len);
        let before = self
            .written
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        if before / DROP_EVERY != (before + len) / DROP_EVERY {
            drop_clean_pages(self.file);
        }
    }
}

fn write_temp(
    temp: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<u64>,
    mode: Option<u32>,
    mtime_ns: Option<i64>,
    sync: bool,
) -> io::Result<u64> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    let n = fill(&mut file)?;
    if let Some(mode) = mode {
        set_mode(&file, mode)?;
    }
    if let Some(ns) = mtime_ns {
        file.set_modified(time_of(ns))?;
    }
    // ORDER: the data is durable before the name points at it.
    if sync {
        file.sync_all()?;
        // (A file too small for early writeback is left in memory: a drop costs a syscall, and
        // can cost a drain of every core's page lists, for too few pages to matter.)
        if n >= WRITEBACK_MIN {
            drop_clean_pages(&file);
        }
    }
    Ok(n)
}

#[expect(
    clippy::disallowed_methods,
    reason = "this is the tree crate's one module that writes files"
)]
fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

/// Creates a symlink at `path` pointing at `target`, replacing whatever is there.
#[cfg(unix)]
pub(crate) fn write_symlink(path: &Path, target: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let temp = temp_path(dir);
    std::os::unix::fs::symlink(target, &temp)?;
    rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// Symlinks cannot be restored on this platform.
#[cfg(not(unix))]
pub(crate) fn write_symlink(_path: &Path, _target: &str) -> io::Result<()> {
    Err(io::Error::other(
        "symlinks are not supported on this platform",
    ))
}

/// Creates a directory (not its parents); an existing real directory is fine, anything else at
/// that name (a file, or a symlink that could lead outside the target) is an error.
pub(crate) fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path)?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other("exists and is not a directory"))
            }
        }
        other => other,
    }
}

/// Sets a directory's mode and mtime (after its children were written).
pub(crate) fn finish_dir(path: &Path, mode: Option<u32>, mtime_ns: Option<i64>) -> io::Result<()> {
    let dir = File::open(path)?;
    if let Some(ns) = mtime_ns {
        // Not every filesystem lets a directory's mtime be set through a read-only handle;
        // the content matters more than the timestamp.
        let _ = dir.set_modified(time_of(ns));
    }
    if let Some(mode) = mode {
        set_mode(&dir, mode)?;
    }
    Ok(())
}

/// Makes a directory's entries durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}
