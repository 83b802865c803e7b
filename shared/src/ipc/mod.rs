//! The unix-socket protocol between the control plane and the data plane.
//!
//! Every connection starts with a [`messages::Hello`] from the data plane:
//! * `Hello::Attach`: the replication channel. The control plane answers
//!   with `ToDataplane::Attached` (ring memfd attached) and a
//!   `ToDataplane::Snapshot` (snapshot memfd attached), then cluster status
//!   updates; the data plane asks for a new snapshot when it is lapped.
//! * `Hello::Requests`: a request channel (one per data-plane core):
//!   [`messages::ControlRequest`] in, [`messages::ControlResponse`] out,
//!   matched by id, many in flight.
//!
//! Frames are a u32 little-endian length and a postcard payload.

pub mod fdpass;
pub mod frame;
pub mod messages;
