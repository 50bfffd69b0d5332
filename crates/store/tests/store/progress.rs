//! Progress reported by the long operations: ordered counts, ending at the totals.

use std::sync::{Arc, Mutex};

use autosave_store::{GcOptions, Progress, ProgressEvent};

use crate::{blob_file, commit, compressible_bytes, new_store, random_bytes};

/// A progress that records every event, and the record.
fn recorder() -> (Progress, Arc<Mutex<Vec<ProgressEvent>>>) {
    let seen: Arc<Mutex<Vec<ProgressEvent>>> = Arc::default();
    let log = seen.clone();
    (Progress::new(move |e| log.lock().unwrap().push(e)), seen)
}

/// Asserts that the events start at zero, never go back, never change their totals, and end
/// at the totals; returns the last one.
fn rises_to_the_totals(events: &[ProgressEvent]) -> ProgressEvent {
    let first = events.first().expect("at least the start is reported");
    assert_eq!((first.items, first.bytes), (0, 0), "{events:?}");
    for pair in events.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b.items >= a.items && b.bytes >= a.bytes, "{events:?}");
        assert_eq!(
            (a.items_total, a.bytes_total),
            (b.items_total, b.bytes_total),
            "{events:?}"
        );
    }
    let last = *events.last().expect("not empty");
    assert!(last.is_done(), "{events:?}");
    last
}

fn two_snapshots(store: &autosave_store::Store) -> autosave_store::SnapshotId {
    let (old, _) = commit(store, &[&random_bytes(50_000, 80), b"small"]);
    commit(
        store,
        &[&random_bytes(30_000, 81), &compressible_bytes(40_000, 82)],
    );
    old
}

#[test]
fn verify_with_read_data_reports_every_blob_and_byte_it_reads() {
    let (_dir, store) = new_store();
    two_snapshots(&store);
    let (progress, seen) = recorder();
    let report = store.verify_with(true, &progress).unwrap();
    assert!(report.is_clean());
    let events = seen.lock().unwrap();
    let last = rises_to_the_totals(&events);
    assert_eq!(last.items_total, report.blobs_checked);
    assert_eq!(last.bytes_total, report.bytes_read);
    assert_eq!(
        events.len() as u64,
        report.blobs_checked + 1,
        "one event per blob"
    );
}

#[test]
fn verify_without_read_data_counts_blobs_and_no_bytes() {
    let (_dir, store) = new_store();
    two_snapshots(&store);
    let (progress, seen) = recorder();
    let report = store.verify_with(false, &progress).unwrap();
    let last = rises_to_the_totals(&seen.lock().unwrap());
    assert_eq!(
        (last.items_total, last.bytes_total),
        (report.blobs_checked, 0)
    );
}

#[test]
fn a_damaged_blob_still_counts_as_checked() {
    let (_dir, store) = new_store();
    let (_, digests) = commit(
        &store,
        &[&random_bytes(50_000, 83), &random_bytes(40_000, 84)],
    );
    std::fs::remove_file(blob_file(&store, &digests[0])).unwrap();
    let (progress, seen) = recorder();
    let report = store.verify_with(true, &progress).unwrap();
    assert!(!report.is_clean());
    let last = rises_to_the_totals(&seen.lock().unwrap());
    assert_eq!(last.items_total, report.blobs_checked);
    assert!(
        last.bytes_total > report.bytes_read,
        "the missing blob's bytes count too"
    );
}

#[test]
fn gc_reports_every_blob_row_examined_or_removed() {
    for dry_run in [true, false] {
        let (_dir, store) = new_store();
        let old = two_snapshots(&store);
        store.delete_snapshots(&[old]).unwrap();
        let (progress, seen) = recorder();
        let options = GcOptions {
            dry_run,
            progress,
            ..GcOptions::default()
        };
        let report = store.gc_with(options).unwrap();
        assert!(report.blobs_removed > 0);
        let last = rises_to_the_totals(&seen.lock().unwrap());
        assert_eq!(
            (last.items_total, last.bytes_total),
            (report.blobs_kept + report.blobs_removed, 0),
            "dry run {dry_run}"
        );
    }
}

#[test]
fn gc_of_a_store_with_nothing_to_remove_still_ends_at_the_totals() {
    let (_dir, store) = new_store();
    two_snapshots(&store);
    let (progress, seen) = recorder();
    let report = store
        .gc_with(GcOptions {
            progress,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(report.blobs_removed, 0);
    let last = rises_to_the_totals(&seen.lock().unwrap());
    assert_eq!(last.items_total, report.blobs_kept);
}
