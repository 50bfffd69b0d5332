//! Crash states by simulation (issue #7, suite 1) and seeded bugs caught (suite 2).
//!
//! Suite 1 runs each workload on a simulated filesystem, builds the crash states at every
//! recorded point and checks the oracle on each (`docs/reliability/crash-sim.md`). Suite 2
//! switches on each known-bad order of the protocol in turn and expects suite 1 to fail.
//!
//! Settings (environment): `CRASH_SIM_STATES` (about how many distinct crash states; default
//! 11000), `CRASH_SIM_THREADS` (default 2), `CRASH_SIM_SEED` (default 7).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test binary without the test harness reports its figures itself"
)]

#[path = "../sim/mod.rs"]
mod sim;

use std::time::Instant;

use autosave_store::{SeededBug, set_seeded_bug};
use sim::suite::{self, Settings};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const BUGS: [SeededBug; 6] = [
    SeededBug::SkipFileFsync,
    SeededBug::SkipDirFsync,
    SeededBug::CommitBeforeBlobs,
    SeededBug::UnlinkBeforeGcCommit,
    SeededBug::DedupeByFileExistence,
    SeededBug::SynchronousNormal,
];

fn main() {
    let settings = Settings {
        target_states: env("CRASH_SIM_STATES", 11_000) as usize,
        threads: env("CRASH_SIM_THREADS", 2) as usize,
        seed: env("CRASH_SIM_SEED", 7),
        stop_at_first: false,
    };
    let started = Instant::now();
    set_seeded_bug(None);
    let recorded = suite::workloads(settings.seed);
    let outcome = suite::check(&recorded, settings);
    for (name, points, states) in &outcome.per_workload {
        println!("  {name}: {points} points, {states} distinct crash states");
    }
    for example in outcome.run_violations.iter().chain(&outcome.examples) {
        println!("  violation: {example}");
    }
    let suite1 = started.elapsed();
    let mut caught = 0;
    for bug in BUGS {
        let started = Instant::now();
        set_seeded_bug(Some(bug));
        let recorded = suite::workloads(settings.seed);
        let found = suite::check(
            &recorded,
            Settings {
                target_states: settings.target_states / 4,
                stop_at_first: true,
                ..settings
            },
        );
        set_seeded_bug(None);
        let verdict = if found.violations > 0 {
            format!("caught by the oracle after {} crash states", found.states)
        } else {
            format!("NOT caught in {} crash states", found.states)
        };
        println!(
            "  seeded bug {bug:?}: {verdict}, {} commit-barrier/run violations ({:.1} s)",
            found.run_violations.len(),
            started.elapsed().as_secs_f64(),
        );
        let first_of_each = found.run_violations.first().into_iter();
        for example in first_of_each.chain(found.examples.first()) {
            println!("    {example}");
        }
        caught += usize::from(found.violations > 0);
    }
    println!(
        "crash states: {} checked, {} oracle violations ({:.1} s); seeded bugs caught: {caught}/{}",
        outcome.states,
        outcome.violations + outcome.run_violations.len(),
        suite1.as_secs_f64(),
        BUGS.len()
    );
    let ok = outcome.violations == 0
        && outcome.run_violations.is_empty()
        && outcome.states >= 10_000.min(settings.target_states)
        && caught == BUGS.len();
    if !ok {
        eprintln!("crash_sim failed");
        std::process::exit(1);
    }
}
