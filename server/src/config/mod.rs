//! `barista serve`'s configuration: the layers merged (flag, environment, file, default), then
//! validated into a [`ServeConfig`] whose values are ready to use (addresses resolved, timers in
//! ticks), so that a mistake is reported at start with the key's name, never later.

mod file;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use barista_core::{NodeId, Protocol};
use clap::ArgMatches;
use clap::parser::ValueSource;
use thiserror::Error;

pub use file::FileConfig;

use crate::cli::ServeArgs;

/// The defaults of the optional keys (shown by `--help`).
pub mod defaults {
    /// Thrift client API address.
    pub const CLIENT_LISTEN: &str = "127.0.0.1:9090";
    /// Admin HTTP address.
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9100";
    /// ZooKeeper root path.
    pub const ZOOKEEPER_ROOT: &str = "/barista";
    /// ZooKeeper session timeout.
    pub const ZOOKEEPER_SESSION_TIMEOUT_MS: u64 = 10_000;
    /// Consensus tick.
    pub const TICK_MS: u64 = 10;
    /// Leader heartbeat period.
    pub const HEARTBEAT_MS: u64 = 50;
    /// Election timeout: six heartbeats, so one or two lost ones do not start an election; short
    /// enough that a leader's death is noticed, and a new one elected, within a second (a
    /// follower waits this plus up to as much again, at random). The integration tests use it.
    pub const ELECTION_TIMEOUT_MS: u64 = 300;
    /// Client request timeout.
    pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
    /// Idle transaction timeout.
    pub const IDLE_TXN_TIMEOUT_MS: u64 = 30_000;
    /// Divergence check period: 10 minutes.
    pub const VERIFY_INTERVAL_MS: u64 = 600_000;
    /// Commands per slot.
    pub const BATCH_MAX: usize = 256;
    /// Slots in flight.
    pub const WINDOW: usize = 64;
    /// A leader holds new commands back while one of its proposed slots waits for its executor.
    pub const EXECUTOR_AHEAD_MAX: u64 = 1;
    /// Off: the log is purged below `Min()` only, so a replica that was down comes back by
    /// catch-up, however long it was away, at the cost of ZooKeeper holding the log meanwhile.
    /// Setting it bounds that; a replica that falls behind every peer's purge point then reports
    /// `needs_reseed` and comes back with `barista reseed`.
    pub const RETAIN_SLOTS: u64 = 0;
    /// Longest statement: 512 KiB (a log slot holds at most `barista_core::BATCH_BYTES_MAX`).
    pub const MAX_STATEMENT_BYTES: usize = 512 << 10;
    /// Most statements per batch.
    pub const MAX_BATCH_LEN: usize = 1000;
    /// Largest Thrift request: 16 MiB.
    pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
    /// Thrift worker threads.
    pub const WORKERS: usize = 64;
    /// One async runtime thread: see `--runtime-threads`.
    pub const RUNTIME_THREADS: usize = 1;
    /// Log filter.
    pub const LOG_LEVEL: &str = "info";
}

/// Why the configuration cannot be used. Each names the key at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("configuration file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A required key has no value anywhere.
    #[error("`{key}` is required: set it in the configuration file, with --{flag}, or in {env}")]
    Missing {
        /// The key.
        key: &'static str,
        /// Its flag.
        flag: String,
        /// Its environment variable.
        env: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong, with the value.
        reason: String,
    },
}

impl ConfigError {
    fn missing(key: &'static str) -> ConfigError {
        ConfigError::Missing { key, flag: key.replace('_', "-"), env: format!("BARISTA_{}", key.to_uppercase()) }
    }

    fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key, reason: reason.into() }
    }
}

/// Request limits the client front ends enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest SQL statement, in bytes.
    pub max_statement_bytes: usize,
    /// Most statements in one batch.
    pub max_batch_len: usize,
    /// Largest Thrift request, in bytes.
    pub max_message_bytes: usize,
}

/// How PostgreSQL-protocol clients authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum PgAuth {
    /// Every client that reaches the port.
    Trust,
    /// SCRAM-SHA-256 with this password.
    ScramSha256 {
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for PgAuth {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgAuth::Trust => write!(f, "Trust"),
            PgAuth::ScramSha256 { .. } => write!(f, "ScramSha256"),
        }
    }
}

/// The PostgreSQL wire protocol front end's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgConfig {
    /// Where to accept PostgreSQL-protocol clients.
    pub listen: SocketAddr,
    /// How they authenticate.
    pub auth: PgAuth,
    /// The one user name accepted, if restricted.
    pub user: Option<String>,
}

/// A validated configuration of one replica.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// This replica.
    pub node_id: NodeId,
    /// Every replica's peer address, by node id.
    pub peers: Vec<SocketAddr>,
    /// Where to accept peers.
    pub peer_listen: SocketAddr,
    /// Thrift client API.
    pub client_listen: SocketAddr,
    /// Admin HTTP.
    pub admin_listen: SocketAddr,
    /// PostgreSQL connection string.
    pub postgres: String,
    /// ZooKeeper connect string.
    pub zookeeper: String,
    /// ZooKeeper root path.
    pub zookeeper_root: String,
    /// ZooKeeper session timeout.
    pub zookeeper_session_timeout: Duration,
    /// Consensus protocol.
    pub protocol: Protocol,
    /// One tick.
    pub tick: Duration,
    /// Heartbeat period, in ticks.
    pub heartbeat_ticks: u64,
    /// Election timeout, in ticks.
    pub election_ticks: u64,
    /// Client request timeout.
    pub request_timeout: Duration,
    /// Idle transaction timeout.
    pub idle_txn_timeout: Duration,
    /// Period of the divergence check (zero: never).
    pub verify_interval: Duration,
    /// Commands per slot.
    pub batch_max: usize,
    /// Slots in flight.
    pub window: usize,
    /// Proposed slots a leader lets wait for its executor before holding commands back.
    pub executor_ahead_max: u64,
    /// Log retention while a peer lags (0: until every replica applied a slot).
    pub retain_slots: u64,
    /// The PostgreSQL wire protocol front end, if on.
    pub pg: Option<PgConfig>,
    /// Request limits.
    pub limits: Limits,
    /// Thrift worker threads.
    pub workers: usize,
    /// Threads of the async runtime.
    pub runtime_threads: usize,
    /// Log filter.
    pub log_level: String,
}

/// The configuration as merged from all layers, before validation.
#[derive(Debug)]
pub(crate) struct Merged {
    pub node_id: Option<u32>,
    pub peers: Option<Vec<String>>,
    pub peer_listen: Option<String>,
    pub client_listen: String,
    pub admin_listen: String,
    pub postgres: Option<String>,
    pub zookeeper: Option<String>,
    pub zookeeper_root: String,
    pub zookeeper_session_timeout_ms: u64,
    pub protocol: crate::cli::ProtocolArg,
    pub tick_ms: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub idle_txn_timeout_ms: u64,
    pub verify_interval_ms: u64,
    pub batch_max: usize,
    pub window: usize,
    pub executor_ahead_max: u64,
    pub retain_slots: u64,
    pub pg_listen: Option<String>,
    pub pg_auth: Option<String>,
    pub pg_user: Option<String>,
    pub pg_password: Option<String>,
    pub pg_password_file: Option<PathBuf>,
    pub max_statement_bytes: usize,
    pub max_batch_len: usize,
    pub max_message_bytes: usize,
    pub workers: usize,
    pub runtime_threads: usize,
    pub log_level: String,
}

/// True if `id` was given on the command line or in the environment (not clap's default).
fn explicit(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

/// Merges the layers: `args` (flags and environment, with clap's defaults), parsed from
/// `matches` (the `serve` subcommand's, to tell given values from defaults), over `file`.
pub(crate) fn merge(args: ServeArgs, matches: &ArgMatches, file: FileConfig) -> Merged {
    // A key with a default: the flag if given, else the file, else the default.
    macro_rules! layered {
        ($key:ident) => {
            match file.$key {
                Some(value) if !explicit(matches, stringify!($key)) => value,
                _ => args.$key,
            }
        };
    }
    // A key without a default: the flag if given, else the file.
    macro_rules! optional {
        ($key:ident) => {
            args.$key.or(file.$key)
        };
    }
    Merged {
        node_id: optional!(node_id),
        peers: optional!(peers),
        peer_listen: optional!(peer_listen),
        client_listen: layered!(client_listen),
        admin_listen: layered!(admin_listen),
        postgres: optional!(postgres),
        zookeeper: optional!(zookeeper),
        zookeeper_root: layered!(zookeeper_root),
        zookeeper_session_timeout_ms: layered!(zookeeper_session_timeout_ms),
        protocol: layered!(protocol),
        tick_ms: layered!(tick_ms),
        heartbeat_ms: layered!(heartbeat_ms),
        election_timeout_ms: layered!(election_timeout_ms),
        request_timeout_ms: layered!(request_timeout_ms),
        idle_txn_timeout_ms: layered!(idle_txn_timeout_ms),
        verify_interval_ms: layered!(verify_interval_ms),
        batch_max: layered!(batch_max),
        window: layered!(window),
        executor_ahead_max: layered!(executor_ahead_max),
        retain_slots: layered!(retain_slots),
        pg_listen: optional!(pg_listen),
        pg_auth: optional!(pg_auth),
        pg_user: optional!(pg_user),
        pg_password: optional!(pg_password),
        pg_password_file: optional!(pg_password_file),
        max_statement_bytes: layered!(max_statement_bytes),
        max_batch_len: layered!(max_batch_len),
        max_message_bytes: layered!(max_message_bytes),
        workers: layered!(workers),
        runtime_threads: layered!(runtime_threads),
        log_level: layered!(log_level),
    }
}

impl ServeConfig {
    /// Reads the file named by `--config` (if any), merges and validates.
    pub fn load(args: ServeArgs, matches: &ArgMatches) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        validate::validate(merge(args, matches, file))
    }
}

#[cfg(test)]
mod tests;
