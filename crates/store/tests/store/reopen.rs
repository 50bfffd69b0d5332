use autosave_store::{ChunkParams, HashAlgo, Options, SnapshotKind, Store};

use crate::{commit, compressible_bytes, new_store, new_store_with, random_bytes};

#[test]
fn reopening_keeps_every_snapshot_and_blob() {
    let (_dir, store) = new_store();
    let contents: Vec<Vec<u8>> = vec![
        Vec::new(),
        compressible_bytes(300, 20),
        random_bytes(20_000, 21),
        compressible_bytes(2 << 20, 22),
    ];
    let refs: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
    let (a, da) = commit(&store, &refs[..2]);
    let (b, db) = commit(&store, &refs[2..]);
    let path = store.root().to_owned();
    drop(store);

    let store = Store::open(&path).unwrap();
    let ids: Vec<_> = store.snapshots().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![a, b]);
    for (d, c) in da.iter().chain(&db).zip(&contents) {
        assert_eq!(store.get(d).unwrap().as_ref(), Some(c));
    }
    assert_eq!(store.snapshot_refs(b).unwrap().len(), 2);
    assert!(store.verify(true).unwrap().is_clean());
}

#[test]
fn a_snapshot_keeps_its_kind_time_parent_label_and_meta() {
    let (_dir, store) = new_store();
    let (first, _) = commit(&store, &[b"x"]);
    let batch = store.batch().unwrap();
    let manifest = batch.put_file(b"m").unwrap().digest;
    let mut snap = autosave_store::NewSnapshot::new(SnapshotKind::Explicit, manifest);
    snap.created_ns = 1_700_000_000_123_456_789;
    snap.parent = Some(first);
    snap.label = "saved by user".into();
    snap.meta = r#"{"host":"viewer"}"#.into();
    let id = batch.commit(snap).unwrap().id;
    let info = store.snapshot(id).unwrap().expect("snapshot");
    assert_eq!(info.kind, SnapshotKind::Explicit);
    assert_eq!(info.created_ns, 1_700_000_000_123_456_789);
    assert_eq!(info.parent, Some(first));
    assert_eq!(info.label, "saved by user");
    assert_eq!(info.meta, r#"{"host":"viewer"}"#);
    assert_eq!(info.manifest, manifest);
}

#[test]
fn the_format_records_the_settings_a_store_was_created_with() {
    let chunking = ChunkParams {
        threshold: 8 << 20,
        min: 128 << 10,
        avg: 512 << 10,
        max: 2 << 20,
    };
    let (_dir, store) = new_store_with(Options {
        strong: true,
        inline_limit: 4096,
        chunking,
        ..Options::default()
    });
    let path = store.root().to_owned();
    let id = store.format().store_id;
    drop(store);
    let format = *Store::open(&path).unwrap().format();
    assert_eq!(format.hash, HashAlgo::Blake3);
    assert_eq!(format.inline_limit, 4096);
    assert_eq!(format.chunking, chunking);
    assert_eq!(format.store_id, id);
}

#[test]
fn two_stores_get_different_ids() {
    let (_a, a) = new_store();
    let (_b, b) = new_store();
    assert_ne!(a.format().store_id, b.format().store_id);
}

#[test]
fn snapshot_ids_are_never_reused_after_deletion() {
    let (_dir, store) = new_store();
    let (a, _) = commit(&store, &[b"a"]);
    let (b, _) = commit(&store, &[b"b"]);
    store.delete_snapshots(&[b]).unwrap();
    let (c, _) = commit(&store, &[b"c"]);
    assert!(c > b && b > a);
}

#[test]
fn open_or_create_opens_an_existing_store() {
    let (_dir, store) = new_store();
    let (a, _) = commit(&store, &[b"a"]);
    let again = Store::open_or_create(store.root()).unwrap();
    assert_eq!(again.format().store_id, store.format().store_id);
    assert_eq!(again.latest().unwrap().map(|s| s.id), Some(a));
}
