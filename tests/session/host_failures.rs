//! The first host's failures, each as an end-to-end sequence through a `Session` with real stores
//! in temp directories; every byte must survive.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use autosave::store::{SnapshotKind, StdFs};
use autosave::tree::{EntryPath, Node};
use autosave::{Error, Options, Session};
use camino::Utf8Path;

use crate::{HostTree, project, random_bytes, restored_contents};

fn open(dir: &Utf8Path) -> Session {
    Session::open(dir, Options::default()).unwrap()
}

/// The newest explicit save, read back.
fn baseline(session: &Session) -> Vec<(Vec<String>, String, Vec<u8>)> {
    let id = session
        .store()
        .snapshots()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s.kind == SnapshotKind::Explicit)
        .expect("a baseline")
        .id;
    restored_contents(&session.restore(id).unwrap())
}

#[test]
fn regression_1_save_edit_autosave_save_reopen_keeps_the_edited_array() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(1);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 99));
    s.autosave(&tree.nodes()).unwrap();
    s.save_explicit(&tree.nodes()).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(baseline(&s), tree.contents());
    assert!(s.recovery().unwrap().is_none());
    assert!(s.store().verify(true).unwrap().is_clean());
}

#[test]
fn regression_2_save_as_to_a_new_directory_is_self_contained() {
    let (_tmp, old) = project();
    let (_tmp2, new) = project();
    let tree = HostTree::sample(2);
    let mut a = open(&old);
    a.save_explicit(&tree.nodes()).unwrap();
    let autosaved = a.autosave(&tree.nodes()).unwrap();
    assert_eq!(autosaved.snapshot, None, "no edits since the save");
    let manifest =
        autosave::tree::snapshot_manifest(a.store(), a.store().latest().unwrap().unwrap().id)
            .unwrap();
    drop(a);
    // The host carries its knowledge of the tree (tokens) into the new location.
    let mut b = open(&new);
    b.seed(&manifest, |_| Some(autosave::tree::Token(1)));
    let report = b.save_explicit(&tree.nodes()).unwrap();
    // Only the three nodes small enough to live inside the manifest can be taken from the cache:
    // their bytes travel with it. Every blob must be written to the new store.
    assert_eq!(
        report.tree.skipped_token, 3,
        "a cache about another store must not be trusted"
    );
    drop(b);
    std::fs::remove_dir_all(&old).unwrap();
    let b = open(&new);
    assert_eq!(baseline(&b), tree.contents());
    assert!(b.store().verify(true).unwrap().is_clean());
}

#[test]
fn regression_3_an_unsaved_session_autosaves_then_first_saves_elsewhere() {
    let (_tmp, scratch) = project();
    let (_tmp2, saved) = project();
    let mut tree = HostTree::sample(3);
    let mut a = open(&scratch);
    a.autosave(&tree.nodes()).unwrap();
    tree.set(
        &["notes"],
        "note",
        b"written before the first save".to_vec(),
    );
    a.autosave(&tree.nodes()).unwrap();
    drop(a);
    let mut b = open(&saved);
    b.save_explicit(&tree.nodes()).unwrap();
    drop(b);
    std::fs::remove_dir_all(&scratch).unwrap();
    assert_eq!(baseline(&open(&saved)), tree.contents());
}

#[test]
fn regression_4_a_deleted_then_recreated_node_keeps_its_new_content() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(4);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.remove(&["arrays", "signal"]);
    s.autosave(&tree.nodes()).unwrap();
    // Recreated with other content, and (as a careless host might) the token it had before.
    tree.nodes.push((
        vec!["arrays".into(), "signal".into()],
        "ndarray".into(),
        random_bytes(300_000, 44),
        1,
    ));
    s.autosave(&tree.nodes()).unwrap();
    s.save_explicit(&tree.nodes()).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(baseline(&s), tree.contents());
}

#[test]
fn regression_5_clearing_autosaves_then_saving_loses_nothing() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(5);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 55));
    s.autosave(&tree.nodes()).unwrap();
    let recovery = s.recovery().unwrap().expect("an unsaved edit");
    let discarded = s.discard(&recovery).unwrap();
    assert!(
        discarded.gc.is_some_and(|g| g.blobs_removed > 0),
        "the edited array's blobs were collected"
    );
    // The session's cache still remembers the edited array by its token; it must not trust it.
    s.save_explicit(&tree.nodes()).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(baseline(&s), tree.contents());
    assert!(s.store().verify(true).unwrap().is_clean());
}

#[test]
fn a_claim_this_process_still_holds_for_a_moment_does_not_refuse_the_next_session() {
    // A session dropped while another thread forks a child (a host starting a program) stays
    // claimed through the child's copy of its descriptor until the child runs the program.
    // Here a second descriptor of the claim file, released 50 ms later, stands for that copy.
    let (_tmp, dir) = project();
    drop(open(&dir));
    let claim = std::fs::File::open(dir.join(".autosave").join(autosave::CLAIM_FILE)).unwrap();
    claim.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(claim);
    });
    let s = Session::open(&dir, Options::default());
    release.join().unwrap();
    assert!(s.is_ok(), "{s:?}");
}

#[test]
fn a_claim_this_process_keeps_holding_refuses_the_next_session_after_the_grace() {
    let (_tmp, dir) = project();
    let _first = open(&dir);
    let start = std::time::Instant::now();
    let second = Session::open(&dir, Options::default());
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    assert!(start.elapsed() >= autosave::OWN_CLAIM_GRACE);
}

#[test]
fn regression_6_a_second_session_is_refused_and_the_first_keeps_working() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(6);
    let mut first = open(&dir);
    first.save_explicit(&tree.nodes()).unwrap();
    let files_before = crate::scan::files(&dir);
    match Session::open(&dir, Options::default()) {
        Err(Error::Locked { holder, .. }) => {
            assert_eq!(holder.pid, std::process::id());
            assert!(!holder.host.is_empty());
            assert!(holder.started_ns > 0);
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let reader = Session::open(
        &dir,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(matches!(reader.store().latest(), Ok(Some(_))));
    assert_eq!(
        crate::scan::files(&dir),
        files_before,
        "the refused session removed nothing"
    );
    let mut edited = tree.clone();
    edited.set(&["notes"], "note", b"still working".to_vec());
    assert!(first.autosave(&edited.nodes()).unwrap().snapshot.is_some());
}

const CHILD_DIR: &str = "AUTOSAVE_TEST_KILL_DIR";

/// The tree of iteration `i` of the killed writer: every node derived from `i`.
fn iteration_tree(i: u64) -> HostTree {
    let mut t = HostTree::sample(7);
    t.set(&["iteration"], "value", i.to_le_bytes().to_vec());
    t.set(
        &["arrays", "signal"],
        "ndarray",
        random_bytes(600_000, 1000 + i),
    );
    t.set(
        &["arrays", "grown"],
        "ndarray",
        random_bytes(50_000 * (i as usize % 7 + 1), 2000 + i),
    );
    // An honest host: the nodes that change between iterations get a new token each time.
    for node in &mut t.nodes {
        if node.0 == ["iteration"]
            || node.0 == ["arrays", "signal"]
            || node.0 == ["arrays", "grown"]
        {
            node.3 = i + 10;
        }
    }
    t
}

/// Kills the child when dropped, so a failing test never leaves a writer running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "the writer process of regression_7_sigkill_mid_autosave_recovers_the_last_acknowledged_autosave"]
fn killed_writer() {
    let dir = std::env::var(CHILD_DIR).unwrap();
    let mut s = Session::open(Utf8Path::new(&dir), Options::default()).unwrap();
    for i in 1..10_000 {
        let report = s.autosave(&iteration_tree(i).nodes()).unwrap();
        if report.snapshot.is_some() {
            println!("ACK {i}");
        }
    }
}

#[test]
fn regression_7_sigkill_mid_autosave_recovers_the_last_acknowledged_autosave() {
    let (_tmp, dir) = project();
    for round in 0..3u64 {
        let mut child = KillOnDrop(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "host_failures::killed_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, dir.as_str())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        let mut acked = 0;
        let wanted = 3 + round * 2;
        while acked < wanted {
            let line = lines.next().expect("the writer died early").unwrap();
            // The test harness may print its own text before ours on the same line.
            if let Some(at) = line.find("ACK ") {
                acked = line[at + 4..].trim().parse().unwrap();
            }
        }
        // Kill it somewhere inside a later autosave.
        std::thread::sleep(std::time::Duration::from_millis(7 * round + 3));
        drop(child);

        let s = open(&dir);
        let recovery = s
            .recovery()
            .unwrap()
            .expect("autosaves and no baseline: recoverable");
        assert!(recovery.problem.is_none());
        let restored = restored_contents(&s.restore(recovery.snapshot.id).unwrap());
        let iteration = restored
            .iter()
            .find(|e| e.0 == ["iteration"])
            .expect("iteration node");
        let i = u64::from_le_bytes(iteration.2.as_slice().try_into().unwrap());
        assert!(
            i >= acked,
            "recovered iteration {i}, but {acked} was acknowledged"
        );
        assert_eq!(
            restored,
            iteration_tree(i).contents(),
            "a recovered snapshot is exactly one committed tree"
        );
        assert!(s.store().verify(true).unwrap().is_clean());
        drop(s);
    }
}

#[test]
fn regression_8_nothing_changed_since_the_save_offers_no_recovery() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(8);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    for _ in 0..3 {
        assert_eq!(s.autosave(&tree.nodes()).unwrap().snapshot, None);
    }
    drop(s);
    assert!(open(&dir).recovery().unwrap().is_none());
}

#[test]
fn an_edit_undone_before_the_crash_offers_no_recovery() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(81);
    let mut edited = tree.clone();
    edited.set(&["notes"], "note", b"temporary".to_vec());
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    s.autosave(&edited.nodes()).unwrap();
    s.autosave(&tree.nodes()).unwrap();
    drop(s);
    assert!(open(&dir).recovery().unwrap().is_none());
}

#[test]
fn a_tree_reloaded_from_the_save_and_seeded_is_autosaved_as_that_tree() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(82);
    let mut edited = tree.clone();
    edited.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 83));
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    s.autosave(&edited.nodes()).unwrap();
    // The user discards the edit: the host reloads the save, gives its nodes tokens of its own
    // and seeds the session with them. Every node is then a cache hit, as many as the edited
    // tree had: the session must still see that the tree is the saved one.
    let saved = s.store().latest().unwrap().unwrap();
    let saved = s
        .store()
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|x| x.kind == SnapshotKind::Explicit && x.id < saved.id)
        .unwrap();
    let manifest = autosave::tree::snapshot_manifest(s.store(), saved.id).unwrap();
    let mut reloaded = tree.clone();
    for node in &mut reloaded.nodes {
        node.3 = 100;
    }
    s.seed(&manifest, |_| Some(autosave::tree::Token(100)));
    let report = s.autosave(&reloaded.nodes()).unwrap();
    assert_eq!(report.tree.skipped_token, 6, "nothing is read");
    drop(s);
    // The newest state is the saved one: a crash now has nothing to recover.
    assert!(open(&dir).recovery().unwrap().is_none());
}

#[test]
fn regression_9_restore_then_crash_before_the_next_autosave_is_still_recoverable() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(9);
    let mut edited = tree.clone();
    edited.set(&["arrays", "labels"], "ndarray", vec![9u8; 70_000]);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    s.autosave(&edited.nodes()).unwrap();
    drop(s); // crash

    let s = open(&dir);
    let first = s.recovery().unwrap().expect("recoverable");
    assert_eq!(first.changed_entries, 1);
    assert_eq!(first.changed_bytes, 70_000);
    assert_eq!(
        restored_contents(&s.restore(first.snapshot.id).unwrap()),
        edited.contents()
    );
    drop(s); // crash again before any autosave

    let mut s = open(&dir);
    let second = s.recovery().unwrap().expect("still recoverable");
    assert_eq!(second.snapshot.id, first.snapshot.id);
    // Once the restored state is autosaved (it is the same tree: no new snapshot), and saved,
    // recovery is done.
    s.save_explicit(&edited.nodes()).unwrap();
    assert!(s.recovery().unwrap().is_none());
}

#[test]
fn regression_10_a_node_whose_file_vanished_is_reported_and_the_rest_commits() {
    let (_tmp, dir) = project();
    let file = dir.join("export.npy");
    std::fs::write(&file, random_bytes(10_000, 10)).unwrap();
    let tree = HostTree::sample(10);
    fn with_file<'a>(t: &'a HostTree, file: &Utf8Path) -> Vec<Node<'a>> {
        let mut nodes = t.nodes();
        nodes.push(Node::file(
            EntryPath::new(["exports", "export.npy"]),
            "ndarray",
            file.as_std_path(),
        ));
        nodes
    }
    let mut s = open(&dir);
    s.autosave(&with_file(&tree, &file)).unwrap();
    std::fs::remove_file(&file).unwrap();
    let mut edited = tree.clone();
    edited.set(&["notes"], "note", b"after the export vanished".to_vec());
    let report = s.autosave(&with_file(&edited, &file)).unwrap();
    assert!(report.snapshot.is_some());
    assert_eq!(report.tree.errors.len(), 1);
    assert_eq!(
        report.tree.errors[0].path,
        EntryPath::new(["exports", "export.npy"])
    );
    let restored = s.restore(report.snapshot.unwrap()).unwrap();
    assert_eq!(restored_contents(&restored), edited.contents());
}

#[test]
fn restoring_a_damaged_autosave_fails_loudly_instead_of_returning_the_baseline() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(11);
    let mut edited = tree.clone();
    edited.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 111));
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    let id = s.autosave(&edited.nodes()).unwrap().snapshot.unwrap();
    drop(s);
    flip_bit_of_blob(&dir, &edited.nodes[0].2, 1000, 1);
    let s = open(&dir);
    // Nothing newer than the save is intact: the damaged autosave is offered, with the reason.
    let recovery = s.recovery().unwrap().expect("recoverable");
    assert_eq!(recovery.snapshot.id, id);
    let problem = recovery.problem.expect("the damage is reported");
    assert!(
        problem.contains(&format!("autosave {id} is damaged")),
        "{problem}"
    );
    assert!(
        problem.contains("no autosave newer than the last save is intact"),
        "{problem}"
    );
    let err = s.restore(id).expect_err("a damaged blob must not restore");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

/// A project with a baseline and two autosaves after it, each with its own signal, where one
/// bit of the blob only the newer one uses is flipped.
struct NewerDamaged {
    _tmp: tempfile::TempDir,
    dir: camino::Utf8PathBuf,
    intact: autosave::store::SnapshotId,
    intact_tree: HostTree,
    newest: autosave::store::SnapshotId,
}

fn two_autosaves_the_newer_damaged(seed: u64) -> NewerDamaged {
    let (tmp, dir) = project();
    let tree = HostTree::sample(seed);
    let mut first = tree.clone();
    first.set(
        &["arrays", "signal"],
        "ndarray",
        random_bytes(300_000, seed * 10 + 1),
    );
    let mut second = first.clone();
    second.set(
        &["arrays", "signal"],
        "ndarray",
        random_bytes(300_000, seed * 10 + 2),
    );
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    let intact = s.autosave(&first.nodes()).unwrap().snapshot.unwrap();
    let newest = s.autosave(&second.nodes()).unwrap().snapshot.unwrap();
    drop(s);
    flip_bit_of_blob(&dir, &second.nodes[0].2, 2000, 4);
    NewerDamaged {
        _tmp: tmp,
        dir,
        intact,
        intact_tree: first,
        newest,
    }
}

#[test]
fn recovery_skips_a_damaged_newest_autosave_and_offers_the_newest_intact_one() {
    let NewerDamaged {
        _tmp,
        dir,
        intact,
        intact_tree: first,
        newest,
    } = two_autosaves_the_newer_damaged(12);
    let s = open(&dir);
    let recovery = s.recovery().unwrap().expect("recoverable");
    assert_eq!(recovery.snapshot.id, intact, "the newest intact autosave");
    let problem = recovery.problem.expect("the damage is reported");
    assert!(
        problem.contains(&format!("autosave {newest} is damaged")),
        "{problem}"
    );
    let restored = s.restore(intact).unwrap();
    let signal = restored
        .entries
        .iter()
        .find(|e| e.path.keys() == ["arrays", "signal"])
        .unwrap();
    assert!(
        signal.content == first.nodes[0].2,
        "the intact autosave's bytes"
    );
}

/// Flips `mask` at byte `at` of the blob file holding `content` in the project's store.
fn flip_bit_of_blob(dir: &camino::Utf8Path, content: &[u8], at: usize, mask: u8) {
    let blob = blob_file(dir, &autosave::store::HashAlgo::Xxh3_128.hash(content));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[at] ^= mask;
    std::fs::write(&blob, bytes).unwrap();
}

#[test]
fn an_explicit_save_that_cannot_read_a_node_removes_no_older_snapshot() {
    let (_tmp, dir) = project();
    let file = dir.join("export.bin");
    let tree = HostTree::sample(42);
    fn with_file<'a>(t: &'a HostTree, file: &Utf8Path) -> Vec<Node<'a>> {
        let mut nodes = t.nodes();
        nodes.push(Node::file(
            EntryPath::new(["exports", "big"]),
            "ndarray",
            file.as_std_path(),
        ));
        nodes
    }
    std::fs::write(&file, random_bytes(200_000, 1)).unwrap();
    let mut s = open(&dir);
    s.save_explicit(&with_file(&tree, &file)).unwrap();
    let edited = random_bytes(200_000, 2);
    std::fs::write(&file, &edited).unwrap();
    let autosave = s
        .autosave(&with_file(&tree, &file))
        .unwrap()
        .snapshot
        .unwrap();
    // The node cannot be read at the next save: the autosave holds its only copy.
    std::fs::remove_file(&file).unwrap();
    let report = s.save_explicit(&with_file(&tree, &file)).unwrap();
    assert_eq!(report.tree.errors.len(), 1);
    assert_eq!(report.removed, []);
    assert!(
        matches!(
            report.gc_skipped,
            Some(autosave::Skipped::EntryErrors { entries: 1 })
        ),
        "{:?}",
        report.gc_skipped
    );
    let restored = s.restore(autosave).unwrap();
    assert!(restored.entries.iter().any(|e| e.content == edited));
    // A later save that reads everything clears the superseded snapshots as usual.
    std::fs::write(&file, &edited).unwrap();
    let report = s.save_explicit(&with_file(&tree, &file)).unwrap();
    assert!(report.removed.contains(&autosave), "{report:?}");
}

#[test]
fn keeping_zero_autosaves_is_refused_when_the_session_opens() {
    let (_tmp, dir) = project();
    let options = Options {
        keep_autosaves: 0,
        ..Options::default()
    };
    let err = Session::open(&dir, options).unwrap_err();
    assert!(matches!(err, Error::InvalidOptions { .. }), "{err}");
    assert!(err.to_string().contains("keep_autosaves"), "{err}");
}

/// The real filesystem, with directory fsyncs that fail while `fail_syncs` is set and the
/// removal of one path that always fails; it records the directories listed.
#[derive(Debug, Default)]
struct Faulty {
    fail_syncs: std::sync::atomic::AtomicBool,
    fail_remove: std::sync::Mutex<Option<camino::Utf8PathBuf>>,
    /// Every directory listed, in order.
    listed: std::sync::Mutex<Vec<camino::Utf8PathBuf>>,
}

impl autosave::store::Vfs for Faulty {
    fn create_dir(&self, path: &Utf8Path) -> std::io::Result<()> {
        StdFs.create_dir(path)
    }
    fn write_new(&self, path: &Utf8Path, parts: &[&[u8]]) -> std::io::Result<()> {
        StdFs.write_new(path, parts)
    }
    fn sync_file(&self, path: &Utf8Path) -> std::io::Result<()> {
        StdFs.sync_file(path)
    }
    fn sync_dir(&self, path: &Utf8Path) -> std::io::Result<()> {
        if self.fail_syncs.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        StdFs.sync_dir(path)
    }
    fn link(&self, from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
        StdFs.link(from, to)
    }
    fn rename(&self, from: &Utf8Path, to: &Utf8Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Utf8Path) -> std::io::Result<()> {
        if self.fail_remove.lock().unwrap().as_deref() == Some(path) {
            return Err(std::io::Error::other("injected unlink failure"));
        }
        StdFs.remove_file(path)
    }
    fn read(&self, path: &Utf8Path) -> std::io::Result<Vec<u8>> {
        StdFs.read(path)
    }
    fn file_len(&self, path: &Utf8Path) -> std::io::Result<Option<u64>> {
        StdFs.file_len(path)
    }
    fn list_dir(&self, path: &Utf8Path) -> std::io::Result<Vec<String>> {
        self.listed.lock().unwrap().push(path.to_owned());
        StdFs.list_dir(path)
    }
    fn is_dir(&self, path: &Utf8Path) -> bool {
        StdFs.is_dir(path)
    }
}

fn open_faulty(dir: &Utf8Path) -> (Session, std::sync::Arc<Faulty>) {
    let vfs = std::sync::Arc::new(Faulty::default());
    let options = Options {
        store: autosave::store::Options {
            vfs: vfs.clone(),
            ..autosave::store::Options::default()
        },
        ..Options::default()
    };
    (Session::open(dir, options).unwrap(), vfs)
}

#[test]
fn a_failed_explicit_save_keeps_the_autosaves_it_would_have_superseded() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(47);
    let (mut s, vfs) = open_faulty(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 48));
    let autosave = s.autosave(&tree.nodes()).unwrap().snapshot.unwrap();
    tree.set(&["notes"], "note", b"the save will fail".to_vec());
    vfs.fail_syncs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = s.save_explicit(&tree.nodes()).unwrap_err();
    assert!(err.to_string().contains("injected fsync failure"), "{err}");
    vfs.fail_syncs
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let ids: Vec<_> = s
        .store()
        .snapshots()
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert!(ids.contains(&autosave), "{ids:?}");
    drop(s);
    let recovery = open(&dir).recovery().unwrap().expect("still recoverable");
    assert_eq!(recovery.snapshot.id, autosave);
}

#[test]
fn a_clean_up_that_fails_after_the_save_committed_is_reported_and_the_save_stands() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(51);
    let (mut s, vfs) = open_faulty(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", vec![3; 40_000]);
    s.autosave(&tree.nodes()).unwrap();
    // A stray file that GC's sweep will fail to remove.
    let stray = dir.join(".autosave/tmp/stray");
    std::fs::write(&stray, b"x").unwrap();
    *vfs.fail_remove.lock().unwrap() = Some(stray);
    tree.set(&["notes"], "note", vec![4; 40_000]);
    let report = s.save_explicit(&tree.nodes()).unwrap();
    let id = report.snapshot.unwrap();
    match &report.gc_skipped {
        Some(autosave::Skipped::Failed(e)) => {
            assert!(e.to_string().contains("injected unlink failure"), "{e}");
        }
        other => panic!("expected the failed clean-up, got {other:?}"),
    }
    assert_eq!(s.store().latest().unwrap().unwrap().id, id);
    assert_eq!(baseline(&s), tree.contents());
}

#[test]
fn autosaves_left_older_than_the_baseline_are_not_offered() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(52);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["arrays", "signal"], "ndarray", random_bytes(300_000, 53));
    s.autosave(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", b"saved, then the process died".to_vec());
    // The baseline commits and the process dies before it removes the autosave.
    let mut cache = autosave::tree::ChangeCache::new();
    let spec = autosave::tree::SnapshotSpec::new(SnapshotKind::Explicit);
    autosave::tree::write_snapshot(s.store(), &mut cache, &tree.nodes(), &spec).unwrap();
    drop(s);
    assert!(open(&dir).recovery().unwrap().is_none());
}

#[test]
fn discarding_removes_the_damaged_newer_autosaves_too_so_the_question_is_not_asked_again() {
    let NewerDamaged {
        _tmp,
        dir,
        intact,
        newest,
        ..
    } = two_autosaves_the_newer_damaged(49);
    let mut s = open(&dir);
    let offer = s.recovery().unwrap().expect("recoverable");
    assert_eq!(
        (offer.snapshot.id, &offer.damaged[..]),
        (intact, &[newest][..])
    );
    let report = s.discard(&offer).unwrap();
    assert_eq!(report.removed, [intact, newest]);
    assert!(s.recovery().unwrap().is_none());
}

/// Where the project's store keeps the file of blob `digest`.
fn blob_file(dir: &Utf8Path, digest: &autosave::store::Digest) -> camino::Utf8PathBuf {
    let hex = digest.to_string();
    dir.join(".autosave/objects").join(&hex[..2]).join(&hex)
}

/// The first blob file of the newest snapshot's, and its digest.
fn a_blob_file(s: &Session, dir: &Utf8Path) -> (autosave::store::Digest, camino::Utf8PathBuf) {
    let id = s.store().latest().unwrap().unwrap().id;
    s.store()
        .snapshot_refs(id)
        .unwrap()
        .into_iter()
        .map(|d| (d, blob_file(dir, &d)))
        .find(|(_, path)| path.exists())
        .expect("the sample holds a blob file")
}

/// A blob file lost while no session was open (a user cleaning up, a partial copy of the
/// project) must not stay lost while the host believes its saves hold the data: the next
/// session forgets the damaged row when it opens, and its first save of a tree that still holds
/// the bytes stores them again and commits, even though the tree did not change, which mends
/// every snapshot that needed them.
#[test]
fn a_blob_file_lost_between_sessions_is_stored_again_by_the_next_save() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(7);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    let baseline_id = s.store().latest().unwrap().unwrap().id;
    let (lost, path) = a_blob_file(&s, &dir);
    drop(s);
    std::fs::remove_file(&path).unwrap();

    let mut s = open(&dir);
    assert_eq!(s.forgotten_blobs(), [lost]);
    assert!(!s.store().verify(false).unwrap().is_clean());
    let report = s.autosave(&tree.nodes()).unwrap();
    assert!(
        report.snapshot.is_some(),
        "the same tree commits when it stored lost blobs again"
    );
    assert!(path.exists());
    assert!(s.store().verify(true).unwrap().is_clean());
    assert_eq!(
        restored_contents(&s.restore(baseline_id).unwrap()),
        tree.contents()
    );
    drop(s);
    assert_eq!(open(&dir).forgotten_blobs(), []);
}

/// The same for the newest snapshot's manifest: an autosave of the unchanged tree stores it
/// again, although the tree equals the newest snapshot's.
#[test]
fn a_lost_manifest_of_the_newest_snapshot_is_stored_again_by_the_next_autosave() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(9);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    let manifest = s.store().latest().unwrap().unwrap().manifest;
    drop(s);
    let path = blob_file(&dir, &manifest);
    std::fs::remove_file(&path).unwrap();

    let mut s = open(&dir);
    assert_eq!(s.forgotten_blobs(), [manifest]);
    let report = s.autosave(&tree.nodes()).unwrap();
    assert!(report.snapshot.is_some(), "{report:?}");
    assert!(path.exists());
    assert!(s.store().verify(true).unwrap().is_clean());
}

/// A session that stays open while another program forgets the manifest of its newest snapshot
/// (`autosave repair blobs`): its next autosave of the unchanged tree, which its cache of the
/// last tree would take for the newest snapshot, stores the manifest again.
#[test]
fn an_open_session_stores_again_a_manifest_forgotten_under_it() {
    let (_tmp, dir) = project();
    let tree = HostTree::sample(10);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    assert_eq!(s.autosave(&tree.nodes()).unwrap().snapshot, None);
    let manifest = s.store().latest().unwrap().unwrap().manifest;
    let path = blob_file(&dir, &manifest);
    std::fs::remove_file(&path).unwrap();
    let other = autosave::store::Store::open(dir.join(".autosave")).unwrap();
    let repair = other
        .forget_damaged_blobs(false, &autosave::store::Progress::none())
        .unwrap();
    assert_eq!(repair.forgotten, [manifest]);

    let report = s.autosave(&tree.nodes()).unwrap();
    assert!(report.snapshot.is_some(), "{report:?}");
    assert!(path.exists());
    assert!(s.store().verify(true).unwrap().is_clean());
}

/// A session that finds the store in use when it opens checks for damaged blobs before its
/// first save instead.
#[test]
fn a_session_that_opened_beside_another_process_forgets_damaged_blobs_before_its_first_save() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(8);
    let mut s = open(&dir);
    s.save_explicit(&tree.nodes()).unwrap();
    let (lost, path) = a_blob_file(&s, &dir);
    drop(s);
    std::fs::remove_file(&path).unwrap();

    let other = autosave::store::Store::open(dir.join(".autosave")).unwrap();
    let reading = other.reader().unwrap();
    let mut s = open(&dir);
    assert_eq!(s.forgotten_blobs(), []);
    drop(reading);
    tree.set(&["notes"], "note", b"an edit".to_vec());
    s.autosave(&tree.nodes()).unwrap();
    assert_eq!(s.forgotten_blobs(), [lost]);
    assert!(path.exists(), "the autosave stored the lost bytes again");
    assert!(s.store().verify(true).unwrap().is_clean());
}

/// The clean-up after an autosave lists the store's directories once: the check for snapshots
/// the index lost and the sweep share one listing (each listing of `objects/` costs a
/// `getdents` per fan-out directory, on every autosave once retention is full).
#[test]
fn the_clean_up_after_an_autosave_lists_each_directory_once() {
    let (_tmp, dir) = project();
    let mut tree = HostTree::sample(57);
    let vfs = std::sync::Arc::new(Faulty::default());
    let options = Options {
        keep_autosaves: 1,
        store: autosave::store::Options {
            vfs: vfs.clone(),
            ..autosave::store::Options::default()
        },
        ..Options::default()
    };
    let mut s = Session::open(&dir, options).unwrap();
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", vec![1; 40_000]);
    s.autosave(&tree.nodes()).unwrap();
    vfs.listed.lock().unwrap().clear();
    // Retention (one autosave) now removes the older one, and GC runs.
    tree.set(&["notes"], "note", vec![9; 40_000]);
    let report = s.autosave(&tree.nodes()).unwrap();
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert!(report.gc.is_some(), "{report:?}");
    let listed = vfs.listed.lock().unwrap().clone();
    let objects = dir.join(".autosave/objects");
    assert!(listed.iter().any(|d| d.starts_with(&objects)));
    let mut seen = std::collections::HashSet::new();
    for d in &listed {
        assert!(seen.insert(d), "{d} listed twice: {listed:?}");
    }
}
