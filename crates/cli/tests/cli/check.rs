//! `check`, and following its advice.

use serde_json::json;

use crate::Project;

/// The digest of the 100 kB signal file's blob in snapshot 1.
fn signal_digest(p: &Project) -> String {
    let doc = p.json("ls", &["1", "data/signal.bin"]);
    doc["entries"][0]["digests"][0].as_str().unwrap().to_owned()
}

/// Flips the last byte of a blob file, keeping its length.
fn corrupt(p: &Project, digest: &str) {
    let path = p.blob_file(digest);
    let mut bytes = std::fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn check_of_a_sound_store_finds_nothing() {
    let p = Project::with_snapshot();
    let out = p.run(&["check"]).ok().text();
    assert_eq!(out, "checked 1 snapshot, 3 blobs: no damage found\n");
    let doc = p.json("check", &["--read-data"]);
    assert_eq!(doc["read_data"], true);
    assert_eq!(doc["snapshots"], 1);
    assert_eq!(doc["blobs_checked"], 3);
    assert!(doc["bytes_read"].as_u64().unwrap() > 100_000);
    assert_eq!(doc["clean"], true);
    assert_eq!(doc["damaged"], json!([]));
    assert_eq!(doc["damaged_snapshots"], json!([]));
    assert_eq!(doc["next"], json!([]));
}

#[test]
fn check_read_data_finds_a_flipped_byte_and_names_the_damaged_snapshots() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"changed notes\n");
    p.snapshot();
    p.write("data/signal.bin", b"replaced");
    p.snapshot();
    let digest = signal_digest(&p);
    corrupt(&p, &digest);

    // The length is right, so only reading the data finds it.
    p.run(&["check"]).ok();
    let run = p.run(&["check", "--read-data", "--json"]).expect(12);
    assert_eq!(run.stderr, "");
    let doc = run.json();
    assert_eq!(doc["clean"], false);
    assert_eq!(doc["snapshots"], 3);
    let damaged = doc["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["digest"], digest.as_str());
    assert_eq!(damaged[0]["problem"], "corrupt");
    assert!(
        damaged[0]["detail"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert_eq!(damaged[0]["expected_size"], serde_json::Value::Null);
    assert_eq!(damaged[0]["snapshots"], json!([1, 2]));
    assert_eq!(doc["damaged_snapshots"], json!([1, 2]));
    assert_eq!(doc["next"], json!(["autosave repair blobs --read-data"]));

    let out = p.run(&["check", "--read-data"]).expect(12).text();
    assert!(out.starts_with("checked 3 snapshots, "), "{out}");
    assert!(
        out.contains(&format!("damaged blob {}: corrupt (", &digest[..12])),
        "{out}"
    );
    assert!(out.contains("; needed by snapshot 1, 2\n"), "{out}");
    assert!(
        out.ends_with("damaged snapshots: 1, 2\nnext: autosave repair blobs --read-data\n"),
        "{out}"
    );
}

#[test]
fn check_finds_a_missing_blob_file_without_reading_data() {
    let p = Project::with_snapshot();
    std::fs::remove_file(p.blob_file(&signal_digest(&p))).unwrap();
    let doc = p.run(&["check", "--json"]).expect(12).json();
    assert_eq!(doc["damaged"][0]["problem"], "missing");
    assert_eq!(doc["damaged_snapshots"], json!([1]));
}

#[test]
fn check_reports_a_truncated_blob_file_as_the_wrong_size() {
    let p = Project::with_snapshot();
    let path = p.blob_file(&signal_digest(&p));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..1000]).unwrap();
    let doc = p.run(&["check", "--json"]).expect(12).json();
    let damage = &doc["damaged"][0];
    assert_eq!(damage["problem"], "wrong_size");
    assert_eq!(damage["expected_size"], bytes.len());
    assert_eq!(damage["found_size"], 1000);
}

#[test]
fn reading_a_damaged_entry_fails_with_exit_12_and_never_returns_wrong_bytes() {
    let p = Project::with_snapshot();
    corrupt(&p, &signal_digest(&p));
    let run = p.run(&["cat", "1", "data/signal.bin"]).expect(12);
    assert!(run.stdout.len() < 100_000);
    assert!(
        run.stderr
            .starts_with("error: reading data/signal.bin of snapshot 1: "),
        "{run:?}"
    );
    assert!(
        run.stderr
            .ends_with("(the store is damaged: run `autosave check --read-data`)\n"),
        "{run:?}"
    );
    let target = p.temp().join("out");
    p.run(&["restore", "1", "--target", target.to_str().unwrap()])
        .expect(12);
}

/// Runs `check --read-data` and the commands it and they advise (each report's `next`, in
/// order), until `check` finds the store sound; fails after `rounds` checks, or once more than
/// 30 commands were advised (advice that goes round in circles).
fn follow_the_advice(p: &Project, rounds: usize) {
    let mut advised = 0;
    for _ in 0..rounds {
        let run = p.run(&["check", "--read-data", "--json"]);
        if run.code == 0 {
            return;
        }
        let mut next: Vec<String> = serde_json::from_value(run.expect(12).json()["next"].clone())
            .expect("a list of commands");
        while !next.is_empty() {
            let command = next.remove(0);
            advised += 1;
            assert!(
                advised <= 30,
                "the advice goes round in circles, at {command}"
            );
            let mut words: Vec<&str> = command.split(' ').skip(1).collect();
            words.push("--json");
            let run = p.run(&words);
            assert!(run.code == 0 || run.code == 12, "{command}: {run:?}");
            // A command that advises further steps comes before the rest of the list.
            if let Ok(more) = serde_json::from_value::<Vec<String>>(run.json()["next"].clone()) {
                next.splice(0..0, more);
            }
        }
    }
    panic!("the store is not sound after {rounds} rounds of advice");
}

#[test]
fn following_checks_advice_leaves_a_sound_store() {
    let p = Project::with_snapshot();
    p.write("data/signal.bin", b"replaced");
    p.snapshot();
    corrupt(&p, &signal_digest(&p));
    follow_the_advice(&p, 3);
    // Snapshot 1's signal is in no file any more: it was forgotten, and snapshot 2 kept.
    assert_eq!(p.snapshot_ids(), vec![2]);
}

#[test]
fn a_lost_blob_whose_file_still_holds_its_bytes_is_stored_again_and_mends_old_snapshots() {
    let p = Project::with_snapshot();
    p.write("notes.txt", b"changed notes\n");
    p.snapshot();
    let digest = signal_digest(&p);
    std::fs::remove_file(p.blob_file(&digest)).unwrap();

    let doc = p.run(&["check", "--json"]).expect(12).json();
    assert_eq!(doc["damaged_snapshots"], json!([1, 2]));
    assert_eq!(doc["next"], json!(["autosave repair blobs"]));
    let run = p.run(&["repair", "blobs", "--json"]).expect(12);
    let doc = run.json();
    assert_eq!(doc["forgotten"], json!([digest]));
    assert_eq!(doc["kept"], json!([]));
    assert_eq!(doc["damaged_snapshots"], json!([1, 2]));
    assert_eq!(
        doc["next"],
        json!(["autosave snapshot .", "autosave check"])
    );
    // Again: nothing left to forget, and the same way out.
    let text = p.run(&["repair", "blobs"]).expect(12).text();
    assert!(
        text.starts_with(
            "forgot 0 damaged blobs; 1 damaged blob had no index row already\n\
             snapshots that need them: 1, 2\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("next: autosave snapshot .\n      autosave check\n"),
        "{text}"
    );

    // Nothing changed in the files, but the snapshot stores the signal's bytes again (and
    // commits, so that they stay), which mends both older snapshots.
    p.run(&["snapshot", "."]).ok();
    p.run(&["check", "--read-data"]).ok();
    for id in ["1", "2"] {
        let signal = p.run(&["cat", id, "data/signal.bin"]).ok().stdout;
        assert_eq!(signal, crate::noise(100_000, 1), "snapshot {id}");
    }
    let doc = p.json("repair", &["blobs"]);
    assert_eq!(doc["forgotten"], json!([]));
    assert_eq!(doc["next"], json!([]));
}

#[test]
fn gc_refuses_to_empty_the_store_and_says_how_to() {
    let p = Project::with_snapshot();
    p.run(&["forget", "1"]).ok();
    let refused = p.run(&["gc"]).expect(1);
    assert!(
        refused.stderr.contains("no snapshot left")
            && refused.stderr.contains("autosave gc --allow-empty"),
        "{}",
        refused.stderr
    );
    let doc = p.json("gc", &["--allow-empty"]);
    assert_eq!(doc["blobs_kept"], 0);
    assert!(doc["blobs_removed"].as_u64().unwrap() >= 3, "{doc}");
    let objects = p.store().join("objects");
    let left: Vec<_> = std::fs::read_dir(&objects)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(p.json("check", &[])["clean"], true);
}

#[test]
fn checks_advice_repeats_the_store_given() {
    let p = Project::with_snapshot();
    std::fs::remove_file(p.blob_file(&signal_digest(&p))).unwrap();
    let run = p
        .run(&["check", "--store", ".autosave", "--json"])
        .expect(12);
    assert_eq!(
        run.json()["next"],
        json!(["autosave --store .autosave repair blobs"])
    );
}

/// Makes the store's index lose its second snapshot (of changed notes), as it does when its
/// write-ahead log is damaged.
pub(crate) fn lose_second_snapshot(p: &Project) {
    let index = |suffix: &str| p.store().join(format!("index.sqlite{suffix}"));
    // Each command closes the store, so the index is one checkpointed file between commands.
    let before = std::fs::read(index("")).unwrap();
    p.write("notes.txt", b"notes the index will forget\n");
    p.snapshot();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(index(suffix));
    }
    std::fs::write(index(""), before).unwrap();
    assert_eq!(p.snapshot_ids(), [1]);
}

#[test]
fn check_names_snapshots_the_index_lost_and_repair_index_brings_them_back() {
    let p = Project::with_snapshot();
    lose_second_snapshot(&p);

    let doc = p.json("check", &[]);
    assert_eq!(doc["clean"], true);
    assert_eq!(doc["unindexed_records"].as_array().unwrap().len(), 1);
    assert_eq!(doc["next"], json!(["autosave repair index"]));
    let out = p.run(&["check"]).ok().text();
    assert!(
        out.contains("1 snapshot record not in the index") && out.contains("repair index"),
        "{out}"
    );
    // gc refuses rather than delete it.
    let refused = p.run(&["gc"]).expect(1);
    assert!(
        refused.stderr.contains("not in the index")
            && refused.stderr.contains("autosave repair index")
            && refused.stderr.contains("gc --discard-unindexed"),
        "{}",
        refused.stderr
    );

    p.run(&["repair", "index"]).ok();
    assert_eq!(p.snapshot_ids(), [2, 1]);
    let doc = p.json("check", &[]);
    assert_eq!(doc["unindexed_records"], json!([]));
    assert_eq!(doc["next"], json!([]));
    let notes = p.run(&["cat", "2", "notes.txt"]).ok().text();
    assert_eq!(notes, "notes the index will forget\n");
    p.run(&["gc"]).ok();
}

#[test]
fn gc_discard_unindexed_deletes_the_snapshots_the_index_lost() {
    let p = Project::with_snapshot();
    lose_second_snapshot(&p);
    let doc = p.json("gc", &["--discard-unindexed"]);
    assert!(doc["stray_files_removed"].as_u64().unwrap() >= 2, "{doc}");
    assert_eq!(p.json("check", &[])["unindexed_records"], json!([]));
    p.run(&["repair", "index"]).ok();
    assert_eq!(p.snapshot_ids(), [1], "nothing is left to bring back");
}

/// A digest of `show SNAP`'s snapshot (`manifest` or `record`).
fn snapshot_digest(p: &Project, snap: &str, which: &str) -> String {
    p.json("show", &[snap])["snapshot"][which]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_lost_manifest_of_the_newest_snapshot_is_stored_again_by_a_snapshot_of_the_same_tree() {
    let p = Project::with_snapshot();
    let manifest = snapshot_digest(&p, "1", "manifest");
    std::fs::remove_file(p.blob_file(&manifest)).unwrap();
    follow_the_advice(&p, 3);
    // The tree did not change, but its manifest had to be stored again: a new snapshot holds
    // it, and snapshot 1, which names the same manifest, reads back again.
    assert_eq!(p.snapshot_ids(), vec![2, 1]);
    assert!(p.blob_file(&manifest).exists());
    let notes = p.run(&["cat", "1", "notes.txt"]).ok().stdout;
    assert_eq!(notes, b"first notes\n");
}

#[test]
fn a_lost_snapshot_record_leads_to_forgetting_its_snapshot_not_to_a_loop() {
    let p = Project::with_snapshot();
    let signal = signal_digest(&p);
    p.write("data/signal.bin", b"replaced");
    p.snapshot();
    // Snapshot 1's record goes, and with it the signal only snapshot 1 had.
    std::fs::remove_file(p.blob_file(&snapshot_digest(&p, "1", "record"))).unwrap();
    std::fs::remove_file(p.blob_file(&signal)).unwrap();
    let doc = p.run(&["check", "--json"]).expect(12).json();
    let record = doc["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["record"] == true)
        .expect("the record is reported as one");
    assert_eq!(record["problem"], "missing");
    follow_the_advice(&p, 3);
    assert_eq!(p.snapshot_ids(), vec![2]);
}

#[test]
fn a_forgotten_blob_whose_file_comes_back_is_indexed_again_not_forgotten() {
    let p = Project::with_snapshot();
    let signal = signal_digest(&p);
    let path = p.blob_file(&signal);
    let kept = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    p.run(&["repair", "blobs"]).expect(12);
    // The file was only late (a copy of the project still arriving).
    std::fs::write(&path, kept).unwrap();
    let doc = p.run(&["check", "--json"]).expect(12).json();
    assert_eq!(doc["damaged"][0]["problem"], "file_not_in_index");
    assert_eq!(doc["next"], json!(["autosave repair index"]));
    follow_the_advice(&p, 2);
    assert_eq!(p.snapshot_ids(), vec![1]);
    let signal = p.run(&["cat", "1", "data/signal.bin"]).ok().stdout;
    assert_eq!(signal, crate::noise(100_000, 1));
}
