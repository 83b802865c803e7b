//! Blocking-query bookkeeping: what a parked query watches, and the
//! per-core index from watched items to parked queries that a delta uses to
//! wake only the queries it affects.
//!
//! * [`watch`]: the vocabulary (`WatchItem`, `WatchSet`) shared with the
//!   HTTP handlers.
//! * [`changes`]: what a published version changed (pure).
//! * [`registry`]: watched item → parked queries, and which queries a
//!   change set wakes (pure).
//! * [`index_waiters`]: writes waiting for the replica to reach their index
//!   (pure).
//! * [`parking`]: the two above with a waker per entry, as futures.
//! * [`watch_index`]: the index of a watched item in a state.

pub mod changes;
pub mod index_waiters;
pub mod parking;
pub mod registry;
pub mod wake_pacing;
mod watch;
pub mod watch_index;

pub use changes::ChangeSet;
pub use registry::{ParkId, RegistryFull, WatchRegistry};
pub use watch::{WatchItem, WatchSet};
