//! `autosave repair index`: rebuild the index from the blob files.
//!
//! Snapshot records and manifests are always files, so the index can be rebuilt from
//! `objects/` alone; doing it needs the store to do it under its exclusive lock
//! (`Store::rebuild_index`), which this version does not have yet.

use anyhow::Result;

use super::Ctx;
use crate::cli::RepairWhat;
use crate::exit::{Exit, Failure};

pub(crate) fn run(_ctx: &Ctx, what: &RepairWhat) -> Result<Exit> {
    match what {
        RepairWhat::Index => {
            Err(Failure::new(Exit::Error, "repair is not available in this version").into())
        }
    }
}
