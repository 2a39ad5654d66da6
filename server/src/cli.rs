//! The command line: `barista serve`, `barista status`, `barista reseed` and `barista demo`.
//!
//! Every configuration key of `serve` is also a flag and an environment variable
//! (`BARISTA_<KEY>`); precedence is flag, then environment, then the `--config` file, then the
//! default shown by `--help`. The defaults are clap's (so `--help` prints them); whether a value
//! was given explicitly is read from clap's value source (see `crate::config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::config::defaults;

/// Barista: a replicated relational store over PostgreSQL, kept identical by Multi-Paxos.
#[derive(Debug, Parser)]
#[command(name = "barista", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one replica: recover from ZooKeeper and PostgreSQL, join the peers, serve clients.
    Serve(Box<ServeArgs>),
    /// Print the cluster's state (leader, every replica's AP, health and lag) from admin addresses.
    Status(StatusArgs),
    /// Run a divergence check now: every replica checksums its tables at the same log position;
    /// print each replica's digest and whether it agrees with the majority's.
    Verify(VerifyArgs),
    /// Rebuild a stopped replica's database (wiped, or behind the purge point) from a consistent
    /// snapshot of a healthy replica that keeps serving; then start it with `barista serve`.
    Reseed(Box<ReseedArgs>),
    /// Start three replicas on this machine (PostgreSQL, ZooKeeper and all) and show, with real
    /// output, replication, failover and recovery; then leave the cluster running until Ctrl-C.
    Demo(DemoArgs),
}

/// Which consensus protocol decides the log's slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolArg {
    /// One leader; one round trip per slot once elected.
    MultiPaxos,
    /// Classic Paxos per slot; any replica proposes (two round trips).
    Paxos,
}

/// `barista serve`: every key of the configuration file, as a flag.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file; its keys are the flags' names with `_` for `-`.
    #[arg(long, env = "BARISTA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// This replica's id: its index in `peers`. Required.
    #[arg(long, env = "BARISTA_NODE_ID")]
    pub node_id: Option<u32>,
    /// Every replica's peer address (`host:port`), in node id order, comma-separated. Required.
    #[arg(long, env = "BARISTA_PEERS", value_delimiter = ',', value_name = "ADDR,...")]
    pub peers: Option<Vec<String>>,
    /// Address to accept peer connections on [default: this node's entry in `peers`].
    #[arg(long, env = "BARISTA_PEER_LISTEN", value_name = "ADDR")]
    pub peer_listen: Option<String>,
    /// Address of the Thrift client API.
    #[arg(long, env = "BARISTA_CLIENT_LISTEN", value_name = "ADDR", default_value = defaults::CLIENT_LISTEN)]
    pub client_listen: String,
    /// Address of the admin HTTP endpoint (`/metrics`, `/status`).
    #[arg(long, env = "BARISTA_ADMIN_LISTEN", value_name = "ADDR", default_value = defaults::ADMIN_LISTEN)]
    pub admin_listen: String,
    /// This replica's PostgreSQL: a libpq connection string or `postgresql://` URL. Required.
    #[arg(long, env = "BARISTA_POSTGRES", value_name = "CONNINFO")]
    pub postgres: Option<String>,
    /// ZooKeeper connect string (`host:port[,host:port...]`). Required.
    #[arg(long, env = "BARISTA_ZOOKEEPER", value_name = "HOSTS")]
    pub zookeeper: Option<String>,
    /// ZooKeeper path under which the acceptor state lives (`{root}/paxos/{node_id}`).
    #[arg(long, env = "BARISTA_ZOOKEEPER_ROOT", value_name = "PATH", default_value = defaults::ZOOKEEPER_ROOT)]
    pub zookeeper_root: String,
    /// ZooKeeper session timeout.
    #[arg(long, env = "BARISTA_ZOOKEEPER_SESSION_TIMEOUT_MS", value_name = "MS",
          default_value_t = defaults::ZOOKEEPER_SESSION_TIMEOUT_MS)]
    pub zookeeper_session_timeout_ms: u64,
    /// Consensus protocol; every replica must run the same.
    #[arg(long, env = "BARISTA_PROTOCOL", value_enum, default_value_t = ProtocolArg::MultiPaxos)]
    pub protocol: ProtocolArg,

    /// Length of one consensus tick; the other timers are rounded up to whole ticks.
    #[arg(long, env = "BARISTA_TICK_MS", value_name = "MS", default_value_t = defaults::TICK_MS)]
    pub tick_ms: u64,
    /// How often a multi-paxos leader heartbeats its followers.
    #[arg(long, env = "BARISTA_HEARTBEAT_MS", value_name = "MS", default_value_t = defaults::HEARTBEAT_MS)]
    pub heartbeat_ms: u64,
    /// A follower that heard no leader for this long (plus up to as much again, at random)
    /// campaigns; a leader that heard from no majority for this long steps down.
    #[arg(long, env = "BARISTA_ELECTION_TIMEOUT_MS", value_name = "MS",
          default_value_t = defaults::ELECTION_TIMEOUT_MS)]
    pub election_timeout_ms: u64,
    /// How long one client request may wait for its decision and execution before the client
    /// is told to retry (with the same request sequence number).
    #[arg(long, env = "BARISTA_REQUEST_TIMEOUT_MS", value_name = "MS",
          default_value_t = defaults::REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// An explicit transaction idle this long is rolled back (through the log, on every replica).
    #[arg(long, env = "BARISTA_IDLE_TXN_TIMEOUT_MS", value_name = "MS",
          default_value_t = defaults::IDLE_TXN_TIMEOUT_MS)]
    pub idle_txn_timeout_ms: u64,
    /// How often the leader starts a divergence check (every replica checksums its tables at the
    /// same log position; the log waits while it runs); 0: never (`barista verify` still works).
    #[arg(long, env = "BARISTA_VERIFY_INTERVAL_MS", value_name = "MS",
          default_value_t = defaults::VERIFY_INTERVAL_MS)]
    pub verify_interval_ms: u64,

    /// Most client commands in one log slot.
    #[arg(long, env = "BARISTA_BATCH_MAX", value_name = "N", default_value_t = defaults::BATCH_MAX)]
    pub batch_max: usize,
    /// Most undecided slots in flight at once (pipelining window).
    #[arg(long, env = "BARISTA_WINDOW", value_name = "N", default_value_t = defaults::WINDOW)]
    pub window: usize,
    /// A leader holds new commands back while N of its proposed slots still wait for its own
    /// executor, so that they share a later slot instead of taking one each (0: never hold).
    /// While the executor is the bottleneck, every command that shares a slot saves a consensus
    /// round and a ZooKeeper write per replica; a held command may wait up to one round longer.
    #[arg(long, env = "BARISTA_EXECUTOR_AHEAD_MAX", value_name = "N", default_value_t = defaults::EXECUTOR_AHEAD_MAX)]
    pub executor_ahead_max: u64,
    /// Log retention while a replica lags: 0 keeps every slot until every replica applied it (a
    /// replica down for long then holds the whole log back); N also purges applied slots more
    /// than N below this replica's own, and a replica that falls further behind must be re-seeded.
    #[arg(long, env = "BARISTA_RETAIN_SLOTS", value_name = "N", default_value_t = defaults::RETAIN_SLOTS)]
    pub retain_slots: u64,

    /// Address of the PostgreSQL wire protocol front end (psql, pgbench and PostgreSQL drivers
    /// connect here) [default: off].
    #[arg(long, env = "BARISTA_PG_LISTEN", value_name = "ADDR")]
    pub pg_listen: Option<String>,
    /// How PostgreSQL-protocol clients authenticate: `trust` (anyone who reaches `pg_listen`) or
    /// `scram-sha-256` (the password in `pg_password` or `pg_password_file`) [default: trust].
    #[arg(long, env = "BARISTA_PG_AUTH", value_name = "METHOD")]
    pub pg_auth: Option<String>,
    /// The only user name PostgreSQL-protocol clients may log in as [default: any].
    #[arg(long, env = "BARISTA_PG_USER", value_name = "NAME")]
    pub pg_user: Option<String>,
    /// The password for `pg_auth = scram-sha-256`.
    #[arg(long, env = "BARISTA_PG_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub pg_password: Option<String>,
    /// A file holding the password for `pg_auth = scram-sha-256` (its first line).
    #[arg(long, env = "BARISTA_PG_PASSWORD_FILE", value_name = "FILE")]
    pub pg_password_file: Option<PathBuf>,

    /// Longest SQL statement accepted, in bytes.
    #[arg(long, env = "BARISTA_MAX_STATEMENT_BYTES", value_name = "BYTES",
          default_value_t = defaults::MAX_STATEMENT_BYTES)]
    pub max_statement_bytes: usize,
    /// Most statements in one batch call.
    #[arg(long, env = "BARISTA_MAX_BATCH_LEN", value_name = "N", default_value_t = defaults::MAX_BATCH_LEN)]
    pub max_batch_len: usize,
    /// Largest Thrift request, in bytes; a bigger one closes its connection.
    #[arg(long, env = "BARISTA_MAX_MESSAGE_BYTES", value_name = "BYTES",
          default_value_t = defaults::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Client connections served at once by each front end: Thrift worker threads (one per
    /// connection) and PostgreSQL-protocol connections. A connection beyond them is refused with
    /// an "overloaded" error (SQLSTATE 53300 on the PostgreSQL port) and closed.
    #[arg(long, env = "BARISTA_WORKERS", value_name = "N", default_value_t = defaults::WORKERS)]
    pub workers: usize,
    /// Threads of the replica's async runtime. The consensus loop and the executor run as one
    /// task, so more threads mostly add wake-ups between them (measured: one thread gives more
    /// throughput than two on a two-core machine shared with PostgreSQL and ZooKeeper); raise it
    /// when many PostgreSQL-protocol clients keep one thread busy. Thrift connections have their
    /// own threads (`workers`).
    #[arg(long, env = "BARISTA_RUNTIME_THREADS", value_name = "N", default_value_t = defaults::RUNTIME_THREADS)]
    pub runtime_threads: usize,

    /// Log filter (`info`, `debug`, `barista_runtime=debug,info`, ...); RUST_LOG wins if set.
    #[arg(long, env = "BARISTA_LOG_LEVEL", value_name = "FILTER", default_value = defaults::LOG_LEVEL)]
    pub log_level: String,
}

/// `barista status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Every replica's admin address (`host:port`), comma-separated.
    #[arg(long, env = "BARISTA_ADMIN", value_delimiter = ',', required = true, value_name = "ADDR,...")]
    pub admin: Vec<String>,
    /// Seconds to wait for each replica's answer.
    #[arg(long, default_value_t = 2)]
    pub timeout_secs: u64,
    /// Print the replicas' status as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `barista verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Every replica's admin address (`host:port`), comma-separated. The check is started through
    /// the first one that accepts it; the reports are read from all of them.
    #[arg(long, env = "BARISTA_ADMIN", value_delimiter = ',', required = true, value_name = "ADDR,...")]
    pub admin: Vec<String>,
    /// Seconds to wait for the check to start and for every replica's report.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// `barista reseed`: the replica to rebuild is named by its own configuration (the same file,
/// flags and environment as its `barista serve`); the source by its admin and PostgreSQL
/// addresses.
#[derive(Debug, Args)]
pub struct ReseedArgs {
    /// A healthy replica's admin address (`host:port`, as `barista status` takes). It must report
    /// itself healthy and not in need of a re-seed; a follower is best (see README).
    #[arg(long, value_name = "ADDR")]
    pub from: String,
    /// That replica's PostgreSQL as reachable from here: a libpq connection string or
    /// `postgresql://` URL (its `postgres` setting, with a host this machine can reach).
    #[arg(long, value_name = "CONNINFO")]
    pub from_postgres: String,
    /// Replace the target database even if it is not empty (a replica that fell behind the purge
    /// point keeps its old data). Without it, only an empty database is restored into.
    #[arg(long)]
    pub force: bool,
    /// Directory of `pg_dump` and `psql` [default: the newest /usr/lib/postgresql/*/bin, else
    /// PATH].
    #[arg(long, env = "PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
    /// The replica to re-seed, described as for `barista serve`.
    #[command(flatten, next_help_heading = "The replica to re-seed (its `barista serve` configuration)")]
    pub replica: ServeArgs,
}

/// `barista demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// State directory (databases, ZooKeeper data, logs); emptied at start. Default: `target/demo`
    /// next to the binary's build, else `$XDG_STATE_HOME/barista/demo`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Stop everything and exit after the tour instead of leaving the cluster running.
    #[arg(long, alias = "exit")]
    pub no_wait: bool,
}
