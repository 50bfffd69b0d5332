//! Host metadata attached to the nodes of a data tree, stored as canonical JSON.
//!
//! A host application describes each node with a [`Meta`] value (a numpy
//! array's dtype, shape and units, or a fit result that may be NaN or ±inf).
//! [`Meta::to_canonical_json`] turns it into *canonical JSON*: equal values
//! always give byte-identical text, so manifests built from equal trees are
//! byte-identical and hash equal, and the text is always strict JSON.
//!
//! # Canonical form
//!
//! - No whitespace at all. Object keys are sorted by their UTF-8 bytes (the
//!   order of `BTreeMap<String, _>`); strings are escaped exactly as
//!   `serde_json` escapes them.
//! - Integers are plain decimal. [`Meta::Int`] holds everything that fits an
//!   `i64`; [`Meta::UInt`] is only produced for values above `i64::MAX`. A
//!   hand-built `UInt(n)` with `n <= i64::MAX` is accepted, writes the same
//!   text as `Int(n)` and compares equal to it.
//! - Finite floats use the shortest digits that read back to the same bits,
//!   laid out as the `ryu` crate does (and `serde_json` did while it used
//!   `ryu`): plain decimal for magnitudes from `1e-5` up to below `1e16`
//!   (`100.0`, `12.5`, `0.00015`, `0.0`), otherwise scientific with a bare
//!   exponent (`1e16`, `1.5e-7`, `1.7976931348623157e308`). This module fixes
//!   the layout itself, so a `serde_json` upgrade cannot change the text. A
//!   float always has a `.` or an exponent, so `Float(1.0)` is written `1.0`,
//!   never `1`, and stays apart from `Int(1)`.
//! - Negative zero is preserved: `Float(-0.0)` is written `-0.0`, reads back
//!   as `-0.0` and is *not* equal to `Float(0.0)`.
//! - Non-finite floats are written as one-key objects: `{"$float":"NaN"}`,
//!   `{"$float":"inf"}` and `{"$float":"-inf"}`. Every NaN payload is written
//!   as the same NaN; bare `NaN` or `Infinity` is never emitted.
//! - A host map whose *only* key is `"$float"` or `"$map"` is wrapped as
//!   `{"$map":{...the map...}}` so it cannot be mistaken for an escape. Maps
//!   holding those keys among others are written as they are.
//!
//! # Decoding
//!
//! [`Meta::from_json`] accepts any JSON text (whitespace, any key order,
//! exponents, ...), decodes the two escapes above and reads every number
//! exactly, so `from_json(to_canonical_json(m)) == m` for every value within
//! the depth limit. A one-key object `{"$float": x}` whose `x` is not one of
//! the three strings, or `{"$map": x}` whose `x` is not an object, is an
//! error. Integers that fit neither `i64` nor `u64` become floats, and `-0`
//! becomes `Float(-0.0)`, as in `serde_json`. Decoding never panics.
//! [`Meta::from_json_value`] converts an already parsed plain JSON value
//! literally: it decodes no escapes.
//!
//! # Equality
//!
//! `Meta` implements [`Eq`]: floats compare by bit pattern after every NaN is
//! made the same NaN, so `NaN == NaN` and `-0.0 != 0.0`; integers compare by
//! value across `Int` and `UInt`; an integer never equals a float.
//!
//! # Depth
//!
//! [`Meta::depth`] is the nesting depth of the canonical text (each list or
//! map is one level, a `$map` wrapper or a non-finite float one more).
//! `serde_json` refuses input nested deeper than [`Meta::MAX_DEPTH`] levels,
//! so [`Meta::from_json`] returns an error for such text, and a value reads
//! back from its canonical text exactly when its depth is at most
//! [`Meta::MAX_DEPTH`]. Writing, comparing, cloning, `Debug`, [`Meta::depth`]
//! and [`Meta::from_json_value`] use explicit stacks and work at any depth
//! (tested at 100 000 levels). Only dropping is the compiler's recursive drop,
//! as for `serde_json::Value`: it is tested at 10 000 levels on a 2 MiB thread
//! stack, and values nested far deeper than that may exhaust the stack when
//! dropped.
//!
//! # Example
//!
//! ```
//! use autosave_tree::Meta;
//!
//! let fit: Meta = [
//!     ("chi2".to_string(), Meta::from(f64::NAN)),
//!     ("amplitude".to_string(), Meta::from(1.0)),
//!     ("points".to_string(), Meta::from(12_i64)),
//! ]
//! .into_iter()
//! .collect();
//! let text = fit.to_canonical_json();
//! assert_eq!(text, r#"{"amplitude":1.0,"chi2":{"$float":"NaN"},"points":12}"#);
//! assert_eq!(Meta::from_json(&text).expect("canonical text decodes"), fit);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Key of the one-key object that encodes a non-finite float.
const FLOAT_KEY: &str = "$float";
/// Key of the one-key object that wraps a host map looking like an escape.
const MAP_KEY: &str = "$map";

/// Host metadata: a JSON-like value that can also hold non-finite floats.
///
/// See the module documentation for its canonical JSON form and for how
/// values compare. `PartialEq`, `Clone` and `Debug` are written by hand so
/// that NaN equals NaN and so that none of them recurses.
pub enum Meta {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`; smaller values belong in [`Meta::Int`].
    UInt(u64),
    /// A float, which may be NaN, infinite or negative zero.
    Float(f64),
    /// A string.
    Str(String),
    /// An ordered list.
    List(Vec<Meta>),
    /// A map with keys kept in UTF-8 byte order.
    Map(BTreeMap<String, Meta>),
}

/// Why a text could not be decoded into a [`Meta`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError {
    message: String,
}

impl MetaError {
    /// Builds an error from its message.
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What was wrong: a lowercase phrase without a trailing period, the same
    /// text as [`Display`](fmt::Display) shows. It includes `serde_json`'s
    /// own message when the text was not valid JSON.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MetaError {}

impl Meta {
    /// Deepest nesting of lists and objects that [`Meta::from_json`] accepts:
    /// `serde_json`'s recursion limit of 128 fails on the 128th level.
    pub const MAX_DEPTH: usize = 127;

    /// The empty map, the metadata of a node that has none.
    pub fn empty() -> Meta {
        Meta::Map(BTreeMap::new())
    }

    /// Writes the canonical JSON text of this value (see the module docs).
    ///
    /// Equal values give byte-identical text. Never fails and never recurses,
    /// so any depth can be written; only values whose [`Meta::depth`] is at
    /// most [`Meta::MAX_DEPTH`] can be read back.
    pub fn to_canonical_json(&self) -> String {
        write::canonical(self)
    }

    /// Decodes JSON text, canonical or not, decoding the `$float` and `$map`
    /// escapes and reading every number exactly.
    ///
    /// # Errors
    ///
    /// Fails when the text is not valid JSON (including nesting deeper than
    /// [`Meta::MAX_DEPTH`] or a number out of the `f64` range) or holds a
    /// malformed escape. Never panics.
    pub fn from_json(text: &str) -> Result<Meta, MetaError> {
        read::from_json(text)
    }

    /// Converts a plain JSON value literally, decoding no escapes: an object
    /// `{"$float":"NaN"}` becomes a map holding that string (and is written
    /// back wrapped in `$map`). Works at any depth.
    pub fn from_json_value(v: &Value) -> Meta {
        read::from_json_value(v)
    }

    /// Nesting depth of the canonical text: 0 for a scalar; one level for
    /// each list or map, plus one for a `$map` wrapper and one for the object
    /// of a non-finite float. Computed without recursion.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut pending = vec![(self, 0_usize)];
        while let Some((node, above)) = pending.pop() {
            let here = above + own_levels(node);
            deepest = deepest.max(here);
            match node {
                Meta::List(items) => pending.extend(items.iter().map(|item| (item, here))),
                Meta::Map(map) => pending.extend(map.values().map(|value| (value, here))),
                _ => {}
            }
        }
        deepest
    }
}

/// Clones without recursion, so values of any depth can be cloned.
impl Clone for Meta {
    fn clone(&self) -> Self {
        read::deep_clone(self)
    }
}

/// Shows the canonical JSON text inside `Meta(...)`, e.g.
/// `Meta({"a":1.0})`: exactly what tells equal values apart. Works at any
/// depth; the `{:#?}` form is the same.
impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Meta({})", self.to_canonical_json())
    }
}

/// The empty map, as [`Meta::empty`].
impl Default for Meta {
    fn default() -> Self {
        Meta::empty()
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        let mut pending = vec![(self, other)];
        while let Some((a, b)) = pending.pop() {
            if !shallow_eq(a, b, &mut pending) {
                return false;
            }
        }
        true
    }
}

/// Equality is reflexive because every NaN compares equal to every NaN.
impl Eq for Meta {}

impl From<bool> for Meta {
    fn from(value: bool) -> Self {
        Meta::Bool(value)
    }
}

impl From<i64> for Meta {
    fn from(value: i64) -> Self {
        Meta::Int(value)
    }
}

/// Gives [`Meta::Int`] when the value fits `i64`, else [`Meta::UInt`].
impl From<u64> for Meta {
    fn from(value: u64) -> Self {
        i64::try_from(value).map_or(Meta::UInt(value), Meta::Int)
    }
}

impl From<f64> for Meta {
    fn from(value: f64) -> Self {
        Meta::Float(value)
    }
}

impl From<&str> for Meta {
    fn from(value: &str) -> Self {
        Meta::Str(value.to_owned())
    }
}

impl From<String> for Meta {
    fn from(value: String) -> Self {
        Meta::Str(value)
    }
}

impl From<Vec<Meta>> for Meta {
    fn from(value: Vec<Meta>) -> Self {
        Meta::List(value)
    }
}

/// Builds a [`Meta::Map`]; a repeated key keeps its last value.
impl FromIterator<(String, Meta)> for Meta {
    fn from_iter<I: IntoIterator<Item = (String, Meta)>>(iter: I) -> Self {
        Meta::Map(iter.into_iter().collect())
    }
}

mod read;
#[cfg(test)]
mod tests;
mod write;

// ---------------------------------------------------------------------------
// Equality and depth helpers

/// Compares the top level of `a` and `b`; children still to compare are
/// pushed onto `pending`.
fn shallow_eq<'a>(a: &'a Meta, b: &'a Meta, pending: &mut Vec<(&'a Meta, &'a Meta)>) -> bool {
    match (a, b) {
        (Meta::Null, Meta::Null) => true,
        (Meta::Bool(x), Meta::Bool(y)) => x == y,
        (Meta::Float(x), Meta::Float(y)) => float_bits(*x) == float_bits(*y),
        (Meta::Str(x), Meta::Str(y)) => x == y,
        (Meta::List(x), Meta::List(y)) => {
            pending.extend(x.iter().zip(y));
            x.len() == y.len()
        }
        (Meta::Map(x), Meta::Map(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((key_a, value_a), (key_b, value_b)) in x.iter().zip(y) {
                if key_a != key_b {
                    return false;
                }
                pending.push((value_a, value_b));
            }
            true
        }
        _ => matches!((integer(a), integer(b)), (Some(x), Some(y)) if x == y),
    }
}

/// Bit pattern of a float with every NaN made the same NaN.
fn float_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// The value of an integer variant, wide enough for both `i64` and `u64`.
fn integer(meta: &Meta) -> Option<i128> {
    match meta {
        Meta::Int(i) => Some(i128::from(*i)),
        Meta::UInt(u) => Some(i128::from(*u)),
        _ => None,
    }
}

/// Levels of canonical JSON nesting that this node itself opens.
fn own_levels(meta: &Meta) -> usize {
    match meta {
        Meta::Float(x) if !x.is_finite() => 1,
        Meta::List(_) => 1,
        Meta::Map(map) if needs_map_wrapper(map) => 2,
        Meta::Map(_) => 1,
        _ => 0,
    }
}

/// Whether a host map would read as an escape unless wrapped in `$map`.
fn needs_map_wrapper(map: &BTreeMap<String, Meta>) -> bool {
    map.len() == 1 && (map.contains_key(FLOAT_KEY) || map.contains_key(MAP_KEY))
}
