//! Progress of snapshots and restores, counted per entry with the store's [`Meter`].

use autosave_store::{Meter, Progress};
use rayon::prelude::*;

use crate::node::{Node, Source};

/// Counts a snapshot's entries as they finish, each with the bytes it weighs: bytes lent by the
/// host by their length, files by their size when the snapshot starts, readers as 0 (their
/// length is unknown until read).
pub(crate) struct Entries<'p> {
    meter: Meter<'p>,
    weights: Vec<u64>,
}

impl<'p> Entries<'p> {
    /// Starts counting `nodes`; the files are looked at (once more) only when someone listens.
    pub(crate) fn start(progress: &'p Progress, nodes: &[Node<'_>]) -> Self {
        let weights: Vec<u64> = if progress.is_active() {
            nodes.par_iter().map(weight).collect()
        } else {
            Vec::new()
        };
        let meter = progress.start(nodes.len() as u64, weights.iter().sum());
        Self { meter, weights }
    }

    /// The entry `nodes[index]` is done.
    pub(crate) fn done(&self, index: usize) {
        self.meter
            .advance(1, self.weights.get(index).copied().unwrap_or(0));
    }
}

fn weight(node: &Node<'_>) -> u64 {
    match &node.source {
        Source::Bytes(bytes) => bytes.len() as u64,
        Source::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
        Source::FileWithStat { stat, .. } => stat.size,
        Source::Reader(_) => 0,
    }
}
