//! The machine's limits for the paths a snapshot takes, measured on real data: the program
//! `benches/compare.py` runs beside its peer comparison, so the autosave rows can be read as a
//! fraction of what the hardware allows.
//!
//! Run: `cargo bench --bench limits -- --data DIR [--scratch DIR] [--max-mib 512]`. Reads the
//! files under `DIR` (sorted by path, `.autosave` and `.git` skipped) into one buffer of at most
//! `--max-mib` MiB and prints one JSON document on stdout with throughputs in bytes per second:
//!
//! - `xxh3_128`: XXH3-128 as the store computes it (`xxhash-rust`, whose SIMD width is fixed
//!   at compile time), over 16 MiB segments in parallel on every core, on one core, and on one
//!   core over a 256 KiB block that stays in cache (the SIMD path's speed without the memory's);
//! - `xxh3_128_dispatched`: the same digests from `twox-hash`, which picks AVX2 or SSE2 when
//!   it runs; every segment's digest is checked equal to the store's;
//! - `zstd`: compression and decompression at the store's default zstd level over segments the
//!   size of its average chunk, in parallel, and the compression ratio of the data;
//!   `zstd_store_window`: the same with the store's smaller window
//!   (`autosave::store::ZSTD_WINDOW_LOG`), which its compressor uses;
//! - `write_fsync`: one sequential file of up to 256 MiB written and fsynced in `--scratch`
//!   (default `DIR`'s parent), which should be on the same filesystem as the repositories;
//! - `stat_walk`: seconds to list every directory under `DIR` and lstat every entry, as any
//!   snapshot that notices in-place edits must (an edit through `mmap` shows only in the file's
//!   stat), on one thread and on every core: the median of seven warm walks each. It is the
//!   floor of a no-change snapshot, before the cost of starting a process;
//! - `write_files_fsync`: every file under `DIR` (all of them, whatever `--max-mib`), held in
//!   memory, written into a new directory in `--scratch` as a durable restore writes them: on
//!   eight threads, each to a temp file, its writeback started as it is written, its pages on
//!   the disk dropped from the page cache every 16 MiB and after its fsync, renamed, then every
//!   directory fsynced; best of two. It estimates the floor of a durable
//!   restore, which has the same files to make durable and decompression besides. The whole
//!   dataset is held in memory for it (about 1 GiB at scale 1.0). With `--keep-written` the two
//!   written trees stay (their paths are in `written_trees`) for the caller to remove later:
//!   removing thousands of files slows the next file creations on ext4 without a journal.
//!
//! `.autosave`, `.git` and the generator's `.complete` marker are skipped everywhere.

#![expect(
    clippy::print_stdout,
    reason = "a benchmark program reports to its user"
)]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot run has nothing to report"
)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

const MIB: usize = 1 << 20;
const HASH_SEGMENT: usize = 16 * MIB;
const WRITE_MAX: usize = 256 * MIB;
/// A block that stays in a core's L2 cache: hashing it over and over shows the SIMD width's
/// speed apart from memory bandwidth.
const IN_CACHE: usize = 256 << 10;

fn main() {
    let args = Args::parse();
    let buf = load(&args.data, args.max_bytes);
    assert!(!buf.is_empty(), "no data under {}", args.data.display());
    let store = autosave::store::Options::default();
    let zstd_segment = autosave::store::ChunkParams::default().avg as usize;
    let doc = json!({
        "bytes": buf.len(),
        "threads": rayon::current_num_threads(),
        "xxh3_simd_compiled": compiled_simd(),
        "avx2_detected": avx2_detected(),
        "xxh3_128": hash_limits(&buf, xxhash_rust::xxh3::xxh3_128),
        "xxh3_128_dispatched": dispatched_limits(&buf),
        "zstd_level": store.zstd_level,
        "zstd": zstd_limits(&buf, zstd_segment, store.zstd_level, None),
        "zstd_store_window": zstd_limits(
            &buf,
            zstd_segment,
            store.zstd_level,
            Some(autosave::store::ZSTD_WINDOW_LOG)
        ),
        "write_fsync": write_limit(&buf, &args.scratch),
        "stat_walk": stat_walk_limit(&args.data),
        "write_files_fsync": write_files_limit(&args.data, &args.scratch, args.keep_written),
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}

struct Args {
    data: PathBuf,
    scratch: PathBuf,
    max_bytes: usize,
    keep_written: bool,
}

impl Args {
    /// Flags this program does not know (`cargo bench` adds `--bench`) are ignored.
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag)?;
            args.get(i + 1).cloned()
        };
        let data = PathBuf::from(value("--data").expect("--data DIR is required"));
        let scratch = value("--scratch").map_or_else(
            || data.parent().unwrap_or(Path::new(".")).to_path_buf(),
            PathBuf::from,
        );
        let max_mib: usize = value("--max-mib").map_or(512, |v| v.parse().unwrap());
        Self {
            data,
            scratch,
            max_bytes: max_mib * MIB,
            keep_written: args.iter().any(|a| a == "--keep-written"),
        }
    }
}

/// The files under `dir` in path order, concatenated, up to `max` bytes.
fn load(dir: &Path, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for path in files(dir) {
        if buf.len() >= max {
            break;
        }
        let bytes = std::fs::read(&path).unwrap();
        let take = bytes.len().min(max - buf.len());
        buf.extend_from_slice(&bytes[..take]);
    }
    buf
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if skipped(&entry.file_name()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(files(&entry.path()));
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// Names the measurements pass over: stores, repositories and the generator's marker.
fn skipped(name: &std::ffi::OsStr) -> bool {
    name == ".autosave" || name == ".git" || name == ".complete"
}

/// The widest SIMD path `xxhash-rust` was compiled for (it selects one with `cfg`).
fn compiled_simd() -> &'static str {
    if cfg!(target_feature = "avx512f") {
        "avx512"
    } else if cfg!(target_feature = "avx2") {
        "avx2"
    } else if cfg!(any(target_feature = "sse2", target_feature = "neon")) {
        "sse2/neon"
    } else {
        "scalar"
    }
}

fn avx2_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Bytes per second of `hash` over 16 MiB segments, on all cores and on one.
fn hash_limits(buf: &[u8], hash: fn(&[u8]) -> u128) -> serde_json::Value {
    let segments: Vec<&[u8]> = buf.chunks(HASH_SEGMENT).collect();
    let parallel = best_of(5, || {
        segments.par_iter().for_each(|s| {
            std::hint::black_box(hash(s));
        });
    });
    let one_core = best_of(3, || {
        for s in &segments {
            std::hint::black_box(hash(s));
        }
    });
    let block = &buf[..buf.len().min(IN_CACHE)];
    let rounds = (1 << 30) / block.len();
    let in_cache = best_of(3, || {
        for _ in 0..rounds {
            std::hint::black_box(hash(std::hint::black_box(block)));
        }
    });
    json!({
        "parallel": rate(buf.len(), parallel),
        "one_core": rate(buf.len(), one_core),
        "one_core_in_cache": rate(block.len() * rounds, in_cache),
    })
}

fn twox_xxh3_128(bytes: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(bytes)
}

/// The runtime-dispatched hasher's limits, after checking that it gives the store's digests.
fn dispatched_limits(buf: &[u8]) -> serde_json::Value {
    let equal = buf
        .chunks(HASH_SEGMENT)
        .chain((0..=4096).step_by(7).map(|n| &buf[..n.min(buf.len())]))
        .all(|s| twox_xxh3_128(s) == xxhash_rust::xxh3::xxh3_128(s));
    assert!(
        equal,
        "twox-hash and xxhash-rust disagree on an XXH3-128 digest"
    );
    let mut limits = hash_limits(buf, twox_xxh3_128);
    limits["digests_equal"] = json!(equal);
    limits
}

/// Parallel compression and decompression of `segment`-sized pieces at `level`, with zstd's
/// window for that level or `window_log`.
fn zstd_limits(
    buf: &[u8],
    segment: usize,
    level: i32,
    window_log: Option<u32>,
) -> serde_json::Value {
    let pieces: Vec<&[u8]> = buf.chunks(segment).collect();
    let mut frames = Vec::new();
    let compress = best_of(2, || {
        frames = pieces
            .par_iter()
            .map(|p| {
                let mut z = zstd::bulk::Compressor::new(level).unwrap();
                if let Some(w) = window_log {
                    z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(w))
                        .unwrap();
                }
                z.compress(p).unwrap()
            })
            .collect();
    });
    let decompress = best_of(3, || {
        frames.par_iter().for_each(|f| {
            std::hint::black_box(zstd::bulk::decompress(f, segment).unwrap());
        });
    });
    let compressed: usize = frames.iter().map(Vec::len).sum();
    json!({
        "segment": segment,
        "compress": rate(buf.len(), compress),
        "decompress": rate(buf.len(), decompress),
        "ratio": buf.len() as f64 / compressed as f64,
    })
}

/// One sequential file written and fsynced in `dir`, best of two.
fn write_limit(buf: &[u8], dir: &Path) -> serde_json::Value {
    let data = &buf[..buf.len().min(WRITE_MAX)];
    let path = dir.join(format!("limits-write-{}.bin", std::process::id()));
    let secs = best_of(2, || {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    });
    std::fs::remove_file(&path).unwrap();
    json!({ "bytes": data.len(), "rate": rate(data.len(), secs) })
}

/// The files under `dir` written durably into new directories in `scratch`, as a restore writes
/// them; best of two, both trees removed afterwards (removing the first before the second run
/// would slow its file creation: ext4 scans recently freed inodes).
fn write_files_limit(dir: &Path, scratch: &Path, keep: bool) -> serde_json::Value {
    let files: Vec<(PathBuf, Vec<u8>)> = files(dir)
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let bytes = std::fs::read(&path).unwrap();
            (rel, bytes)
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut outs = Vec::new();
    let secs = best_of(2, || {
        let out = scratch.join(format!(
            "limits-files-{}-{}",
            std::process::id(),
            outs.len()
        ));
        write_files_durably(&files, &out);
        outs.push(out);
    });
    if !keep {
        for out in &outs {
            std::fs::remove_dir_all(out).unwrap();
        }
    }
    json!({
        "files": files.len(),
        "bytes": bytes,
        "rate": rate(bytes, secs),
        "written_trees": if keep { outs } else { Vec::new() },
    })
}

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark of the disk, outside the store and its commit protocol"
)]
fn write_files_durably(files: &[(PathBuf, Vec<u8>)], out: &Path) {
    let mut dirs = std::collections::BTreeSet::from([out.to_path_buf()]);
    for (rel, _) in files {
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(out.join(p));
            parent = p.parent();
        }
    }
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    pool.install(|| {
        files.par_iter().enumerate().for_each(|(i, (rel, bytes))| {
            let path = out.join(rel);
            let temp = path.with_file_name(format!(".limits-tmp-{i}"));
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .unwrap();
            let mut at = 0;
            for part in bytes.chunks(MIB) {
                f.write_all(part).unwrap();
                start_writeback(&f, at, part.len());
                at += part.len();
                if at % DROP_EVERY == 0 {
                    drop_clean_pages(&f);
                }
            }
            f.sync_all().unwrap();
            if bytes.len() >= WRITEBACK_MIN {
                drop_clean_pages(&f);
            }
            std::fs::rename(&temp, &path).unwrap();
        });
    });
    for d in dirs.iter().rev() {
        std::fs::File::open(d).unwrap().sync_all().unwrap();
    }
}

/// As the restore does (`posix_fadvise(DONTNEED)` starts the range's writeback).
#[cfg(target_os = "linux")]
fn start_writeback(f: &std::fs::File, at: usize, len: usize) {
    if let Some(len) = std::num::NonZeroU64::new(len as u64) {
        let _ = rustix::fs::fadvise(f, at as u64, Some(len), rustix::fs::Advice::DontNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_f: &std::fs::File, _at: usize, _len: usize) {}

/// As the restore does every 16 MiB of a file and after the fsync of a file of 256 KiB or more
/// (`posix_fadvise(DONTNEED)` over the whole file drops the pages on the disk already, so the
/// next ones reuse them).
const DROP_EVERY: usize = 16 * MIB;

/// The restore leaves files smaller than this in the page cache after their fsync.
const WRITEBACK_MIN: usize = 256 << 10;

#[cfg(target_os = "linux")]
fn drop_clean_pages(f: &std::fs::File) {
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
}

#[cfg(not(target_os = "linux"))]
fn drop_clean_pages(_f: &std::fs::File) {}

/// Every directory under `dir` listed and every entry lstat'ed (relative to its directory, as
/// `std::fs::DirEntry::metadata` does), warm: median seconds of seven walks on one thread and of
/// seven with one task per directory on every core.
fn stat_walk_limit(dir: &Path) -> serde_json::Value {
    let entries = walk_one(dir);
    let one_thread = median_of(7, || {
        assert_eq!(walk_one(dir), entries);
    });
    let parallel = median_of(7, || {
        let n = std::sync::atomic::AtomicUsize::new(0);
        rayon::scope(|s| walk_par(s, dir.to_path_buf(), &n));
        assert_eq!(n.into_inner(), entries);
    });
    json!({ "entries": entries, "one_thread_s": one_thread, "parallel_s": parallel })
}

/// Lists `dir` and lstats each of its entries; hands each subdirectory to `subdir` and returns
/// how many entries there were.
fn lstat_entries(dir: &Path, mut subdir: impl FnMut(PathBuf)) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if skipped(&entry.file_name()) {
            continue;
        }
        n += 1;
        if entry.metadata().unwrap().is_dir() {
            subdir(entry.path());
        }
    }
    n
}

fn walk_one(dir: &Path) -> usize {
    let mut below = 0;
    let here = lstat_entries(dir, |sub| below += walk_one(&sub));
    here + below
}

fn walk_par<'s>(s: &rayon::Scope<'s>, dir: PathBuf, n: &'s std::sync::atomic::AtomicUsize) {
    let here = lstat_entries(&dir, |sub| s.spawn(move |s| walk_par(s, sub, n)));
    n.fetch_add(here, std::sync::atomic::Ordering::Relaxed);
}

/// Median of `n` runs, in seconds.
fn median_of(n: usize, f: impl FnMut()) -> f64 {
    let mut times = seconds_of(n, f);
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn rate(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs
}

/// Fastest of `n` runs, in seconds.
fn best_of(n: usize, f: impl FnMut()) -> f64 {
    seconds_of(n, f).into_iter().fold(f64::MAX, f64::min)
}

/// The seconds each of `n` runs of `f` took.
fn seconds_of(n: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect()
}
