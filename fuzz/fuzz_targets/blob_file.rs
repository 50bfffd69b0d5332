//! Replacing a committed blob file with arbitrary bytes: a read returns the exact original bytes
//! or a typed error, never other bytes, never a panic.
#![no_main]

use std::sync::OnceLock;

use autosave_store::{NewSnapshot, SnapshotKind, Store};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    original: Vec<u8>,
    file: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = camino::Utf8Path::from_path(dir.path())
            .expect("UTF-8")
            .join(".autosave");
        let store = Store::open_or_create(&root).expect("store");
        let original: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let batch = store.batch().expect("batch");
        let digest = batch.put(&original).expect("put").digest;
        batch
            .commit(NewSnapshot::new(SnapshotKind::Autosave, digest))
            .expect("commit");
        let hex = digest.to_string();
        let file = root
            .join("objects")
            .join(&hex[..2])
            .join(&hex)
            .into_std_path_buf();
        Fixture {
            _dir: dir,
            store,
            original,
            file,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    #[expect(
        clippy::disallowed_methods,
        reason = "the fuzzer damages the blob file on purpose"
    )]
    std::fs::write(&f.file, data).expect("write");
    let digest = f.store.digest_of(&f.original);
    if let Ok(Some(bytes)) = f.store.get(&digest) {
        assert!(bytes == f.original, "wrong bytes returned");
    }
});
