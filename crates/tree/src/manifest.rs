//! [`Manifest`]: the list of entries a snapshot consists of, and its byte encoding.
//!
//! A manifest is stored as a blob: the 4-byte magic `ASMF`, a format version byte (1), and the
//! postcard encoding of the entries, sorted by path with no path twice. Equal entry lists give
//! byte-identical manifests, hence equal digests. Decoding arbitrary bytes never panics: it
//! checks the envelope, the encoding, the order, and each content's lengths, and returns
//! [`Error::BadManifest`] for anything off.

use autosave_store::Digest;

use crate::error::{Error, Result};
use crate::path::EntryPath;

const MAGIC: [u8; 4] = *b"ASMF";
const VERSION: u8 = 1;

/// One entry of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    /// Where the entry sits.
    pub path: EntryPath,
    /// The host's kind string (`ndarray`, `dataframe`, `script`, `file`, ...).
    pub kind: String,
    /// Host metadata as canonical JSON (see [`crate::Meta`]).
    pub meta: String,
    /// The content, by value or by reference.
    pub content: Content,
}

/// Where an entry's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Content {
    /// Small content kept in the manifest itself.
    Inline(Vec<u8>),
    /// Content stored as one blob.
    Blob {
        /// The blob.
        digest: Digest,
        /// Its length in bytes.
        len: u64,
    },
    /// Large content split by content-defined chunking; the chunks in order.
    Chunks(Vec<Chunk>),
}

/// One piece of chunked content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// The chunk's blob.
    pub digest: Digest,
    /// Its length in bytes.
    pub len: u64,
}

impl Content {
    /// The content's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Inline(bytes) => bytes.len() as u64,
            Self::Blob { len, .. } => *len,
            Self::Chunks(chunks) => chunks.iter().map(|c| c.len).sum(),
        }
    }

    /// Whether the content has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blobs the content is made of, in order (none for inline content).
    pub fn digests(&self) -> impl Iterator<Item = Digest> + '_ {
        let (one, many): (Option<Digest>, &[Chunk]) = match self {
            Self::Inline(_) => (None, &[]),
            Self::Blob { digest, .. } => (Some(*digest), &[]),
            Self::Chunks(chunks) => (None, chunks),
        };
        one.into_iter().chain(many.iter().map(|c| c.digest))
    }
}

/// The entries of a snapshot, sorted by path, each path once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// Builds a manifest from entries in any order; [`Error::DuplicatePath`] if a path occurs
    /// twice.
    pub fn new(mut entries: Vec<ManifestEntry>) -> Result<Self> {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = entries.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(Error::DuplicatePath {
                path: pair[0].path.clone(),
            });
        }
        Ok(Self { entries })
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Consumes the manifest, giving its sorted entries.
    pub fn into_entries(self) -> Vec<ManifestEntry> {
        self.entries
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &EntryPath) -> Option<&ManifestEntry> {
        self.entries
            .binary_search_by(|e| e.path.cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The blobs of the manifest encoded in `bytes` ([`Manifest::blobs`]), or `None` if they
    /// are no manifest: the decoder that the store's index rebuild, adoption and GC take to
    /// follow a snapshot's references.
    pub fn refs_of(bytes: &[u8]) -> Option<Vec<Digest>> {
        Self::decode(bytes).ok().map(|m| m.blobs())
    }

    /// Every blob the entries reference, each once, sorted.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self
            .entries
            .iter()
            .flat_map(|e| e.content.digests())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Total content length of all entries.
    pub fn total_len(&self) -> u64 {
        self.entries.iter().map(|e| e.content.len()).sum()
    }

    /// The manifest's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        postcard::to_extend(&self.entries, out).expect("encoding plain data into a Vec cannot fail")
    }

    /// Parses a manifest's bytes, checking everything; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::BadManifest { reason };
        let body = bytes
            .strip_prefix(&MAGIC)
            .ok_or_else(|| bad("bad magic".into()))?;
        match body.first() {
            Some(&VERSION) => {}
            Some(v) => return Err(bad(format!("unknown manifest version {v}"))),
            None => return Err(bad("truncated".into())),
        }
        let (entries, rest): (Vec<ManifestEntry>, _) =
            postcard::take_from_bytes(&body[1..]).map_err(|e| bad(format!("decoding: {e}")))?;
        if !rest.is_empty() {
            return Err(bad(format!("{} bytes after the entries", rest.len())));
        }
        check_entries(&entries).map_err(bad)?;
        Ok(Self { entries })
    }
}

fn check_entries(entries: &[ManifestEntry]) -> std::result::Result<(), String> {
    if let Some(w) = entries.windows(2).find(|w| w[0].path >= w[1].path) {
        return Err(format!("entries out of order at {}", w[1].path));
    }
    for entry in entries {
        if let Content::Chunks(chunks) = &entry.content {
            if chunks.is_empty() || chunks.iter().any(|c| c.len == 0) {
                return Err(format!(
                    "entry {} has an empty chunk list or chunk",
                    entry.path
                ));
            }
            chunks
                .iter()
                .try_fold(0u64, |acc, c| acc.checked_add(c.len))
                .ok_or_else(|| format!("entry {} overflows its length", entry.path))?;
        }
    }
    Ok(())
}
