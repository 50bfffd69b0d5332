use autosave_store::{HashAlgo, Options};

use crate::{blob_file, commit, compressible_bytes, new_store, new_store_with, random_bytes};

#[test]
fn an_empty_blob_round_trips() {
    let (_dir, store) = new_store();
    let (_, d) = commit(&store, &[b""]);
    assert_eq!(store.get(&d[0]).unwrap(), Some(Vec::new()));
}

#[test]
fn a_small_blob_lives_inline_and_round_trips() {
    let (_dir, store) = new_store();
    let bytes = compressible_bytes(16 << 10, 1);
    let (_, d) = commit(&store, &[&bytes]);
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
    assert!(
        !blob_file(&store, &d[0]).exists(),
        "a blob at the inline limit has no file"
    );
    // the manifest and the snapshot record are files; the blob is not
    assert_eq!(store.stats().unwrap().inline_blobs, 1);
}

#[test]
fn a_large_compressible_blob_is_a_compressed_file() {
    let (_dir, store) = new_store();
    let bytes = compressible_bytes(1 << 20, 2);
    let (_, d) = commit(&store, &[&bytes]);
    let file_len = std::fs::metadata(blob_file(&store, &d[0])).unwrap().len();
    assert!(
        file_len < bytes.len() as u64 / 2,
        "file is {file_len} bytes"
    );
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn a_large_random_blob_is_stored_raw_behind_its_header() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(1 << 20, 3);
    let (_, d) = commit(&store, &[&bytes]);
    let file_len = std::fs::metadata(blob_file(&store, &d[0])).unwrap().len();
    assert_eq!(file_len, bytes.len() as u64 + 16);
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn a_blob_one_byte_over_the_inline_limit_is_a_file() {
    let (_dir, store) = new_store();
    let bytes = random_bytes((16 << 10) + 1, 4);
    let (_, d) = commit(&store, &[&bytes]);
    assert!(blob_file(&store, &d[0]).exists());
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn a_hundred_mib_blob_round_trips() {
    let (_dir, store) = new_store();
    let mut bytes = compressible_bytes(50 << 20, 5);
    bytes.extend(random_bytes(50 << 20, 6));
    let (_, d) = commit(&store, &[&bytes]);
    let back = store.get(&d[0]).unwrap().expect("present");
    assert_eq!(back.len(), bytes.len());
    assert!(back == bytes);
}

#[test]
fn a_strong_store_keys_by_blake3() {
    let (_dir, store) = new_store_with(Options {
        strong: true,
        ..Options::default()
    });
    assert_eq!(store.hash_algo(), HashAlgo::Blake3);
    let bytes = random_bytes(40_000, 7);
    let (_, d) = commit(&store, &[&bytes]);
    assert_eq!(d[0].as_bytes(), blake3::hash(&bytes).as_bytes());
    assert_eq!(store.get(&d[0]).unwrap(), Some(bytes));
}

#[test]
fn the_default_digest_is_the_xxh3_128_of_the_uncompressed_bytes() {
    let (_dir, store) = new_store();
    let bytes = compressible_bytes(100_000, 8);
    let (_, d) = commit(&store, &[&bytes]);
    let expected = xxhash_rust::xxh3::xxh3_128(&bytes).to_be_bytes();
    assert_eq!(d[0].as_bytes(), &expected);
    assert_eq!(d[0].to_string().len(), 32);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// The store hashes with one XXH3 implementation (runtime SIMD dispatch); a second, independent
    /// one (xxhash-rust) must agree on every digest, one-shot and streamed in any pieces, at every
    /// size class (short inputs, mid-size, and long ones that take the vectorised loop).
    #[test]
    fn xxh3_digests_agree_with_an_independent_implementation(
        len in proptest::prop_oneof![0..300usize, 0..5_000usize, 0..600_000usize],
        cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..4),
        seed in 0..u64::MAX,
    ) {
        let bytes = random_bytes(len, seed);
        let expected = xxhash_rust::xxh3::xxh3_128(&bytes).to_be_bytes();
        let oneshot = HashAlgo::Xxh3_128.hash(&bytes);
        proptest::prop_assert_eq!(oneshot.as_bytes(), &expected[..]);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
        at.sort_unstable();
        let mut hasher = HashAlgo::Xxh3_128.hasher();
        let mut from = 0;
        for to in at.into_iter().chain([len]) {
            hasher.update(&bytes[from..to]);
            from = to;
        }
        let streamed = hasher.finish();
        proptest::prop_assert_eq!(streamed.as_bytes(), &expected[..]);
    }
}

#[test]
fn get_of_an_unknown_digest_is_none() {
    let (_dir, store) = new_store();
    let d = store.digest_of(b"never stored");
    assert_eq!(store.get(&d).unwrap(), None);
}

#[test]
fn digests_parse_back_from_their_display_form() {
    let d = HashAlgo::Blake3.hash(b"x");
    assert_eq!(d.to_string().parse::<autosave_store::Digest>().unwrap(), d);
    assert!("zz".parse::<autosave_store::Digest>().is_err());
    assert!(format!("{d:?}").len() < 24, "Debug is short");
}

#[test]
fn latest_is_the_snapshot_with_the_highest_id_left() {
    let (_dir, store) = crate::new_store();
    assert_eq!(store.latest().unwrap(), None);
    let ids: Vec<_> = (0..3)
        .map(|i| crate::commit(&store, &[format!("snapshot {i}").as_bytes()]).0)
        .collect();
    assert_eq!(store.latest().unwrap().unwrap().id, ids[2]);
    assert_eq!(
        store.latest().unwrap(),
        store.snapshots().unwrap().pop(),
        "the same row, read alone"
    );
    store.delete_snapshots(&[ids[2]]).unwrap();
    assert_eq!(store.latest().unwrap().unwrap().id, ids[1]);
    store.delete_snapshots(&[ids[0], ids[1]]).unwrap();
    assert_eq!(store.latest().unwrap(), None);
}

#[test]
fn latest_labelled_is_the_newest_snapshot_with_that_label() {
    let (_dir, store) = crate::new_store();
    let commit_labelled = |label: &str, seed: u64| {
        let batch = store.batch().unwrap();
        let manifest = batch
            .put_file(&crate::random_bytes(100, seed))
            .unwrap()
            .digest;
        let mut snap =
            autosave_store::NewSnapshot::new(autosave_store::SnapshotKind::Autosave, manifest);
        snap.label = label.to_owned();
        batch.commit(snap).unwrap().id
    };
    let a1 = commit_labelled("a", 1);
    let b1 = commit_labelled("b", 2);
    let a2 = commit_labelled("a", 3);
    let b2 = commit_labelled("b", 4);
    assert_eq!(store.latest_labelled("a").unwrap().unwrap().id, a2);
    assert_eq!(store.latest_labelled("b").unwrap().unwrap().id, b2);
    assert_eq!(store.latest_labelled("c").unwrap(), None);
    store.delete_snapshots(&[a2, b2]).unwrap();
    assert_eq!(store.latest_labelled("a").unwrap().unwrap().id, a1);
    assert_eq!(store.latest_labelled("b").unwrap().unwrap().id, b1);
}
