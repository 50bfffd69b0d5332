//! The state machine that decides when to autosave.

use std::time::Instant;

use crate::{Action, Config, Event};

/// A save the host is performing, as the policy saw it start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flight {
    /// How many edits had been reported when the save started. Later edits
    /// may be missing from the snapshot, so they stay unsaved.
    edits_at_start: u64,
}

/// The autosave scheduler: a pure state machine driven by the host.
///
/// It never reads a clock, sleeps or touches the disk. The host reports
/// [`Event`]s through [`Policy::handle`], asks for work with [`Policy::poll`]
/// and learns when to ask again from [`Policy::deadline`]. See the crate docs
/// for the contract and an example loop.
#[derive(Clone, Debug)]
pub struct Policy {
    config: Config,
    open: bool,
    busy: bool,
    /// Edits reported over the policy's life; zero means the host does not
    /// report edits, so the project is always possibly dirty.
    edits: u64,
    /// How many of `edits` the last durable snapshot is known to contain.
    durable_edits: u64,
    /// The last durable snapshot or the opening, whichever is later: the
    /// interval runs from here.
    since: Instant,
    autosave: Option<Flight>,
    explicit: Option<Flight>,
    failures: u32,
    last_failure: Option<Instant>,
    /// When a successful explicit save asked for a clear not yet polled.
    clear_since: Option<Instant>,
}

impl Policy {
    /// A policy for a project opened at `now`, with the host busy until it
    /// reports [`Event::Idle`], as a kernel is until it has started.
    #[must_use]
    pub fn new(config: Config, now: Instant) -> Self {
        Self {
            config,
            open: true,
            busy: true,
            edits: 0,
            durable_edits: 0,
            since: now,
            autosave: None,
            explicit: None,
            failures: 0,
            last_failure: None,
            clear_since: None,
        }
    }

    /// Reports that `event` happened at `now`.
    ///
    /// Call it as soon as the event happens, then call [`Policy::poll`]: an
    /// event can make an action due at once (an idle transition, a shorter
    /// interval, a successful explicit save).
    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Opened => self.open(now),
            Event::Closed => self.close(),
            Event::Busy => self.busy = true,
            Event::Idle => self.busy = false,
            Event::ConfigChanged(config) => self.config = config,
            // Edits and saves without an open project, or stale finishes of a
            // closed project's saves, say nothing about the next project.
            _ if !self.open => {}
            Event::Edited => self.edited(),
            Event::ExplicitSaveStarted => self.explicit = self.explicit.or(Some(self.flight())),
            Event::ExplicitSaveFinished { ok } => self.explicit_finished(ok, now),
            Event::AutosaveStarted => self.autosave = self.autosave.or(Some(self.flight())),
            Event::AutosaveFinished { ok } => self.autosave_finished(ok, now),
        }
    }

    /// Returns the next thing the host should do at `now`, if any.
    ///
    /// Call it after every [`Policy::handle`] and whenever the
    /// [`Policy::deadline`] has passed, repeating until it returns `None`.
    /// Returning [`Action::Autosave`] marks that autosave as in flight, so it
    /// is returned once and not again until the host reports
    /// [`Event::AutosaveFinished`]. A pending [`Action::ClearSuperseded`] comes
    /// first.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if self.clear_since.take().is_some() {
            return Some(Action::ClearSuperseded);
        }
        let due = self.eligible_due()?;
        if due > now {
            return None;
        }
        self.autosave = Some(self.flight());
        Some(Action::Autosave)
    }

    /// When the host must next call [`Policy::poll`] if no event arrives first.
    ///
    /// Ask after every [`Policy::handle`] and [`Policy::poll`]. An instant
    /// already past means "poll now"; `None` means nothing can become due
    /// without an event (the host is busy, a save is in flight, the project
    /// is clean, closed or autosave is disabled).
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        match (self.clear_since, self.eligible_due()) {
            (Some(clear), Some(due)) => Some(clear.min(due)),
            (clear, due) => clear.or(due),
        }
    }

    /// When the next autosave falls due, whether or not the host is busy or a
    /// save is in flight: one interval after the last durable snapshot (or
    /// the opening), or the retry time after a failure. `None` while closed,
    /// disabled or clean.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        if !self.open || !self.config.enabled || !self.is_dirty() {
            return None;
        }
        match self.last_failure {
            Some(failed) if self.failures > 0 && failed >= self.since => {
                failed.checked_add(self.config.retry_delay(self.failures))
            }
            _ => self.since.checked_add(self.config.effective_interval()),
        }
    }

    /// Whether the project may differ from its last durable snapshot. Always
    /// true until the host reports its first [`Event::Edited`].
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.edits == 0 || self.edits > self.durable_edits
    }

    /// Whether the host last reported [`Event::Busy`] (it starts busy).
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Whether a project is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether an autosave is in flight.
    #[must_use]
    pub fn autosave_in_flight(&self) -> bool {
        self.autosave.is_some()
    }

    /// Whether an explicit save is in flight.
    #[must_use]
    pub fn explicit_save_in_flight(&self) -> bool {
        self.explicit.is_some()
    }

    /// Consecutive failed autosaves since the last successful one (or the
    /// opening), for the host to show.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the most recent autosave failed. It stays set after a success,
    /// so a host can still say when the last failure was.
    #[must_use]
    pub fn last_failure(&self) -> Option<Instant> {
        self.last_failure
    }

    /// The settings in force, as given (see [`Config::effective_interval`]).
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The due time, if the host is in a state where an autosave may start.
    fn eligible_due(&self) -> Option<Instant> {
        let blocked = self.busy || self.autosave.is_some() || self.explicit.is_some();
        if blocked { None } else { self.next_due() }
    }

    fn flight(&self) -> Flight {
        Flight {
            edits_at_start: self.edits,
        }
    }

    fn open(&mut self, now: Instant) {
        *self = Self {
            busy: self.busy,
            edits: self.edits,
            durable_edits: self.edits,
            ..Self::new(self.config, now)
        };
    }

    fn close(&mut self) {
        self.open = false;
        self.autosave = None;
        self.explicit = None;
    }

    fn edited(&mut self) {
        // Saturating is safe: 2^64 edits cannot be reported in practice.
        self.edits = self.edits.saturating_add(1);
    }

    fn explicit_finished(&mut self, ok: bool, now: Instant) {
        let Some(flight) = self.explicit.take() else {
            return;
        };
        if ok {
            self.made_durable(flight, now);
            self.clear_since.get_or_insert(now);
        }
    }

    fn autosave_finished(&mut self, ok: bool, now: Instant) {
        let Some(flight) = self.autosave.take() else {
            return;
        };
        if ok {
            self.made_durable(flight, now);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.last_failure = Some(now);
        }
    }

    fn made_durable(&mut self, flight: Flight, now: Instant) {
        // Two saves may finish out of order; the older one must not undo the
        // newer one's progress.
        self.durable_edits = self.durable_edits.max(flight.edits_at_start);
        self.since = self.since.max(now);
    }
}
