//! Tests of the autosave policy: a table of scenarios, one per behaviour, and
//! a model-based property test with a simulated host.

mod model;
mod scenarios;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Taken once so every test measures time from the same fixed point.
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The instant `secs` seconds after the test base.
fn at(secs: u64) -> Instant {
    *BASE + Duration::from_secs(secs)
}
