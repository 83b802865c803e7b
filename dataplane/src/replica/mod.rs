//! The local replica of the state and its hand-off to the serving cores.
//!
//! * [`applier`]: the thread that attaches to the control plane, maps the
//!   snapshot, follows the delta ring and publishes versions (IO).
//! * [`apply`]: the replica itself: state, pending changes, versions (pure).
//! * [`leadership`]: leader known / last contact from heartbeats (pure).
//! * [`version`]: what one published version carries.
//! * [`handoff`]: latest version + per-core bounded queues + cross-thread
//!   wake-ups.

pub mod applier;
pub mod apply;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod handoff;
pub mod leadership;
pub mod version;

pub use applier::{spawn as spawn_applier, ApplierConfig};
pub use handoff::Hub;
pub use version::{LeaderInfo, Version};
