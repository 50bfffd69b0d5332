//! Store micro-benchmarks, each beside its raw baseline measured in the same run.
//!
//! For every size (4 KiB, 1 MiB, 64 MiB) and kind of data (compressible float64 arrays modelled
//! on `shared/bench/gen_dataset.py`, and random bytes), one criterion group holds:
//!
//! - `raw_xxh3_128`, `raw_zstd_compress`, `raw_zstd_decompress`, `raw_write_fsync`: the limits;
//! - `put_commit_new`: a batch that puts new bytes and commits a snapshot (the full durable path);
//! - `put_dedup_hit`: a put of bytes the store already holds;
//! - `get`: a verified read.
//!
//! `python3 benches/report.py` turns criterion's medians into the table of docs/performance.md.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use autosave::store::{NewSnapshot, SnapshotKind, Store};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ZSTD_LEVEL: i32 = 3;

/// float64 little-endian values: the top 3 bytes follow a smooth signal (constant over 64
/// elements), the low 5 bytes are noise with the lowest one zeroed; zstd -3 gives about 1.9x,
/// like the generator's quantised arrays.
fn compressible(len: usize) -> Vec<u8> {
    let noise = random(len, 99);
    let mut out = vec![0u8; len];
    for (k, value) in out.chunks_mut(8).enumerate() {
        let step = (k / 64) as f64;
        let hi = (100.0 + 2.0 * (step * 1e-3).sin()).to_le_bytes();
        for (lane, byte) in value.iter_mut().enumerate() {
            *byte = match lane {
                0 => 0,
                1..=4 => noise[k * 8 + lane],
                _ => hi[lane],
            };
        }
    }
    out
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    autosave::sample::noise(len, seed)
}

fn bench_dir() -> tempfile::TempDir {
    // Under target/ rather than /tmp, which may be a RAM disk where fsync costs nothing.
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

fn utf8(dir: &tempfile::TempDir) -> &camino::Utf8Path {
    camino::Utf8Path::from_path(dir.path()).expect("UTF-8 temp dir")
}

/// Puts `bytes` and commits a snapshot of it.
fn put_commit(store: &Store, bytes: &[u8]) {
    let batch = store.batch().expect("batch");
    let digest = batch.put(bytes).expect("put").digest;
    let mut snapshot = NewSnapshot::new(SnapshotKind::Autosave, digest);
    snapshot.refs.clear();
    batch.commit(snapshot).expect("commit");
}

fn bench_size(c: &mut Criterion, size: usize, kind: &str, data: &[u8]) {
    let label = match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s => format!("{}KiB", s >> 10),
    };
    let mut group = c.benchmark_group(format!("store/{label}/{kind}"));
    group.throughput(Throughput::Bytes(size as u64));
    if size >= 1 << 20 {
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if size >= 64 << 20 { 20 } else { 5 }));
    }
    baselines(&mut group, data);
    store_paths(&mut group, data);
    group.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn baselines(group: &mut Group<'_>, data: &[u8]) {
    group.bench_function("raw_xxh3_128", |b| {
        b.iter(|| twox_hash::XxHash3_128::oneshot(black_box(data)))
    });
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd");
    group.bench_function("raw_zstd_compress", |b| {
        b.iter(|| compressor.compress(black_box(data)).expect("compress"))
    });
    let compressed = zstd::bulk::compress(data, ZSTD_LEVEL).expect("compress");
    let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd");
    group.bench_function("raw_zstd_decompress", |b| {
        b.iter(|| {
            decompressor
                .decompress(black_box(&compressed), data.len())
                .expect("decompress")
        })
    });
    let dir = bench_dir();
    let mut n = 0u64;
    group.bench_function("raw_write_fsync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let path = dir.path().join(format!("f{n}"));
                let start = Instant::now();
                #[expect(
                    clippy::disallowed_methods,
                    reason = "the raw baseline writes a file directly"
                )]
                let mut file = std::fs::File::create(&path).expect("create");
                file.write_all(data).expect("write");
                file.sync_all().expect("fsync");
                total += start.elapsed();
                std::fs::remove_file(&path).expect("remove");
            }
            total
        })
    });
}

fn store_paths(group: &mut Group<'_>, data: &[u8]) {
    let dir = bench_dir();
    let store = Store::open_or_create(utf8(&dir).join(".autosave")).expect("store");
    let mut fresh = data.to_vec();
    let mut n = 0u64;
    group.bench_function(BenchmarkId::from_parameter("put_commit_new"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                // New content every time: only the first 8 bytes change.
                fresh[..8].copy_from_slice(&n.to_le_bytes());
                let start = Instant::now();
                put_commit(&store, &fresh);
                total += start.elapsed();
                if n.is_multiple_of(8) {
                    clear(&store);
                }
            }
            total
        })
    });
    put_commit(&store, data);
    let digest = store.digest_of(data);
    let batch = store.batch().expect("batch");
    group.bench_function("put_dedup_hit", |b| {
        b.iter(|| assert!(!batch.put(black_box(data)).expect("put").new))
    });
    drop(batch);
    let reader = store.reader().expect("reader");
    group.bench_function("get", |b| {
        b.iter(|| reader.get(black_box(&digest)).expect("get"))
    });
}

/// Keeps the benchmark store small: drops all but the newest snapshot and collects garbage.
fn clear(store: &Store) {
    let mut ids: Vec<_> = store
        .snapshots()
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    ids.pop();
    store.delete_snapshots(&ids).expect("delete");
    store.gc().expect("gc");
}

fn benches(c: &mut Criterion) {
    for size in [4 << 10, 1 << 20, 64 << 20] {
        bench_size(c, size, "compressible", &compressible(size));
        bench_size(c, size, "random", &random(size, 7));
    }
}

criterion_group!(store, benches);
criterion_main!(store);
