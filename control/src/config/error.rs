//! Why a configuration could not be loaded.

/// A configuration error. Its text is what the agent prints (after `==> `)
/// before exiting 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A config file or directory could not be read.
    #[error("Error reading '{path}': {reason}")]
    Read { path: String, reason: String },
    /// A config file is not valid JSON, or a key has the wrong type.
    #[error("Error parsing {path}: {reason}")]
    Parse { path: String, reason: String },
    /// The merged configuration breaks a rule (Consul's texts where it has one).
    #[error("{0}")]
    Invalid(String),
}
