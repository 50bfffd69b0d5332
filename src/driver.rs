//! [`Driver`]: runs the autosave policy on a background thread against the real clock, for
//! hosts without an event loop of their own.
//!
//! The host reports what happens ([`autosave_policy::Event`]: busy, idle, edited, ...) with
//! [`Driver::send`]; when an autosave is due and the host is idle, the driver asks the host for
//! its tree ([`Host::capture`]), autosaves it, and hands the result to [`Host::report`]. The
//! host's own saves go through [`Driver::save_explicit`], so that they never overlap an
//! autosave and the policy learns of them.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use autosave_policy::{Action, Config, Event, Policy};
use autosave_tree::Node;

use crate::error::Result;
use crate::session::{SaveReport, Session};

/// The host side of a [`Driver`].
pub trait Host: Send + 'static {
    /// The current tree, captured when an autosave is due. Called on the driver's thread.
    fn capture(&mut self) -> Vec<Node<'static>>;
    /// The outcome of an autosave.
    fn report(&mut self, result: &Result<SaveReport>);
}

enum Command {
    Event(Event),
    SaveExplicit(Vec<Node<'static>>, Sender<Result<SaveReport>>),
    Stop,
}

/// A background autosave loop. Dropping it without [`Driver::stop`] stops it too.
#[derive(Debug)]
pub struct Driver {
    commands: Sender<Command>,
    thread: Option<JoinHandle<Session>>,
}

impl Driver {
    /// Starts the loop; the policy treats the project as opened now and the host as busy until
    /// it sends [`Event::Idle`].
    pub fn start(session: Session, config: Config, host: impl Host) -> Self {
        let (commands, inbox) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            run(session, Policy::new(config, Instant::now()), host, &inbox)
        });
        Self {
            commands,
            thread: Some(thread),
        }
    }

    /// Reports an event to the policy.
    pub fn send(&self, event: Event) {
        // A stopped driver has nothing left to inform.
        let _ = self.commands.send(Command::Event(event));
    }

    /// Records `nodes` as an explicit save (a baseline, see [`Session::save_explicit`]) on the
    /// driver's thread, once the autosave in flight, if any, has finished, and tells the policy
    /// ([`Event::ExplicitSaveStarted`], then [`Event::ExplicitSaveFinished`]): after a durable
    /// save the project counts as clean and the interval starts again. Returns when the save is
    /// durable, or has failed. [`Error::DriverStopped`](crate::Error::DriverStopped) if the
    /// driver's loop is gone.
    pub fn save_explicit(&self, nodes: Vec<Node<'static>>) -> Result<SaveReport> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::SaveExplicit(nodes, reply))
            .map_err(|_| crate::Error::DriverStopped)?;
        answer.recv().map_err(|_| crate::Error::DriverStopped)?
    }

    /// Stops the loop after the autosave in flight, if any, and gives the session back.
    pub fn stop(mut self) -> Option<Session> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<Session> {
        let _ = self.commands.send(Command::Stop);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    mut session: Session,
    mut policy: Policy,
    mut host: impl Host,
    inbox: &Receiver<Command>,
) -> Session {
    loop {
        let now = Instant::now();
        while let Some(action) = policy.poll(now) {
            if action == Action::Autosave {
                let result = session.autosave(&host.capture());
                policy.handle(
                    Event::AutosaveFinished { ok: result.is_ok() },
                    Instant::now(),
                );
                host.report(&result);
            }
            // ClearSuperseded needs nothing here: Session::save_explicit clears after its
            // baseline is durable.
        }
        let wait = policy.deadline().map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(Instant::now())
        });
        match inbox.recv_timeout(wait) {
            Ok(Command::Event(event)) => policy.handle(event, Instant::now()),
            Ok(Command::SaveExplicit(nodes, reply)) => {
                policy.handle(Event::ExplicitSaveStarted, Instant::now());
                let result = session.save_explicit(&nodes);
                policy.handle(
                    Event::ExplicitSaveFinished { ok: result.is_ok() },
                    Instant::now(),
                );
                // A host that stopped waiting has nothing to be told.
                let _ = reply.send(result);
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return session,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}
