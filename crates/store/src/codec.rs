//! How blob bytes are stored: the codec choice and the blob file header.
//!
//! A blob file is a 16-byte header followed by the payload:
//!
//! | offset | size | field                                               |
//! |--------|------|-----------------------------------------------------|
//! | 0      | 4    | magic `ASVB`                                        |
//! | 4      | 1    | header version, 1                                   |
//! | 5      | 1    | codec: 0 raw, 1 zstd, 2 and 3 zstd over byte planes |
//! | 6      | 1    | object kind: 0 data, 1 snapshot record              |
//! | 7      | 1    | reserved, 0                                         |
//! | 8      | 8    | uncompressed length, little-endian                  |
//!
//! Inline blobs store the payload alone in the index row, with the codec in its own column.
//!
//! Codecs 2 and 3 compress the blob's 4 or 8 byte planes ([`crate::planes`]) instead of the
//! bytes as they are; they exist only in stores of format version 2 or later, so a build that
//! predates them refuses such a store at open rather than taking its blobs for damaged ones.

use std::cell::RefCell;

use crate::error::Error;
use crate::planes;

const MAGIC: [u8; 4] = *b"ASVB";
const HEADER_VERSION: u8 = 1;
/// Length of the blob file header.
pub(crate) const HEADER_LEN: usize = 16;

/// Above this recorded length the decoder grows its buffer as data arrives instead of
/// reserving the recorded length up front, so a lying length cannot force a huge allocation.
const PREALLOCATE_LIMIT: u64 = 64 << 20;

/// How a payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Raw = 0,
    Zstd = 1,
    /// zstd over 4 byte planes: `int32`, `float32`.
    ZstdPlanes4 = 2,
    /// zstd over 8 byte planes: `float64`, `int64`.
    ZstdPlanes8 = 3,
}

impl Codec {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Raw),
            1 => Some(Self::Zstd),
            2 => Some(Self::ZstdPlanes4),
            3 => Some(Self::ZstdPlanes8),
            _ => None,
        }
    }
}

/// What a blob file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Data = 0,
    Record = 1,
}

/// A payload ready to store.
pub(crate) struct Encoded<'a> {
    pub(crate) codec: Codec,
    pub(crate) payload: std::borrow::Cow<'a, [u8]>,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// A reused decompression context: creating one per blob costs more than decoding a small
    /// blob.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Blobs shorter than this are compressed as they are: the codec trial would cost more than
/// planes could save.
const PLANES_MIN: usize = 4 << 10;
/// Blobs longer than this are compressed as they are: the transform holds a second copy.
const PLANES_MAX: usize = 64 << 20;
/// How much of a blob the codec trial compresses each way.
const TRIAL_LEN: usize = 32 << 10;

/// Compresses `bytes` with zstd at `level`, keeping the result only if it saves at least 3 %.
/// With `planes`, the bytes may be compressed as 4 or 8 byte planes instead, whichever of the
/// three compresses a stretch of them smallest.
pub(crate) fn encode(bytes: &[u8], level: i32, planes: bool) -> Encoded<'_> {
    let saves = |out: &Option<Vec<u8>>| {
        out.as_ref()
            .is_some_and(|c| c.len() < bytes.len() - bytes.len() / 33)
    };
    if bytes.len() >= 64 {
        let (mut codec, mut compressed) =
            if planes && (PLANES_MIN..=PLANES_MAX).contains(&bytes.len()) {
                compress_best(bytes, level)
            } else {
                (Codec::Zstd, compress(bytes, level))
            };
        // The trial judged a stretch; if planes do not pay on the whole blob, plain zstd may.
        if codec != Codec::Zstd && !saves(&compressed) {
            (codec, compressed) = (Codec::Zstd, compress(bytes, level));
        }
        if saves(&compressed)
            && let Some(compressed) = compressed
        {
            return Encoded {
                codec,
                payload: compressed.into(),
            };
        }
    }
    Encoded {
        codec: Codec::Raw,
        payload: bytes.into(),
    }
}

/// Picks a codec by compressing a stretch of `bytes` each way, then compresses them with it.
///
/// The stretch comes from the middle, where a file's header is not, at an offset that is a
/// multiple of 8 so that its planes line up with the whole blob's. Ties go to plain zstd. In an
/// experiment on the benchmark dataset's files the pick stored within 0.5 % of the best codec
/// chosen with hindsight. For a 1 MiB blob that stays plain the trial adds 3 % to the bytes zstd
/// compresses plainly, plus two plane trials, which compress faster.
fn compress_best(bytes: &[u8], level: i32) -> (Codec, Option<Vec<u8>>) {
    let whole = bytes.len() <= TRIAL_LEN;
    let stretch = if whole {
        bytes
    } else {
        let at = (bytes.len() / 2 - TRIAL_LEN / 2) & !7;
        &bytes[at..at + TRIAL_LEN]
    };
    let mut best: Option<(Codec, Vec<u8>)> = None;
    for codec in [Codec::Zstd, Codec::ZstdPlanes4, Codec::ZstdPlanes8] {
        if let Some(out) = compress_as(codec, stretch, level)
            && best.as_ref().is_none_or(|(_, b)| out.len() < b.len())
        {
            best = Some((codec, out));
        }
    }
    match best {
        Some((codec, out)) if whole => (codec, Some(out)),
        Some((codec, _)) => (codec, compress_as(codec, bytes, level)),
        None => (Codec::Zstd, None),
    }
}

fn compress_as(codec: Codec, bytes: &[u8], level: i32) -> Option<Vec<u8>> {
    match codec {
        Codec::ZstdPlanes4 => compress(&planes::split::<4>(bytes), level),
        Codec::ZstdPlanes8 => compress(&planes::split::<8>(bytes), level),
        Codec::Raw | Codec::Zstd => compress(bytes, level),
    }
}

/// The zstd window the store compresses with: 2^18 = 256 KiB, the smallest chunk, instead of
/// the 2 MiB that level 3 picks for inputs above 256 KiB. On the benchmark dataset (numeric
/// arrays, tables, text) this compresses about 11 % faster and no worse: matches further back
/// than 256 KiB are rare inside one blob, and the smaller tables stay in cache. Decoders need
/// nothing: any window up to zstd's decoding limit is read.
pub const ZSTD_WINDOW_LOG: u32 = 18;

/// Compresses with a per-thread reused context (creating one costs more than compressing a
/// small blob). `None` only if zstd itself fails, in which case raw storage is the answer.
fn compress(bytes: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut compressor = zstd::bulk::Compressor::new(level).ok()?;
            compressor
                .set_parameter(zstd::zstd_safe::CParameter::WindowLog(ZSTD_WINDOW_LOG))
                .ok()?;
            *slot = Some((level, compressor));
        }
        let (_, compressor) = slot.as_mut()?;
        compressor.compress(bytes).ok()
    })
}

/// The header of a blob file.
pub(crate) fn header(codec: Codec, kind: ObjectKind, len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = HEADER_VERSION;
    h[5] = codec as u8;
    h[6] = kind as u8;
    h[8..].copy_from_slice(&len.to_le_bytes());
    h
}

/// A parsed blob file header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) codec: Codec,
    pub(crate) kind: ObjectKind,
    pub(crate) len: u64,
}

/// Parses the header at the start of `file`; the error is a reason for a corruption report.
pub(crate) fn parse_header(file: &[u8]) -> std::result::Result<Header, String> {
    if file.len() < HEADER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than its header",
            file.len()
        ));
    }
    if file[..4] != MAGIC {
        return Err("bad magic".into());
    }
    if file[4] != HEADER_VERSION {
        return Err(format!("unknown header version {}", file[4]));
    }
    let codec = Codec::from_u8(file[5]).ok_or(format!("unknown codec {}", file[5]))?;
    let kind = match file[6] {
        0 => ObjectKind::Data,
        1 => ObjectKind::Record,
        k => return Err(format!("unknown object kind {k}")),
    };
    if file[7] != 0 {
        return Err("reserved header byte is not zero".into());
    }
    let len = u64::from_le_bytes(file[8..16].try_into().expect("slice of 8 bytes"));
    Ok(Header { codec, kind, len })
}

/// Decodes a payload to exactly `len` bytes, never producing more than `len + 1` bytes of output
/// whatever the payload claims. The error is a reason for a corruption report.
pub(crate) fn decode(
    codec: Codec,
    payload: &[u8],
    len: u64,
) -> std::result::Result<Vec<u8>, String> {
    let out = match codec {
        Codec::Raw => payload.to_vec(),
        Codec::Zstd => decompress(payload, len)?,
        Codec::ZstdPlanes4 => planes::join::<4>(&check_len(decompress(payload, len)?, len)?),
        Codec::ZstdPlanes8 => planes::join::<8>(&check_len(decompress(payload, len)?, len)?),
    };
    check_len(out, len)
}

/// `out` if it has exactly `len` bytes.
pub(crate) fn check_len(out: Vec<u8>, len: u64) -> std::result::Result<Vec<u8>, String> {
    if out.len() as u64 == len {
        Ok(out)
    } else {
        Err(format!("decoded {} bytes, expected {len}", out.len()))
    }
}

fn decompress(payload: &[u8], len: u64) -> std::result::Result<Vec<u8>, String> {
    if len <= PREALLOCATE_LIMIT {
        let mut out = Vec::with_capacity(len as usize);
        DECOMPRESSOR
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new()?);
                }
                let decompressor = slot.as_mut().expect("set just above");
                decompressor.decompress_to_buffer(payload, &mut out)
            })
            .map_err(|e| format!("zstd: {e}"))?;
        return Ok(out);
    }
    use std::io::Read;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(payload)
        // A header may claim u64::MAX bytes: saturate rather than overflow.
        .and_then(|d| d.take(len.saturating_add(1)).read_to_end(&mut out))
        .map_err(|e| format!("zstd: {e}"))?;
    Ok(out)
}

/// Decodes a whole blob file (header and payload), bounded by the header's length. Raw payloads
/// are used in place: a copy of a large blob costs as much as reading it.
pub(crate) fn decode_file(file: Vec<u8>) -> std::result::Result<(Header, Vec<u8>), String> {
    let header = parse_header(&file)?;
    let bytes = match header.codec {
        Codec::Raw => {
            let mut file = file;
            file.drain(..HEADER_LEN);
            check_len(file, header.len)?
        }
        Codec::Zstd | Codec::ZstdPlanes4 | Codec::ZstdPlanes8 => {
            decode(header.codec, &file[HEADER_LEN..], header.len)?
        }
    };
    Ok((header, bytes))
}

/// Turns a decode failure into the store's error.
pub(crate) fn corrupt(digest: crate::Digest, location: &camino::Utf8Path, reason: String) -> Error {
    Error::Corrupt {
        digest,
        location: location.to_owned(),
        reason,
    }
}
