//! Content identity: [`Digest`], the hash of a blob's uncompressed bytes.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The hash function a store keys its blobs by; fixed when the store is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashAlgo {
    /// XXH3-128: very fast, not collision resistant against an attacker. The default.
    Xxh3_128,
    /// BLAKE3-256: for stores whose content an attacker could craft ("strong mode").
    Blake3,
}

impl HashAlgo {
    /// The digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Xxh3_128 => 16,
            Self::Blake3 => 32,
        }
    }

    /// The name recorded in `FORMAT`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Xxh3_128 => "xxh3-128",
            Self::Blake3 => "blake3-256",
        }
    }

    /// Parses a name as written by [`HashAlgo::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "xxh3-128" => Some(Self::Xxh3_128),
            "blake3-256" => Some(Self::Blake3),
            _ => None,
        }
    }

    /// Hashes `bytes` in one call.
    pub fn hash(self, bytes: &[u8]) -> Digest {
        match self {
            Self::Xxh3_128 => Digest::from_xxh3(twox_hash::XxHash3_128::oneshot(bytes)),
            Self::Blake3 => Digest::from_blake3(blake3::hash(bytes).into()),
        }
    }

    /// A streaming hasher for content that arrives in pieces.
    pub fn hasher(self) -> Hasher {
        match self {
            Self::Xxh3_128 => Hasher::Xxh3(Box::new(twox_hash::XxHash3_128::new())),
            Self::Blake3 => Hasher::Blake3(Box::default()),
        }
    }
}

/// A streaming hasher; [`Hasher::finish`] gives the same digest as [`HashAlgo::hash`] of the
/// concatenated input.
#[derive(Clone)]
pub enum Hasher {
    /// XXH3-128 state.
    Xxh3(Box<twox_hash::XxHash3_128>),
    /// BLAKE3 state.
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Xxh3(h) => h.write(bytes),
            Self::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(&self) -> Digest {
        match self {
            Self::Xxh3(h) => Digest::from_xxh3(h.finish_128()),
            Self::Blake3(h) => Digest::from_blake3(h.finalize().into()),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xxh3(_) => f.write_str("Hasher(xxh3-128)"),
            Self::Blake3(_) => f.write_str("Hasher(blake3-256)"),
        }
    }
}

/// The identity of a blob: the hash of its uncompressed bytes (16 bytes for XXH3-128, 32 for
/// BLAKE3-256).
///
/// `Display` prints the full lower-case hex, `Debug` a short prefix, and `FromStr` parses the full
/// hex of either length.
///
/// ```
/// use autosave_store::{Digest, HashAlgo};
/// let d = HashAlgo::Xxh3_128.hash(b"hello");
/// let hex = d.to_string();
/// assert_eq!(hex.len(), 32);
/// assert_eq!(hex.parse::<Digest>().unwrap(), d);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest {
    len: u8,
    bytes: [u8; 32],
}

impl Digest {
    fn from_xxh3(v: u128) -> Self {
        let mut bytes = [0; 32];
        // Big-endian so that the hex form reads like the canonical XXH128 output.
        bytes[..16].copy_from_slice(&v.to_be_bytes());
        Self { len: 16, bytes }
    }

    fn from_blake3(v: [u8; 32]) -> Self {
        Self { len: 32, bytes: v }
    }

    /// Builds a digest from its raw bytes (16 or 32 of them); `None` for any other length.
    pub fn from_bytes(raw: &[u8]) -> Option<Self> {
        if raw.len() != 16 && raw.len() != 32 {
            return None;
        }
        let mut bytes = [0; 32];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Self {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The algorithm that yields digests of this length.
    pub fn algo(&self) -> HashAlgo {
        if self.len == 16 {
            HashAlgo::Xxh3_128
        } else {
            HashAlgo::Blake3
        }
    }

    /// The first byte as two hex characters: the fan-out directory of the blob's file.
    pub(crate) fn fanout(&self) -> String {
        format!("{:02x}", self.bytes[0])
    }
}

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The bytes are already uniformly distributed; the tail decides equality, not the hash.
        state.write(&self.bytes[..8]);
    }
}

/// A `Hasher` for sets of digests: the digest's first 8 bytes are already a good hash, so there
/// is nothing to mix (the store's dedup cache looks one up on every put).
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

/// A set of digests hashed by [`DigestHasher`].
pub(crate) type DigestSet =
    std::collections::HashSet<Digest, std::hash::BuildHasherDefault<DigestHasher>>;

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(")?;
        for b in &self.bytes[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::BadDigest { text: s.to_owned() };
        if s.len() != 32 && s.len() != 64 {
            return Err(bad());
        }
        let mut raw = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            raw[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Self::from_bytes(&raw[..s.len() / 2]).ok_or_else(bad)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 or 32 digest bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Digest, E> {
                Digest::from_bytes(v).ok_or_else(|| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Visit)
    }
}
