//! Arbitrary event sequences, time steps and settings fed to the policy: it never panics, and
//! the contract of its docs holds after every call.
//!
//! Checked after each event and poll: an autosave is handed out only when one is due, the host
//! is idle, the project is open, enabled and dirty, and no save is in flight; never twice
//! without a finish; a clear is handed out exactly once per successful explicit save (and
//! first); a deadline that has passed means `poll` has work; retry delays stay within
//! `[MIN_RETRY, effective_interval]`.
#![no_main]

use std::time::{Duration, Instant};

use autosave_policy::{Action, Config, Event, Policy};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn config(u: &mut Unstructured<'_>) -> Result<Config> {
    let secs = |u: &mut Unstructured<'_>| -> Result<Duration> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => Duration::from_millis(u.arbitrary::<u16>()?.into()),
            1 => Duration::from_secs(u.arbitrary::<u16>()?.into()),
            2 => Duration::from_secs(u.arbitrary()?),
            _ => Duration::MAX,
        })
    };
    Ok(Config {
        interval: secs(u)?,
        enabled: u.arbitrary()?,
        retry_first: secs(u)?,
    })
}

fn event(u: &mut Unstructured<'_>) -> Result<Event> {
    Ok(match u.int_in_range(0..=10u8)? {
        0 => Event::Opened,
        1 => Event::Closed,
        2 => Event::Busy,
        3 => Event::Idle,
        4 => Event::Edited,
        5 => Event::ExplicitSaveStarted,
        6 => Event::ExplicitSaveFinished { ok: u.arbitrary()? },
        7 => Event::AutosaveStarted,
        8 => Event::AutosaveFinished { ok: u.arbitrary()? },
        9 => Event::ConfigChanged(config(u)?),
        _ => Event::Edited,
    })
}

/// What the harness remembers beside the policy: whether a clear is owed.
struct Host {
    policy: Policy,
    now: Instant,
    clear_owed: bool,
}

impl Host {
    fn handle(&mut self, event: Event) {
        let explicit_was_in_flight = self.policy.explicit_save_in_flight();
        let was_open = self.policy.is_open();
        self.policy.handle(event, self.now);
        match event {
            Event::Opened => self.clear_owed = false,
            Event::ExplicitSaveFinished { ok: true } if explicit_was_in_flight && was_open => {
                self.clear_owed = true;
            }
            _ => {}
        }
        self.check_state();
    }

    fn poll(&mut self) {
        let deadline = self.policy.deadline();
        let due = self.policy.next_due();
        let blocked = self.policy.is_busy()
            || self.policy.autosave_in_flight()
            || self.policy.explicit_save_in_flight();
        match self.policy.poll(self.now) {
            Some(Action::ClearSuperseded) => {
                assert!(self.clear_owed, "a clear nobody asked for");
                self.clear_owed = false;
            }
            Some(Action::Autosave) => {
                assert!(!self.clear_owed, "a pending clear comes first");
                assert!(!blocked, "an autosave while busy or with a save in flight");
                assert!(
                    due.is_some_and(|d| d <= self.now),
                    "an autosave before it was due"
                );
                assert!(
                    self.policy.autosave_in_flight(),
                    "a handed-out autosave is in flight"
                );
                assert_eq!(
                    self.policy.poll(self.now),
                    None,
                    "two autosaves without a finish"
                );
            }
            Some(other) => panic!("unknown action {other:?}"),
            None => {
                assert!(!self.clear_owed, "an owed clear was not handed out");
                assert!(
                    deadline.is_none_or(|d| d > self.now),
                    "a deadline passed but poll had no work"
                );
            }
        }
        self.check_state();
    }

    fn check_state(&self) {
        let p = &self.policy;
        let config = p.config();
        assert!(config.effective_interval() >= Config::MIN_INTERVAL);
        for failures in [0, 1, 2, p.failures(), u32::MAX] {
            let delay = config.retry_delay(failures);
            assert!(
                delay <= config.effective_interval(),
                "retry delay over the interval"
            );
            assert!(delay >= Config::MIN_RETRY.min(config.effective_interval()));
        }
        if !p.is_open() || !config.enabled || !p.is_dirty() {
            assert_eq!(p.next_due(), None, "due while closed, disabled or clean");
        }
        let blocked = p.is_busy() || p.autosave_in_flight() || p.explicit_save_in_flight();
        if blocked && !self.clear_owed {
            assert_eq!(p.deadline(), None, "a deadline while nothing can start");
        }
        if self.clear_owed {
            assert!(
                p.deadline().is_some_and(|d| d <= self.now),
                "an owed clear is due at once"
            );
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let start = Instant::now();
    let mut host = Host {
        policy: Policy::new(config(u)?, start),
        now: start,
        clear_owed: false,
    };
    while !u.is_empty() {
        match u.int_in_range(0..=3u8)? {
            0 => {
                let step = Duration::from_millis(u.arbitrary::<u32>()?.into());
                // A clock that cannot advance further stays where it is.
                host.now = host.now.checked_add(step).unwrap_or(host.now);
            }
            1 => host.poll(),
            _ => host.handle(event(u)?),
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
