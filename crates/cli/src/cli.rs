//! The command line: global flags, commands and their arguments (clap derive).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use autosave::store::SnapshotId;
use autosave::tree::EntryPath;
use clap::{Args, Parser, Subcommand};

/// Look into, check, repair and drive an autosave store.
#[derive(Debug, Parser)]
#[command(name = "autosave", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The store directory [default: ./.autosave; for `snapshot`/`watch`: DIR/.autosave]
    #[arg(long, global = true, value_name = "PATH", env = "AUTOSAVE_STORE")]
    pub(crate) store: Option<PathBuf>,
    /// Print one JSON document on stdout instead of human output
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Print less: no progress, no summaries of commands that change the store
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more: full digests, per-entry details (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Never show progress bars (they are shown only on a terminal anyway)
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a scripted session on a generated project and show what each step cost
    Demo {
        /// Size of the generated project in MiB
        #[arg(long, default_value_t = 64)]
        mib: usize,
        /// Where to put the project [default: a new temporary directory, kept afterwards]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Create a new, empty store
    Init {
        /// Key blobs by BLAKE3-256 instead of XXH3-128 (for content an attacker could craft)
        #[arg(long)]
        strong: bool,
        /// The store format to write: 1 for a store that builds before byte-plane compression
        /// can read (it never uses it)
        #[arg(long, default_value_t = autosave::store::FORMAT_VERSION,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(autosave::store::FORMAT_VERSION)))]
        format_version: u32,
    },
    /// Snapshot a directory (creates the store if there is none yet); records nothing if the
    /// directory equals the newest snapshot, unless --always
    Snapshot {
        /// The directory to snapshot
        dir: PathBuf,
        /// A label to record with the snapshot [default: the directory's absolute path]
        #[arg(long)]
        label: Option<String>,
        /// Record a snapshot even if nothing changed since the newest one
        #[arg(long)]
        always: bool,
    },
    /// Autosave a directory whenever it changed and then went quiet, until Ctrl-C
    Watch(WatchArgs),
    /// List snapshots, newest first
    Snapshots,
    /// Show one snapshot's record and a summary of its entries
    Show {
        /// A snapshot id or `latest`
        snap: SnapRef,
    },
    /// List the entries of a snapshot, at or below PATH
    Ls {
        /// A snapshot id or `latest`
        snap: SnapRef,
        /// An entry path (`a/b`; `\/`, `\\` and `\e` escape `/`, `\` and the empty key)
        path: Option<EntryPath>,
    },
    /// Write one entry's content to stdout
    Cat {
        /// A snapshot id or `latest`
        snap: SnapRef,
        /// The entry's path
        path: EntryPath,
    },
    /// Compare two snapshots [default: the previous one with the latest]
    Diff {
        /// The old snapshot [default: the one before the latest]
        a: Option<SnapRef>,
        /// The new snapshot [default: latest]
        b: Option<SnapRef>,
    },
    /// Restore a snapshot (or the entries at or below PATH) into a directory
    Restore {
        /// A snapshot id or `latest`
        snap: SnapRef,
        /// Restore only this entry and what lies below it
        path: Option<EntryPath>,
        /// The directory to restore into (created if missing; must be empty without --force)
        #[arg(long, value_name = "DIR")]
        target: PathBuf,
        /// Restore into a directory that already holds files, replacing those the snapshot has
        #[arg(long)]
        force: bool,
        /// List what would be written, and write nothing
        #[arg(long)]
        dry_run: bool,
        /// Do not wait for the files to reach the disk (no fsync), as cp and tar do: faster,
        /// but a crash soon after may leave restored files empty or partial (restore again)
        #[arg(long)]
        no_sync: bool,
    },
    /// Check that every snapshot's blobs are present (and, with --read-data, intact)
    Check {
        /// Also read, decompress and re-hash every blob
        #[arg(long)]
        read_data: bool,
    },
    /// Repair a damaged store
    Repair {
        #[command(subcommand)]
        what: RepairWhat,
    },
    /// Delete snapshots (their data goes at the next `gc`)
    Forget(ForgetArgs),
    /// Remove blobs that no snapshot references
    Gc {
        /// Report what would be removed, and remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Delete snapshot records the index has no row for (snapshots the index lost, or
        /// interrupted commits) instead of refusing; `repair index` would bring them back
        #[arg(long)]
        discard_unindexed: bool,
        /// Collect even when no snapshot is left (every blob goes), instead of refusing
        #[arg(long)]
        allow_empty: bool,
    },
    /// Show space used by the store, or by one snapshot
    Stats {
        /// A snapshot id or `latest`
        snap: Option<SnapRef>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// The directory to watch
    pub(crate) dir: PathBuf,
    /// Seconds from one autosave to the next while changes continue (at least 30)
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) interval: u64,
    /// Seconds without a change after which the directory counts as quiet
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub(crate) idle: f64,
    /// Seconds between two looks at the directory
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub(crate) poll_interval: f64,
    /// After each autosave, keep only the N newest autosaves of this directory: older ones are
    /// deleted and their data collected [default: keep every autosave]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) keep_last: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RepairWhat {
    /// Rebuild the SQLite index from the blob files
    Index,
    /// Forget damaged blobs (missing, wrong size, or with --read-data corrupt) so that the next
    /// snapshot stores their bytes again where the files still hold them
    Blobs {
        /// Also read, decompress and re-hash every blob, to find corrupt ones
        #[arg(long)]
        read_data: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "keep_last"])))]
pub(crate) struct ForgetArgs {
    /// Snapshot ids to delete
    #[arg(conflicts_with_all = ["keep_last", "keep_within"])]
    pub(crate) ids: Vec<SnapshotId>,
    /// Keep the N newest snapshots, delete the rest
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) keep_last: Option<u64>,
    /// Also keep every snapshot taken within DURATION of now (`90s`, `30m`, `12h`, `7d`, `2w`,
    /// `1d12h`)
    #[arg(long, value_name = "DURATION", requires = "keep_last", value_parser = parse_duration)]
    pub(crate) keep_within: Option<Duration>,
    /// Print what would be deleted, and delete nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// A snapshot named on the command line: an id or `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SnapRef {
    Latest,
    Id(SnapshotId),
}

impl FromStr for SnapRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        s.parse()
            .map(Self::Id)
            .map_err(|_| format!("{s:?} is neither a snapshot id nor `latest`"))
    }
}

/// Parses `1d12h`-style durations: numbers each followed by `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 90s, 30m, 12h, 7d, 2w or 1d12h");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}
