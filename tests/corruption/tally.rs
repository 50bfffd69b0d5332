//! Counting outcomes per file kind and kind of damage, and printing the figures.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::mutation::{Mutation, Op};
use crate::oracle::Outcome;
use crate::reference::{FileKind, Reference};

/// One row of the matrix.
#[derive(Debug, Default, Clone, Copy)]
struct Row {
    mutations: usize,
    wrong: usize,
    panics: usize,
    misses: usize,
    damaged: usize,
    reported: usize,
    reported_by_failure: usize,
    open_errors: usize,
    typed_errors: usize,
    vanished: usize,
}

/// Everything counted over a run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    rows: BTreeMap<(FileKind, Op), Row>,
    failures: Vec<String>,
    newest_damaged: usize,
    said_why: usize,
    intact_exists: usize,
    intact_found: usize,
    repairs: usize,
    rebuilt: usize,
    snapshots: (usize, usize),
    file_entries: (usize, usize),
    inline_entries: (usize, usize),
    /// Snapshots that vanished from the index without an error, and of those, the ones whose
    /// record `verify` named as unindexed, and the ones a writable session brought back.
    vanished: (usize, usize, usize),
}

const SHOWN_FAILURES: usize = 30;

impl Tally {
    pub(crate) fn add(
        &mut self,
        r: &Reference,
        m: &Mutation,
        outcome: std::thread::Result<Outcome>,
    ) {
        let row = self.rows.entry((m.kind(r), m.op())).or_default();
        row.mutations += 1;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(panic) => {
                row.panics += 1;
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                self.fail(r, m, &format!("panic: {what}"));
                return;
            }
        };
        row.wrong += outcome.wrong.len();
        row.misses += outcome.misses.len();
        row.damaged += outcome.damaged;
        row.reported += outcome.reported;
        row.reported_by_failure += outcome.reported_by_failure;
        row.open_errors += usize::from(outcome.open_error.is_some());
        row.typed_errors += outcome.typed_errors;
        row.vanished += usize::from(outcome.vanished > 0);
        self.vanished.0 += outcome.vanished_named;
        self.vanished.1 += outcome.vanished;
        self.vanished.2 += outcome.vanished_adopted;
        for problem in outcome.wrong.iter().chain(&outcome.misses) {
            self.fail(r, m, problem);
        }
        if let Some(rec) = outcome.recovery {
            self.newest_damaged += 1;
            self.said_why += usize::from(rec.said_why);
            self.intact_exists += usize::from(rec.intact_exists);
            self.intact_found += usize::from(rec.intact_found);
        }
        if let Some(rep) = outcome.repair {
            self.repairs += 1;
            self.rebuilt += usize::from(rep.rebuilt);
            self.snapshots.0 += rep.snapshots_recovered;
            self.snapshots.1 += rep.snapshots_expected;
            self.file_entries.0 += rep.file_entries_exact;
            self.file_entries.1 += rep.file_entries;
            self.inline_entries.0 += rep.inline_entries_exact_or_reported;
            self.inline_entries.1 += rep.inline_entries;
        }
    }

    fn fail(&mut self, r: &Reference, m: &Mutation, problem: &str) {
        if self.failures.len() < SHOWN_FAILURES {
            self.failures.push(format!("{}: {problem}", describe(r, m)));
        }
    }

    /// Prints the table and the figures; whether the run passed.
    pub(crate) fn print(&self, elapsed: Duration) -> bool {
        println!(
            "\n{:<11} {:<10} {:>9} {:>6} {:>7} {:>8} {:>9} {:>10} {:>9} {:>8}",
            "file",
            "damage",
            "mutations",
            "wrong",
            "panics",
            "damaged",
            "reported",
            "by-failure",
            "no-open",
            "vanished"
        );
        let mut total = Row::default();
        for ((kind, op), row) in &self.rows {
            println!(
                "{:<11} {:<10} {:>9} {:>6} {:>7} {:>8} {:>9} {:>10} {:>9} {:>8}",
                format!("{kind:?}"),
                op.to_string(),
                row.mutations,
                row.wrong,
                row.panics,
                row.damaged,
                row.reported,
                row.reported_by_failure,
                row.open_errors,
                row.vanished
            );
            total.mutations += row.mutations;
            total.wrong += row.wrong;
            total.panics += row.panics;
            total.misses += row.misses;
            total.damaged += row.damaged;
            total.reported += row.reported + row.reported_by_failure;
            total.reported_by_failure += row.reported_by_failure;
            total.typed_errors += row.typed_errors;
        }
        let percent = |a: usize, b: usize| {
            if b == 0 {
                100.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!(
            "\ncorruption: {} mutations, {} wrong bytes, {} panics, damaged blobs reported: {}/{} ({:.1} %) ({} of them by verify failing on a damaged index), {} typed read errors, in {:.1} s",
            total.mutations,
            total.wrong,
            total.panics,
            total.reported,
            total.damaged,
            percent(total.reported, total.damaged),
            total.reported_by_failure,
            total.typed_errors,
            elapsed.as_secs_f64()
        );
        println!(
            "recovery: newest autosave damaged in {} mutations; the session said why in {}; an older intact autosave existed in {}; the session offered one that restored exactly in {}",
            self.newest_damaged, self.said_why, self.intact_exists, self.intact_found
        );
        println!(
            "repair after index damage: {} rebuilds of {} ({} failed); snapshots recovered {}/{}; entries without inline blobs read back exactly {}/{}; entries with inline blobs exact or reported {}/{}",
            self.rebuilt,
            self.repairs,
            self.repairs - self.rebuilt,
            self.snapshots.0,
            self.snapshots.1,
            self.file_entries.0,
            self.file_entries.1,
            self.inline_entries.0,
            self.inline_entries.1
        );
        println!(
            "vanished snapshots (the index lost them without an error): {}; their records named by verify as unindexed (check then says to run `repair index`): {}/{}; brought back by the next writable session, each read back exactly: {}/{}",
            self.vanished.1, self.vanished.0, self.vanished.1, self.vanished.2, self.vanished.1
        );
        for failure in &self.failures {
            println!("FAIL {failure}");
        }
        total.wrong == 0 && total.panics == 0 && total.misses == 0
    }
}

fn describe(r: &Reference, m: &Mutation) -> String {
    let name = |i: usize| r.files[i].rel.display().to_string();
    match m {
        Mutation::BitFlip { file, offset, bit } => {
            format!("flip bit {bit} at {offset} of {}", name(*file))
        }
        Mutation::Truncate { file, len } => format!("truncate {} to {len}", name(*file)),
        Mutation::Zero { file, offset, len } => {
            format!("zero {len} bytes at {offset} of {}", name(*file))
        }
        Mutation::Append { file, garbage } => {
            format!("append {} bytes to {}", garbage.len(), name(*file))
        }
        Mutation::Delete { file } => format!("delete {}", name(*file)),
        Mutation::Swap { a, b } => format!("swap {} and {}", name(*a), name(*b)),
        Mutation::DeleteDir { dir } => format!("delete directory {}", dir.display()),
    }
}
