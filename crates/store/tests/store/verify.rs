use autosave_store::{Digest, Problem};

use crate::{blob_file, commit, new_store, random_bytes};

#[test]
fn verify_of_a_healthy_store_is_clean_and_counts_what_it_read() {
    let (_dir, store) = new_store();
    commit(&store, &[&random_bytes(50_000, 60), b"small"]);
    commit(&store, &[&random_bytes(30_000, 61)]);
    let quick = store.verify(false).unwrap();
    assert!(quick.is_clean());
    assert_eq!(quick.snapshots, 2);
    assert_eq!(quick.bytes_read, 0);
    let full = store.verify(true).unwrap();
    assert!(full.is_clean());
    assert!(full.bytes_read >= 80_005);
    assert_eq!(full.blobs_checked, quick.blobs_checked);
}

#[test]
fn a_flipped_bit_is_found_with_read_data_and_names_every_snapshot_that_needs_it() {
    let (_dir, store) = new_store();
    let shared = random_bytes(50_000, 62);
    let (a, d) = commit(&store, &[&shared]);
    let (b, _) = commit(&store, &[&shared, b"more"]);
    let (c, _) = commit(&store, &[b"unrelated"]);
    crate::flip_byte(&blob_file(&store, &d[0]), 1000);

    assert!(
        store.verify(false).unwrap().is_clean(),
        "same size: only read_data can tell"
    );
    let report = store.verify(true).unwrap();
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].digest, d[0]);
    assert!(matches!(report.damaged[0].problem, Problem::Corrupt { .. }));
    assert_eq!(report.damaged_snapshots, vec![a, b]);
    assert!(!report.damaged_snapshots.contains(&c));
}

#[test]
fn a_missing_or_truncated_file_is_found_without_reading_data() {
    let (_dir, store) = new_store();
    let (a, d) = commit(
        &store,
        &[&random_bytes(50_000, 63), &random_bytes(50_000, 64)],
    );
    std::fs::remove_file(blob_file(&store, &d[0])).unwrap();
    let path = blob_file(&store, &d[1]);
    let file = std::fs::read(&path).unwrap();
    std::fs::write(&path, &file[..100]).unwrap();
    let report = store.verify(false).unwrap();
    assert_eq!(report.damaged.len(), 2);
    assert_eq!(report.damaged_snapshots, vec![a]);
    let problems: Vec<_> = report
        .damaged
        .iter()
        .map(|d| (d.digest, d.problem.clone()))
        .collect();
    assert!(problems.contains(&(d[0], Problem::Missing)));
    assert!(problems.contains(&(
        d[1],
        Problem::WrongSize {
            expected: 50_016,
            found: 100
        }
    )));
}

/// Issue #7 (corruption matrix): flipping the lowest bit of a blob file's object-kind byte turns
/// a data blob into a "snapshot record" and back. The content still hashes right, so reads are
/// exact, but a rebuild of the index would drop the blob (or lose the snapshot): verify must
/// name it.
#[test]
fn a_blob_file_whose_object_kind_was_flipped_is_reported_corrupt() {
    let (_dir, store) = new_store();
    let (id, d) = commit(&store, &[&random_bytes(50_000, 63)]);
    let record = store.snapshot(id).unwrap().unwrap().record;
    for digest in [d[0], record] {
        let path = blob_file(&store, &digest);
        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[6] ^= 1;
        std::fs::write(&path, &flipped).unwrap();

        let report = store.verify(true).unwrap();
        assert_eq!(report.damaged.len(), 1, "{digest}: {report:?}");
        assert_eq!(report.damaged[0].digest, digest);
        assert!(matches!(report.damaged[0].problem, Problem::Corrupt { .. }));
        assert_eq!(report.damaged_snapshots, vec![id]);
        std::fs::write(&path, original).unwrap();
        assert!(store.verify(true).unwrap().is_clean());
    }
}

#[test]
fn a_missing_blob_is_stored_again_once_its_row_is_forgotten() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(50_000, 70);
    let (a, d) = commit(&store, &[&bytes]);
    // Another handle, open all along, whose cache knows the digest.
    let other = autosave_store::Store::open(store.root()).unwrap();
    assert!(other.batch().unwrap().contains(&d[0]).unwrap());
    std::fs::remove_file(blob_file(&store, &d[0])).unwrap();

    // While the row stays, a put of the same bytes dedupes against it: the new snapshot
    // would be as damaged as the old one.
    assert!(!store.batch().unwrap().put(&bytes).unwrap().new);

    let repair = store
        .forget_damaged_blobs(false, &autosave_store::Progress::none())
        .unwrap();
    assert_eq!(repair.forgotten, vec![d[0]]);
    assert_eq!(repair.report.damaged_snapshots, vec![a]);
    let after = store.verify(false).unwrap();
    assert_eq!(after.damaged[0].problem, Problem::NotInIndex);
    assert_eq!(after.damaged_snapshots, vec![a]);

    // The next put of those bytes, from either handle, writes them anew, and the old snapshot
    // that needed them reads back intact.
    let batch = other.batch().unwrap();
    assert!(!batch.contains(&d[0]).unwrap());
    assert!(batch.put(&bytes).unwrap().new);
    let manifest = batch.put_file(b"again").unwrap().digest;
    let mut snap =
        autosave_store::NewSnapshot::new(autosave_store::SnapshotKind::Autosave, manifest);
    snap.refs = vec![d[0]];
    batch.commit(snap).unwrap();
    assert!(store.verify(true).unwrap().is_clean());
    assert_eq!(store.get(&d[0]).unwrap().unwrap(), bytes);
}

#[test]
fn forgetting_damaged_blobs_forgets_only_what_a_new_put_can_replace() {
    let (_dir, store) = new_store();
    let (a, d) = commit(
        &store,
        &[&random_bytes(50_000, 71), &random_bytes(50_000, 72)],
    );
    let (b, _) = commit(&store, &[b"kept apart"]);
    // A flipped byte (found only by reading), and a deleted snapshot record, which no put
    // ever writes again.
    crate::flip_byte(&blob_file(&store, &d[1]), 500);
    let record = store.snapshot(b).unwrap().unwrap().record;
    std::fs::remove_file(blob_file(&store, &record)).unwrap();

    let none = autosave_store::Progress::none();
    let quick = store.forget_damaged_blobs(false, &none).unwrap();
    assert_eq!(
        quick.report.damaged_snapshots,
        vec![b],
        "only the record is missing"
    );
    assert!(quick.report.damaged[0].record);
    assert!(quick.forgotten.is_empty(), "a record is never forgotten");

    let full = store.forget_damaged_blobs(true, &none).unwrap();
    assert_eq!(full.report.damaged_snapshots, vec![a, b]);
    assert_eq!(full.forgotten, vec![d[1]]);
    assert!(full.rewritten.is_empty());
    let after = store.verify(true).unwrap();
    let problems: Vec<(Digest, Problem)> = after
        .damaged
        .iter()
        .map(|x| (x.digest, x.problem.clone()))
        .collect();
    assert!(
        problems.contains(&(d[1], Problem::NotInIndex)),
        "{problems:?}"
    );
    assert!(
        problems.contains(&(record, Problem::Missing)),
        "{problems:?}"
    );
    assert!(
        store.get(&d[0]).unwrap().is_some(),
        "the sound blob beside it stays"
    );
}

#[test]
fn forgetting_damaged_blobs_waits_for_no_one() {
    let (_dir, store) = new_store();
    commit(&store, &[&random_bytes(50_000, 73)]);
    let batch = store.batch().unwrap();
    assert!(matches!(
        store.forget_damaged_blobs(false, &autosave_store::Progress::none()),
        Err(autosave_store::Error::Busy { .. })
    ));
    drop(batch);
}

#[test]
fn a_blob_whose_header_names_the_wrong_kind_is_written_again_not_forgotten() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(50_000, 74);
    let (id, d) = commit(&store, &[&bytes]);
    let record = store.snapshot(id).unwrap().unwrap().record;
    let none = autosave_store::Progress::none();
    for digest in [d[0], record] {
        let path = blob_file(&store, &digest);
        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[6] ^= 1;
        std::fs::write(&path, &flipped).unwrap();

        let repair = store.forget_damaged_blobs(true, &none).unwrap();
        assert_eq!(repair.rewritten, vec![digest]);
        assert!(repair.forgotten.is_empty(), "its bytes are intact");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "the header is right again"
        );
        assert!(store.verify(true).unwrap().is_clean());
    }
    assert_eq!(store.get(&d[0]).unwrap().unwrap(), bytes);
}

#[test]
fn a_referenced_file_without_a_row_is_told_apart_from_a_lost_blob() {
    let (_dir, store) = new_store();
    let (_, d) = commit(&store, &[&random_bytes(50_000, 75)]);
    let path = blob_file(&store, &d[0]);
    let kept = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let none = autosave_store::Progress::none();
    assert_eq!(
        store.forget_damaged_blobs(false, &none).unwrap().forgotten,
        vec![d[0]]
    );
    assert_eq!(
        store.verify(false).unwrap().damaged[0].problem,
        Problem::NotInIndex
    );
    // The file comes back (a copy that was still arriving, a backup put back): a rebuild of the
    // index would index it again, and verify says so.
    std::fs::write(&path, kept).unwrap();
    for read_data in [false, true] {
        let report = store.verify(read_data).unwrap();
        assert_eq!(
            report.damaged[0].problem,
            Problem::FileNotInIndex,
            "{read_data}"
        );
    }
}

#[test]
fn caches_made_before_blobs_were_forgotten_are_not_saved_after_it() {
    let (_dir, store) = new_store();
    let (_, d) = commit(&store, &[&random_bytes(50_000, 76)]);
    let generation = store.gc_generation().unwrap();
    assert!(store.save_caches_at(generation, &[("c", b"one")]).unwrap());
    assert_eq!(store.load_cache("c").unwrap().unwrap(), b"one");
    std::fs::remove_file(blob_file(&store, &d[0])).unwrap();
    let none = autosave_store::Progress::none();
    store.forget_damaged_blobs(false, &none).unwrap();
    assert_eq!(
        store.load_cache("c").unwrap(),
        None,
        "forgetting empties the caches"
    );
    assert!(!store.save_caches_at(generation, &[("c", b"two")]).unwrap());
    assert_eq!(store.load_cache("c").unwrap(), None);
    let now = store.gc_generation().unwrap();
    assert_ne!(now, generation);
    assert!(store.save_caches_at(now, &[("c", b"three")]).unwrap());
}
