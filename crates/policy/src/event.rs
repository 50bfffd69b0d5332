//! What the host tells the policy, and what the policy asks of the host.

use crate::Config;

/// Something that happened in the host, reported through
/// [`Policy::handle`](crate::Policy::handle) with the time it happened.
///
/// Events that make no sense in the current state (a finish without a
/// matching start, an edit while no project is open) are ignored rather than
/// guessed at, so a confused host can never trigger a clear or mark unsaved
/// work as saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A project was opened (or the open project was replaced by another).
    /// Its state on disk counts as durable and the timer starts now; failure
    /// counts, flights and a pending clear of the previous project are dropped.
    Opened,
    /// The project was closed. Nothing is autosaved until the next
    /// [`Event::Opened`]; a clear requested before closing is still returned.
    Closed,
    /// The host started work that an autosave must not interrupt, e.g. a
    /// kernel running a cell. The host starts busy.
    Busy,
    /// The host finished its work; an autosave that fell due meanwhile fires
    /// now.
    Idle,
    /// The user changed the project. A host that never sends this is treated
    /// as always possibly dirty; the first one switches the policy to
    /// tracking edits for the rest of its life.
    Edited,
    /// The host began an explicit (user-requested) save. No autosave starts
    /// until it finishes.
    ExplicitSaveStarted,
    /// The explicit save ended. On success the project is clean (except for
    /// edits reported while it ran), the timer restarts and
    /// [`Action::ClearSuperseded`] is requested once; a failure changes
    /// nothing.
    ExplicitSaveFinished {
        /// Whether the save is durable on disk.
        ok: bool,
    },
    /// The host began an autosave on its own. An autosave returned by
    /// [`Policy::poll`](crate::Policy::poll) is already started; reporting it
    /// again is harmless.
    AutosaveStarted,
    /// The autosave ended. On success the project is clean (except for edits
    /// reported while it ran), the timer restarts and the failure count
    /// resets; on failure it is retried with backoff.
    AutosaveFinished {
        /// Whether the snapshot is durable on disk.
        ok: bool,
    },
    /// The settings changed; they apply at once.
    ConfigChanged(Config),
}

/// Something the policy asks the host to do, returned by
/// [`Policy::poll`](crate::Policy::poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Take an autosave now. The policy already counts it as in flight; report
    /// the outcome with [`Event::AutosaveFinished`].
    Autosave,
    /// Delete the autosaves that the latest successful explicit save has
    /// superseded. Needs no reply.
    ClearSuperseded,
}
