//! Writing a snapshot of a tree: change detection, parallel ingest, manifest, commit.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosave_store::{
    Batch, ChunkParams, Digest, NewSnapshot, Progress, SnapshotId, SnapshotKind, Store, now_ns,
};
use rayon::prelude::*;

use crate::cache::{Cached, ChangeCache, FileStat};
use crate::error::Result;
use crate::ingest;
use crate::manifest::{Content, Manifest, ManifestEntry};
use crate::node::{Node, Source};
use crate::path::EntryPath;
use crate::progress;
use crate::resync::{self, FileData};

/// What to record with a snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    /// Autosave or explicit save.
    pub kind: SnapshotKind,
    /// Host label.
    pub label: String,
    /// Host metadata (stored verbatim in the snapshot record).
    pub meta: String,
    /// The snapshot this one follows.
    pub parent: Option<SnapshotId>,
    /// Commit nothing if the manifest turns out to be this one (typically the newest
    /// snapshot's): the tree has not changed. (Unless the snapshot stored blobs the store no
    /// longer held: then it commits, so that they stay.)
    pub unless_manifest: Option<Digest>,
    /// Where to report entries processed of the nodes, with bytes: lent bytes by their length,
    /// files by their size when the snapshot starts (looked up only when a callback listens),
    /// readers as 0. An entry counts when it is stored, skipped or found unreadable.
    pub progress: Progress,
}

impl SnapshotSpec {
    /// A spec of `kind` with no label, metadata, parent, skip condition or progress.
    pub fn new(kind: SnapshotKind) -> Self {
        Self {
            kind,
            label: String::new(),
            meta: String::new(),
            parent: None,
            unless_manifest: None,
            progress: Progress::none(),
        }
    }
}

/// An entry that could not be read; it is left out of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// The entry.
    pub path: EntryPath,
    /// What went wrong.
    pub error: String,
}

/// A truthful account of one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Entries the host handed in.
    pub entries: u64,
    /// Entries whose version token was unchanged: not read at all.
    pub skipped_token: u64,
    /// File entries whose status was unchanged: not read at all.
    pub skipped_stat: u64,
    /// Entries whose content was read and hashed.
    pub hashed: u64,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
    /// Blobs the store did not have (including the manifest and the snapshot record).
    pub new_blobs: u64,
    /// Bytes written for them (compressed, with headers).
    pub bytes_written: u64,
    /// Wall time of the whole snapshot.
    pub duration: Duration,
    /// Entries that could not be read, left out of the snapshot.
    pub errors: Vec<EntryError>,
}

/// The outcome of [`write_snapshot`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Written {
    /// The new snapshot, or `None` if [`SnapshotSpec::unless_manifest`] matched.
    pub snapshot: Option<SnapshotId>,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest itself.
    pub entries: Arc<Manifest>,
    /// What it cost.
    pub report: Report,
}

/// How one entry was handled.
enum Outcome {
    Token,
    Stat,
    Hashed(u64),
}

/// What became of one node.
enum Processed<'c> {
    /// Found exactly as the cache remembers its path (by token, by status, or lent bytes hashed
    /// to the remembered content): nothing is copied unless the tree turns out to have changed
    /// elsewhere.
    Same { hit: &'c Cached, outcome: Outcome },
    /// A new memory of the path.
    New { cached: Cached, outcome: Outcome },
}

impl Processed<'_> {
    fn outcome(&self) -> &Outcome {
        match self {
            Self::Same { outcome, .. } | Self::New { outcome, .. } => outcome,
        }
    }

    /// The path's manifest entry.
    fn entry(&self, node: &Node<'_>) -> ManifestEntry {
        match self {
            Self::Same { hit, .. } => entry(node, hit),
            Self::New { cached, .. } => entry(node, cached),
        }
    }

    /// The path's manifest entry and its memory for the cache.
    fn into_parts(self, node: &Node<'_>) -> (ManifestEntry, Cached) {
        let cached = match self {
            Self::Same { hit, .. } => hit.clone(),
            Self::New { cached, .. } => cached,
        };
        (entry(node, &cached), cached)
    }
}

struct Ctx<'a, 's> {
    batch: &'a Batch<'s>,
    cache: &'a ChangeCache,
    chunking: ChunkParams,
    started_ns: i64,
}

/// Snapshots `nodes` into `store`, reading only what `cache` cannot vouch for, and updates the
/// cache once the snapshot is durable.
///
/// Entries that cannot be read are reported and left out; a store error fails the whole
/// snapshot, and nothing is recorded. Two nodes with one path are
/// [`crate::Error::DuplicatePath`].
pub fn write_snapshot(
    store: &Store,
    cache: &mut ChangeCache,
    nodes: &[Node<'_>],
    spec: &SnapshotSpec,
) -> Result<Written> {
    let start = Instant::now();
    cache.bind(store.format().store_id);
    let batch = store.batch()?;
    let ctx = Ctx {
        batch: &batch,
        cache,
        chunking: store.format().chunking,
        started_ns: now_ns(),
    };
    let meter = progress::Entries::start(&spec.progress, nodes);
    let results = nodes
        .par_iter()
        .enumerate()
        .map(|(i, n)| {
            let processed = process(&ctx, n);
            meter.done(i);
            processed
        })
        .collect::<Result<Vec<_>>>()?;
    let mut report = Report {
        entries: nodes.len() as u64,
        ..Report::default()
    };
    let hits = distinct_hits(&results);
    // (Not when it stored blobs, or the store lost the manifest: see `stands_for_skipped`.)
    if batch.stats().new_blobs == 0
        && let Some(unchanged) = unchanged_tree(cache, hits, results.len(), spec)
        && batch.contains(&unchanged.manifest)?
    {
        for p in results.iter().flatten() {
            count(&mut report, p.outcome());
        }
        report.duration = start.elapsed();
        return Ok(unchanged.with_report(report));
    }
    // Every remembered path found exactly as remembered (a new process has no manifest of the
    // last snapshot in memory, so the tree is built): the cache stays as it is.
    let cache_current = hits == Some(cache.len());
    let mut entries = Vec::with_capacity(nodes.len());
    let mut seen = HashMap::with_capacity(if cache_current { 0 } else { nodes.len() });
    for (node, result) in nodes.iter().zip(results) {
        match result {
            Ok(p) => {
                count(&mut report, p.outcome());
                if cache_current {
                    entries.push(p.entry(node));
                } else {
                    let (entry, cached) = p.into_parts(node);
                    seen.insert(entry.path.clone(), cached);
                    entries.push(entry);
                }
            }
            Err(e) => report.errors.push(e),
        }
    }
    let manifest = Arc::new(Manifest::new(entries)?);
    let encoded = manifest.encode();
    let digest = store.digest_of(&encoded);
    let snapshot = if stands_for_skipped(&batch, spec, &digest, &manifest)? {
        None
    } else {
        Some(commit(batch, &encoded, &manifest, spec, &mut report)?)
    };
    if cache_current {
        cache.set_last((digest, manifest.clone()));
    } else {
        cache.replace(seen, (digest, manifest.clone()));
    }
    report.duration = start.elapsed();
    Ok(Written {
        snapshot,
        manifest: digest,
        entries: manifest,
        report,
    })
}

/// Whether a tree whose manifest is `digest` needs no commit: it is the manifest to skip
/// ([`SnapshotSpec::unless_manifest`]), the store still holds that manifest, and this batch
/// stored none of the blobs it references that the store lacked. Bytes the store had lost (their rows forgotten after
/// their files went missing, or lost with a damaged index) and this batch stored again must be
/// committed: an uncommitted batch leaves them unindexed, and every snapshot that needs them
/// damaged. (Blobs of an entry left out, such as a file that changed while it was read, do not
/// count.)
fn stands_for_skipped(
    batch: &Batch<'_>,
    spec: &SnapshotSpec,
    digest: &Digest,
    manifest: &Manifest,
) -> Result<bool> {
    // Asked of the index itself: the batch's cache of known digests does not see what another
    // process committed since it was loaded, such as the newest snapshot.
    let store = batch.store();
    if spec.unless_manifest != Some(*digest) || !store.contains(digest)? {
        return Ok(false);
    }
    if batch.stats().new_blobs == 0 {
        return Ok(true);
    }
    for blob in manifest.blobs() {
        if batch.stored(&blob) && !store.contains(&blob)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// When every node was found unchanged without reading it, the tree is the one the cache last
/// wrote: if that is the manifest to skip, nothing needs building, encoding or committing.
/// `hits` is [`distinct_hits`] of the `nodes` results.
fn unchanged_tree(
    cache: &ChangeCache,
    hits: Option<usize>,
    nodes: usize,
    spec: &SnapshotSpec,
) -> Option<Written> {
    let (digest, manifest) = cache.last_manifest()?;
    // Every node hit a distinct remembered path, as many as the manifest has: the same tree.
    if spec.unless_manifest != Some(*digest)
        || hits != Some(nodes)
        || nodes != manifest.entries().len()
    {
        return None;
    }
    Some(Written {
        snapshot: None,
        manifest: *digest,
        entries: manifest.clone(),
        report: Report::default(),
    })
}

/// When every node was found exactly as the cache remembers it, each under a path of its own:
/// how many. Each remembered path has one memory, so distinct memories mean distinct paths.
fn distinct_hits(results: &[std::result::Result<Processed<'_>, EntryError>]) -> Option<usize> {
    let mut hits = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(Processed::Same { hit, .. }) => hits.push(std::ptr::from_ref::<Cached>(hit)),
            _ => return None,
        }
    }
    hits.sort_unstable();
    hits.windows(2).all(|w| w[0] != w[1]).then_some(hits.len())
}

impl Written {
    fn with_report(mut self, report: Report) -> Self {
        self.report = report;
        self
    }
}

fn count(report: &mut Report, outcome: &Outcome) {
    match outcome {
        Outcome::Token => report.skipped_token += 1,
        Outcome::Stat => report.skipped_stat += 1,
        Outcome::Hashed(n) => {
            report.hashed += 1;
            report.bytes_hashed += n;
        }
    }
}

fn commit(
    batch: Batch<'_>,
    encoded: &[u8],
    manifest: &Manifest,
    spec: &SnapshotSpec,
    report: &mut Report,
) -> Result<SnapshotId> {
    // Manifests are always files, so a lost index can be rebuilt from objects/.
    let root = batch.put_file(encoded)?.digest;
    let mut snapshot = NewSnapshot::new(spec.kind, root);
    snapshot.label.clone_from(&spec.label);
    snapshot.meta.clone_from(&spec.meta);
    snapshot.parent = spec.parent;
    snapshot.refs = manifest.blobs();
    let commit = batch.commit(snapshot)?;
    report.new_blobs = commit.stats.new_blobs;
    report.bytes_written = commit.stats.bytes_written;
    Ok(commit.id)
}

type Processing<'c> = Result<std::result::Result<Processed<'c>, EntryError>>;

/// Handles one node. The outer error (a store failure) fails the snapshot; the inner one (the
/// node cannot be read) skips the node.
fn process<'c>(ctx: &Ctx<'c, '_>, node: &Node<'_>) -> Processing<'c> {
    let meta = node.meta.to_canonical_json();
    if let Some(token) = node.token
        && let Some(hit) = ctx.cache.by_token(&node.path, token)
        && holds(ctx.batch, &hit.content)?
    {
        return Ok(Ok(reuse(node, meta, hit, None, Outcome::Token)));
    }
    let content = match &node.source {
        Source::Bytes(bytes) => return lent(ctx, node, meta, bytes),
        Source::File(path) => return file(ctx, node, meta, path, None),
        Source::FileWithStat { path, stat } => return file(ctx, node, meta, path, Some(stat)),
        Source::Reader(open) => {
            match open().and_then(|r| ingest::reader(ctx.batch, r, &ctx.chunking, None)) {
                Ok(content) => content?,
                Err(e) => return Ok(Err(entry_error(node, &e))),
            }
        }
    };
    Ok(Ok(fresh(ctx, node, meta, content, None, None)))
}

/// Bytes lent by the host. Large content is hashed whole first: if it equals what the cache
/// remembers for the path, the chunk list is reused without chunking again.
fn lent<'c>(ctx: &Ctx<'c, '_>, node: &Node<'_>, meta: String, bytes: &[u8]) -> Processing<'c> {
    if (bytes.len() as u64) <= ctx.chunking.threshold {
        let content = ingest::bytes(ctx.batch, bytes, &ctx.chunking)?;
        return Ok(Ok(hashed(ctx, node, meta, content)));
    }
    if let Some(old) = ctx.cache.chunks_of(&node.path) {
        let content = match resync::resync(ctx.batch, &bytes, old, &ctx.chunking) {
            Ok(content) => content?,
            Err(e) => return Ok(Err(entry_error(node, &e))),
        };
        return Ok(Ok(hashed(ctx, node, meta, content)));
    }
    let whole = whole_digest(ctx.batch.store(), bytes);
    if let Some(hit) = ctx.cache.by_whole(&node.path, whole)
        && holds(ctx.batch, &hit.content)?
    {
        let outcome = Outcome::Hashed(bytes.len() as u64);
        return Ok(Ok(reuse(node, meta, hit, None, outcome)));
    }
    let content = ingest::bytes(ctx.batch, bytes, &ctx.chunking)?;
    Ok(Ok(fresh(ctx, node, meta, content, None, Some(whole))))
}

/// Lent bytes just hashed and stored as `content`. If the cache remembers exactly that for the
/// path (same content, kind, metadata and token, and no file status), the memory stands
/// ([`Processed::Same`]): a tree hashed whole and found unchanged is then taken for the manifest
/// the cache last wrote, as a tree found unchanged by tokens is, instead of being built, encoded
/// and hashed again. The content was just put, so the store holds it.
fn hashed<'c>(ctx: &Ctx<'c, '_>, node: &Node<'_>, meta: String, content: Content) -> Processed<'c> {
    if let Some(hit) = ctx.cache.get(&node.path)
        && hit.content == content
        && remembered_as(hit, node, &meta, None, recorded_ns(None, ctx.started_ns))
    {
        return Processed::Same {
            hit,
            outcome: Outcome::Hashed(content.len()),
        };
    }
    fresh(ctx, node, meta, content, None, None)
}

/// A cache key for large content: the digest of its 16 MiB segments' digests, hashed in
/// parallel so that one large entry does not leave the other cores idle. Not a content address:
/// it only decides whether the cached chunk list may be reused.
fn whole_digest(store: &Store, bytes: &[u8]) -> Digest {
    let segments: Vec<Digest> = bytes
        .par_chunks(16 << 20)
        .map(|s| store.digest_of(s))
        .collect();
    let joined: Vec<u8> = segments
        .iter()
        .flat_map(|d| d.as_bytes().to_vec())
        .collect();
    store.digest_of(&joined)
}

/// A file, with the status the caller took if it took one: enough to skip it, but a file that
/// must be read gets a fresh status first (it may have changed since the caller looked).
fn file<'c>(
    ctx: &Ctx<'c, '_>,
    node: &Node<'_>,
    meta: String,
    path: &Path,
    seen: Option<&FileStat>,
) -> Processing<'c> {
    if let Some(stat) = seen
        && let Some(hit) = ctx.cache.by_stat(&node.path, stat)
        && holds(ctx.batch, &hit.content)?
    {
        return Ok(Ok(reuse(node, meta, hit, Some(*stat), Outcome::Stat)));
    }
    let stat = match std::fs::metadata(path) {
        Ok(m) => FileStat::of(&m),
        Err(e) => return Ok(Err(entry_error(node, &e))),
    };
    if seen != Some(&stat)
        && let Some(hit) = ctx.cache.by_stat(&node.path, &stat)
        && holds(ctx.batch, &hit.content)?
    {
        return Ok(Ok(reuse(node, meta, hit, Some(stat), Outcome::Stat)));
    }
    match read_file(ctx, node, path, stat) {
        Ok(content) => Ok(Ok(fresh(ctx, node, meta, content?, Some(stat), None))),
        Err(e) => Ok(Err(entry_error(node, &e))),
    }
}

/// Reads a file, and checks that it did not change while being read (else the snapshot would
/// hold a torn mix of two versions); a file that keeps changing is an error for this entry.
fn read_file(
    ctx: &Ctx<'_, '_>,
    node: &Node<'_>,
    path: &Path,
    before: FileStat,
) -> io::Result<Result<Content>> {
    let file = File::open(path)?;
    let content = match ctx.cache.chunks_of(&node.path) {
        Some(old) if before.size > ctx.chunking.threshold => resync::resync(
            ctx.batch,
            &FileData::new(file, before.size),
            old,
            &ctx.chunking,
        )?,
        _ => ingest::reader(ctx.batch, file, &ctx.chunking, Some(before.size))?,
    };
    let after = FileStat::of(&std::fs::metadata(path)?);
    if after == before {
        Ok(content)
    } else {
        Err(io::Error::other("the file changed while it was being read"))
    }
}

/// Whether the store still holds every blob of `content`.
fn holds(batch: &Batch<'_>, content: &Content) -> Result<bool> {
    for digest in content.digests() {
        if !batch.contains(&digest)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An entry whose content the cache vouched for. Unless the content was read to find it
/// (`Outcome::Hashed`), an entry the cache remembers exactly is [`Processed::Same`].
fn reuse<'c>(
    node: &Node<'_>,
    meta: String,
    hit: &'c Cached,
    stat: Option<FileStat>,
    outcome: Outcome,
) -> Processed<'c> {
    let read = matches!(outcome, Outcome::Hashed(_));
    // A status hit keeps its recording time: the status was trusted relative to it.
    let recorded_ns = recorded_ns(stat.as_ref(), hit.recorded_ns);
    if !read && remembered_as(hit, node, &meta, stat.as_ref(), recorded_ns) {
        return Processed::Same { hit, outcome };
    }
    Processed::New {
        cached: Cached {
            token: node.token,
            stat,
            recorded_ns,
            whole: hit.whole,
            kind: node.kind.clone(),
            meta,
            content: hit.content.clone(),
        },
        outcome,
    }
}

/// Whether the cache's memory `hit` is what `node` would be remembered as now, with `meta`, file
/// status `stat` and recording time `recorded_ns`, whatever its content.
fn remembered_as(
    hit: &Cached,
    node: &Node<'_>,
    meta: &str,
    stat: Option<&FileStat>,
    recorded_ns: i64,
) -> bool {
    hit.kind == node.kind
        && hit.meta == meta
        && hit.token == node.token
        && hit.stat.as_ref() == stat
        && hit.recorded_ns == recorded_ns
}

/// The recording time kept with a status: only a status needs one, and an entry without one
/// keeps 0, so that re-reading it (a symlink, an empty directory) leaves the cache unchanged.
fn recorded_ns(stat: Option<&FileStat>, ns: i64) -> i64 {
    if stat.is_some() { ns } else { 0 }
}

/// An entry whose content was just read and stored.
fn fresh<'c>(
    ctx: &Ctx<'_, '_>,
    node: &Node<'_>,
    meta: String,
    content: Content,
    stat: Option<FileStat>,
    whole: Option<Digest>,
) -> Processed<'c> {
    let n = content.len();
    Processed::New {
        cached: Cached {
            token: node.token,
            stat,
            recorded_ns: recorded_ns(stat.as_ref(), ctx.started_ns),
            whole,
            kind: node.kind.clone(),
            meta,
            content,
        },
        outcome: Outcome::Hashed(n),
    }
}

fn entry(node: &Node<'_>, cached: &Cached) -> ManifestEntry {
    ManifestEntry {
        path: node.path.clone(),
        kind: cached.kind.clone(),
        meta: cached.meta.clone(),
        content: cached.content.clone(),
    }
}

fn entry_error(node: &Node<'_>, e: &io::Error) -> EntryError {
    EntryError {
        path: node.path.clone(),
        error: e.to_string(),
    }
}
