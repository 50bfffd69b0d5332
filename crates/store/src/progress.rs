//! Progress of long operations (verify, GC, and in `autosave-tree` restore and directory
//! snapshots): counts of items and bytes done, of totals known before the work starts, handed to
//! a callback the caller supplies.
//!
//! One design serves every operation: the caller passes a [`Progress`] (no callback by default,
//! which costs one branch per step); the operation learns its totals, [`Progress::start`]s a
//! [`Meter`], and [`Meter::advance`]s it as items finish, from any thread.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// How far a long operation has come, as handed to a [`Progress`] callback.
///
/// What an item is depends on the operation: a blob for [`crate::Store::verify_with`] and
/// [`crate::Store::gc_with`], an entry for a restore or a snapshot. `items ≤ items_total` and
/// `bytes ≤ bytes_total` always hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProgressEvent {
    /// Items done.
    pub items: u64,
    /// Items in all.
    pub items_total: u64,
    /// Bytes done.
    pub bytes: u64,
    /// Bytes in all.
    pub bytes_total: u64,
}

impl ProgressEvent {
    /// Whether everything is done.
    pub fn is_done(&self) -> bool {
        self.items == self.items_total && self.bytes == self.bytes_total
    }
}

type Callback = dyn Fn(ProgressEvent) + Send + Sync;

/// Where a long operation reports its progress: a callback, or nowhere ([`Progress::none`], the
/// default).
///
/// The callback runs on whichever thread finished the work (rayon workers included), but calls
/// never overlap and arrive in order: each event's counts are at least the previous one's. The
/// first event reports zero done of the totals; the last, when the operation succeeds, reports
/// the totals. Keep it quick (update a progress bar, store a number): the next step waits for it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use autosave_store::{Progress, ProgressEvent, Store};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = camino::Utf8Path::from_path(dir.path()).expect("UTF-8").join(".autosave");
/// let store = Store::open_or_create(&path)?;
/// let seen: Arc<Mutex<Vec<ProgressEvent>>> = Arc::default();
/// let log = seen.clone();
/// let progress = Progress::new(move |event| log.lock().expect("not poisoned").push(event));
///
/// store.verify_with(true, &progress)?;
/// let last = *seen.lock().expect("not poisoned").last().expect("at least the start");
/// assert!(last.is_done());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Callback>>);

impl Progress {
    /// Reports each step to `callback`.
    pub fn new(callback: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(callback)))
    }

    /// Reports nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// Whether a callback is listening (an operation may skip work that only progress needs).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Starts counting toward the totals, and reports zero done of them.
    pub fn start(&self, items_total: u64, bytes_total: u64) -> Meter<'_> {
        let meter = Meter {
            callback: self.0.as_deref(),
            state: Mutex::new(ProgressEvent {
                items_total,
                bytes_total,
                ..ProgressEvent::default()
            }),
        };
        meter.advance(0, 0);
        meter
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_active() {
            "Progress(callback)"
        } else {
            "Progress(none)"
        })
    }
}

/// Counts the work of one operation toward its totals, reporting each step to the
/// [`Progress`] it was started from. Shared by reference between threads.
pub struct Meter<'a> {
    callback: Option<&'a Callback>,
    state: Mutex<ProgressEvent>,
}

impl Meter<'_> {
    /// Adds `items` and `bytes` done (each capped at its total) and reports the new counts.
    /// Without a callback this does nothing.
    pub fn advance(&self, items: u64, bytes: u64) {
        let Some(callback) = self.callback else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.items = state.items.saturating_add(items).min(state.items_total);
        state.bytes = state.bytes.saturating_add(bytes).min(state.bytes_total);
        // ORDER: reporting under the lock keeps the events in order across threads.
        callback(*state);
    }

    /// Reports the totals as done, if they are not yet: for work the operation found already
    /// done (a file to remove that was gone) or that changed size while it ran.
    pub fn finish(&self) {
        let Some(callback) = self.callback else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.is_done() {
            state.items = state.items_total;
            state.bytes = state.bytes_total;
            callback(*state);
        }
    }
}

impl fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Meter")
            .field("active", &self.callback.is_some())
            .field("state", &state)
            .finish()
    }
}
