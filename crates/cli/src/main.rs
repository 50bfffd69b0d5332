//! The `autosave` command-line tool: look into, check, repair and drive an autosave store.
//!
//! `main` parses the command line, runs one command, and turns its outcome into an exit code
//! (see [`exit`]). Every command prints through [`output`]; the commands live in [`cmd`].

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod exit;
mod output;
mod signals;

use std::process::ExitCode;

use clap::Parser as _;
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::cmd::Ctx;
use crate::exit::Exit;
use crate::output::Out;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(Exit::Usage as u8));
        }
    };
    let ctx = Ctx {
        store: cli.global.store.clone(),
        out: Out {
            json: cli.global.json,
            quiet: cli.global.quiet,
            verbose: cli.global.verbose,
            progress: !cli.global.no_progress,
        },
    };
    let result = if matches!(cli.command, Command::Watch(_)) {
        dispatch(&ctx, &cli.command)
    } else {
        signals::exit_on_interrupt()
            .map_err(anyhow::Error::from)
            .and_then(|()| dispatch(&ctx, &cli.command))
    };
    match result {
        Ok(exit) => exit.into(),
        Err(error) => fail(&ctx, name(&cli.command), &error).into(),
    }
}

fn dispatch(ctx: &Ctx, command: &Command) -> anyhow::Result<Exit> {
    match command {
        Command::Demo { mib, dir } => cmd::demo::run(ctx, *mib, dir.as_deref()),
        Command::Init {
            strong,
            format_version,
        } => cmd::init::run(ctx, *strong, *format_version),
        Command::Snapshot { dir, label, always } => {
            cmd::snapshot::run(ctx, dir, label.as_deref(), *always)
        }
        Command::Watch(args) => cmd::watch::run(ctx, args),
        Command::Snapshots => cmd::inspect::snapshots(ctx),
        Command::Show { snap } => cmd::inspect::show(ctx, *snap),
        Command::Ls { snap, path } => cmd::inspect::ls(ctx, *snap, path.as_ref()),
        Command::Cat { snap, path } => cmd::inspect::cat(ctx, *snap, path),
        Command::Diff { a, b } => cmd::diff::run(ctx, *a, *b),
        Command::Restore {
            snap,
            path,
            target,
            force,
            dry_run,
            no_sync,
        } => cmd::restore::run(
            ctx,
            &cmd::restore::Request {
                snap: *snap,
                only: path.as_ref(),
                target,
                force: *force,
                dry_run: *dry_run,
                sync: !*no_sync,
            },
        ),
        Command::Check { read_data } => cmd::check::run(ctx, *read_data),
        Command::Repair { what } => cmd::repair::run(ctx, what),
        Command::Forget(args) => cmd::forget::run(ctx, args),
        Command::Gc {
            dry_run,
            discard_unindexed,
            allow_empty,
        } => cmd::gc::run(ctx, *dry_run, *discard_unindexed, *allow_empty),
        Command::Stats { snap } => cmd::inspect::stats(ctx, *snap),
    }
}

/// The command's name as JSON documents give it.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Demo { .. } => "demo",
        Command::Init { .. } => "init",
        Command::Snapshot { .. } => "snapshot",
        Command::Watch(_) => "watch",
        Command::Snapshots => "snapshots",
        Command::Show { .. } => "show",
        Command::Ls { .. } => "ls",
        Command::Cat { .. } => "cat",
        Command::Diff { .. } => "diff",
        Command::Restore { .. } => "restore",
        Command::Check { .. } => "check",
        Command::Repair { .. } => "repair",
        Command::Forget(_) => "forget",
        Command::Gc { .. } => "gc",
        Command::Stats { .. } => "stats",
    }
}

/// The way out of an error, appended to its line.
fn hint(ctx: &Ctx, error: &anyhow::Error, exit: Exit) -> String {
    match exit::store_error(error) {
        Some(autosave::store::Error::NewerFormat { .. }) => {
            return " (upgrade autosave to use this store)".to_owned();
        }
        // Its message says what to do; no command opens the store without FORMAT.
        Some(autosave::store::Error::MissingFormat { .. }) => return String::new(),
        Some(autosave::store::Error::BadFormat { .. }) => {
            return " (no command opens a store without a readable FORMAT: put it back from a \
                    backup)"
                .to_owned();
        }
        Some(autosave::store::Error::DamagedIndex { .. }) => {
            return format!(
                " (the index is damaged; the blob files are not: run `autosave {}repair index`)",
                ctx.store_flag()
            );
        }
        Some(autosave::store::Error::GcRefused {
            reason: autosave::store::GcRefusal::UnindexedSnapshots { .. },
        }) => {
            let store = ctx.store_flag();
            return format!(
                " (run `autosave {store}repair index` to bring them back, or \
                 `autosave {store}gc --discard-unindexed` to delete them)"
            );
        }
        Some(autosave::store::Error::GcRefused {
            reason: autosave::store::GcRefusal::WouldDeleteEverything { .. },
        }) => {
            return format!(
                " (if every snapshot was deleted on purpose, run `autosave {}gc --allow-empty`)",
                ctx.store_flag()
            );
        }
        _ => {}
    }
    match exit {
        Exit::NoStore => {
            " (create one with `autosave init` or `autosave snapshot DIR`, or name one with --store)"
                .to_owned()
        }
        Exit::Damaged => format!(
            " (the store is damaged: run `autosave {}check --read-data`)",
            ctx.store_flag()
        ),
        _ => String::new(),
    }
}

#[derive(Serialize)]
struct ErrorDoc {
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    exit_code: i32,
    message: String,
}

/// Reports a failed command: one line on stderr (and with `--json`, an error document on
/// stdout); returns its exit code.
fn fail(ctx: &Ctx, command: &str, error: &anyhow::Error) -> Exit {
    let exit = exit::of_error(error);
    let message = format!("{}{}", output::error_chain(error), hint(ctx, error, exit));
    output::stderr_line(&format!("error: {message}"));
    if ctx.out.json {
        let doc = ErrorDoc {
            error: ErrorBody {
                exit_code: exit.code(),
                message,
            },
        };
        let _ = ctx.out.emit(command, &doc, |_| String::new());
    }
    exit
}
