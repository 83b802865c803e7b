//! Logging to stderr at the agent's log level (the data plane is its own
//! process; the binary's `main` calls [`crate::run`] directly).

/// Maps Consul's level names (`trace`, `debug`, `info`, `warn`, `err`) to
/// a tracing filter directive. Unknown names fall back to `info`.
pub fn filter_for(level: &str) -> &'static str {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "err" | "error" => "error",
        "off" => "off",
        _ => "info",
    }
}

/// Installs a stderr subscriber at `level` (no-op if one is installed).
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::new(filter_for(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_level_names_map_to_filters() {
        assert_eq!(filter_for("ERR"), "error");
        assert_eq!(filter_for("warn"), "warn");
        assert_eq!(filter_for("DEBUG"), "debug");
        assert_eq!(filter_for("bogus"), "info");
    }
}
