//! `watch`, run as a child process and stopped with Ctrl-C.

use std::process::{Child, Stdio};

use serde_json::Value;

use crate::{Project, catches_sigint, interrupt, wait_for};

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
    wait_for("watch to catch SIGINT", || catches_sigint(child.id()));
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
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
