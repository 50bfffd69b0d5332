//! Content-defined chunking (FastCDC 2020) with a store's fixed parameters.

use std::io::Read;

use autosave_store::ChunkParams;
use fastcdc::v2020::{FastCDC, StreamCDC};

/// Cut points of `bytes`: (offset, length) of each chunk, in order.
pub(crate) fn cut_slice<'a>(
    bytes: &'a [u8],
    p: &ChunkParams,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    FastCDC::new(bytes, p.min as usize, p.avg as usize, p.max as usize)
        .map(|c| (c.offset, c.length))
}

/// Chunks of a stream, each an owned buffer; equal bytes give the same cut points as
/// [`cut_slice`].
pub(crate) fn stream<R: Read>(reader: R, p: &ChunkParams) -> StreamCDC<R> {
    StreamCDC::new(reader, p.min as usize, p.avg as usize, p.max as usize)
}

/// The length of the first chunk of `bytes`, which must hold the content from a chunk start up to
/// `max` bytes or its end, whichever comes first: then it is the cut [`cut_slice`] would make there.
pub(crate) fn first_cut(bytes: &[u8], p: &ChunkParams) -> usize {
    FastCDC::new(bytes, p.min as usize, p.avg as usize, p.max as usize)
        .next()
        .map_or(bytes.len(), |c| c.length)
}
