//! Every bound of the HTTP layer in one place. Each is enforced where the
//! input arrives, answered the way Go's `net/http` (or Consul) answers it,
//! and tested.

/// Largest request head (request line + headers). Larger → `431`.
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Most header lines in one request. More → `431`.
pub const HEADERS_COUNT_MAX: usize = 100;
/// Body limit of endpoints that do not set their own.
pub const BODY_BYTES_MAX_DEFAULT: usize = 512 * 1024;
/// Longest chunk-size line of a chunked body (Go: 4096).
pub const CHUNK_LINE_BYTES_MAX: usize = 4096;
/// Framing bytes a chunked body may carry beyond a per-chunk allowance of
/// 16 + 2 × chunk size (Go's rule against bodies of tiny chunks with long
/// extensions, which would cost far more memory than their data).
pub const CHUNK_OVERHEAD_BYTES_MAX: usize = 16 * 1024;
/// Most query parameters in one request. More → `400`.
pub const QUERY_PARAMS_MAX: usize = 256;
/// Responses answered from one read before the output is flushed, so a
/// client pipelining without reading cannot grow our output buffer.
pub const PIPELINED_RESPONSES_MAX: usize = 32;
/// Output buffered before a flush, whatever the response count.
pub const OUTPUT_FLUSH_BYTES: usize = 256 * 1024;
/// Bytes asked of the socket for the start of a request (most requests
/// fit; a connection waiting between requests holds only this much).
pub const READ_FIRST_BYTES: usize = 1024;
/// Bytes asked of the socket per read for the rest of a request that did
/// not fit in [`READ_FIRST_BYTES`].
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Buffers above this size are released after use, not kept per connection.
pub const BUFFER_KEEP_BYTES_MAX: usize = 64 * 1024;
/// How long a keep-alive connection may sit idle between requests.
pub const IDLE_TIMEOUT_MS: u64 = 90_000;
/// How long a started request may take to arrive in full.
pub const REQUEST_READ_TIMEOUT_MS: u64 = 30_000;
/// How long one response write may take.
pub const WRITE_TIMEOUT_MS: u64 = 30_000;
/// Size of the one read a parked blocking query keeps on its socket to
/// notice a client that hangs up. Small on purpose: it is held by every
/// parked query. Bytes it reads (the start of a pipelined request) are
/// kept and parsed after the answer; the rest stay in the socket.
pub const PARKED_READ_BYTES: usize = 64;
/// How long a connection refused over `limits.http_max_conns_per_client`
/// may take to receive its 429 and hang up.
pub const REFUSED_LINGER_MS: u64 = 1_000;
/// Request bytes read (and discarded) from a refused connection before it
/// is closed.
pub const REFUSED_DRAIN_BYTES_MAX: usize = 64 * 1024;
