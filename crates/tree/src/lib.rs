//! Data-tree snapshots on top of [`autosave_store`].
