//! Why an expression was refused, worded as Consul words it after
//! [`FILTER_ERROR_PREFIX`](super::FILTER_ERROR_PREFIX).

use std::fmt;

use super::limits::{EXPRESSION_BYTES_MAX, NESTING_DEPTH_MAX, SELECTOR_SEGMENTS_MAX};
use crate::api::go_quote::go_quote;

/// A refused filter expression. `Display` is the text Consul puts after its
/// prefix (`1:10 (9): rule "grouping": Unmatched parentheses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// The expression is longer than [`EXPRESSION_BYTES_MAX`].
    TooLong {
        /// Length of the refused expression.
        len_bytes: usize,
    },
    /// Parentheses and `not`s nest deeper than [`NESTING_DEPTH_MAX`].
    TooDeep,
    /// A selector has more than [`SELECTOR_SEGMENTS_MAX`] segments.
    SelectorTooLong,
    /// The grammar refused the text: go-bexpr's parser errors, in order.
    Syntax(Vec<SyntaxError>),
    /// A `matches` pattern does not compile (or compiles too big).
    Regex {
        /// The pattern as written in the expression (unquoted).
        pattern: String,
        /// Why it was refused.
        reason: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::TooLong { len_bytes } => {
                write!(
                    f,
                    "filter expression is {len_bytes} bytes long, the limit is {EXPRESSION_BYTES_MAX} bytes"
                )
            }
            FilterError::TooDeep => {
                write!(
                    f,
                    "filter expression nests parentheses and 'not' deeper than {NESTING_DEPTH_MAX} levels"
                )
            }
            FilterError::SelectorTooLong => {
                write!(f, "filter selector has more than {SELECTOR_SEGMENTS_MAX} segments")
            }
            FilterError::Syntax(errors) => {
                for (index, error) in errors.iter().enumerate() {
                    if index > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{error}")?;
                }
                Ok(())
            }
            FilterError::Regex { pattern, reason } => {
                write!(
                    f,
                    "Failed to compile regular expression {}: {reason}",
                    go_quote(pattern)
                )
            }
        }
    }
}

impl std::error::Error for FilterError {}

/// One parser error at a position, as pigeon formats it:
/// `line:col (offset): [rule "name": ]message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// 0-based byte offset.
    pub offset: usize,
    /// The display name of the grammar rule that raised it, if any.
    pub rule: Option<&'static str>,
    /// What went wrong.
    pub message: String,
}

impl SyntaxError {
    /// An error at byte `offset` of `src` (a char boundary).
    pub(crate) fn new(src: &str, offset: usize, rule: Option<&'static str>, message: String) -> SyntaxError {
        let before = &src[..offset];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        SyntaxError {
            line: 1 + before.matches('\n').count(),
            column: 1 + before[line_start..].chars().count(),
            offset,
            rule,
            message,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({}): ", self.line, self.column, self.offset)?;
        if let Some(rule) = self.rule {
            write!(f, "rule \"{rule}\": ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let error = SyntaxError::new("ab\nçd", 5, None, "x".into());
        assert_eq!((error.line, error.column, error.offset), (2, 2, 5));
        assert_eq!(error.to_string(), "2:2 (5): x");
        let ruled = SyntaxError::new("abc", 0, Some("index"), "Invalid index".into());
        assert_eq!(ruled.to_string(), "1:1 (0): rule \"index\": Invalid index");
    }

    #[test]
    fn messages_name_their_limits() {
        assert_eq!(
            FilterError::TooLong { len_bytes: 5000 }.to_string(),
            "filter expression is 5000 bytes long, the limit is 4096 bytes"
        );
        assert!(FilterError::TooDeep.to_string().contains("64"));
        assert!(FilterError::SelectorTooLong.to_string().contains("32"));
        let regex = FilterError::Regex {
            pattern: "a\"(".into(),
            reason: "missing )".into(),
        };
        assert_eq!(
            regex.to_string(),
            r#"Failed to compile regular expression "a\"(": missing )"#
        );
    }
}
