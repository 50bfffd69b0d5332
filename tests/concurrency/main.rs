//! Issue #7, suite 6: concurrency between processes on one store.
//!
//! First, deterministic GC-vs-autosave races, each with a GC run in another process at a
//! chosen moment:
//!
//! - between a batch's dedupe hit on an unreferenced blob and its commit (the batch is paused
//!   there by the test): the GC must not take the blob from under the batch;
//! - after a GC in another process removed a blob that this process's dedupe cache, or a
//!   session's change cache, still remembers: the next snapshot must store it again.
//!
//! Then the soak: three writer processes (store-level writers with their own retention), a
//! GC process and a verifying reader share one store for `CONCURRENCY_SECONDS` (default 60).
//! Every acknowledged snapshot not deleted by its writer must read back byte for byte at the
//! end, no blob may go missing, and no writer or reader may see an error (in particular no
//! "busy").

#![expect(
    clippy::print_stdout,
    reason = "a harness-less test reports its figure and the children speak to the parent on stdout"
)]

#[path = "../support/mod.rs"]
#[allow(dead_code, reason = "each suite uses part of the shared support")]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use autosave::sample::noise;
use autosave::store::{Error as StoreError, NewSnapshot, SnapshotId, SnapshotKind, Store};
use autosave::tree::{ChangeCache, SnapshotSpec, write_snapshot};
use camino::{Utf8Path, Utf8PathBuf};

use support::{GenTree, Rng, content, encode_numbers, leftovers, numbers, read_snapshot};

const ROLE: &str = "CONCURRENCY_ROLE";
const DIR: &str = "CONCURRENCY_DIR";
const SECONDS: &str = "CONCURRENCY_CHILD_SECONDS";
const WRITER: &str = "CONCURRENCY_WRITER";
const WRITERS: u64 = 3;
/// Snapshots each writer keeps; it deletes its older ones, so GC has work.
const WRITER_KEEPS: usize = 3;

fn main() -> ExitCode {
    match std::env::var(ROLE) {
        Ok(role) => child(&role),
        Err(_) => {
            if support::selected("concurrency") {
                races();
                soak();
            }
            ExitCode::SUCCESS
        }
    }
}

/// Writer `w`'s tree at its iteration `i`. The `shared/*` arrays are the same in every writer
/// for the same `i / 5`, so writers dedupe against (and race with GC over) each other's blobs.
fn tree(w: u64, i: u64) -> GenTree {
    let mut t = GenTree::default();
    t.add(&["id"], "value", encode_numbers(&[w, i]), i);
    for k in 0..6u64 {
        let name = format!("{k}");
        t.add(
            &["shared", &name],
            "ndarray",
            content(20_000 + k as usize, (k << 40) | (i / 5)),
            i / 5,
        );
    }
    t.add(
        &["own", "signal"],
        "ndarray",
        content(60_000, (w << 40) | i),
        i,
    );
    for k in 0..20u64 {
        let name = format!("{k:02}");
        let version = i / (k + 1);
        t.add(
            &["own", "cells", &name],
            "code-cell",
            noise(100 + k as usize, (w << 48) | (k << 40) | version),
            version,
        );
    }
    t
}

fn say(line: &str) {
    let _ = std::io::stdout().write_all(format!("{line}\n").as_bytes());
}

// ---------------------------------------------------------------------------------------------
// Children.

fn child(role: &str) -> ExitCode {
    let dir = Utf8PathBuf::from(std::env::var(DIR).expect("the store directory"));
    let store = match Store::open(&dir) {
        Ok(store) => store,
        Err(e) => {
            say(&format!("ERR open: {e}"));
            return ExitCode::from(2);
        }
    };
    let until = Instant::now() + Duration::from_secs(support::count_from_env(SECONDS, 0));
    match role {
        "gc-once" => gc_once(&store),
        "writer" => writer(&store, support::count_from_env(WRITER, 0), until),
        "gc" => collector(&store, until),
        "reader" => reader(&store, until),
        other => panic!("unknown role {other}"),
    }
    ExitCode::SUCCESS
}

fn gc_once(store: &Store) {
    match store.gc() {
        Ok(r) => say(&format!("GC {}", r.blobs_removed)),
        Err(StoreError::Busy { .. }) => say("BUSY"),
        Err(e) => say(&format!("ERR {e}")),
    }
}

fn writer(store: &Store, w: u64, until: Instant) {
    let mut rng = Rng::new(w);
    let mut cache = ChangeCache::new();
    let mut mine = std::collections::VecDeque::new();
    let mut i = 0;
    while Instant::now() < until {
        i += 1;
        let t = tree(w, i);
        match write_snapshot(
            store,
            &mut cache,
            &t.nodes(),
            &SnapshotSpec::new(SnapshotKind::Autosave),
        ) {
            Ok(written) if written.report.errors.is_empty() => {
                let id = written.snapshot.expect("no skip condition was given");
                say(&format!("ACK {id} {w} {i}"));
                mine.push_back(id);
            }
            Ok(written) => say(&format!("ERR entries failed: {:?}", written.report.errors)),
            Err(e) => say(&format!("ERR autosave: {e}")),
        }
        if mine.len() > WRITER_KEEPS {
            let oldest = mine.pop_front().expect("more than WRITER_KEEPS");
            match store.delete_snapshots(&[oldest]) {
                Ok(()) => say(&format!("DEL {oldest}")),
                Err(e) => say(&format!("ERR delete: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(20)));
    }
}

fn collector(store: &Store, until: Instant) {
    let (mut runs, mut busy, mut removed) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        match store.gc() {
            Ok(r) => {
                runs += 1;
                removed += r.blobs_removed;
            }
            Err(StoreError::Busy { .. }) => busy += 1,
            Err(e) => say(&format!("ERR gc: {e}")),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    say(&format!("GCSTATS {runs} {busy} {removed}"));
}

fn reader(store: &Store, until: Instant) {
    let mut rng = Rng::new(99);
    let (mut read, mut gone, mut verified) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        let snapshots = match store.snapshots() {
            Ok(s) => s,
            Err(e) => {
                say(&format!("ERR list: {e}"));
                continue;
            }
        };
        if let Some(s) = snapshots.get(rng.below(snapshots.len().max(1) as u64) as usize) {
            match read_snapshot(store, s.id) {
                Ok(contents) => match numbers(&contents, &["id"]).as_deref() {
                    Some(&[w, i]) if contents == tree(w, i).contents() => read += 1,
                    _ => say(&format!("ERR snapshot {} read back wrong bytes", s.id)),
                },
                // An error is fine only for a snapshot its writer deleted meanwhile.
                Err(e) => match store.snapshot(s.id) {
                    Ok(None) => gone += 1,
                    _ => say(&format!("ERR live snapshot {} failed to read: {e}", s.id)),
                },
            }
        }
        if rng.below(10) == 0 {
            match store.verify(true) {
                Ok(r) if r.is_clean() => verified += 1,
                Ok(r) => say(&format!("ERR verify: {:?}", r.damaged)),
                Err(e) => say(&format!("ERR verify: {e}")),
            }
        }
        // A reader that never lets go of the shared lock would starve GC (which never waits).
        std::thread::sleep(Duration::from_millis(rng.below(10)));
    }
    say(&format!("READSTATS {read} {gone} {verified}"));
}

// ---------------------------------------------------------------------------------------------
// The parent: deterministic races.

fn spawn(role: &str, dir: &Utf8Path, envs: &[(&str, String)]) -> std::process::Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, role)
        .env(DIR, dir.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn a child")
}

/// Runs one GC in another process; its one line of output.
fn gc_in_another_process(dir: &Utf8Path) -> String {
    let out = spawn("gc-once", dir, &[])
        .wait_with_output()
        .expect("the GC process");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// A new store holding one unrelated snapshot (GC refuses to empty a store).
fn new_store() -> (tempfile::TempDir, Utf8PathBuf, Store) {
    let (tmp, project) = support::project();
    let dir = project.join(".autosave");
    let store = Store::open_or_create(&dir).expect("create the store");
    commit(&store, &noise(50_000, 0), b"an unrelated snapshot");
    (tmp, dir, store)
}

fn commit(store: &Store, blob: &[u8], label: &[u8]) -> SnapshotId {
    let batch = store.batch().expect("batch");
    let digest = batch.put(blob).expect("put").digest;
    let manifest = batch.put_file(label).expect("put manifest").digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    snapshot.refs.push(digest);
    batch.commit(snapshot).expect("commit").id
}

fn assert_clean(store: &Store, what: &str) {
    let report = store.verify(true).expect("verify");
    assert!(report.is_clean(), "{what}: {:?}", report.damaged);
}

fn races() {
    let started = Instant::now();
    gc_between_dedupe_and_commit();
    gc_behind_the_dedupe_cache();
    gc_behind_the_change_cache();
    println!(
        "concurrency: 3 deterministic GC-vs-autosave races held ({:.1} s): a GC in another \
         process while a batch paused between its dedupe hit and its commit was refused (busy) \
         and the commit kept the blob; a dedupe cache and a change cache that outlived a GC in \
         another process stored the removed blobs again; verify(read_data) clean after each",
        started.elapsed().as_secs_f64()
    );
}

fn gc_between_dedupe_and_commit() {
    let (_tmp, dir, store) = new_store();
    let array = noise(100_000, 1);
    let first = commit(&store, &array, b"manifest 1");
    store.delete_snapshots(&[first]).expect("delete");
    // The array's row is now unreferenced: exactly what a GC removes.
    let batch = store.batch().expect("batch");
    let put = batch.put(&array).expect("put");
    assert!(!put.new, "the array dedupes against its (unreferenced) row");
    // PAUSE: the batch has decided not to write the array. A GC now must not remove it.
    assert_eq!(gc_in_another_process(&dir), "BUSY");
    let manifest = batch.put_file(b"manifest 2").expect("put").digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    snapshot.refs.push(put.digest);
    batch.commit(snapshot).expect("commit after the refused GC");
    let removed = gc_in_another_process(&dir);
    assert!(removed.starts_with("GC "), "{removed}");
    assert_clean(&store, "after the paused batch");
    let reopened = Store::open(&dir).expect("reopen");
    assert_eq!(
        reopened.get(&put.digest).expect("get").as_deref(),
        Some(&array[..])
    );
}

fn gc_behind_the_dedupe_cache() {
    let (_tmp, dir, store) = new_store();
    let array = noise(100_000, 2);
    let first = commit(&store, &array, b"manifest 1");
    store.delete_snapshots(&[first]).expect("delete");
    // This process remembers that the array has a row; another process removes it.
    let removed = gc_in_another_process(&dir);
    assert!(removed.starts_with("GC ") && removed != "GC 0", "{removed}");
    let batch = store.batch().expect("batch");
    let put = batch.put(&array).expect("put");
    assert!(
        put.new,
        "a GC elsewhere removed the array: it must be written again"
    );
    drop(batch);
    commit(&store, &array, b"manifest 2");
    assert_clean(&store, "after a GC behind the dedupe cache");
}

fn gc_behind_the_change_cache() {
    let (_tmp, dir, store) = new_store();
    let t = tree(7, 1);
    let mut cache = ChangeCache::new();
    let spec = SnapshotSpec::new(SnapshotKind::Autosave);
    let first = write_snapshot(&store, &mut cache, &t.nodes(), &spec).expect("first");
    let first = first.snapshot.expect("committed");
    store.delete_snapshots(&[first]).expect("delete");
    let removed = gc_in_another_process(&dir);
    assert!(removed.starts_with("GC ") && removed != "GC 0", "{removed}");
    // Same tokens: the cache vouches for every entry, but the store no longer has them.
    let second = write_snapshot(&store, &mut cache, &t.nodes(), &spec).expect("second");
    let id = second.snapshot.expect("committed");
    assert_eq!(read_snapshot(&store, id).expect("read back"), t.contents());
    assert_clean(&store, "after a GC behind the change cache");
}

// ---------------------------------------------------------------------------------------------
// The parent: the soak.

#[derive(Default)]
struct Tally {
    acked: BTreeMap<SnapshotId, (u64, u64)>,
    deleted: BTreeSet<SnapshotId>,
    errors: Vec<String>,
    gc: Vec<u64>,
    reads: Vec<u64>,
}

fn soak() {
    let seconds = support::count_from_env("CONCURRENCY_SECONDS", 60);
    let (_tmp, project) = support::project();
    let dir = project.join(".autosave");
    drop(Store::open_or_create(&dir).expect("create the store"));
    let env = |w: u64| vec![(SECONDS, seconds.to_string()), (WRITER, w.to_string())];
    let started = Instant::now();
    let mut children: Vec<(String, std::process::Child)> = (1..=WRITERS)
        .map(|w| (format!("writer {w}"), spawn("writer", &dir, &env(w))))
        .collect();
    children.push(("gc".into(), spawn("gc", &dir, &env(0))));
    children.push(("reader".into(), spawn("reader", &dir, &env(0))));
    let outputs: Vec<(String, String)> = children
        .into_iter()
        .map(|(name, child)| (name, std::thread::spawn(move || collect(child))))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(name, h)| (name, h.join().expect("collector thread")))
        .collect();
    let elapsed = started.elapsed();
    let mut tally = Tally::default();
    for (name, out) in &outputs {
        parse(name, out, &mut tally);
    }
    assert!(
        tally.errors.is_empty(),
        "errors in the children: {:#?}",
        tally.errors
    );
    let (lost, checked) = final_check(&dir, &tally);
    let busy_leaked = tally
        .errors
        .iter()
        .filter(|e| e.contains("busy") || e.contains("locked"))
        .count();
    assert!(lost.is_empty(), "lost acknowledged snapshots: {lost:?}");
    let (gc_runs, gc_busy, gc_removed) = (tally.gc[0], tally.gc[1], tally.gc[2]);
    let (read, gone, verifies) = (tally.reads[0], tally.reads[1], tally.reads[2]);
    assert!(gc_runs > 0, "the GC process never got the store");
    assert!(
        read > 0 && verifies > 0,
        "the reader never completed a check"
    );
    let minimum = support::count_from_env("CONCURRENCY_MIN_ACKS", 1000);
    assert!(
        tally.acked.len() as u64 >= minimum,
        "only {} acknowledged autosaves (want {minimum})",
        tally.acked.len()
    );
    println!(
        "concurrency: {WRITERS} writers + GC + verifying reader for {:.0} s: {} acknowledged \
         autosaves, 0 lost ({checked} kept ones read back byte for byte, {} deleted by their \
         writers), 0 missing blobs, {busy_leaked} busy errors leaking to callers",
        elapsed.as_secs_f64(),
        tally.acked.len(),
        tally.deleted.len(),
    );
    println!(
        "concurrency: GC completed {gc_runs} times (removing {gc_removed} blobs), found the store \
         busy {gc_busy} times; the reader read back {read} snapshots exactly, {gone} deleted \
         under it (typed error), ran verify(read_data) {verifies} times, all clean"
    );
}

fn collect(mut child: std::process::Child) -> String {
    let mut out = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        out.push_str(&line.expect("a line from a child"));
        out.push('\n');
    }
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    let status = child.wait().expect("wait for a child");
    if !status.success() {
        out.push_str(&format!("ERR exit {status}: {err}\n"));
    }
    out
}

fn parse(name: &str, out: &str, tally: &mut Tally) {
    for line in out.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let num = |s: &str| -> u64 { s.parse().expect("a number") };
        match words.as_slice() {
            ["ACK", id, w, i] => {
                tally.acked.insert(SnapshotId(num(id)), (num(w), num(i)));
            }
            ["DEL", id] => {
                tally.deleted.insert(SnapshotId(num(id)));
            }
            ["GCSTATS", a, b, c] => tally.gc = vec![num(a), num(b), num(c)],
            ["READSTATS", a, b, c] => tally.reads = vec![num(a), num(b), num(c)],
            _ => tally.errors.push(format!("{name}: {line}")),
        }
    }
}

/// Reads back every acknowledged snapshot its writer did not delete; returns the lost ones and
/// how many were checked.
fn final_check(dir: &Utf8Path, tally: &Tally) -> (Vec<SnapshotId>, usize) {
    let store = Store::open(dir).expect("reopen after the soak");
    let present: BTreeSet<SnapshotId> = store
        .snapshots()
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    let kept: BTreeSet<SnapshotId> = tally
        .acked
        .keys()
        .filter(|id| !tally.deleted.contains(id))
        .copied()
        .collect();
    assert_eq!(present, kept, "the store holds exactly the kept snapshots");
    let mut lost = Vec::new();
    for (&id, &(w, i)) in tally.acked.iter().filter(|(id, _)| kept.contains(id)) {
        match read_snapshot(&store, id) {
            Ok(contents) if contents == tree(w, i).contents() => {}
            _ => lost.push(id),
        }
    }
    assert_clean(&store, "after the soak");
    store.gc().expect("a final GC");
    let left = leftovers(&store);
    assert!(left.is_empty(), "left after the final GC: {left:?}");
    assert_clean(&store, "after the final GC");
    (lost, kept.len())
}
