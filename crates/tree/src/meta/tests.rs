//! Tests of canonical JSON metadata.

use super::*;
use proptest::prelude::*;

/// Tears a value down without recursion, for values too deep to drop.
fn dismantle(meta: Meta) {
    let mut stack = vec![meta];
    while let Some(mut node) = stack.pop() {
        match &mut node {
            Meta::List(items) => stack.append(items),
            Meta::Map(map) => stack.extend(std::mem::take(map).into_values()),
            _ => {}
        }
    }
}

/// A list nested `levels` deep around `inner`.
fn nested_list(levels: usize, inner: Meta) -> Meta {
    (0..levels).fold(inner, |acc, _| Meta::List(vec![acc]))
}

/// A chain of one-key `$map` maps, each needing the wrapper.
fn nested_escaped_maps(levels: usize) -> Meta {
    (0..levels).fold(Meta::Null, |acc, _| {
        [(MAP_KEY.to_string(), acc)].into_iter().collect()
    })
}

fn canon(text: &str) -> String {
    Meta::from_json(text).unwrap().to_canonical_json()
}

#[test]
fn scalars_have_fixed_text() {
    let cases = [
        (Meta::Null, "null"),
        (Meta::Bool(true), "true"),
        (Meta::Int(i64::MIN), "-9223372036854775808"),
        (Meta::UInt(u64::MAX), "18446744073709551615"),
        (Meta::Float(1.0), "1.0"),
        (Meta::Float(-0.0), "-0.0"),
        (Meta::Float(0.0), "0.0"),
        (Meta::Float(1e300), "1e300"),
        (Meta::Float(1.5e-7), "1.5e-7"),
        (Meta::Float(1e-6), "1e-6"),
        (Meta::Float(1e-5), "0.00001"),
        (Meta::Float(0.001234), "0.001234"),
        (Meta::Float(-12.5), "-12.5"),
        (Meta::Float(123456.789), "123456.789"),
        (Meta::Float(1e15), "1000000000000000.0"),
        (Meta::Float(1e16), "1e16"),
        (Meta::Float(-1.2345e16), "-1.2345e16"),
        (Meta::Float(0.1 + 0.2), "0.30000000000000004"),
        (Meta::Float(f64::MAX), "1.7976931348623157e308"),
        (Meta::Float(f64::MIN_POSITIVE), "2.2250738585072014e-308"),
        (Meta::Float(f64::from_bits(1)), "5e-324"),
        (Meta::Float(f64::NAN), r#"{"$float":"NaN"}"#),
        (Meta::Float(-f64::NAN), r#"{"$float":"NaN"}"#),
        (Meta::Float(f64::INFINITY), r#"{"$float":"inf"}"#),
        (Meta::Float(f64::NEG_INFINITY), r#"{"$float":"-inf"}"#),
        (Meta::from("a\"\\\n\u{1}é"), r#""a\"\\\n\u0001é""#),
        (Meta::empty(), "{}"),
        (Meta::List(vec![]), "[]"),
    ];
    for (meta, text) in cases {
        assert_eq!(meta.to_canonical_json(), text, "{meta:?}");
    }
}

#[test]
fn int_and_float_stay_distinct() {
    assert_ne!(Meta::Int(1), Meta::Float(1.0));
    let int = Meta::from_json(&Meta::Int(1).to_canonical_json()).unwrap();
    let float = Meta::from_json(&Meta::Float(1.0).to_canonical_json()).unwrap();
    assert!(matches!(int, Meta::Int(1)));
    assert!(matches!(float, Meta::Float(x) if x == 1.0));
    assert_eq!(Meta::from_json("1e2").unwrap(), Meta::Float(100.0));
}

#[test]
fn negative_zero_is_preserved_and_distinct() {
    let back = Meta::from_json(&Meta::Float(-0.0).to_canonical_json()).unwrap();
    assert!(matches!(back, Meta::Float(x) if x == 0.0 && x.is_sign_negative()));
    assert_ne!(Meta::Float(-0.0), Meta::Float(0.0));
    assert_eq!(Meta::Float(0.0).to_canonical_json(), "0.0");
    // `-0` is read as serde_json reads it: the float negative zero.
    assert_eq!(Meta::from_json("-0").unwrap(), Meta::Float(-0.0));
}

#[test]
fn integers_pick_the_right_variant() {
    assert!(matches!(Meta::from(5_u64), Meta::Int(5)));
    assert!(matches!(Meta::from(u64::MAX), Meta::UInt(u64::MAX)));
    let edge = (i64::MAX as u64) + 1;
    assert!(matches!(Meta::from_json(&edge.to_string()).unwrap(), Meta::UInt(u) if u == edge));
    assert!(matches!(
        Meta::from_json("9223372036854775807").unwrap(),
        Meta::Int(i64::MAX)
    ));
    // Non-canonical UInt: same text and equal to the Int.
    assert_eq!(Meta::UInt(5), Meta::Int(5));
    assert_eq!(Meta::UInt(5).to_canonical_json(), "5");
    // Beyond u64: a float, as in serde_json.
    let big = Meta::from_json("18446744073709551616").unwrap();
    assert_eq!(big, Meta::Float(18_446_744_073_709_551_616.0));
}

#[test]
fn floats_read_back_exactly() {
    // Values plain serde_json (without float_roundtrip) reads off by an ulp.
    for x in [1.0715660391465826e-75, -1.81996730402717e-179, 0.1 + 0.2] {
        let back = Meta::from_json(&Meta::Float(x).to_canonical_json()).unwrap();
        assert!(
            matches!(back, Meta::Float(y) if y.to_bits() == x.to_bits()),
            "{x}"
        );
    }
    let extremes = [f64::MAX, f64::MIN, f64::MIN_POSITIVE, f64::from_bits(1)];
    for x in extremes {
        let back = Meta::from_json(&Meta::Float(x).to_canonical_json()).unwrap();
        assert_eq!(back, Meta::Float(x));
    }
}

#[test]
fn key_insertion_order_does_not_matter() {
    let keys = ["zeta", "alpha", "Émile", "$float", "a", "", "10", "9"];
    let forward: Meta = keys
        .iter()
        .map(|k| (k.to_string(), Meta::from(*k)))
        .collect();
    let backward: Meta = keys
        .iter()
        .rev()
        .map(|k| (k.to_string(), Meta::from(*k)))
        .collect();
    assert_eq!(forward.to_canonical_json(), backward.to_canonical_json());
    assert_eq!(forward, backward);
    assert!(
        forward
            .to_canonical_json()
            .starts_with(r#"{"":"","$float":"$float","10""#)
    );
}

#[test]
fn nan_payloads_canonicalise() {
    let quiet = Meta::Float(f64::NAN);
    let odd = Meta::Float(f64::from_bits(0x7ff0_0000_0000_0001));
    assert_eq!(quiet, odd);
    assert_eq!(quiet.to_canonical_json(), odd.to_canonical_json());
}

#[test]
fn escape_like_maps_are_wrapped() {
    let float_map: Meta = [(FLOAT_KEY.to_string(), Meta::from("NaN"))]
        .into_iter()
        .collect();
    assert_eq!(
        float_map.to_canonical_json(),
        r#"{"$map":{"$float":"NaN"}}"#
    );
    assert_eq!(
        Meta::from_json(&float_map.to_canonical_json()).unwrap(),
        float_map
    );
    let map_map: Meta = [(MAP_KEY.to_string(), Meta::empty())].into_iter().collect();
    assert_eq!(map_map.to_canonical_json(), r#"{"$map":{"$map":{}}}"#);
    assert_eq!(
        Meta::from_json(&map_map.to_canonical_json()).unwrap(),
        map_map
    );
    let two: Meta = [
        (FLOAT_KEY.to_string(), Meta::Int(1)),
        ("x".to_string(), Meta::Null),
    ]
    .into_iter()
    .collect();
    assert_eq!(two.to_canonical_json(), r#"{"$float":1,"x":null}"#);
    assert_eq!(Meta::from_json(&two.to_canonical_json()).unwrap(), two);
}

#[test]
fn malformed_escapes_are_errors() {
    for text in [
        r#"{"$float":1}"#,
        r#"{"$float":"nan"}"#,
        r#"{"$float":"Infinity"}"#,
        r#"{"$float":null}"#,
        r#"{"$map":3}"#,
        r#"[{"$map":[]}]"#,
    ] {
        let error = Meta::from_json(text).unwrap_err();
        assert!(error.message().starts_with("invalid $"), "{text}: {error}");
    }
    let inner_wrapped = Meta::from_json(r#"{"$map":{"$float":"inf"}}"#).unwrap();
    let expected: Meta = [(FLOAT_KEY.to_string(), Meta::from("inf"))]
        .into_iter()
        .collect();
    assert_eq!(inner_wrapped, expected);
    let nested_escape = Meta::from_json(r#"{"$map":{"x":{"$float":"inf"}}}"#).unwrap();
    let expected: Meta = [("x".to_string(), Meta::Float(f64::INFINITY))]
        .into_iter()
        .collect();
    assert_eq!(nested_escape, expected);
}

#[test]
fn errors_are_lowercase_without_period() {
    let texts = ["", "nul", "[1,]", "NaN", "1e400", r#"{"$float":2}"#, "{} x"];
    for text in texts {
        let error = Meta::from_json(text).unwrap_err();
        let message = error.to_string();
        assert_eq!(message, error.message());
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
    assert!(Meta::from_json("[").unwrap_err().message().contains("EOF"));
}

#[test]
fn non_canonical_json_is_accepted() {
    let text =
        " { \"b\" : [ 1 , 2.50 , 1E2 ] ,\n\t\"a\" : { \"$float\" : \"-inf\" } , \"b\": true } ";
    assert_eq!(canon(text), r#"{"a":{"$float":"-inf"},"b":true}"#);
    assert_eq!(canon(r#"[1.0e0,-5,"\u00e9\/"]"#), r#"[1.0,-5,"é/"]"#);
}

#[test]
fn from_json_value_is_literal() {
    let value: Value = serde_json::from_str(r#"{"$float":"NaN"}"#).unwrap();
    let meta = Meta::from_json_value(&value);
    let expected: Meta = [(FLOAT_KEY.to_string(), Meta::from("NaN"))]
        .into_iter()
        .collect();
    assert_eq!(meta, expected);
    assert_eq!(Meta::from_json(&meta.to_canonical_json()).unwrap(), meta);
    let numbers: Value = serde_json::from_str("[1, 18446744073709551615, -2.5]").unwrap();
    let expected = Meta::List(vec![Meta::Int(1), Meta::UInt(u64::MAX), Meta::Float(-2.5)]);
    assert_eq!(Meta::from_json_value(&numbers), expected);
}

#[test]
fn debug_shows_canonical_text() {
    let meta = Meta::List(vec![Meta::Int(1), Meta::Float(1.0), Meta::from("1")]);
    assert_eq!(format!("{meta:?}"), r#"Meta([1,1.0,"1"])"#);
    assert_eq!(format!("{meta:#?}"), format!("{meta:?}"));
}

#[test]
fn default_and_conversions() {
    assert_eq!(Meta::default(), Meta::empty());
    assert!(matches!(Meta::default(), Meta::Map(m) if m.is_empty()));
    assert_eq!(Meta::from(true), Meta::Bool(true));
    assert_eq!(Meta::from(-3_i64), Meta::Int(-3));
    assert_eq!(Meta::from(String::from("s")), Meta::Str("s".into()));
    assert_eq!(Meta::from(vec![Meta::Null]), Meta::List(vec![Meta::Null]));
}

#[test]
fn depth_limit_is_exact() {
    let at_limit = nested_list(Meta::MAX_DEPTH, Meta::Int(7));
    assert_eq!(at_limit.depth(), Meta::MAX_DEPTH);
    assert_eq!(
        Meta::from_json(&at_limit.to_canonical_json()).unwrap(),
        at_limit
    );
    let over = nested_list(Meta::MAX_DEPTH, Meta::List(vec![]));
    assert_eq!(over.depth(), Meta::MAX_DEPTH + 1);
    let error = Meta::from_json(&over.to_canonical_json()).unwrap_err();
    assert!(error.message().contains("recursion limit"), "{error}");
    // A non-finite float and the $map wrapper count as levels too.
    let nan_deep = nested_list(Meta::MAX_DEPTH, Meta::Float(f64::NAN));
    assert_eq!(nan_deep.depth(), Meta::MAX_DEPTH + 1);
    assert!(Meta::from_json(&nan_deep.to_canonical_json()).is_err());
    let maps = nested_escaped_maps(Meta::MAX_DEPTH / 2);
    assert_eq!(maps.depth(), Meta::MAX_DEPTH - 1);
    assert_eq!(Meta::from_json(&maps.to_canonical_json()).unwrap(), maps);
    let maps_over = nested_escaped_maps(Meta::MAX_DEPTH / 2 + 1);
    assert!(Meta::from_json(&maps_over.to_canonical_json()).is_err());
}

#[test]
fn very_deep_values_do_not_overflow() {
    let levels = 100_000;
    let deep = nested_list(levels, Meta::Float(f64::INFINITY));
    let text = deep.to_canonical_json();
    assert_eq!(text.len(), 2 * levels + r#"{"$float":"inf"}"#.len());
    assert_eq!(deep.depth(), levels + 1);
    let twin = deep.clone();
    assert!(deep == twin);
    assert_eq!(format!("{twin:?}"), format!("Meta({text})"));
    let other = nested_list(levels, Meta::Float(f64::NEG_INFINITY));
    assert!(deep != other);
    let maps = nested_escaped_maps(levels);
    assert_eq!(maps.depth(), 2 * levels);
    assert!(Meta::from_json(&maps.to_canonical_json()).is_err());
    let value: Value = (0..levels).fold(Value::Null, |acc, _| Value::Array(vec![acc]));
    let converted = Meta::from_json_value(&value);
    assert_eq!(converted.depth(), levels);
    assert!(Meta::from_json(&text).is_err());
    std::mem::forget(value); // serde_json drops Value recursively
    for meta in [deep, twin, other, maps, converted] {
        dismantle(meta);
    }
}

#[test]
fn ten_thousand_levels_drop_normally() {
    let deep = nested_list(10_000, Meta::Null);
    let copy = deep.clone();
    assert_eq!(copy, deep);
    drop(copy);
    drop(deep);
}

// -----------------------------------------------------------------------
// Property tests

fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(f64::from_bits(1)),
        (-1000_i32..1000).prop_map(f64::from),
    ]
}

fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(FLOAT_KEY.to_string()),
        Just(MAP_KEY.to_string()),
        "[a-c$]{0,3}",
        any::<String>(),
    ]
}

fn any_leaf() -> impl Strategy<Value = Meta> {
    prop_oneof![
        Just(Meta::Null),
        any::<bool>().prop_map(Meta::Bool),
        any::<i64>().prop_map(Meta::Int),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0)].prop_map(Meta::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Meta::UInt),
        Just(Meta::UInt(u64::MAX)),
        any::<u64>().prop_map(Meta::UInt),
        any_float().prop_map(Meta::Float),
        any::<String>().prop_map(Meta::Str),
        prop_oneof![Just("$float"), Just("NaN"), Just("inf")].prop_map(Meta::from),
    ]
}

fn any_meta() -> impl Strategy<Value = Meta> {
    any_leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Meta::List),
            prop::collection::btree_map(any_key(), inner.clone(), 0..5).prop_map(Meta::Map),
            (prop_oneof![Just(FLOAT_KEY), Just(MAP_KEY)], inner).prop_map(|(key, value)| [(
                key.to_string(),
                value
            )]
            .into_iter()
            .collect()),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn canonical_text_round_trips(meta in any_meta()) {
        let text = meta.to_canonical_json();
        prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "not strict JSON: {}", text);
        let back = Meta::from_json(&text).unwrap();
        prop_assert_eq!(&back, &meta);
        prop_assert_eq!(back.to_canonical_json(), text);
    }

    #[test]
    fn equal_values_give_equal_text(
        entries in prop::collection::btree_map(any_key(), any_meta(), 0..8),
    ) {
        let forward: Meta = entries.clone().into_iter().collect();
        let backward: Meta = entries.into_iter().rev().collect();
        prop_assert_eq!(&forward, &backward);
        prop_assert_eq!(forward.to_canonical_json(), backward.to_canonical_json());
    }

    #[test]
    fn literal_json_values_round_trip(meta in any_meta()) {
        // Any canonical text read literally by serde_json is a host value too.
        let value: Value = serde_json::from_str(&meta.to_canonical_json()).unwrap();
        let literal = Meta::from_json_value(&value);
        prop_assert_eq!(Meta::from_json(&literal.to_canonical_json()).unwrap(), literal);
    }

    #[test]
    fn finite_floats_are_exact_and_look_like_floats(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        let text = Meta::Float(x).to_canonical_json();
        prop_assert!(text.contains(['.', 'e']), "{}", text);
        prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), x.to_bits());
        let back = Meta::from_json(&text).unwrap();
        prop_assert!(matches!(back, Meta::Float(y) if y.to_bits() == x.to_bits()), "{}", text);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in any::<Vec<u8>>()) {
        let _ = Meta::from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn decoding_json_like_text_never_panics(text in r#"[\[\]{}":,0-9eE.+\-a-z$\\ ]{0,40}"#) {
        if let Ok(meta) = Meta::from_json(&text) {
            prop_assert_eq!(Meta::from_json(&meta.to_canonical_json()).unwrap(), meta);
        }
    }
}
