//! `watch`, run as a child process and stopped with Ctrl-C.

use std::process::{Child, Stdio};

use serde_json::Value;

use crate::{Project, catches_sigint, interrupt, noise, wait_for};

fn start(p: &Project, args: &[&str]) -> Child {
    let mut all = vec!["watch", ".", "--poll-interval", "0.1", "--idle", "0.2"];
    all.extend_from_slice(args);
    p.cmd(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends Ctrl-C and returns the exit code and stdout.
fn stop(child: Child) -> (Option<i32>, String) {
    let (code, out, _) = stop_with_stderr(child);
    (code, out)
}

/// Sends Ctrl-C and returns the exit code, stdout and stderr.
fn stop_with_stderr(child: Child) -> (Option<i32>, String, String) {
    wait_for("watch to catch SIGINT", || catches_sigint(child.id()));
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    let text = |bytes| String::from_utf8(bytes).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

fn wait_for_snapshots(p: &Project, n: usize) {
    wait_for("a snapshot to appear", || {
        p.store().join("FORMAT").exists() && p.snapshot_ids().len() >= n
    });
}

#[test]
fn watch_snapshots_at_start_and_on_ctrl_c_takes_a_final_snapshot_and_exits_0() {
    let p = Project::new();
    let child = start(&p, &[]);
    wait_for_snapshots(&p, 1);
    p.write("notes.txt", b"edited while watching\n");
    let (code, out) = stop(child);
    assert_eq!(code, Some(0), "{out}");
    let ids = p.snapshot_ids();
    assert_eq!(ids, vec![2, 1]);
    let final_notes = p.run(&["cat", "latest", "notes.txt"]).ok().text();
    assert_eq!(final_notes, "edited while watching\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("snapshot 1: 3 entries"), "{out}");
    assert!(lines[1].starts_with("snapshot 2: 3 entries"), "{out}");
}

#[test]
fn watch_json_prints_one_document_listing_the_snapshots_it_took() {
    let p = Project::new();
    let child = start(&p, &["--json"]);
    wait_for_snapshots(&p, 1);
    let (code, out) = stop(child);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["command"], "watch");
    let dir = std::fs::canonicalize(p.root()).unwrap();
    assert_eq!(doc["dir"], dir.to_str().unwrap());
    assert_eq!(doc["store"], dir.join(".autosave").to_str().unwrap());
    // Nothing changed after the first snapshot, so the final one was not needed.
    let snapshots = doc["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["snapshot"], 1);
    assert_eq!(snapshots[0]["entries"], 3);
    assert_eq!(doc["failures"], serde_json::json!([]));
}

#[test]
fn watch_of_a_directory_equal_to_its_latest_snapshot_takes_none_at_start() {
    let p = Project::with_snapshot();
    let child = start(&p, &[]);
    wait_for("watch to start", || catches_sigint(child.id()));
    // Give it time to look at the directory and decide.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, out) = stop(child);
    assert_eq!(code, Some(0));
    assert_eq!(out, "");
    assert_eq!(p.snapshot_ids(), vec![1]);
}

#[test]
fn watch_saves_the_tree_again_once_its_snapshot_was_forgotten() {
    let p = Project::new();
    let child = start(&p, &[]);
    wait_for_snapshots(&p, 1);
    // The tree stays as snapshot 1 holds it, but snapshot 1 goes: the tree is no longer saved.
    p.run(&["forget", "1"]).ok();
    let (code, out) = stop(child);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        p.snapshot_ids(),
        vec![2],
        "the final snapshot saved it again: {out}"
    );
    p.run(&["check", "--read-data"]).ok();
}

/// A project with a snapshot labelled by hand (1) and one of this directory's that `autosave
/// snapshot` took (2), whose `data/signal.bin` has changed since; and a watch of it keeping one
/// autosave, which has taken its autosave at start (3).
fn watching_with_keep_last_1(args: &[&str]) -> (Project, Child) {
    let p = Project::new();
    p.run(&["snapshot", ".", "--label", "by hand"]).ok();
    p.write("data/signal.bin", &noise(100_000, 2));
    p.run(&["snapshot", "."]).ok();
    p.write("data/signal.bin", &noise(100_000, 3));
    let mut all = vec!["--keep-last", "1"];
    all.extend_from_slice(args);
    let child = start(&p, &all);
    wait_for("the autosave at start", || {
        p.snapshot_ids() == vec![3, 2, 1]
    });
    p.write("data/signal.bin", &noise(100_000, 4));
    (p, child)
}

#[test]
fn watch_keep_last_deletes_its_older_autosaves_and_collects_their_data() {
    let (p, child) = watching_with_keep_last_1(&[]);
    let (code, out) = stop(child);
    assert_eq!(code, Some(0), "{out}");
    // Only the watch's own autosave went: not the snapshot labelled by hand, nor the one
    // `autosave snapshot` took of the same directory.
    assert_eq!(p.snapshot_ids(), vec![4, 2, 1]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("snapshot 3: "), "{out}");
    assert!(lines[1].starts_with("snapshot 4: "), "{out}");
    assert!(lines[2].starts_with("removed 1 snapshot (3), "), "{out}");
    // Its data went with it: a GC finds nothing left, and what is kept reads back whole.
    assert_eq!(p.json("gc", &["--dry-run"])["blobs_removed"], 0);
    p.run(&["check", "--read-data"]).ok();
    for (snap, seed) in [("1", 1), ("2", 2), ("4", 4)] {
        let kept = p.run(&["cat", snap, "data/signal.bin"]).ok();
        assert!(kept.stdout == noise(100_000, seed), "snapshot {snap}");
    }
}

#[test]
fn watch_keep_last_json_lists_the_snapshots_it_removed_and_the_bytes_freed() {
    let (_p, child) = watching_with_keep_last_1(&["--json"]);
    let (code, out) = stop(child);
    assert_eq!(code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["removed"], serde_json::json!([3]));
    // Snapshot 3's version of the 100,000 random bytes, which do not compress.
    let freed = doc["bytes_freed"].as_u64().unwrap();
    assert!(freed >= 100_000, "{doc}");
    assert_eq!(doc["failures"], serde_json::json!([]));
    assert_eq!(doc["retention_warnings"], serde_json::json!([]));
}

#[test]
fn watch_keep_last_0_is_a_usage_error() {
    let p = Project::new();
    let run = p.run(&["watch", ".", "--keep-last", "0"]).expect(2);
    assert!(run.stderr.contains("--keep-last"), "{run:?}");
    assert!(!p.store().exists());
}

#[test]
fn watch_keep_last_deletes_while_the_store_is_in_use_and_leaves_the_data_to_a_later_gc() {
    let p = Project::new();
    let child = start(&p, &["--keep-last", "1", "--json"]);
    wait_for_snapshots(&p, 1);
    // Held shared, as any reader or writer of the store holds it: no collection can run.
    let lock = std::fs::File::open(p.store().join("LOCK")).unwrap();
    lock.lock_shared().unwrap();
    p.write("data/signal.bin", &noise(100_000, 2));
    let (code, out, err) = stop_with_stderr(child);
    assert_eq!(code, Some(0), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["removed"], serde_json::json!([1]));
    assert_eq!(doc["bytes_freed"], 0);
    let warning = "removed 1 snapshot (1) but could not collect the data they held: the store \
                   is in use";
    assert!(err.contains(warning), "{err}");
    assert!(
        doc["retention_warnings"][0]
            .as_str()
            .unwrap()
            .starts_with(warning),
        "{doc}"
    );
    drop(lock);
    assert_eq!(p.snapshot_ids(), vec![2]);
    // The data of snapshot 1 is still there, for the GC the warning names.
    assert!(
        p.json("gc", &["--dry-run"])["blobs_removed"]
            .as_u64()
            .unwrap()
            > 0
    );
    p.run(&["gc"]).ok();
    p.run(&["check", "--read-data"]).ok();
}

#[test]
fn watch_keep_last_keeps_the_older_autosaves_when_an_entry_could_not_be_read() {
    use std::os::unix::ffi::OsStrExt as _;
    let p = Project::new();
    let child = start(&p, &["--keep-last", "1"]);
    wait_for_snapshots(&p, 1);
    // A name that is not UTF-8 cannot be snapshotted: snapshot 2 leaves it out, and snapshot 1
    // may hold something the newer one lacks.
    let odd = p.root().join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(odd, b"latin-1 name\n").unwrap();
    p.write("data/signal.bin", &noise(100_000, 2));
    let (code, out, err) = stop_with_stderr(child);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(p.snapshot_ids(), vec![2, 1]);
    assert!(
        err.contains("kept the older autosaves: 1 entry could not be read"),
        "{err}"
    );
    assert!(!out.contains("removed"), "{out}");
}

#[test]
fn watch_keep_last_does_not_sweep_a_snapshot_the_index_lost() {
    let p = Project::with_snapshot();
    crate::check::lose_second_snapshot(&p);
    p.write("data/signal.bin", &noise(100_000, 2));
    let child = start(&p, &["--keep-last", "1"]);
    // (The index gives the next snapshot the id it lost.)
    wait_for("the autosave at start", || p.snapshot_ids() == vec![2, 1]);
    p.write("data/signal.bin", &noise(100_000, 3));
    let (code, out, err) = stop_with_stderr(child);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(p.snapshot_ids(), vec![3, 1]);
    assert!(
        err.contains("removed 1 snapshot (2) but could not collect the data they held")
            && err.contains("repair index"),
        "{err}"
    );
    // The record the index lost is still there to be brought back (a rebuild numbers the
    // snapshots by age), and the autosave retention removed stays removed.
    p.run(&["repair", "index"]).ok();
    assert_eq!(p.snapshot_ids(), vec![3, 2, 1]);
    let notes = p.run(&["cat", "2", "notes.txt"]).ok().text();
    assert_eq!(notes, "notes the index will forget\n");
    let latest = p.run(&["cat", "3", "data/signal.bin"]).ok();
    assert!(latest.stdout == noise(100_000, 3));
}
