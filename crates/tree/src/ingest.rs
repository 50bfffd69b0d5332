//! Turning content into stored [`Content`]: inline, one blob, or chunks, hashing and
//! compressing chunks in parallel with bounded memory.

use std::io::{self, Read};

use autosave_store::{Batch, ChunkParams};
use rayon::prelude::*;

use crate::chunk;
use crate::error::Result;
use crate::manifest::{Chunk, Content};

/// Content up to this many bytes is kept in the manifest itself.
pub const INLINE_MAX: usize = 64;

/// Chunks read ahead from a stream and put in parallel; bounds a stream's memory to this many
/// maximum-size chunks.
const WINDOW: usize = 4;

/// Stores `bytes` without copying them (beyond what compression needs).
pub(crate) fn bytes(batch: &Batch<'_>, bytes: &[u8], p: &ChunkParams) -> Result<Content> {
    let len = bytes.len() as u64;
    if bytes.len() <= INLINE_MAX {
        return Ok(Content::Inline(bytes.to_vec()));
    }
    if len <= p.threshold {
        let digest = batch.put(bytes)?.digest;
        return Ok(Content::Blob { digest, len });
    }
    let cuts: Vec<(usize, usize)> = chunk::cut_slice(bytes, p).collect();
    let chunks = cuts
        .par_iter()
        .map(|&(at, n)| put_chunk(batch, &bytes[at..at + n]))
        .collect::<Result<Vec<Chunk>>>()?;
    Ok(Content::Chunks(chunks))
}

fn put_chunk(batch: &Batch<'_>, bytes: &[u8]) -> Result<Chunk> {
    Ok(Chunk {
        digest: batch.put(bytes)?.digest,
        len: bytes.len() as u64,
    })
}

/// Stores what `reader` yields, streaming: at most `threshold + 1` bytes, or a window of chunks,
/// are in memory at once. Returns the content and the bytes read.
pub(crate) fn reader(
    batch: &Batch<'_>,
    mut reader: impl Read,
    p: &ChunkParams,
) -> io::Result<Result<Content>> {
    let mut head = Vec::new();
    (&mut reader).take(p.threshold + 1).read_to_end(&mut head)?;
    if head.len() as u64 <= p.threshold {
        return Ok(bytes(batch, &head, p));
    }
    let mut chunks = Vec::new();
    let mut window = Vec::with_capacity(WINDOW);
    for piece in chunk::stream(io::Cursor::new(head).chain(reader), p) {
        window.push(piece.map_err(io::Error::other)?.data);
        if window.len() == WINDOW {
            match put_window(batch, &mut window) {
                Ok(mut done) => chunks.append(&mut done),
                Err(e) => return Ok(Err(e)),
            }
        }
    }
    match put_window(batch, &mut window) {
        Ok(mut done) => chunks.append(&mut done),
        Err(e) => return Ok(Err(e)),
    }
    Ok(Ok(Content::Chunks(chunks)))
}

fn put_window(batch: &Batch<'_>, window: &mut Vec<Vec<u8>>) -> Result<Vec<Chunk>> {
    let done = window
        .par_iter()
        .map(|data| put_chunk(batch, data))
        .collect::<Result<Vec<_>>>();
    window.clear();
    done
}
