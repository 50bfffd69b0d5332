//! `forget` and `gc`.

use serde_json::json;

use crate::Project;

/// A store with snapshots 1, 2, 3 of a changing signal file.
fn three_snapshots() -> Project {
    let p = Project::with_snapshot();
    for n in 2..=3u8 {
        p.write("data/signal.bin", &crate::noise(50_000, u64::from(n)));
        p.snapshot();
    }
    p
}

#[test]
fn forget_keep_last_deletes_all_but_the_newest_and_leaves_data_for_gc() {
    let p = three_snapshots();
    let blobs_before = p.json("stats", &[])["blobs"].as_u64().unwrap();
    let doc = p.json("forget", &["--keep-last", "1"]);
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["kept"], json!([3]));
    assert_eq!(doc["removed"], json!([2, 1]));
    assert_eq!(p.snapshot_ids(), vec![3]);
    assert_eq!(
        p.json("stats", &[])["blobs"].as_u64().unwrap(),
        blobs_before
    );

    let doc = p.json("gc", &[]);
    assert_eq!(doc["dry_run"], false);
    // Two signals, two manifests, two records.
    assert_eq!(doc["blobs_removed"], 6);
    assert!(doc["bytes_freed"].as_u64().unwrap() > 150_000);
    assert_eq!(doc["blobs_kept"], 3);
    assert_eq!(doc["stray_files_removed"], 0);
    assert_eq!(doc["stray_bytes_freed"], 0);
    p.run(&["check", "--read-data"]).ok();
}

#[test]
fn forget_tells_people_what_it_removed_and_that_gc_frees_the_space() {
    let p = three_snapshots();
    let out = p.run(&["forget", "--keep-last", "2"]).ok().text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "removed 1 snapshot, kept 2");
    assert!(lines[1].starts_with("1  autosave  "), "{out}");
    assert_eq!(lines[2], "their data stays until: autosave gc");
}

#[test]
fn forget_dry_run_deletes_nothing() {
    let p = three_snapshots();
    let doc = p.json("forget", &["--keep-last", "2", "--dry-run"]);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["removed"], json!([1]));
    assert_eq!(p.snapshot_ids(), vec![3, 2, 1]);
    let out = p
        .run(&["forget", "--keep-last", "2", "--dry-run"])
        .ok()
        .text();
    assert!(
        out.starts_with("would remove 1 snapshot, kept 2\n"),
        "{out}"
    );
}

#[test]
fn forget_keep_within_also_keeps_recent_snapshots() {
    let p = three_snapshots();
    let doc = p.json("forget", &["--keep-last", "1", "--keep-within", "1h"]);
    assert_eq!(doc["removed"], json!([]));
    assert_eq!(doc["kept"], json!([3, 2, 1]));
    // A window of no time keeps only the newest.
    let doc = p.json(
        "forget",
        &["--keep-last", "1", "--keep-within", "0s", "--dry-run"],
    );
    assert_eq!(doc["removed"], json!([2, 1]));
}

#[test]
fn forget_by_id_deletes_exactly_those() {
    let p = three_snapshots();
    let doc = p.json("forget", &["1", "3"]);
    assert_eq!(doc["removed"], json!([3, 1]));
    assert_eq!(p.snapshot_ids(), vec![2]);
}

#[test]
fn forget_of_an_unknown_id_deletes_nothing() {
    let p = three_snapshots();
    let run = p.run(&["forget", "1", "9"]).expect(1);
    assert_eq!(run.stderr, "error: no snapshot 9\n");
    assert_eq!(p.snapshot_ids(), vec![3, 2, 1]);
}

#[test]
fn forget_needs_ids_or_a_keep_policy() {
    let p = three_snapshots();
    for args in [
        &["forget"][..],
        &["forget", "--keep-within", "1d"],
        &["forget", "--keep-last", "0"],
        &["forget", "1", "--keep-last", "1"],
        &["forget", "--keep-last", "1", "--keep-within", "soon"],
    ] {
        p.run(args).expect(2);
    }
    assert_eq!(p.snapshot_ids(), vec![3, 2, 1]);
}

#[test]
fn gc_dry_run_reports_and_removes_nothing() {
    let p = three_snapshots();
    p.run(&["forget", "--keep-last", "1", "-q"]).ok();
    let doc = p.json("gc", &["--dry-run"]);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["blobs_removed"], 6);
    let out = p.run(&["gc", "--dry-run"]).ok().text();
    assert!(out.starts_with("would remove 6 blobs ("), "{out}");
    assert_eq!(p.json("gc", &[])["blobs_removed"], 6);
}

#[test]
fn gc_tells_people_what_it_removed() {
    let p = three_snapshots();
    let out = p.run(&["gc"]).ok().text();
    assert_eq!(
        out,
        "removed 0 blobs (0 B) and 0 stray files (0 B); kept 9 blobs\n"
    );
    assert_eq!(p.run(&["gc", "-q"]).ok().text(), "");
}
