//! Space accounting: how much the snapshots hold, and how little the store takes for it.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::store::Store;

/// Sizes of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Snapshots.
    pub snapshots: u64,
    /// Blobs in the index.
    pub blobs: u64,
    /// Of those, blobs kept inside the index.
    pub inline_blobs: u64,
    /// Bytes the snapshots reference, counted once per snapshot that references them: what a
    /// store without deduplication would hold.
    pub logical_bytes: u64,
    /// Uncompressed bytes of the distinct blobs.
    pub unique_bytes: u64,
    /// Bytes the blobs take on disk (file lengths with headers, inline payloads); the index's
    /// own overhead is not counted.
    pub stored_bytes: u64,
}

impl Stats {
    /// `logical_bytes / unique_bytes`: how many times deduplication shrinks the data (1.0 for
    /// an empty store).
    pub fn dedup_ratio(&self) -> f64 {
        ratio(self.logical_bytes, self.unique_bytes)
    }

    /// `unique_bytes / stored_bytes`: how many times compression shrinks it (1.0 when empty).
    pub fn compression_ratio(&self) -> f64 {
        ratio(self.unique_bytes, self.stored_bytes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Store {
    /// Counts snapshots, blobs and bytes.
    pub fn stats(&self) -> Result<Stats> {
        let conn = self.conn();
        let (blobs, inline_blobs, unique_bytes, stored_bytes) = conn
            .query_row(
                "SELECT COUNT(*), COUNT(data), COALESCE(SUM(size), 0), COALESCE(SUM(stored), 0)
                 FROM blobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(Error::index("stats"))?;
        Ok(Stats {
            snapshots: count(&conn, "SELECT COUNT(*) FROM snapshots")?,
            blobs: as_u64(blobs),
            inline_blobs: as_u64(inline_blobs),
            logical_bytes: count(&conn, LOGICAL)?,
            unique_bytes: as_u64(unique_bytes),
            stored_bytes: as_u64(stored_bytes),
        })
    }
}

const LOGICAL: &str = "
SELECT COALESCE(SUM(b.size), 0) FROM (
    SELECT digest FROM refs
    UNION ALL SELECT manifest FROM snapshots
) AS r JOIN blobs AS b ON b.digest = r.digest";

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(as_u64)
        .map_err(Error::index("stats"))
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
