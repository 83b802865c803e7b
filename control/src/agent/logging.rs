//! Logging to stderr at the configured level.

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// The filter for a level. openraft logs every vote and state dump at
/// `info`, so it is capped at `warn` unless `trace` is asked for; our own
/// raft module (`proconsul_control::raft`) reports the milestones.
pub fn filter_directives(level: LogLevel) -> String {
    match level {
        LogLevel::Trace => "trace".to_string(),
        LogLevel::Debug | LogLevel::Info => format!("{},openraft=warn", level.as_str()),
        other => other.as_str().to_string(),
    }
}

/// Installs the global subscriber. A second call (tests) changes nothing.
pub fn init(level: LogLevel) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter_directives(level)))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse() {
        for level in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ] {
            let d = filter_directives(level);
            assert!(d.starts_with(level.as_str()));
            assert!(EnvFilter::try_new(&d).is_ok(), "{d}");
        }
    }
}
