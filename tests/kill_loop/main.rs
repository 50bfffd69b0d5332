//! Issue #7, suite 3: the kill -9 loop.
//!
//! A child process (this binary, re-executed) opens a session on a project, recovers, then
//! autosaves a 1,000-entry tree in a loop, printing `ACK <id> <iteration>` only after each
//! autosave returned. The parent SIGKILLs it after a random delay (during start-up and recovery,
//! an autosave, or the retention and garbage collection that follow one), reopens the project
//! and checks the oracle:
//!
//! 1. every acknowledged snapshot that retention keeps is present and reads back byte for byte;
//! 2. every snapshot present is exactly one generated tree (never a mix), acknowledged or the
//!    one being committed when the child died;
//! 3. recovery offers the newest snapshot, and restoring it gives that tree;
//! 4. after recovery and GC, `verify(read_data)` is clean and no temp or orphan file remains.
//!
//! The kill moment is random: half the time within the child's start-up, recovery and first
//! autosave, half the time within its second autosave (its spans are learnt as the loop runs).
//! `KILL_LOOP_ITERATIONS` (default 1000) and `KILL_LOOP_SEED` tune a run; see
//! `docs/reliability/processes.md`.

#![expect(
    clippy::print_stdout,
    reason = "a harness-less test reports its figure and the child speaks to its parent on stdout"
)]

#[path = "../support/mod.rs"]
#[allow(dead_code, reason = "each suite uses part of the shared support")]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use autosave::sample::noise;
use autosave::store::{ChunkParams, SnapshotId, SnapshotKind};
use autosave::{Options, Session};
use camino::Utf8Path;

use support::{
    Contents, GenTree, Rng, content, encode_numbers, leftovers, ms, numbers, percentile,
};

const CHILD_DIR: &str = "KILL_LOOP_CHILD_DIR";
const CHILD_START: &str = "KILL_LOOP_CHILD_START";
/// Autosaves retention keeps (the session default).
const KEEP: usize = 10;
/// Entries of the generated tree besides its iteration number and four arrays.
const CELLS: u64 = 995;

fn main() -> ExitCode {
    match std::env::var(CHILD_DIR) {
        Ok(dir) => child(Utf8Path::new(&dir)),
        Err(_) => {
            if support::selected("kill_loop") {
                parent();
            }
            ExitCode::SUCCESS
        }
    }
}

fn options() -> Options {
    let mut options = Options::default();
    assert_eq!(options.keep_autosaves, KEEP);
    // Small chunks, so that the 1 MiB array is chunked and each edit writes a few chunks.
    options.store.chunking = ChunkParams {
        threshold: 256 << 10,
        min: 16 << 10,
        avg: 64 << 10,
        max: 256 << 10,
    };
    options
}

/// The tree of iteration `i`: 1,000 entries, each a function of `i` alone. Every iteration
/// changes the iteration number and the big array (one 4 KiB region, so a few chunks); cell
/// `k` changes every `1 + k % 50` iterations, the signal every third; one array never changes.
/// Most cells are small enough to live inside the manifest; every tenth is a blob.
fn tree(i: u64) -> GenTree {
    let mut t = GenTree::default();
    t.add(&["iteration"], "value", encode_numbers(&[i]), i);
    for k in 0..CELLS {
        let version = i / (1 + k % 50);
        let len = if k % 10 == 0 {
            65 + ((k * 131 + version * 17) % 600) as usize
        } else {
            8 + ((k + version) % 57) as usize
        };
        let name = format!("{k:04}");
        t.add(
            &["cells", &name],
            "code-cell",
            noise(len, (k << 40) ^ version),
            version,
        );
    }
    t.add(
        &["arrays", "signal"],
        "ndarray",
        content(200_000, (1 << 50) | (i / 3)),
        i / 3,
    );
    t.add(&["arrays", "static"], "ndarray", content(300_000, 7), 0);
    let mut big = content(1 << 20, 9);
    let at = (i % 16) as usize * (64 << 10) + 1000;
    big[at..at + 4096].copy_from_slice(&noise(4096, (2 << 50) | i));
    t.add(&["arrays", "big"], "ndarray", big, i);
    t.add(
        &["notes", "today"],
        "note",
        format!("note {}", i / 7).repeat(20).into_bytes(),
        i / 7,
    );
    t
}

// ---------------------------------------------------------------------------------------------
// The child: autosave in a loop until killed.

fn child(dir: &Utf8Path) -> ExitCode {
    let start: u64 = std::env::var(CHILD_START)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    match autosave_forever(dir, start) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "child error: {e}");
            ExitCode::from(2)
        }
    }
}

fn say(line: &str) {
    // One write per line, so a kill never leaves half a line behind a whole one.
    let _ = std::io::stdout().write_all(format!("{line}\n").as_bytes());
}

fn autosave_forever(dir: &Utf8Path, start: u64) -> autosave::Result<()> {
    say("OPEN");
    let mut session = Session::open(dir, options())?;
    say("RECOVERY");
    if let Some(r) = session.recovery()? {
        session.restore(r.snapshot.id)?;
    }
    for i in start.. {
        say(&format!("AUTOSAVE {i}"));
        let report = session.autosave(&tree(i).nodes())?;
        if let Some(id) = report.snapshot {
            say(&format!("ACK {id} {i}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The parent: kill, reopen, check.

/// Where the child was when it died, judged from its last line and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Open,
    Recovery,
    BeforeCommit,
    AfterCommit,
    BetweenAutosaves,
}

/// What the parent knows about the history of the store.
#[derive(Default)]
struct Model {
    /// Acknowledged snapshots: id → iteration.
    acked: BTreeMap<SnapshotId, u64>,
    /// Every snapshot known to have been committed (acknowledged, or seen in the store).
    committed: BTreeMap<SnapshotId, u64>,
    /// Snapshots whose content was already read back in full.
    verified: BTreeSet<SnapshotId>,
    /// The most autosaves the store may hold: 10 after an autosave returned (its retention
    /// completed), one more for each commit whose retention a kill cut short since.
    most: usize,
    /// The most autosaves seen in the store after a kill.
    most_seen: usize,
}

/// What one run of the child printed.
struct Run {
    acks: Vec<(SnapshotId, u64)>,
    in_progress: Option<u64>,
    last: Option<String>,
    highest: u64,
}

fn parent() {
    let iterations = support::count_from_env("KILL_LOOP_ITERATIONS", 1000);
    let mut pace = Pace {
        first: Duration::from_millis(200),
        next: Duration::from_millis(100),
    };
    let seed = support::seed_from_env("KILL_LOOP_SEED");
    println!("kill loop: seed {seed} (KILL_LOOP_SEED={seed} repeats the delays)");
    let (_tmp, dir) = support::project();
    let mut rng = Rng::new(seed);
    let mut model = Model {
        most: KEEP,
        ..Model::default()
    };
    let mut phases: BTreeMap<Phase, u64> = BTreeMap::new();
    let mut recovery_times = Vec::new();
    let mut next = 1;
    let started = Instant::now();
    for iteration in 0..iterations {
        let at = pace.pick(&mut rng);
        let run = kill_child(&dir, next, &at, &mut pace);
        next = run.highest + 1;
        let ctx = format!("iteration {iteration}, seed {seed}");
        let (phase, took) = check(&dir, &mut model, &run, &ctx);
        *phases.entry(phase).or_default() += 1;
        recovery_times.push(took);
    }
    let entries = tree(1).nodes.len();
    println!(
        "kill loop: {iterations} iterations in {:.0} s, 0 lost acknowledged snapshots \
         ({} acknowledged, {} committed, each read back), every oracle held",
        started.elapsed().as_secs_f64(),
        model.acked.len(),
        model.committed.len(),
    );
    println!(
        "kill loop: killed during open {}, recovery {}, autosave before commit {}, \
         after commit (retention, GC) {}, between autosaves {}",
        phases.get(&Phase::Open).unwrap_or(&0),
        phases.get(&Phase::Recovery).unwrap_or(&0),
        phases.get(&Phase::BeforeCommit).unwrap_or(&0),
        phases.get(&Phase::AfterCommit).unwrap_or(&0),
        phases.get(&Phase::BetweenAutosaves).unwrap_or(&0),
    );
    println!(
        "kill loop: recovery (open + recovery() + restore, {entries} entries, stores of {KEEP} \
         to {} snapshots) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        model.most_seen,
        ms(percentile(&recovery_times, 50.0)),
        ms(percentile(&recovery_times, 99.0)),
        ms(percentile(&recovery_times, 100.0)),
    );
}

/// When to kill: after the child acknowledged `acks` autosaves, plus `delay`.
struct KillAt {
    acks: usize,
    delay: Duration,
}

/// How long the child takes, learnt as it runs, so that kill moments spread over its phases
/// on a fast machine as on a slow one.
struct Pace {
    /// Spawn to first acknowledgement.
    first: Duration,
    /// One acknowledgement to the next.
    next: Duration,
}

impl Pace {
    fn learn(estimate: &mut Duration, sample: Duration) {
        *estimate = (*estimate * 7 + sample) / 8;
    }

    /// A random kill moment: during start-up, recovery and the first autosave, or during the
    /// second autosave (with its retention and GC).
    fn pick(&self, rng: &mut Rng) -> KillAt {
        let acks = rng.below(2) as usize;
        let span = if acks == 0 { self.first } else { self.next };
        let micros = u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1);
        KillAt {
            acks,
            delay: Duration::from_micros(rng.below(micros)),
        }
    }
}

/// Runs the child from iteration `start` and SIGKILLs it at `at`.
fn kill_child(dir: &Utf8Path, start: u64, at: &KillAt, pace: &mut Pace) -> Run {
    let exe = std::env::current_exe().expect("the test binary's path");
    let spawned = Instant::now();
    let mut child = Command::new(exe)
        .env(CHILD_DIR, dir.as_str())
        .env(CHILD_START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((line, Instant::now()));
        }
    });
    let mut lines = Vec::new();
    let mut last_ack = spawned;
    let mut acks = 0;
    while acks < at.acks {
        let (line, when) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(received) => received,
            // It died by itself: reported below, with its stderr.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the writer made no progress for 60 s"),
        };
        if line.starts_with("ACK ") {
            let since = if acks == 0 {
                &mut pace.first
            } else {
                &mut pace.next
            };
            Pace::learn(since, when - last_ack);
            last_ack = when;
            acks += 1;
        }
        lines.push(line);
    }
    std::thread::sleep(at.delay);
    let _ = child.kill();
    let status = child.wait().expect("wait for the writer");
    reader.join().expect("the reader thread");
    lines.extend(rx.try_iter().map(|(line, _)| line));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert!(
        status.code().is_none(),
        "the writer exited by itself ({status}) instead of being killed: {stderr}"
    );
    parse_run(&lines, start)
}

fn parse_run(lines: &[String], start: u64) -> Run {
    let mut run = Run {
        acks: Vec::new(),
        in_progress: None,
        last: None,
        highest: start.saturating_sub(1),
    };
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["AUTOSAVE", i] => {
                let i: u64 = i.parse().expect("an iteration number");
                run.in_progress = Some(i);
                run.highest = i;
            }
            ["ACK", id, i] => {
                let i: u64 = i.parse().expect("an iteration number");
                run.acks.push((SnapshotId(id.parse().expect("an id")), i));
                run.in_progress = None;
            }
            ["OPEN" | "RECOVERY"] => {}
            _ => panic!("unexpected line from the writer: {line:?}"),
        }
        run.last = Some(words[0].to_owned());
    }
    run
}
/// Reopens the project as a host would after the crash and checks every oracle. Returns where
/// the child died and how long recovery took.
fn check(dir: &Utf8Path, model: &mut Model, run: &Run, ctx: &str) -> (Phase, Duration) {
    for &(id, i) in &run.acks {
        model.acked.insert(id, i);
        model.committed.insert(id, i);
    }
    let t0 = Instant::now();
    let session = Session::open(dir, options()).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    let recovery = session
        .recovery()
        .unwrap_or_else(|e| panic!("{ctx}: recovery: {e}"));
    let restored = recovery.as_ref().map(|r| {
        session
            .restore(r.snapshot.id)
            .unwrap_or_else(|e| panic!("{ctx}: restore {}: {e}", r.snapshot.id))
    });
    let took = t0.elapsed();

    let store = session.store();
    let present: Vec<SnapshotId> = store
        .snapshots()
        .unwrap_or_else(|e| panic!("{ctx}: list: {e}"))
        .iter()
        .inspect(|s| assert_eq!(s.kind, SnapshotKind::Autosave, "{ctx}"))
        .map(|s| s.id)
        .collect();
    let committed_now = learn_unacknowledged(model, run, &present, ctx);
    if !run.acks.is_empty() {
        model.most = KEEP;
    }
    model.most += usize::from(committed_now);
    check_retention(model, &present, ctx);
    model.most_seen = model.most_seen.max(present.len());
    // Recovery must offer the newest snapshot, and restore it exactly.
    match (present.last(), recovery, restored) {
        (None, None, None) => {}
        (Some(&newest), Some(r), Some(restored)) => {
            assert_eq!(r.snapshot.id, newest, "{ctx}: recovery offers the newest");
            assert!(r.problem.is_none(), "{ctx}: {:?}", r.problem);
            let contents: Contents = restored
                .entries
                .iter()
                .map(|e| (e.path.keys().to_vec(), (e.kind.clone(), e.content.clone())))
                .collect();
            assert_is_tree(&contents, model.committed[&newest], ctx);
            model.verified.insert(newest);
        }
        (newest, r, _) => panic!(
            "{ctx}: newest snapshot {newest:?} but recovery offered {:?}",
            r.map(|r| r.snapshot.id)
        ),
    }
    // Every other snapshot is read back in full once; snapshots never change, and the verify
    // below re-hashes every blob they need after every kill.
    for &id in &present {
        if model.verified.insert(id) {
            let contents = support::read_snapshot(store, id)
                .unwrap_or_else(|e| panic!("{ctx}: snapshot {id} does not read back: {e}"));
            assert_is_tree(
                &contents,
                model.committed[&id],
                &format!("{ctx}, snapshot {id}"),
            );
        }
    }
    let report = store
        .verify(true)
        .unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    assert!(report.is_clean(), "{ctx}: verify: {report:?}");
    store.gc().unwrap_or_else(|e| panic!("{ctx}: gc: {e}"));
    let left = leftovers(store);
    assert!(left.is_empty(), "{ctx}: left after GC: {left:?}");
    (phase(run, committed_now), took)
}

/// Adds a snapshot the child committed but died before acknowledging; it can only be the
/// one it was writing, and only the newest. Returns whether there was one.
fn learn_unacknowledged(model: &mut Model, run: &Run, present: &[SnapshotId], ctx: &str) -> bool {
    let newest_known = model.committed.keys().next_back().copied();
    let mut found = false;
    for &id in present {
        if model.committed.contains_key(&id) {
            continue;
        }
        let i = run
            .in_progress
            .unwrap_or_else(|| panic!("{ctx}: snapshot {id} was never being written"));
        assert!(
            !found && newest_known.is_none_or(|n| id > n) && Some(&id) == present.last(),
            "{ctx}: unexpected snapshot {id} (present {present:?})"
        );
        model.committed.insert(id, i);
        found = true;
    }
    found
}

/// Retention keeps the newest 10 autosaves (more if children died between a commit and the
/// deletion that follows it; the next autosave that completes deletes them): the snapshots
/// present must be exactly the newest of all those ever committed, and every acknowledged one
/// among the newest 10 must be there.
fn check_retention(model: &Model, present: &[SnapshotId], ctx: &str) {
    let newest_first: Vec<SnapshotId> = model.committed.keys().rev().copied().collect();
    let lost: Vec<SnapshotId> = newest_first
        .iter()
        .take(KEEP)
        .filter(|id| model.acked.contains_key(id) && !present.contains(id))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{ctx}: lost acknowledged snapshots {lost:?}"
    );
    let expected: Vec<SnapshotId> = newest_first[..present.len()]
        .iter()
        .rev()
        .copied()
        .collect();
    assert_eq!(
        present, expected,
        "{ctx}: the store is not the newest run of committed snapshots"
    );
    let floor = KEEP.min(newest_first.len());
    assert!(
        (floor..=model.most).contains(&present.len()),
        "{ctx}: {} snapshots present ({floor} to {} expected), {} committed",
        present.len(),
        model.most,
        newest_first.len()
    );
}

fn assert_is_tree(contents: &Contents, i: u64, ctx: &str) {
    let found = numbers(contents, &["iteration"]);
    assert_eq!(found, Some(vec![i]), "{ctx}: the iteration entry");
    assert!(
        *contents == tree(i).contents(),
        "{ctx}: content differs from iteration {i}'s tree"
    );
}

fn phase(run: &Run, committed_now: bool) -> Phase {
    match run.last.as_deref() {
        None | Some("OPEN") => Phase::Open,
        Some("RECOVERY") => Phase::Recovery,
        Some("AUTOSAVE") if committed_now => Phase::AfterCommit,
        Some("AUTOSAVE") => Phase::BeforeCommit,
        _ => Phase::BetweenAutosaves,
    }
}
