//! Every bound in one place. Each limit has an error where it is enforced
//! and a test that hits it.

/// Largest KV value accepted (`limits.kv_max_value_size`, Consul's default).
pub const KV_VALUE_BYTES_MAX: usize = 512 * 1024;
/// Largest `/v1/txn` request body (`limits.txn_max_req_len`).
pub const TXN_BODY_BYTES_MAX: usize = 512 * 1024;
/// Most operations in one transaction (Consul 1.x).
pub const TXN_OPS_MAX: usize = 128;
/// Longest KV key accepted, in bytes.
pub const KV_KEY_BYTES_MAX: usize = 4096;
/// Largest frame on the control/data-plane unix socket.
pub const IPC_FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest encoded delta record. A delta is bounded by the largest write
/// (a 512 KiB value or a 512 KiB transaction) plus framing.
pub const DELTA_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Default capacity of the shared-memory delta ring.
pub const DELTA_RING_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest ring we accept: it must hold at least two maximal deltas.
pub const DELTA_RING_BYTES_MIN: u64 = 4 * DELTA_BYTES_MAX as u64;
/// Largest snapshot we are willing to map.
pub const SNAPSHOT_BYTES_MAX: u64 = 16 * 1024 * 1024 * 1024;
