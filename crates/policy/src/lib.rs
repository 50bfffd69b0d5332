//! A sans-IO autosave scheduler: it decides *when* to autosave.
//!
//! The policy is a pure state machine in the style of quinn-proto. It reads no
//! clock, starts no thread or timer and does no I/O; the host passes the
//! current [`Instant`](std::time::Instant) into every call and performs the
//! work itself.
//!
//! - [`Policy`] holds the state. [`Policy::handle`] takes an [`Event`] from the
//!   host, [`Policy::poll`] hands out the next [`Action`], and
//!   [`Policy::deadline`] says when to poll again.
//! - [`Event`] is what happened: the project was opened or closed, the host
//!   became busy or idle, the user edited, a save started or finished, the
//!   settings changed.
//! - [`Action`] is what to do: take an autosave, or clear the autosaves an
//!   explicit save has superseded.
//! - [`Config`] holds the interval (300 s by default, never under 30 s),
//!   the on/off switch and the retry backoff.
//!
//! # Contract
//!
//! - The host reports each event as it happens, then polls until `poll`
//!   returns `None`, then sleeps until `deadline` (or its next event).
//! - An autosave falls due one interval after the last durable snapshot or
//!   the opening. It is never started while the host is busy, while another
//!   autosave or an explicit save is in flight, while autosave is disabled or
//!   while nothing changed; a deferred autosave fires once, on the idle
//!   transition.
//! - `poll` returning [`Action::Autosave`] marks the autosave as in flight, so
//!   two polls in a row never both return it. The host answers with
//!   [`Event::AutosaveFinished`].
//! - Edits are tracked by counting [`Event::Edited`]. A host that never sends
//!   it is treated as always possibly dirty. Edits reported while a save is in
//!   flight may be missing from it, so they keep the project dirty after it
//!   finishes.
//! - [`Action::ClearSuperseded`] is requested once per successful explicit
//!   save (successes not yet polled share one request), never after a failed
//!   one.
//! - A failed autosave is retried 30 s, 60 s, 120 s ... after each failure,
//!   capped at the interval; [`Policy::failures`] and
//!   [`Policy::last_failure`] let the host show it.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use autosave_policy::{Action, Config, Event, Policy};
//!
//! let opened = Instant::now();
//! let mut policy = Policy::new(Config::default(), opened);
//! policy.handle(Event::Idle, opened);
//! policy.handle(Event::Edited, opened + Duration::from_secs(5));
//!
//! // The host sleeps until the deadline, then polls until there is no more work.
//! let now = policy.deadline().expect("an idle, edited project has a deadline");
//! assert_eq!(now, opened + Duration::from_secs(300));
//! let mut autosaves = 0;
//! while let Some(action) = policy.poll(now) {
//!     match action {
//!         Action::Autosave => {
//!             autosaves += 1; // write the snapshot here
//!             policy.handle(Event::AutosaveFinished { ok: true }, now);
//!         }
//!         Action::ClearSuperseded => {} // delete superseded autosaves here
//!         _ => {}
//!     }
//! }
//! assert_eq!(autosaves, 1);
//! // Nothing changed since that snapshot, so nothing is due.
//! assert_eq!(policy.deadline(), None);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod event;
mod policy;

pub use crate::{
    config::Config,
    event::{Action, Event},
    policy::Policy,
};
