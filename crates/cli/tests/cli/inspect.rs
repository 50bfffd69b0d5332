//! `snapshots`, `show`, `ls`, `cat`, `stats`.

use serde_json::json;

use crate::{Project, noise};

#[test]
fn snapshots_lists_newest_first_in_aligned_columns() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"second notes\n");
    p.snapshot();
    let out = p.run(&["snapshots"]).ok().text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  KIND      CREATED"), "{out}");
    assert!(lines[1].starts_with(" 2  autosave  "), "{out}");
    assert!(lines[2].starts_with(" 1  autosave  "), "{out}");
    let label_at = lines[0].find("LABEL").unwrap();
    assert!(lines[1][label_at..].starts_with('/'), "{out}");
}

#[test]
fn snapshots_json_gives_each_record_field_by_field() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"second notes\n");
    p.snapshot();
    let doc = p.json("snapshots", &[]);
    assert_eq!(doc["store"], ".autosave");
    let list = doc["snapshots"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let (newest, oldest) = (&list[0], &list[1]);
    assert_eq!(newest["id"], 2);
    assert_eq!(newest["kind"], "autosave");
    assert_eq!(newest["parent"], 1);
    assert_eq!(oldest["parent"], serde_json::Value::Null);
    assert_eq!(newest["meta"], "");
    assert_eq!(newest["manifest"].as_str().unwrap().len(), 32);
    assert_eq!(newest["record"].as_str().unwrap().len(), 32);
    let now = autosave_now_ns();
    let created = newest["created_ns"].as_i64().unwrap();
    assert!(
        created <= now && created > now - 60_000_000_000,
        "{created} vs {now}"
    );
    assert!(oldest["created_ns"].as_i64().unwrap() <= created);
}

fn autosave_now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_nanos()).unwrap()
}

#[test]
fn snapshots_of_an_empty_store_is_an_empty_list() {
    let p = Project::empty();
    p.run(&["init", "-q"]).ok();
    let run = p.run(&["snapshots"]).ok();
    assert_eq!(run.text(), "");
    assert_eq!(run.stderr, "no snapshots yet\n");
    assert_eq!(p.json("snapshots", &[])["snapshots"], json!([]));
}

#[test]
fn show_summarises_a_snapshot_for_people() {
    let p = Project::with_snapshot();
    let out = p.run(&["show", "latest"]).ok().text();
    assert!(out.contains("snapshot  1\n"), "{out}");
    assert!(out.contains("kind      autosave\n"), "{out}");
    assert!(out.contains("parent    -\n"), "{out}");
    assert!(out.contains("entries   3 (file: 3)\n"), "{out}");
    assert!(out.contains("size      97.7 KiB\n"), "{out}");
}

#[test]
fn show_json_gives_the_record_and_entry_counts() {
    let p = Project::with_snapshot();
    let doc = p.json("show", &["1"]);
    assert_eq!(doc["snapshot"]["id"], 1);
    assert_eq!(doc["snapshot"]["kind"], "autosave");
    assert_eq!(doc["entries"], 3);
    assert_eq!(doc["kinds"], json!({"file": 3}));
    assert_eq!(doc["size"], 100_000 + 12 + 8);
    assert_eq!(doc["blobs"], 1);
}

#[test]
fn ls_lists_every_entry_with_mode_size_and_path() {
    let p = Project::with_snapshot();
    let out = p.run(&["ls", "latest"]).ok().text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("file  0644  97.7 KiB  "), "{out}");
    assert!(lines[0].ends_with("  data/signal.bin"), "{out}");
    assert!(lines[1].ends_with("  data/table.csv"), "{out}");
    assert!(lines[2].ends_with("  notes.txt"), "{out}");
}

#[test]
fn ls_json_gives_each_entry_field_by_field() {
    let p = Project::with_snapshot();
    let doc = p.json("ls", &["1", "data"]);
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["path"], "data");
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let signal = &entries[0];
    assert_eq!(signal["path"], "data/signal.bin");
    assert_eq!(signal["keys"], json!(["data", "signal.bin"]));
    assert_eq!(signal["kind"], "file");
    assert_eq!(signal["size"], 100_000);
    assert_eq!(signal["meta"]["mode"], 0o644);
    assert!(signal["meta"]["mtime_ns"].as_i64().unwrap() > 0);
    assert_eq!(signal["storage"], "blob");
    assert_eq!(signal["digests"].as_array().unwrap().len(), 1);
    let table = &entries[1];
    assert_eq!(table["storage"], "inline");
    assert_eq!(table["digests"], json!([]));
}

#[test]
fn ls_of_a_path_not_in_the_snapshot_is_an_error() {
    let p = Project::with_snapshot();
    let run = p.run(&["ls", "1", "nothing/here"]).expect(1);
    assert_eq!(run.stderr, "error: no entry nothing/here in snapshot 1\n");
}

#[test]
fn cat_writes_the_exact_bytes_of_an_entry() {
    let p = Project::with_snapshot();
    let run = p.run(&["cat", "latest", "data/signal.bin"]).ok();
    assert_eq!(run.stdout, noise(100_000, 1));
    assert_eq!(
        p.run(&["cat", "1", "notes.txt"]).ok().text(),
        "first notes\n"
    );
}

#[test]
fn cat_json_gives_the_entry_and_its_content_in_base64() {
    let p = Project::with_snapshot();
    let doc = p.json("cat", &["1", "data/table.csv"]);
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["entry"]["path"], "data/table.csv");
    assert_eq!(doc["entry"]["size"], 8);
    assert_eq!(doc["content_base64"], "YSxiCjEsMgo=");
}

#[test]
fn cat_takes_escaped_paths_for_keys_with_backslashes() {
    let p = Project::new();
    p.write(r"odd\name", b"escaped");
    p.snapshot();
    let listed = p.json("ls", &["1", r"odd\\name"]);
    assert_eq!(listed["entries"][0]["keys"], json!([r"odd\name"]));
    let run = p.run(&["cat", "1", r"odd\\name"]).ok();
    assert_eq!(run.text(), "escaped");
}

#[test]
fn cat_of_a_path_not_in_the_snapshot_is_an_error() {
    let p = Project::with_snapshot();
    let run = p.run(&["cat", "1", "data"]).expect(1);
    assert_eq!(run.stderr, "error: no entry data in snapshot 1\n");
}

#[test]
fn stats_shows_the_store_sizes_for_people() {
    let p = Project::with_snapshot();
    let out = p.run(&["stats"]).ok().text();
    assert!(
        out.starts_with("store         .autosave (xxh3-128, format 2)\n"),
        "{out}"
    );
    assert!(out.contains("snapshots     1\n"), "{out}");
    assert!(out.contains("dedup x"), "{out}");
}

#[test]
fn stats_json_counts_snapshots_blobs_and_bytes() {
    let p = Project::with_snapshot();
    p.snapshot();
    let doc = p.json("stats", &[]);
    assert_eq!(doc["store"], ".autosave");
    assert_eq!(doc["store_id"].as_str().unwrap().len(), 32);
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["hash"], "xxh3-128");
    assert_eq!(doc["snapshots"], 2);
    // The signal, one manifest (the same twice) and two records.
    assert_eq!(doc["blobs"], 4);
    assert_eq!(doc["inline_blobs"], 0);
    let (logical, unique, stored) = (
        doc["logical_bytes"].as_u64().unwrap(),
        doc["unique_bytes"].as_u64().unwrap(),
        doc["stored_bytes"].as_u64().unwrap(),
    );
    assert!(
        logical > 200_000 && unique > 100_000 && unique < 110_000,
        "{doc}"
    );
    assert!(stored > 100_000, "{doc}");
    assert!(doc["dedup_ratio"].as_f64().unwrap() > 1.9);
    let compression = doc["compression_ratio"].as_f64().unwrap();
    assert!(
        (compression - unique as f64 / stored as f64).abs() < 1e-9,
        "{doc}"
    );
}

#[test]
fn stats_of_one_snapshot_counts_its_entries_and_blobs() {
    let p = Project::with_snapshot();
    let doc = p.json("stats", &["latest"]);
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["entries"], 3);
    assert_eq!(doc["kinds"], json!({"file": 3}));
    assert_eq!(doc["logical_bytes"], 100_020);
    assert_eq!(doc["inline_bytes"], 20);
    assert_eq!(doc["blobs"], 1);
    assert_eq!(doc["blob_bytes"], 100_000);
    let out = p.run(&["stats", "1"]).ok().text();
    assert!(out.contains("blobs         1 (97.7 KiB)\n"), "{out}");
}

#[test]
fn an_unknown_snapshot_id_is_one_clear_error() {
    let p = Project::with_snapshot();
    for args in [
        &["show", "99"][..],
        &["ls", "99"],
        &["cat", "99", "notes.txt"],
    ] {
        let run = p.run(args).expect(1);
        assert_eq!(run.stderr, "error: no snapshot 99\n");
    }
}

#[test]
fn latest_on_an_empty_store_is_one_clear_error() {
    let p = Project::empty();
    p.run(&["init", "-q"]).ok();
    let run = p.run(&["show", "latest"]).expect(1);
    assert_eq!(run.stderr, "error: the store has no snapshots yet\n");
}
