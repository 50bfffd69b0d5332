use autosave_store::ChunkParams;
use autosave_tree::{ChangeCache, Content, EntryPath, Node, read_content};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

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

/// One edit of a large entry between two snapshots.
#[derive(Clone, Debug)]
enum Edit {
    Overwrite { at: usize, len: usize, seed: u64 },
    Insert { at: usize, len: usize, seed: u64 },
    Delete { at: usize, len: usize },
    Append { len: usize, seed: u64 },
    Truncate { keep: usize },
}

impl Edit {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let n = bytes.len();
        match *self {
            Edit::Overwrite { at, len, seed } => {
                let at = at % (n + 1);
                let len = len.min(n - at);
                bytes[at..at + len].copy_from_slice(&random_bytes(len, seed));
            }
            Edit::Insert { at, len, seed } => {
                let at = at % (n + 1);
                bytes.splice(at..at, random_bytes(len, seed));
            }
            Edit::Delete { at, len } => {
                let at = at % (n + 1);
                bytes.drain(at..(at + len).min(n));
            }
            Edit::Append { len, seed } => bytes.extend(random_bytes(len, seed)),
            Edit::Truncate { keep } => bytes.truncate(keep % (n + 1)),
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0..400_000usize;
    let len = prop_oneof![1..64usize, 1..40_000usize];
    prop_oneof![
        4 => (at.clone(), len.clone(), any::<u64>())
            .prop_map(|(at, len, seed)| Edit::Overwrite { at, len, seed }),
        1 => (at.clone(), len.clone(), any::<u64>())
            .prop_map(|(at, len, seed)| Edit::Insert { at, len, seed }),
        1 => (at.clone(), len.clone()).prop_map(|(at, len)| Edit::Delete { at, len }),
        1 => (len, any::<u64>()).prop_map(|(len, seed)| Edit::Append { len, seed }),
        1 => (0..400_000usize).prop_map(|keep| Edit::Truncate { keep }),
    ]
}

/// Content whose chunks end every way FastCDC can end one: by the gear hash (random runs), at
/// the maximum size (runs of zeros) and at the end.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<bool>(), 1..120_000usize, any::<u64>()), 1..5).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(zeros, len, seed)| {
                if zeros {
                    vec![0; len]
                } else {
                    random_bytes(len, seed)
                }
            })
            .collect()
    })
}

/// The manifest digest of `bytes` at `path`, lent and as a file, written after `before` with
/// `cache` (which has seen `before`), must equal a cache-free write's.
fn resynced_equals_fresh(before: &[u8], after: &[u8]) -> Result<(), TestCaseError> {
    let (dir, store) = crate::new_store_with(crate::SMALL_CHUNKS);
    let path = EntryPath::new(["array"]);
    // Lent bytes.
    let mut cache = ChangeCache::new();
    autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", before)],
    );
    let incremental = autosave(
        &store,
        &mut cache,
        &[Node::bytes(path.clone(), "ndarray", after)],
    );
    let fresh = autosave(
        &store,
        &mut ChangeCache::new(),
        &[Node::bytes(path.clone(), "ndarray", after)],
    );
    prop_assert_eq!(
        &incremental.entries.entries()[0].content,
        &fresh.entries.entries()[0].content
    );
    prop_assert_eq!(incremental.manifest, fresh.manifest);
    // A file (streamed with positional reads).
    let file = dir.path().join("array.bin");
    std::fs::write(&file, before).unwrap();
    let mut cache = ChangeCache::new();
    autosave(
        &store,
        &mut cache,
        &[Node::file(path.clone(), "ndarray", &file)],
    );
    std::fs::write(&file, after).unwrap();
    let incremental = autosave(
        &store,
        &mut cache,
        &[Node::file(path.clone(), "ndarray", &file)],
    );
    prop_assert_eq!(incremental.report.hashed, 1, "the changed file was read");
    prop_assert_eq!(
        &incremental.entries.entries()[0].content,
        &fresh.entries.entries()[0].content
    );
    let back = read_content(&store, &incremental.entries.entries()[0].content).unwrap();
    prop_assert!(back == after, "the file read back differs");
    Ok(())
}

/// (offset, length) of each chunk of `bytes` when chunked from scratch.
fn cut_points(bytes: &[u8]) -> Vec<(usize, usize)> {
    let (_dir, store) = crate::new_store_with(crate::SMALL_CHUNKS);
    let w = autosave(
        &store,
        &mut ChangeCache::new(),
        &[Node::bytes(EntryPath::new(["x"]), "x", bytes)],
    );
    let mut at = 0;
    match &w.entries.entries()[0].content {
        Content::Chunks(chunks) => chunks
            .iter()
            .map(|c| {
                let cut = (at, c.len as usize);
                at += c.len as usize;
                cut
            })
            .collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Re-chunking against the previous chunk list gives exactly the chunks of chunking from
    /// scratch, whatever the edits.
    #[test]
    fn rechunking_after_edits_equals_chunking_from_scratch(
        before in content(),
        edits in prop::collection::vec(edit(), 0..4),
    ) {
        let mut after = before.clone();
        for e in &edits {
            e.apply(&mut after);
        }
        resynced_equals_fresh(&before, &after)?;
    }

    /// Edits placed where cut points are decided: the byte just after a chunk (it completes the
    /// gear hash that cut it), and an end close enough behind a chunk that normalised chunking
    /// switches masks.
    #[test]
    fn rechunking_after_edits_at_cut_points_equals_chunking_from_scratch(
        before in content(),
        at in any::<prop::sample::Index>(),
        flip in any::<bool>(),
        extra in 0..20_000usize,
    ) {
        let cuts = cut_points(&before);
        prop_assume!(cuts.len() >= 2);
        let (start, len) = cuts[at.index(cuts.len() - 1)];
        let mut after = before.clone();
        if flip {
            after[start + len] ^= 0x5a;
        } else {
            after.truncate((start + len + 1 + extra).min(before.len()));
        }
        resynced_equals_fresh(&before, &after)?;
    }
}

/// A reader that hands out its bytes in the given read sizes, in turn.
struct ShortReads<'a> {
    bytes: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl std::io::Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = size.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Streamed content (read in blocks of a few largest chunks, whatever sizes the reader
    /// returns) is cut exactly as the same bytes lent whole.
    #[test]
    fn a_stream_read_in_any_sizes_chunks_as_the_slice_does(
        len in 0..1_200_000usize,
        seed in any::<u64>(),
        sizes in prop::collection::vec(1..200_000usize, 1..5),
    ) {
        let (_dir, store) = crate::new_store_with(crate::SMALL_CHUNKS);
        // Runs of repeated bytes beside random ones, so that some chunks end at the maximum size.
        let mut bytes = random_bytes(len, seed);
        for run in bytes.chunks_mut(300_000).step_by(2) {
            let fill = run[0];
            run.fill(fill);
        }
        let lent = Node::bytes(EntryPath::new(["lent"]), "x", &bytes);
        let reader = Node::reader(
            EntryPath::new(["read"]),
            "x",
            Box::new(|| -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
                Ok(Box::new(ShortReads { bytes: &bytes, sizes: sizes.clone(), turn: 0 }))
            }),
        );
        let w = autosave(&store, &mut ChangeCache::new(), &[lent, reader]);
        let (a, b) = (&w.entries.entries()[0].content, &w.entries.entries()[1].content);
        prop_assert_eq!(a, b);
        prop_assert!(read_content(&store, b).map_err(|e| TestCaseError::fail(e.to_string()))? == bytes);
    }
}
