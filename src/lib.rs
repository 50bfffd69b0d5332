//! autosave
