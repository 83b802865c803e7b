//! Consul's `?filter=` expression language (hashicorp/go-bexpr, the version
//! Consul vendors), as a pure module: parse once with [`Filter::parse`],
//! then test items with [`Filter::matches`].
//!
//! ```text
//! Service.Tags contains "primary" and ServiceMeta.env == prod
//! Checks.Status != passing or not (Node.Meta["rack"] matches "^r1[0-9]$")
//! ```
//!
//! * [`parser`] + [`peg`]: the grammar, with go-bexpr's error messages;
//! * [`ast`]: the parsed form (literals coerced, patterns compiled);
//! * [`eval`]: the operator semantics;
//! * [`value`]: [`Selectable`] / [`FieldValue`], what endpoint shapes implement;
//! * [`go_strconv`]: Go's unquoting and literal coercion rules;
//! * [`limits`]: the bounds on an expression.

mod ast;
mod error;
mod eval;
mod go_strconv;
pub mod limits;
mod parser;
mod peg;
mod value;

#[cfg(test)]
mod tests;

pub use error::{FilterError, SyntaxError};
pub use value::{FieldValue, Selectable};

/// What Consul writes before a filter error in its response body
/// (`Failed to create boolean expression evaluator: 1:4 (3): ...`).
pub const FILTER_ERROR_PREFIX: &str = "Failed to create boolean expression evaluator: ";

/// A parsed filter expression; reusable and shareable between threads.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: ast::Expr,
}

impl Filter {
    /// Parses `expr` (already URL-decoded). The empty string is accepted and
    /// matches everything, as Consul applies no filter for `?filter=`.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        parser::parse(expr).map(|expr| Filter { expr })
    }

    /// Whether `item` satisfies the expression.
    pub fn matches<T: Selectable + ?Sized>(&self, item: &T) -> bool {
        eval::eval(&self.expr, item)
    }

    /// Every selector path in the expression, left to right, so an endpoint
    /// can refuse fields its shape does not have (Consul answers
    /// `Selector "X" is not valid` for those).
    pub fn selectors(&self) -> Vec<&[String]> {
        let mut out = Vec::new();
        collect_selectors(&self.expr, &mut out);
        out
    }
}

fn collect_selectors<'e>(expr: &'e ast::Expr, out: &mut Vec<&'e [String]>) {
    match expr {
        ast::Expr::All(terms) | ast::Expr::AnyOf(terms) => terms.iter().for_each(|term| collect_selectors(term, out)),
        ast::Expr::Not(operand) => collect_selectors(operand, out),
        ast::Expr::Match(m) => out.push(&m.selector),
        ast::Expr::Always => {}
    }
}

/// The response body Consul sends for a refused expression.
pub fn error_body(error: &FilterError) -> String {
    format!("{FILTER_ERROR_PREFIX}{error}")
}
