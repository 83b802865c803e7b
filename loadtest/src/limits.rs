//! Every bound the load generator enforces, in one place. Each one is
//! checked where the input enters (command line, files, the wire) and has a
//! test that hits it.

/// Longest load run accepted, warm-up included.
pub const RUN_SECONDS_MAX: u64 = 3_600;
/// Most HTTP connections in one run. The process may hold 20,000
/// descriptors on these machines; keep room for sockets of other kinds.
pub const HTTP_CONNECTIONS_MAX: usize = 16_384;
/// Most generator threads.
pub const THREADS_MAX: usize = 64;
/// Deepest HTTP pipeline per connection.
pub const PIPELINE_DEPTH_MAX: usize = 128;
/// Longest request path, in bytes.
pub const PATH_BYTES_MAX: usize = 8 * 1024;
/// Most paths (HTTP) or queries (DNS) loaded from a file.
pub const INPUT_LINES_MAX: usize = 1_000_000;
/// Largest input file (paths or queries), in bytes.
pub const INPUT_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest response head (status line and headers), in bytes.
pub const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;
/// Most headers in one response.
pub const RESPONSE_HEADERS_MAX: usize = 64;
/// Largest response body, in bytes.
pub const RESPONSE_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most source addresses for HTTP connections.
pub const SOURCE_IPS_MAX: usize = 64;
/// Most reconnects per generator thread before it gives up: a server that
/// closes every connection is measured as broken, not hammered forever.
pub const RECONNECTS_PER_THREAD_MAX: u64 = 10_000;
/// Largest DNS window (queries outstanding). Half the 16-bit id space, so
/// an expired id is not reused while a late answer for it may still come.
pub const DNS_WINDOW_MAX: usize = 32_768;
/// Most UDP sockets in one DNS run.
pub const DNS_SOCKETS_MAX: usize = 256;
/// Largest `sendmmsg`/`recvmmsg` batch.
pub const DNS_BATCH_MAX: usize = 64;
/// Largest DNS message received, in bytes (EDNS-sized answers fit).
pub const DNS_REPLY_BYTES_MAX: usize = 4_096;
/// Highest fixed DNS rate, in queries per second.
pub const DNS_RATE_QPS_MAX: u64 = 10_000_000;
/// Longest reply timeout (HTTP and DNS), in milliseconds.
pub const TIMEOUT_MS_MAX: u64 = 60_000;
/// Most keys `prepare-kv` writes in one run.
pub const PREPARE_KEYS_MAX: u64 = 10_000_000;
/// Most services `prepare-catalog` registers: node addresses are
/// `10.x.y.z`, unique below 2^24.
pub const PREPARE_SERVICES_MAX: u64 = 1 << 24;
/// Largest value `prepare-kv` writes (Consul's `kv_max_value_size`).
pub const PREPARE_VALUE_BYTES_MAX: usize = 512 * 1024;
/// Tries per key in `prepare-kv` before the run fails.
pub const PREPARE_TRIES_PER_KEY_MAX: u32 = 5;
