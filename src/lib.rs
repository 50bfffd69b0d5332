//! autosave: crash-safe, deduplicated autosave snapshots for applications.
//!
//! This crate is the host-facing library. It re-exports its building blocks:
//!
//! - [`store`]: the content-addressed blob and snapshot store under `.autosave/`;
//! - [`policy`]: the sans-IO scheduler that decides when to autosave;
//! - [`tree`]: data-tree snapshots on top of the store.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use autosave_policy as policy;
pub use autosave_store as store;
pub use autosave_tree as tree;
