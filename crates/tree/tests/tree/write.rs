use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use autosave_store::{SnapshotKind, Store};
use autosave_tree::{
    ChangeCache, Content, EntryPath, Meta, Node, SnapshotSpec, Token, read_content, write_snapshot,
};
use proptest::prelude::*;

use crate::{SMALL_CHUNKS, autosave, new_store, new_store_with, random_bytes};

/// A node whose reader counts how often it is opened.
fn counted<'a>(path: &[&str], bytes: Vec<u8>, opened: Arc<AtomicUsize>) -> Node<'a> {
    let open = Box::new(move || -> io::Result<Box<dyn Read + Send>> {
        opened.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(io::Cursor::new(bytes.clone())))
    });
    Node::reader(EntryPath::new(path.iter().copied()), "ndarray", open)
}

#[test]
fn an_entry_whose_token_is_unchanged_is_never_read() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let opened = Arc::new(AtomicUsize::new(0));
    let bytes = random_bytes(100_000, 1);
    let first = autosave(
        &store,
        &mut cache,
        &[counted(&["a"], bytes.clone(), opened.clone()).with_token(Token(7))],
    );
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let second = autosave(
        &store,
        &mut cache,
        &[counted(&["a"], bytes.clone(), opened.clone()).with_token(Token(7))],
    );
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "the reader was opened again"
    );
    assert_eq!(second.report.skipped_token, 1);
    assert_eq!(second.report.bytes_hashed, 0);
    assert_eq!(second.manifest, first.manifest);
    let third = autosave(
        &store,
        &mut cache,
        &[counted(&["a"], bytes, opened.clone()).with_token(Token(8))],
    );
    assert_eq!(opened.load(Ordering::SeqCst), 2, "a new token must be read");
    assert_eq!(third.report.hashed, 1);
    assert_eq!(
        third.report.new_blobs, 1,
        "same bytes, same manifest: only the record is new"
    );
}

#[test]
fn a_second_snapshot_of_unchanged_content_writes_only_its_manifest_and_record() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let a = random_bytes(300_000, 2);
    let nodes = [Node::bytes(EntryPath::new(["a"]), "ndarray", &a)];
    let first = autosave(&store, &mut cache, &nodes);
    assert_eq!(first.report.hashed, 1);
    assert_eq!(first.report.new_blobs, 3);
    let second = autosave(&store, &mut cache, &nodes);
    assert_eq!(
        second.report.new_blobs, 1,
        "the manifest is deduplicated; only the record is new"
    );
}

#[test]
fn unless_manifest_skips_the_commit_when_nothing_changed() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let nodes = [Node::bytes(
        EntryPath::new(["a"]),
        "note",
        b"same text, long enough to be a blob......................",
    )];
    let first = autosave(&store, &mut cache, &nodes);
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(first.manifest);
    let second = write_snapshot(&store, &mut cache, &nodes, &spec).unwrap();
    assert_eq!(second.snapshot, None);
    assert_eq!(store.snapshots().unwrap().len(), 1);
}

/// A reader that gives `bytes`, then fails (a source that broke, or a file that changed while
/// it was read): what it gave was stored, but the entry is left out.
fn fails_after<'a>(path: &[&str], bytes: Vec<u8>) -> Node<'a> {
    let open = Box::new(move || -> io::Result<Box<dyn Read + Send>> {
        let failing = io::Cursor::new(bytes.clone()).chain(FailingRead);
        Ok(Box::new(failing))
    });
    Node::reader(EntryPath::new(path.iter().copied()), "ndarray", open)
}

struct FailingRead;

impl Read for FailingRead {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("the source broke"))
    }
}

#[test]
fn blobs_of_an_entry_left_out_do_not_make_an_unchanged_tree_commit() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let fine = random_bytes(50_000, 40);
    let nodes = |seed| {
        [
            Node::bytes(EntryPath::new(["fine"]), "ndarray", &fine),
            fails_after(&["broken"], random_bytes(20 << 20, seed)),
        ]
    };
    let first = autosave(&store, &mut cache, &nodes(41));
    assert_eq!(first.report.errors.len(), 1);
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(first.manifest);
    // The broken source's new bytes are stored as they stream in (chunks of its first 16 MiB
    // block, in the batch), but the tree is the one of the first snapshot.
    let files = |store: &Store| crate::files_in(store.root().join("objects").as_std_path());
    let before = files(&store);
    let second = write_snapshot(&store, &mut cache, &nodes(42), &spec).unwrap();
    assert!(
        files(&store) > before,
        "the broken source's chunks were stored"
    );
    assert_eq!(second.report.errors.len(), 1);
    assert_eq!(second.manifest, first.manifest);
    assert_eq!(
        second.snapshot, None,
        "nothing of the tree was stored again"
    );
    assert_eq!(store.snapshots().unwrap().len(), 1);
}

#[test]
fn an_unreadable_entry_is_reported_and_the_rest_commits() {
    let (dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let fine = random_bytes(1000, 3);
    let failing = Box::new(|| -> io::Result<Box<dyn Read + Send>> {
        Err(io::Error::other("kernel went away"))
    });
    let nodes = [
        Node::bytes(EntryPath::new(["fine"]), "ndarray", &fine),
        Node::file(
            EntryPath::new(["vanished"]),
            "file",
            dir.path().join("no-such-file"),
        ),
        Node::reader(EntryPath::new(["broken"]), "table", failing),
    ];
    let w = autosave(&store, &mut cache, &nodes);
    assert!(w.snapshot.is_some());
    assert_eq!(w.entries.entries().len(), 1);
    let mut failed: Vec<String> = w.report.errors.iter().map(|e| e.path.to_string()).collect();
    failed.sort();
    assert_eq!(failed, ["broken", "vanished"]);
    assert!(
        w.report
            .errors
            .iter()
            .any(|e| e.error.contains("kernel went away"))
    );
}

#[test]
fn a_file_rewritten_within_the_same_mtime_is_still_detected() {
    let (dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let file = dir.path().join("data.bin");
    let past = SystemTime::now() - Duration::from_secs(3600);
    write_with_mtime(&file, &random_bytes(50_000, 4), past);
    let node = || Node::file(EntryPath::new(["data"]), "file", &file);
    autosave(&store, &mut cache, &[node()]);
    let unchanged = autosave(&store, &mut cache, &[node()]);
    assert_eq!(
        unchanged.report.skipped_stat, 1,
        "an old, unchanged file is not read"
    );

    // Same size, same mtime: only the ctime tells.
    let new = random_bytes(50_000, 5);
    write_with_mtime(&file, &new, past);
    let w = autosave(&store, &mut cache, &[node()]);
    assert_eq!(w.report.hashed, 1);
    assert_eq!(
        read_content(&store, &w.entries.entries()[0].content).unwrap(),
        new
    );
}

#[test]
fn a_racily_clean_file_is_read_again_until_it_is_old_enough() {
    let (dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let file = dir.path().join("fresh.bin");
    std::fs::write(&file, random_bytes(30_000, 6)).unwrap();
    let node = || Node::file(EntryPath::new(["fresh"]), "file", &file);
    autosave(&store, &mut cache, &[node()]);
    let again = autosave(&store, &mut cache, &[node()]);
    assert_eq!(
        again.report.skipped_stat, 0,
        "a just-written file is not trusted by status"
    );
    assert_eq!(again.report.hashed, 1);
    assert_eq!(
        again.report.new_blobs, 1,
        "re-reading it stores nothing new but the record"
    );
}

fn write_with_mtime(path: &std::path::Path, bytes: &[u8], mtime: SystemTime) {
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[test]
fn a_cache_bound_to_another_store_is_not_trusted() {
    let (_a_dir, a) = new_store();
    let (_b_dir, b) = new_store();
    let mut cache = ChangeCache::new();
    let bytes = random_bytes(100_000, 7);
    let nodes = [Node::bytes(EntryPath::new(["x"]), "ndarray", &bytes).with_token(Token(1))];
    autosave(&a, &mut cache, &nodes);
    // "Save As": the same cache, a new store. The new store must receive the bytes.
    let w = autosave(&b, &mut cache, &nodes);
    assert_eq!(w.report.skipped_token, 0);
    assert_eq!(
        read_content(&b, &w.entries.entries()[0].content).unwrap(),
        bytes
    );
    assert!(b.verify(true).unwrap().is_clean());
}

#[test]
fn a_cache_entry_whose_blobs_were_collected_is_not_trusted() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let bytes = random_bytes(100_000, 8);
    let nodes = [Node::bytes(EntryPath::new(["x"]), "ndarray", &bytes).with_token(Token(1))];
    let first = autosave(&store, &mut cache, &nodes);
    let mut other = ChangeCache::new();
    autosave(
        &store,
        &mut other,
        &[Node::bytes(
            EntryPath::new(["y"]),
            "note",
            b"something else entirely, long enough",
        )],
    );
    store.delete_snapshots(&[first.snapshot.unwrap()]).unwrap();
    store.gc().unwrap();
    let w = autosave(&store, &mut cache, &nodes);
    assert_eq!(w.report.skipped_token, 0);
    assert_eq!(
        read_content(&store, &w.entries.entries()[0].content).unwrap(),
        bytes
    );
}

#[test]
fn seeding_from_a_manifest_makes_the_first_snapshot_after_opening_read_nothing() {
    let (_dir, store) = new_store();
    let bytes = random_bytes(200_000, 9);
    let nodes = [Node::bytes(EntryPath::new(["x"]), "ndarray", &bytes).with_token(Token(42))];
    let first = autosave(&store, &mut ChangeCache::new(), &nodes);
    // A new process opens the project from that snapshot and seeds its cache.
    let mut cache = ChangeCache::new();
    cache.bind(store.format().store_id);
    cache.seed(&first.entries, |_| Some(Token(42)));
    let w = autosave(&store, &mut cache, &nodes);
    assert_eq!(w.report.skipped_token, 1);
    assert_eq!(w.report.bytes_hashed, 0);
    assert_eq!(w.manifest, first.manifest);
}

#[test]
fn seeding_another_tree_is_never_taken_for_the_tree_last_written() {
    // The host autosaves tree A, then loads an older snapshot holding tree B and seeds the cache
    // with it. The next autosave of B must record B, although every node is a cache hit and as
    // many nodes as A had.
    let (_dir, store) = new_store();
    let (a, b) = (random_bytes(5_000, 1), random_bytes(5_000, 2));
    let tree_b = [Node::bytes(EntryPath::new(["b"]), "ndarray", &b).with_token(Token(2))];
    let loaded = autosave(&store, &mut ChangeCache::new(), &tree_b);
    let mut cache = ChangeCache::new();
    let tree_a = [Node::bytes(EntryPath::new(["a"]), "ndarray", &a).with_token(Token(1))];
    let written_a = autosave(&store, &mut cache, &tree_a);
    cache.seed(&loaded.entries, |_| Some(Token(2)));
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(written_a.manifest);
    let w = write_snapshot(&store, &mut cache, &tree_b, &spec).unwrap();
    assert_eq!(w.report.skipped_token, 1);
    assert_eq!(w.manifest, loaded.manifest, "the tree is B");
    assert!(w.snapshot.is_some(), "B differs from the newest snapshot");
}

#[test]
fn metadata_with_non_finite_floats_is_stored_without_bare_nan() {
    let (_dir, store) = new_store();
    let meta: Meta = [
        ("fit".to_owned(), Meta::Float(f64::NAN)),
        ("max".to_owned(), Meta::Float(f64::INFINITY)),
    ]
    .into_iter()
    .collect();
    let w = autosave(
        &store,
        &mut ChangeCache::new(),
        &[Node::bytes(EntryPath::new(["x"]), "result", b"1").with_meta(meta.clone())],
    );
    let text = &w.entries.entries()[0].meta;
    assert_eq!(text, r#"{"fit":{"$float":"NaN"},"max":{"$float":"inf"}}"#);
    serde_json::from_str::<serde_json::Value>(text).expect("strict JSON");
    assert_eq!(Meta::from_json(text).unwrap(), meta);
}

/// A random tree: path → (kind, content, token).
fn tree() -> impl Strategy<Value = BTreeMap<Vec<String>, (String, Vec<u8>)>> {
    let key = prop_oneof![
        Just("a".to_owned()),
        Just("b/c".to_owned()),
        Just("..".to_owned()),
        Just("ü x".to_owned())
    ];
    let path = prop::collection::vec(key, 1..3);
    let size = prop_oneof![
        Just(0usize),
        1..80usize,
        100..20_000usize,
        60_000..200_000usize
    ];
    let content = (size, any::<u64>()).prop_map(|(n, seed)| random_bytes(n, seed));
    let kind = prop_oneof![Just("ndarray".to_owned()), Just("note".to_owned())];
    prop::collection::btree_map(path, (kind, content), 0..8)
}

type Tree = BTreeMap<Vec<String>, (String, Vec<u8>)>;

fn nodes<'a>(t: &'a Tree, tokens: &BTreeMap<Vec<String>, u64>) -> Vec<Node<'a>> {
    t.iter()
        .map(|(p, (kind, bytes))| {
            Node::bytes(EntryPath::new(p.iter().cloned()), kind.clone(), bytes)
                .with_token(Token(tokens.get(p).copied().unwrap_or(0)))
        })
        .collect()
}

fn untokened<'a>(t: &'a Tree) -> Vec<Node<'a>> {
    t.iter()
        .map(|(p, (kind, bytes))| {
            Node::bytes(EntryPath::new(p.iter().cloned()), kind.clone(), bytes)
        })
        .collect()
}

fn read_back(store: &Store, w: &autosave_tree::Written) -> Tree {
    w.entries
        .entries()
        .iter()
        .map(|e| {
            (
                e.path.keys().to_vec(),
                (e.kind.clone(), read_content(store, &e.content).unwrap()),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn reading_a_written_tree_gives_the_tree_back(t in tree()) {
        let (_dir, store) = new_store_with(SMALL_CHUNKS);
        let w = autosave(&store, &mut ChangeCache::new(), &nodes(&t, &BTreeMap::new()));
        prop_assert_eq!(read_back(&store, &w), t);
    }

    #[test]
    fn an_incremental_snapshot_without_tokens_equals_a_cache_free_one(a in tree(), b in tree()) {
        let (_dir, store) = new_store_with(SMALL_CHUNKS);
        let mut cache = ChangeCache::new();
        autosave(&store, &mut cache, &untokened(&a));
        let incremental = autosave(&store, &mut cache, &untokened(&b));
        let fresh = autosave(&store, &mut ChangeCache::new(), &untokened(&b));
        prop_assert_eq!(incremental.manifest, fresh.manifest);
        prop_assert_eq!(read_back(&store, &incremental), b);
    }

    #[test]
    fn an_incremental_snapshot_equals_a_cache_free_one(a in tree(), b in tree()) {
        let (_dir, store) = new_store_with(SMALL_CHUNKS);
        let mut cache = ChangeCache::new();
        // An honest host: a path keeps its token while its content is the same.
        let tokens_a: BTreeMap<_, _> = a.keys().map(|p| (p.clone(), 1)).collect();
        let tokens_b: BTreeMap<_, _> = b.iter().map(|(p, v)| (p.clone(), if a.get(p) == Some(v) { 1 } else { 2 })).collect();
        autosave(&store, &mut cache, &nodes(&a, &tokens_a));
        let incremental = autosave(&store, &mut cache, &nodes(&b, &tokens_b));
        let fresh = autosave(&store, &mut ChangeCache::new(), &nodes(&b, &tokens_b));
        prop_assert_eq!(incremental.manifest, fresh.manifest);
        prop_assert_eq!(read_back(&store, &incremental), b);
        prop_assert!(store.verify(true).unwrap().is_clean());
    }
}

#[test]
fn a_large_entry_is_chunked_and_streamed_back_exactly() {
    let (_dir, store) = new_store_with(SMALL_CHUNKS);
    let bytes = random_bytes(1 << 20, 10);
    let opened = Arc::new(AtomicUsize::new(0));
    let w = autosave(
        &store,
        &mut ChangeCache::new(),
        &[counted(&["big"], bytes.clone(), opened)],
    );
    let content = &w.entries.entries()[0].content;
    assert!(matches!(content, Content::Chunks(c) if c.len() > 8));
    let mut streamed = Vec::new();
    autosave_tree::ContentReader::new(&store, content)
        .read_to_end(&mut streamed)
        .unwrap();
    assert!(streamed == bytes);
}

#[test]
fn an_unchanged_tree_with_tokens_reuses_the_last_manifest_without_rebuilding_it() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let a = random_bytes(50_000, 11);
    let b = random_bytes(60_000, 12);
    let nodes = || {
        vec![
            Node::bytes(EntryPath::new(["a"]), "ndarray", &a).with_token(Token(1)),
            Node::bytes(EntryPath::new(["b"]), "ndarray", &b).with_token(Token(1)),
        ]
    };
    let first = autosave(&store, &mut cache, &nodes());
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(first.manifest);
    let again = write_snapshot(&store, &mut cache, &nodes(), &spec).unwrap();
    assert!(
        Arc::ptr_eq(&first.entries, &again.entries),
        "the manifest was rebuilt"
    );
    assert_eq!(again.snapshot, None);
    assert_eq!(again.report.skipped_token, 2);
    // Changed metadata is a change, even with the same token.
    let with_meta = vec![
        Node::bytes(EntryPath::new(["a"]), "ndarray", &a)
            .with_token(Token(1))
            .with_meta(Meta::from("units: V")),
        Node::bytes(EntryPath::new(["b"]), "ndarray", &b).with_token(Token(1)),
    ];
    let changed = write_snapshot(&store, &mut cache, &with_meta, &spec).unwrap();
    assert!(changed.snapshot.is_some());
}

#[test]
fn a_duplicate_path_is_refused_even_when_every_node_is_unchanged() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let a = random_bytes(50_000, 13);
    let nodes = [
        Node::bytes(EntryPath::new(["a"]), "ndarray", &a).with_token(Token(1)),
        Node::bytes(EntryPath::new(["b"]), "ndarray", &a).with_token(Token(1)),
    ];
    let first = autosave(&store, &mut cache, &nodes);
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(first.manifest);
    let twice = [
        Node::bytes(EntryPath::new(["a"]), "ndarray", &a).with_token(Token(1)),
        Node::bytes(EntryPath::new(["a"]), "ndarray", &a).with_token(Token(1)),
    ];
    assert!(matches!(
        write_snapshot(&store, &mut cache, &twice, &spec),
        Err(autosave_tree::Error::DuplicatePath { .. })
    ));
}

/// Writes `nodes` as an autosave unless they make up `unless`.
fn autosave_unless(
    store: &Store,
    cache: &mut ChangeCache,
    nodes: &[Node<'_>],
    unless: autosave_store::Digest,
) -> autosave_tree::Written {
    let mut spec = SnapshotSpec::new(SnapshotKind::Autosave);
    spec.unless_manifest = Some(unless);
    write_snapshot(store, cache, nodes, &spec).unwrap()
}

#[test]
fn lent_bytes_hashed_to_what_the_cache_remembers_are_taken_for_the_last_manifest() {
    let (_dir, store) = new_store_with(SMALL_CHUNKS);
    let (small, large) = (random_bytes(3000, 1), random_bytes(300 << 10, 2));
    let tree = |kind: &'static str, small: &'static [u8]| {
        vec![
            Node::bytes(EntryPath::new(["small"]), kind, small),
            Node::bytes(EntryPath::new(["large"]), "ndarray", &large),
        ]
    };
    let small: &'static [u8] = small.leak();
    let mut cache = ChangeCache::new();
    let first = autosave(&store, &mut cache, &tree("ndarray", small));
    // Unchanged, every byte hashed: the cache's own manifest, not one built again.
    let same = autosave_unless(&store, &mut cache, &tree("ndarray", small), first.manifest);
    assert!(same.snapshot.is_none());
    assert_eq!(same.report.bytes_hashed, 3000 + (300 << 10));
    assert!(Arc::ptr_eq(&same.entries, &first.entries));
    // Another kind, or other bytes of the same length: a new manifest, equal to a cache-free one.
    let mut edited = small.to_vec();
    edited[1500] ^= 1;
    let edited: &'static [u8] = edited.leak();
    for (kind, bytes) in [("table", small), ("ndarray", edited)] {
        let w = autosave_unless(&store, &mut cache, &tree(kind, bytes), first.manifest);
        assert!(w.snapshot.is_some(), "{kind}");
        let fresh = autosave(&store, &mut ChangeCache::new(), &tree(kind, bytes));
        assert_eq!(w.manifest, fresh.manifest, "{kind}");
        let back = autosave_unless(&store, &mut cache, &tree("ndarray", small), first.manifest);
        assert_eq!(back.manifest, first.manifest, "{kind}");
    }
}
