//! Suite 1: record each workload on the simulated filesystem, build crash states at every
//! recorded point, and run the oracle on each distinct one.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use autosave_store::Store;

use super::crash::{self, CrashState, Mode, Rng};
use super::fs::{Point, SimFs};
use super::oracle;
use super::workload::{self, Model, generation, tree};

/// One recorded run of a workload.
pub struct Recorded {
    pub name: String,
    pub points: Vec<Point>,
    pub model: Model,
    /// Commit-barrier violations and failed operations during the run itself.
    pub violations: Vec<String>,
}

/// How many crash states to build and how to check them.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Aim for about this many distinct crash states over all workloads.
    pub target_states: usize,
    pub threads: usize,
    pub seed: u64,
    /// Stop at the first violation (for seeded bugs, where one is the expected outcome).
    pub stop_at_first: bool,
}

/// What checking found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub states: usize,
    pub violating_states: usize,
    pub violations: usize,
    /// (workload, points, distinct states) per workload.
    pub per_workload: Vec<(String, usize, usize)>,
    pub examples: Vec<String>,
    /// Violations found while recording (commit barrier, failed operations), not in crash
    /// states.
    pub run_violations: Vec<String>,
}

type Step<'a> = &'a dyn Fn(&Store, &SimFs, &mut Model) -> autosave_store::Result<()>;

/// Runs `setup` unrecorded and `steps` recorded on a fresh simulated filesystem (or on one
/// recovered from `from`), returning the recorded points.
fn record(
    name: &str,
    from: Option<(&CrashState, &Model)>,
    setup: Step<'_>,
    steps: Step<'_>,
) -> Recorded {
    let dir = workload::real_dir();
    let base = workload::utf8(&dir);
    let (sim, mut model) = match from {
        Some((state, model)) => (workload::materialise(&base, state), model.at(state.events)),
        None => {
            std::fs::create_dir_all(base.join(".autosave")).expect("real store directory");
            (std::sync::Arc::new(SimFs::new(&base)), Model::default())
        }
    };
    let mut violations = Vec::new();
    let open = || Store::open_with(base.join(".autosave"), workload::options(sim.clone()));
    match open().and_then(|store| setup(&store, &sim, &mut model)) {
        Ok(()) => {}
        Err(e) => violations.push(format!("{name}: setup failed: {e}")),
    }
    sim.start_recording();
    match open().and_then(|store| steps(&store, &sim, &mut model)) {
        Ok(()) => {}
        Err(e) => violations.push(format!("{name}: a step failed: {e}")),
    }
    sim.stop_recording();
    violations.extend(
        sim.barrier_violations()
            .into_iter()
            .map(|v| format!("{name}: commit barrier: {v}")),
    );
    Recorded {
        name: name.to_owned(),
        points: sim.take_points(),
        model,
        violations,
    }
}

fn save(g: u64) -> impl Fn(&Store, &SimFs, &mut Model) -> autosave_store::Result<()> {
    move |store, sim, model| workload::autosave(store, sim, model, &generation(g)).map(drop)
}

fn nothing(_: &Store, _: &SimFs, _: &mut Model) -> autosave_store::Result<()> {
    Ok(())
}

/// Runs every workload and returns the recordings.
pub fn workloads(seed: u64) -> Vec<Recorded> {
    let mut out = vec![
        record("first autosave", None, &nothing, &save(1)),
        record("incremental autosave", None, &save(1), &|st, sim, m| {
            save(2)(st, sim, m)?;
            save(3)(st, sim, m)
        }),
        record(
            "autosave touching many directories",
            None,
            &save(1),
            &|st, sim, m| workload::autosave(st, sim, m, &tree(48, |_| 10)).map(drop),
        ),
        record(
            "retention + gc",
            None,
            &|st, sim, m| {
                save(1)(st, sim, m)?;
                save(2)(st, sim, m)
            },
            &|st, sim, m| {
                save(3)(st, sim, m)?;
                workload::retention(st, sim, m, 2)?;
                save(4)(st, sim, m)?;
                workload::retention(st, sim, m, 2)
            },
        ),
    ];
    let crashed = &out[1];
    let mut rng = Rng::new(seed ^ 0x5eed);
    let picks = [
        (2, Mode::AllKept),
        (2, Mode::Random),
        (3, Mode::AllLost),
        (3, Mode::Random),
    ];
    let starts: Vec<CrashState> = picks
        .iter()
        .map(|&(quarter, mode)| {
            let point = &crashed.points[crashed.points.len() * quarter / 4];
            crash::crash_state(point, mode, &mut rng)
        })
        .collect();
    let model = crashed.model.clone();
    let recover = |st: &Store, sim: &SimFs, m: &mut Model| {
        st.gc()?;
        save(2)(st, sim, m)?;
        workload::retention(st, sim, m, 2)?;
        save(3)(st, sim, m)
    };
    let mut recoveries: Vec<Recorded> = starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            record(
                &format!("recovery after a crash #{i}"),
                Some((s, &model)),
                &nothing,
                &recover,
            )
        })
        .collect();
    // A crash in the middle of recovery's GC, then recovery again.
    let first = &recoveries[1];
    let mid_gc = first
        .points
        .iter()
        .position(|p| p.op.starts_with("unlink"))
        .unwrap_or(first.points.len() / 2);
    let twice = crash::crash_state(&first.points[mid_gc], Mode::Random, &mut rng);
    let again = record(
        "a crash during recovery",
        Some((&twice, &first.model)),
        &nothing,
        &recover,
    );
    out.append(&mut recoveries);
    out.push(again);
    out
}

/// Crash states are checked in chunks of this many, so that a long soak does not hold them all.
const CHUNK: usize = 20_000;

/// Builds the distinct crash states of every recording and checks them.
pub fn check(recorded: &[Recorded], settings: Settings) -> Outcome {
    let total_points: usize = recorded.iter().map(|r| r.points.len()).sum();
    let mut outcome = Outcome::default();
    for rec in recorded {
        outcome
            .run_violations
            .extend(rec.violations.iter().cloned());
    }
    let stop = AtomicBool::new(false);
    let mut work: Vec<(usize, CrashState)> = Vec::new();
    let mut generated = 0;
    let mut seen: Vec<HashSet<u128>> = vec![HashSet::new(); recorded.len()];
    // Each round gives each point up to `quota` more distinct states (a point with few unsynced
    // changes has fewer, and gives up after `quota * 8` tries); rounds go on until the target.
    let quota = settings.target_states.div_ceil(total_points.max(1));
    for round in 0..4u64 {
        for (w, rec) in recorded.iter().enumerate() {
            let seed = settings.seed.wrapping_add(w as u64) ^ (round << 32);
            let mut rng = Rng::new(seed);
            for point in &rec.points {
                states_at(point, quota, &mut rng, &mut seen[w], &mut |s| {
                    work.push((w, s))
                });
                if work.len() >= CHUNK {
                    generated += work.len();
                    run_chunk(recorded, &mut work, &stop, &mut outcome, settings);
                }
            }
        }
        if generated + work.len() >= settings.target_states {
            break;
        }
    }
    run_chunk(recorded, &mut work, &stop, &mut outcome, settings);
    for (w, rec) in recorded.iter().enumerate() {
        outcome
            .per_workload
            .push((rec.name.clone(), rec.points.len(), seen[w].len()));
    }
    outcome
}

/// Checks `work` on `settings.threads` threads, adding to `outcome`, and empties it.
fn run_chunk(
    recorded: &[Recorded],
    work: &mut Vec<(usize, CrashState)>,
    stop: &AtomicBool,
    outcome: &mut Outcome,
    settings: Settings,
) {
    if std::env::var_os("CRASH_SIM_DRY").is_some() || stop.load(Ordering::Relaxed) {
        outcome.states += if stop.load(Ordering::Relaxed) {
            0
        } else {
            work.len()
        };
        work.clear();
        return;
    }
    if settings.stop_at_first {
        // Looking for the first violation: visit the workloads interleaved, not one by one.
        let mut rng = Rng::new(settings.seed);
        for i in (1..work.len()).rev() {
            work.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    let next = AtomicUsize::new(0);
    let result = Mutex::new(std::mem::take(outcome));
    std::thread::scope(|scope| {
        for _ in 0..settings.threads.max(1) {
            scope.spawn(|| worker(recorded, work, &next, stop, &result, settings));
        }
    });
    *outcome = result.into_inner().expect("no checker panicked");
    work.clear();
}

/// Up to `quota` crash states at `point` not in `seen` yet: all lost, all kept, then random.
fn states_at(
    point: &Point,
    quota: usize,
    rng: &mut Rng,
    seen: &mut HashSet<u128>,
    add: &mut dyn FnMut(CrashState),
) {
    let modes = [Mode::AllLost, Mode::AllKept]
        .into_iter()
        .chain(std::iter::repeat_n(Mode::Random, quota * 8));
    let mut found = 0;
    for mode in modes {
        let state = crash::crash_state(point, mode, rng);
        if seen.insert(state.key()) {
            add(state);
            found += 1;
            if found >= quota {
                return;
            }
        }
    }
}

fn worker(
    recorded: &[Recorded],
    work: &[(usize, CrashState)],
    next: &AtomicUsize,
    stop: &AtomicBool,
    result: &Mutex<Outcome>,
    settings: Settings,
) {
    let dir = workload::real_dir();
    let base = workload::utf8(&dir);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= work.len() || stop.load(Ordering::Relaxed) {
            return;
        }
        let (w, state) = &work[i];
        let violations = oracle::check(&base, state, &recorded[*w].model);
        let mut out = result.lock().expect("no checker panicked");
        out.states += 1;
        if !violations.is_empty() {
            out.violating_states += 1;
            out.violations += violations.len();
            if out.examples.len() < 10 {
                out.examples.push(format!(
                    "{} after `{}`: {}",
                    recorded[*w].name,
                    state.op,
                    violations.join("; ")
                ));
            }
            if settings.stop_at_first {
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
}
