//! Model-based test: random put/commit/delete/gc/reopen sequences against a `BTreeMap` model.

use std::collections::{BTreeMap, BTreeSet};

use autosave_store::{SnapshotId, Store};
use proptest::prelude::*;

use crate::{commit, compressible_bytes, new_store, random_bytes};

#[derive(Clone, Debug)]
enum Op {
    /// Commit a snapshot of these pool contents.
    Commit(Vec<usize>),
    /// Put these contents in a batch that is dropped.
    Abandon(Vec<usize>),
    /// Delete the n-th live snapshot (modulo the count).
    Delete(usize),
    Gc,
    Reopen,
}

/// A pool of contents spanning empty, inline, the inline boundary and file blobs.
fn pool() -> Vec<Vec<u8>> {
    let sizes = [0, 1, 100, 16 << 10, (16 << 10) + 1, 50_000, 300_000];
    let mut out = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        out.push(random_bytes(n, 1000 + i as u64));
        out.push(compressible_bytes(n, 2000 + i as u64));
    }
    out
}

fn op() -> impl Strategy<Value = Op> {
    let picks = || prop::collection::vec(0..14usize, 0..5);
    prop_oneof![
        4 => picks().prop_map(Op::Commit),
        1 => picks().prop_map(Op::Abandon),
        2 => any::<usize>().prop_map(Op::Delete),
        1 => Just(Op::Gc),
        1 => Just(Op::Reopen),
    ]
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    pool: Vec<Vec<u8>>,
    model: BTreeMap<SnapshotId, BTreeSet<usize>>,
}

impl Harness {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Commit(picks) => {
                let refs: Vec<&[u8]> = picks.iter().map(|&i| self.pool[i].as_slice()).collect();
                let (id, _) = commit(&self.store, &refs);
                self.model.insert(id, picks.iter().copied().collect());
            }
            Op::Abandon(picks) => {
                let batch = self.store.batch().unwrap();
                for &i in picks {
                    batch.put(&self.pool[i]).unwrap();
                }
            }
            Op::Delete(n) => {
                if let Some(&id) = self.model.keys().nth(n % self.model.len().max(1)) {
                    self.store.delete_snapshots(&[id]).unwrap();
                    self.model.remove(&id);
                }
            }
            Op::Gc => self.gc(),
            Op::Reopen => self.store = Store::open(self.store.root()).unwrap(),
        }
    }

    fn gc(&mut self) {
        match self.store.gc() {
            Ok(_) => {
                // Exactly the referenced contents remain (two pool entries may be equal bytes).
                let live: BTreeSet<&[u8]> = self
                    .model
                    .values()
                    .flatten()
                    .map(|&i| self.pool[i].as_slice())
                    .collect();
                for (i, content) in self.pool.iter().enumerate() {
                    let d = self.store.digest_of(content);
                    let expected = live.contains(content.as_slice());
                    assert_eq!(self.store.contains(&d).unwrap(), expected, "content {i}");
                }
            }
            Err(autosave_store::Error::GcRefused { .. }) => assert!(self.model.is_empty()),
            Err(e) => panic!("gc failed: {e}"),
        }
    }

    fn check(&self) {
        let ids: Vec<SnapshotId> = self
            .store
            .snapshots()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, self.model.keys().copied().collect::<Vec<_>>());
        for (id, picks) in &self.model {
            let refs: BTreeSet<_> = self.store.snapshot_refs(*id).unwrap().into_iter().collect();
            for &i in picks {
                let d = self.store.digest_of(&self.pool[i]);
                assert!(refs.contains(&d));
                assert_eq!(self.store.get(&d).unwrap().as_ref(), Some(&self.pool[i]));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_agree_with_the_model(ops in prop::collection::vec(op(), 1..25)) {
        let (dir, store) = new_store();
        let mut h = Harness { _dir: dir, store, pool: pool(), model: BTreeMap::new() };
        for op in &ops {
            h.apply(op);
            h.check();
        }
        prop_assert!(h.store.verify(true).unwrap().is_clean());
    }
}
