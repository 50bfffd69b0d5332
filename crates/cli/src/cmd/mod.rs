//! The commands, one file per command or group, and what they share: finding the store and
//! resolving the snapshots named on the command line.

pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod diff;
pub(crate) mod forget;
pub(crate) mod gc;
pub(crate) mod init;
pub(crate) mod inspect;
pub(crate) mod repair;
pub(crate) mod restore;
pub(crate) mod snapshot;
pub(crate) mod watch;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use autosave::store::{Options, SnapshotInfo, Store};
use autosave::tree::{self, Manifest, STORE_DIR_NAME};
use camino::Utf8PathBuf;
use serde::Serialize;

use crate::cli::SnapRef;
use crate::exit::{Exit, Failure};
use crate::output::Out;

/// What every command gets: the store asked for and how to print.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `--store` or `AUTOSAVE_STORE`, if given.
    pub(crate) store: Option<PathBuf>,
    pub(crate) out: Out,
}

impl Ctx {
    /// The store path: the one given, else `default`.
    pub(crate) fn store_path(&self, default: &Path) -> Result<Utf8PathBuf> {
        let path = self.store.as_deref().unwrap_or(default);
        Utf8PathBuf::from_path_buf(path.to_path_buf())
            .map_err(|p| anyhow::anyhow!("the store path {} is not UTF-8", p.display()))
    }

    /// Opens the existing store (`./.autosave` unless given).
    pub(crate) fn open(&self) -> Result<Store> {
        let path = self.store_path(Path::new(STORE_DIR_NAME))?;
        Ok(Store::open(&path)?)
    }

    /// Opens the store for directory `dir` (`DIR/.autosave` unless given), creating it if
    /// there is none.
    pub(crate) fn open_for_dir(&self, dir: &Path) -> Result<Store> {
        let path = self.store_path(&dir.join(STORE_DIR_NAME))?;
        let options = Options {
            create: true,
            ..Options::default()
        };
        Ok(Store::open_with(&path, options)?)
    }

    /// `--store PATH ` to repeat in a suggested command, when the store was given.
    pub(crate) fn store_flag(&self) -> String {
        match &self.store {
            Some(path) => format!("--store {} ", shell_word(&path.display().to_string())),
            None => String::new(),
        }
    }
}

/// Quotes `word` for a POSIX shell if it needs it.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The snapshot `snap` names.
pub(crate) fn resolve(store: &Store, snap: SnapRef) -> Result<SnapshotInfo> {
    match snap {
        SnapRef::Latest => store
            .latest()?
            .ok_or_else(|| Failure::new(Exit::Error, "the store has no snapshots yet").into()),
        SnapRef::Id(id) => store
            .snapshot(id)?
            .ok_or_else(|| Failure::new(Exit::Error, format!("no snapshot {id}")).into()),
    }
}

/// The manifest of a snapshot.
pub(crate) fn manifest(store: &Store, info: &SnapshotInfo) -> Result<Manifest> {
    tree::load_manifest(store, &info.manifest)
        .with_context(|| format!("reading snapshot {}", info.id))
}

/// A snapshot's record as JSON documents show it.
#[derive(Debug, Serialize)]
pub(crate) struct SnapshotDoc {
    pub(crate) id: u64,
    pub(crate) kind: &'static str,
    pub(crate) created_ns: i64,
    pub(crate) parent: Option<u64>,
    pub(crate) label: String,
    pub(crate) meta: String,
    pub(crate) manifest: String,
    pub(crate) record: String,
}

impl From<&SnapshotInfo> for SnapshotDoc {
    fn from(info: &SnapshotInfo) -> Self {
        Self {
            id: info.id.0,
            kind: info.kind.name(),
            created_ns: info.created_ns,
            parent: info.parent.map(|p| p.0),
            label: info.label.clone(),
            meta: info.meta.clone(),
            manifest: info.manifest.to_string(),
            record: info.record.to_string(),
        }
    }
}
