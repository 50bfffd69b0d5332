//! `snapshot DIR`.

use crate::{Project, age, autosave, run};

#[test]
fn snapshot_creates_the_store_in_the_directory_and_names_the_new_snapshot() {
    let p = Project::new();
    let out = p.run(&["snapshot", "."]).ok().text();
    assert!(out.starts_with("snapshot 1: 3 entries, "), "{out}");
    assert!(p.store().join("FORMAT").is_file());
}

#[test]
fn snapshot_json_reports_what_it_read_and_wrote() {
    let p = Project::new();
    let doc = p.json("snapshot", &["."]);
    let dir = std::fs::canonicalize(p.root()).unwrap();
    assert_eq!(doc["dir"], dir.to_str().unwrap());
    assert_eq!(doc["store"], dir.join(".autosave").to_str().unwrap());
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["manifest"].as_str().unwrap().len(), 32);
    assert_eq!(doc["entries"], 3);
    assert_eq!(doc["hashed"], 3);
    assert_eq!(doc["skipped_stat"], 0);
    assert_eq!(doc["bytes_hashed"], 100_000 + 12 + 8);
    // The signal blob, the manifest and the snapshot record; small files live in the manifest.
    assert_eq!(doc["new_blobs"], 3);
    assert!(doc["bytes_written"].as_u64().unwrap() > 100_000);
    assert!(doc["duration_ns"].as_u64().unwrap() > 0);
    assert_eq!(doc["errors"], serde_json::json!([]));
}

#[test]
fn a_second_snapshot_of_an_unchanged_directory_reads_no_file() {
    let p = Project::new();
    for f in ["notes.txt", "data/table.csv", "data/signal.bin"] {
        age(&p.path(f));
    }
    p.snapshot();
    let doc = p.json("snapshot", &["."]);
    // Nothing changed: nothing is read and nothing is recorded.
    assert_eq!(doc["snapshot"], serde_json::Value::Null);
    assert_eq!(doc["hashed"], 0);
    assert_eq!(doc["skipped_stat"], 3);
    assert_eq!(doc["bytes_hashed"], 0);
    assert_eq!(doc["new_blobs"], 0);
    assert_eq!(doc["bytes_written"], 0);
    assert_eq!(p.snapshot_ids(), vec![1]);
    let human = p.run(&["snapshot", "."]).ok().text();
    assert!(human.starts_with("unchanged: 3 entries, "), "{human}");
    // --always records one anyway: only its record is new, the manifest is the same.
    let doc = p.json("snapshot", &[".", "--always"]);
    assert_eq!(doc["snapshot"], 2);
    assert_eq!(doc["hashed"], 0);
    assert_eq!(doc["new_blobs"], 1);
}

#[test]
fn a_changed_directory_is_recorded_without_always() {
    let p = Project::new();
    p.snapshot();
    std::fs::write(p.path("notes.txt"), "changed").unwrap();
    let doc = p.json("snapshot", &["."]);
    assert_eq!(doc["snapshot"], 2);
    assert_eq!(p.run(&["cat", "2", "notes.txt"]).ok().text(), "changed");
}

#[test]
fn snapshot_puts_the_store_where_store_or_autosave_store_says() {
    let p = Project::new();
    let flag = p.temp().join("by-flag");
    p.run(&["snapshot", ".", "--store", flag.to_str().unwrap()])
        .ok();
    assert!(flag.join("FORMAT").is_file());

    let env = p.temp().join("by-env");
    let mut cmd = p.cmd(&["snapshot", "."]);
    cmd.env("AUTOSAVE_STORE", &env);
    run(cmd).ok();
    assert!(env.join("FORMAT").is_file());
    assert!(!p.store().exists());
}

#[test]
fn snapshot_records_the_label_given_or_else_the_directory() {
    let p = Project::new();
    p.run(&["snapshot", ".", "--label", "before the fit"]).ok();
    p.run(&["snapshot", ".", "--always"]).ok();
    let doc = p.json("snapshots", &[]);
    let dir = std::fs::canonicalize(p.root()).unwrap();
    assert_eq!(doc["snapshots"][0]["label"], dir.to_str().unwrap());
    assert_eq!(doc["snapshots"][1]["label"], "before the fit");
}

#[test]
fn snapshot_of_a_directory_given_from_elsewhere_uses_its_own_store() {
    let p = Project::new();
    run({
        let mut cmd = autosave(p.temp());
        cmd.args(["snapshot", "proj", "-q"]);
        cmd
    })
    .ok();
    assert!(p.store().join("FORMAT").is_file());
}

#[test]
fn snapshot_of_a_missing_directory_is_one_clear_error() {
    let p = Project::empty();
    let run = p.run(&["snapshot", "nowhere"]).expect(1);
    assert!(
        run.stderr.starts_with("error: cannot open nowhere: "),
        "{run:?}"
    );
}

#[cfg(unix)]
#[test]
fn snapshot_skips_what_it_cannot_name_and_exits_3() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    let odd = p.root().join(std::ffi::OsStr::from_bytes(b"odd-\xff-name"));
    std::fs::write(odd, b"x").unwrap();
    let run = p.run(&["snapshot", ".", "--json"]).expect(3);
    assert!(run.stderr.starts_with("warning: skipped odd-"), "{run:?}");
    let doc = run.json();
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["entries"], 3);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"], "the file name is not UTF-8");
}
