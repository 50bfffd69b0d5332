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

/// The real filesystem, recording in order every directory fsync and every index commit.
#[derive(Debug, Default)]
struct Records {
    events: std::sync::Mutex<Vec<String>>,
    /// While set, every directory fsync fails.
    failing: std::sync::atomic::AtomicBool,
}

impl Records {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    fn push(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }
}

impl crate::Hooks for Records {
    fn sync_dir(&self, path: &camino::Utf8Path) -> Option<std::io::Result<()>> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Some(Err(std::io::Error::other("injected fsync failure")));
        }
        self.push(format!("sync_dir {path}"));
        None
    }
    fn after_commit(&self, _index: &camino::Utf8Path, _durable: bool) {
        self.push("commit".to_owned());
    }
}

fn open_recorded(path: &camino::Utf8Path) -> (Store, std::sync::Arc<crate::Hooked<Records>>) {
    let vfs = std::sync::Arc::new(crate::Hooked(Records::default()));
    let options = Options {
        vfs: vfs.clone(),
        ..Options::default()
    };
    (Store::open_with(path, options).unwrap(), vfs)
}

/// How many times `events` fsynced `dir` before the first commit, and in all.
fn dir_syncs(events: &[String], dir: &camino::Utf8Path) -> (usize, usize) {
    let sync = format!("sync_dir {dir}");
    let first_commit = events.iter().position(|e| e == "commit");
    let before = events[..first_commit.unwrap_or(events.len())]
        .iter()
        .filter(|e| **e == sync)
        .count();
    (before, events.iter().filter(|e| **e == sync).count())
}

#[test]
fn a_handle_makes_the_wal_name_durable_before_its_first_commit_and_reads_never_pay_for_it() {
    let (_dir, store) = new_store();
    let (_, digests) = commit(&store, &[b"one"]);
    let path = store.root().to_owned();
    let wal = path.join("index.sqlite-wal");
    drop(store);
    // The last connection closed: SQLite deleted the WAL, and the next open creates it anew.
    assert!(!wal.exists());
    let (store, vfs) = open_recorded(&path);
    assert!(wal.exists());
    // Everything a snapshot of an unchanged tree does: no directory fsync at all.
    store.snapshots().unwrap();
    store.latest().unwrap();
    store.load_cache("dir-record:x").unwrap();
    assert_eq!(
        store.get(&digests[0]).unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(vfs.events(), Vec::<String>::new());
    // A second handle finds the WAL there (another process's, say): it too makes the name
    // durable before it commits, since the creator may not have written yet.
    let (other, other_vfs) = open_recorded(&path);
    other.save_cache("dir-record:x", b"cached").unwrap();
    assert_eq!(dir_syncs(&other_vfs.events(), &path), (1, 1));
    // The first handle's first write fsyncs the directory before its commit, and once only.
    commit(&store, &[b"two"]);
    store.save_cache("dir-record:x", b"again").unwrap();
    let events = vfs.events();
    assert_eq!(events.iter().filter(|e| *e == "commit").count(), 2);
    assert_eq!(dir_syncs(&events, &path), (1, 1), "{events:?}");
    drop((store, other));
    let (store, _) = open_recorded(&path);
    assert_eq!(
        store.load_cache("dir-record:x").unwrap().as_deref(),
        Some(&b"again"[..])
    );
}

#[test]
fn a_failed_wal_directory_fsync_fails_the_write_with_nothing_committed_and_the_next_write_retries()
{
    let (_dir, store) = new_store();
    store.save_cache("dir-record:x", b"first").unwrap();
    let path = store.root().to_owned();
    drop(store);
    let (store, vfs) = open_recorded(&path);
    vfs.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = store.save_cache("dir-record:x", b"second").unwrap_err();
    assert!(err.to_string().contains("injected fsync failure"), "{err}");
    assert_eq!(vfs.events(), Vec::<String>::new(), "nothing committed");
    assert_eq!(
        store.load_cache("dir-record:x").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    vfs.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    store.save_cache("dir-record:x", b"third").unwrap();
    assert_eq!(dir_syncs(&vfs.events(), &path), (1, 1));
    assert_eq!(
        store.load_cache("dir-record:x").unwrap().as_deref(),
        Some(&b"third"[..])
    );
}
