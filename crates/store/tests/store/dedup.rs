use crate::{commit, compressible_bytes, files_under, new_store, random_bytes};

#[test]
fn a_second_put_of_the_same_bytes_writes_nothing() {
    let (_dir, store) = new_store();
    let big = random_bytes(200_000, 10);
    let small = compressible_bytes(1000, 11);
    commit(&store, &[&big, &small]);
    let files_before = files_under(&store.root().join("objects"));
    let blobs_before = store.stats().unwrap().blobs;

    let batch = store.batch().unwrap();
    let a = batch.put(&big).unwrap();
    let b = batch.put(&small).unwrap();
    assert!(!a.new && !b.new);
    assert_eq!(batch.stats().new_blobs, 0);
    assert_eq!(batch.stats().bytes_written, 0);
    drop(batch);

    assert_eq!(files_under(&store.root().join("objects")), files_before);
    assert_eq!(store.stats().unwrap().blobs, blobs_before);
}

#[test]
fn the_same_bytes_twice_in_one_batch_are_stored_once() {
    let (_dir, store) = new_store();
    let big = random_bytes(100_000, 12);
    let batch = store.batch().unwrap();
    assert!(batch.put(&big).unwrap().new);
    assert!(!batch.put(&big).unwrap().new);
    assert_eq!(batch.stats().new_blobs, 1);
    assert_eq!(batch.stats().puts, 2);
}

#[test]
fn a_dropped_batch_records_nothing() {
    let (_dir, store) = new_store();
    let big = random_bytes(100_000, 13);
    let batch = store.batch().unwrap();
    let d = batch.put(&big).unwrap().digest;
    drop(batch);
    assert_eq!(store.get(&d).unwrap(), None);
    assert!(store.snapshots().unwrap().is_empty());
}

#[test]
fn a_blob_file_left_by_a_dropped_batch_is_reused_after_checking_it() {
    let (_dir, store) = new_store();
    let big = random_bytes(100_000, 14);
    let batch = store.batch().unwrap();
    let d = batch.put(&big).unwrap().digest;
    drop(batch);
    let (_, again) = commit(&store, &[&big]);
    assert_eq!(again[0], d);
    assert_eq!(store.get(&d).unwrap(), Some(big));
}

#[test]
fn a_damaged_leftover_file_is_replaced_not_trusted() {
    let (_dir, store) = new_store();
    let big = random_bytes(100_000, 15);
    let batch = store.batch().unwrap();
    let d = batch.put(&big).unwrap().digest;
    drop(batch);
    crate::flip_byte(&crate::blob_file(&store, &d), 5000);
    commit(&store, &[&big]);
    assert_eq!(store.get(&d).unwrap(), Some(big));
}

#[test]
fn a_good_leftover_file_at_a_blobs_name_is_kept_never_replaced() {
    use std::os::unix::fs::MetadataExt as _;
    let (_dir, store) = new_store();
    let big = random_bytes(100_000, 16);
    // A batch that wrote the blob file and was dropped before its commit: the file, no row.
    let batch = store.batch().unwrap();
    let d = batch.put(&big).unwrap().digest;
    drop(batch);
    let path = crate::blob_file(&store, &d);
    let inode = std::fs::metadata(&path).unwrap().ino();
    // The next commit of the same bytes links nothing over it: a file that is in place is never
    // replaced by another under the same name (a rename would be), only checked.
    commit(&store, &[&big]);
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(store.get(&d).unwrap(), Some(big));
}

#[test]
fn a_good_leftover_file_of_another_compression_level_is_what_the_row_describes() {
    let (dir, store) = new_store();
    let big = compressible_bytes(300_000, 17);
    // Written at level 1 by one handle and left without a row.
    let fast = autosave_store::Store::open_with(
        store.root(),
        autosave_store::Options {
            zstd_level: 1,
            ..autosave_store::Options::default()
        },
    )
    .unwrap();
    let batch = fast.batch().unwrap();
    let d = batch.put(&big).unwrap().digest;
    drop(batch);
    let path = crate::blob_file(&store, &d);
    let kept_len = std::fs::metadata(&path).unwrap().len();
    // Committed at level 19 by another: its own copy would be another length.
    let strong = autosave_store::Store::open_with(
        crate::store_path(&dir),
        autosave_store::Options {
            zstd_level: 19,
            ..autosave_store::Options::default()
        },
    )
    .unwrap();
    commit(&strong, &[&big]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        kept_len,
        "the file was kept"
    );
    let report = strong.verify(true).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(strong.get(&d).unwrap(), Some(big));
}

#[test]
fn parallel_puts_into_one_batch_store_each_blob_once() {
    let (_dir, store) = new_store();
    let contents: Vec<Vec<u8>> = (0..8).map(|i| random_bytes(50_000, 100 + i % 4)).collect();
    let batch = store.batch().unwrap();
    std::thread::scope(|s| {
        for c in &contents {
            s.spawn(|| batch.put(c).unwrap());
        }
    });
    assert_eq!(batch.stats().new_blobs, 4);
    assert_eq!(batch.stats().puts, 8);
}
