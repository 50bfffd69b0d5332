use autosave_tree::{Chunk, Content, EntryPath, Error, Manifest, ManifestEntry};
use proptest::prelude::*;

fn entry(keys: &[&str], content: Content) -> ManifestEntry {
    ManifestEntry {
        path: EntryPath::new(keys.iter().copied()),
        kind: "ndarray".into(),
        meta: r#"{"dtype":"<f8"}"#.into(),
        content,
    }
}

fn digest(n: u8) -> autosave_store::Digest {
    autosave_store::HashAlgo::Xxh3_128.hash(&[n])
}

fn sample() -> Manifest {
    Manifest::new(vec![
        entry(&["b", "x/y"], Content::Inline(b"tiny".to_vec())),
        entry(
            &["a"],
            Content::Blob {
                digest: digest(1),
                len: 1000,
            },
        ),
        entry(
            &["a", ".."],
            Content::Chunks(vec![
                Chunk {
                    digest: digest(2),
                    len: 10,
                },
                Chunk {
                    digest: digest(3),
                    len: 20,
                },
            ]),
        ),
        entry(&["ünï cødé", ""], Content::Inline(Vec::new())),
    ])
    .unwrap()
}

#[test]
fn a_manifest_round_trips_through_its_bytes() {
    let m = sample();
    assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    assert_eq!(m.total_len(), 4 + 1000 + 30);
    assert_eq!(m.blobs().len(), 3);
}

#[test]
fn equal_entries_in_any_order_give_byte_identical_manifests() {
    let mut entries = sample().into_entries();
    let forward = Manifest::new(entries.clone()).unwrap().encode();
    entries.reverse();
    assert_eq!(Manifest::new(entries).unwrap().encode(), forward);
}

#[test]
fn two_entries_with_one_path_are_refused() {
    let e = entry(&["a"], Content::Inline(Vec::new()));
    assert!(matches!(
        Manifest::new(vec![e.clone(), e]),
        Err(Error::DuplicatePath { .. })
    ));
}

#[test]
fn a_parent_sorts_before_its_children() {
    let m = sample();
    let paths: Vec<String> = m.entries().iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths[0], "a");
    assert_eq!(paths[1], "a/..");
}

#[test]
fn damaged_envelopes_are_typed_errors() {
    let bytes = sample().encode();
    for bad in [
        &b""[..],
        b"ASMF",
        b"XXXX\x01",
        b"ASMF\x02",
        &bytes[..bytes.len() - 1],
    ] {
        assert!(
            matches!(Manifest::decode(bad), Err(Error::BadManifest { .. })),
            "{bad:?}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Manifest::decode(&trailing),
        Err(Error::BadManifest { .. })
    ));
}

#[test]
fn entries_out_of_order_are_refused_on_decode() {
    // Swap the first two entries in the encoding by re-encoding an unsorted list by hand.
    let entries = sample().into_entries();
    let mut wrong = vec![entries[1].clone(), entries[0].clone()];
    wrong.extend_from_slice(&entries[2..]);
    let mut bytes = b"ASMF\x01".to_vec();
    bytes.extend(postcard::to_stdvec(&wrong).unwrap());
    assert!(matches!(
        Manifest::decode(&bytes),
        Err(Error::BadManifest { .. })
    ));
}

#[test]
fn entry_paths_parse_back_from_text() {
    for keys in [
        vec![],
        vec![""],
        vec!["a/b", "c\\d", ""],
        vec!["..", ".", " "],
    ] {
        let p = EntryPath::new(keys.iter().copied());
        assert_eq!(p.to_string().parse::<EntryPath>().unwrap(), p, "{keys:?}");
    }
    for bad in [r"a\", "a//b", "a/", r"\x", r"a\e"] {
        assert!(bad.parse::<EntryPath>().is_err(), "{bad:?}");
    }
    assert_eq!(EntryPath::new([""]).to_string(), r"\e");
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::decode(&bytes);
        let mut framed = b"ASMF\x01".to_vec();
        framed.extend(bytes);
        let _ = Manifest::decode(&framed);
    }

    #[test]
    fn mutating_a_valid_manifest_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = sample().encode();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(m) = Manifest::decode(&bytes) {
            // Whatever decodes is a valid manifest: sorted, unique, re-encodes identically.
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        }
    }
}
