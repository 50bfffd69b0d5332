//! The canonical JSON writer (iterative, so depth cannot overflow the stack).

use std::collections::BTreeMap;

use super::*;

/// The canonical JSON text of `meta`.
pub(super) fn canonical(meta: &Meta) -> String {
    let mut out = String::new();
    let mut work = vec![Work::Value(meta)];
    while let Some(item) = work.pop() {
        match item {
            Work::Text(text) => out.push_str(text),
            Work::Key(key) => {
                write_str(key, &mut out);
                out.push(':');
            }
            Work::Value(value) => write_value(value, &mut out, &mut work),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Canonical writer

/// One piece of pending output of the canonical writer.
enum Work<'a> {
    /// A value still to write.
    Value(&'a Meta),
    /// Fixed punctuation.
    Text(&'static str),
    /// A map key followed by its colon.
    Key(&'a str),
}

/// Writes a scalar at once, or opens a container and schedules its contents.
fn write_value<'a>(value: &'a Meta, out: &mut String, work: &mut Vec<Work<'a>>) {
    match value {
        Meta::Null => out.push_str("null"),
        Meta::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Meta::Int(i) => out.push_str(&i.to_string()),
        Meta::UInt(u) => out.push_str(&u.to_string()),
        Meta::Float(x) => write_float(*x, out),
        Meta::Str(s) => write_str(s, out),
        Meta::List(items) => open_list(items, out, work),
        Meta::Map(map) => open_map(map, out, work),
    }
}

/// Writes `[` and schedules the items, their commas and the `]`.
fn open_list<'a>(items: &'a [Meta], out: &mut String, work: &mut Vec<Work<'a>>) {
    out.push('[');
    work.push(Work::Text("]"));
    for (index, item) in items.iter().enumerate().rev() {
        work.push(Work::Value(item));
        if index > 0 {
            work.push(Work::Text(","));
        }
    }
}

/// Writes `{` (after the `$map` wrapper when needed) and schedules the
/// entries in key order, their commas and the closing braces.
fn open_map<'a>(map: &'a BTreeMap<String, Meta>, out: &mut String, work: &mut Vec<Work<'a>>) {
    if needs_map_wrapper(map) {
        out.push_str(r#"{"$map":"#);
        work.push(Work::Text("}"));
    }
    out.push('{');
    work.push(Work::Text("}"));
    for (index, (key, value)) in map.iter().enumerate().rev() {
        work.push(Work::Value(value));
        work.push(Work::Key(key));
        if index > 0 {
            work.push(Work::Text(","));
        }
    }
}

/// Writes a float: shortest round-trip text, or the `$float` escape.
fn write_float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str(r#"{"$float":"NaN"}"#);
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 {
            r#"{"$float":"inf"}"#
        } else {
            r#"{"$float":"-inf"}"#
        });
    } else {
        write_finite(x, out);
    }
}

/// Writes a finite float in the layout of the `ryu` crate (which older
/// `serde_json` used), fixed here so the text does not change with the float
/// formatter `serde_json` happens to use. The digits are the standard
/// library's shortest digits that read back to the same value.
fn write_finite(x: f64, out: &mut String) {
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent
        .parse()
        .expect("`{:e}` writes the exponent as a decimal integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if x.is_sign_negative() {
        out.push('-');
    }
    layout_digits(&digits, exponent + 1, out);
}

/// Lays out the value `0.DIGITS × 10^point` (`digits` "15" with `point` 2
/// is 15, with `point` -3 is 0.00015):
/// plain decimal when `-5 < point <= 16`, always with a `.`
/// (`100.0`, `12.5`, `0.00015`), else scientific with an exponent without
/// `+` (`1e16`, `1.5e-7`).
fn layout_digits(digits: &str, point: i32, out: &mut String) {
    let len = i32::try_from(digits.len()).expect("an f64 has at most 17 significant digits");
    let zeros = |n: i32| "0".repeat(usize::try_from(n).unwrap_or(0));
    if len <= point && point <= 16 {
        out.push_str(&format!("{digits}{}.0", zeros(point - len)));
    } else if 0 < point && point <= 16 {
        let (whole, fraction) = digits.split_at(point.unsigned_abs() as usize);
        out.push_str(&format!("{whole}.{fraction}"));
    } else if -5 < point && point <= 0 {
        out.push_str(&format!("0.{}{digits}", zeros(-point)));
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        out.push_str(&format!("{first}{dot}{rest}e{}", point - 1));
    }
}

/// Writes a string quoted and escaped exactly as `serde_json` does.
fn write_str(s: &str, out: &mut String) {
    let quoted = serde_json::to_string(s).expect("serialising a str to JSON cannot fail");
    out.push_str(&quoted);
}
