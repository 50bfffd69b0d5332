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

/// Stores what `reader` yields, streaming: at most `threshold + 1` bytes, or a block of
/// [`chunk::Stream`] per worker thread, are in memory at once. The chunker runs on whichever
/// worker pulls the next chunk while the others hash and compress theirs, so chunking and
/// compression overlap. `size`, if known, is the expected length (a file's size): the first
/// read then goes into a buffer of the right size at once. Returns the content.
pub(crate) fn reader(
    batch: &Batch<'_>,
    mut reader: impl Read + Send,
    p: &ChunkParams,
    size: Option<u64>,
) -> io::Result<Result<Content>> {
    let head_len = size.map_or(0, |n| n.min(p.threshold + 1));
    let mut head = Vec::with_capacity(usize::try_from(head_len).unwrap_or(0));
    (&mut reader).take(p.threshold + 1).read_to_end(&mut head)?;
    if head.len() as u64 <= p.threshold {
        return Ok(bytes(batch, &head, p));
    }
    let mut done: Vec<(usize, io::Result<Result<Chunk>>)> = chunk::stream(head, reader, p)
        .enumerate()
        .par_bridge()
        .map(|(i, piece)| (i, piece.map(|piece| put_chunk(batch, &piece))))
        .collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut chunks = Vec::with_capacity(done.len());
    for (_, put) in done {
        match put? {
            Ok(chunk) => chunks.push(chunk),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(Content::Chunks(chunks)))
}
