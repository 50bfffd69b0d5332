//! Issue #7, suite 5, on the real filesystem: ENOSPC and EIO injected by strace into every
//! write, fsync, rename, link, mkdir, unlink and truncate of an autosave and of a GC.
//!
//! A child process (this binary, re-executed under `strace -f -e inject=SYSCALL:error=ERRNO:
//! when=N`) opens a session on a copy of a prepared project, autosaves a changed tree (whose
//! retention deletes the previous autosave and runs GC) and runs one more GC. For every syscall,
//! both errors and every N until strace reports no more injections, the oracle is:
//!
//! - the child exits with a typed error (exit code 2, the error's message, no panic), or
//!   succeeds, in which case what it acknowledged must be in the store;
//! - the previous snapshot is intact (or superseded by the new one, complete);
//! - the next autosave, with the fault gone, succeeds and reads back byte for byte;
//! - `verify(read_data)` is clean, and after GC no temp or orphan file remains.
//!
//! strace must be installed; the suite fails (it does not skip) without it.

#![expect(
    clippy::print_stdout,
    reason = "a harness-less test reports its figure on stdout"
)]

#[path = "../support/mod.rs"]
#[allow(dead_code, reason = "each suite uses part of the shared support")]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::Instant;

use autosave::sample::noise;
use autosave::store::ChunkParams;
use autosave::{Options, Session};
use camino::{Utf8Path, Utf8PathBuf};

use support::{GenTree, content, encode_numbers, leftovers, numbers, read_snapshot};

const CHILD_DIR: &str = "IO_FAULTS_CHILD_DIR";
/// Exit code of a child that failed with a typed error.
const TYPED_ERROR: i32 = 2;
/// The syscalls through which an autosave or a GC changes the disk.
const SYSCALLS: &[&str] = &[
    "write",
    "pwrite64",
    "writev",
    "fsync",
    "fdatasync",
    "ftruncate",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
];
const ERRNOS: &[&str] = &["ENOSPC", "EIO"];

fn main() -> ExitCode {
    match std::env::var(CHILD_DIR) {
        Ok(dir) => child(Utf8Path::new(&dir)),
        Err(_) => {
            if support::selected("io_faults") {
                parent();
            }
            ExitCode::SUCCESS
        }
    }
}

fn options() -> Options {
    let mut options = Options {
        // One autosave kept: each autosave deletes the previous one and collects its blobs.
        keep_autosaves: 1,
        ..Options::default()
    };
    // Small chunks, so that the chunked array writes several chunk files.
    options.store.chunking = ChunkParams {
        threshold: 64 << 10,
        min: 4 << 10,
        avg: 16 << 10,
        max: 64 << 10,
    };
    options
}

/// Generation `g` of the project: every node changes with `g`, and a chunked array changes
/// in one region only, so an autosave writes inline blobs, blob files and chunks, and dedupes.
fn tree(g: u64) -> GenTree {
    let mut t = GenTree::default();
    t.add(&["generation"], "value", encode_numbers(&[g]), g);
    t.add(&["arrays", "signal"], "ndarray", content(40_000, g), g);
    t.add(
        &["arrays", "static"],
        "ndarray",
        content(30_000, 1 << 40),
        0,
    );
    let mut big = content(200_000, 2 << 40);
    let at = (g % 8) as usize * 20_000;
    big[at..at + 1000].copy_from_slice(&noise(1000, (3 << 40) | g));
    t.add(&["arrays", "big"], "ndarray", big, g);
    for k in 0..5u64 {
        let name = format!("{k}");
        t.add(
            &["cells", &name],
            "code-cell",
            noise(200, (4 << 40) | (k << 20) | g),
            g,
        );
    }
    t
}

// ---------------------------------------------------------------------------------------------
// The child: one autosave (with its retention GC) and one GC.

fn child(dir: &Utf8Path) -> ExitCode {
    match autosave_and_collect(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The injected fault may hit this very write; the exit code still tells.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(TYPED_ERROR as u8)
        }
    }
}

fn autosave_and_collect(dir: &Utf8Path) -> autosave::Result<()> {
    let mut session = Session::open(dir, options())?;
    session.autosave(&tree(3).nodes())?;
    session.store().gc()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// The outcome of one injection run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The child reported a typed error; the new autosave was not recorded.
    ErrorNothingCommitted,
    /// The child reported a typed error after the new autosave was committed (retention or GC
    /// failed); the caller saw no acknowledgement, and the snapshot is complete.
    ErrorAfterCommit,
    /// The fault was absorbed (e.g. a failed unlink of a file GC removes again next time) and
    /// the child succeeded; its snapshot is in the store.
    Succeeded,
}

fn parent() {
    let strace = which_strace();
    let (_tmp, root) = support::project();
    let template = root.join("template");
    prepare(&template);
    let started = Instant::now();
    let mut per_syscall: BTreeMap<String, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut example_errors: BTreeMap<String, String> = BTreeMap::new();
    let mut absorbed: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = 0;
    for syscall in SYSCALLS {
        for errno in ERRNOS {
            for n in 1.. {
                let work = root.join(format!("run-{runs}"));
                runs += 1;
                copy_dir(&template, &work);
                let ctx = format!("{syscall}:error={errno}:when={n}");
                let run = run_child(&strace, &work, syscall, errno, n);
                if !run.injected {
                    assert!(
                        run.code == Some(0),
                        "{ctx}: uninjected run failed: {}",
                        run.stderr
                    );
                    std::fs::remove_dir_all(&work).expect("remove the run's copy");
                    break;
                }
                let outcome = check(&work, &run, &ctx);
                *per_syscall.entry(format!("{syscall}/{errno}")).or_default() += 1;
                *outcomes.entry(outcome).or_default() += 1;
                if outcome == Outcome::Succeeded {
                    for call in run.calls {
                        *absorbed.entry(format!("{call} {errno}")).or_default() += 1;
                    }
                } else {
                    example_errors
                        .entry(syscall.to_string())
                        .or_insert_with(|| run.stderr.trim().to_owned());
                }
                std::fs::remove_dir_all(&work).expect("remove the run's copy");
            }
        }
    }
    let points: usize = per_syscall.values().sum();
    assert!(points > 0, "no injection point was ever reached");
    println!(
        "io faults (strace): {points} injection points tried ({runs} runs in {:.0} s), \
         0 violations: {} typed errors with nothing committed, {} typed errors after the \
         commit, {} faults absorbed with a correct success",
        started.elapsed().as_secs_f64(),
        outcomes.get(&Outcome::ErrorNothingCommitted).unwrap_or(&0),
        outcomes.get(&Outcome::ErrorAfterCommit).unwrap_or(&0),
        outcomes.get(&Outcome::Succeeded).unwrap_or(&0),
    );
    let list: Vec<String> = per_syscall
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "io faults (strace): points per syscall/errno: {}",
        list.join(", ")
    );
    let list: Vec<String> = absorbed.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("io faults (strace): absorbed: {}", list.join(", "));
    for (syscall, error) in &example_errors {
        println!("io faults (strace): e.g. {syscall}: {error}");
    }
}

fn which_strace() -> Utf8PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v strace"])
        .output()
        .expect("run sh");
    let path = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    assert!(
        out.status.success() && !path.is_empty(),
        "strace is not installed: this suite needs it (apt-get install -y strace; .ci/run does)"
    );
    Utf8PathBuf::from(path)
}

/// A project whose store holds generation 2 (generation 1 was deleted by retention and
/// collected), plus a stray file in `tmp/` for GC to remove.
fn prepare(project: &Utf8Path) {
    std::fs::create_dir_all(project).expect("mkdir template");
    let mut session = Session::open(project, options()).expect("open the template");
    for g in 1..=2 {
        session.autosave(&tree(g).nodes()).expect("prepare");
    }
    drop(session);
    let mut stray = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(project.join(".autosave/tmp/stray"))
        .expect("a stray temp file");
    stray.write_all(b"left by a crash").expect("write stray");
}

fn copy_dir(from: &Utf8Path, to: &Utf8Path) {
    std::fs::create_dir_all(to).expect("mkdir copy");
    for entry in from.read_dir_utf8().expect("list template") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

struct Run {
    injected: bool,
    /// The files the injected calls were about, relative to the project.
    calls: Vec<String>,
    code: Option<i32>,
    stderr: String,
}

/// `syscall(file)` from a line of `strace -y`, the file relative to `project`.
fn file_of(line: &str, project: &Utf8Path) -> String {
    let name = line.split_whitespace().nth(1).unwrap_or("");
    let syscall = name.split('(').next().unwrap_or("");
    let file = line
        .split(['<', '"'])
        .find(|part| part.starts_with(project.as_str()))
        .map_or("?", |f| f.trim_start_matches(project.as_str()));
    let file = file.split(['>', '"']).next().unwrap_or(file);
    let file = file.trim_start_matches('/');
    // Blob and temp file names differ between runs; the kind of file is what matters.
    let file = match file.rsplit_once('/') {
        Some((dir, name)) if dir.contains("objects/") && name.starts_with(".tmp-") => {
            ".autosave/objects/*/.tmp-*"
        }
        Some((dir, _)) if dir.contains("objects/") => ".autosave/objects/*/<blob>",
        _ => file,
    };
    format!("{syscall}({file})")
}

fn run_child(strace: &Utf8Path, project: &Utf8Path, syscall: &str, errno: &str, n: u64) -> Run {
    let trace = project.with_extension("trace");
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(strace)
        .args(["-f", "-qq", "-y", "-o", trace.as_str()])
        .arg(format!("-etrace={syscall}"))
        .arg(format!("-einject={syscall}:error={errno}:when={n}"))
        .arg(exe)
        .env(CHILD_DIR, project.as_str())
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run strace");
    let log = std::fs::read_to_string(&trace).expect("strace's output");
    std::fs::remove_file(&trace).expect("remove the trace");
    Run {
        injected: log.contains("(INJECTED)"),
        calls: log
            .lines()
            .filter(|l| l.contains("(INJECTED)"))
            .map(|l| file_of(l, project))
            .collect(),
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Checks the oracle after one injected fault; `ctx` names the injection.
fn check(project: &Utf8Path, run: &Run, ctx: &str) -> Outcome {
    assert!(
        !run.stderr.contains("panicked"),
        "{ctx}: the child panicked: {}",
        run.stderr
    );
    let failed = match run.code {
        Some(0) => false,
        Some(TYPED_ERROR) => true,
        other => panic!("{ctx}: the child exited with {other:?}: {}", run.stderr),
    };
    let mut session =
        Session::open(project, options()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let store = session.store();
    let snapshots = store
        .snapshots()
        .unwrap_or_else(|e| panic!("{ctx}: list: {e}"));
    let mut generations = Vec::new();
    for s in &snapshots {
        let contents =
            read_snapshot(store, s.id).unwrap_or_else(|e| panic!("{ctx}: snapshot {}: {e}", s.id));
        let g = numbers(&contents, &["generation"]).unwrap_or_default();
        assert!(
            g.len() == 1 && contents == tree(g[0]).contents(),
            "{ctx}: snapshot {} is not one whole generation",
            s.id
        );
        generations.push(g[0]);
    }
    let newest = generations.last().copied();
    let outcome = match (failed, newest) {
        (true, Some(2)) => Outcome::ErrorNothingCommitted,
        (true, Some(3)) => Outcome::ErrorAfterCommit,
        (false, Some(3)) => Outcome::Succeeded,
        _ => panic!("{ctx}: failed {failed}, generations in the store {generations:?}"),
    };
    let report = session
        .autosave(&tree(4).nodes())
        .unwrap_or_else(|e| panic!("{ctx}: the next autosave: {e}"));
    let id = report
        .snapshot
        .unwrap_or_else(|| panic!("{ctx}: the next autosave wrote nothing"));
    let store = session.store();
    let back = read_snapshot(store, id).unwrap_or_else(|e| panic!("{ctx}: read back: {e}"));
    assert!(
        back == tree(4).contents(),
        "{ctx}: the next autosave reads back wrong"
    );
    let verify = store
        .verify(true)
        .unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    assert!(verify.is_clean(), "{ctx}: verify: {:?}", verify.damaged);
    store.gc().unwrap_or_else(|e| panic!("{ctx}: gc: {e}"));
    let left = leftovers(store);
    assert!(left.is_empty(), "{ctx}: left after GC: {left:?}");
    outcome
}
