//! Turns the merged keys into a [`ServeConfig`]: required keys present, addresses resolved, timers
//! converted to ticks, limits in range, and the settings the core checks checked here first so the
//! error names the configuration key rather than the core's field.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use barista_core::{NODES_MAX, Protocol};
use barista_runtime::postgres::PgBackend;
use barista_runtime::zookeeper::{ZkConfig, ZkStore};

use super::{ConfigError, Limits, Merged, PgAuth, PgConfig, ServeConfig};
use crate::cli::ProtocolArg;

/// Resolves `host:port` to one socket address (the first the resolver gives).
fn resolve(key: &'static str, addr: &str) -> Result<SocketAddr, ConfigError> {
    let mut addrs = addr
        .to_socket_addrs()
        .map_err(|e| ConfigError::invalid(key, format!("`{addr}` is not a usable host:port address: {e}")))?;
    addrs.next().ok_or_else(|| ConfigError::invalid(key, format!("`{addr}` resolves to no address")))
}

fn positive(key: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 { Err(ConfigError::invalid(key, "must be greater than zero")) } else { Ok(value) }
}

/// `ms` in whole ticks of `tick_ms`, rounded up (a timer is never shorter than configured).
fn ticks(ms: u64, tick_ms: u64) -> u64 {
    ms.div_ceil(tick_ms)
}

pub(super) fn validate(m: Merged) -> Result<ServeConfig, ConfigError> {
    let pg = pg_config(&m)?;
    let node_id = m.node_id.ok_or_else(|| ConfigError::missing("node_id"))?;
    let peer_names = m.peers.ok_or_else(|| ConfigError::missing("peers"))?;
    if peer_names.is_empty() || peer_names.len() > NODES_MAX as usize {
        return Err(ConfigError::invalid(
            "peers",
            format!("lists {} addresses; a cluster has 1 to {NODES_MAX} replicas", peer_names.len()),
        ));
    }
    if node_id as usize >= peer_names.len() {
        return Err(ConfigError::invalid(
            "node_id",
            format!(
                "{node_id} is out of range: `peers` lists {} addresses, so node ids are 0..={}",
                peer_names.len(),
                peer_names.len() - 1
            ),
        ));
    }
    let peers = peer_names.iter().map(|p| resolve("peers", p)).collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    if let Some(dup) = peers.iter().find(|p| !seen.insert(**p)) {
        return Err(ConfigError::invalid("peers", format!("{dup} is listed twice; every replica needs its own")));
    }
    let peer_listen = match &m.peer_listen {
        Some(addr) => resolve("peer_listen", addr)?,
        None => peers[node_id as usize],
    };
    let client_listen = resolve("client_listen", &m.client_listen)?;
    let admin_listen = resolve("admin_listen", &m.admin_listen)?;
    let mut listens =
        vec![("peer_listen", peer_listen), ("client_listen", client_listen), ("admin_listen", admin_listen)];
    listens.extend(pg.as_ref().map(|pg| ("pg_listen", pg.listen)));
    for (i, (a, addr_a)) in listens.iter().enumerate() {
        if let Some((b, _)) = listens[i + 1..].iter().find(|(_, addr_b)| addr_b == addr_a && addr_a.port() != 0) {
            return Err(ConfigError::invalid(a, format!("{addr_a} is also `{b}`; each needs its own port")));
        }
    }

    let postgres = m.postgres.ok_or_else(|| ConfigError::missing("postgres"))?;
    PgBackend::new(&postgres).map_err(|e| ConfigError::invalid("postgres", e.to_string()))?;
    let zookeeper = m.zookeeper.ok_or_else(|| ConfigError::missing("zookeeper"))?;
    if zookeeper.trim().is_empty() {
        return Err(ConfigError::invalid("zookeeper", "empty connect string"));
    }
    let mut zk = ZkConfig::new(zookeeper.clone(), node_id.to_string());
    zk.root = m.zookeeper_root.clone();
    // The store checks the root path (and the rest of its settings); no connection is made.
    ZkStore::new(zk).map_err(|e| ConfigError::invalid("zookeeper_root", e.to_string()))?;
    positive("zookeeper_session_timeout_ms", m.zookeeper_session_timeout_ms)?;

    let tick_ms = positive("tick_ms", m.tick_ms)?;
    let heartbeat_ticks = ticks(positive("heartbeat_ms", m.heartbeat_ms)?, tick_ms);
    let election_ticks = ticks(positive("election_timeout_ms", m.election_timeout_ms)?, tick_ms);
    if heartbeat_ticks >= election_ticks {
        return Err(ConfigError::invalid(
            "heartbeat_ms",
            format!(
                "{} ms ({heartbeat_ticks} ticks of {tick_ms} ms) must be shorter than election_timeout_ms \
                 {} ms ({election_ticks} ticks), or followers time out between heartbeats",
                m.heartbeat_ms, m.election_timeout_ms
            ),
        ));
    }
    positive("request_timeout_ms", m.request_timeout_ms)?;
    positive("idle_txn_timeout_ms", m.idle_txn_timeout_ms)?;
    positive("batch_max", m.batch_max as u64)?;
    positive("window", m.window as u64)?;
    positive("max_statement_bytes", m.max_statement_bytes as u64)?;
    positive("max_batch_len", m.max_batch_len as u64)?;
    positive("workers", m.workers as u64)?;
    positive("runtime_threads", m.runtime_threads as u64)?;
    if m.max_message_bytes < m.max_statement_bytes {
        return Err(ConfigError::invalid(
            "max_message_bytes",
            format!(
                "{} is smaller than max_statement_bytes {}: no request could carry the longest statement",
                m.max_message_bytes, m.max_statement_bytes
            ),
        ));
    }
    if m.max_statement_bytes >= barista_core::BATCH_BYTES_MAX {
        return Err(ConfigError::invalid(
            "max_statement_bytes",
            format!(
                "{} does not fit in one log slot ({} bytes, bounded by ZooKeeper's request limit)",
                m.max_statement_bytes,
                barista_core::BATCH_BYTES_MAX
            ),
        ));
    }
    if i32::try_from(m.max_message_bytes).is_err() {
        return Err(ConfigError::invalid("max_message_bytes", "must be below 2 GiB (Thrift lengths are i32)"));
    }

    Ok(ServeConfig {
        node_id,
        peers,
        peer_listen,
        client_listen,
        admin_listen,
        postgres,
        zookeeper,
        zookeeper_root: m.zookeeper_root,
        zookeeper_session_timeout: Duration::from_millis(m.zookeeper_session_timeout_ms),
        protocol: match m.protocol {
            ProtocolArg::MultiPaxos => Protocol::MultiPaxos,
            ProtocolArg::Paxos => Protocol::Paxos,
        },
        tick: Duration::from_millis(tick_ms),
        heartbeat_ticks,
        election_ticks,
        request_timeout: Duration::from_millis(m.request_timeout_ms),
        idle_txn_timeout: Duration::from_millis(m.idle_txn_timeout_ms),
        verify_interval: Duration::from_millis(m.verify_interval_ms),
        batch_max: m.batch_max,
        window: m.window,
        executor_ahead_max: m.executor_ahead_max,
        retain_slots: m.retain_slots,
        pg,
        limits: Limits {
            max_statement_bytes: m.max_statement_bytes,
            max_batch_len: m.max_batch_len,
            max_message_bytes: m.max_message_bytes,
        },
        workers: m.workers,
        runtime_threads: m.runtime_threads,
        log_level: m.log_level,
    })
}

/// The PostgreSQL front end's settings: off without `pg_listen` (and then no other `pg_` key may
/// be set: it would be silently ignored), else an address and an authentication method Barista
/// supports, with exactly one password source for SCRAM.
fn pg_config(m: &Merged) -> Result<Option<PgConfig>, ConfigError> {
    let Some(listen) = &m.pg_listen else {
        let set = [
            ("pg_auth", m.pg_auth.is_some()),
            ("pg_user", m.pg_user.is_some()),
            ("pg_password", m.pg_password.is_some()),
            ("pg_password_file", m.pg_password_file.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
            return Err(ConfigError::invalid(
                key,
                "is set, but the PostgreSQL protocol is off: set `pg_listen` to the address to serve it on",
            ));
        }
        return Ok(None);
    };
    let listen = resolve("pg_listen", listen)?;
    if m.pg_user.as_deref() == Some("") {
        return Err(ConfigError::invalid("pg_user", "is empty; leave it unset to accept any user name"));
    }
    let password = match (&m.pg_password, &m.pg_password_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid("pg_password", "set it or `pg_password_file`, not both"));
        }
        (Some(password), None) => Some(password.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid("pg_password_file", format!("cannot read {}: {e}", path.display()))
            })?;
            Some(text.lines().next().unwrap_or_default().to_owned())
        }
        (None, None) => None,
    };
    let auth = match (m.pg_auth.as_deref().unwrap_or("trust"), password) {
        ("trust", None) => PgAuth::Trust,
        ("trust", Some(_)) => {
            return Err(ConfigError::invalid(
                "pg_password",
                "is set, but `pg_auth` is trust, which asks for no password: set `pg_auth = \"scram-sha-256\"`",
            ));
        }
        ("scram-sha-256", Some(password)) if !password.is_empty() => PgAuth::ScramSha256 { password },
        ("scram-sha-256", _) => {
            return Err(ConfigError::invalid(
                "pg_auth",
                "scram-sha-256 needs a password: set `pg_password` or `pg_password_file`",
            ));
        }
        (other, _) => {
            return Err(ConfigError::invalid(
                "pg_auth",
                format!(
                    "`{other}` is not supported: use `trust` or `scram-sha-256` (md5 and cleartext `password` \
                     authentication are refused: SCRAM never sends the password or a replayable hash of it)"
                ),
            ));
        }
    };
    Ok(Some(PgConfig { listen, auth, user: m.pg_user.clone() }))
}
