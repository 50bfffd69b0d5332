//! Known-bad orders of the commit protocol, for proving that the crash simulation catches them.
//!
//! Compiled in only with the `seeded-bugs` feature, which only this crate's own tests enable (as
//! a dev-dependency feature); without it [`active`] is a constant `false` and every seeded branch
//! is dead code. With it, at most one bug is switched on at a time, process-wide, by
//! `set_seeded_bug`; the default is none.

/// One known-bad order. Each names what the correct protocol does and the bug skips or reorders.
#[cfg_attr(
    not(feature = "seeded-bugs"),
    allow(unreachable_pub, reason = "public only with the seeded-bugs feature")
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum SeededBug {
    /// A blob file gets its final name without its data being fsynced first.
    SkipFileFsync = 1,
    /// The batch commits its rows without fsyncing the directories that gained names.
    SkipDirFsync = 2,
    /// The batch commits its rows first and writes its blob files afterwards.
    CommitBeforeBlobs = 3,
    /// GC unlinks files before the transaction that deletes their rows is committed.
    UnlinkBeforeGcCommit = 4,
    /// A put treats an existing file at the blob's name as proof that the blob is stored.
    DedupeByFileExistence = 5,
    /// The index is opened with `synchronous=NORMAL`: in WAL mode a COMMIT is not durable.
    SynchronousNormal = 6,
}

#[cfg(feature = "seeded-bugs")]
static ACTIVE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Switches `bug` on (or, with `None`, every bug off) for the whole process.
#[cfg(feature = "seeded-bugs")]
pub fn set_seeded_bug(bug: Option<SeededBug>) {
    let value = bug.map_or(0, |b| b as u8);
    ACTIVE.store(value, std::sync::atomic::Ordering::SeqCst);
}

/// Whether `bug` is switched on.
#[cfg(feature = "seeded-bugs")]
pub(crate) fn active(bug: SeededBug) -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::SeqCst) == bug as u8
}

/// Whether `bug` is switched on: never, in a build without the `seeded-bugs` feature.
#[cfg(not(feature = "seeded-bugs"))]
pub(crate) const fn active(bug: SeededBug) -> bool {
    let _ = bug;
    false
}
