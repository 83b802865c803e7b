//! Every bound on a filter expression, in one place. Each has its own
//! [`FilterError`](super::FilterError) variant and a test.

/// Longest expression accepted, in bytes (after URL decoding).
pub const EXPRESSION_BYTES_MAX: usize = 4096;

/// Deepest nesting of parenthesised groups and `not`s.
pub const NESTING_DEPTH_MAX: usize = 64;

/// Most segments in one selector (`a.b["c"].d` has 4).
pub const SELECTOR_SEGMENTS_MAX: usize = 32;

/// Most memory one compiled `matches` pattern may take.
pub const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

/// Deepest nesting inside one `matches` pattern (groups, repetitions).
pub const REGEX_NESTING_MAX: u32 = 64;
