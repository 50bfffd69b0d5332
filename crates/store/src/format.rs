//! The `FORMAT` file: what kind of store this is and how it was configured.
//!
//! A small line-oriented text file, written once when the store is created:
//!
//! ```text
//! autosave-store
//! version 2
//! store-id 3f6c0c1e9a2b4d7f8e1a2b3c4d5e6f70
//! hash xxh3-128
//! inline-limit 16384
//! chunk-threshold 4194304
//! chunk-min 262144
//! chunk-avg 1048576
//! chunk-max 4194304
//! check 0a1b2c3d4e5f6a7b
//! ```
//!
//! `check` is the XXH3-64 of every byte before that line, so a flipped bit is a typed error
//! rather than a silently different configuration.

use std::fmt::Write as _;

use camino::Utf8Path;

use crate::digest::HashAlgo;
use crate::error::{Error, Result};

const MAGIC_LINE: &str = "autosave-store";

/// The newest format version this build writes and reads. Version 2 adds the byte-plane codecs
/// (blob codecs 2 and 3); a store of version 1 is read as before and never given them, so the
/// builds that predate them can still read it.
pub const FORMAT_VERSION: u32 = 2;

/// Parameters of content-defined chunking, fixed per store so that equal content always chunks
/// the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    /// Content longer than this is split into chunks.
    pub threshold: u64,
    /// Smallest chunk.
    pub min: u32,
    /// Average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl Default for ChunkParams {
    /// Split above 4 MiB into chunks of 256 KiB min, 1 MiB average, 4 MiB max.
    fn default() -> Self {
        Self {
            threshold: 4 << 20,
            min: 256 << 10,
            avg: 1 << 20,
            max: 4 << 20,
        }
    }
}

/// The immutable identity and configuration of a store, as recorded in `FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFormat {
    /// Format version the store was written with.
    pub version: u32,
    /// Random id chosen at creation; change caches are keyed by it.
    pub store_id: u128,
    /// The hash function blobs are keyed by.
    pub hash: HashAlgo,
    /// Blobs of at most this many bytes live inside the index.
    pub inline_limit: u64,
    /// How large content is chunked.
    pub chunking: ChunkParams,
}

impl StoreFormat {
    /// Whether blobs may be compressed as byte planes (format version 2 and later).
    pub fn byte_planes(&self) -> bool {
        self.version >= 2
    }

    /// Renders the file's bytes.
    pub(crate) fn render(&self) -> String {
        let c = &self.chunking;
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{MAGIC_LINE}\nversion {}\nstore-id {:032x}\nhash {}\ninline-limit {}\n\
             chunk-threshold {}\nchunk-min {}\nchunk-avg {}\nchunk-max {}\n",
            self.version,
            self.store_id,
            self.hash.name(),
            self.inline_limit,
            c.threshold,
            c.min,
            c.avg,
            c.max
        );
        let check = twox_hash::XxHash3_64::oneshot(s.as_bytes());
        let _ = writeln!(s, "check {check:016x}");
        s
    }

    /// Parses the file's bytes; `path` only names the file in errors.
    pub(crate) fn parse(path: &Utf8Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| Error::BadFormat {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
        let mut lines = Lines::new(text);
        if lines.next_line() != Some(MAGIC_LINE) {
            return Err(bad("first line is not `autosave-store`"));
        }
        let version: u32 = lines.field("version").map_err(|r| bad(&r))?;
        if version > FORMAT_VERSION {
            return Err(Error::NewerFormat {
                path: path.to_owned(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let format = Self::parse_fields(&mut lines).map_err(|r| bad(&r))?;
        let body_len = lines.consumed;
        let check: String = lines.field("check").map_err(|r| bad(&r))?;
        let expected = twox_hash::XxHash3_64::oneshot(&bytes[..body_len]);
        if check != format!("{expected:016x}") || lines.next_line().is_some() {
            return Err(bad("checksum mismatch"));
        }
        Ok(Self { version, ..format })
    }

    fn parse_fields(lines: &mut Lines<'_>) -> std::result::Result<Self, String> {
        let store_id = u128::from_str_radix(&lines.field::<String>("store-id")?, 16)
            .map_err(|_| "bad store-id".to_owned())?;
        let hash_name: String = lines.field("hash")?;
        let hash = HashAlgo::from_name(&hash_name).ok_or(format!("unknown hash {hash_name:?}"))?;
        let format = Self {
            version: 0,
            store_id,
            hash,
            inline_limit: lines.field("inline-limit")?,
            chunking: ChunkParams {
                threshold: lines.field("chunk-threshold")?,
                min: lines.field("chunk-min")?,
                avg: lines.field("chunk-avg")?,
                max: lines.field("chunk-max")?,
            },
        };
        format.validate()?;
        Ok(format)
    }

    /// Checks that the parameters make a usable store.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let c = &self.chunking;
        if self.inline_limit > 1 << 20 {
            return Err(format!("inline limit {} is over 1 MiB", self.inline_limit));
        }
        // The ranges FastCDC 2020 accepts; outside them it misbehaves rather than failing.
        let in_range = (64..=1 << 20).contains(&c.min)
            && (256..=4 << 20).contains(&c.avg)
            && (1024..=16 << 20).contains(&c.max);
        let even = c.min.is_multiple_of(2) && c.avg.is_multiple_of(2) && c.max.is_multiple_of(2);
        let ordered = c.min <= c.avg && c.avg <= c.max && u64::from(c.max) <= c.threshold;
        if !(in_range && even && ordered) {
            return Err(format!(
                "chunk sizes must be even, with 64 <= min <= 1 MiB, 256 <= avg <= 4 MiB, \
                 1 KiB <= max <= 16 MiB and min <= avg <= max <= threshold; got {c:?}"
            ));
        }
        Ok(())
    }
}

/// Walks `key value` lines, remembering how many bytes were consumed.
struct Lines<'a> {
    rest: &'a str,
    consumed: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            consumed: 0,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        let end = self.rest.find('\n')?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        self.consumed += end + 1;
        Some(line)
    }

    fn field<T: std::str::FromStr>(&mut self, key: &str) -> std::result::Result<T, String> {
        let line = self.next_line().ok_or(format!("missing `{key}` line"))?;
        let value = line
            .strip_prefix(key)
            .and_then(|v| v.strip_prefix(' '))
            .ok_or(format!("expected `{key}`, found {line:?}"))?;
        value
            .parse()
            .map_err(|_| format!("bad `{key}` value {value:?}"))
    }
}
