//! `init`.

use crate::Project;

#[test]
fn init_creates_a_store_and_says_where() {
    let p = Project::empty();
    let out = p.run(&["init"]).ok().text();
    assert!(
        out.starts_with("created store .autosave (xxh3-128, id "),
        "{out}"
    );
    assert!(p.store().join("FORMAT").is_file());
}

#[test]
fn init_json_gives_the_store_its_id_hash_and_format() {
    let p = Project::empty();
    let doc = p.json("init", &[]);
    assert_eq!(doc["store"], ".autosave");
    let id = doc["store_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["hash"], "xxh3-128");
    assert_eq!(doc["inline_limit"], 16384);
    let format = std::fs::read_to_string(p.store().join("FORMAT")).unwrap();
    assert!(format.contains(&format!("store-id {id}")), "{format}");
}

#[test]
fn init_strong_keys_blobs_by_blake3() {
    let p = Project::empty();
    assert_eq!(p.json("init", &["--strong"])["hash"], "blake3-256");
}

#[test]
fn init_can_write_the_format_older_builds_read() {
    let p = Project::empty();
    assert_eq!(
        p.json("init", &["--format-version", "1"])["format_version"],
        1
    );
    let format = std::fs::read_to_string(p.store().join("FORMAT")).unwrap();
    assert!(format.contains("\nversion 1\n"), "{format}");
    let run = p.run(&["init", "--format-version", "3"]).expect(2);
    assert!(run.stderr.contains("3 is not in 1..=2"), "{}", run.stderr);
}

#[test]
fn init_refuses_a_path_that_already_holds_a_store() {
    let p = Project::empty();
    p.run(&["init"]).ok();
    let run = p.run(&["init"]).expect(1);
    assert_eq!(run.stderr, "error: a store already exists at .autosave\n");
}

#[test]
fn init_with_store_creates_the_store_there() {
    let p = Project::empty();
    let elsewhere = p.temp().join("elsewhere");
    p.run(&["init", "--store", elsewhere.to_str().unwrap(), "-q"])
        .ok();
    assert!(elsewhere.join("FORMAT").is_file());
    assert!(!p.store().exists());
}
