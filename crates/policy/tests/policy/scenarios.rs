//! One scenario per behaviour: each is a table of timed steps, run against a
//! fresh policy opened at second 0.

use std::time::{Duration, Instant};

use autosave_policy::Action::{Autosave, ClearSuperseded};
use autosave_policy::Event::{
    AutosaveFinished, AutosaveStarted, Busy, Closed, ConfigChanged, Edited, ExplicitSaveFinished,
    ExplicitSaveStarted, Idle, Opened,
};
use autosave_policy::{Action, Config, Event, Policy};

use crate::at;

/// One row of a scenario: something the host does, or what it must observe.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The host reports an event.
    On(Event),
    /// `poll` returns exactly this.
    Poll(Option<Action>),
    /// `deadline` is this many seconds after opening.
    Deadline(Option<u64>),
    /// `next_due` is this many seconds after opening.
    NextDue(Option<u64>),
    Dirty(bool),
    Busy(bool),
    /// Whether an autosave and an explicit save are in flight.
    InFlight(bool, bool),
    /// The failure count and the last failure, in seconds after opening.
    Failures(u32, Option<u64>),
}

use Step::{Deadline, Dirty, Failures, InFlight, NextDue, On, Poll};

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn with_interval(seconds: u64) -> Config {
    Config {
        interval: secs(seconds),
        ..Config::default()
    }
}

fn run(config: Config, steps: &[(u64, Step)]) {
    let mut policy = Policy::new(config, at(0));
    for (row, &(time, step)) in steps.iter().enumerate() {
        let context = format!("row {row}, at {time} s: {step:?}");
        apply(&mut policy, at(time), step, &context);
    }
}

fn apply(policy: &mut Policy, now: Instant, step: Step, context: &str) {
    let at_secs = |secs: Option<u64>| secs.map(at);
    match step {
        On(event) => policy.handle(event, now),
        Poll(expected) => assert_eq!(policy.poll(now), expected, "{context}"),
        Deadline(expected) => assert_eq!(policy.deadline(), at_secs(expected), "{context}"),
        NextDue(expected) => assert_eq!(policy.next_due(), at_secs(expected), "{context}"),
        Dirty(expected) => assert_eq!(policy.is_dirty(), expected, "{context}"),
        Step::Busy(expected) => assert_eq!(policy.is_busy(), expected, "{context}"),
        InFlight(autosave, explicit) => {
            let actual = (
                policy.autosave_in_flight(),
                policy.explicit_save_in_flight(),
            );
            assert_eq!(actual, (autosave, explicit), "{context}");
        }
        Failures(count, last) => {
            let actual = (policy.failures(), policy.last_failure());
            assert_eq!(actual, (count, at_secs(last)), "{context}");
        }
    }
}

#[test]
fn the_default_config_autosaves_every_three_hundred_seconds_and_first_retries_after_thirty() {
    let expected = Config {
        interval: secs(300),
        enabled: true,
        retry_first: secs(30),
    };
    assert_eq!(Config::default(), expected);
}

#[test]
fn an_interval_under_thirty_seconds_is_clamped_to_thirty_seconds() {
    assert_eq!(with_interval(5).effective_interval(), secs(30));
    assert_eq!(with_interval(31).effective_interval(), secs(31));
    run(
        with_interval(5),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (0, Deadline(Some(30))),
            (29, Poll(None)),
            (30, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn the_retry_delay_starts_at_thirty_seconds_doubles_and_is_capped_at_the_interval() {
    let config = Config::default();
    let delays: Vec<u64> = (1..=6).map(|n| config.retry_delay(n).as_secs()).collect();
    assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
    assert_eq!(config.retry_delay(u32::MAX), secs(300));
    assert_eq!(
        with_interval(10).retry_delay(1),
        secs(30),
        "the clamped interval caps it"
    );
}

#[test]
fn an_autosave_falls_due_one_interval_after_opening() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (10, On(Edited)),
            (10, Deadline(Some(300))),
            (299, Poll(None)),
            (300, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn an_autosave_falls_due_one_interval_after_the_last_durable_snapshot() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (310, On(AutosaveFinished { ok: true })),
            (320, On(Edited)),
            (320, Deadline(Some(610))),
            (609, Poll(None)),
            (610, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn the_host_starts_busy_and_nothing_fires_until_it_reports_idle() {
    run(
        Config::default(),
        &[
            (0, Step::Busy(true)),
            (0, On(Edited)),
            (0, Deadline(None)),
            (0, NextDue(Some(300))),
            (400, Poll(None)),
            (500, On(Idle)),
            (500, Step::Busy(false)),
            (500, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn an_autosave_while_busy_fires_on_the_idle_transition() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (10, On(Edited)),
            (100, On(Busy)),
            (100, Deadline(None)),
            (300, Poll(None)),
            (450, On(Idle)),
            (450, Deadline(Some(300))),
            (450, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn only_one_autosave_is_pending_however_long_the_host_stays_busy() {
    run(
        Config::default(),
        &[
            (0, On(Edited)),
            (3000, On(Idle)),
            (3000, Poll(Some(Autosave))),
            (3000, Poll(None)),
            (3005, On(AutosaveFinished { ok: true })),
            (3005, Poll(None)),
            (3005, Deadline(None)),
        ],
    );
}

#[test]
fn two_polls_in_a_row_never_both_return_an_autosave() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (300, InFlight(true, false)),
            (300, Poll(None)),
            (900, Poll(None)),
            (900, Deadline(None)),
        ],
    );
}

#[test]
fn reporting_a_polled_autosave_as_started_changes_nothing() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (300, On(AutosaveStarted)),
            (300, InFlight(true, false)),
            (305, Poll(None)),
            (310, On(AutosaveFinished { ok: true })),
            (310, InFlight(false, false)),
            (310, Dirty(false)),
        ],
    );
}

#[test]
fn no_autosave_starts_while_a_host_started_autosave_is_in_flight() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (250, On(AutosaveStarted)),
            (300, Poll(None)),
            (1000, Poll(None)),
            (1000, Deadline(None)),
            (1000, On(AutosaveFinished { ok: true })),
            (1000, Dirty(false)),
            (1000, Deadline(None)),
        ],
    );
}

#[test]
fn no_autosave_starts_while_an_explicit_save_is_in_flight() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (290, On(ExplicitSaveStarted)),
            (290, InFlight(false, true)),
            (300, Poll(None)),
            (400, Poll(None)),
            (400, Deadline(None)),
            (400, On(ExplicitSaveFinished { ok: false })),
            (400, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_clean_project_gets_no_autosave() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, Dirty(true)),
            (10, On(Edited)),
            (300, Poll(Some(Autosave))),
            (301, On(AutosaveFinished { ok: true })),
            (301, Dirty(false)),
            (301, Deadline(None)),
            (301, NextDue(None)),
            (5000, Poll(None)),
        ],
    );
}

#[test]
fn a_host_that_never_reports_edits_is_always_possibly_dirty() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, Dirty(true)),
            (300, Poll(Some(Autosave))),
            (301, On(AutosaveFinished { ok: true })),
            (301, Dirty(true)),
            (301, Deadline(Some(601))),
            (601, Poll(Some(Autosave))),
            (602, On(ExplicitSaveStarted)),
            (603, On(ExplicitSaveFinished { ok: true })),
            (603, Dirty(true)),
        ],
    );
}

#[test]
fn an_edit_while_already_dirty_does_not_move_the_deadline() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (0, Deadline(Some(300))),
            (200, On(Edited)),
            (200, Deadline(Some(300))),
        ],
    );
}

#[test]
fn edits_during_an_autosave_keep_the_project_dirty() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (305, On(Edited)),
            (310, On(AutosaveFinished { ok: true })),
            (310, Dirty(true)),
            (310, Deadline(Some(610))),
            (610, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn edits_during_an_explicit_save_keep_the_project_dirty() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (100, On(ExplicitSaveStarted)),
            (105, On(Edited)),
            (110, On(ExplicitSaveFinished { ok: true })),
            (110, Dirty(true)),
            (110, Poll(Some(ClearSuperseded))),
            (110, Deadline(Some(410))),
            (410, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_successful_explicit_save_requests_clearing_exactly_once() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (100, On(ExplicitSaveStarted)),
            (100, Poll(None)),
            (120, On(ExplicitSaveFinished { ok: true })),
            (120, Deadline(Some(120))),
            (120, Poll(Some(ClearSuperseded))),
            (120, Poll(None)),
            (120, Dirty(false)),
            (120, Deadline(None)),
            (1000, Poll(None)),
        ],
    );
}

#[test]
fn a_failed_explicit_save_clears_nothing_and_keeps_the_timer() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (100, On(ExplicitSaveStarted)),
            (120, On(ExplicitSaveFinished { ok: false })),
            (120, Poll(None)),
            (120, Dirty(true)),
            (120, Deadline(Some(300))),
            (300, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_successful_explicit_save_restarts_the_timer() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (200, On(ExplicitSaveStarted)),
            (210, On(ExplicitSaveFinished { ok: true })),
            (210, Poll(Some(ClearSuperseded))),
            (220, On(Edited)),
            (220, Deadline(Some(510))),
            (300, Poll(None)),
            (509, Poll(None)),
            (510, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn clearing_is_requested_even_while_the_host_is_busy() {
    run(
        Config::default(),
        &[
            (0, On(Edited)),
            (10, On(ExplicitSaveStarted)),
            (20, On(ExplicitSaveFinished { ok: true })),
            (20, Step::Busy(true)),
            (20, Poll(Some(ClearSuperseded))),
            (20, Poll(None)),
        ],
    );
}

#[test]
fn a_shorter_interval_makes_an_overdue_autosave_due_at_once() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (0, Deadline(Some(300))),
            (200, On(ConfigChanged(with_interval(60)))),
            (200, Deadline(Some(60))),
            (200, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_longer_interval_postpones_the_pending_autosave() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (200, On(ConfigChanged(with_interval(600)))),
            (200, Deadline(Some(600))),
            (300, Poll(None)),
            (600, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn disabling_drops_the_pending_autosave_and_enabling_brings_it_back() {
    let disabled = Config {
        enabled: false,
        ..Config::default()
    };
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (200, On(ConfigChanged(disabled))),
            (200, Deadline(None)),
            (200, NextDue(None)),
            (1000, Poll(None)),
            (1000, On(ConfigChanged(Config::default()))),
            (1000, Deadline(Some(300))),
            (1000, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_failed_autosave_is_retried_after_thirty_then_sixty_then_one_hundred_twenty_seconds() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (0, Failures(0, None)),
            (300, Poll(Some(Autosave))),
            (300, On(AutosaveFinished { ok: false })),
            (300, Failures(1, Some(300))),
            (300, Dirty(true)),
            (300, Deadline(Some(330))),
            (329, Poll(None)),
            (330, Poll(Some(Autosave))),
            (330, On(AutosaveFinished { ok: false })),
            (330, Failures(2, Some(330))),
            (330, Deadline(Some(390))),
            (390, Poll(Some(Autosave))),
            (390, On(AutosaveFinished { ok: false })),
            (390, Failures(3, Some(390))),
            (390, Deadline(Some(510))),
        ],
    );
}

#[test]
fn the_retry_delay_never_exceeds_the_interval() {
    run(
        with_interval(60),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (60, Poll(Some(Autosave))),
            (60, On(AutosaveFinished { ok: false })),
            (60, Deadline(Some(90))),
            (90, Poll(Some(Autosave))),
            (90, On(AutosaveFinished { ok: false })),
            (90, Deadline(Some(150))),
            (150, Poll(Some(Autosave))),
            (150, On(AutosaveFinished { ok: false })),
            (150, Deadline(Some(210))),
        ],
    );
}

#[test]
fn a_successful_autosave_resets_the_failure_count_but_keeps_the_last_failure_time() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (300, On(AutosaveFinished { ok: false })),
            (330, Poll(Some(Autosave))),
            (340, On(AutosaveFinished { ok: true })),
            (340, Failures(0, Some(300))),
            (350, On(Edited)),
            (350, Deadline(Some(640))),
            (640, Poll(Some(Autosave))),
            (640, On(AutosaveFinished { ok: false })),
            (640, Failures(1, Some(640))),
            (640, Deadline(Some(670))),
        ],
    );
}

#[test]
fn closing_the_project_drops_the_pending_autosave() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (100, On(Closed)),
            (100, Deadline(None)),
            (400, Poll(None)),
            (400, On(Edited)),
            (500, Poll(None)),
            (500, NextDue(None)),
        ],
    );
}

#[test]
fn reopening_starts_a_fresh_timer_with_a_clean_project_and_no_failures() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (300, Poll(Some(Autosave))),
            (300, On(AutosaveFinished { ok: false })),
            (310, On(Opened)),
            (310, Failures(0, None)),
            (310, Dirty(false)),
            (310, Deadline(None)),
            (320, On(Edited)),
            (320, Deadline(Some(610))),
            (610, Poll(Some(Autosave))),
        ],
    );
}

#[test]
fn a_clear_requested_before_closing_is_still_returned() {
    run(
        Config::default(),
        &[
            (0, On(Edited)),
            (10, On(ExplicitSaveStarted)),
            (20, On(ExplicitSaveFinished { ok: true })),
            (30, On(Closed)),
            (30, Poll(Some(ClearSuperseded))),
            (30, Poll(None)),
        ],
    );
}

#[test]
fn opening_another_project_drops_a_clear_meant_for_the_previous_one() {
    run(
        Config::default(),
        &[
            (0, On(Edited)),
            (10, On(ExplicitSaveStarted)),
            (20, On(ExplicitSaveFinished { ok: true })),
            (30, On(Opened)),
            (30, Poll(None)),
        ],
    );
}

#[test]
fn a_finish_without_a_matching_start_is_ignored() {
    run(
        Config::default(),
        &[
            (0, On(Idle)),
            (0, On(Edited)),
            (100, On(ExplicitSaveFinished { ok: true })),
            (100, Poll(None)),
            (100, Dirty(true)),
            (200, On(AutosaveFinished { ok: true })),
            (200, On(AutosaveFinished { ok: false })),
            (200, Dirty(true)),
            (200, Failures(0, None)),
            (200, Deadline(Some(300))),
        ],
    );
}
