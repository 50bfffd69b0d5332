//! Reading snapshots back: manifests and streamed, verified content.

use std::io::{self, Read};

use autosave_store::{Digest, Reader, SnapshotId, Store};

use crate::error::{Error, Result};
use crate::manifest::{Chunk, Content, Manifest};

/// Loads and decodes the manifest blob `digest`.
pub fn load_manifest(store: &Store, digest: &Digest) -> Result<Manifest> {
    let bytes = store
        .get(digest)?
        .ok_or(Error::MissingManifest { digest: *digest })?;
    Manifest::decode(&bytes)
}

/// Loads the manifest of snapshot `id`.
pub fn snapshot_manifest(store: &Store, id: SnapshotId) -> Result<Manifest> {
    let info = store
        .snapshot(id)?
        .ok_or(autosave_store::Error::UnknownSnapshot { id })?;
    load_manifest(store, &info.manifest)
}

/// Reads a whole content into memory (each blob re-hashed by the store).
pub fn read_content(store: &Store, content: &Content) -> Result<Vec<u8>> {
    content_under(&store.reader()?, content)
}

/// [`read_content`] under a lock the caller holds.
pub(crate) fn content_under(reader: &Reader<'_>, content: &Content) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(content.len()).unwrap_or(0).min(1 << 30));
    for digest in content.digests() {
        out.extend_from_slice(&blob_under(reader, &digest)?);
    }
    if let Content::Inline(bytes) = content {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// A blob, verified, read under a lock the caller holds.
pub(crate) fn blob_under(reader: &Reader<'_>, digest: &Digest) -> Result<Vec<u8>> {
    reader
        .get(digest)?
        .ok_or(Error::MissingBlob { digest: *digest })
}

fn blob(store: &Store, digest: &Digest) -> Result<Vec<u8>> {
    store
        .get(digest)?
        .ok_or(Error::MissingBlob { digest: *digest })
}

/// Streams a content one blob at a time; every blob is verified before any of its bytes are
/// returned, so a damaged chunk surfaces as an error, never as wrong bytes.
pub struct ContentReader<'s> {
    store: &'s Store,
    pending: std::vec::IntoIter<Chunk>,
    current: Vec<u8>,
    pos: usize,
}

impl<'s> ContentReader<'s> {
    /// A reader of `content` from `store`.
    pub fn new(store: &'s Store, content: &Content) -> Self {
        let (current, pending) = match content {
            Content::Inline(bytes) => (bytes.clone(), Vec::new()),
            Content::Blob { digest, len } => (
                Vec::new(),
                vec![Chunk {
                    digest: *digest,
                    len: *len,
                }],
            ),
            Content::Chunks(chunks) => (Vec::new(), chunks.clone()),
        };
        Self {
            store,
            pending: pending.into_iter(),
            current,
            pos: 0,
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Some(chunk) = self.pending.next() else {
                return Ok(0);
            };
            self.current = blob(self.store, &chunk.digest).map_err(io::Error::other)?;
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
