//! Everything the CLI shows: JSON documents or aligned human text on stdout, messages on stderr,
//! progress bars on a terminal, humanised sizes and local times.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use autosave::store::{Digest, Progress, ProgressEvent};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use serde::Serialize;

/// The version of every JSON document's layout; bumped when a field changes meaning or goes.
pub(crate) const SCHEMA: u32 = 1;

/// How to print, from the global flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Out {
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: u8,
    pub(crate) progress: bool,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    schema: u32,
    command: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

impl Out {
    /// Prints the result of `command`: `doc` as one JSON document with `--json`, else the text
    /// `human` renders.
    pub(crate) fn emit<T: Serialize>(
        &self,
        command: &str,
        doc: &T,
        human: impl FnOnce(&T) -> String,
    ) -> io::Result<()> {
        if self.json {
            let envelope = Envelope {
                schema: SCHEMA,
                command,
                body: doc,
            };
            let mut text = serde_json::to_string_pretty(&envelope).map_err(io::Error::other)?;
            text.push('\n');
            stdout(&text)
        } else {
            stdout(&human(doc))
        }
    }

    /// Like [`Out::emit`] for commands that change the store: `-q` silences the human summary.
    pub(crate) fn report<T: Serialize>(
        &self,
        command: &str,
        doc: &T,
        human: impl FnOnce(&T) -> String,
    ) -> io::Result<()> {
        if self.quiet && !self.json {
            return Ok(());
        }
        self.emit(command, doc, human)
    }

    /// A note on stderr for a person (not with `--json` or `-q`).
    pub(crate) fn note(&self, text: &str) {
        if !self.json && !self.quiet {
            stderr_line(text);
        }
    }

    /// A warning on stderr: shown unless `-q`, also with `--json` (stdout stays one document).
    pub(crate) fn warn(&self, text: &str) {
        if !self.quiet {
            stderr_line(&format!("warning: {text}"));
        }
    }

    /// Whether to draw progress: wanted, on a terminal, and neither `--json` nor `-q`.
    fn shows_progress(&self) -> bool {
        self.progress && !self.json && !self.quiet && io::stderr().is_terminal()
    }

    /// A spinner on stderr showing `message` and the elapsed time, if progress is shown;
    /// finished (and cleared) when dropped.
    pub(crate) fn spinner(&self, message: &str) -> Spinner {
        Spinner(self.shows_progress().then(|| spinning(message)))
    }

    /// A progress bar on stderr, if progress is shown: a spinner showing `message` until the
    /// operation given [`Bar::progress`] knows its totals, then a bar of its bytes (when it
    /// counts any) or of its items, named `unit`. Cleared when dropped.
    pub(crate) fn bar(&self, message: &str, unit: &'static str) -> Bar {
        Bar {
            bar: self.shows_progress().then(|| spinning(message)),
            unit,
        }
    }

    /// A digest as shown to people: 12 hex digits, or all of them with `-v`.
    pub(crate) fn digest(&self, digest: &Digest) -> String {
        let hex = digest.to_string();
        if self.verbose > 0 {
            hex
        } else {
            hex[..12.min(hex.len())].to_owned()
        }
    }
}

fn spinning(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A progress bar fed by a library operation, or nothing; cleared when dropped.
#[must_use = "the bar disappears when dropped"]
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
    unit: &'static str,
}

impl Bar {
    /// What to hand the operation: updates this bar, or reports nowhere when there is none.
    pub(crate) fn progress(&self) -> Progress {
        let Some(bar) = self.bar.clone() else {
            return Progress::none();
        };
        let unit = self.unit;
        let styled = AtomicBool::new(false);
        Progress::new(move |event| {
            let bytes = event.bytes_total > 0;
            // The totals never change: the first event sets the bar up.
            if !styled.swap(true, Ordering::Relaxed) {
                bar.set_length(if bytes {
                    event.bytes_total
                } else {
                    event.items_total
                });
                bar.set_style(bar_style(bytes, unit));
            }
            show(&bar, unit, event);
        })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `snapshotting 1204/3391 entries [####>----] 1.2 GiB/3.4 GiB 210.5 MiB/s ETA 11s`, or
/// without bytes `collecting garbage [####>----] 5120/20480 blobs 41234/s ETA 1s`; the bar takes
/// what the terminal's width leaves.
fn bar_style(bytes: bool, unit: &str) -> ProgressStyle {
    let template = if bytes {
        "{msg} {prefix} [{wide_bar}] {done}/{total} {rate} ETA {eta}".to_owned()
    } else {
        format!("{{msg}} [{{wide_bar}}] {{pos}}/{{len}} {unit} {{rate}} ETA {{eta}}")
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
        .with_key("done", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&size(s.pos()));
        })
        .with_key("total", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&size(s.len().unwrap_or(0)));
        });
    if bytes {
        style.with_key("rate", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = write!(w, "{}/s", size(s.per_sec() as u64));
        })
    } else {
        style.with_key("rate", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = write!(w, "{:.0}/s", s.per_sec());
        })
    }
}

fn show(bar: &ProgressBar, unit: &str, e: ProgressEvent) {
    if e.bytes_total > 0 {
        bar.set_prefix(format!("{}/{} {unit}", e.items, e.items_total));
        bar.set_position(e.bytes);
    } else {
        bar.set_position(e.items);
    }
}

/// A progress spinner, or nothing; cleared when dropped.
#[must_use = "the spinner disappears when dropped"]
pub(crate) struct Spinner(Option<ProgressBar>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Writes to stdout. A closed pipe (`autosave cat … | head`) is not an error worth reporting.
pub(crate) fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One line on stderr; a failure to write it has nowhere better to go.
pub(crate) fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause whose text the line
/// already ends with (the library errors put their OS error in their own message too).
pub(crate) fn error_chain(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `1.5 KiB`-style sizes (binary units, one decimal; bytes exact).
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A signed size change: `+1.5 KiB`, `-12 B`, `0 B`.
pub(crate) fn size_delta(old: u64, new: u64) -> String {
    match new.cmp(&old) {
        std::cmp::Ordering::Greater => format!("+{}", size(new - old)),
        std::cmp::Ordering::Less => format!("-{}", size(old - new)),
        std::cmp::Ordering::Equal => "0 B".to_owned(),
    }
}

/// Nanoseconds since the epoch as local time, `2026-05-01 14:03:22`.
pub(crate) fn local_time(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => format!("@{ns}ns"),
    }
}

/// A duration for people: `850 ms`, `3.2 s`.
pub(crate) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `1 entry`, `2 entries`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Lays rows out in columns separated by two spaces; columns whose `right` flag is set are
/// right-aligned; the last column is never padded. Ends with a newline per row.
pub(crate) fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            let last = c + 1 == row.len();
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Standard base64 (with padding), for binary content inside a JSON document.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_with_one_decimal() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(size_delta(10, 4), "-6 B");
        assert_eq!(size_delta(0, 2048), "+2.0 KiB");
    }

    #[test]
    fn base64_matches_the_rfc_4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn tables_align_columns_and_do_not_pad_the_last() {
        let rows = vec![
            vec!["ID".into(), "NAME".into()],
            vec!["100".into(), "x".into()],
        ];
        assert_eq!(table(&rows, &[true, false]), " ID  NAME\n100  x\n");
    }
}
