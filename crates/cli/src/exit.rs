//! Exit codes, and which errors map to which.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | error (unknown snapshot, path not in the snapshot, target not empty, newer format, ...) |
//! | 2 | usage: bad arguments |
//! | 3 | partial success: some entries were skipped (e.g. unreadable files in a snapshot) |
//! | 10 | no store at that path |
//! | 11 | the store is locked by another process |
//! | 12 | the store is damaged (`check` found damage, or a read hit a damaged blob) |
//! | 130 | interrupted by Ctrl-C |

use std::fmt;
use std::process::ExitCode;

use autosave::store;
use autosave::tree;

/// How the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Partial = 3,
    NoStore = 10,
    Locked = 11,
    Damaged = 12,
    Interrupted = 130,
}

impl Exit {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// An error the CLI itself raises, with the exit code it ends the process with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code for an error: the first error in its chain that says something specific.
pub(crate) fn of_error(error: &anyhow::Error) -> Exit {
    error.chain().find_map(classify).unwrap_or(Exit::Error)
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return Some(f.exit);
    }
    if let Some(e) = e.downcast_ref::<store::Error>() {
        return Some(of_store(e));
    }
    if let Some(e) = e.downcast_ref::<tree::Error>() {
        return of_tree(e);
    }
    // A content reader reports store errors through `io::Error`, whose `source` skips them.
    e.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| classify(inner))
}

fn of_store(e: &store::Error) -> Exit {
    match e {
        store::Error::NoStore { .. } | store::Error::NotAStore { .. } => Exit::NoStore,
        store::Error::Busy { .. } => Exit::Locked,
        store::Error::Corrupt { .. }
        | store::Error::Missing { .. }
        | store::Error::DamagedIndex { .. }
        | store::Error::BadFormat { .. }
        | store::Error::MissingFormat { .. }
        | store::Error::DanglingReference { .. }
        | store::Error::GcRefused {
            reason: store::GcRefusal::MissingBlobs { .. },
        } => Exit::Damaged,
        _ => Exit::Error,
    }
}

/// `None` for a tree error that wraps another (its source decides).
fn of_tree(e: &tree::Error) -> Option<Exit> {
    match e {
        tree::Error::Store(inner) => Some(of_store(inner)),
        tree::Error::BadManifest { .. }
        | tree::Error::MissingManifest { .. }
        | tree::Error::MissingBlob { .. } => Some(Exit::Damaged),
        tree::Error::Io { source, .. } => classify(source).or(Some(Exit::Error)),
        _ => Some(Exit::Error),
    }
}

/// The store error in an error's chain, looking through the tree's wrapper.
pub(crate) fn store_error(error: &anyhow::Error) -> Option<&store::Error> {
    error.chain().find_map(|e| {
        e.downcast_ref::<store::Error>()
            .or_else(|| match e.downcast_ref::<tree::Error>() {
                Some(tree::Error::Store(inner)) => Some(inner),
                _ => None,
            })
    })
}
