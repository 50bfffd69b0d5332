//! Read-only looks into a store: `snapshots`, `show`, `ls`, `cat`, `stats`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use anyhow::{Context as _, Result};
use autosave::store::{SnapshotInfo, Store};
use autosave::tree::{self, Content, EntryPath, KIND_SYMLINK, Manifest, ManifestEntry};
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, SnapshotDoc, manifest, resolve};
use crate::cli::SnapRef;
use crate::exit::{Exit, Failure};
use crate::output::{self, Out, table};

#[derive(Serialize)]
struct SnapshotsDoc {
    store: String,
    /// Newest first.
    snapshots: Vec<SnapshotDoc>,
}

pub(crate) fn snapshots(ctx: &Ctx) -> Result<Exit> {
    let store = ctx.open()?;
    let mut list = store.snapshots()?;
    list.reverse();
    let doc = SnapshotsDoc {
        store: store.root().to_string(),
        snapshots: list.iter().map(SnapshotDoc::from).collect(),
    };
    if list.is_empty() {
        ctx.out.note("no snapshots yet");
    }
    ctx.out
        .emit("snapshots", &doc, |_| snapshots_table(&list))?;
    Ok(Exit::Ok)
}

fn snapshots_table(list: &[SnapshotInfo]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut rows = vec![vec![
        "ID".into(),
        "KIND".into(),
        "CREATED".into(),
        "LABEL".into(),
    ]];
    rows.extend(list.iter().map(|s| {
        vec![
            s.id.to_string(),
            s.kind.to_string(),
            output::local_time(s.created_ns),
            s.label.clone(),
        ]
    }));
    table(&rows, &[true, false, false, false])
}

#[derive(Serialize)]
struct ShowDoc {
    snapshot: SnapshotDoc,
    entries: u64,
    /// Entries per kind (`file`, `symlink`, `dir`, or a host's kinds).
    kinds: BTreeMap<String, u64>,
    /// Content bytes of all entries.
    size: u64,
    /// Distinct blobs the entries reference (the manifest and record not counted).
    blobs: u64,
}

pub(crate) fn show(ctx: &Ctx, snap: SnapRef) -> Result<Exit> {
    let store = ctx.open()?;
    let info = resolve(&store, snap)?;
    let manifest = manifest(&store, &info)?;
    let doc = ShowDoc {
        snapshot: SnapshotDoc::from(&info),
        entries: manifest.entries().len() as u64,
        kinds: kinds(&manifest),
        size: manifest.total_len(),
        blobs: manifest.blobs().len() as u64,
    };
    ctx.out
        .emit("show", &doc, |d| show_text(&ctx.out, &info, d))?;
    Ok(Exit::Ok)
}

fn kinds(manifest: &Manifest) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for e in manifest.entries() {
        *kinds.entry(e.kind.clone()).or_insert(0) += 1;
    }
    kinds
}

fn show_text(out: &Out, info: &SnapshotInfo, d: &ShowDoc) -> String {
    let kinds: Vec<String> = d.kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let mut rows = vec![
        pair("snapshot", info.id.to_string()),
        pair("kind", info.kind.to_string()),
        pair("created", output::local_time(info.created_ns)),
        pair("parent", info.parent.map_or("-".into(), |p| p.to_string())),
        pair("label", info.label.clone()),
        pair("manifest", out.digest(&info.manifest)),
        pair("record", out.digest(&info.record)),
        pair("entries", format!("{} ({})", d.entries, kinds.join(", "))),
        pair("size", output::size(d.size)),
        pair("blobs", d.blobs.to_string()),
    ];
    if !info.meta.is_empty() {
        rows.push(pair("meta", info.meta.clone()));
    }
    table(&rows, &[])
}

fn pair(key: &str, value: String) -> Vec<String> {
    vec![key.to_owned(), value]
}

/// One manifest entry as JSON documents show it.
#[derive(Serialize)]
struct EntryDoc {
    /// The text form (`a/b`, with `\/`, `\\`, `\e` escapes).
    path: String,
    /// The keys, unescaped.
    keys: Vec<String>,
    kind: String,
    size: u64,
    /// The entry's metadata (for directory snapshots `{"mode": …, "mtime_ns": …}`).
    meta: Value,
    /// `inline`, `blob` or `chunks`.
    storage: &'static str,
    digests: Vec<String>,
}

impl From<&ManifestEntry> for EntryDoc {
    fn from(e: &ManifestEntry) -> Self {
        Self {
            path: e.path.to_string(),
            keys: e.path.keys().to_vec(),
            kind: e.kind.clone(),
            size: e.content.len(),
            meta: serde_json::from_str(&e.meta).unwrap_or_else(|_| Value::String(e.meta.clone())),
            storage: match e.content {
                Content::Inline(_) => "inline",
                Content::Blob { .. } => "blob",
                Content::Chunks(_) => "chunks",
            },
            digests: e.content.digests().map(|d| d.to_string()).collect(),
        }
    }
}

#[derive(Serialize)]
struct LsDoc {
    snapshot: u64,
    path: String,
    entries: Vec<EntryDoc>,
}

pub(crate) fn ls(ctx: &Ctx, snap: SnapRef, path: Option<&EntryPath>) -> Result<Exit> {
    let store = ctx.open()?;
    let info = resolve(&store, snap)?;
    let manifest = manifest(&store, &info)?;
    let prefix = path.cloned().unwrap_or_default();
    let entries: Vec<&ManifestEntry> = manifest
        .entries()
        .iter()
        .filter(|e| e.path.starts_with(&prefix))
        .collect();
    if entries.is_empty() && path.is_some() {
        return Err(no_entry(&prefix, &info));
    }
    let doc = LsDoc {
        snapshot: info.id.0,
        path: prefix.to_string(),
        entries: entries.iter().map(|e| EntryDoc::from(*e)).collect(),
    };
    ctx.out.emit("ls", &doc, |_| ls_table(&entries))?;
    Ok(Exit::Ok)
}

fn no_entry(path: &EntryPath, info: &SnapshotInfo) -> anyhow::Error {
    Failure::new(
        Exit::Error,
        format!("no entry {path} in snapshot {}", info.id),
    )
    .into()
}

fn ls_table(entries: &[&ManifestEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let (mode, mtime) = mode_and_mtime(&e.meta);
            vec![
                e.kind.clone(),
                mode.map_or("-".into(), |m| format!("{m:04o}")),
                output::size(e.content.len()),
                mtime.map_or("-".into(), output::local_time),
                name(e),
            ]
        })
        .collect();
    table(&rows, &[false, false, true, false, false])
}

/// The path, and for a symlink whose target is at hand, ` -> target`.
fn name(e: &ManifestEntry) -> String {
    match (&e.content, e.kind.as_str()) {
        (Content::Inline(target), KIND_SYMLINK) => {
            format!("{} -> {}", e.path, String::from_utf8_lossy(target))
        }
        _ => e.path.to_string(),
    }
}

fn mode_and_mtime(meta: &str) -> (Option<u64>, Option<i64>) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(meta) else {
        return (None, None);
    };
    (
        map.get("mode").and_then(Value::as_u64),
        map.get("mtime_ns").and_then(Value::as_i64),
    )
}

#[derive(Serialize)]
struct CatDoc {
    snapshot: u64,
    entry: EntryDoc,
    content_base64: String,
}

pub(crate) fn cat(ctx: &Ctx, snap: SnapRef, path: &EntryPath) -> Result<Exit> {
    let store = ctx.open()?;
    let info = resolve(&store, snap)?;
    let manifest = manifest(&store, &info)?;
    let entry = manifest.get(path).ok_or_else(|| no_entry(path, &info))?;
    let mut reader = tree::ContentReader::new(&store, &entry.content);
    let context = || format!("reading {path} of snapshot {}", info.id);
    if ctx.out.json {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).with_context(context)?;
        let doc = CatDoc {
            snapshot: info.id.0,
            entry: EntryDoc::from(entry),
            content_base64: output::base64(&bytes),
        };
        ctx.out.emit("cat", &doc, |_| String::new())?;
    } else {
        copy_to_stdout(&mut reader).with_context(context)?;
    }
    Ok(Exit::Ok)
}

/// Streams to stdout; a reader closing the pipe early (`| head`) ends the copy quietly.
fn copy_to_stdout(reader: &mut dyn Read) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match out.write_all(&buf[..n]) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[derive(Serialize)]
struct StoreStatsDoc {
    store: String,
    store_id: String,
    format_version: u32,
    hash: &'static str,
    snapshots: u64,
    blobs: u64,
    inline_blobs: u64,
    logical_bytes: u64,
    unique_bytes: u64,
    stored_bytes: u64,
    dedup_ratio: f64,
    compression_ratio: f64,
}

#[derive(Serialize)]
struct SnapStatsDoc {
    snapshot: u64,
    entries: u64,
    kinds: BTreeMap<String, u64>,
    /// Content bytes of all entries.
    logical_bytes: u64,
    /// Bytes kept inside the manifest.
    inline_bytes: u64,
    /// Distinct blobs the entries reference, and their uncompressed bytes.
    blobs: u64,
    blob_bytes: u64,
}

pub(crate) fn stats(ctx: &Ctx, snap: Option<SnapRef>) -> Result<Exit> {
    let store = ctx.open()?;
    match snap {
        None => store_stats(ctx, &store)?,
        Some(snap) => snapshot_stats(ctx, &store, snap)?,
    }
    Ok(Exit::Ok)
}

fn store_stats(ctx: &Ctx, store: &Store) -> Result<()> {
    let s = store.stats()?;
    let format = store.format();
    let doc = StoreStatsDoc {
        store: store.root().to_string(),
        store_id: format!("{:032x}", format.store_id),
        format_version: format.version,
        hash: format.hash.name(),
        snapshots: s.snapshots,
        blobs: s.blobs,
        inline_blobs: s.inline_blobs,
        logical_bytes: s.logical_bytes,
        unique_bytes: s.unique_bytes,
        stored_bytes: s.stored_bytes,
        dedup_ratio: s.dedup_ratio(),
        compression_ratio: s.compression_ratio(),
    };
    ctx.out.emit("stats", &doc, |d| {
        table(
            &[
                pair(
                    "store",
                    format!("{} ({}, format {})", d.store, d.hash, d.format_version),
                ),
                pair("snapshots", d.snapshots.to_string()),
                pair("blobs", format!("{} ({} inline)", d.blobs, d.inline_blobs)),
                pair("logical size", output::size(d.logical_bytes)),
                pair(
                    "unique size",
                    format!(
                        "{} (dedup x{:.2})",
                        output::size(d.unique_bytes),
                        d.dedup_ratio
                    ),
                ),
                pair(
                    "stored size",
                    format!(
                        "{} (compression x{:.2})",
                        output::size(d.stored_bytes),
                        d.compression_ratio
                    ),
                ),
            ],
            &[],
        )
    })?;
    Ok(())
}

fn snapshot_stats(ctx: &Ctx, store: &Store, snap: SnapRef) -> Result<()> {
    let info = resolve(store, snap)?;
    let manifest = manifest(store, &info)?;
    let mut blobs = BTreeMap::new();
    let mut inline_bytes = 0;
    for e in manifest.entries() {
        match &e.content {
            Content::Inline(bytes) => inline_bytes += bytes.len() as u64,
            Content::Blob { digest, len } => {
                blobs.insert(*digest, *len);
            }
            Content::Chunks(chunks) => blobs.extend(chunks.iter().map(|c| (c.digest, c.len))),
        }
    }
    let doc = SnapStatsDoc {
        snapshot: info.id.0,
        entries: manifest.entries().len() as u64,
        kinds: kinds(&manifest),
        logical_bytes: manifest.total_len(),
        inline_bytes,
        blobs: blobs.len() as u64,
        blob_bytes: blobs.values().sum(),
    };
    ctx.out.emit("stats", &doc, |d| {
        table(
            &[
                pair("snapshot", d.snapshot.to_string()),
                pair("entries", d.entries.to_string()),
                pair("logical size", output::size(d.logical_bytes)),
                pair("inline", output::size(d.inline_bytes)),
                pair(
                    "blobs",
                    format!("{} ({})", d.blobs, output::size(d.blob_bytes)),
                ),
            ],
            &[],
        )
    })?;
    Ok(())
}
