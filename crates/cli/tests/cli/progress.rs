//! Progress bars: drawn on stderr only on a terminal, never with `--json`, `-q` or
//! `--no-progress`. A terminal is provided by util-linux `script`, which runs the binary under
//! a pseudo-terminal and copies everything it draws to its stdout.

use std::process::Command;

use crate::{Project, noise};

/// A project with enough data that every command has something to count.
fn project() -> Project {
    let p = Project::new();
    p.write("data/big.bin", &noise(8 << 20, 7));
    p
}

/// The commands that draw progress, each with what it needs (run in order).
const COMMANDS: [&[&str]; 5] = [
    &["snapshot", "."],
    &["restore", "latest", "--target", "../out", "--force"],
    &["check"],
    &["check", "--read-data"],
    &["gc"],
];

#[test]
fn nothing_is_drawn_when_stderr_is_not_a_terminal() {
    let p = project();
    for args in COMMANDS {
        let run = p.run(args).ok();
        assert_eq!(run.stderr, "", "{args:?}");
    }
}

/// Runs the binary with `args` under a pseudo-terminal made by util-linux `script`.
fn on_a_terminal(p: &Project, args: &[&str]) -> String {
    let line = std::iter::once(env!("CARGO_BIN_EXE_autosave"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(p.root())
        .env_remove("AUTOSAVE_STORE")
        .env("TERM", "xterm")
        .env("COLUMNS", "120");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run util-linux `script` (install bsdutils/util-linux): {e}"),
    };
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_terminal_gets_a_bar_with_counts_and_an_eta() {
    let p = project();
    let drawn = on_a_terminal(&p, &["snapshot", "."]);
    // Frames are rate-limited, so which counts get drawn varies; their layout does not.
    let bar_drawn = drawn.split('\r').any(|frame| {
        frame.contains("snapshotting ")
            && frame.contains("/4 entries [")
            && frame.contains("/8.1 MiB ")
            && frame.contains("/s ETA ")
    });
    assert!(bar_drawn, "{drawn:?}");
    assert!(
        drawn.contains("snapshot 1: "),
        "the summary follows: {drawn:?}"
    );
}

#[test]
fn json_quiet_and_no_progress_draw_nothing_on_a_terminal() {
    let p = project();
    let cases: [&[&str]; 3] = [
        &["snapshot", ".", "--json"],
        &["snapshot", ".", "-q"],
        &["snapshot", ".", "--no-progress"],
    ];
    for args in cases {
        let drawn = on_a_terminal(&p, args);
        assert!(!drawn.contains("ETA"), "{args:?}: {drawn:?}");
        assert!(
            !drawn.contains('\u{1b}'),
            "{args:?}: no terminal control: {drawn:?}"
        );
    }
}
