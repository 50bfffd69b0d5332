//! A simulated host, for the example, the CLI's `demo` and documentation: a generated project
//! tree (arrays, tables, scripts, code cells, notes, inline values) with the edits a user makes,
//! and a scripted session (busy/idle phases driven through the policy, autosaves, an explicit
//! save, a crash, recovery) that reports each step.

use std::time::{Duration, Instant};

use autosave_policy::{Action, Config, Event, Policy};
use autosave_store::Stats;
use autosave_tree::{EntryPath, Node, Token};
use camino::Utf8Path;

use crate::error::Result;
use crate::session::{Options, SaveReport, Session};

/// One node of the sample project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleNode {
    /// Its path keys.
    pub path: Vec<String>,
    /// Its kind.
    pub kind: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its version token, bumped on every edit.
    pub token: u64,
}

/// A generated project held in memory, as a host's kernel would hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleProject {
    /// The nodes.
    pub nodes: Vec<SampleNode>,
}

impl SampleProject {
    /// A project of about `mib` MiB: float64 signal arrays, an int32 label map, CSV tables,
    /// scripts, code cells, a note and inline values. Deterministic for a given size.
    pub fn generate(mib: usize) -> Self {
        let mut p = Self::default();
        let array_bytes = (mib.max(1) << 20) / 4;
        for (i, name) in ["raw", "filtered", "fit", "residual"].iter().enumerate() {
            p.add(
                &["arrays", name],
                "ndarray",
                signal(array_bytes * 3 / 4, i as u64),
            );
        }
        p.add(&["arrays", "labels"], "ndarray", labels(array_bytes / 4));
        p.add(&["tables", "runs.csv"], "dataframe", table(2000));
        p.add(&["tables", "calibration.csv"], "dataframe", table(300));
        p.add(
            &["scripts", "fit.py"],
            "script",
            b"import numpy as np\n\ndef fit(x, y):\n    return np.polyfit(x, y, 3)\n".repeat(20),
        );
        p.add(
            &["scripts", "plot.py"],
            "script",
            b"import matplotlib.pyplot as plt\nplt.plot(x, y)\n".repeat(10),
        );
        p.add(
            &["cells"],
            "code-cells",
            br#"["x = load('raw')", "y = fit(x)", "plot(x, y)"]"#.to_vec(),
        );
        p.add(
            &["notes", "lab book"],
            "note",
            b"Run 12: detector recalibrated.\n".to_vec(),
        );
        p.add(&["values", "temperature/K"], "value", b"293.15".to_vec());
        p
    }

    fn add(&mut self, path: &[&str], kind: &'static str, bytes: Vec<u8>) {
        self.nodes.push(SampleNode {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            kind,
            bytes,
            token: 1,
        });
    }

    /// Rewrites `fraction` of node `index`'s bytes in the middle (as a filter applied to a
    /// region of an array would), bumping its token.
    pub fn edit_region(&mut self, index: usize, fraction: f64, seed: u64) {
        let node = &mut self.nodes[index];
        let n = ((node.bytes.len() as f64) * fraction) as usize;
        let at = node.bytes.len() / 2 - n / 2;
        let fresh = noise(n, seed);
        node.bytes[at..at + n].copy_from_slice(&fresh);
        node.token += 1;
    }

    /// Appends a line to the note, bumping its token.
    pub fn append_note(&mut self, line: &str) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.kind == "note") {
            node.bytes.extend_from_slice(line.as_bytes());
            node.token += 1;
        }
    }

    /// The nodes as the library takes them: bytes lent, tokens given.
    pub fn nodes(&self) -> Vec<Node<'_>> {
        self.nodes
            .iter()
            .map(|n| {
                Node::bytes(EntryPath::new(n.path.iter().cloned()), n.kind, &n.bytes)
                    .with_token(Token(n.token))
            })
            .collect()
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.nodes.iter().map(|n| n.bytes.len()).sum()
    }

    /// Whether the project has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `len` deterministic pseudo-random (incompressible) bytes for `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// float64 values of a smooth signal with noisy low bytes (compresses about 1.5x, like
/// measured data).
fn signal(len: usize, seed: u64) -> Vec<u8> {
    let low = noise(len, seed + 100);
    let mut out = Vec::with_capacity(len);
    for (k, chunk) in low.chunks(8).enumerate() {
        let v = 100.0 + (k as f64 * 1e-4 + seed as f64).sin();
        let hi = v.to_le_bytes();
        for (lane, b) in chunk.iter().enumerate() {
            out.push(if lane < 4 { *b } else { hi[lane] });
        }
    }
    out
}

fn labels(len: usize) -> Vec<u8> {
    (0..len / 4)
        .flat_map(|i| ((i / 4096 % 9) as u32).to_le_bytes())
        .collect()
}

fn table(rows: usize) -> Vec<u8> {
    let mut out = String::from("step,time_s,temperature_K,energy_eV\n");
    for i in 0..rows {
        let t = i as f64 * 0.01;
        out.push_str(&format!(
            "{i},{t:.2},{:.4},{:.6}\n",
            300.0 + (t * 3.0).sin(),
            -1.5 + 0.1 * (t * 7.0).cos()
        ));
    }
    out.into_bytes()
}

/// One step of the scripted demo.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DemoStep {
    /// What happened.
    pub name: &'static str,
    /// The save it made, if it made one.
    pub report: Option<SaveReport>,
    /// The store's sizes after the step.
    pub stats: Stats,
    /// A sentence about the outcome.
    pub detail: String,
}

/// Runs the scripted session on `project_dir` (its store is `project_dir/.autosave`) with a
/// project of about `mib` MiB, calling `on_step` after each step. Simulated time drives the
/// policy, so the demo takes as long as the work, not as long as the intervals.
pub fn run_demo(
    project_dir: &Utf8Path,
    mib: usize,
    mut on_step: impl FnMut(&DemoStep),
) -> Result<()> {
    let mut project = SampleProject::generate(mib);
    let mut session = Session::open(project_dir, Options::default())?;
    let t0 = Instant::now();
    let mut policy = Policy::new(Config::default(), t0);
    let mut step = |session: &Session, name, report, detail: String| -> Result<()> {
        on_step(&DemoStep {
            name,
            report,
            stats: session.store().stats()?,
            detail,
        });
        Ok(())
    };

    policy.handle(Event::Idle, t0);
    policy.handle(Event::Edited, t0);
    let at = |s: u64| t0 + Duration::from_secs(s);
    let report = due_autosave(&mut policy, &mut session, &project, at(300))?;
    step(
        &session,
        "first autosave",
        report,
        "the whole project is new: everything is hashed and stored".into(),
    )?;

    policy.handle(Event::Edited, at(310));
    policy.handle(Event::Busy, at(320));
    let deferred = policy.poll(at(610)).is_none();
    policy.handle(Event::Idle, at(650));
    let report = due_autosave(&mut policy, &mut session, &project, at(650))?;
    step(
        &session,
        "autosave, nothing changed",
        report,
        format!(
            "due 300 s after the first while the kernel was busy (deferred: {deferred}), fired on idle; no token changed, so no snapshot"
        ),
    )?;

    project.edit_region(0, 0.01, 7);
    project.append_note("Fit converged after recalibration.\n");
    policy.handle(Event::Edited, at(700));
    let report = due_autosave(&mut policy, &mut session, &project, at(950))?;
    step(
        &session,
        "autosave after a 1 % edit",
        report,
        "only the edited array's changed chunks and the note are read and stored".into(),
    )?;

    let report = session.save_explicit(&project.nodes())?;
    policy.handle(Event::ExplicitSaveStarted, at(960));
    policy.handle(Event::ExplicitSaveFinished { ok: true }, at(961));
    let cleared = matches!(policy.poll(at(961)), Some(Action::ClearSuperseded));
    step(
        &session,
        "explicit save",
        Some(report),
        format!(
            "a baseline; superseded autosaves removed and collected (policy asked to clear: {cleared})"
        ),
    )?;

    project.edit_region(2, 0.02, 8);
    policy.handle(Event::Edited, at(1000));
    let report = due_autosave(&mut policy, &mut session, &project, at(1261))?;
    let expected = project.clone();
    step(
        &session,
        "edit, autosave, then crash",
        report,
        "the process dies before the user saves".into(),
    )?;
    drop(session);

    let session = Session::open(project_dir, Options::default())?;
    let recovery = session
        .recovery()?
        .expect("an unsaved autosave is offered after the crash");
    let restored = session.restore(recovery.snapshot.id)?;
    let identical = restored.entries.len() == expected.nodes.len()
        && expected.nodes.iter().all(|n| {
            restored
                .entries
                .iter()
                .any(|e| e.path.keys() == n.path.as_slice() && e.content == n.bytes)
        });
    step(
        &session,
        "reopen and recover",
        None,
        format!(
            "recovery offered snapshot {} ({} of {} entries, {} bytes differ from the baseline); restored tree identical: {identical}",
            recovery.snapshot.id,
            recovery.changed_entries,
            recovery.entries,
            recovery.changed_bytes
        ),
    )?;
    Ok(())
}

/// Polls the policy at `now`; if it says autosave, autosaves and tells it how that went.
fn due_autosave(
    policy: &mut Policy,
    session: &mut Session,
    project: &SampleProject,
    now: Instant,
) -> Result<Option<SaveReport>> {
    if policy.poll(now) != Some(Action::Autosave) {
        return Ok(None);
    }
    let result = session.autosave(&project.nodes());
    policy.handle(Event::AutosaveFinished { ok: result.is_ok() }, now);
    result.map(Some)
}
