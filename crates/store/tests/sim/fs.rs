//! `SimFs`: an in-memory [`Vfs`] that keeps what a process sees apart from what a crash would
//! keep, under a weak persistence model:
//!
//! - a file's data is durable only after `sync_file` (until then a crash may lose it, tear it
//!   to a prefix, or leave its length with zeros in place of the data);
//! - a directory entry (create, link, rename, unlink, mkdir) is durable only after `sync_dir`
//!   of its directory; until then each such operation independently may or may not survive;
//! - a directory whose own entry in its parent did not survive is gone with everything in it.
//!
//! While recording, the state after every mutating operation (and at every index commit) is
//! kept as a [`Point`], from which [`crate::sim::crash`] builds crash states.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex, MutexGuard};

use autosave_store::Vfs;
use camino::{Utf8Path, Utf8PathBuf};

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    File(u64),
    Dir,
}

/// One unsynced change to a directory.
#[derive(Clone, Debug)]
pub enum DirOp {
    Set(String, Entry),
    Remove(String),
}

#[derive(Clone, Debug, Default)]
pub struct Dir {
    pub entries: BTreeMap<String, Entry>,
    pub durable: BTreeMap<String, Entry>,
    pub pending: Vec<DirOp>,
}

#[derive(Clone, Debug)]
pub struct Inode {
    pub data: Arc<Vec<u8>>,
    pub durable: Arc<Vec<u8>>,
}

/// Everything the filesystem holds, visible and durable. Paths are relative to the base, `""`
/// being the base directory itself (which always exists).
#[derive(Clone, Debug, Default)]
pub struct State {
    pub dirs: BTreeMap<String, Dir>,
    pub inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
}

/// A copy of the SQLite index (database and WAL files) as of one commit.
#[derive(Debug)]
pub struct IndexCopy {
    pub db: Vec<u8>,
    pub wal: Option<Vec<u8>>,
}

/// The state after one operation, with the index a crash at that moment would leave.
#[derive(Clone, Debug)]
pub struct Point {
    pub state: State,
    /// The index as of the last durable commit, if any.
    pub index: Option<Arc<IndexCopy>>,
    /// How many workload events (acknowledgements, deletions begun) had happened.
    pub events: usize,
    /// What happened last, for reports.
    pub op: String,
}

/// The kinds of operation a fault can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Write,
    Fsync,
    Rename,
    Mkdir,
    Remove,
}

impl OpKind {
    pub const ALL: [Self; 5] = [
        Self::Write,
        Self::Fsync,
        Self::Rename,
        Self::Mkdir,
        Self::Remove,
    ];
}

/// Fail the `nth` (0-based) operation of `kind` with `errno`.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub kind: OpKind,
    pub nth: usize,
    pub errno: i32,
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    recording: bool,
    points: Vec<Point>,
    index: Option<Arc<IndexCopy>>,
    events: usize,
    /// Commit-barrier violations: a commit recorded rows for files that were not durable.
    barrier: Vec<String>,
    counts: BTreeMap<OpKind, usize>,
    fault: Option<Fault>,
    fired: bool,
}

/// The simulated filesystem.
#[derive(Debug)]
pub struct SimFs {
    base: Utf8PathBuf,
    inner: Mutex<Inner>,
}

/// A crash state's files: path (relative to the base) to `None` for a directory or the bytes.
pub type Image = BTreeMap<String, Option<Arc<Vec<u8>>>>;

impl SimFs {
    /// An empty filesystem holding only the base directory.
    pub fn new(base: &Utf8Path) -> Self {
        let mut state = State::default();
        state.dirs.insert(String::new(), Dir::default());
        Self {
            base: base.to_owned(),
            inner: Mutex::new(Inner {
                state,
                ..Inner::default()
            }),
        }
    }

    /// A filesystem holding `image`, all of it durable, with `index` as its durable index.
    pub fn from_image(base: &Utf8Path, image: &Image, index: Option<Arc<IndexCopy>>) -> Self {
        let sim = Self::new(base);
        {
            let mut inner = sim.lock();
            inner.index = index;
            let state = &mut inner.state;
            for (path, node) in image {
                let (parent, name) = split(path);
                let entry = match node {
                    None => {
                        state.dirs.insert(path.clone(), Dir::default());
                        Entry::Dir
                    }
                    Some(data) => {
                        let ino = state.next_inode;
                        state.next_inode += 1;
                        state.inodes.insert(
                            ino,
                            Inode {
                                data: data.clone(),
                                durable: data.clone(),
                            },
                        );
                        Entry::File(ino)
                    }
                };
                let dir = state
                    .dirs
                    .get_mut(parent)
                    .expect("images list parents first");
                dir.entries.insert(name.to_owned(), entry);
                dir.durable.insert(name.to_owned(), entry);
            }
        }
        sim
    }

    pub fn base(&self) -> &Utf8Path {
        &self.base
    }

    /// Starts keeping a point after every operation (and one for the current state).
    pub fn start_recording(&self) {
        let mut inner = self.lock();
        inner.recording = true;
        inner.push_point("start".into());
    }

    pub fn stop_recording(&self) {
        self.lock().recording = false;
    }

    /// Takes the recorded points.
    pub fn take_points(&self) -> Vec<Point> {
        std::mem::take(&mut self.lock().points)
    }

    /// Sets the number of workload events that happened before this filesystem took over.
    pub fn set_events(&self, events: usize) {
        self.lock().events = events;
    }

    /// Counts a workload event; points record how many had happened.
    pub fn event(&self) {
        self.lock().events += 1;
    }

    pub fn barrier_violations(&self) -> Vec<String> {
        self.lock().barrier.clone()
    }

    pub fn durable_index(&self) -> Option<Arc<IndexCopy>> {
        self.lock().index.clone()
    }

    /// Arms (or with `None`, clears) a fault, resetting the operation counts.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let mut inner = self.lock();
        inner.fault = fault;
        inner.fired = false;
        inner.counts.clear();
    }

    /// Whether the armed fault was injected.
    pub fn fault_fired(&self) -> bool {
        self.lock().fired
    }

    /// Operations of each kind since the last `set_fault`.
    pub fn counts(&self) -> BTreeMap<OpKind, usize> {
        self.lock().counts.clone()
    }

    /// The visible files (as a process sees them), for checking what cleanup left behind.
    pub fn visible_files(&self) -> Vec<String> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (path, dir) in &inner.state.dirs {
            for (name, entry) in &dir.entries {
                if let Entry::File(_) = entry {
                    out.push(join(path, name));
                }
            }
        }
        out
    }

    /// The current state (for building an image of it).
    pub fn state(&self) -> State {
        self.lock().state.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rel(&self, path: &Utf8Path) -> io::Result<String> {
        let rel = path
            .strip_prefix(&self.base)
            .map_err(|_| io::Error::new(ErrorKind::PermissionDenied, "outside the simulation"))?;
        Ok(rel.as_str().trim_end_matches('/').to_owned())
    }

    /// Runs a mutating operation: counts it, injects the armed fault, records a point.
    fn mutate<T>(
        &self,
        kind: OpKind,
        what: &str,
        path: &Utf8Path,
        op: impl FnOnce(&mut State, &str, Option<io::Error>) -> io::Result<T>,
    ) -> io::Result<T> {
        let rel = self.rel(path)?;
        let mut inner = self.lock();
        let n = inner.counts.entry(kind).or_default();
        let nth = *n;
        *n += 1;
        let fault = match inner.fault {
            Some(f) if f.kind == kind && f.nth == nth => {
                inner.fired = true;
                Some(io::Error::from_raw_os_error(f.errno))
            }
            _ => None,
        };
        let result = op(&mut inner.state, &rel, fault);
        if inner.recording {
            inner.push_point(format!("{what} {rel}"));
        }
        result
    }
}

impl Inner {
    fn push_point(&mut self, op: String) {
        let point = Point {
            state: self.state.clone(),
            index: self.index.clone(),
            events: self.events,
            op,
        };
        self.points.push(point);
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn not_found() -> io::Error {
    ErrorKind::NotFound.into()
}

impl State {
    fn dir_mut(&mut self, path: &str) -> io::Result<&mut Dir> {
        self.check_dir(path)?;
        self.dirs.get_mut(path).ok_or_else(not_found)
    }

    /// `NotADirectory` if a component of `path` is a file, `NotFound` if it is missing.
    fn check_dir(&self, path: &str) -> io::Result<()> {
        if self.dirs.contains_key(path) {
            return Ok(());
        }
        let (parent, name) = split(path);
        if path.is_empty() {
            return Err(not_found());
        }
        self.check_dir(parent)?;
        match self.dirs[parent].entries.get(name) {
            Some(Entry::File(_)) => Err(ErrorKind::NotADirectory.into()),
            _ => Err(not_found()),
        }
    }

    fn lookup(&self, path: &str) -> io::Result<Entry> {
        if path.is_empty() {
            return Ok(Entry::Dir);
        }
        let (parent, name) = split(path);
        self.check_dir(parent)?;
        self.dirs[parent]
            .entries
            .get(name)
            .copied()
            .ok_or_else(not_found)
    }

    fn file(&self, path: &str) -> io::Result<u64> {
        match self.lookup(path)? {
            Entry::File(ino) => Ok(ino),
            Entry::Dir => Err(ErrorKind::IsADirectory.into()),
        }
    }

    fn set(&mut self, path: &str, entry: Entry) -> io::Result<()> {
        let (parent, name) = split(path);
        let dir = self.dir_mut(parent)?;
        dir.entries.insert(name.to_owned(), entry);
        dir.pending.push(DirOp::Set(name.to_owned(), entry));
        Ok(())
    }

    fn unset(&mut self, path: &str) -> io::Result<()> {
        let (parent, name) = split(path);
        let dir = self.dir_mut(parent)?;
        dir.entries.remove(name).ok_or_else(not_found)?;
        dir.pending.push(DirOp::Remove(name.to_owned()));
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        self.lookup(path).is_ok()
    }

    fn new_inode(&mut self, data: Vec<u8>) -> u64 {
        let ino = self.next_inode;
        self.next_inode += 1;
        let inode = Inode {
            data: Arc::new(data),
            durable: Arc::new(Vec::new()),
        };
        self.inodes.insert(ino, inode);
        ino
    }
}

fn fail_or(fault: Option<io::Error>) -> io::Result<()> {
    fault.map_or(Ok(()), Err)
}

impl Vfs for SimFs {
    fn create_dir(&self, path: &Utf8Path) -> io::Result<()> {
        self.mutate(OpKind::Mkdir, "mkdir", path, |s, rel, fault| {
            fail_or(fault)?;
            if s.exists(rel) {
                return Err(ErrorKind::AlreadyExists.into());
            }
            s.set(rel, Entry::Dir)?;
            s.dirs.insert(rel.to_owned(), Dir::default());
            Ok(())
        })
    }

    fn write_new(&self, path: &Utf8Path, parts: &[&[u8]]) -> io::Result<()> {
        self.mutate(OpKind::Write, "write", path, |s, rel, fault| {
            if s.exists(rel) {
                return Err(ErrorKind::AlreadyExists.into());
            }
            let mut data = parts.concat();
            // A write that fails part-way leaves the file created with what fitted.
            if fault.is_some() {
                data.truncate(data.len() / 2);
            }
            let ino = s.new_inode(data);
            s.set(rel, Entry::File(ino))?;
            fail_or(fault)
        })
    }

    fn sync_file(&self, path: &Utf8Path) -> io::Result<()> {
        self.mutate(OpKind::Fsync, "fsync", path, |s, rel, fault| {
            let ino = s.file(rel)?;
            fail_or(fault)?;
            let inode = s.inodes.get_mut(&ino).expect("entries name live inodes");
            inode.durable = inode.data.clone();
            Ok(())
        })
    }

    fn sync_dir(&self, path: &Utf8Path) -> io::Result<()> {
        self.mutate(OpKind::Fsync, "fsync-dir", path, |s, rel, fault| {
            let dir = s.dir_mut(rel)?;
            fail_or(fault)?;
            dir.durable = dir.entries.clone();
            dir.pending.clear();
            Ok(())
        })
    }

    fn link(&self, from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
        let from = self.rel(from)?;
        self.mutate(OpKind::Rename, "link", to, |s, rel, fault| {
            let ino = s.file(&from)?;
            if s.exists(rel) {
                return Err(ErrorKind::AlreadyExists.into());
            }
            fail_or(fault)?;
            s.set(rel, Entry::File(ino))
        })
    }

    fn rename(&self, from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
        let from = self.rel(from)?;
        self.mutate(OpKind::Rename, "rename", to, |s, rel, fault| {
            let ino = s.file(&from)?;
            fail_or(fault)?;
            s.unset(&from)?;
            s.set(rel, Entry::File(ino))
        })
    }

    fn remove_file(&self, path: &Utf8Path) -> io::Result<()> {
        self.mutate(OpKind::Remove, "unlink", path, |s, rel, fault| {
            s.file(rel)?;
            fail_or(fault)?;
            s.unset(rel)
        })
    }

    fn read(&self, path: &Utf8Path) -> io::Result<Vec<u8>> {
        let rel = self.rel(path)?;
        let inner = self.lock();
        let ino = inner.state.file(&rel)?;
        Ok(inner.state.inodes[&ino].data.to_vec())
    }

    fn file_len(&self, path: &Utf8Path) -> io::Result<Option<u64>> {
        let rel = self.rel(path)?;
        let inner = self.lock();
        match inner.state.lookup(&rel) {
            Ok(Entry::File(ino)) => Ok(Some(inner.state.inodes[&ino].data.len() as u64)),
            Ok(Entry::Dir) => Ok(Some(0)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_dir(&self, path: &Utf8Path) -> io::Result<Vec<String>> {
        let rel = self.rel(path)?;
        let inner = self.lock();
        match inner.state.lookup(&rel)? {
            Entry::Dir => Ok(inner.state.dirs[&rel].entries.keys().cloned().collect()),
            Entry::File(_) => Err(ErrorKind::NotADirectory.into()),
        }
    }

    fn is_dir(&self, path: &Utf8Path) -> bool {
        let Ok(rel) = self.rel(path) else {
            return false;
        };
        matches!(self.lock().state.lookup(&rel), Ok(Entry::Dir))
    }

    fn before_commit(&self, needs: &[Utf8PathBuf]) -> io::Result<()> {
        let mut inner = self.lock();
        for path in needs {
            let rel = self.rel(path)?;
            if let Err(why) = inner.state.durable_file(&rel) {
                inner.barrier.push(format!("commit records {rel}, {why}"));
            }
        }
        Ok(())
    }

    fn after_commit(&self, index: &Utf8Path, durable: bool) {
        let mut inner = self.lock();
        // A COMMIT that SQLite does not make durable leaves the durable index where it was.
        if durable {
            let db = std::fs::read(index).expect("the index file exists after a commit");
            let wal = std::fs::read(format!("{index}-wal")).ok();
            inner.index = Some(Arc::new(IndexCopy { db, wal }));
        }
        if inner.recording {
            inner.push_point(format!("commit (durable: {durable})"));
        }
    }
}

impl State {
    /// Whether the file at `path` would survive a crash now, name and every byte.
    fn durable_file(&self, path: &str) -> Result<(), &'static str> {
        let mut dir = String::new();
        let mut keys = path.split('/').peekable();
        while let Some(key) = keys.next() {
            let entry = self.dirs[&dir].durable.get(key).copied();
            let current = self.dirs[&dir].entries.get(key).copied();
            if entry.is_none() || entry != current {
                return Err("whose name is not durable");
            }
            if keys.peek().is_none() {
                let Some(Entry::File(ino)) = entry else {
                    return Err("which is not a file");
                };
                let inode = &self.inodes[&ino];
                return if inode.data == inode.durable {
                    Ok(())
                } else {
                    Err("whose data is not durable")
                };
            }
            dir = join(&dir, key);
            if !self.dirs.contains_key(&dir) {
                return Err("whose directory is missing");
            }
        }
        Err("which is not a file")
    }
}
