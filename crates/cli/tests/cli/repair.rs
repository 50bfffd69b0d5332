//! `repair`.

use crate::Project;

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
