//! The session claim: one live session per store, and who holds it.
//!
//! `.autosave/SESSION` is locked exclusively (flock) for the whole life of a session, through a
//! descriptor the session keeps open; the kernel drops the lock when the process dies, however it
//! dies. While holding it, the session writes a one-line description of itself into the file so
//! that a second session can say who is in the way. The description is advisory (never fsynced):
//! the lock is the truth.
//!
//! A process that forks (to start any program: the host's own, or a test harness's) gives the
//! child a copy of each descriptor until the child runs the new program, and a copy holds the
//! lock as the original does. A session this process has just dropped can so still hold the
//! claim for a moment after. A claim whose description names this process is therefore waited
//! for, up to [`OWN_CLAIM_GRACE`], before it counts as held.
//!
//! This is the root crate's one module that writes files.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};

/// The claim file's name inside the store directory.
pub const CLAIM_FILE: &str = "SESSION";

/// How long a claim that this very process holds, or held, is waited for before it counts as
/// held: long enough for a child forked meanwhile to reach its new program and drop its copy
/// of the descriptor, short enough that a second session of the same process (a real conflict)
/// hears so soon.
pub const OWN_CLAIM_GRACE: Duration = Duration::from_millis(250);

/// Who holds (or last held) a store's claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the session started, ns since the epoch.
    pub started_ns: i64,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pid == 0 {
            return f.write_str("another session (no description)");
        }
        let secs = self.started_ns / 1_000_000_000;
        write!(
            f,
            "process {} on {} (started at {secs} s since the epoch)",
            self.pid, self.host
        )
    }
}

impl Holder {
    fn me() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
            started_ns: autosave_store::now_ns(),
        }
    }

    fn render(&self) -> String {
        format!(
            "pid {} host {} started_ns {}\n",
            self.pid, self.host, self.started_ns
        )
    }

    /// Parses [`Holder::render`]'s line; anything else gives the empty holder.
    fn parse(text: &str) -> Self {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["pid", pid, "host", host, "started_ns", started] => Self {
                pid: pid.parse().unwrap_or(0),
                host: (*host).to_owned(),
                started_ns: started.parse().unwrap_or(0),
            },
            _ => Self::default(),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().replace(char::is_whitespace, "_"))
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A held claim; dropping it releases the store.
#[derive(Debug)]
#[must_use = "the claim is released when dropped"]
pub struct Claim {
    _file: File,
    holder: Holder,
}

impl Claim {
    /// Takes the claim on the store at `store_dir`, or reports who holds it.
    pub fn take(store_dir: &Utf8Path) -> Result<Self> {
        let path = store_dir.join(CLAIM_FILE);
        let mut file = open(&path)?;
        let start = Instant::now();
        let me = Holder::me();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    let mine = holder.pid == me.pid && holder.host == me.host;
                    if !mine || start.elapsed() >= OWN_CLAIM_GRACE {
                        return Err(Error::Locked {
                            path: store_dir.to_owned(),
                            holder,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TryLockError::Error(e)) => return Err(io("lock", &path, e)),
            }
        }
        describe(&mut file, &me).map_err(|e| io("write", &path, e))?;
        Ok(Self {
            _file: file,
            holder: me,
        })
    }

    /// Whether a live process holds the claim on `store_dir` (without taking it).
    pub fn is_held(store_dir: &Utf8Path) -> Result<Option<Holder>> {
        let path = store_dir.join(CLAIM_FILE);
        let mut file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &path, e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(io("lock", &path, e)),
        }
    }

    /// This session's description.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

fn open(path: &Utf8Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io("open", path, e))
}

fn describe(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder.render().as_bytes())
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(4096).read_to_string(&mut text);
    Holder::parse(&text)
}

fn io(op: &'static str, path: &Utf8Path, source: std::io::Error) -> Error {
    Error::Io {
        op,
        path: Utf8PathBuf::from(path),
        source,
    }
}
