//! Shared by the process-level reliability suites (`kill_loop`, `concurrency`, `io_faults`):
//! deterministic trees that can be regenerated from a few numbers, reading a snapshot back,
//! the leftover-file check, a seeded generator and percentiles.
//!
//! Each suite is one binary that plays both parts: run by `cargo test` it is the parent, and
//! it re-executes itself with an environment variable to become a child process.

use std::collections::BTreeMap;
use std::time::Duration;

use autosave::store::{Digest, SnapshotId, Store};
use autosave::tree::{EntryPath, Node, Token, read_content, snapshot_manifest};
use camino::{Utf8Path, Utf8PathBuf};

/// One node of a generated tree: path keys, kind, content, version token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GenNode {
    pub(crate) path: Vec<String>,
    pub(crate) kind: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) token: u64,
}

/// A host tree held in memory, every node a pure function of the generator's inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GenTree {
    pub(crate) nodes: Vec<GenNode>,
}

impl GenTree {
    pub(crate) fn add(&mut self, path: &[&str], kind: &str, bytes: Vec<u8>, token: u64) {
        self.nodes.push(GenNode {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            kind: kind.to_owned(),
            bytes,
            token,
        });
    }

    /// The nodes as a host hands them to an autosave, with their tokens.
    pub(crate) fn nodes(&self) -> Vec<Node<'_>> {
        self.nodes
            .iter()
            .map(|n| {
                Node::bytes(
                    EntryPath::new(n.path.iter().cloned()),
                    n.kind.clone(),
                    &n.bytes,
                )
                .with_token(Token(n.token))
            })
            .collect()
    }

    /// (path, kind, bytes) sorted by path: what reading the snapshot back must give.
    pub(crate) fn contents(&self) -> Contents {
        self.nodes
            .iter()
            .map(|n| (n.path.clone(), (n.kind.clone(), n.bytes.clone())))
            .collect()
    }
}

/// A tree as read back: path → (kind, bytes).
pub(crate) type Contents = BTreeMap<Vec<String>, (String, Vec<u8>)>;

/// Reads every entry of snapshot `id`, each verified by the store against its digest.
pub(crate) fn read_snapshot(store: &Store, id: SnapshotId) -> Result<Contents, String> {
    let manifest = snapshot_manifest(store, id).map_err(|e| e.to_string())?;
    let mut out = Contents::new();
    for e in manifest.entries() {
        let bytes = read_content(store, &e.content).map_err(|e| e.to_string())?;
        out.insert(e.path.keys().to_vec(), (e.kind.clone(), bytes));
    }
    Ok(out)
}

/// The little-endian `u64`s of an entry that holds numbers (such as a tree's generator inputs).
pub(crate) fn numbers(contents: &Contents, path: &[&str]) -> Option<Vec<u64>> {
    let key: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
    let (_, bytes) = contents.get(&key)?;
    if bytes.len() % 8 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect(),
    )
}

pub(crate) fn encode_numbers(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Files a store must not hold after a garbage collection: temp files anywhere, anything in
/// `tmp/`, and blob files without an index row.
pub(crate) fn leftovers(store: &Store) -> Vec<Utf8PathBuf> {
    let root = store.root();
    let mut found = Vec::new();
    for name in names(root) {
        if name.starts_with(".tmp-") {
            found.push(root.join(name));
        }
    }
    for name in names(&root.join("tmp")) {
        found.push(root.join("tmp").join(name));
    }
    let objects = root.join("objects");
    for fanout in names(&objects) {
        for name in names(&objects.join(&fanout)) {
            let has_row = name
                .parse::<Digest>()
                .ok()
                .is_some_and(|d| store.contains(&d).unwrap_or(false));
            if !has_row {
                found.push(objects.join(&fanout).join(name));
            }
        }
    }
    found
}

fn names(dir: &Utf8Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("a readable directory entry"))
            .map(|e| e.file_name().into_string().expect("store names are UTF-8"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {dir}: {e}"),
    }
}

/// Whether the command line selects the suite `name`, as libtest would: `cargo test FILTER`
/// passes its filter to every test binary, `--list` asks for names, and `--ignored` runs only
/// ignored tests. Prints what a harness would for a suite that does not run.
pub(crate) fn selected(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{name}: test");
        }
        return false;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let matches = |f: &&String| {
        if exact {
            name == f.as_str()
        } else {
            name.contains(f.as_str())
        }
    };
    if args.iter().any(|a| a == "--ignored") || !(filters.is_empty() || filters.iter().any(matches))
    {
        println!("{name}: filtered out");
        return false;
    }
    true
}

/// splitmix64: small, seedable, good enough to pick delays and indices.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A seed from the environment variable `var`, or from the clock (printed by the caller, so a
/// failing run can be repeated).
pub(crate) fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v} is not a u64")),
        Err(_) => autosave::store::now_ns().unsigned_abs(),
    }
}

/// A count from the environment variable `var`, or `default`.
pub(crate) fn count_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{var}={v} is not a count"))
    })
}

/// The `p`-th percentile (0–100) of `samples`, nearest rank.
pub(crate) fn percentile(samples: &[Duration], p: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `len` bytes for `seed`: 4 KiB pieces of a fixed 64 KiB noise block, each from a place
/// chosen by `(seed, piece)`. Different seeds give different content (deduplicated pieces do
/// not matter: blobs are whole contents or content-defined chunks), and building it is a few
/// memory copies, so an unoptimised test build spends its time in the library, not here.
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    const PIECE: usize = 4096;
    let block = BLOCK.get_or_init(|| autosave::sample::noise(64 << 10, 0x5eed));
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let at = rng.below((block.len() - PIECE) as u64) as usize;
        let take = PIECE.min(len - out.len());
        out.extend_from_slice(&block[at..at + take]);
    }
    out
}

/// A fresh temp directory holding an empty project directory.
pub(crate) fn project() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = Utf8Path::from_path(dir.path())
        .expect("temp dirs are UTF-8")
        .join("project");
    std::fs::create_dir_all(&path).expect("mkdir project");
    (dir, path)
}
