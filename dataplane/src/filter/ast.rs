//! The parsed form of an expression: boolean structure over match
//! expressions, with literals already coerced and patterns compiled, so
//! evaluation does no parsing.

use regex::Regex;

use super::go_strconv::{parse_bool, parse_f64, parse_i64, parse_u64};

/// A boolean expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// Every term holds (`a and b and c`); short-circuits left to right.
    All(Vec<Expr>),
    /// Some term holds (`a or b or c`); short-circuits left to right.
    AnyOf(Vec<Expr>),
    /// The operand does not hold.
    Not(Box<Expr>),
    /// One comparison.
    Match(Box<Match>),
    /// Holds for everything (the empty expression: Consul's "no filter").
    Always,
}

/// `selector op value`.
#[derive(Debug, Clone)]
pub(crate) struct Match {
    /// The field path, e.g. `["ServiceMeta", "env"]`; never empty.
    pub(crate) selector: Vec<String>,
    /// The comparison.
    pub(crate) op: MatchOp,
    /// The right-hand side; `None` exactly for `is empty` / `is not empty`.
    pub(crate) value: Option<Literal>,
    /// The compiled pattern, for `matches` / `not matches`.
    pub(crate) regex: Option<Regex>,
}

/// go-bexpr's match operators (`contains` parses to `In`, like go-bexpr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchOp {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

impl MatchOp {
    /// The positive operator and whether this one negates it.
    pub(crate) fn split(self) -> (MatchOp, bool) {
        match self {
            MatchOp::NotEqual => (MatchOp::Equal, true),
            MatchOp::NotIn => (MatchOp::In, true),
            MatchOp::IsNotEmpty => (MatchOp::IsEmpty, true),
            MatchOp::NotMatches => (MatchOp::Matches, true),
            positive => (positive, false),
        }
    }

    /// The result for a selector naming an absent map key (go-bexpr's
    /// `NotPresentDisposition`): nothing equals, contains or matches it,
    /// and it is empty.
    pub(crate) fn when_missing(self) -> bool {
        match self {
            MatchOp::Equal | MatchOp::In | MatchOp::IsNotEmpty | MatchOp::Matches => false,
            MatchOp::NotEqual | MatchOp::NotIn | MatchOp::IsEmpty | MatchOp::NotMatches => true,
        }
    }
}

/// A literal value with its coercions to every field type, computed once.
#[derive(Debug, Clone)]
pub(crate) struct Literal {
    /// The text (string literals unquoted; bare selectors joined with `.`).
    pub(crate) raw: String,
    /// As a bool field sees it (Go `strconv.ParseBool`).
    pub(crate) as_bool: Option<bool>,
    /// As a signed integer field sees it.
    pub(crate) as_i64: Option<i64>,
    /// As an unsigned integer field sees it.
    pub(crate) as_u64: Option<u64>,
    /// As a float field sees it.
    pub(crate) as_f64: Option<f64>,
}

impl Literal {
    /// The literal `raw`, coerced every way it can be.
    pub(crate) fn new(raw: String) -> Literal {
        Literal {
            as_bool: parse_bool(&raw),
            as_i64: parse_i64(&raw),
            as_u64: parse_u64(&raw),
            as_f64: parse_f64(&raw),
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_coerces_once_for_every_type() {
        let port = Literal::new("80".into());
        assert_eq!(
            (port.as_bool, port.as_i64, port.as_u64, port.as_f64),
            (None, Some(80), Some(80), Some(80.0))
        );
        let flag = Literal::new("true".into());
        assert_eq!((flag.as_bool, flag.as_i64), (Some(true), None));
        let one = Literal::new("1".into());
        assert_eq!((one.as_bool, one.as_u64), (Some(true), Some(1)));
        let word = Literal::new("web".into());
        assert_eq!(
            (word.as_bool, word.as_i64, word.as_u64, word.as_f64),
            (None, None, None, None)
        );
    }

    #[test]
    fn negated_operators_split_into_their_positive() {
        assert_eq!(MatchOp::NotEqual.split(), (MatchOp::Equal, true));
        assert_eq!(MatchOp::NotIn.split(), (MatchOp::In, true));
        assert_eq!(MatchOp::IsNotEmpty.split(), (MatchOp::IsEmpty, true));
        assert_eq!(MatchOp::NotMatches.split(), (MatchOp::Matches, true));
        assert_eq!(MatchOp::Equal.split(), (MatchOp::Equal, false));
    }

    #[test]
    fn missing_keys_follow_go_bexpr_disposition() {
        let holds: Vec<MatchOp> = [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::In,
            MatchOp::NotIn,
            MatchOp::IsEmpty,
            MatchOp::IsNotEmpty,
            MatchOp::Matches,
            MatchOp::NotMatches,
        ]
        .into_iter()
        .filter(|op| op.when_missing())
        .collect();
        assert_eq!(
            holds,
            [MatchOp::NotEqual, MatchOp::NotIn, MatchOp::IsEmpty, MatchOp::NotMatches]
        );
    }
}
