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
        // float64-like samples (noisy low bytes, a slow ramp in the high ones): the store keeps
        // them as 8 byte planes (codec 3), so the fuzzer starts from a plane blob; the corpus
        // holds headers of the other codecs.
        let original: Vec<u8> = (0..100_000u32)
            .map(|i| {
                let lane = i % 8;
                if lane < 5 {
                    (i.wrapping_mul(2_654_435_761) >> 13) as u8
                } else {
                    (i / 4096 + lane) as u8
                }
            })
            .collect();
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
        let header = std::fs::read(&file).expect("read the blob file");
        assert_eq!(header[5], 3, "the fixture is stored as 8 byte planes");
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
