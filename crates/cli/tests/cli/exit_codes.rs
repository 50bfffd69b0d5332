//! Every documented exit code, each from a real situation.

use std::process::Stdio;
use std::time::Duration;

use crate::{Project, catches_sigint, interrupt, wait_for};

#[test]
fn success_is_0_and_help_is_0() {
    let p = Project::with_snapshot();
    p.run(&["snapshots"]).ok();
    let help = p.run(&["--help"]).ok().text();
    for command in [
        "snapshot", "watch", "restore", "check", "forget", "gc", "stats",
    ] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn bad_arguments_are_a_usage_error_2() {
    let p = Project::with_snapshot();
    for args in [
        &["frobnicate"][..],
        &["show"],
        &["show", "first"],
        &["restore", "1"],
        &["ls", "1", r"bad\escape"],
        &["watch", ".", "--idle", "-1"],
    ] {
        let run = p.run(args).expect(2);
        assert!(run.stderr.starts_with("error: "), "{run:?}");
    }
}

#[test]
fn no_store_at_the_path_is_10() {
    let p = Project::new();
    let run = p.run(&["snapshots"]).expect(10);
    assert_eq!(
        run.stderr,
        "error: no autosave store at .autosave (create one with `autosave init` or \
         `autosave snapshot DIR`, or name one with --store)\n"
    );
    let doc = p.run(&["show", "latest", "--json"]).expect(10).json();
    assert_eq!(doc["command"], "show");
    assert_eq!(doc["error"]["exit_code"], 10);
    // A directory holding other files is no store either, and is left alone.
    p.run(&["check", "--store", "data"]).expect(10);
}

#[test]
fn a_store_locked_by_another_process_is_11() {
    let p = Project::with_snapshot();
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(p.store().join("LOCK"))
        .unwrap();
    lock.lock_shared().unwrap();
    let run = p.run(&["gc"]).expect(11);
    assert!(
        run.stderr.contains("is busy: another process is using it"),
        "{run:?}"
    );
    drop(lock);
    p.run(&["gc", "-q"]).ok();
}

#[test]
fn a_store_of_a_newer_format_is_1_with_a_clear_message() {
    let p = Project::with_snapshot();
    let path = p.store().join("FORMAT");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("version 2\n", "version 3\n")).unwrap();
    let run = p.run(&["snapshots"]).expect(1);
    assert_eq!(
        run.stderr,
        "error: store .autosave/FORMAT has format version 3; this build reads up to 2 \
         (upgrade autosave to use this store)\n"
    );
}

#[test]
fn a_damaged_format_file_is_12() {
    let p = Project::with_snapshot();
    let path = p.store().join("FORMAT");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("inline-limit 16384", "inline-limit 16385"),
    )
    .unwrap();
    let run = p.run(&["snapshots"]).expect(12);
    assert!(
        run.stderr
            .starts_with("error: damaged FORMAT file .autosave/FORMAT: "),
        "{run:?}"
    );
}

#[test]
fn a_snapshot_that_skipped_entries_is_a_partial_success_3() {
    let p = Project::new();
    std::fs::write(
        p.root()
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xfe")),
        b"x",
    )
    .unwrap();
    p.run(&["snapshot", "."]).expect(3);
}

#[test]
fn ctrl_c_ends_a_command_with_130() {
    let p = Project::with_snapshot();
    // Hold the lock exclusively, so that `check` waits for it until interrupted.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(p.store().join("LOCK"))
        .unwrap();
    lock.lock().unwrap();
    let mut child = p
        .cmd(&["check"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("check to catch SIGINT", || catches_sigint(child.id()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "check did not wait for the lock"
    );
    interrupt(child.id());
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

#[test]
fn a_store_whose_format_is_gone_is_12_and_no_command_makes_a_new_store_over_its_data() {
    let p = Project::with_snapshot();
    std::fs::remove_file(p.store().join("FORMAT")).unwrap();
    // `snapshot` opens with "create if there is none": it must not take the old data for an
    // interrupted creation and write a new FORMAT (another id, perhaps another hash).
    for args in [&["snapshot", "."][..], &["snapshots"], &["check"]] {
        let run = p.run(args).expect(12);
        // (`snapshot` names the store by its absolute path, the others as given.)
        assert!(
            run.stderr.starts_with("error: store ")
                && run.stderr.ends_with(
                    ".autosave holds blob files but its FORMAT file is missing; put FORMAT \
                     back from a backup (a new store is not created over existing data)\n"
                ),
            "{args:?}: {run:?}"
        );
    }
    assert!(!p.store().join("FORMAT").exists());
}

#[test]
fn a_damaged_index_is_12_and_points_to_repair_index_which_brings_the_snapshots_back() {
    let p = Project::with_snapshot();
    std::fs::write(p.store().join("index.sqlite"), b"not a database at all").unwrap();
    let run = p.run(&["check"]).expect(12);
    assert!(
        run.stderr.starts_with("error: damaged index: ")
            && run.stderr.ends_with(
                "(the index is damaged; the blob files are not: run `autosave repair index`)\n"
            ),
        "{run:?}"
    );
    p.run(&["repair", "index"]).ok();
    assert_eq!(
        p.json("snapshots", &[])["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    p.run(&["check"]).ok();
}

#[test]
fn an_os_error_is_said_once() {
    let p = Project::with_snapshot();
    let run = p
        .run(&["restore", "latest", "--target", "notes.txt", "--force"])
        .expect(1);
    assert_eq!(run.stderr.matches("Not a directory").count(), 1, "{run:?}");
}
