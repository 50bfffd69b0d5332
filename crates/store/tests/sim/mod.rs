#![allow(
    unreachable_pub,
    dead_code,
    reason = "shared by two test binaries, each using a part of it"
)]

//! A simulated filesystem under the store, the crash states it can be left in, the oracle that
//! judges each, and the workloads that drive it. Shared by the `crash_sim` and `io_faults`
//! suites; `docs/reliability/crash-sim.md` describes the model and the figures.

pub mod crash;
pub mod fs;
pub mod oracle;
pub mod suite;
pub mod workload;
