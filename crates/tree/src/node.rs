//! [`Node`]: one entry of the host's tree as handed to a snapshot, with its content source.

use std::io::Read;
use std::path::PathBuf;

use crate::cache::FileStat;
use crate::meta::Meta;
use crate::path::EntryPath;

/// A number the host changes whenever a node's content changes (a generation counter, an edit
/// count). Two snapshots that see the same token for a path do not read its content again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Token(pub u64);

/// A function that opens a fresh reader of a node's content each time it is called.
pub type OpenReader<'a> =
    Box<dyn Fn() -> std::io::Result<Box<dyn Read + Send + 'a>> + Send + Sync + 'a>;

/// Where a node's bytes come from.
pub enum Source<'a> {
    /// Bytes lent by the host; never copied (except content of at most 64 bytes, which is kept
    /// in the manifest).
    Bytes(&'a [u8]),
    /// A file, read in a streaming fashion; its (size, mtime, inode, ctime) lets an unchanged
    /// file be skipped without reading it.
    File(PathBuf),
    /// A file whose status the caller has just taken, as a directory walk does: when the change
    /// cache vouches for that status the file is skipped without being examined again. A file
    /// that must be read has its status taken afresh first, as for [`Source::File`].
    FileWithStat {
        /// The file.
        path: PathBuf,
        /// Its status when the caller looked.
        stat: FileStat,
    },
    /// A reader the host opens on demand (streamed, never held whole in memory).
    Reader(OpenReader<'a>),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::File(p) => write!(f, "File({})", p.display()),
            Self::FileWithStat { path, .. } => write!(f, "FileWithStat({})", path.display()),
            Self::Reader(_) => f.write_str("Reader(..)"),
        }
    }
}

/// One entry of the host's tree.
#[derive(Debug)]
pub struct Node<'a> {
    /// Where it sits.
    pub path: EntryPath,
    /// The host's kind string.
    pub kind: String,
    /// Host metadata.
    pub meta: Meta,
    /// The content.
    pub source: Source<'a>,
    /// The host's version token for the content, if it keeps one.
    pub token: Option<Token>,
}

impl<'a> Node<'a> {
    /// A node whose content is `bytes`, lent by the host.
    pub fn bytes(path: EntryPath, kind: impl Into<String>, bytes: &'a [u8]) -> Self {
        Self::new(path, kind, Source::Bytes(bytes))
    }

    /// A node whose content is the file at `file`.
    pub fn file(path: EntryPath, kind: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Self::new(path, kind, Source::File(file.into()))
    }

    /// A node whose content comes from `open()`.
    pub fn reader(path: EntryPath, kind: impl Into<String>, open: OpenReader<'a>) -> Self {
        Self::new(path, kind, Source::Reader(open))
    }

    fn new(path: EntryPath, kind: impl Into<String>, source: Source<'a>) -> Self {
        Self {
            path,
            kind: kind.into(),
            meta: Meta::default(),
            source,
            token: None,
        }
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_meta(mut self, meta: Meta) -> Self {
        self.meta = meta;
        self
    }

    /// Sets the version token.
    #[must_use]
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }
}
