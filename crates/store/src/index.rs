//! The SQLite index: blob rows (with inline blob bytes), snapshot rows and their references.

use std::time::Duration;

use camino::Utf8Path;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::codec::Codec;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::snapshot::{SnapshotId, SnapshotInfo, SnapshotKind};

/// Version of the schema below, kept in `meta`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    id     INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    size   INTEGER NOT NULL,   -- uncompressed length
    stored INTEGER NOT NULL,   -- bytes on disk: file length, or inline payload length
    codec  INTEGER NOT NULL,
    data   BLOB                -- the payload of an inline blob; NULL for a blob file
);
CREATE TABLE IF NOT EXISTS snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    manifest   BLOB NOT NULL,
    parent     INTEGER,
    label      TEXT NOT NULL,
    meta       TEXT NOT NULL,
    record     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    digest   BLOB NOT NULL,
    PRIMARY KEY (snapshot, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS caches (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS swept (
    digest BLOB PRIMARY KEY   -- a file given up: one GC is removing (its row is gone, the file
                              -- may remain), or the record of a deleted snapshot (until GC)
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1), ('gc_generation', 0);
";

/// Opens (and with `create`, initialises) the index with the durability settings the commit
/// protocol relies on.
pub(crate) fn open(path: &Utf8Path, create: bool, busy: Duration) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !path.exists() {
        return Err(Error::DamagedIndex {
            reason: format!("{path} is missing"),
        });
    }
    let conn = Connection::open_with_flags(path, flags).map_err(Error::index("open"))?;
    conn.busy_timeout(busy)
        .map_err(Error::index("busy_timeout"))?;
    // ORDER: WAL with synchronous=FULL makes COMMIT return only after the WAL is fsynced; the
    // commit protocol's "only now report success" depends on it.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(Error::index("journal_mode"))?;
    let synchronous = if crate::seeded::active(crate::seeded::SeededBug::SynchronousNormal) {
        "NORMAL"
    } else {
        "FULL"
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(Error::index("synchronous"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(Error::index("foreign_keys"))?;
    if create {
        conn.execute_batch(SCHEMA)
            .map_err(Error::index("create schema"))?;
    }
    check_schema(&conn)?;
    Ok(conn)
}

/// Whether a COMMIT on `conn` is durable when it returns, as SQLite documents it: in WAL mode
/// only with `synchronous` FULL (2) or EXTRA (3); in rollback-journal modes also with NORMAL (1).
/// Read back from the connection, so it reports what SQLite does, not what was asked for.
pub(crate) fn commits_are_durable(conn: &Connection) -> Result<bool> {
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .map_err(Error::index("read synchronous"))?;
    let journal: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(Error::index("read journal_mode"))?;
    Ok(synchronous >= 2 || (synchronous == 1 && !journal.eq_ignore_ascii_case("wal")))
}

/// Removes the index and its WAL, shared-memory and journal files. They live on the real
/// filesystem, as SQLite's own files always do, whatever the store's [`crate::Vfs`].
pub(crate) fn remove_files(path: &Utf8Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = format!("{path}{suffix}");
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", file, e));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_schema(conn: &Connection) -> Result<()> {
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(Error::index("read schema version"))?;
    match version {
        Some(SCHEMA_VERSION) => Ok(()),
        other => Err(Error::DamagedIndex {
            reason: format!("schema version {other:?}, expected {SCHEMA_VERSION}"),
        }),
    }
}

/// The counter that every exclusive operation (GC, repair) bumps, so that in-memory caches of
/// "this digest has a row" know when rows may have gone.
pub(crate) fn gc_generation(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'gc_generation'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(Error::index("read gc generation"))
}

pub(crate) fn bump_gc_generation(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'gc_generation'",
        [],
    )
    .map(drop)
    .map_err(Error::index("bump gc generation"))
}

/// A blob's index row.
#[derive(Clone, Debug)]
pub(crate) struct BlobRow {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) stored: u64,
    pub(crate) codec: Codec,
    /// The payload of an inline blob; `None` for a file.
    pub(crate) inline: Option<Vec<u8>>,
}

pub(crate) fn has_blob(conn: &Connection, digest: &Digest) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM blobs WHERE digest = ?1")
        .and_then(|mut s| s.exists([digest.as_bytes()]))
        .map_err(Error::index("look up blob"))
}

/// Up to `cap` digests of the index, and whether that was all of them. Digests of another hash
/// algorithm's length (none in a sound index) are skipped.
pub(crate) fn blob_digests(conn: &Connection, cap: usize) -> Result<(Vec<Digest>, bool)> {
    let mut stmt = conn
        .prepare_cached("SELECT digest FROM blobs LIMIT ?1")
        .map_err(Error::index("list blobs"))?;
    let limit = i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1);
    let mut rows = stmt.query([limit]).map_err(Error::index("list blobs"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(Error::index("list blobs"))? {
        let bytes: Vec<u8> = row.get(0).map_err(Error::index("list blobs"))?;
        if let Some(d) = Digest::from_bytes(&bytes) {
            out.push(d);
        }
    }
    let all = out.len() <= cap;
    out.truncate(cap);
    Ok((out, all))
}

pub(crate) fn blob(conn: &Connection, digest: &Digest) -> Result<Option<BlobRow>> {
    conn.prepare_cached("SELECT size, stored, codec, data FROM blobs WHERE digest = ?1")
        .and_then(|mut s| {
            s.query_row([digest.as_bytes()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get(3)?,
                ))
            })
            .optional()
        })
        .map_err(Error::index("read blob row"))?
        .map(|(size, stored, codec, inline)| blob_row(*digest, size, stored, codec, inline))
        .transpose()
}

fn blob_row(
    digest: Digest,
    size: i64,
    stored: i64,
    codec: i64,
    inline: Option<Vec<u8>>,
) -> Result<BlobRow> {
    let damaged = |what: &str| Error::DamagedIndex {
        reason: format!("blob {digest}: {what}"),
    };
    let codec = u8::try_from(codec)
        .ok()
        .and_then(Codec::from_u8)
        .ok_or_else(|| damaged("unknown codec"))?;
    Ok(BlobRow {
        digest,
        size: u64::try_from(size).map_err(|_| damaged("negative size"))?,
        stored: u64::try_from(stored).map_err(|_| damaged("negative stored size"))?,
        codec,
        inline,
    })
}

pub(crate) fn insert_blob(conn: &Connection, row: &BlobRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO blobs (digest, size, stored, codec, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.digest.as_bytes(),
            row.size as i64,
            row.stored as i64,
            row.codec as i64,
            row.inline.as_deref()
        ])
    })
    .map(drop)
    .map_err(Error::index("insert blob"))
}

/// Every blob row without its inline bytes: (digest, size, stored, is_inline).
/// A blob row without its payload: digest, uncompressed size, stored length, and for an
/// inline blob its payload's length (`None` for a blob file).
pub(crate) type RowLengths = (Digest, u64, u64, Option<u64>);

/// Every blob row, without the payloads.
pub(crate) fn all_blobs(conn: &Connection) -> Result<Vec<RowLengths>> {
    let mut stmt = conn
        .prepare("SELECT digest, size, stored, length(data) FROM blobs")
        .map_err(Error::index("list blobs"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .map_err(Error::index("list blobs"))?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, size, stored, inline) = row.map_err(Error::index("list blobs"))?;
        out.push((
            digest_of(&raw)?,
            size.max(0) as u64,
            stored.max(0) as u64,
            inline.map(|n| n.max(0) as u64),
        ));
    }
    Ok(out)
}

/// The table of files given up: blob files a GC deleted the rows of and is about to unlink, and
/// the records of deleted snapshots (until a GC removes them). A rebuild of the index never
/// takes a marked record for a snapshot. A store made before it existed gets it from its first
/// GC or deletion; schema 1 readers ignore it.
const SWEPT_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS swept (digest BLOB PRIMARY KEY) WITHOUT ROWID";

/// Marks the files of `digests` as given up (in the transaction that deletes their rows, or
/// their snapshots).
pub(crate) fn add_swept(conn: &Connection, digests: &[Digest]) -> Result<()> {
    conn.execute(SWEPT_TABLE, [])
        .map_err(Error::index("create the swept table"))?;
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO swept (digest) VALUES (?1)")
        .map_err(Error::index("mark a swept blob"))?;
    for digest in digests {
        stmt.execute([digest.as_bytes()])
            .map_err(Error::index("mark a swept blob"))?;
    }
    Ok(())
}

/// Whether the file of `digest` is given up (see [`add_swept`]).
pub(crate) fn is_swept(conn: &Connection, digest: &Digest) -> Result<bool> {
    if !has_swept_table(conn)? {
        return Ok(false);
    }
    conn.prepare_cached("SELECT 1 FROM swept WHERE digest = ?1")
        .and_then(|mut s| s.exists([digest.as_bytes()]))
        .map_err(Error::index("look up a swept blob"))
}

/// Forgets every swept mark (once their files are gone); whether there were any.
pub(crate) fn clear_swept(conn: &Connection) -> Result<bool> {
    if !has_swept_table(conn)? {
        return Ok(false);
    }
    conn.execute("DELETE FROM swept", [])
        .map(|n| n > 0)
        .map_err(Error::index("clear swept blobs"))
}

fn has_swept_table(conn: &Connection) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'swept'")
        .and_then(|mut s| s.exists([]))
        .map_err(Error::index("look for the swept table"))
}

pub(crate) fn delete_blob(conn: &Connection, digest: &Digest) -> Result<()> {
    conn.prepare_cached("DELETE FROM blobs WHERE digest = ?1")
        .and_then(|mut s| s.execute([digest.as_bytes()]))
        .map(drop)
        .map_err(Error::index("delete blob"))
}

pub(crate) fn digest_of(raw: &[u8]) -> Result<Digest> {
    Digest::from_bytes(raw).ok_or_else(|| Error::DamagedIndex {
        reason: format!("a digest of {} bytes", raw.len()),
    })
}

/// Inserts a snapshot row and its references; returns its id.
pub(crate) fn insert_snapshot(
    conn: &Connection,
    snap: &crate::NewSnapshot,
    record: &Digest,
) -> Result<SnapshotId> {
    conn.prepare_cached(
        "INSERT INTO snapshots (kind, created_ns, manifest, parent, label, meta, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            snap.kind.name(),
            snap.created_ns,
            snap.manifest.as_bytes(),
            snap.parent.map(|p| p.0 as i64),
            snap.label,
            snap.meta,
            record.as_bytes()
        ])
    })
    .map_err(Error::index("insert snapshot"))?;
    let id = SnapshotId(conn.last_insert_rowid() as u64);
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO refs (snapshot, digest) VALUES (?1, ?2)")
        .map_err(Error::index("insert refs"))?;
    for digest in &snap.refs {
        stmt.execute(params![id.0 as i64, digest.as_bytes()])
            .map_err(Error::index("insert refs"))?;
    }
    Ok(id)
}

const SNAPSHOT_COLUMNS: &str = "id, kind, created_ns, manifest, parent, label, meta, record";

type RawSnapshot = (
    i64,
    String,
    i64,
    Vec<u8>,
    Option<i64>,
    String,
    String,
    Vec<u8>,
);

fn raw_snapshot(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSnapshot> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn snapshot_info(raw: RawSnapshot) -> Result<SnapshotInfo> {
    let (id, kind, created_ns, manifest, parent, label, meta, record) = raw;
    let kind = SnapshotKind::from_name(&kind).ok_or_else(|| Error::DamagedIndex {
        reason: format!("snapshot {id} has unknown kind {kind:?}"),
    })?;
    Ok(SnapshotInfo {
        id: SnapshotId(id as u64),
        kind,
        created_ns,
        manifest: digest_of(&manifest)?,
        parent: parent.map(|p| SnapshotId(p as u64)),
        label,
        meta,
        record: digest_of(&record)?,
    })
}

pub(crate) fn snapshots(conn: &Connection) -> Result<Vec<SnapshotInfo>> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY id");
    let mut stmt = conn.prepare(&sql).map_err(Error::index("list snapshots"))?;
    let rows = stmt
        .query_map([], raw_snapshot)
        .map_err(Error::index("list snapshots"))?;
    rows.map(|r| snapshot_info(r.map_err(Error::index("list snapshots"))?))
        .collect()
}

/// The snapshot with the highest id, if any (one row read, however many snapshots there are).
pub(crate) fn latest_snapshot(conn: &Connection) -> Result<Option<SnapshotInfo>> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY id DESC LIMIT 1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([], raw_snapshot).optional())
        .map_err(Error::index("read the newest snapshot"))?
        .map(snapshot_info)
        .transpose()
}

/// The newest snapshot with `label`, if any (one row read).
pub(crate) fn latest_labelled(conn: &Connection, label: &str) -> Result<Option<SnapshotInfo>> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE label = ?1 ORDER BY id DESC LIMIT 1"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([label], raw_snapshot).optional())
        .map_err(Error::index("read the newest snapshot of a label"))?
        .map(snapshot_info)
        .transpose()
}

pub(crate) fn snapshot(conn: &Connection, id: SnapshotId) -> Result<Option<SnapshotInfo>> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = ?1");
    conn.query_row(&sql, [id.0 as i64], raw_snapshot)
        .optional()
        .map_err(Error::index("read snapshot"))?
        .map(snapshot_info)
        .transpose()
}

pub(crate) fn snapshot_refs(conn: &Connection, id: SnapshotId) -> Result<Vec<Digest>> {
    let mut stmt = conn
        .prepare_cached("SELECT digest FROM refs WHERE snapshot = ?1 ORDER BY digest")
        .map_err(Error::index("list refs"))?;
    let rows = stmt
        .query_map([id.0 as i64], |r| r.get::<_, Vec<u8>>(0))
        .map_err(Error::index("list refs"))?;
    rows.map(|r| digest_of(&r.map_err(Error::index("list refs"))?))
        .collect()
}

/// Every (snapshot, blob) pair that keeps a blob alive: references, manifests and records.
pub(crate) fn all_references(conn: &Connection) -> Result<Vec<(SnapshotId, Digest)>> {
    let mut stmt = conn
        .prepare(
            "SELECT snapshot, digest FROM refs
             UNION ALL SELECT id, manifest FROM snapshots
             UNION ALL SELECT id, record FROM snapshots",
        )
        .map_err(Error::index("list references"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(Error::index("list references"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, raw) = row.map_err(Error::index("list references"))?;
        out.push((SnapshotId(id as u64), digest_of(&raw)?));
    }
    Ok(out)
}

/// Whether a snapshot names `record` as its record.
pub(crate) fn record_in_use(conn: &Connection, record: &Digest) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM snapshots WHERE record = ?1 LIMIT 1")
        .and_then(|mut s| s.exists([record.as_bytes()]))
        .map_err(Error::index("look up a snapshot record"))
}

/// Forgets every named cache (derived data: the next operation rebuilds what it needs).
pub(crate) fn clear_caches(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM caches", [])
        .map(drop)
        .map_err(Error::index("clear caches"))
}

pub(crate) fn delete_snapshot(conn: &Connection, id: SnapshotId) -> Result<bool> {
    conn.execute("DELETE FROM snapshots WHERE id = ?1", [id.0 as i64])
        .map(|n| n > 0)
        .map_err(Error::index("delete snapshot"))
}

pub(crate) fn load_cache(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    conn.query_row("SELECT data FROM caches WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map_err(Error::index("read cache"))
}

pub(crate) fn save_cache(conn: &Connection, name: &str, data: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO caches (name, data) VALUES (?1, ?2)",
        params![name, data],
    )
    .map(drop)
    .map_err(Error::index("write cache"))
}
