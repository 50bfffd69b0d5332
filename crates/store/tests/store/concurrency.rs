use std::process::Command;

use autosave_store::Store;
use camino::Utf8PathBuf;

use crate::{commit, new_store, random_bytes};

const CHILD_STORE: &str = "AUTOSAVE_TEST_CHILD_STORE";
const CHILD_SEED: &str = "AUTOSAVE_TEST_CHILD_SEED";
const COMMITS: u64 = 15;

fn child_content(seed: u64, i: u64) -> Vec<Vec<u8>> {
    vec![
        random_bytes(40_000, seed * 1000 + i),
        random_bytes(2000, seed * 1000 + i + 500),
        // shared by both writers: concurrent dedup of the same bytes
        random_bytes(30_000, i),
    ]
}

#[test]
#[ignore = "the writer process of two_processes_committing_concurrently_both_keep_every_snapshot"]
fn child_writer() {
    let store = Store::open(std::env::var(CHILD_STORE).expect("child store path")).unwrap();
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    for i in 0..COMMITS {
        let content = child_content(seed, i);
        let refs: Vec<&[u8]> = content.iter().map(Vec::as_slice).collect();
        commit(&store, &refs);
    }
}

fn spawn_writer(path: &Utf8PathBuf, seed: u64) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            "concurrency::child_writer",
            "--test-threads=1",
        ])
        .env(CHILD_STORE, path)
        .env(CHILD_SEED, seed.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn writer")
}

#[test]
fn two_processes_committing_concurrently_both_keep_every_snapshot() {
    let (_dir, store) = new_store();
    let path = store.root().to_owned();
    let children = [spawn_writer(&path, 1), spawn_writer(&path, 2)];
    for mut child in children {
        assert!(
            child.wait().expect("wait for writer").success(),
            "a writer failed"
        );
    }
    let snapshots = store.snapshots().unwrap();
    assert_eq!(snapshots.len() as u64, 2 * COMMITS);
    for seed in [1, 2] {
        for i in 0..COMMITS {
            for content in child_content(seed, i) {
                let d = store.digest_of(&content);
                assert_eq!(store.get(&d).unwrap(), Some(content));
            }
        }
    }
    assert!(store.verify(true).unwrap().is_clean());
    assert_eq!(store.gc().unwrap().blobs_removed, 0);
}

#[test]
fn two_handles_in_one_process_see_each_others_commits() {
    let (_dir, a) = new_store();
    let b = Store::open(a.root()).unwrap();
    let bytes = random_bytes(20_000, 70);
    let (id, d) = commit(&a, &[&bytes]);
    assert_eq!(b.latest().unwrap().map(|s| s.id), Some(id));
    assert_eq!(b.get(&d[0]).unwrap(), Some(bytes));
}
