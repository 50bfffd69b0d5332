//! Byte-plane codecs: numeric arrays are stored as planes when that compresses better, nothing
//! else is, a version 1 store never gets them, and damage to a plane blob is reported.

use autosave_store::{Error, FORMAT_VERSION, Options};
use proptest::prelude::*;

use crate::{blob_file, commit, compressible_bytes, new_store, new_store_with, random_bytes};

/// float64 samples of a slow signal with noisy low bytes, like a measured trace.
fn float64_signal(len: usize, seed: u64) -> Vec<u8> {
    let noise = random_bytes(len, seed);
    let mut out = Vec::with_capacity(len);
    for (k, low) in noise.chunks(8).enumerate() {
        let high = (100.0 + (k as f64 * 1e-4 + seed as f64).sin()).to_le_bytes();
        for (lane, b) in low.iter().enumerate() {
            out.push(if lane < 5 { *b } else { high[lane] });
        }
    }
    out
}

/// int32 values whose low byte is noise and whose high bytes change slowly.
fn int32_counts(len: usize, seed: u64) -> Vec<u8> {
    let noise = random_bytes(len / 4 + 1, seed);
    (0..len / 4)
        .flat_map(|i| ((i as u32 / 1000) << 8 | u32::from(noise[i])).to_le_bytes())
        .collect()
}

/// The codec byte of a blob file's header.
fn codec_of(store: &autosave_store::Store, digest: &autosave_store::Digest) -> u8 {
    std::fs::read(blob_file(store, digest)).unwrap()[5]
}

fn version_1() -> Options {
    Options {
        format_version: 1,
        ..Options::default()
    }
}

#[test]
fn a_float64_array_is_stored_as_8_byte_planes_and_smaller_than_as_it_is() {
    let bytes = float64_signal(1 << 20, 1);
    let (_d2, planes) = new_store();
    let (_d1, plain) = new_store_with(version_1());
    let (_, d) = commit(&planes, &[&bytes]);
    commit(&plain, &[&bytes]);
    assert_eq!(codec_of(&planes, &d[0]), 3);
    assert_eq!(codec_of(&plain, &d[0]), 1);
    let len = |s: &autosave_store::Store| std::fs::metadata(blob_file(s, &d[0])).unwrap().len();
    assert!(
        len(&planes) * 10 < len(&plain) * 9,
        "planes {} bytes, plain zstd {} bytes",
        len(&planes),
        len(&plain)
    );
    assert_eq!(planes.get(&d[0]).unwrap(), Some(bytes.clone()));
    assert_eq!(plain.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn an_int32_array_is_stored_as_planes() {
    let (_dir, store) = new_store();
    let bytes = int32_counts(256 << 10, 2);
    let (_, d) = commit(&store, &[&bytes]);
    assert!(matches!(codec_of(&store, &d[0]), 2 | 3));
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn text_and_noise_are_never_stored_as_planes() {
    let (_dir, store) = new_store();
    let text = compressible_bytes(300 << 10, 3);
    let noise = random_bytes(300 << 10, 4);
    let (_, d) = commit(&store, &[&text, &noise]);
    assert_eq!(codec_of(&store, &d[0]), 1);
    assert_eq!(codec_of(&store, &d[1]), 0);
}

#[test]
fn a_version_1_store_stays_version_1_and_never_uses_planes() {
    let (_dir, store) = new_store_with(version_1());
    assert!(!store.format().byte_planes());
    let text = std::fs::read_to_string(store.root().join("FORMAT")).unwrap();
    assert!(text.contains("\nversion 1\n"), "{text}");
    let (_, d) = commit(&store, &[&float64_signal(64 << 10, 5)]);
    assert_eq!(codec_of(&store, &d[0]), 1);
    let again = autosave_store::Store::open(store.root()).unwrap();
    assert_eq!(again.format().version, 1);
    assert!(again.get(&d[0]).unwrap().is_some());
}

#[test]
fn a_format_version_this_build_does_not_write_is_refused() {
    for version in [0, FORMAT_VERSION + 1] {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store_path(&dir);
        let made = autosave_store::Store::open_with(
            &path,
            Options {
                create: true,
                format_version: version,
                ..Options::default()
            },
        );
        assert!(
            matches!(made, Err(Error::InvalidOptions { .. })),
            "version {version}: {made:?}"
        );
    }
}

#[test]
fn damage_to_a_plane_blob_is_reported_never_returned() {
    let (_dir, store) = new_store();
    let bytes = float64_signal(200 << 10, 6);
    let (_, d) = commit(&store, &[&bytes]);
    let path = blob_file(&store, &d[0]);
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good[5], 3);
    // Another plane width, plain zstd, a flipped payload byte: each decodes to other bytes or
    // fails, and either way the read is an error naming the blob.
    let mut wrong_width = good.clone();
    wrong_width[5] = 2;
    let mut not_planes = good.clone();
    not_planes[5] = 1;
    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 0x10;
    for damaged in [wrong_width, not_planes, flipped] {
        std::fs::write(&path, &damaged).unwrap();
        match store.get(&d[0]) {
            Err(Error::Corrupt { digest, .. }) => assert_eq!(digest, d[0]),
            other => panic!(
                "expected Corrupt, got {:?}",
                other.map(|b| b.map(|b| b.len()))
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any mix of structured and random stretches, at lengths around every threshold of the
    /// codec choice (inline limit, plane minimum, trial length, odd tails), reads back exactly.
    #[test]
    fn every_blob_reads_back_exactly_whatever_codec_it_got(
        parts in prop::collection::vec((0u8..3, 0usize..70_000, any::<u64>()), 1..6)
    ) {
        let (_dir, store) = new_store();
        let blobs: Vec<Vec<u8>> = parts
            .iter()
            .map(|&(kind, len, seed)| match kind {
                0 => float64_signal(len, seed),
                1 => int32_counts(len, seed),
                _ => [float64_signal(len / 2, seed), random_bytes(len - len / 2, seed)].concat(),
            })
            .collect();
        let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        let (_, digests) = commit(&store, &refs);
        for (digest, bytes) in digests.iter().zip(&blobs) {
            let read = store.get(digest).unwrap();
            prop_assert_eq!(read.as_ref(), Some(bytes));
        }
    }
}

/// Random words of 5 to 13 bytes from a vocabulary of 4,096: zstd finds the repeated words, but
/// split into planes they are noise.
fn random_words(len: usize, seed: u64) -> Vec<u8> {
    let noise = random_bytes(len + (128 << 10), seed);
    let vocabulary: Vec<&[u8]> = (0..4096)
        .map(|i| &noise[i * 16..i * 16 + 5 + i % 9])
        .collect();
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 64 << 10;
    while out.len() < len {
        let pick = usize::from(noise[i]) << 8 | usize::from(noise[i + 1]);
        out.extend_from_slice(vocabulary[pick % vocabulary.len()]);
        i += 2;
    }
    out.truncate(len);
    out
}

#[test]
fn a_blob_whose_middle_alone_suits_planes_still_gets_plain_zstd() {
    let (_dir, store) = new_store();
    // The codec trial compresses the middle 32 KiB, an array here, and picks planes; over the
    // whole megabyte planes save under 3 %, so plain zstd is tried before storing it raw.
    let len = 1 << 20;
    let mut bytes = random_words(len, 7);
    let middle = len / 2 - (16 << 10);
    bytes[middle..middle + (32 << 10)].copy_from_slice(&float64_signal(32 << 10, 8));
    let (_, d) = commit(&store, &[&bytes]);
    assert_eq!(codec_of(&store, &d[0]), 1);
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}
