//! What a filter sees of the items it filters: the [`Selectable`] trait that
//! endpoint shapes implement, and the [`FieldValue`] a selector resolves to.
//!
//! go-bexpr walks Go structs by reflection; here each shape answers for its
//! own fields. The evaluator never looks inside objects itself: a shape
//! resolves the whole selector path, and for a list of objects it hands back
//! one value per element ([`FieldValue::Any`], built by
//! [`FieldValue::from_objects`]) so the evaluator can apply go-bexpr's
//! "any element matches" rule.

use std::collections::BTreeMap;

/// Something a filter expression can be evaluated against: one element of a
/// filtered list or one value of a filtered map.
///
/// `field` receives the whole selector path (`Service.Tags` → `["Service",
/// "Tags"]`; `ServiceMeta.env` and `ServiceMeta["env"]` both →
/// `["ServiceMeta", "env"]`). Selector names are case-sensitive and spelled as
/// Consul's JSON field names, exactly as go-bexpr matches Go field names.
pub trait Selectable {
    /// The value at `path` (never empty), or [`FieldValue::Invalid`] when
    /// this shape has no such field.
    fn field(&self, path: &[&str]) -> FieldValue<'_>;
}

/// The value a selector resolves to.
pub enum FieldValue<'a> {
    /// An absent map key (`ServiceMeta.nope`) or an unset optional field.
    /// Operators use go-bexpr's "not present" rule: `==`, `contains`/`in`,
    /// `is not empty` and `matches` are false; their negations are true.
    Missing,
    /// The selector names no field of this shape. Consul rejects such an
    /// expression up front; here every operator on it is false.
    Invalid,
    /// A borrowed string field.
    Str(&'a str),
    /// An owned string field (a rendered enum such as a check status).
    String(String),
    /// A boolean field; compared after coercing the literal as Go's
    /// `strconv.ParseBool` does (`true`, `1`, `T`, ...).
    Bool(bool),
    /// A signed integer field; the literal is coerced as Go's
    /// `strconv.ParseInt(s, 0, 64)` does (`80`, `0x50`, `-1`).
    Int(i64),
    /// An unsigned integer field; the literal is coerced as Go's
    /// `strconv.ParseUint(s, 0, 64)` does.
    Uint(u64),
    /// A floating point field; the literal is coerced as a decimal float.
    Float(f64),
    /// A list of scalar values: `in`/`contains` test element equality,
    /// `is empty` tests the length.
    List(Vec<FieldValue<'a>>),
    /// A list of strings (`Service.Tags`): `in`/`contains` test membership.
    StrList(&'a [String]),
    /// A string map (`ServiceMeta`): `in`/`contains` test key membership.
    Map(&'a BTreeMap<String, String>),
    /// The keys of a map whose values are not strings
    /// (`Service.TaggedAddresses`): `in`/`contains` test key membership.
    Keys(Vec<&'a str>),
    /// A list of objects named by the selector itself (`Checks`): only
    /// `is empty` / `is not empty` apply.
    Objects(Vec<&'a dyn Selectable>),
    /// One value per element of a list of objects that the selector goes
    /// through (`Checks.Status`): the match holds if it holds for any element
    /// (so `Checks.Status != passing` means "some check is not passing").
    Any(Vec<FieldValue<'a>>),
}

impl<'a> FieldValue<'a> {
    /// The value of `rest` (the selector path after the segment that named
    /// `items`) for a list of objects: [`FieldValue::Objects`] when the
    /// selector stops at the list, otherwise [`FieldValue::Any`] with each
    /// element's value.
    pub fn from_objects<T: Selectable>(items: &'a [T], rest: &[&str]) -> FieldValue<'a> {
        if rest.is_empty() {
            FieldValue::Objects(items.iter().map(|item| item as &dyn Selectable).collect())
        } else {
            FieldValue::Any(items.iter().map(|item| item.field(rest)).collect())
        }
    }

    /// The value of `rest` (the selector path after the segment that named
    /// `map`) for a string map: the map itself, one entry's value (or
    /// [`FieldValue::Missing`]), or [`FieldValue::Invalid`] for a deeper path.
    pub fn from_map(map: &'a BTreeMap<String, String>, rest: &[&str]) -> FieldValue<'a> {
        match rest {
            [] => FieldValue::Map(map),
            [key] => map
                .get(*key)
                .map_or(FieldValue::Missing, |value| FieldValue::Str(value)),
            _ => FieldValue::Invalid,
        }
    }

    /// A string field: valid only when the selector stops at it.
    pub fn leaf_str(value: &'a str, rest: &[&str]) -> FieldValue<'a> {
        if rest.is_empty() {
            FieldValue::Str(value)
        } else {
            FieldValue::Invalid
        }
    }
}

impl std::fmt::Debug for FieldValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Missing => f.write_str("Missing"),
            FieldValue::Invalid => f.write_str("Invalid"),
            FieldValue::Str(s) => f.debug_tuple("Str").field(s).finish(),
            FieldValue::String(s) => f.debug_tuple("String").field(s).finish(),
            FieldValue::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            FieldValue::Int(i) => f.debug_tuple("Int").field(i).finish(),
            FieldValue::Uint(u) => f.debug_tuple("Uint").field(u).finish(),
            FieldValue::Float(x) => f.debug_tuple("Float").field(x).finish(),
            FieldValue::List(items) => f.debug_tuple("List").field(items).finish(),
            FieldValue::StrList(items) => f.debug_tuple("StrList").field(items).finish(),
            FieldValue::Map(map) => f.debug_tuple("Map").field(map).finish(),
            FieldValue::Keys(keys) => f.debug_tuple("Keys").field(keys).finish(),
            FieldValue::Objects(items) => write!(f, "Objects(<{} objects>)", items.len()),
            FieldValue::Any(items) => f.debug_tuple("Any").field(items).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Check {
        status: &'static str,
    }

    impl Selectable for Check {
        fn field(&self, path: &[&str]) -> FieldValue<'_> {
            match path {
                ["Status"] => FieldValue::Str(self.status),
                _ => FieldValue::Invalid,
            }
        }
    }

    #[test]
    fn from_objects_stops_at_the_list_or_maps_each_element() {
        let checks = [Check { status: "passing" }, Check { status: "critical" }];
        match FieldValue::from_objects(&checks, &[]) {
            FieldValue::Objects(items) => assert_eq!(items.len(), 2),
            other => panic!("expected Objects, got {other:?}"),
        }
        match FieldValue::from_objects(&checks, &["Status"]) {
            FieldValue::Any(values) => {
                let statuses: Vec<&str> = values
                    .iter()
                    .map(|v| match v {
                        FieldValue::Str(s) => *s,
                        _ => "?",
                    })
                    .collect();
                assert_eq!(statuses, ["passing", "critical"]);
            }
            other => panic!("expected Any, got {other:?}"),
        }
    }

    #[test]
    fn from_map_resolves_keys_and_rejects_deeper_paths() {
        let map = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        assert!(matches!(FieldValue::from_map(&map, &[]), FieldValue::Map(_)));
        assert!(matches!(FieldValue::from_map(&map, &["env"]), FieldValue::Str("prod")));
        assert!(matches!(FieldValue::from_map(&map, &["nope"]), FieldValue::Missing));
        assert!(matches!(FieldValue::from_map(&map, &["env", "x"]), FieldValue::Invalid));
        assert!(matches!(FieldValue::leaf_str("x", &[]), FieldValue::Str("x")));
        assert!(matches!(FieldValue::leaf_str("x", &["y"]), FieldValue::Invalid));
    }
}
