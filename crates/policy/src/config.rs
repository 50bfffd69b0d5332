//! How often to autosave, whether at all, and how to retry.

use std::time::Duration;

/// The settings of a [`Policy`](crate::Policy).
///
/// A plain struct: set the fields you care about and take the rest from
/// [`Config::default`]. Out-of-range values are not rejected; the policy reads
/// them through [`Config::effective_interval`] and [`Config::retry_delay`], which
/// are the only places they are clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Time from the last durable snapshot (or from opening the project) until
    /// an autosave falls due. Values under [`Config::MIN_INTERVAL`] count as
    /// that minimum; a value so large that the due time cannot be represented
    /// means the autosave never falls due.
    pub interval: Duration,
    /// Whether the policy autosaves at all. Switching it off drops any pending
    /// autosave; an autosave already in flight still finishes normally.
    pub enabled: bool,
    /// Delay from a failed autosave to the first retry. Each further
    /// consecutive failure doubles the delay, which never exceeds the
    /// effective interval. Values under [`Config::MIN_RETRY`] count as that
    /// minimum.
    pub retry_first: Duration,
}

impl Config {
    /// The shortest interval the policy uses: 30 seconds. Autosaving more often
    /// would spend the host's time on snapshots instead of on the user's work.
    pub const MIN_INTERVAL: Duration = Duration::from_secs(30);

    /// The shortest delay before a retry: one second. An autosave that fails
    /// at once must not be due again at the same instant, or a host polling
    /// in a loop would spin.
    pub const MIN_RETRY: Duration = Duration::from_secs(1);

    /// The default interval: 300 seconds.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

    /// The default delay before the first retry: 30 seconds.
    pub const DEFAULT_RETRY_FIRST: Duration = Duration::from_secs(30);

    /// The interval the policy schedules with: `interval`, raised to
    /// [`Config::MIN_INTERVAL`] if it is shorter.
    #[must_use]
    pub fn effective_interval(&self) -> Duration {
        self.interval.max(Self::MIN_INTERVAL)
    }

    /// The delay from the latest of `failures` consecutive failed autosaves to
    /// the next attempt: `retry_first * 2^(failures - 1)` (with `retry_first`
    /// raised to [`Config::MIN_RETRY`]), capped at
    /// [`Config::effective_interval`]. Zero failures is treated as one.
    #[must_use]
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let interval = self.effective_interval();
        let doubled = 1_u32
            .checked_shl(failures.saturating_sub(1))
            .and_then(|factor| self.retry_first.max(Self::MIN_RETRY).checked_mul(factor));
        // An overflowing delay is longer than any interval, so the cap applies.
        doubled.map_or(interval, |delay| delay.min(interval))
    }
}

impl Default for Config {
    /// Interval 300 s ([`Config::DEFAULT_INTERVAL`]), enabled, first retry
    /// after 30 s ([`Config::DEFAULT_RETRY_FIRST`]).
    fn default() -> Self {
        Self {
            interval: Self::DEFAULT_INTERVAL,
            enabled: true,
            retry_first: Self::DEFAULT_RETRY_FIRST,
        }
    }
}
