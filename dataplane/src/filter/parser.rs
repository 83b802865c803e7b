//! go-bexpr's grammar (the version Consul vendors), rule for rule, on top of
//! the [`Peg`] cursor, so that what parses and how a bad expression is
//! reported both match Consul:
//!
//! ```text
//! Input      <- _? "(" _? Or _? ")" _? EOF / _? Or _? EOF
//! Or         <- And _ "or" _ Or / And
//! And        <- Not _ "and" _ And / Not
//! Not        <- "not" _ Not / Group
//! Group      <- "(" _? Or _? ")" / Match / "(" _? Or _? !")" &{Unmatched parentheses}
//! Match      <- Selector (== | != | contains | not contains | matches | not matches) Value
//!             / Selector (is empty | is not empty)
//!             / Value (in | not in) Selector / Value (in | not in) !Selector &{Invalid selector}
//! Selector   <- Identifier ("." Identifier / Index)*
//! Identifier <- [a-zA-Z] [a-zA-Z0-9_]*
//! Index      <- "[" _? String _? "]" / "[" _? !String &{Invalid index}
//!             / "[" _? String _? !"]" &{Unclosed index expression}
//! Value      <- Selector / Number / String
//! Number     <- "-"? ("0" / [1-9][0-9]*) ("." [0-9]+)? &(_ / EOF / ")") / ... &{Invalid number literal}
//! String     <- "`" (!"`" .)* "`" / '"' (!'"' .)* '"' / ("`" ... / '"' ...) EOF &{Unterminated string literal}
//! ```
//!
//! Two departures, neither visible in results: `and`/`or` chains are parsed
//! iteratively into n-ary nodes, and an alternative that would re-parse the
//! same text as an earlier one (which PEG semantics make deterministic)
//! reuses that outcome instead, so parsing stays linear. Nesting and
//! selector length are bounded (see [`limits`](super::limits)).

use regex::RegexBuilder;

use super::ast::{Expr, Literal, Match, MatchOp};
use super::error::FilterError;
use super::go_strconv::unquote;
use super::limits::{
    EXPRESSION_BYTES_MAX, NESTING_DEPTH_MAX, REGEX_COMPILED_BYTES_MAX, REGEX_NESTING_MAX, SELECTOR_SEGMENTS_MAX,
};
use super::peg::{Peg, Want};

/// Parses `src` and compiles its patterns. The empty string is the
/// expression that holds for everything (Consul applies no filter).
pub(crate) fn parse(src: &str) -> Result<Expr, FilterError> {
    if src.len() > EXPRESSION_BYTES_MAX {
        return Err(FilterError::TooLong { len_bytes: src.len() });
    }
    if src.is_empty() {
        return Ok(Expr::Always);
    }
    let mut grammar = Grammar {
        peg: Peg::new(src),
        depth: 0,
        abort: None,
    };
    let parsed = grammar.input();
    if let Some(abort) = grammar.abort {
        return Err(abort);
    }
    assert_eq!(grammar.depth, 0, "every entered group is left");
    grammar.peg.finish(parsed.is_some()).map_err(FilterError::Syntax)?;
    let mut expr = parsed.expect("finish succeeds only for a parsed expression");
    compile_patterns(&mut expr)?;
    Ok(expr)
}

/// A grammar token of an operator rule.
enum Tok {
    /// `_`
    Ws,
    /// `_?`
    OptWs,
    /// A keyword or symbol and its Go-quoted spelling.
    Lit(&'static str, Want),
}

/// One operator rule: its tokens and the operator it yields.
struct OpRule {
    toks: &'static [Tok],
    op: MatchOp,
}

const NOT: Tok = Tok::Lit("not", "\"not\"");

/// After a selector, before a value (`MatchSelectorOpValue`).
const SELECTOR_VALUE_OPS: [OpRule; 6] = [
    OpRule {
        toks: &[Tok::OptWs, Tok::Lit("==", "\"==\""), Tok::OptWs],
        op: MatchOp::Equal,
    },
    OpRule {
        toks: &[Tok::OptWs, Tok::Lit("!=", "\"!=\""), Tok::OptWs],
        op: MatchOp::NotEqual,
    },
    OpRule {
        toks: &[Tok::Ws, Tok::Lit("contains", "\"contains\""), Tok::Ws],
        op: MatchOp::In,
    },
    OpRule {
        toks: &[Tok::Ws, NOT, Tok::Ws, Tok::Lit("contains", "\"contains\""), Tok::Ws],
        op: MatchOp::NotIn,
    },
    OpRule {
        toks: &[Tok::Ws, Tok::Lit("matches", "\"matches\""), Tok::Ws],
        op: MatchOp::Matches,
    },
    OpRule {
        toks: &[Tok::Ws, NOT, Tok::Ws, Tok::Lit("matches", "\"matches\""), Tok::Ws],
        op: MatchOp::NotMatches,
    },
];

/// After a selector, alone (`MatchSelectorOp`).
const EMPTY_OPS: [OpRule; 2] = [
    OpRule {
        toks: &[
            Tok::Ws,
            Tok::Lit("is", "\"is\""),
            Tok::Ws,
            Tok::Lit("empty", "\"empty\""),
        ],
        op: MatchOp::IsEmpty,
    },
    OpRule {
        toks: &[
            Tok::Ws,
            Tok::Lit("is", "\"is\""),
            Tok::Ws,
            NOT,
            Tok::Ws,
            Tok::Lit("empty", "\"empty\""),
        ],
        op: MatchOp::IsNotEmpty,
    },
];

/// Between a value and a selector (`MatchValueOpSelector`).
const IN_OPS: [OpRule; 2] = [
    OpRule {
        toks: &[Tok::Ws, Tok::Lit("in", "\"in\""), Tok::Ws],
        op: MatchOp::In,
    },
    OpRule {
        toks: &[Tok::Ws, NOT, Tok::Ws, Tok::Lit("in", "\"in\""), Tok::Ws],
        op: MatchOp::NotIn,
    },
];

const W_LPAREN: Want = "\"(\"";
const W_RPAREN: Want = "\")\"";
const W_LBRACKET: Want = "\"[\"";
const W_RBRACKET: Want = "\"]\"";
const W_DOT: Want = "\".\"";
const W_MINUS: Want = "\"-\"";
const W_ZERO: Want = "\"0\"";
const W_BACKTICK: Want = "\"`\"";
const W_DQUOTE: Want = "\"\\\"\"";

/// The parser state: the cursor, the current nesting depth, and the limit
/// error that stops everything.
struct Grammar<'s> {
    peg: Peg<'s>,
    depth: usize,
    abort: Option<FilterError>,
}

impl Grammar<'_> {
    fn aborted(&self) -> bool {
        self.abort.is_some()
    }

    /// Enters a group or `not`; false (and abort) past the nesting limit.
    fn enter(&mut self) -> bool {
        if self.depth >= NESTING_DEPTH_MAX {
            self.abort = Some(FilterError::TooDeep);
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        assert!(self.depth > 0, "leave without enter");
        self.depth -= 1;
    }

    /// `Input`.
    fn input(&mut self) -> Option<Expr> {
        let start = self.peg.pos;
        self.peg.opt_ws();
        if self.peg.lit("(", W_LPAREN) && self.enter() {
            self.peg.opt_ws();
            let inner = self.or_expr();
            self.leave();
            if let Some(expr) = inner {
                self.peg.opt_ws();
                if self.peg.lit(")", W_RPAREN) {
                    self.peg.opt_ws();
                    if self.peg.eof() {
                        return Some(expr);
                    }
                }
            }
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        self.peg.opt_ws();
        let expr = self.or_expr()?;
        self.peg.opt_ws();
        self.peg.eof().then_some(expr)
    }

    /// `Or`, as a loop: `And (_ "or" _ And)*`.
    fn or_expr(&mut self) -> Option<Expr> {
        self.chain("or", "\"or\"", Self::and_expr, Expr::AnyOf)
    }

    /// `And`, as a loop: `Not (_ "and" _ Not)*`.
    fn and_expr(&mut self) -> Option<Expr> {
        self.chain("and", "\"and\"", Self::not_expr, Expr::All)
    }

    /// `term (_ keyword _ term)*`, each repetition undone if its term fails
    /// (exactly what the right-recursive rule with a fallback does).
    fn chain(
        &mut self,
        keyword: &'static str,
        want: Want,
        term: fn(&mut Self) -> Option<Expr>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Option<Expr> {
        if self.aborted() {
            return None;
        }
        let mut terms = vec![term(self)?];
        loop {
            let before = self.peg.pos;
            if self.peg.ws() && self.peg.lit(keyword, want) && self.peg.ws() {
                if let Some(next) = term(self) {
                    terms.push(next);
                    continue;
                }
            }
            if self.aborted() {
                return None;
            }
            self.peg.pos = before;
            break;
        }
        Some(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            join(terms)
        })
    }

    /// `Not`.
    fn not_expr(&mut self) -> Option<Expr> {
        if self.aborted() {
            return None;
        }
        let start = self.peg.pos;
        if self.peg.lit("not", "\"not\"") && self.peg.ws() && self.enter() {
            let operand = self.not_expr();
            self.leave();
            if let Some(operand) = operand {
                return Some(match operand {
                    Expr::Not(inner) => *inner,
                    other => Expr::Not(Box::new(other)),
                });
            }
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        self.group()
    }

    /// `Group` (go-bexpr's `ParenthesizedExpression`).
    fn group(&mut self) -> Option<Expr> {
        let start = self.peg.pos;
        let mut unclosed_at = None;
        if self.peg.lit("(", W_LPAREN) {
            if !self.enter() {
                return None;
            }
            self.peg.opt_ws();
            let inner = self.or_expr();
            self.leave();
            if let Some(expr) = inner {
                self.peg.opt_ws();
                let before_close = self.peg.pos;
                if self.peg.lit(")", W_RPAREN) {
                    return Some(expr);
                }
                unclosed_at = Some(before_close);
            }
            if self.aborted() {
                return None;
            }
        }
        self.peg.pos = start;
        if let Some(expr) = self.match_expr() {
            return Some(expr);
        }
        self.peg.pos = start;
        // Third alternative: the same text as the first up to the missing
        // ")", so it is known to raise exactly when the first got that far.
        if let Some(at) = unclosed_at {
            self.peg.error_at(at, "grouping", "Unmatched parentheses");
        }
        None
    }

    /// `Match`.
    fn match_expr(&mut self) -> Option<Expr> {
        if self.aborted() {
            return None;
        }
        let start = self.peg.pos;
        if let Some(selector) = self.selector() {
            if let Some(op) = self.operator(&SELECTOR_VALUE_OPS) {
                if let Some(value) = self.value() {
                    return Some(new_match(selector, op, Some(value)));
                }
            }
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        if let Some(selector) = self.selector() {
            if let Some(op) = self.operator(&EMPTY_OPS) {
                return Some(new_match(selector, op, None));
            }
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        let mut selector_missing_at = None;
        if let Some(value) = self.value() {
            if let Some(op) = self.operator(&IN_OPS) {
                let before_selector = self.peg.pos;
                if let Some(selector) = self.selector() {
                    return Some(new_match(selector, op, Some(value)));
                }
                selector_missing_at = Some(before_selector);
            }
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        // Last alternative: the same value and operator, then no selector.
        if let Some(at) = selector_missing_at {
            self.peg.error_at(at, "match", "Invalid selector");
        }
        None
    }

    /// The first operator rule of `rules` that matches here.
    fn operator(&mut self, rules: &[OpRule]) -> Option<MatchOp> {
        let start = self.peg.pos;
        for rule in rules {
            let matched = rule.toks.iter().all(|tok| match tok {
                Tok::Ws => self.peg.ws(),
                Tok::OptWs => {
                    self.peg.opt_ws();
                    true
                }
                Tok::Lit(text, want) => self.peg.lit(text, want),
            });
            if matched {
                return Some(rule.op);
            }
            self.peg.pos = start;
        }
        None
    }

    /// `Selector`: the path segments.
    fn selector(&mut self) -> Option<Vec<String>> {
        let start = self.peg.pos;
        if !self.identifier() {
            return None;
        }
        let mut path = vec![self.peg.slice(start, self.peg.pos).to_string()];
        loop {
            let before = self.peg.pos;
            let segment = if self.peg.lit(".", W_DOT) && self.identifier() {
                Some(self.peg.slice(before + 1, self.peg.pos).to_string())
            } else {
                self.peg.pos = before;
                self.index()
            };
            let Some(segment) = segment else {
                self.peg.pos = before;
                break;
            };
            if path.len() == SELECTOR_SEGMENTS_MAX {
                self.abort = Some(FilterError::SelectorTooLong);
                return None;
            }
            path.push(segment);
        }
        Some(path)
    }

    /// `Identifier`.
    fn identifier(&mut self) -> bool {
        if !self.peg.class(|c| c.is_ascii_alphabetic(), "[a-zA-Z]") {
            return false;
        }
        while self
            .peg
            .class(|c| c.is_ascii_alphanumeric() || c == '_', "[a-zA-Z0-9_]")
        {}
        true
    }

    /// `Index` (`["key"]`): the key.
    fn index(&mut self) -> Option<String> {
        let start = self.peg.pos;
        if !self.peg.lit("[", W_LBRACKET) {
            return None;
        }
        self.peg.opt_ws();
        let literal_at = self.peg.pos;
        match self.string_literal() {
            Some(key) => {
                self.peg.opt_ws();
                let before_close = self.peg.pos;
                if self.peg.lit("]", W_RBRACKET) {
                    return Some(key);
                }
                self.peg.error_at(before_close, "index", "Unclosed index expression");
            }
            None => self.peg.error_at(literal_at, "index", "Invalid index"),
        }
        self.peg.pos = start;
        None
    }

    /// `Value`: its raw text (a bare selector joined with `.`).
    fn value(&mut self) -> Option<String> {
        let start = self.peg.pos;
        if let Some(path) = self.selector() {
            return Some(path.join("."));
        }
        if self.aborted() {
            return None;
        }
        self.peg.pos = start;
        if let Some(number) = self.number() {
            return Some(number);
        }
        self.peg.pos = start;
        self.string_literal()
    }

    /// `Number`: its text.
    fn number(&mut self) -> Option<String> {
        let start = self.peg.pos;
        self.peg.lit("-", W_MINUS);
        if !self.integer_or_float() {
            self.peg.pos = start;
            return None;
        }
        let end = self.peg.pos;
        if self.peg.and_ahead(after_number) {
            return Some(self.peg.slice(start, end).to_string());
        }
        self.peg.error_at(end, "number", "Invalid number literal");
        self.peg.pos = start;
        None
    }

    /// `("0" / [1-9][0-9]*) ("." [0-9]+)?`
    fn integer_or_float(&mut self) -> bool {
        if !self.peg.lit("0", W_ZERO) {
            if !self.peg.class(|c| matches!(c, '1'..='9'), "[1-9]") {
                return false;
            }
            while self.peg.class(|c| c.is_ascii_digit(), "[0-9]") {}
        }
        let before_fraction = self.peg.pos;
        if self.peg.lit(".", W_DOT) && self.peg.class(|c| c.is_ascii_digit(), "[0-9]") {
            while self.peg.class(|c| c.is_ascii_digit(), "[0-9]") {}
        } else {
            self.peg.pos = before_fraction;
        }
        true
    }

    /// `String`: its unquoted text. A literal Go cannot unquote raises
    /// `invalid syntax` and yields "" (the parse goes on, as pigeon's does).
    fn string_literal(&mut self) -> Option<String> {
        let start = self.peg.pos;
        let closed = self.quoted('`', W_BACKTICK, true) || {
            self.peg.pos = start;
            self.quoted('"', W_DQUOTE, true)
        };
        if closed {
            let text = self.peg.slice(start, self.peg.pos);
            return Some(unquote(text).unwrap_or_else(|| {
                self.peg.error_at(start, "string", "invalid syntax");
                String::new()
            }));
        }
        self.peg.pos = start;
        let opened = self.quoted('`', W_BACKTICK, false) || {
            self.peg.pos = start;
            self.quoted('"', W_DQUOTE, false)
        };
        if opened && self.peg.eof() {
            self.peg.error_at(self.peg.pos, "string", "Unterminated string literal");
        }
        self.peg.pos = start;
        None
    }

    /// `q (!q .)*`, then `q` again when `closing`.
    fn quoted(&mut self, quote: char, want: Want, closing: bool) -> bool {
        let mut buf = [0u8; 4];
        let quote: &str = quote.encode_utf8(&mut buf);
        if !self.peg.lit(quote, want) {
            return false;
        }
        loop {
            let before = self.peg.pos;
            if !self.peg.not_ahead(|peg| peg.lit(quote, want)) || !self.peg.any() {
                self.peg.pos = before;
                break;
            }
        }
        !closing || self.peg.lit(quote, want)
    }
}

/// `AfterNumbers <- &(_ / EOF / ")")`, the inside of the lookahead.
fn after_number(peg: &mut Peg<'_>) -> bool {
    peg.ws() || peg.eof() || peg.lit(")", W_RPAREN)
}

fn new_match(selector: Vec<String>, op: MatchOp, value: Option<String>) -> Expr {
    Expr::Match(Box::new(Match {
        selector,
        op,
        value: value.map(Literal::new),
        regex: None,
    }))
}

/// Compiles every `matches` pattern, in expression order; the first that
/// fails is the error (as go-bexpr validates).
fn compile_patterns(expr: &mut Expr) -> Result<(), FilterError> {
    match expr {
        Expr::All(terms) | Expr::AnyOf(terms) => terms.iter_mut().try_for_each(compile_patterns),
        Expr::Not(operand) => compile_patterns(operand),
        Expr::Always => Ok(()),
        Expr::Match(m) => {
            if !matches!(m.op, MatchOp::Matches | MatchOp::NotMatches) {
                return Ok(());
            }
            let pattern = &m.value.as_ref().expect("matches always has a value").raw;
            let regex = RegexBuilder::new(pattern)
                .size_limit(REGEX_COMPILED_BYTES_MAX)
                .dfa_size_limit(REGEX_COMPILED_BYTES_MAX)
                .nest_limit(REGEX_NESTING_MAX)
                .build()
                .map_err(|error| FilterError::Regex {
                    pattern: pattern.clone(),
                    reason: regex_reason(&error),
                })?;
            m.regex = Some(regex);
            Ok(())
        }
    }
}

/// A one-line reason, worded like Go's `regexp` errors.
fn regex_reason(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => {
            let detail = text.rsplit("error: ").next().unwrap_or(text).trim();
            format!("error parsing regexp: {detail}")
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("error parsing regexp: expression too large (compiles to more than {limit} bytes)")
        }
        other => format!("error parsing regexp: {other}"),
    }
}
