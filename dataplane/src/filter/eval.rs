//! Evaluating a parsed expression against one item: go-bexpr's semantics
//! over [`FieldValue`]s.
//!
//! * `==`/`!=` compare scalars, coercing the literal to the field's type;
//! * `in`/`contains` test substring (strings), element (lists) or key (maps);
//! * `is empty` tests length; `matches` runs the pattern (unanchored);
//! * through a list of objects ([`FieldValue::Any`]) an operator holds if it
//!   holds for any element, negated operators included;
//! * an absent map key follows go-bexpr's not-present rule;
//! * a comparison Consul would refuse (`==` on a list, `true` against a
//!   number field, an unknown field) never holds, negated or not.

use super::ast::{Expr, Literal, Match, MatchOp};
use super::limits::SELECTOR_SEGMENTS_MAX;
use super::value::{FieldValue, Selectable};

/// Whether `item` satisfies `expr`.
pub(crate) fn eval<T: Selectable + ?Sized>(expr: &Expr, item: &T) -> bool {
    match expr {
        Expr::All(terms) => terms.iter().all(|term| eval(term, item)),
        Expr::AnyOf(terms) => terms.iter().any(|term| eval(term, item)),
        Expr::Not(operand) => !eval(operand, item),
        Expr::Always => true,
        Expr::Match(m) => {
            let segments_len = m.selector.len();
            assert!(
                (1..=SELECTOR_SEGMENTS_MAX).contains(&segments_len),
                "the parser bounds selectors to 1..={SELECTOR_SEGMENTS_MAX} segments"
            );
            let mut segments = [""; SELECTOR_SEGMENTS_MAX];
            for (slot, segment) in segments.iter_mut().zip(&m.selector) {
                *slot = segment.as_str();
            }
            holds(m, &item.field(&segments[..segments_len]))
        }
    }
}

/// Whether the match `m` holds for `value`.
fn holds(m: &Match, value: &FieldValue<'_>) -> bool {
    match value {
        FieldValue::Any(values) => values.iter().any(|element| holds(m, element)),
        FieldValue::Missing => m.op.when_missing(),
        FieldValue::Invalid => false,
        value => {
            let (positive, negated) = m.op.split();
            let outcome = match (positive, &m.value) {
                (MatchOp::Equal, Some(literal)) => equals(value, literal),
                (MatchOp::In, Some(literal)) => contains(value, literal),
                (MatchOp::IsEmpty, _) => is_empty(value),
                (MatchOp::Matches, _) => {
                    let regex = m.regex.as_ref().expect("the parser compiles every matches pattern");
                    as_str(value).map(|text| regex.is_match(text))
                }
                _ => None,
            };
            outcome.is_some_and(|result| result != negated)
        }
    }
}

/// `value == literal`, or `None` when they cannot be compared.
fn equals(value: &FieldValue<'_>, literal: &Literal) -> Option<bool> {
    match value {
        FieldValue::Str(_) | FieldValue::String(_) => as_str(value).map(|text| text == literal.raw),
        FieldValue::Bool(b) => literal.as_bool.map(|l| l == *b),
        FieldValue::Int(i) => literal.as_i64.map(|l| l == *i),
        FieldValue::Uint(u) => literal.as_u64.map(|l| l == *u),
        FieldValue::Float(x) => literal.as_f64.map(|l| l == *x),
        _ => None,
    }
}

/// `literal in value`, or `None` when `value` is not a container.
fn contains(value: &FieldValue<'_>, literal: &Literal) -> Option<bool> {
    let needle = literal.raw.as_str();
    match value {
        FieldValue::Str(_) | FieldValue::String(_) => as_str(value).map(|text| text.contains(needle)),
        FieldValue::StrList(items) => Some(items.iter().any(|item| item == needle)),
        FieldValue::List(items) => Some(items.iter().any(|item| equals(item, literal) == Some(true))),
        FieldValue::Map(map) => Some(map.contains_key(needle)),
        FieldValue::Keys(keys) => Some(keys.contains(&needle)),
        _ => None,
    }
}

/// Whether `value` has no elements, or `None` for a scalar.
fn is_empty(value: &FieldValue<'_>) -> Option<bool> {
    match value {
        FieldValue::Str(text) => Some(text.is_empty()),
        FieldValue::String(text) => Some(text.is_empty()),
        FieldValue::List(items) => Some(items.is_empty()),
        FieldValue::StrList(items) => Some(items.is_empty()),
        FieldValue::Map(map) => Some(map.is_empty()),
        FieldValue::Keys(keys) => Some(keys.is_empty()),
        FieldValue::Objects(items) => Some(items.is_empty()),
        _ => None,
    }
}

fn as_str<'v>(value: &'v FieldValue<'_>) -> Option<&'v str> {
    match value {
        FieldValue::Str(text) => Some(text),
        FieldValue::String(text) => Some(text),
        _ => None,
    }
}
