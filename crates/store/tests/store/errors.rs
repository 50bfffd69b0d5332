use autosave_store::{Error, NewSnapshot, Options, SnapshotId, SnapshotKind, Store};
use camino::Utf8Path;

use crate::{
    blob_file, commit, compressible_bytes, new_store, new_store_with, random_bytes, store_path,
};

fn utf8(dir: &tempfile::TempDir) -> &Utf8Path {
    Utf8Path::from_path(dir.path()).expect("UTF-8 temp dir")
}

#[test]
fn opening_a_missing_directory_is_no_store_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    match Store::open(&path) {
        Err(Error::NoStore { path: p }) => assert_eq!(p, path),
        other => panic!("expected NoStore, got {other:?}"),
    }
}

#[test]
fn opening_an_empty_directory_is_no_store() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(utf8(&dir)),
        Err(Error::NoStore { .. })
    ));
}

#[test]
fn a_directory_of_other_files_is_not_a_store_and_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), b"precious").unwrap();
    assert!(matches!(
        Store::open(utf8(&dir)),
        Err(Error::NotAStore { .. })
    ));
    assert!(matches!(
        Store::open_or_create(utf8(&dir)),
        Err(Error::NotAStore { .. })
    ));
    assert!(!dir.path().join("FORMAT").exists());
}

#[test]
fn a_store_whose_format_is_gone_is_refused_and_never_created_anew_over_its_blobs() {
    let (_dir, store) = new_store();
    let (id, digests) = commit(&store, &[&random_bytes(50_000, 3)]);
    let root = store.root().to_owned();
    drop(store);
    let format = std::fs::read(root.join("FORMAT")).unwrap();
    std::fs::remove_file(root.join("FORMAT")).unwrap();
    for open in [Store::open, Store::open_or_create] {
        match open(&root) {
            Err(Error::MissingFormat { path }) => assert_eq!(path, root),
            other => panic!("expected MissingFormat, got {other:?}"),
        }
    }
    assert!(!root.join("FORMAT").exists());
    // With FORMAT back from a backup, the store is whole: nothing was touched.
    std::fs::write(root.join("FORMAT"), format).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(store.latest().unwrap().map(|s| s.id), Some(id));
    assert!(store.get(&digests[0]).unwrap().is_some());
}

#[test]
fn a_creation_interrupted_before_format_is_completed_by_the_next_open() {
    let (_dir, store) = new_store();
    let root = store.root().to_owned();
    drop(store);
    // What a creation leaves when it stops just before FORMAT: the rest, and no blob.
    std::fs::remove_file(root.join("FORMAT")).unwrap();
    assert!(matches!(Store::open(&root), Err(Error::NoStore { .. })));
    let store = Store::open_or_create(&root).unwrap();
    assert!(store.snapshots().unwrap().is_empty());
}

#[test]
fn a_store_of_a_newer_format_version_is_refused_with_both_versions() {
    let (_dir, store) = new_store();
    let format = store.root().join("FORMAT");
    let text = std::fs::read_to_string(&format).unwrap();
    std::fs::write(&format, text.replace("version 2\n", "version 3\n")).unwrap();
    match Store::open(store.root()) {
        Err(Error::NewerFormat {
            path,
            found: 3,
            supported: 2,
        }) => assert_eq!(path, format),
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[test]
fn a_damaged_format_file_is_bad_format_naming_the_file() {
    let (_dir, store) = new_store();
    let format = store.root().join("FORMAT");
    let mut bytes = std::fs::read(&format).unwrap();
    // flip one bit inside the inline-limit value
    let at = String::from_utf8_lossy(&bytes)
        .find("inline-limit ")
        .unwrap()
        + 13;
    bytes[at] ^= 1;
    std::fs::write(&format, &bytes).unwrap();
    match Store::open(store.root()) {
        Err(Error::BadFormat { path, reason }) => {
            assert_eq!(path, format);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected BadFormat, got {other:?}"),
    }
}

#[test]
fn a_truncated_or_empty_format_file_is_bad_format() {
    for keep in [0, 10, 40] {
        let (_dir, store) = new_store();
        let format = store.root().join("FORMAT");
        let bytes = std::fs::read(&format).unwrap();
        std::fs::write(&format, &bytes[..keep]).unwrap();
        assert!(
            matches!(Store::open(store.root()), Err(Error::BadFormat { .. })),
            "truncated to {keep}"
        );
    }
}

#[test]
fn unusable_creation_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        create: true,
        chunking: autosave_store::ChunkParams {
            threshold: 1,
            min: 10,
            avg: 5,
            max: 1,
        },
        ..Options::default()
    };
    assert!(matches!(
        Store::open_with(store_path(&dir), options),
        Err(Error::InvalidOptions { .. })
    ));
}

#[test]
fn a_flipped_bit_in_a_blob_file_is_corrupt_naming_digest_and_path() {
    for bytes in [random_bytes(100_000, 30), compressible_bytes(100_000, 31)] {
        let (_dir, store) = new_store();
        let (_, d) = commit(&store, &[&bytes]);
        let path = blob_file(&store, &d[0]);
        let mut file = std::fs::read(&path).unwrap();
        let at = file.len() / 2;
        file[at] ^= 0x10;
        std::fs::write(&path, &file).unwrap();
        match store.get(&d[0]) {
            Err(Error::Corrupt {
                digest, location, ..
            }) => {
                assert_eq!(digest, d[0]);
                assert_eq!(location, path);
            }
            other => panic!(
                "expected Corrupt, got {:?}",
                other.map(|v| v.map(|v| v.len()))
            ),
        }
    }
}

#[test]
fn a_truncated_blob_file_is_corrupt() {
    let (_dir, store) = new_store();
    let (_, d) = commit(&store, &[&random_bytes(100_000, 32)]);
    let path = blob_file(&store, &d[0]);
    for keep in [0, 8, 16, 50_000] {
        let file = std::fs::read(&path).unwrap();
        std::fs::write(&path, &file[..keep.min(file.len())]).unwrap();
        assert!(
            matches!(store.get(&d[0]), Err(Error::Corrupt { .. })),
            "kept {keep}"
        );
    }
}

#[test]
fn a_missing_blob_file_is_missing_naming_the_path() {
    let (_dir, store) = new_store();
    let (_, d) = commit(&store, &[&random_bytes(100_000, 33)]);
    let path = blob_file(&store, &d[0]);
    std::fs::remove_file(&path).unwrap();
    match store.get(&d[0]) {
        Err(Error::Missing { digest, location }) => {
            assert_eq!(digest, d[0]);
            assert_eq!(location, path);
        }
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[test]
fn a_decompression_bomb_is_corrupt_and_bounded_by_the_recorded_length() {
    let (_dir, store) = new_store();
    let bytes = compressible_bytes(100_000, 34);
    let (_, d) = commit(&store, &[&bytes]);
    let path = blob_file(&store, &d[0]);
    let mut file = std::fs::read(&path).unwrap()[..16].to_vec();
    // a valid zstd frame of 512 MiB of zeros, behind the genuine header
    let bomb = zstd::bulk::compress(&vec![0u8; 512 << 20], 19).unwrap();
    file.extend_from_slice(&bomb);
    std::fs::write(&path, &file).unwrap();
    assert!(matches!(store.get(&d[0]), Err(Error::Corrupt { .. })));
}

#[test]
fn a_damaged_inline_blob_is_corrupt() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(1000, 35);
    let (_, d) = commit(&store, &[&bytes]);
    let db = rusqlite::Connection::open(store.root().join("index.sqlite")).unwrap();
    let mut data: Vec<u8> = db
        .query_row(
            "SELECT data FROM blobs WHERE digest = ?1",
            [d[0].as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    data[10] ^= 4;
    db.execute(
        "UPDATE blobs SET data = ?1 WHERE digest = ?2",
        rusqlite::params![data, d[0].as_bytes()],
    )
    .unwrap();
    assert!(matches!(store.get(&d[0]), Err(Error::Corrupt { .. })));
}

#[test]
fn a_digest_of_the_other_algorithm_is_a_typed_error() {
    let (_dir, store) = new_store();
    let foreign = autosave_store::HashAlgo::Blake3.hash(b"x");
    assert!(matches!(store.get(&foreign), Err(Error::WrongAlgo { .. })));
}

#[test]
fn committing_a_snapshot_with_a_dangling_reference_records_nothing() {
    let (_dir, store) = new_store();
    let batch = store.batch().unwrap();
    let manifest = batch.put_file(b"m").unwrap().digest;
    let mut snap = NewSnapshot::new(SnapshotKind::Autosave, manifest);
    let ghost = store.digest_of(b"never put");
    snap.refs.push(ghost);
    match batch.commit(snap) {
        Err(Error::DanglingReference { digest }) => assert_eq!(digest, ghost),
        other => panic!("expected DanglingReference, got {other:?}"),
    }
    assert!(store.snapshots().unwrap().is_empty());
    assert_eq!(store.get(&manifest).unwrap(), None);
}

#[test]
fn deleting_an_unknown_snapshot_deletes_nothing() {
    let (_dir, store) = new_store();
    let (a, _) = commit(&store, &[b"a"]);
    assert!(matches!(
        store.delete_snapshots(&[a, SnapshotId(999)]),
        Err(Error::UnknownSnapshot {
            id: SnapshotId(999)
        })
    ));
    assert_eq!(store.snapshots().unwrap().len(), 1);
}

#[test]
fn a_missing_index_is_a_damaged_index_error() {
    let (_dir, store) = new_store_with(Options::default());
    let root = store.root().to_owned();
    drop(store);
    std::fs::remove_file(root.join("index.sqlite")).unwrap();
    assert!(matches!(
        Store::open(&root),
        Err(Error::DamagedIndex { .. })
    ));
}

/// Issue #7, found by the `blob_file` fuzz target: a blob file whose header claims u64::MAX
/// bytes of zstd output overflowed the decoder's bound (a panic with overflow checks on). Reads
/// and a rebuild of the index must report it as damage instead.
#[test]
fn a_blob_file_header_claiming_u64_max_bytes_is_corrupt_not_a_panic() {
    let (_dir, store) = new_store();
    let original = random_bytes(100_000, 64);
    let (_, digests) = commit(&store, &[&original]);
    let mut file = b"ASVB\x01\x01\x00\x00".to_vec();
    file.extend_from_slice(&u64::MAX.to_le_bytes());
    file.extend_from_slice(&[0xff; 40]);
    std::fs::write(blob_file(&store, &digests[0]), &file).unwrap();

    assert!(matches!(store.get(&digests[0]), Err(Error::Corrupt { .. })));
    let root = store.root().to_owned();
    drop(store);
    let refs_of = |_: &[u8]| Some(Vec::new());
    let (_, report) = Store::rebuild_index(&root, Options::default(), &refs_of).unwrap();
    assert_eq!(report.damaged_files, 1);
}
