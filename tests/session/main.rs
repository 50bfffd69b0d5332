//! Integration tests of the session: the first host's failures, one test each, and the
//! session's own behaviour.

#![expect(
    clippy::unwrap_used,
    reason = "in a test helper a failed unwrap is a failed test"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests make and remove project files directly"
)]

mod driver;
mod host_failures;
mod retention;
mod scan;

use autosave::tree::{EntryPath, Node, Token};
use camino::{Utf8Path, Utf8PathBuf};

/// A host's tree held in memory: path → (kind, bytes, token).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HostTree {
    pub(crate) nodes: Vec<(Vec<String>, String, Vec<u8>, u64)>,
}

impl HostTree {
    /// A physics-viewer-like project: arrays, a table, a script, code cells.
    pub(crate) fn sample(seed: u64) -> Self {
        let mut t = Self::default();
        t.set(
            &["arrays", "signal"],
            "ndarray",
            random_bytes(300_000, seed),
        );
        t.set(&["arrays", "labels"], "ndarray", vec![3u8; 50_000]);
        t.set(
            &["tables", "runs"],
            "dataframe",
            b"step,energy\n1,-1.5\n2,-1.6\n".repeat(500),
        );
        t.set(
            &["scripts", "fit.py"],
            "script",
            b"import numpy as np\nfit = np.polyfit(x, y, 3)\n".to_vec(),
        );
        t.set(
            &["cells"],
            "code-cells",
            br#"["x = 1", "plot(x)"]"#.to_vec(),
        );
        t.set(&["values", "temperature"], "value", b"293.15".to_vec());
        t
    }

    /// Sets a node's content, bumping its token as an honest host does.
    pub(crate) fn set(&mut self, path: &[&str], kind: &str, bytes: Vec<u8>) {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        match self.nodes.iter_mut().find(|n| n.0 == path) {
            Some(n) => {
                n.2 = bytes;
                n.3 += 1;
            }
            None => self.nodes.push((path, kind.to_owned(), bytes, 1)),
        }
    }

    pub(crate) fn remove(&mut self, path: &[&str]) {
        self.nodes.retain(|n| n.0 != path);
    }

    pub(crate) fn nodes(&self) -> Vec<Node<'_>> {
        self.nodes
            .iter()
            .map(|(p, kind, bytes, token)| {
                Node::bytes(EntryPath::new(p.iter().cloned()), kind.clone(), bytes)
                    .with_token(Token(*token))
            })
            .collect()
    }

    /// The tree as restored entries would describe it: sorted (path, kind, bytes).
    pub(crate) fn contents(&self) -> Vec<(Vec<String>, String, Vec<u8>)> {
        let mut out: Vec<_> = self
            .nodes
            .iter()
            .map(|(p, k, b, _)| (p.clone(), k.clone(), b.clone()))
            .collect();
        out.sort();
        out
    }
}

pub(crate) fn restored_contents(r: &autosave::Restored) -> Vec<(Vec<String>, String, Vec<u8>)> {
    r.entries
        .iter()
        .map(|e| (e.path.keys().to_vec(), e.kind.clone(), e.content.clone()))
        .collect()
}

pub(crate) fn project() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8Path::from_path(dir.path()).unwrap().join("project");
    std::fs::create_dir_all(&path).unwrap();
    (dir, path)
}

pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    autosave::sample::noise(len, seed)
}
