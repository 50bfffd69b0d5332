//! `diff`.

use serde_json::json;

use crate::Project;

/// Snapshot 1 of [`Project::new`], then snapshot 2 with one file grown, one removed, one added.
fn two_snapshots() -> Project {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"first notes\nand a second line\n");
    std::fs::remove_file(p.path("data/table.csv")).unwrap();
    p.write("fit/result.json", b"{\"chi2\": 1.5}");
    p.snapshot();
    p
}

#[test]
fn diff_compares_the_previous_snapshot_with_the_latest_by_default() {
    let p = two_snapshots();
    let out = p.run(&["diff"]).ok().text();
    assert_eq!(
        out,
        "removed    -8 B  data/table.csv\n\
         added     +13 B  fit/result.json\n\
         modified  +18 B  notes.txt\n\
         snapshot 1 -> 2: 1 added, 1 removed, 1 modified, +23 B\n"
            .replace("         ", "")
    );
}

#[test]
fn diff_json_gives_each_change_with_sizes_and_deltas() {
    let p = two_snapshots();
    let doc = p.json("diff", &[]);
    assert_eq!(doc["a"], 1);
    assert_eq!(doc["b"], 2);
    assert_eq!(doc["added"], 1);
    assert_eq!(doc["removed"], 1);
    assert_eq!(doc["modified"], 1);
    assert_eq!(doc["delta_bytes"], 23);
    assert_eq!(
        doc["changes"],
        json!([
            {"change": "removed", "path": "data/table.csv", "old_size": 8, "new_size": null,
             "delta_bytes": -8, "content": true, "meta": false},
            {"change": "added", "path": "fit/result.json", "old_size": null, "new_size": 13,
             "delta_bytes": 13, "content": true, "meta": false},
            {"change": "modified", "path": "notes.txt", "old_size": 12, "new_size": 30,
             "delta_bytes": 18, "content": true, "meta": true},
        ])
    );
}

#[test]
fn diff_takes_the_snapshots_to_compare_in_either_order() {
    let p = two_snapshots();
    let doc = p.json("diff", &["2", "1"]);
    assert_eq!((doc["a"].as_u64(), doc["b"].as_u64()), (Some(2), Some(1)));
    assert_eq!(doc["delta_bytes"], -23);
    assert_eq!(doc["changes"][0]["change"], "added");
    assert_eq!(doc["changes"][0]["path"], "data/table.csv");
    // One snapshot given: compared with the latest.
    let doc = p.json("diff", &["1"]);
    assert_eq!((doc["a"].as_u64(), doc["b"].as_u64()), (Some(1), Some(2)));
}

#[test]
fn diff_of_a_snapshot_with_itself_is_empty() {
    let p = two_snapshots();
    let doc = p.json("diff", &["2", "latest"]);
    assert_eq!(doc["changes"], json!([]));
    assert_eq!(doc["delta_bytes"], 0);
}

#[test]
fn diff_without_two_snapshots_says_so() {
    let p = Project::with_snapshot();
    let run = p.run(&["diff"]).expect(1);
    assert_eq!(
        run.stderr,
        "error: diff needs two snapshots and the store has 1\n"
    );
}
