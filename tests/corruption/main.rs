//! Issue #7, suites 4 and 8: the corruption matrix and repair.
//!
//! A reference store (a baseline and three autosaves, with inline entries, inline blobs,
//! compressed (plain and byte-plane) and raw blob files and chunked content, its index captured
//! with a live WAL) is damaged in every way the matrix lists, one mutation per fresh copy: single
//! bit flips at many offsets, truncations, zeroed blocks, appended garbage and deletion of every
//! file (blob files, `index.sqlite`, its WAL and shared memory, `FORMAT`, `LOCK`, `OPEN`,
//! `SESSION`);
//! deletion of every fan-out directory; every pair of blob files swapped. After each one the oracle
//! (`oracle.rs`) opens the store, reads everything, verifies, asks the session what to recover
//! and, after index damage, rebuilds the index. Then the repair scenarios (`repair.rs`) run.
//!
//! The run fails on any wrong byte, panic, damaged blob `verify` does not name, snapshot lost
//! without index damage, or snapshot or file-backed entry a rebuild does not bring back.
//!
//! Environment: `AUTOSAVE_CORRUPTION_SCALE` (default 1) multiplies the sampled bit flips and
//! truncations (the soak setting); `AUTOSAVE_CORRUPTION_SEED` picks them (default fixed);
//! `AUTOSAVE_CORRUPTION_THREADS` (default 2); `AUTOSAVE_CORRUPTION_DIR` for the scratch copies
//! (default `/dev/shm` when it exists, else the system temp directory).

#![expect(
    clippy::unwrap_used,
    reason = "in a test binary a failed unwrap is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "the test writes damaged copies of a store on purpose"
)]
#![expect(clippy::print_stdout, reason = "the test binary reports its figures")]

mod mutation;
mod oracle;
mod reference;
mod repair;
mod tally;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use camino::Utf8Path;

use crate::mutation::Mutation;
use crate::reference::{FileKind, Reference};
use crate::tally::Tally;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scratch_base() -> PathBuf {
    match std::env::var_os("AUTOSAVE_CORRUPTION_DIR") {
        Some(dir) => dir.into(),
        None if std::path::Path::new("/dev/shm").is_dir() => "/dev/shm".into(),
        None => std::env::temp_dir(),
    }
}

fn main() -> ExitCode {
    let scale = env_or("AUTOSAVE_CORRUPTION_SCALE", 1usize).max(1);
    let seed = env_or("AUTOSAVE_CORRUPTION_SEED", 7u64);
    let threads = env_or("AUTOSAVE_CORRUPTION_THREADS", 2usize).max(1);
    let start = Instant::now();
    let project = tempfile::tempdir().unwrap();
    let (live, closed) = reference::build(Utf8Path::from_path(project.path()).unwrap());
    // Every file of the store as a session leaves it open (rows in the WAL), and the
    // checkpointed index a closed store has.
    let live_matrix = mutation::matrix(&live, |_| true, seed, scale);
    let closed_matrix = mutation::matrix(&closed, |k| k == FileKind::IndexClosed, seed, scale);
    println!(
        "corruption: reference store of {} files ({} bytes), {} snapshots; {} mutations (seed {seed}, scale {scale}, {threads} threads)",
        live.files.len(),
        live.files.iter().map(|f| f.bytes.len()).sum::<usize>(),
        live.snapshots.len(),
        live_matrix.len() + closed_matrix.len(),
    );
    let mut tally = Tally::default();
    run_matrix(&live, &live_matrix, threads, &mut tally);
    run_matrix(&closed, &closed_matrix, threads, &mut tally);
    let reference = live;
    let matrix_ok = tally.print(start.elapsed());
    let repair_ok = repair::run(&reference, &scratch_base());
    println!("corruption: total {:.1} s", start.elapsed().as_secs_f64());
    if matrix_ok && repair_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_matrix(reference: &Reference, matrix: &[Mutation], threads: usize, into: &mut Tally) {
    let tally = Mutex::new(std::mem::take(into));
    let next = AtomicUsize::new(0);
    let base = scratch_base();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let scratch = tempfile::tempdir_in(&base).unwrap();
                let root = scratch.path().join(".autosave");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(m) = matrix.get(i) else { break };
                    let applied = m.apply(reference);
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        oracle::check(reference, m, &applied, &root)
                    }));
                    tally.lock().unwrap().add(reference, m, outcome);
                }
            });
        }
    });
    *into = tally.into_inner().unwrap();
}
