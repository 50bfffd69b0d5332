//! Progress of directory snapshots, tree snapshots and restores: ordered counts, ending at the
//! totals.

use std::sync::{Arc, Mutex};

use autosave_store::{Progress, ProgressEvent, SnapshotKind};
use autosave_tree::{
    ChangeCache, EntryPath, KIND_FILE, Manifest, Node, RestoreOptions, SnapshotSpec, load_manifest,
    restore_dir, snapshot_dir, write_snapshot,
};

use crate::dir::make_tree;
use crate::{SMALL_CHUNKS, new_store, new_store_with, random_bytes};

/// A progress that records every event, and the record.
fn recorder() -> (Progress, Arc<Mutex<Vec<ProgressEvent>>>) {
    let seen: Arc<Mutex<Vec<ProgressEvent>>> = Arc::default();
    let log = seen.clone();
    (Progress::new(move |e| log.lock().unwrap().push(e)), seen)
}

/// Asserts that the events start at zero, never go back, keep their totals, and end at the
/// totals; returns the last one.
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

fn file_bytes(manifest: &Manifest) -> u64 {
    manifest
        .entries()
        .iter()
        .filter(|e| e.kind == KIND_FILE)
        .map(|e| e.content.len())
        .sum()
}

#[test]
fn a_directory_snapshot_reports_every_entry_and_file_byte_read_or_skipped() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    for round in ["first", "unchanged"] {
        let (progress, seen) = recorder();
        let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
        spec.progress = progress;
        let w = snapshot_dir(&store, &src, &spec).unwrap();
        let events = seen.lock().unwrap();
        let last = rises_to_the_totals(&events);
        assert_eq!(last.items_total, w.report.entries, "{round}");
        let manifest = load_manifest(&store, &w.manifest).unwrap();
        assert_eq!(last.bytes_total, file_bytes(&manifest), "{round}");
        assert_eq!(
            events.len() as u64,
            w.report.entries + 1,
            "{round}: one per entry"
        );
    }
}

#[test]
fn entries_finished_on_many_threads_are_reported_in_order() {
    let (_dir, store) = new_store_with(SMALL_CHUNKS);
    let contents: Vec<Vec<u8>> = (0..300)
        .map(|i| random_bytes(100 + (i * 997) % 200_000, i as u64))
        .collect();
    let nodes: Vec<Node<'_>> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| Node::bytes(EntryPath::new([format!("n{i}")]), "blob", c))
        .collect();
    let (progress, seen) = recorder();
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.progress = progress;
    write_snapshot(&store, &mut ChangeCache::new(), &nodes, &spec).unwrap();
    let last = rises_to_the_totals(&seen.lock().unwrap());
    let total: usize = contents.iter().map(Vec::len).sum();
    assert_eq!((last.items_total, last.bytes_total), (300, total as u64));
}

#[test]
fn a_restore_reports_every_entry_and_file_byte_written() {
    let (dir, store) = new_store();
    let src = dir.path().join("project");
    make_tree(&src);
    let spec = SnapshotSpec::new(SnapshotKind::Explicit);
    let w = snapshot_dir(&store, &src, &spec).unwrap();
    let (progress, seen) = recorder();
    let options = RestoreOptions {
        progress,
        ..RestoreOptions::default()
    };
    let manifest = load_manifest(&store, &w.manifest).unwrap();
    let report = restore_dir(&store, &manifest, &dir.path().join("out"), &options).unwrap();
    let last = rises_to_the_totals(&seen.lock().unwrap());
    assert_eq!(
        last.items_total,
        report.files + report.symlinks + report.dirs
    );
    assert_eq!(last.bytes_total, report.bytes);
    assert_eq!(report.bytes, file_bytes(&manifest));
}
