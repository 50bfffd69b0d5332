//! Stores a small generated project as two autosave snapshots, reopens the store, reads every
//! blob back (each read re-hashed), verifies the store and prints what it cost.
//!
//! Run: `cargo run --release --example quickstart` (a temporary store), or pass a directory to
//! keep the store there.

#![expect(clippy::print_stdout, reason = "an example reports to its user")]

use std::time::Instant;

use autosave::store::{NewSnapshot, SnapshotKind, Store};
use camino::Utf8PathBuf;

/// A node of the sample project: a name and its bytes.
struct Node {
    name: &'static str,
    bytes: Vec<u8>,
}

fn project(edit: u8) -> Vec<Node> {
    let signal: Vec<u8> = (0..2_000_000u32)
        .flat_map(|i| (100.0 + (f64::from(i) * 1e-4).sin()).to_le_bytes())
        .collect();
    let mut edited = signal.clone();
    edited[1_000_000..1_000_008].copy_from_slice(&[edit; 8]);
    let labels: Vec<u8> = (0..500_000u32)
        .flat_map(|i| (i / 1000 % 7).to_le_bytes())
        .collect();
    let table: String = (0..20_000)
        .map(|i| {
            format!(
                "{i},{:.4},{:.3}\n",
                300.0 + f64::from(i % 97) * 0.01,
                f64::from(i) * 0.5
            )
        })
        .collect();
    vec![
        Node {
            name: "arrays/signal.npy",
            bytes: edited,
        },
        Node {
            name: "arrays/labels.npy",
            bytes: labels,
        },
        Node {
            name: "tables/run.csv",
            bytes: table.into_bytes(),
        },
        Node {
            name: "scripts/fit.py",
            bytes: b"import numpy as np\nfit = np.polyfit(x, y, 3)\n".to_vec(),
        },
        Node {
            name: "notes/today.md",
            bytes: format!("edit number {edit}\n").into_bytes(),
        },
    ]
}

fn autosave(store: &Store, nodes: &[Node]) -> Result<(), autosave::store::Error> {
    let start = Instant::now();
    let batch = store.batch()?;
    let mut manifest = String::new();
    let mut refs = Vec::new();
    for node in nodes {
        let digest = batch.put(&node.bytes)?.digest;
        manifest.push_str(&format!("{digest} {}\n", node.name));
        refs.push(digest);
    }
    let root = batch.put_file(manifest.as_bytes())?.digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, root);
    snapshot.refs = refs;
    let commit = batch.commit(snapshot)?;
    let s = commit.stats;
    println!(
        "snapshot {:>2}: {} puts, {:>9} bytes in, {} new blobs, {:>9} bytes written, {:?}",
        commit.id,
        s.puts,
        s.bytes_put,
        s.new_blobs,
        s.bytes_written,
        start.elapsed()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = match std::env::args().nth(1) {
        Some(dir) => Utf8PathBuf::from(dir),
        None => Utf8PathBuf::try_from(temp.path().to_path_buf())?,
    };
    let path = dir.join(".autosave");
    let store = Store::open_or_create(&path)?;
    println!("store {path} (id {:032x})", store.format().store_id);
    autosave(&store, &project(1))?;
    println!("edit 8 bytes of one array, autosave again:");
    autosave(&store, &project(2))?;
    drop(store);

    let store = Store::open(&path)?;
    let latest = store.latest()?.ok_or("no snapshot")?;
    let mut bytes = 0;
    for digest in store.snapshot_refs(latest.id)? {
        bytes += store.get(&digest)?.ok_or("blob missing")?.len();
    }
    println!(
        "reopened: read back {bytes} bytes of snapshot {}, every blob re-hashed",
        latest.id
    );
    let report = store.verify(true)?;
    println!(
        "verify --read-data: {} blobs, {} bytes, damaged: {}",
        report.blobs_checked,
        report.bytes_read,
        report.damaged.len()
    );
    let stats = store.stats()?;
    println!(
        "stats: {} snapshots, {} blobs, logical {} B, unique {} B, stored {} B (dedup {:.2}x, compression {:.2}x)",
        stats.snapshots,
        stats.blobs,
        stats.logical_bytes,
        stats.unique_bytes,
        stats.stored_bytes,
        stats.dedup_ratio(),
        stats.compression_ratio()
    );
    Ok(())
}
