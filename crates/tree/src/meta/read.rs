//! Reading JSON text into [`Meta`]: serde_json validates, an exact re-reader parses numbers.

use std::convert::Infallible;

use super::*;

/// Decodes JSON text (see [`Meta::from_json`]).
pub(super) fn from_json(text: &str) -> Result<Meta, MetaError> {
    // serde_json's `float_roundtrip` feature (enabled for the workspace) reads every float
    // exactly, so the canonical text of a decoded value is the text it came from.
    let value: Value = serde_json::from_str(text)
        .map_err(|error| MetaError::new(format!("invalid JSON: {error}")))?;
    build(&value, classify_escaped)
}

/// Clones `meta` without recursion.
pub(super) fn deep_clone(meta: &Meta) -> Meta {
    match build(meta, |m| Ok::<_, Infallible>(shape_of_meta(m))) {
        Ok(meta) => meta,
        Err(never) => match never {},
    }
}

/// Converts a plain JSON value literally (see [`Meta::from_json_value`]).
pub(super) fn from_json_value(v: &Value) -> Meta {
    match build(v, |value| Ok::<_, Infallible>(classify_literal(value))) {
        Ok(meta) => meta,
        Err(never) => match never {},
    }
}

// ---------------------------------------------------------------------------
// Conversion from serde_json values

/// What one source node turns into before its children are built.
enum Shape<'a, S> {
    /// A finished value with no children.
    Leaf(Meta),
    /// A list of children still to build.
    List(&'a [S]),
    /// Map entries whose values are still to build (keys taken literally).
    Map(Vec<(&'a str, &'a S)>),
}

/// Pending work of the bottom-up builder.
enum Task<'a, S> {
    /// Build this source node.
    Visit(&'a S),
    /// Gather this many finished values into a list.
    List(usize),
    /// Gather one finished value per key into a map.
    Map(Vec<&'a str>),
}

/// Builds a [`Meta`] from a tree of `S` with an explicit stack instead of
/// recursion; `shape` says what each node is (and may refuse it).
fn build<'a, S, E>(
    root: &'a S,
    shape: impl Fn(&'a S) -> Result<Shape<'a, S>, E>,
) -> Result<Meta, E> {
    let mut tasks = vec![Task::Visit(root)];
    let mut done: Vec<Meta> = Vec::new();
    while let Some(task) = tasks.pop() {
        match task {
            Task::Visit(node) => schedule(shape(node)?, &mut tasks, &mut done),
            Task::List(len) => {
                let items = done.split_off(done.len() - len);
                done.push(Meta::List(items));
            }
            Task::Map(keys) => {
                let values = done.split_off(done.len() - keys.len());
                let entries = keys.into_iter().map(str::to_owned).zip(values);
                done.push(Meta::Map(entries.collect()));
            }
        }
    }
    Ok(done
        .pop()
        .expect("building the root leaves exactly one value"))
}

/// Finishes a leaf, or schedules a container's children (first child on
/// top) above the task that gathers them.
fn schedule<'a, S>(shape: Shape<'a, S>, tasks: &mut Vec<Task<'a, S>>, done: &mut Vec<Meta>) {
    match shape {
        Shape::Leaf(meta) => done.push(meta),
        Shape::List(items) => {
            tasks.push(Task::List(items.len()));
            tasks.extend(items.iter().rev().map(Task::Visit));
        }
        Shape::Map(entries) => {
            let (keys, values): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
            tasks.push(Task::Map(keys));
            tasks.extend(values.into_iter().rev().map(Task::Visit));
        }
    }
}

/// The shape of a [`Meta`] node, for cloning.
fn shape_of_meta(meta: &Meta) -> Shape<'_, Meta> {
    match meta {
        Meta::List(items) => Shape::List(items),
        Meta::Map(map) => Shape::Map(map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        Meta::Null => Shape::Leaf(Meta::Null),
        Meta::Bool(b) => Shape::Leaf(Meta::Bool(*b)),
        Meta::Int(i) => Shape::Leaf(Meta::Int(*i)),
        Meta::UInt(u) => Shape::Leaf(Meta::UInt(*u)),
        Meta::Float(x) => Shape::Leaf(Meta::Float(*x)),
        Meta::Str(s) => Shape::Leaf(Meta::Str(s.clone())),
    }
}

/// The literal shape of a map of JSON values.
fn object_shape(map: &serde_json::Map<String, Value>) -> Shape<'_, Value> {
    Shape::Map(map.iter().map(|(k, v)| (k.as_str(), v)).collect())
}

/// The shape of a JSON value, decoding no escapes.
fn classify_literal(value: &Value) -> Shape<'_, Value> {
    match value {
        Value::Null => Shape::Leaf(Meta::Null),
        Value::Bool(b) => Shape::Leaf(Meta::Bool(*b)),
        Value::Number(number) => Shape::Leaf(number_to_meta(number)),
        Value::String(s) => Shape::Leaf(Meta::Str(s.clone())),
        Value::Array(items) => Shape::List(items),
        Value::Object(map) => object_shape(map),
    }
}

/// The shape of a JSON value, decoding the `$float` and `$map` escapes.
fn classify_escaped(value: &Value) -> Result<Shape<'_, Value>, MetaError> {
    match value {
        Value::Object(map) => unescape(map),
        _ => Ok(classify_literal(value)),
    }
}

/// Decodes a `$float` or `$map` one-key object; other objects are maps.
fn unescape(map: &serde_json::Map<String, Value>) -> Result<Shape<'_, Value>, MetaError> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) if key == FLOAT_KEY => decode_float(value).map(Shape::Leaf),
        (Some((key, value)), None) if key == MAP_KEY => match value {
            Value::Object(inner) => Ok(object_shape(inner)),
            _ => Err(MetaError::new(
                "invalid $map escape: the value must be an object",
            )),
        },
        _ => Ok(object_shape(map)),
    }
}

/// Decodes the string of a `$float` escape.
fn decode_float(value: &Value) -> Result<Meta, MetaError> {
    match value.as_str() {
        Some("NaN") => Ok(Meta::Float(f64::NAN)),
        Some("inf") => Ok(Meta::Float(f64::INFINITY)),
        Some("-inf") => Ok(Meta::Float(f64::NEG_INFINITY)),
        _ => Err(MetaError::new(
            r#"invalid $float escape: the value must be "NaN", "inf" or "-inf""#,
        )),
    }
}

/// Converts a JSON number: `Int` if it fits `i64`, else `UInt` if it fits
/// `u64`, else `Float`.
fn number_to_meta(number: &serde_json::Number) -> Meta {
    if let Some(i) = number.as_i64() {
        Meta::Int(i)
    } else if let Some(u) = number.as_u64() {
        Meta::UInt(u)
    } else {
        // `as_f64` is always `Some` for a number that is neither i64 nor u64
        // (with or without serde_json's `arbitrary_precision`); NaN only
        // stands in should that ever change.
        Meta::Float(number.as_f64().unwrap_or(f64::NAN))
    }
}
