//! Re-chunking changed content against the chunk list it had before.
//!
//! Content-defined chunking costs far more per byte than hashing (FastCDC's gear scan is one
//! dependent chain per byte; XXH3 runs at memory speed on every core). When a large entry
//! changes in place, as an edited array does, almost all of its old chunks are still there, at
//! the same offsets. So instead of chunking the whole content again, this module first hashes
//! the bytes at each old chunk's offset, in parallel, and keeps every old chunk whose bytes are
//! unchanged *and whose cut point chunking would find again*; it runs the chunker only from the
//! start of the first mismatching chunk until a cut lands on an old boundary, and then goes back
//! to checking old chunks.
//!
//! The result is exactly the chunk list chunking the whole content would give (the property
//! tests compare the two), because FastCDC's cut after a chunk start depends on nothing but
//! the bytes of the chunk, the one byte after it (the byte that completes the gear hash at the
//! cut), and where the content ends. An old chunk is kept only when all of those are known to be
//! unchanged:
//!
//! - its bytes hash to its digest;
//! - if it was cut by the gear hash, the next old chunk matches too, so the byte after it is the
//!   same (normalised chunking also picks masks by how much content remains, but for every
//!   position before a cut that lies before both ends the choice is the same);
//! - if it was cut at the maximum size, nothing more is needed;
//! - if it was the old content's last chunk, the content has the same length.
//!
//! Anything else is chunked again, which is always correct, only slower.

use std::fs::File;
use std::io;

use autosave_store::{Batch, ChunkParams, Digest};
use rayon::prelude::*;

use crate::chunk;
use crate::error::Result;
use crate::manifest::{Chunk, Content};

/// How many old chunks are checked in parallel at once (plus one looked ahead).
const RUN: usize = 32;

/// Content readable at any offset, from several threads at once.
pub(crate) trait Data: Sync {
    /// The content's length.
    fn len(&self) -> u64;
    /// Fills `buf` with the bytes at `at`.
    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The whole content, if it is in memory.
    fn in_memory(&self) -> Option<&[u8]> {
        None
    }
}

impl Data for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = slice(self, at, buf.len())?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn in_memory(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// `bytes[at..at + len]`, or an end-of-file error.
fn slice(bytes: &[u8], at: u64, len: usize) -> io::Result<&[u8]> {
    usize::try_from(at)
        .ok()
        .and_then(|at| bytes.get(at..at.checked_add(len)?))
        .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// A file of known length, read with positional reads.
pub(crate) struct FileData {
    file: File,
    len: u64,
}

impl FileData {
    pub(crate) fn new(file: File, len: u64) -> Self {
        Self { file, len }
    }
}

impl Data for FileData {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(&self.file, buf, at)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

/// A failure while re-chunking: the content could not be read (the entry is skipped) or the
/// store failed (the snapshot fails).
enum Fail {
    Io(io::Error),
    Store(crate::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<autosave_store::Error> for Fail {
    fn from(e: autosave_store::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        Self::Store(e)
    }
}

/// Chunks `data` reusing what it can of `old`, the chunk list of its previous version, and
/// stores the new chunks. Returns what chunking `data` from scratch would return.
pub(crate) fn resync(
    batch: &Batch<'_>,
    data: &dyn Data,
    old: &[Chunk],
    p: &ChunkParams,
) -> io::Result<Result<Content>> {
    match run(batch, data, old, p) {
        Ok(chunks) => Ok(Ok(Content::Chunks(chunks))),
        Err(Fail::Io(e)) => Err(e),
        Err(Fail::Store(e)) => Ok(Err(e)),
    }
}

fn run(
    batch: &Batch<'_>,
    data: &dyn Data,
    old: &[Chunk],
    p: &ChunkParams,
) -> std::result::Result<Vec<Chunk>, Fail> {
    let mut starts = Vec::with_capacity(old.len());
    let mut at = 0u64;
    for c in old {
        starts.push(at);
        at += c.len;
    }
    let geometry = Geometry {
        old_len: at,
        new_len: data.len(),
        max: u64::from(p.max),
    };
    let mut out = Vec::with_capacity(old.len() + 4);
    let mut pos = 0u64;
    let mut ahead = Ahead::default();
    while pos < geometry.new_len {
        // Old chunks starting exactly here: check a run of them.
        if let Ok(first) = starts.binary_search(&pos) {
            let last = (first + RUN + 1).min(old.len());
            let matched = check(
                batch,
                data,
                &starts[first..last],
                &old[first..last],
                &geometry,
            )?;
            let mut kept = 0;
            for (j, chunk) in old[first..last].iter().enumerate() {
                let next_matches = matched.get(j + 1).copied();
                if !matched[j]
                    || !geometry.keeps(starts[first + j], chunk.len, next_matches)
                    || (j + 1 == last - first && last < old.len())
                {
                    break;
                }
                out.push(*chunk);
                kept += 1;
            }
            pos = starts[first] + old[first..first + kept].iter().map(|c| c.len).sum::<u64>();
            if kept > 0 {
                continue;
            }
        }
        // Chunk one piece from here, as chunking from the start would.
        let window = (geometry.new_len - pos).min(u64::from(p.max)) as usize;
        let bytes = ahead.get(data, pos, window)?;
        let len = chunk::first_cut(bytes, p);
        let piece = &bytes[..len];
        out.push(Chunk {
            digest: batch.put(piece)?.digest,
            len: len as u64,
        });
        pos += len as u64;
    }
    Ok(out)
}

/// Whether each old chunk's bytes are still at its offset (and the store still holds it).
fn check(
    batch: &Batch<'_>,
    data: &dyn Data,
    starts: &[u64],
    old: &[Chunk],
    geometry: &Geometry,
) -> std::result::Result<Vec<bool>, Fail> {
    starts
        .par_iter()
        .zip(old)
        .map(|(&at, chunk)| {
            if at + chunk.len > geometry.new_len {
                return Ok(false);
            }
            let len = usize::try_from(chunk.len).map_err(io::Error::other)?;
            let mut buf = Vec::new();
            let bytes = match data.in_memory() {
                Some(all) => slice(all, at, len)?,
                None => {
                    buf.resize(len, 0);
                    data.read_at(at, &mut buf)?;
                    &buf[..]
                }
            };
            let digest: Digest = batch.store().digest_of(bytes);
            if digest != chunk.digest {
                return Ok(false);
            }
            // Gone from the store (collected since): store it again, it is right here.
            if !batch.contains(&digest)? {
                batch.put(bytes)?;
            }
            Ok(true)
        })
        .collect()
}

/// What decides whether an old cut point is still one.
struct Geometry {
    old_len: u64,
    new_len: u64,
    max: u64,
}

impl Geometry {
    /// Whether the old chunk at `at` of `len` bytes, whose bytes are unchanged (so it fits in
    /// the new content), is still a chunk of it. `next_matches` says whether the old chunk
    /// after it is unchanged too (`None` if it was not checked).
    fn keeps(&self, at: u64, len: u64, next_matches: Option<bool>) -> bool {
        let old_rest = self.old_len - at;
        if len == old_rest {
            // The old content's last chunk: it may have been cut by the end of the content.
            return self.new_len - at == old_rest;
        }
        if len == self.max {
            // No gear cut in the first `max` bytes, none again: the chunk alone decided it.
            return true;
        }
        // Cut by the gear hash, which took in the byte after the chunk: the first byte of the
        // next old chunk. (The masks, chosen by how much content remains, are the same for every
        // position before a cut that lies before both ends.)
        next_matches == Some(true)
    }
}

/// A forward window over content that is not in memory, so that consecutive cuts read each
/// byte once: it holds `[at, at + buf.len())` and reads ahead in steps of `READ_AHEAD`.
#[derive(Default)]
struct Ahead {
    buf: Vec<u8>,
    at: u64,
}

/// How far the chunker's window reads beyond what the current cut needs.
const READ_AHEAD: usize = 8 << 20;

impl Ahead {
    fn get<'s>(&'s mut self, data: &'s dyn Data, at: u64, len: usize) -> io::Result<&'s [u8]> {
        if let Some(bytes) = data.in_memory() {
            return slice(bytes, at, len);
        }
        let end = at + len as u64;
        let held = self.at + self.buf.len() as u64;
        if at < self.at || end > held {
            // Refill: keep what is still ahead of `at`, drop the rest, read on from there.
            if at < self.at || at > held {
                self.buf.clear();
            } else {
                self.buf.drain(..(at - self.at) as usize);
            }
            self.at = at;
            let held = self.at + self.buf.len() as u64;
            let want = (end - held).max(READ_AHEAD as u64).min(data.len() - held) as usize;
            let old = self.buf.len();
            self.buf.resize(old + want, 0);
            if let Err(e) = data.read_at(held, &mut self.buf[old..]) {
                self.buf.truncate(old);
                return Err(e);
            }
        }
        // Within the window: no bytes move until the next refill.
        let from = (at - self.at) as usize;
        Ok(&self.buf[from..from + len])
    }
}
