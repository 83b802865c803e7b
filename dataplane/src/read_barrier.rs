//! Runs the raft read-index barrier of a `?consistent` read (the IO around
//! the pure [`crate::api::consistent`]): asks the control plane for the read
//! index, lets the core wait (bounded) until its view has applied it, and
//! refuses the read when it has not.

use proconsul_shared::ipc::messages::ControlOp;

use crate::api::consistent::{barrier_index, check_view_reached, needs_read_barrier};
use crate::api::{ApiRequest, Response};
use crate::core::Core;

/// Before a request is handled: for a `?consistent` read, the barrier.
/// `Ok` when the request may be served from `core.view()` now; `Err` is the
/// response to answer instead (`500 No cluster leader`, a timeout).
pub async fn before_read(core: &Core, request: &ApiRequest<'_>) -> Result<(), Response> {
    if !needs_read_barrier(request) {
        return Ok(());
    }
    // `Core::request` returns once this core's view reached the index, or
    // after its bounded read-your-writes wait: checked here.
    let reply = Box::pin(core.request(ControlOp::ReadBarrier)).await;
    let read_index = barrier_index(reply)?;
    check_view_reached(read_index, core.view().state.index())
}
