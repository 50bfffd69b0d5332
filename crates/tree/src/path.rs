//! [`EntryPath`]: where an entry sits in the tree, as a list of arbitrary UTF-8 keys.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The path of an entry: a list of keys, each any UTF-8 string (`.`, `/`, spaces, non-ASCII and
/// the empty string are all legal). Keys never become file names, except in a directory
/// restore, which refuses keys that cannot be one.
///
/// Paths order key by key, so a parent sorts before its children.
///
/// The text form (`Display` / `FromStr`) joins keys with `/`, escapes `\` and `/` inside a key
/// as `\\` and `\/`, and writes an empty key as `\e` (so the path with no keys, `""`, and the
/// path of one empty key, `\e`, stay apart):
///
/// ```
/// use autosave_tree::EntryPath;
/// let p = EntryPath::new(["results", "fit a/b", "v1.2"]);
/// assert_eq!(p.to_string(), r"results/fit a\/b/v1.2");
/// assert_eq!(p.to_string().parse::<EntryPath>().unwrap(), p);
/// ```
#[derive(
    Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct EntryPath(Vec<String>);

impl EntryPath {
    /// A path from its keys.
    pub fn new<K: Into<String>>(keys: impl IntoIterator<Item = K>) -> Self {
        Self(keys.into_iter().map(Into::into).collect())
    }

    /// The keys.
    pub fn keys(&self) -> &[String] {
        &self.0
    }

    /// This path with one more key.
    pub fn child(&self, key: impl Into<String>) -> Self {
        let mut keys = self.0.clone();
        keys.push(key.into());
        Self(keys)
    }

    /// Whether `self` is `prefix` or below it.
    pub fn starts_with(&self, prefix: &EntryPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            if key.is_empty() {
                f.write_str("\\e")?;
            }
            for c in key.chars() {
                if c == '/' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryPath({:?})", self.to_string())
    }
}

impl FromStr for EntryPath {
    type Err = Error;

    /// Parses the text form. The empty string is the path with no keys; an empty key written
    /// other than as `\e`, or any other escape than `\\`, `\/` and `\e`, is
    /// [`Error::BadPath`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        split_unescaped(s)
            .into_iter()
            .map(|raw| parse_key(raw).ok_or_else(|| Error::BadPath { text: s.to_owned() }))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// Splits at each `/` that is not escaped.
fn split_unescaped(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '/') => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    parts.push(&s[start..]);
    parts
}

/// One key's text: `\e` is the empty key; otherwise `\\` and `\/` are the only escapes.
fn parse_key(raw: &str) -> Option<String> {
    if raw == "\\e" {
        return Some(String::new());
    }
    if raw.is_empty() {
        return None;
    }
    let mut key = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                c @ ('\\' | '/') => key.push(c),
                _ => return None,
            },
            c => key.push(c),
        }
    }
    Some(key)
}

impl<K: Into<String>> FromIterator<K> for EntryPath {
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        Self::new(iter)
    }
}
