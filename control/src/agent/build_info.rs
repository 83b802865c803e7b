//! What this build is. The revision and date come from the build
//! environment (`PROCONSUL_REVISION`, `PROCONSUL_BUILD_DATE`, set by the
//! release pipeline) and read "unknown" otherwise.

pub use proconsul_shared::agent_info::{CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};

/// The source revision (a git sha) this binary was built from.
pub const REVISION: &str = match option_env!("PROCONSUL_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// When this binary was built (RFC 3339).
pub const BUILD_DATE: &str = match option_env!("PROCONSUL_BUILD_DATE") {
    Some(d) => d,
    None => "unknown",
};
