//! Shared memory between the control plane (single writer) and the data
//! plane (reader).
//!
//! Two kinds of region, each an anonymous memfd passed over the unix socket:
//! * the [`ring::DeltaRing`]: a header page (cursors, heartbeat, leader
//!   state, futex word) and a byte ring of delta records;
//! * a [`snapshot_region`]: one rkyv [`crate::snapshot::StateSnapshot`],
//!   written once, validated once by the reader when it maps it.

pub mod futex;
pub mod region;
pub mod ring;
pub mod snapshot_region;
