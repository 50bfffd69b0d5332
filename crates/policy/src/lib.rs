//! A sans-IO autosave scheduler.
