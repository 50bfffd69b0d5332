//! `restore`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Project, noise};

/// What a restore must reproduce of one path.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Link(PathBuf),
}

/// Every path below `root` (skipping `.autosave`), with type, mode, bytes and link target.
fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == ".autosave" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let node = if meta.file_type().is_symlink() {
                Node::Link(std::fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir { mode }
            } else {
                Node::File {
                    mode,
                    bytes: std::fs::read(&path).unwrap(),
                }
            };
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), node);
        }
    }
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn restore_round_trips_a_directory_byte_for_byte_with_modes_and_symlinks() {
    let p = Project::new();
    p.write("bin/run.sh", b"#!/bin/sh\necho hi\n");
    set_mode(&p.path("bin/run.sh"), 0o755);
    p.write("private/key", b"secret");
    set_mode(&p.path("private/key"), 0o600);
    // Over the 4 MiB threshold, so stored as content-defined chunks.
    p.write("big/array.f64", &noise(5 << 20, 7));
    p.write("deep/a/b/c/leaf.txt", b"leaf");
    std::fs::create_dir_all(p.path("empty/dir")).unwrap();
    std::os::unix::fs::symlink("../notes.txt", p.path("data/notes-link")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", p.path("dangling")).unwrap();
    p.snapshot();

    let target = p.temp().join("restored");
    let doc = p.json("restore", &["latest", "--target", target.to_str().unwrap()]);
    assert_eq!(tree(&target), tree(&p.root()));
    assert_eq!(doc["snapshot"], 1);
    assert_eq!(doc["target"], target.to_str().unwrap());
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["files"], 7);
    assert_eq!(doc["symlinks"], 2);
    assert_eq!(doc["dirs"], 1);
    assert_eq!(doc["bytes"], 100_000 + 12 + 8 + 18 + 6 + (5 << 20) + 4);
    assert!(doc.get("entries").is_none());
}

#[test]
fn restore_tells_people_what_it_wrote() {
    let p = Project::with_snapshot();
    let out = p.run(&["restore", "1", "--target", "../out"]).ok().text();
    assert_eq!(
        out,
        "restored snapshot 1 into ../out: 3 files, 0 symlinks, 0 empty directories, 97.7 KiB\n"
    );
    assert_eq!(
        std::fs::read(p.temp().join("out/notes.txt")).unwrap(),
        b"first notes\n"
    );
}

#[test]
fn restore_dry_run_lists_what_it_would_write_and_writes_nothing() {
    let p = Project::with_snapshot();
    let target = p.temp().join("out");
    let doc = p.json(
        "restore",
        &["1", "--target", target.to_str().unwrap(), "--dry-run"],
    );
    assert!(!target.exists());
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["files"], 3);
    assert_eq!(doc["bytes"], 100_020);
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["path"], "data/signal.bin");
    assert_eq!(entries[0]["kind"], "file");
    assert_eq!(entries[0]["size"], 100_000);
    assert_eq!(
        entries[0]["file"],
        target.join("data/signal.bin").to_str().unwrap()
    );
    let out = p
        .run(&["restore", "1", "--target", "../out", "--dry-run"])
        .ok()
        .text();
    assert!(out.ends_with("would restore snapshot 1 into ../out: 3 files, 0 symlinks, 0 empty directories, 97.7 KiB\n"), "{out}");
    assert!(!target.exists());
}

#[test]
fn restore_of_one_path_writes_only_what_lies_below_it() {
    let p = Project::with_snapshot();
    let target = p.temp().join("out");
    p.run(&[
        "restore",
        "1",
        "data",
        "--target",
        target.to_str().unwrap(),
        "-q",
    ])
    .ok();
    assert!(target.join("data/table.csv").is_file());
    assert!(!target.join("notes.txt").exists());
}

#[test]
fn restore_of_a_path_not_in_the_snapshot_is_an_error() {
    let p = Project::with_snapshot();
    for extra in [&[][..], &["--dry-run"]] {
        let mut args = vec!["restore", "1", "missing", "--target", "../out"];
        args.extend_from_slice(extra);
        let run = p.run(&args).expect(1);
        assert_eq!(run.stderr, "error: no entry missing in the snapshot\n");
    }
}

#[test]
fn restore_into_a_non_empty_target_needs_force() {
    let p = Project::with_snapshot();
    let target = p.temp().join("out");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), b"old").unwrap();
    std::fs::write(target.join("unrelated"), b"kept").unwrap();
    for extra in [&[][..], &["--dry-run"]] {
        let mut args = vec!["restore", "1", "--target", "../out"];
        args.extend_from_slice(extra);
        let run = p.run(&args).expect(1);
        assert_eq!(
            run.stderr,
            "error: restore target ../out is not empty (use --force to restore into it)\n"
        );
    }
    assert_eq!(std::fs::read(target.join("notes.txt")).unwrap(), b"old");
    p.run(&["restore", "1", "--target", "../out", "--force", "-q"])
        .ok();
    assert_eq!(
        std::fs::read(target.join("notes.txt")).unwrap(),
        b"first notes\n"
    );
    assert_eq!(std::fs::read(target.join("unrelated")).unwrap(), b"kept");
}

/// The fsync calls (fsync and fdatasync) one `restore` makes on files and directories under
/// `target`, counted by strace (which CI installs; without it the test fails rather than
/// skips). The store's own (opening it may make its WAL's name durable) do not count.
fn fsyncs_of_restore(p: &Project, target: &Path, extra: &[&str]) -> usize {
    let log = p.temp().join(format!("strace-{}.log", extra.len()));
    let mut cmd = std::process::Command::new("strace");
    cmd.arg("-f")
        .args(["-y", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_autosave"))
        .args(["-q", "restore", "latest", "--target"])
        .arg(target)
        .args(extra)
        .current_dir(p.root())
        .env_remove("AUTOSAVE_STORE");
    let status = cmd
        .status()
        .expect("strace must be installed for this test (apt-get install strace)");
    assert!(status.success());
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .filter(|l| l.contains(target.to_str().unwrap()))
        .count()
}

#[test]
fn restore_no_sync_writes_the_same_tree_without_a_single_fsync() {
    let p = Project::new();
    p.write("big/array.f64", &noise(5 << 20, 3));
    p.write("deep/a/leaf.txt", b"leaf");
    std::os::unix::fs::symlink("deep/a/leaf.txt", p.path("link")).unwrap();
    p.snapshot();

    let synced = p.temp().join("synced");
    let unsynced = p.temp().join("unsynced");
    let with_sync = fsyncs_of_restore(&p, &synced, &[]);
    let without = fsyncs_of_restore(&p, &unsynced, &["--no-sync"]);
    assert_eq!(tree(&unsynced), tree(&p.root()));
    assert_eq!(tree(&synced), tree(&p.root()));
    // One per file and one per directory by default.
    assert!(with_sync >= 5, "{with_sync} fsyncs in a default restore");
    assert_eq!(without, 0, "a --no-sync restore fsynced");
}

#[test]
fn a_target_in_the_way_fails_the_restore_and_its_dry_run_before_anything_is_written() {
    let p = Project::with_snapshot();
    let target = p.temp().join("target");
    std::fs::create_dir_all(&target).unwrap();
    // The snapshot has `data/` as a directory and `notes.txt` as a file.
    std::fs::write(target.join("data"), b"mine").unwrap();
    std::fs::create_dir_all(target.join("notes.txt/inner")).unwrap();
    let target = target.to_str().unwrap();
    for dry_run in [true, false] {
        let mut args = vec!["restore", "latest", "--target", target, "--force"];
        if dry_run {
            args.push("--dry-run");
        }
        let run = p.run(&args).expect(1);
        assert!(run.stderr.contains("cannot restore over "), "{run:?}");
        assert!(run.stderr.contains("nothing was written"), "{run:?}");
    }
    assert_eq!(
        std::fs::read(p.temp().join("target/data")).unwrap(),
        b"mine"
    );
    assert!(p.temp().join("target/notes.txt/inner").is_dir());
}

/// Ctrl-C during a restore ends it at once, leaving the temp file it was writing; restoring
/// again removes it and says so.
#[test]
fn a_restore_interrupted_mid_file_leaves_a_temp_file_that_the_next_restore_removes() {
    let p = Project::new();
    p.write("big.bin", &noise(48 << 20, 9));
    p.run(&["snapshot", "."]).ok();
    let target = p.temp().join("out");
    // The temp files in the target and in its `data` directory.
    let temps = |dir: &Path| -> Vec<PathBuf> {
        [dir.to_path_buf(), dir.join("data")]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".autosave-restore-")
            })
            .collect()
    };
    // Interrupt as soon as the temp file of the large file shows (a few tries: the restore may
    // finish between two looks on a fast machine).
    let mut caught = false;
    for _ in 0..5 {
        let _ = std::fs::remove_dir_all(&target);
        let mut child = p
            .cmd(&["restore", "latest", "--target", target.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if !temps(&target).is_empty() {
                crate::interrupt(child.id());
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let code = child.wait().unwrap().code();
        if code == Some(130) && !temps(&target).is_empty() {
            caught = true;
            break;
        }
    }
    assert!(caught, "no restore was interrupted mid-file in five tries");
    // (Files are written in parallel: a small one may have been in flight too.)
    let left = temps(&target).len();

    let run = p
        .run(&[
            "restore",
            "latest",
            "--force",
            "--target",
            target.to_str().unwrap(),
        ])
        .ok();
    let said = if left == 1 {
        "removed 1 temp file that an interrupted restore left\n".to_owned()
    } else {
        format!("removed {left} temp files that an interrupted restore left\n")
    };
    assert!(run.text().ends_with(&said), "{run:?}");
    assert_eq!(temps(&target), Vec::<PathBuf>::new());
    assert_eq!(tree(&target), tree(&p.root()));
}
