//! autosave: crash-safe, deduplicated autosave snapshots for applications.
//!
//! A host embeds a [`Session`]: it claims the project's store (`.autosave/`), autosaves the
//! host's tree when the [`policy`] says so, records explicit saves as baselines, keeps the last
//! few autosaves, and after a crash answers whether there is anything to [`recover`
//! ](Session::recovery).
//!
//! The principal types:
//!
//! - [`Session`]: [`Session::autosave`], [`Session::save_explicit`], [`Session::recovery`],
//!   [`Session::restore`], [`Session::discard`]; one live session per store.
//! - [`SaveReport`]: what each save did (entries seen, skipped, hashed, bytes written, time,
//!   per-entry errors).
//! - [`Recovery`]: an autosave newer than, and different from, the last explicit save.
//! - [`Driver`]: the policy on a background thread, for hosts without their own event loop.
//!
//! ```
//! use autosave::{Options, Session};
//! use autosave::tree::{EntryPath, Node, Token};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let project = camino::Utf8Path::from_path(dir.path()).expect("UTF-8");
//! let signal = vec![0u8; 100_000];
//! let tree = |note: &'static [u8]| {
//!     vec![
//!         Node::bytes(EntryPath::new(["arrays", "signal"]), "ndarray", &signal).with_token(Token(1)),
//!         Node::bytes(EntryPath::new(["notes", "today"]), "note", note),
//!     ]
//! };
//! let mut session = Session::open(project, Options::default())?;
//! session.save_explicit(&tree(b"saved"))?;
//! let report = session.autosave(&tree(b"edited after saving"))?;
//! assert_eq!(report.tree.skipped_token, 1); // the array was not read again
//! drop(session); // ... the host crashes here ...
//!
//! let session = Session::open(project, Options::default())?;
//! let recovery = session.recovery()?.expect("an unsaved edit");
//! assert_eq!(recovery.changed_entries, 1);
//! let restored = session.restore(recovery.snapshot.id)?;
//! assert_eq!(restored.entries[1].content, b"edited after saving");
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod claim;
mod driver;
mod error;
mod recovery;
pub mod sample;
mod scan;
mod session;

pub use autosave_policy as policy;
pub use autosave_store as store;
pub use autosave_tree as tree;

pub use claim::{CLAIM_FILE, Claim, Holder, OWN_CLAIM_GRACE};
pub use driver::{Driver, Host};
pub use error::{Error, Result};
pub use recovery::{Recovery, Restored, RestoredEntry};
pub use scan::{Orphan, scan};
pub use session::{Options, SaveReport, Session, Skipped};
