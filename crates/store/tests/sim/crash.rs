//! Crash states: what a crash at a recorded [`Point`] may leave on disk.
//!
//! For each point, several durable subsets: every unsynced change lost; every unsynced change
//! kept (the process died but the machine did not); and random mixes in which each unsynced
//! directory operation independently survives or not, and each file with unsynced data keeps
//! nothing, all of it, a torn prefix, or its length with zeros in place of a tail.

use std::collections::HashMap;
use std::sync::Arc;

use super::fs::{Dir, DirOp, Entry, Image, IndexCopy, Point, State, join};

/// Deterministic random numbers (splitmix64), so every run checks the same states.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Which durable subset to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    AllLost,
    AllKept,
    Random,
}

/// One crash state: the files that survived and the index as of the last durable commit.
#[derive(Clone, Debug)]
pub struct CrashState {
    pub image: Image,
    pub index: Option<Arc<IndexCopy>>,
    pub events: usize,
    pub op: String,
}

impl CrashState {
    /// A key for skipping states already checked.
    pub fn key(&self) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (path, node) in &self.image {
            h.update(path.as_bytes());
            match node {
                None => h.update(b"\0dir\0"),
                Some(data) => {
                    h.update(&(data.len() as u64).to_le_bytes());
                    h.update(&xxhash_rust::xxh3::xxh3_64(data).to_le_bytes());
                }
            }
        }
        let index = self.index.as_ref().map_or(0, |i| Arc::as_ptr(i) as usize);
        h.update(&(index as u64).to_le_bytes());
        h.update(&(self.events as u64).to_le_bytes());
        h.digest128()
    }
}

/// The crash state for `point` under `mode`.
pub fn crash_state(point: &Point, mode: Mode, rng: &mut Rng) -> CrashState {
    let mut builder = Builder {
        state: &point.state,
        mode,
        rng,
        chosen: HashMap::new(),
        image: Image::new(),
    };
    builder.dir("");
    CrashState {
        image: builder.image,
        index: point.index.clone(),
        events: point.events,
        op: point.op.clone(),
    }
}

/// Every file and directory a process sees now: the state after a crash that loses nothing.
pub fn visible_image(state: &State) -> Image {
    let mut image = Image::new();
    for (path, dir) in &state.dirs {
        for (name, entry) in &dir.entries {
            let node = match entry {
                Entry::Dir => None,
                Entry::File(ino) => Some(state.inodes[ino].data.clone()),
            };
            image.insert(join(path, name), node);
        }
    }
    image
}

struct Builder<'a> {
    state: &'a State,
    mode: Mode,
    rng: &'a mut Rng,
    chosen: HashMap<u64, Arc<Vec<u8>>>,
    image: Image,
}

impl Builder<'_> {
    fn dir(&mut self, path: &str) {
        let dir: &Dir = &self.state.dirs[path];
        let mut view = dir.durable.clone();
        for op in &dir.pending {
            if !self.keep() {
                continue;
            }
            match op {
                DirOp::Set(name, entry) => view.insert(name.clone(), *entry),
                DirOp::Remove(name) => view.remove(name),
            };
        }
        for (name, entry) in view {
            let child = join(path, &name);
            match entry {
                Entry::Dir => {
                    self.image.insert(child.clone(), None);
                    self.dir(&child);
                }
                Entry::File(ino) => {
                    let data = self.data(ino);
                    self.image.insert(child, Some(data));
                }
            }
        }
    }

    fn keep(&mut self) -> bool {
        match self.mode {
            Mode::AllLost => false,
            Mode::AllKept => true,
            Mode::Random => self.rng.below(2) == 0,
        }
    }

    fn data(&mut self, ino: u64) -> Arc<Vec<u8>> {
        if let Some(data) = self.chosen.get(&ino) {
            return data.clone();
        }
        let inode = &self.state.inodes[&ino];
        let data = if inode.data == inode.durable {
            inode.durable.clone()
        } else {
            match self.mode {
                Mode::AllLost => inode.durable.clone(),
                Mode::AllKept => inode.data.clone(),
                Mode::Random => self.damage(&inode.data, &inode.durable),
            }
        };
        self.chosen.insert(ino, data.clone());
        data
    }

    /// Lost, kept, torn to a prefix, or zero-filled from some offset on.
    fn damage(&mut self, data: &Arc<Vec<u8>>, durable: &Arc<Vec<u8>>) -> Arc<Vec<u8>> {
        let len = data.len() as u64;
        match self.rng.below(4) {
            0 => durable.clone(),
            1 => data.clone(),
            2 => Arc::new(data[..self.rng.below(len) as usize].to_vec()),
            _ => {
                let from = self.rng.below(len) as usize;
                let mut zeroed = data.to_vec();
                zeroed[from..].fill(0);
                Arc::new(zeroed)
            }
        }
    }
}
