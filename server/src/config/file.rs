//! The TOML configuration file: every key optional (a flag, the environment or the default may
//! supply it), and unknown keys refused, so a misspelt key is an error rather than a silently
//! ignored setting.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use crate::cli::ProtocolArg;

/// The keys of a configuration file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each key is documented on its flag (`crate::cli::ServeArgs`)
pub struct FileConfig {
    pub node_id: Option<u32>,
    pub peers: Option<Vec<String>>,
    pub peer_listen: Option<String>,
    pub client_listen: Option<String>,
    pub admin_listen: Option<String>,
    pub postgres: Option<String>,
    pub zookeeper: Option<String>,
    pub zookeeper_root: Option<String>,
    pub zookeeper_session_timeout_ms: Option<u64>,
    pub protocol: Option<ProtocolArg>,
    pub tick_ms: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub idle_txn_timeout_ms: Option<u64>,
    pub verify_interval_ms: Option<u64>,
    pub batch_max: Option<usize>,
    pub window: Option<usize>,
    pub executor_ahead_max: Option<u64>,
    pub retain_slots: Option<u64>,
    pub pg_listen: Option<String>,
    pub pg_auth: Option<String>,
    pub pg_user: Option<String>,
    pub pg_password: Option<String>,
    pub pg_password_file: Option<std::path::PathBuf>,
    pub max_statement_bytes: Option<usize>,
    pub max_batch_len: Option<usize>,
    pub max_message_bytes: Option<usize>,
    pub workers: Option<usize>,
    pub runtime_threads: Option<usize>,
    pub log_level: Option<String>,
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        FileConfig::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_owned(), message },
            other => other,
        })
    }

    /// Parses a file's text (the path in errors is left empty).
    pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: Default::default(), message: e.to_string() })
    }
}
