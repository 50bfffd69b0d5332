//! Integration tests of the `autosave` binary, one module per command area. Each test runs the
//! real binary on a real store in a temp dir.

#![expect(
    clippy::unwrap_used,
    reason = "in a test helper a failed unwrap is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests make and edit files directly"
)]

mod check;
mod demo;
mod diff;
mod exit_codes;
mod forget_gc;
mod global;
mod init;
mod inspect;
mod progress;
mod repair;
mod restore;
mod snapshot;
mod watch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// A temp dir holding a project directory `proj/`, whose store is `proj/.autosave`.
pub(crate) struct Project {
    temp: tempfile::TempDir,
}

/// The outcome of one run of the binary.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("code", &self.code)
            .field("stdout", &String::from_utf8_lossy(&self.stdout))
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl Run {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Asserts the exit code, and that a failure said at most one clear line and no panic.
    pub(crate) fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        assert!(!self.stderr.contains("stack backtrace"), "{self:?}");
        if code != 0 && code != 2 {
            assert!(self.stderr.lines().count() <= 1, "{self:?}");
        }
        self
    }

    pub(crate) fn ok(self) -> Self {
        self.expect(0)
    }
}

/// A command running the binary with no `AUTOSAVE_STORE` from the environment.
pub(crate) fn autosave(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autosave"));
    cmd.current_dir(dir)
        .env_remove("AUTOSAVE_STORE")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn run(mut cmd: Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

impl Project {
    /// An empty project directory, no store.
    pub(crate) fn empty() -> Self {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir(temp.path().join("proj")).unwrap();
        Self { temp }
    }

    /// A project with a few files, no store.
    pub(crate) fn new() -> Self {
        let p = Self::empty();
        p.write("notes.txt", b"first notes\n");
        p.write("data/table.csv", b"a,b\n1,2\n");
        p.write("data/signal.bin", &noise(100_000, 1));
        p
    }

    /// A project with a store holding one snapshot of [`Project::new`]'s files.
    pub(crate) fn with_snapshot() -> Self {
        let p = Self::new();
        p.run(&["snapshot", "."]).ok();
        p
    }

    pub(crate) fn temp(&self) -> &Path {
        self.temp.path()
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.temp.path().join("proj")
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.root().join(".autosave")
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The binary, run in the project directory.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = autosave(&self.root());
        cmd.args(args);
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(self.cmd(args))
    }

    /// Runs with `--json`, expects success, and checks the envelope.
    pub(crate) fn json(&self, command: &str, args: &[&str]) -> Value {
        let mut all = vec![command, "--json"];
        all.extend_from_slice(args);
        let doc = self.run(&all).ok().json();
        assert_eq!(doc["schema"], 1, "{doc}");
        assert_eq!(doc["command"], command, "{doc}");
        doc
    }

    /// Snapshot ids, newest first.
    pub(crate) fn snapshot_ids(&self) -> Vec<u64> {
        self.json("snapshots", &[])["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect()
    }

    /// Takes a snapshot (even if nothing changed) and returns its id.
    pub(crate) fn snapshot(&self) -> u64 {
        self.json("snapshot", &[".", "--always"])["snapshot"]
            .as_u64()
            .unwrap()
    }

    /// The files of the store's `objects/` directory holding a blob, by name.
    pub(crate) fn blob_file(&self, digest: &str) -> PathBuf {
        self.store().join("objects").join(&digest[..2]).join(digest)
    }
}

/// `len` bytes that do not compress (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Moves a file's mtime an hour into the past, out of the racy-clean window.
pub(crate) fn age(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// Polls `check` every 50 ms until it holds, failing after 30 s.
pub(crate) fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGINT to a process.
pub(crate) fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether the process has a handler installed for SIGINT (Linux: `/proc/PID/status`).
pub(crate) fn catches_sigint(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}
