//! Disk full and I/O errors through the simulated filesystem (issue #7, suite 5).
//!
//! For every write, fsync, link/rename, mkdir and unlink of an autosave and of a GC, and for
//! each of ENOSPC and EIO: a fresh store with two snapshots, the fault injected at that one
//! operation, then
//!
//! - the call returns a typed error naming the failed operation (`Error::Io` carrying the
//!   injected errno), or succeeds with everything it acknowledged durable;
//! - every snapshot acknowledged before is intact, read back byte for byte;
//! - a crash right after the failure (every unsynced change lost, or all kept) passes the crash
//!   oracle of suite 1;
//! - with the fault cleared, the same autosave (or GC, then an autosave) succeeds, verify with
//!   `read_data` is clean, and after GC no temp or orphan file remains.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test binary without the test harness reports its figures itself"
)]

#[path = "../sim/mod.rs"]
mod sim;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use autosave_store::{Error, Store};
use sim::crash::{self, Mode, Rng};
use sim::fs::{Fault, OpKind, SimFs};
use sim::oracle;
use sim::workload::{self, Model, Tree, generation};

/// Linux errno values.
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Autosave,
    Gc,
}

struct Setup {
    _dir: tempfile::TempDir,
    sim: Arc<SimFs>,
    store: Store,
    model: Model,
}

/// The autosave under test adds new nodes, so it creates fan-out directories too.
fn next_tree() -> Tree {
    let mut tree = generation(3);
    for i in 20..26 {
        tree.insert(format!("new-{i}"), workload::content(i, 5));
    }
    tree
}

fn setup(job: Job) -> Setup {
    let dir = workload::real_dir();
    let base = workload::utf8(&dir);
    std::fs::create_dir_all(base.join(".autosave")).expect("real store directory");
    let sim = Arc::new(SimFs::new(&base));
    let store = Store::open_with(base.join(".autosave"), workload::options(sim.clone()))
        .expect("create the store");
    let mut model = Model::default();
    for g in [1, 2] {
        workload::autosave(&store, &sim, &mut model, &generation(g)).expect("setup autosave");
    }
    if job == Job::Gc {
        let oldest = store.snapshots().expect("list")[0].id;
        model
            .events
            .push(workload::Event::DeleteBegun(vec![oldest]));
        sim.event();
        store
            .delete_snapshots(&[oldest])
            .expect("delete the oldest");
    }
    Setup {
        _dir: dir,
        sim,
        store,
        model,
    }
}

fn act(job: Job, s: &mut Setup) -> autosave_store::Result<()> {
    match job {
        Job::Autosave => workload::autosave(&s.store, &s.sim, &mut s.model, &next_tree()).map(drop),
        Job::Gc => s.store.gc().map(drop),
    }
}

/// Operations of each kind that `job` performs: the most of three runs (see [`run_armed`] for
/// why a run can make one fsync fewer).
fn census(job: Job) -> BTreeMap<OpKind, usize> {
    let mut most = BTreeMap::new();
    for _ in 0..3 {
        let mut s = setup(job);
        s.sim.set_fault(None);
        act(job, &mut s).expect("the job succeeds without faults");
        for (kind, n) in s.sim.counts() {
            let m = most.entry(kind).or_insert(0);
            *m = n.max(*m);
        }
    }
    most
}

#[derive(Default)]
struct Tally {
    points: usize,
    typed_errors: usize,
    absorbed: usize,
    crash_states: usize,
    violations: Vec<String>,
}

/// Runs `job` with `fault` armed on a fresh setup. Each snapshot record carries a random nonce,
/// so its blob lands in a random fan-out directory: about one run in thirty shares it with
/// another blob and makes one directory fsync fewer than the census counted. A run that did
/// not reach the fault because it had no such operation is not a finding; the job runs again
/// on a new setup, a bounded number of times.
fn run_armed(job: Job, fault: Fault) -> (Setup, autosave_store::Result<()>) {
    let mut attempts = 0;
    loop {
        let mut s = setup(job);
        s.sim.set_fault(Some(fault));
        s.sim.start_recording();
        let result = act(job, &mut s);
        s.sim.stop_recording();
        let performed = s.sim.counts().get(&fault.kind).copied().unwrap_or(0);
        attempts += 1;
        if s.sim.fault_fired() || performed > fault.nth || attempts == 20 {
            return (s, result);
        }
    }
}

fn inject(job: Job, fault: Fault, scratch: &camino::Utf8Path, tally: &mut Tally) {
    let label = format!(
        "{job:?} {:?} #{} errno {}",
        fault.kind, fault.nth, fault.errno
    );
    let mut bad = |v: String| tally.violations.push(format!("{label}: {v}"));
    let (mut s, result) = run_armed(job, fault);
    if !s.sim.fault_fired() {
        bad("the injection point was not reached (in 20 runs)".into());
    }
    match &result {
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(fault.errno) => {
            tally.typed_errors += 1;
        }
        Err(e) => bad(format!("the error does not carry the injected errno: {e}")),
        Ok(()) if fault.kind == OpKind::Fsync => bad("an fsync error was ignored".into()),
        Ok(()) => tally.absorbed += 1,
    }
    let mut out = Vec::new();
    let required = s.model.required(s.model.events.len());
    match oracle::check_snapshots(&s.store, &s.model, &required, &mut out) {
        Ok(damaged) if damaged.is_empty() => {}
        Ok(damaged) => out.push(format!("damaged after the fault: {damaged:?}")),
        Err(e) => out.push(format!("cannot list snapshots after the fault: {e}")),
    }
    // A crash right after the failure.
    let points = s.sim.take_points();
    let last = points.last().expect("recording keeps the start point");
    let mut rng = Rng::new(fault.nth as u64);
    for mode in [Mode::AllLost, Mode::AllKept] {
        let state = crash::crash_state(last, mode, &mut rng);
        out.extend(oracle::check(scratch, &state, &s.model));
        tally.crash_states += 1;
    }
    s.sim.set_fault(None);
    if let Err(e) = retry(job, &mut s, &mut out) {
        out.push(format!(
            "an operation failed after the fault was cleared: {e}"
        ));
    }
    out.extend(s.sim.barrier_violations());
    for v in out {
        bad(v);
    }
    tally.points += 1;
}

/// With the fault cleared: the job again, then an autosave, verify, GC and no leftovers.
fn retry(job: Job, s: &mut Setup, out: &mut Vec<String>) -> autosave_store::Result<()> {
    act(job, s)?;
    if job == Job::Gc {
        workload::autosave(&s.store, &s.sim, &mut s.model, &next_tree())?;
    }
    let report = s.store.verify(true)?;
    if !report.is_clean() {
        out.push(format!("verify after the retry: {:?}", report.damaged));
    }
    s.store.gc()?;
    let required = s.model.required(s.model.events.len());
    let damaged = oracle::check_snapshots(&s.store, &s.model, &required, out)?;
    if !damaged.is_empty() {
        out.push(format!("damaged after the retry and gc: {damaged:?}"));
    }
    oracle::check_leftovers(&s.store, &s.sim, out)
}

fn main() {
    let started = Instant::now();
    let scratch_dir = workload::real_dir();
    let scratch = workload::utf8(&scratch_dir);
    let mut tally = Tally::default();
    for job in [Job::Autosave, Job::Gc] {
        let counts = census(job);
        println!("  {job:?}: operations {counts:?}");
        for (&kind, &n) in &counts {
            for nth in 0..n {
                for errno in [ENOSPC, EIO] {
                    inject(job, Fault { kind, nth, errno }, &scratch, &mut tally);
                }
            }
        }
    }
    for v in tally.violations.iter().take(10) {
        println!("  violation: {v}");
    }
    println!(
        "injection points: {} tried ({} typed errors, {} absorbed), {} crash states after a \
         fault, {} violations ({:.1} s)",
        tally.points,
        tally.typed_errors,
        tally.absorbed,
        tally.crash_states,
        tally.violations.len(),
        started.elapsed().as_secs_f64()
    );
    if !tally.violations.is_empty() || tally.points == 0 {
        eprintln!("io_faults failed");
        std::process::exit(1);
    }
}
