//! The mutations of the matrix: for every file, single bit flips at many offsets, truncations,
//! zeroed blocks and appended garbage; deletion of every file and fan-out directory; every pair
//! of blob files swapped.

use std::fmt;
use std::path::PathBuf;

use crate::reference::{FileKind, Reference};

/// A small deterministic generator (xorshift64*), so a run is reproducible from its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One way of damaging the store.
#[derive(Clone, Debug)]
pub(crate) enum Mutation {
    BitFlip {
        file: usize,
        offset: usize,
        bit: u8,
    },
    Truncate {
        file: usize,
        len: usize,
    },
    Zero {
        file: usize,
        offset: usize,
        len: usize,
    },
    Append {
        file: usize,
        garbage: Vec<u8>,
    },
    Delete {
        file: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    DeleteDir {
        dir: PathBuf,
    },
}

/// The matrix's rows: what kind of damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    BitFlip,
    Truncate,
    Zero,
    Append,
    Delete,
    Swap,
    DeleteDir,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a mutation leaves on disk: each file's bytes (`None`: deleted) and directories removed.
pub(crate) struct Applied {
    pub(crate) files: Vec<Option<Vec<u8>>>,
    pub(crate) removed_dirs: Vec<PathBuf>,
}

impl Mutation {
    pub(crate) fn op(&self) -> Op {
        match self {
            Self::BitFlip { .. } => Op::BitFlip,
            Self::Truncate { .. } => Op::Truncate,
            Self::Zero { .. } => Op::Zero,
            Self::Append { .. } => Op::Append,
            Self::Delete { .. } => Op::Delete,
            Self::Swap { .. } => Op::Swap,
            Self::DeleteDir { .. } => Op::DeleteDir,
        }
    }

    /// The kind of file it damages (fan-out directories count as blob files).
    pub(crate) fn kind(&self, r: &Reference) -> FileKind {
        match self {
            Self::BitFlip { file, .. }
            | Self::Truncate { file, .. }
            | Self::Zero { file, .. }
            | Self::Append { file, .. }
            | Self::Delete { file }
            | Self::Swap { a: file, .. } => r.files[*file].kind,
            Self::DeleteDir { .. } => FileKind::Blob,
        }
    }

    pub(crate) fn apply(&self, r: &Reference) -> Applied {
        let mut files: Vec<Option<Vec<u8>>> =
            r.files.iter().map(|f| Some(f.bytes.clone())).collect();
        let mut removed_dirs = Vec::new();
        match self {
            Self::BitFlip { file, offset, bit } => bytes(&mut files, *file)[*offset] ^= 1 << bit,
            Self::Truncate { file, len } => bytes(&mut files, *file).truncate(*len),
            Self::Zero { file, offset, len } => {
                bytes(&mut files, *file)[*offset..*offset + *len].fill(0);
            }
            Self::Append { file, garbage } => bytes(&mut files, *file).extend_from_slice(garbage),
            Self::Delete { file } => files[*file] = None,
            Self::Swap { a, b } => {
                let (x, y) = (files[*a].take(), files[*b].take());
                files[*a] = y;
                files[*b] = x;
            }
            Self::DeleteDir { dir } => {
                for (f, slot) in r.files.iter().zip(&mut files) {
                    if f.rel.starts_with(dir) {
                        *slot = None;
                    }
                }
                removed_dirs.push(dir.clone());
            }
        }
        Applied {
            files,
            removed_dirs,
        }
    }
}

fn bytes(files: &mut [Option<Vec<u8>>], i: usize) -> &mut Vec<u8> {
    files[i]
        .as_mut()
        .expect("mutations apply to files that exist")
}

/// How many bit flips each file gets beyond the structured ones; scaled by the soak factor.
fn flips_for(kind: FileKind, len: usize, scale: usize) -> usize {
    let base = match kind {
        FileKind::Blob => 250,
        FileKind::Index | FileKind::IndexClosed | FileKind::Wal => 3500,
        FileKind::Shm => 400,
        FileKind::Format => 0, // every bit is flipped instead
        FileKind::Other => 16,
    };
    (base * scale).min(len * 8)
}

/// The whole matrix for the files of `r` that `wanted` accepts, deterministic for `seed`; `scale`
/// multiplies the sampled parts.
pub(crate) fn matrix(
    r: &Reference,
    wanted: impl Fn(FileKind) -> bool,
    seed: u64,
    scale: usize,
) -> Vec<Mutation> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (file, f) in r.files.iter().enumerate().filter(|(_, f)| wanted(f.kind)) {
        let len = f.bytes.len();
        bit_flips(&mut out, &mut rng, file, f.kind, len, scale);
        truncations(&mut out, &mut rng, file, len, scale);
        zeroed_blocks(&mut out, file, len);
        for n in [1, 7, 512, 4096] {
            let garbage = (0..n).map(|_| rng.next() as u8).collect();
            out.push(Mutation::Append { file, garbage });
        }
        out.push(Mutation::Append {
            file,
            garbage: f.bytes.clone(),
        });
        out.push(Mutation::Delete { file });
    }
    let blobs: Vec<usize> = (0..r.files.len())
        .filter(|&i| r.files[i].kind == FileKind::Blob && wanted(FileKind::Blob))
        .collect();
    for (i, &a) in blobs.iter().enumerate() {
        for &b in &blobs[i + 1..] {
            out.push(Mutation::Swap { a, b });
        }
    }
    for dir in r.fanouts.iter().filter(|_| wanted(FileKind::Blob)) {
        out.push(Mutation::DeleteDir { dir: dir.clone() });
    }
    out
}

fn bit_flips(
    out: &mut Vec<Mutation>,
    rng: &mut Rng,
    file: usize,
    kind: FileKind,
    len: usize,
    scale: usize,
) {
    // Headers carry the most structure: every bit of a blob header, of FORMAT, and of the
    // SQLite and WAL headers (100 and 32 bytes) is flipped.
    let structured = match kind {
        FileKind::Blob => 16,
        FileKind::Format => len,
        FileKind::Index | FileKind::IndexClosed => 100,
        FileKind::Wal => 32,
        _ => 0,
    }
    .min(len);
    for offset in 0..structured {
        for bit in 0..8 {
            out.push(Mutation::BitFlip { file, offset, bit });
        }
    }
    if len > structured {
        for _ in 0..flips_for(kind, len, scale) {
            let offset = structured + rng.below(len - structured);
            let bit = rng.below(8) as u8;
            out.push(Mutation::BitFlip { file, offset, bit });
        }
    }
}

fn truncations(out: &mut Vec<Mutation>, rng: &mut Rng, file: usize, len: usize, scale: usize) {
    let mut lens = vec![0, 1, 15, 16, 17, 32, 100, len / 2];
    lens.extend((1..4096).step_by(4096 / 8).map(|p| len.saturating_sub(p)));
    lens.extend((0..8 * scale).map(|_| rng.below(len)));
    lens.retain(|&l| l < len);
    lens.sort_unstable();
    lens.dedup();
    out.extend(lens.into_iter().map(|len| Mutation::Truncate { file, len }));
}

fn zeroed_blocks(out: &mut Vec<Mutation>, file: usize, len: usize) {
    for block in [512, 4096] {
        for offset in (0..len).step_by(block) {
            let n = block.min(len - offset);
            out.push(Mutation::Zero {
                file,
                offset,
                len: n,
            });
        }
    }
}
