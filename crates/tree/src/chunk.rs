//! Content-defined chunking (FastCDC 2020) with a store's fixed parameters.

use std::io::{self, Read};
use std::ops::{Deref, Range};
use std::sync::Arc;

use autosave_store::ChunkParams;
use fastcdc::v2020::FastCDC;

/// Cut points of `bytes`: (offset, length) of each chunk, in order.
pub(crate) fn cut_slice<'a>(
    bytes: &'a [u8],
    p: &ChunkParams,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    FastCDC::new(bytes, p.min as usize, p.avg as usize, p.max as usize)
        .map(|c| (c.offset, c.length))
}

/// How many largest chunks a block of [`Stream`] holds: chunks are ranges of a block, so each
/// byte is copied once on its way in, plus the unfinished chunk at a block's end (less than one
/// largest chunk), moved to the next block. 16 MiB with the default parameters.
const BLOCK_CHUNKS: usize = 4;

/// Chunks of a stream, cut where [`cut_slice`] would cut the same bytes.
///
/// A chunk is a range of a shared block rather than a buffer of its own, so the chunker copies
/// little; memory is a block per chunk still being processed, at most.
pub(crate) struct Stream<R> {
    reader: R,
    p: ChunkParams,
    block: Arc<Vec<u8>>,
    at: usize,
    eof: bool,
}

/// One chunk of a [`Stream`]: a range of one of its blocks.
pub(crate) struct Piece {
    block: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl Deref for Piece {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.block[self.range.clone()]
    }
}

/// Chunks of `head` followed by the rest of `reader`.
pub(crate) fn stream<R: Read>(head: Vec<u8>, reader: R, p: &ChunkParams) -> Stream<R> {
    Stream {
        reader,
        p: *p,
        block: Arc::new(head),
        at: 0,
        eof: false,
    }
}

impl<R: Read> Stream<R> {
    /// Makes sure the unread part of the block holds a whole chunk's worth (`max` bytes) or
    /// the rest of the stream: a new block starts with the unread part and fills up.
    fn refill(&mut self) -> io::Result<()> {
        let left = self.block.len() - self.at;
        if self.eof || left >= self.p.max as usize {
            return Ok(());
        }
        let mut next = Vec::with_capacity(BLOCK_CHUNKS * self.p.max as usize);
        next.extend_from_slice(&self.block[self.at..]);
        // Reads until the block is full or the stream ends: short of full means the end.
        let want = (next.capacity() - next.len()) as u64;
        let got = (&mut self.reader).take(want).read_to_end(&mut next)?;
        self.eof = (got as u64) < want;
        self.block = Arc::new(next);
        self.at = 0;
        Ok(())
    }
}

impl<R: Read> Iterator for Stream<R> {
    type Item = io::Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.refill() {
            self.eof = true;
            self.at = self.block.len();
            return Some(Err(e));
        }
        let rest = &self.block[self.at..];
        if rest.is_empty() {
            return None;
        }
        let window = &rest[..rest.len().min(self.p.max as usize)];
        let n = first_cut(window, &self.p);
        let piece = Piece {
            block: Arc::clone(&self.block),
            range: self.at..self.at + n,
        };
        self.at += n;
        Some(Ok(piece))
    }
}

/// The length of the first chunk of `bytes`, which must hold the content from a chunk start up to
/// `max` bytes or its end, whichever comes first: then it is the cut [`cut_slice`] would make there.
pub(crate) fn first_cut(bytes: &[u8], p: &ChunkParams) -> usize {
    FastCDC::new(bytes, p.min as usize, p.avg as usize, p.max as usize)
        .next()
        .map_or(bytes.len(), |c| c.length)
}
