//! The policy against a hand-rolled model, over random event sequences with
//! random time steps, and a simulated well-behaved host that polls at every
//! deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use autosave_policy::{Action, Config, Event, Policy};
use proptest::prelude::*;

use crate::at;

/// What the policy should believe, kept in a different shape: the model
/// remembers which edits no durable snapshot holds, not counters.
#[derive(Clone, Debug)]
struct Model {
    config: Config,
    open: bool,
    busy: bool,
    /// Whether the host has ever reported an edit.
    tracks_edits: bool,
    next_edit: u64,
    unsaved: BTreeSet<u64>,
    /// The unsaved edits each in-flight save may hold.
    autosave: Option<BTreeSet<u64>>,
    explicit: Option<BTreeSet<u64>>,
    durable_at: Instant,
    failures: u32,
    last_failure: Option<Instant>,
    clear_owed_since: Option<Instant>,
}

impl Model {
    fn new(config: Config, now: Instant) -> Self {
        Self {
            config,
            open: true,
            busy: true,
            tracks_edits: false,
            next_edit: 0,
            unsaved: BTreeSet::new(),
            autosave: None,
            explicit: None,
            durable_at: now,
            failures: 0,
            last_failure: None,
            clear_owed_since: None,
        }
    }

    fn dirty(&self) -> bool {
        !self.tracks_edits || !self.unsaved.is_empty()
    }

    fn blocked(&self) -> bool {
        self.busy || self.autosave.is_some() || self.explicit.is_some()
    }

    fn interval(&self) -> Duration {
        self.config.interval.max(Duration::from_secs(30))
    }

    fn retry_delay(&self) -> Duration {
        let mut delay = self.config.retry_first.max(Duration::from_secs(1));
        for _ in 1..self.failures {
            if delay >= self.interval() {
                break;
            }
            delay = delay.saturating_mul(2);
        }
        delay.min(self.interval())
    }

    /// When the next autosave falls due, ignoring busy and flights.
    fn due(&self) -> Option<Instant> {
        if !self.open || !self.config.enabled || !self.dirty() {
            return None;
        }
        let retrying = self.failures > 0 && self.last_failure >= Some(self.durable_at);
        match self.last_failure {
            Some(failed) if retrying => failed.checked_add(self.retry_delay()),
            _ => self.durable_at.checked_add(self.interval()),
        }
    }

    fn eligible_due(&self) -> Option<Instant> {
        if self.blocked() { None } else { self.due() }
    }

    fn deadline(&self) -> Option<Instant> {
        [self.clear_owed_since, self.eligible_due()]
            .into_iter()
            .flatten()
            .min()
    }

    fn expected_poll(&self, now: Instant) -> Option<Action> {
        if self.clear_owed_since.is_some() {
            Some(Action::ClearSuperseded)
        } else if self.eligible_due().is_some_and(|due| due <= now) {
            Some(Action::Autosave)
        } else {
            None
        }
    }

    /// Whether `event` is allowed to move the deadline earlier.
    fn justifies_earlier_deadline(&self, event: Event) -> bool {
        match event {
            Event::Opened | Event::Idle | Event::ConfigChanged(_) => true,
            Event::Edited => !self.dirty(),
            Event::AutosaveFinished { .. } => self.autosave.is_some(),
            Event::ExplicitSaveFinished { .. } => self.explicit.is_some(),
            _ => false,
        }
    }

    fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Opened => {
                *self = Self {
                    config: self.config,
                    busy: self.busy,
                    tracks_edits: self.tracks_edits,
                    next_edit: self.next_edit,
                    ..Self::new(self.config, now)
                };
            }
            Event::Closed => {
                self.open = false;
                self.autosave = None;
                self.explicit = None;
            }
            Event::Busy => self.busy = true,
            Event::Idle => self.busy = false,
            Event::ConfigChanged(config) => self.config = config,
            _ if !self.open => {}
            other => self.handle_open(other, now),
        }
    }

    fn handle_open(&mut self, event: Event, now: Instant) {
        match event {
            Event::Edited => {
                self.tracks_edits = true;
                self.unsaved.insert(self.next_edit);
                self.next_edit += 1;
            }
            Event::ExplicitSaveStarted if self.explicit.is_none() => {
                self.explicit = Some(self.unsaved.clone());
            }
            Event::AutosaveStarted if self.autosave.is_none() => {
                self.autosave = Some(self.unsaved.clone());
            }
            Event::ExplicitSaveFinished { ok } => {
                if let Some(saved) = self.explicit.take().filter(|_| ok) {
                    self.made_durable(&saved, now);
                    self.clear_owed_since.get_or_insert(now);
                }
            }
            Event::AutosaveFinished { ok } => self.autosave_finished(ok, now),
            _ => {}
        }
    }

    fn autosave_finished(&mut self, ok: bool, now: Instant) {
        let Some(saved) = self.autosave.take() else {
            return;
        };
        if ok {
            self.made_durable(&saved, now);
            self.failures = 0;
        } else {
            self.failures += 1;
            self.last_failure = Some(now);
        }
    }

    fn made_durable(&mut self, saved: &BTreeSet<u64>, now: Instant) {
        self.unsaved.retain(|edit| !saved.contains(edit));
        self.durable_at = self.durable_at.max(now);
    }

    fn polled(&mut self, action: Option<Action>) {
        match action {
            Some(Action::ClearSuperseded) => self.clear_owed_since = None,
            Some(Action::Autosave) => self.autosave = Some(self.unsaved.clone()),
            _ => {}
        }
    }
}

/// The policy and its model side by side; every call checks the invariants.
struct Harness {
    policy: Policy,
    model: Model,
    now: Instant,
}

impl Harness {
    fn new(config: Config) -> Self {
        Self {
            policy: Policy::new(config, at(0)),
            model: Model::new(config, at(0)),
            now: at(0),
        }
    }

    fn advance(&mut self, step: Duration) {
        self.now += step;
    }

    fn handle(&mut self, event: Event) {
        let before = self.policy.deadline();
        let justified = self.model.justifies_earlier_deadline(event);
        self.policy.handle(event, self.now);
        self.model.handle(event, self.now);
        self.check_state(&format!("after {event:?}"));
        if !justified {
            check_not_earlier(before, self.policy.deadline(), &format!("{event:?}"));
        }
    }

    fn poll(&mut self) -> Option<Action> {
        let before = self.policy.deadline();
        let action = self.policy.poll(self.now);
        self.check_action(action);
        assert_eq!(action, self.model.expected_poll(self.now), "poll result");
        self.model.polled(action);
        self.check_state(&format!("after polling {action:?}"));
        check_not_earlier(before, self.policy.deadline(), "poll");
        action
    }

    /// The safety invariants, stated directly rather than through the model.
    fn check_action(&self, action: Option<Action>) {
        let model = &self.model;
        if action == Some(Action::Autosave) {
            assert!(!model.busy, "an autosave while the host is busy");
            assert!(
                model.autosave.is_none(),
                "an autosave while one is in flight"
            );
            assert!(
                model.explicit.is_none(),
                "an autosave during an explicit save"
            );
            assert!(model.dirty(), "an autosave of a clean project");
            assert!(model.config.enabled && model.open, "an autosave while off");
        }
        if action == Some(Action::ClearSuperseded) {
            assert!(
                model.clear_owed_since.is_some(),
                "a clear without a successful explicit save since the last one"
            );
        }
    }

    fn check_state(&self, context: &str) {
        let (policy, model) = (&self.policy, &self.model);
        assert_eq!(policy.is_open(), model.open, "open {context}");
        assert_eq!(policy.is_busy(), model.busy, "busy {context}");
        assert_eq!(policy.is_dirty(), model.dirty(), "dirty {context}");
        let flights = (
            policy.autosave_in_flight(),
            policy.explicit_save_in_flight(),
        );
        let model_flights = (model.autosave.is_some(), model.explicit.is_some());
        assert_eq!(flights, model_flights, "in flight {context}");
        assert_eq!(policy.failures(), model.failures, "failures {context}");
        assert_eq!(
            policy.last_failure(),
            model.last_failure,
            "last failure {context}"
        );
        assert_eq!(policy.next_due(), model.due(), "next due {context}");
        assert_eq!(policy.deadline(), model.deadline(), "deadline {context}");
    }

    /// Liveness: an idle, dirty, enabled host with nothing in flight has a
    /// deadline no later than its due time, and polling then yields the
    /// autosave.
    fn check_live(&self) {
        let Some(due) = self.model.eligible_due() else {
            return;
        };
        let deadline = self
            .policy
            .deadline()
            .expect("an eligible host has a deadline");
        assert!(deadline <= due, "deadline {deadline:?} after due {due:?}");
        let mut probe = self.policy.clone();
        let wake = self.now.max(due);
        let actions: Vec<_> = std::iter::from_fn(|| probe.poll(wake)).take(3).collect();
        assert!(
            actions.contains(&Action::Autosave),
            "no autosave at its due time: {actions:?}"
        );
    }
}

fn check_not_earlier(before: Option<Instant>, after: Option<Instant>, cause: &str) {
    let moved_back = match (before, after) {
        (Some(before), Some(after)) => after < before,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    assert!(
        !moved_back,
        "{cause} moved the deadline from {before:?} to {after:?}"
    );
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Handle(Event),
    Poll,
}

fn config() -> impl Strategy<Value = Config> {
    (0_u64..=900, prop::bool::weighted(0.85), 0_u64..=120).prop_map(|(interval, enabled, retry)| {
        Config {
            interval: Duration::from_secs(interval),
            enabled,
            retry_first: Duration::from_secs(retry),
        }
    })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => Just(Event::Opened),
        1 => Just(Event::Closed),
        3 => Just(Event::Busy),
        4 => Just(Event::Idle),
        6 => Just(Event::Edited),
        2 => Just(Event::ExplicitSaveStarted),
        2 => any::<bool>().prop_map(|ok| Event::ExplicitSaveFinished { ok }),
        1 => Just(Event::AutosaveStarted),
        3 => any::<bool>().prop_map(|ok| Event::AutosaveFinished { ok }),
        1 => config().prop_map(Event::ConfigChanged),
    ]
}

fn timed_op() -> impl Strategy<Value = (Duration, Op)> {
    let step = prop_oneof![1 => Just(0_u64), 4 => 0_u64..=400_000].prop_map(Duration::from_millis);
    let op = prop_oneof![3 => event().prop_map(Op::Handle), 2 => Just(Op::Poll)];
    (step, op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_sequences_keep_every_invariant(
        initial in config(),
        ops in prop::collection::vec(timed_op(), 1..200),
    ) {
        let mut harness = Harness::new(initial);
        harness.check_state("at opening");
        for (step, op) in ops {
            harness.advance(step);
            match op {
                Op::Handle(event) => harness.handle(event),
                Op::Poll => {
                    harness.poll();
                }
            }
            harness.check_live();
        }
    }

    #[test]
    fn a_host_that_polls_at_its_deadlines_gets_each_autosave_no_later_than_due(
        initial in config(),
        script in prop::collection::vec((0_u64..=900, host_step()), 1..60),
        outcomes in prop::collection::vec((0_u64..=20, prop::bool::weighted(0.7)), 1..8),
    ) {
        let mut host = Host { harness: Harness::new(initial), outcomes, next_outcome: 0 };
        host.harness.handle(Event::Idle);
        for (gap, step) in script {
            let until = host.harness.now + Duration::from_secs(gap);
            host.sleep_until(until);
            host.perform(step);
            host.work();
        }
        let end = host.harness.now + Duration::from_secs(3600);
        host.sleep_until(end);
    }
}

/// What the simulated user or kernel does between the host's wake-ups.
#[derive(Clone, Copy, Debug)]
enum HostStep {
    Edit,
    Busy,
    Idle,
    ExplicitSave { took: u64, ok: bool },
    Configure(Config),
}

fn host_step() -> impl Strategy<Value = HostStep> {
    prop_oneof![
        6 => Just(HostStep::Edit),
        2 => Just(HostStep::Busy),
        3 => Just(HostStep::Idle),
        2 => (0_u64..=30, any::<bool>()).prop_map(|(took, ok)| HostStep::ExplicitSave { took, ok }),
        1 => config().prop_map(HostStep::Configure),
    ]
}

/// A well-behaved host: it polls after every event and at every deadline,
/// and answers every autosave.
struct Host {
    harness: Harness,
    /// How long each autosave takes and whether it succeeds, used in turn.
    outcomes: Vec<(u64, bool)>,
    next_outcome: usize,
}

impl Host {
    /// Sleeps until `until`, waking at every deadline on the way.
    fn sleep_until(&mut self, until: Instant) {
        loop {
            // Everything overdue was handled before the host went to sleep.
            self.harness.check_live();
            if let Some(due) = self.harness.model.eligible_due() {
                assert!(
                    due > self.harness.now,
                    "an overdue autosave was left pending"
                );
            }
            match self.harness.policy.deadline() {
                Some(deadline) if deadline <= until => self.wake_at(deadline),
                _ => break,
            }
        }
        self.harness.now = self.harness.now.max(until);
    }

    fn wake_at(&mut self, deadline: Instant) {
        assert!(
            deadline >= self.harness.now,
            "a deadline in the past at a wake-up"
        );
        self.harness.now = deadline;
        let due = self.harness.model.eligible_due();
        let first = self.work();
        if first == Some(Action::Autosave) {
            assert_eq!(Some(deadline), due, "the autosave fired at its due time");
        }
    }

    /// Polls until there is nothing left to do; returns the first action.
    fn work(&mut self) -> Option<Action> {
        let first = self.harness.poll();
        let mut action = first;
        while let Some(done) = action {
            if done == Action::Autosave {
                self.autosave();
            }
            action = self.harness.poll();
        }
        first
    }

    fn autosave(&mut self) {
        let (took, ok) = self.outcomes[self.next_outcome % self.outcomes.len()];
        self.next_outcome += 1;
        self.harness.advance(Duration::from_secs(took));
        self.harness.handle(Event::AutosaveFinished { ok });
    }

    fn perform(&mut self, step: HostStep) {
        match step {
            HostStep::Edit => self.harness.handle(Event::Edited),
            HostStep::Busy => self.harness.handle(Event::Busy),
            HostStep::Idle => self.harness.handle(Event::Idle),
            HostStep::Configure(config) => self.harness.handle(Event::ConfigChanged(config)),
            HostStep::ExplicitSave { took, ok } => {
                self.harness.handle(Event::ExplicitSaveStarted);
                self.harness.advance(Duration::from_secs(took));
                self.harness.handle(Event::ExplicitSaveFinished { ok });
            }
        }
    }
}
