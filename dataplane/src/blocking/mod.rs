//! Blocking-query bookkeeping (pure): what a parked query watches, and the
//! per-core index from watched items to parked queries that a delta uses to
//! wake only the queries it affects.

mod watch;

pub use watch::{WatchItem, WatchSet};
