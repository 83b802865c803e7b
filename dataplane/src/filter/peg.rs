//! The matching machinery of a PEG parser, shaped after the pigeon-generated
//! parser go-bexpr uses, so that syntax errors read exactly like Consul's:
//!
//! * every terminal that fails records what it wanted at its start offset;
//!   only the farthest offset is kept (`no match found, expected: ...`);
//! * inside a `!` lookahead the sense flips: terminals that *succeed* are
//!   recorded, prefixed with `!` (so `!.` is reported as `EOF`);
//! * semantic errors raised by a rule (`Unmatched parentheses`) are kept in
//!   order, without duplicates, and win over the "no match" message.
//!
//! Pure: a cursor over a `&str`, no IO.

use super::error::SyntaxError;

/// What a terminal wanted, as pigeon spells it (`"=="`, `[a-zA-Z]`, `.`).
pub(crate) type Want = &'static str;

/// The cursor plus the failure bookkeeping.
pub(crate) struct Peg<'s> {
    src: &'s str,
    /// Current byte offset into `src`; always on a char boundary.
    pub(crate) pos: usize,
    /// True inside an odd number of `!` lookaheads.
    inverted: bool,
    /// Farthest offset at which a terminal was recorded.
    fail_pos: usize,
    /// What was wanted at `fail_pos`: (recorded inside `!`, want).
    fail_wants: Vec<(bool, Want)>,
    /// Semantic errors, in the order raised, without duplicates.
    errors: Vec<SyntaxError>,
}

/// Distinct wants kept at the farthest offset; the grammar has far fewer
/// distinct terminals, so this only bounds memory against repetition.
const FAIL_WANTS_MAX: usize = 64;
/// Distinct semantic errors kept; more add nothing for the reader.
const ERRORS_MAX: usize = 16;

impl<'s> Peg<'s> {
    /// A cursor at the start of `src`.
    pub(crate) fn new(src: &'s str) -> Peg<'s> {
        Peg {
            src,
            pos: 0,
            inverted: false,
            fail_pos: 0,
            fail_wants: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The input text between two offsets.
    pub(crate) fn slice(&self, from: usize, to: usize) -> &'s str {
        &self.src[from..to]
    }

    /// The text not consumed yet.
    pub(crate) fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    /// Records that a terminal wanting `want` at `at` matched or not.
    fn note(&mut self, matched: bool, at: usize, want: Want) {
        if matched != self.inverted || at < self.fail_pos {
            return;
        }
        if at > self.fail_pos {
            self.fail_pos = at;
            self.fail_wants.clear();
        }
        let entry = (self.inverted, want);
        if !self.fail_wants.contains(&entry) && self.fail_wants.len() < FAIL_WANTS_MAX {
            self.fail_wants.push(entry);
        }
    }

    /// A literal terminal; `want` is its Go-quoted spelling.
    pub(crate) fn lit(&mut self, text: &str, want: Want) -> bool {
        let at = self.pos;
        let matched = self.rest().starts_with(text);
        self.note(matched, at, want);
        if matched {
            self.pos += text.len();
        }
        matched
    }

    /// A one-character class terminal (`[a-zA-Z]`).
    pub(crate) fn class(&mut self, accepts: fn(char) -> bool, want: Want) -> bool {
        let at = self.pos;
        let next = self.rest().chars().next().filter(|&c| accepts(c));
        self.note(next.is_some(), at, want);
        if let Some(c) = next {
            self.pos += c.len_utf8();
        }
        next.is_some()
    }

    /// Any one character (`.`).
    pub(crate) fn any(&mut self) -> bool {
        self.class(|_| true, ".")
    }

    /// `!.`: the end of input.
    pub(crate) fn eof(&mut self) -> bool {
        self.not_ahead(|peg| peg.any())
    }

    /// `!e`: succeeds, consuming nothing, when `e` fails.
    pub(crate) fn not_ahead(&mut self, e: impl FnOnce(&mut Peg<'s>) -> bool) -> bool {
        let start = self.pos;
        self.inverted = !self.inverted;
        let matched = e(self);
        self.inverted = !self.inverted;
        self.pos = start;
        !matched
    }

    /// `&e`: succeeds, consuming nothing, when `e` succeeds.
    pub(crate) fn and_ahead(&mut self, e: impl FnOnce(&mut Peg<'s>) -> bool) -> bool {
        let start = self.pos;
        let matched = e(self);
        self.pos = start;
        matched
    }

    /// `_`: one or more of space, tab, CR, LF.
    pub(crate) fn ws(&mut self) -> bool {
        let mut any = false;
        while self.class(is_space, WANT_SPACE) {
            any = true;
        }
        any
    }

    /// `_?`.
    pub(crate) fn opt_ws(&mut self) {
        self.ws();
    }

    /// A semantic error raised by the rule `rule` at `at`.
    pub(crate) fn error_at(&mut self, at: usize, rule: &'static str, message: &'static str) {
        let error = SyntaxError::new(self.src, at, Some(rule), message.to_string());
        if !self.errors.contains(&error) && self.errors.len() < ERRORS_MAX {
            self.errors.push(error);
        }
    }

    /// Ends the parse: the semantic errors if any were raised, else (when
    /// `parsed` is false) the farthest-failure message.
    pub(crate) fn finish(self, parsed: bool) -> Result<(), Vec<SyntaxError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        if parsed {
            return Ok(());
        }
        let mut wants: Vec<String> = Vec::with_capacity(self.fail_wants.len());
        let mut eof = false;
        for &(inverted, want) in &self.fail_wants {
            match (inverted, want) {
                (true, ".") => eof = true,
                (true, want) => wants.push(format!("!{want}")),
                (false, want) => wants.push(want.to_string()),
            }
        }
        wants.sort();
        wants.dedup();
        if eof {
            wants.push("EOF".to_string());
        }
        let message = format!("no match found, expected: {}", join_go_list(&wants));
        Err(vec![SyntaxError::new(self.src, self.fail_pos, None, message)])
    }
}

/// pigeon's `[ \t\r\n]`.
pub(crate) const WANT_SPACE: Want = r"[ \t\r\n]";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `a, b or c`, as pigeon's `listJoin`.
fn join_go_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), Vec<SyntaxError>>) -> String {
        let errors = result.expect_err("must fail");
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn farthest_failure_wins_and_wants_are_sorted() {
        let mut peg = Peg::new("ab");
        assert!(!peg.lit("x", "\"x\""));
        assert!(peg.lit("a", "\"a\""));
        assert!(!peg.lit("c", "\"c\""));
        assert!(!peg.class(|c| c.is_ascii_digit(), "[0-9]"));
        assert_eq!(
            message(peg.finish(false)),
            r#"1:2 (1): no match found, expected: "c" or [0-9]"#
        );
    }

    #[test]
    fn success_inside_not_is_recorded_and_dot_reads_eof() {
        let mut peg = Peg::new("a");
        assert!(!peg.eof());
        assert_eq!(peg.pos, 0);
        assert_eq!(message(peg.finish(false)), "1:1 (0): no match found, expected: EOF");
        let mut at_end = Peg::new("");
        assert!(at_end.eof());
    }

    #[test]
    fn lookaheads_consume_nothing() {
        let mut peg = Peg::new("ab");
        assert!(peg.and_ahead(|p| p.lit("a", "\"a\"")));
        assert_eq!(peg.pos, 0);
        assert!(!peg.not_ahead(|p| p.lit("a", "\"a\"")));
        assert_eq!(peg.pos, 0);
        assert!(peg.not_ahead(|p| p.lit("b", "\"b\"")));
    }

    #[test]
    fn whitespace_records_where_it_stopped() {
        let mut peg = Peg::new(" \t\r\nx");
        assert!(peg.ws());
        assert_eq!(peg.pos, 4);
        assert!(!peg.ws());
        assert_eq!(
            message(peg.finish(false)),
            r"2:1 (4): no match found, expected: [ \t\r\n]"
        );
    }

    #[test]
    fn semantic_errors_win_and_are_deduplicated() {
        let mut peg = Peg::new("(x");
        peg.error_at(2, "grouping", "Unmatched parentheses");
        peg.error_at(2, "grouping", "Unmatched parentheses");
        peg.error_at(0, "index", "Invalid index");
        assert_eq!(
            message(peg.finish(true)),
            "1:3 (2): rule \"grouping\": Unmatched parentheses\n1:1 (0): rule \"index\": Invalid index"
        );
    }

    #[test]
    fn join_reads_like_go() {
        assert_eq!(join_go_list(&[]), "");
        assert_eq!(join_go_list(&["a".into()]), "a");
        assert_eq!(join_go_list(&["a".into(), "b".into(), "c".into()]), "a, b or c");
    }
}
