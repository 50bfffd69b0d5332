//! `autosave init`: create a store.

use std::path::Path;

use anyhow::Result;
use autosave::store::{self, Options, Store, StoreFormat};
use autosave::tree::STORE_DIR_NAME;
use serde::Serialize;

use super::Ctx;
use crate::exit::{Exit, Failure};

#[derive(Serialize)]
struct Doc {
    store: String,
    store_id: String,
    format_version: u32,
    hash: &'static str,
    inline_limit: u64,
}

pub(crate) fn run(ctx: &Ctx, strong: bool, format_version: u32) -> Result<Exit> {
    let path = ctx.store_path(Path::new(STORE_DIR_NAME))?;
    match Store::open(&path) {
        Ok(_) => {
            return Err(
                Failure::new(Exit::Error, format!("a store already exists at {path}")).into(),
            );
        }
        Err(store::Error::NoStore { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let options = Options {
        create: true,
        strong,
        format_version,
        ..Options::default()
    };
    let store = Store::open_with(&path, options)?;
    let doc = doc(store.root().as_str(), store.format());
    ctx.out.report("init", &doc, |d| {
        format!(
            "created store {} ({}, id {})\n",
            d.store, d.hash, d.store_id
        )
    })?;
    Ok(Exit::Ok)
}

fn doc(root: &str, format: &StoreFormat) -> Doc {
    Doc {
        store: root.to_owned(),
        store_id: format!("{:032x}", format.store_id),
        format_version: format.version,
        hash: format.hash.name(),
        inline_limit: format.inline_limit,
    }
}
