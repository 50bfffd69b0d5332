use std::collections::BTreeMap;

use autosave_tree::{Change, ChangeCache, EntryPath, Manifest, Meta, Node, diff};
use proptest::prelude::*;

use crate::{autosave, new_store, random_bytes};

type Tree = BTreeMap<Vec<String>, (u8, Vec<u8>)>;

fn tree() -> impl Strategy<Value = Tree> {
    let key = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned())
    ];
    let content = (0..3u64, 0..200usize).prop_map(|(seed, n)| random_bytes(n, seed));
    prop::collection::btree_map(prop::collection::vec(key, 1..3), (0..2u8, content), 0..8)
}

fn manifest(store: &autosave_store::Store, t: &Tree) -> Manifest {
    let nodes: Vec<Node<'_>> = t
        .iter()
        .map(|(p, (m, bytes))| {
            Node::bytes(EntryPath::new(p.iter().cloned()), "x", bytes)
                .with_meta(Meta::from(i64::from(*m)))
        })
        .collect();
    (*autosave(store, &mut ChangeCache::new(), &nodes).entries).clone()
}

/// Applies `changes` to `a`, taking new entries from `b`.
fn apply(a: &Manifest, changes: &[Change], b: &Manifest) -> Manifest {
    let mut entries: BTreeMap<EntryPath, _> = a
        .entries()
        .iter()
        .map(|e| (e.path.clone(), e.clone()))
        .collect();
    for change in changes {
        match change {
            Change::Removed { path, .. } => {
                entries.remove(path);
            }
            Change::Added { path, .. } | Change::Modified { path, .. } => {
                entries.insert(
                    path.clone(),
                    b.get(path).expect("changed entry is in b").clone(),
                );
            }
        }
    }
    Manifest::new(entries.into_values().collect()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn applying_a_diff_turns_a_into_b(a in tree(), b in tree()) {
        let (_dir, store) = new_store();
        let (ma, mb) = (manifest(&store, &a), manifest(&store, &b));
        let changes = diff(&ma, &mb);
        prop_assert_eq!(apply(&ma, &changes, &mb), mb.clone());
        prop_assert!(diff(&ma, &ma).is_empty());
        prop_assert_eq!(changes.is_empty(), ma == mb);
    }
}

#[test]
fn a_diff_names_added_removed_and_modified_paths_with_sizes() {
    let (_dir, store) = new_store();
    let a: Tree = [
        (vec!["same".into()], (0, vec![1; 10])),
        (vec!["gone".into()], (0, vec![2; 20])),
        (vec!["edit".into()], (0, vec![3; 30])),
        (vec!["meta".into()], (0, vec![4; 40])),
    ]
    .into_iter()
    .collect();
    let b: Tree = [
        (vec!["same".into()], (0, vec![1; 10])),
        (vec!["new".into()], (0, vec![5; 50])),
        (vec!["edit".into()], (0, vec![6; 31])),
        (vec!["meta".into()], (1, vec![4; 40])),
    ]
    .into_iter()
    .collect();
    let changes = diff(&manifest(&store, &a), &manifest(&store, &b));
    let p = |s: &str| EntryPath::new([s]);
    assert_eq!(
        changes,
        vec![
            Change::Modified {
                path: p("edit"),
                old_len: 30,
                new_len: 31,
                content: true,
                meta: false
            },
            Change::Removed {
                path: p("gone"),
                len: 20
            },
            Change::Modified {
                path: p("meta"),
                old_len: 40,
                new_len: 40,
                content: false,
                meta: true
            },
            Change::Added {
                path: p("new"),
                len: 50
            },
        ]
    );
}
