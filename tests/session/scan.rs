use autosave::{Options, Session, scan};
use camino::{Utf8Path, Utf8PathBuf};

use crate::HostTree;

/// Every file under `dir`, sorted.
pub(crate) fn files(dir: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = Utf8PathBuf::try_from(entry.unwrap().path()).unwrap();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn scan_lists_orphans_and_never_live_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Utf8Path::from_path(tmp.path()).unwrap();
    let (crashed, saved, live) = (base.join("crashed"), base.join("saved"), base.join("live"));
    let mut tree = HostTree::sample(30);

    let mut s = Session::open(&crashed, Options::default()).unwrap();
    s.save_explicit(&tree.nodes()).unwrap();
    tree.set(&["notes"], "note", b"unsaved".to_vec());
    s.autosave(&tree.nodes()).unwrap();
    drop(s);
    let mut s = Session::open(&saved, Options::default()).unwrap();
    s.save_explicit(&tree.nodes()).unwrap();
    drop(s);
    let mut live_session = Session::open(&live, Options::default()).unwrap();
    live_session.autosave(&tree.nodes()).unwrap();

    let orphans = scan(base).unwrap();
    let found: Vec<(String, bool)> = orphans
        .iter()
        .map(|o| {
            (
                o.store_dir.strip_prefix(base).unwrap().to_string(),
                o.recoverable,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("crashed/.autosave".to_owned(), true),
            ("saved/.autosave".to_owned(), false)
        ]
    );
    assert!(orphans[0].stored_bytes > 0);
    assert!(orphans[0].age_ns().unwrap() >= 0);

    // Discarding takes the claim first; it clears the unsaved autosave.
    orphans[0].discard().unwrap();
    assert!(!scan(base).unwrap()[0].recoverable);
    drop(live_session);
    assert_eq!(
        scan(base).unwrap().len(),
        3,
        "a session that ended is no longer live"
    );
}

#[test]
fn discarding_an_orphan_that_came_alive_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Utf8Path::from_path(tmp.path()).unwrap();
    let mut s = Session::open(base.join("p"), Options::default()).unwrap();
    s.autosave(&HostTree::sample(31).nodes()).unwrap();
    drop(s);
    let orphans = scan(base).unwrap();
    let _revived = Session::open(base.join("p"), Options::default()).unwrap();
    assert!(matches!(
        orphans[0].discard(),
        Err(autosave::Error::Locked { .. })
    ));
}
