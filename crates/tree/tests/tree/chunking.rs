use autosave_store::ChunkParams;
use autosave_tree::{ChangeCache, Content, EntryPath, Node, read_content};

use crate::{autosave, new_store, random_bytes};

const MIB: usize = 1 << 20;

fn chunks(c: &Content) -> usize {
    match c {
        Content::Chunks(v) => v.len(),
        _ => 0,
    }
}

#[test]
fn changing_one_mib_in_the_middle_of_a_large_array_stores_only_a_few_mib() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let mut array = random_bytes(64 * MIB, 1);
    let path = EntryPath::new(["big"]);
    autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", &array)],
    );
    let before = store.stats().unwrap().stored_bytes;

    array[30 * MIB..31 * MIB].copy_from_slice(&random_bytes(MIB, 2));
    let w = autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", &array)],
    );
    let grown = store.stats().unwrap().stored_bytes - before;
    assert!(
        grown <= 6 * MIB as u64,
        "stored {grown} new bytes for a 1 MiB edit"
    );
    let entry = w.entries.get(&path).unwrap();
    assert!(chunks(&entry.content) > 30);
    assert!(read_content(&store, &entry.content).unwrap() == array);
}

#[test]
fn appending_one_mib_to_a_large_array_stores_only_a_few_mib() {
    let (_dir, store) = new_store();
    let mut cache = ChangeCache::new();
    let mut array = random_bytes(64 * MIB, 3);
    let path = EntryPath::new(["big"]);
    autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", &array)],
    );
    let before = store.stats().unwrap().stored_bytes;
    array.extend(random_bytes(MIB, 4));
    let w = autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", &array)],
    );
    let grown = store.stats().unwrap().stored_bytes - before;
    assert!(
        grown <= 6 * MIB as u64,
        "stored {grown} new bytes for a 1 MiB append"
    );
    assert!(read_content(&store, &w.entries.get(&path).unwrap().content).unwrap() == array);
}

#[test]
fn a_stream_and_a_slice_of_the_same_bytes_chunk_identically() {
    let (dir, store) = new_store();
    let bytes = random_bytes(20 * MIB, 5);
    let file = dir.path().join("array.npy");
    std::fs::write(&file, &bytes).unwrap();
    let mut cache = ChangeCache::new();
    let w = autosave(
        &store,
        &mut cache,
        &[
            Node::bytes(EntryPath::new(["slice"]), "ndarray", &bytes),
            Node::file(EntryPath::new(["file"]), "ndarray", &file),
        ],
    );
    let (a, b) = (
        &w.entries.entries()[0].content,
        &w.entries.entries()[1].content,
    );
    assert_eq!(a, b);
    assert!(chunks(a) >= 5);
}

#[test]
fn content_at_the_chunking_threshold_is_one_blob_and_above_it_is_chunked() {
    let (_dir, store) = new_store();
    let threshold = ChunkParams::default().threshold as usize;
    let at = random_bytes(threshold, 6);
    let above = random_bytes(threshold + 1, 7);
    let mut cache = ChangeCache::new();
    let w = autosave(
        &store,
        &mut cache,
        &[
            Node::bytes(EntryPath::new(["at"]), "x", &at),
            Node::bytes(EntryPath::new(["above"]), "x", &above),
        ],
    );
    assert!(matches!(
        w.entries.get(&EntryPath::new(["at"])).unwrap().content,
        Content::Blob { .. }
    ));
    assert!(chunks(&w.entries.get(&EntryPath::new(["above"])).unwrap().content) >= 1);
}
