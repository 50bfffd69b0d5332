//! `repair`.

use crate::{Project, noise};

#[test]
fn repair_index_rebuilds_a_deleted_index_and_everything_reads_back() {
    let p = Project::with_snapshot();
    p.write(
        "notes.txt",
        b"second version of the notes, long enough to be a blob of its own\n",
    );
    p.run(&["snapshot", "."]).ok();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(p.store().join(format!("index.sqlite{suffix}")));
    }
    p.run(&["snapshots"]).expect(12);

    // The 66-byte notes lived only inside the lost index: repair names that snapshot (exit 12).
    let doc = p.run(&["--json", "repair", "index"]).expect(12).json();
    assert_eq!(doc["damaged_snapshots"], serde_json::json!([2]));
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["command"], "repair");
    assert_eq!(doc["snapshots"], 2);
    assert_eq!(doc["lost_snapshots"], 0);
    assert!(doc["blob_files"].as_u64().unwrap() >= 5);
    let listed = p.run(&["--json", "snapshots"]).ok().json();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2);
    // The large file is intact; small blobs that lived only in the lost index are named.
    let cat = p.run(&["cat", "latest", "data/signal.bin"]).ok();
    assert_eq!(
        cat.stdout,
        std::fs::read(p.path("data/signal.bin")).unwrap()
    );

    // The notes are still in their file: a snapshot of the unchanged tree stores them again,
    // and commits although the tree is the newest snapshot's, which mends snapshot 2.
    p.run(&["snapshot", "."]).ok();
    p.run(&["check", "--read-data"]).ok();
    let notes = p.run(&["cat", "2", "notes.txt"]).ok().stdout;
    assert_eq!(notes, std::fs::read(p.path("notes.txt")).unwrap());
}

#[test]
fn repair_index_never_brings_back_a_forgotten_snapshot() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"the notes that are kept\n");
    p.run(&["snapshot", "."]).ok();
    p.run(&["forget", "1"]).ok();
    for _ in 0..2 {
        let doc = p.run(&["--json", "repair", "index"]).ok().json();
        assert_eq!(doc["snapshots"], 1);
        assert_eq!(p.snapshot_ids().len(), 1);
        let notes = p.run(&["cat", "latest", "notes.txt"]).ok().stdout;
        assert_eq!(notes, b"the notes that are kept\n");
    }
    p.run(&["gc"]).ok();
    p.run(&["repair", "index"]).ok();
    assert_eq!(p.snapshot_ids().len(), 1);
}

#[test]
fn repair_index_of_a_healthy_store_changes_nothing_readable() {
    let p = Project::with_snapshot();
    let before = p.run(&["cat", "latest", "notes.txt"]).ok().stdout;
    let run = p.run(&["repair", "index"]).ok();
    assert!(
        run.text()
            .starts_with("rebuilt the index: 1 snapshot recovered, 0 lost"),
        "{run:?}"
    );
    assert_eq!(p.run(&["cat", "latest", "notes.txt"]).ok().stdout, before);
    p.run(&["check", "--read-data"]).ok();
}

/// Issue #7, suite 8: an index replaced by garbage and one damaged blob file. `repair index`
/// recovers every snapshot, names the one that needs the damaged blob, and every other entry of
/// every snapshot reads back byte for byte.
#[test]
fn repair_index_replaces_a_garbage_index_and_every_intact_snapshot_reads_back() {
    let p = Project::new();
    // Every file is either inline in its manifest (up to 64 bytes) or a blob file (over 16 KiB),
    // so nothing lives only in the index that is about to be destroyed.
    let versions: [&[(&str, Vec<u8>)]; 3] = [
        &[("data/other.bin", noise(30_000, 7))],
        &[
            ("data/signal.bin", noise(100_000, 8)),
            ("data/other.bin", noise(30_000, 9)),
        ],
        &[("data/other.bin", noise(40_000, 10))],
    ];
    let mut expected = Vec::new();
    for files in versions {
        for (rel, bytes) in files {
            p.write(rel, bytes);
        }
        let id = p.snapshot();
        let read = |rel: &str| std::fs::read(p.path(rel)).unwrap();
        let names = [
            "notes.txt",
            "data/table.csv",
            "data/signal.bin",
            "data/other.bin",
        ];
        expected.push((id, names.map(|n| (n, read(n)))));
    }
    let second = expected[1].0.to_string();
    let damaged = p.json("ls", &[&second, "data/other.bin"])["entries"][0]["digests"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = p.blob_file(&damaged);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();
    std::fs::write(
        p.store().join("index.sqlite"),
        b"not a database".repeat(500),
    )
    .unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(p.store().join(format!("index.sqlite{suffix}")));
    }

    let doc = p.run(&["--json", "repair", "index"]).expect(12).json();
    assert_eq!(doc["snapshots"], 3, "{doc}");
    assert_eq!(doc["lost_snapshots"], 0, "{doc}");
    assert_eq!(doc["damaged_files"], 1, "{doc}");
    assert_eq!(
        doc["damaged_snapshots"],
        serde_json::json!([expected[1].0]),
        "{doc}"
    );
    for (id, files) in &expected {
        for (name, content) in files {
            let run = p.cmd(&["cat", &id.to_string(), name]).output().unwrap();
            if *id == expected[1].0 && *name == "data/other.bin" {
                assert_eq!(run.status.code(), Some(12), "the damaged blob is reported");
                assert!(
                    run.stdout.is_empty(),
                    "no bytes of a damaged blob are written"
                );
            } else {
                assert!(run.status.success(), "snapshot {id} {name}: {run:?}");
                assert!(
                    run.stdout == *content,
                    "snapshot {id} {name} reads back byte for byte"
                );
            }
        }
    }
}

/// A program that has the store open (here this test, through the library) keeps `repair index`
/// away: the index it holds open is not replaced under it. Once it closes, the repair runs.
#[test]
fn repair_index_refuses_while_another_program_has_the_store_open() {
    let p = Project::with_snapshot();
    let root = camino::Utf8PathBuf::try_from(p.store()).unwrap();
    let open = autosave::store::Store::open(&root).unwrap();
    let run = p.run(&["repair", "index"]).expect(11);
    assert!(run.stderr.contains("open in another program"), "{run:?}");
    assert_eq!(open.snapshots().unwrap().len(), 1);
    drop(open);
    p.run(&["repair", "index"]).ok();
}

#[test]
fn a_snapshot_whose_record_is_damaged_makes_repair_exit_12_not_0() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"second notes\n");
    p.run(&["snapshot", "."]).ok();
    let record = p.json("show", &["latest"])["snapshot"]["record"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = p.blob_file(&record);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    // The rebuild cannot read the record, so the snapshot is gone without being counted lost;
    // the damaged file is what says so.
    let doc = p.run(&["--json", "repair", "index"]).expect(12).json();
    assert_eq!(
        (doc["snapshots"].as_u64(), doc["damaged_files"].as_u64()),
        (Some(1), Some(1)),
        "{doc}"
    );
}
