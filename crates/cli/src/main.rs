//! The `autosave` command-line tool.

fn main() {}
