//! Ctrl-C: most commands end at once with exit code 130 (the store is crash-safe, so dying
//! anywhere leaves it consistent); `watch` finishes its work first and ends on a second one.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use crate::exit::Exit;

static ALWAYS: AtomicBool = AtomicBool::new(true);
static STOP: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C end the process at once with [`Exit::Interrupted`].
pub(crate) fn exit_on_interrupt() -> io::Result<()> {
    flag::register_conditional_shutdown(SIGINT, Exit::Interrupted.code(), &ALWAYS)?;
    Ok(())
}

/// Makes the first Ctrl-C (or SIGTERM) a request to stop, seen by [`stop_requested`]; a second
/// one ends the process at once with [`Exit::Interrupted`].
pub(crate) fn stop_gracefully() -> io::Result<()> {
    for signal in [SIGINT, SIGTERM] {
        // ORDER: the shutdown is registered first so that it sees the flag as the previous
        // signal left it, and fires only on the second one.
        flag::register_conditional_shutdown(signal, Exit::Interrupted.code(), &STOP)?;
        flag::register(signal, &STOP)?;
    }
    Ok(())
}

/// Whether a stop was requested (see [`stop_gracefully`]).
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
