//! `barista serve`: one replica, assembled from the runtime's parts and run until a signal.
//!
//! Order matters: every listener is bound first (a port in use fails the start at once, with the
//! address), the admin endpoint and the Thrift API answer from then on ("starting" / "not
//! ready"), then the node recovers its state from ZooKeeper and PostgreSQL (retried until both are
//! reachable: a replica may start before its services), and only then joins its peers and takes
//! client requests.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use barista_core::Config as CoreConfig;
use barista_runtime::clock::SystemClock;
use barista_runtime::node::{ApplyHook, Executed, Node, NodeConfig, NodeHandle};
use barista_runtime::postgres::PgBackend;
use barista_runtime::service::{Service, ServiceConfig};
use barista_runtime::tcp::{TcpConfig, TcpTransport};
use barista_runtime::zookeeper::{ZkConfig, ZkStore};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::admin::{AdminState, Metrics};
use crate::api::Frontend;
use crate::api::server::{self as thrift_server, ServerConfig};
use crate::config::ServeConfig;
use crate::pgwire::PgFrontend;

/// Wait between attempts to recover while ZooKeeper or PostgreSQL is unreachable.
const START_RETRY: Duration = Duration::from_secs(1);

/// Runs the replica until SIGINT or SIGTERM.
pub fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.runtime_threads)
        .enable_all()
        .thread_name("barista")
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(serve(cfg));
    // Thrift worker threads may be blocked on the runtime; do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A fresh random number from the OS (std's hasher keys are seeded from it).
fn os_random() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

async fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(cfg.node_id)?);
    let admin_listener = TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| format!("binding admin_listen {}", cfg.admin_listen))?;
    let peer_listener =
        TcpListener::bind(cfg.peer_listen).await.with_context(|| format!("binding peer_listen {}", cfg.peer_listen))?;
    let client_listener = std::net::TcpListener::bind(cfg.client_listen)
        .with_context(|| format!("binding client_listen {}", cfg.client_listen))?;

    let admin = Arc::new(AdminState {
        node_id: cfg.node_id,
        nodes: cfg.peers.len() as u32,
        node: OnceLock::new(),
        service: OnceLock::new(),
        starting: Mutex::new(None),
        metrics: metrics.clone(),
    });
    let pg = match &cfg.pg {
        Some(pg) => {
            let listener =
                TcpListener::bind(pg.listen).await.with_context(|| format!("binding pg_listen {}", pg.listen))?;
            let frontend = PgFrontend::new(pg.clone(), &cfg.postgres, cfg.limits, cfg.workers, metrics.clone())
                .context("the PostgreSQL front end")?;
            tokio::spawn(frontend.clone().serve(listener));
            Some(frontend)
        }
        None => None,
    };
    tokio::spawn(crate::admin::http::serve(admin_listener, admin.clone()));
    let frontend = Frontend::new(tokio::runtime::Handle::current(), cfg.limits, metrics.clone());
    thrift_server::spawn(
        client_listener,
        frontend.clone(),
        ServerConfig { workers: cfg.workers, max_message_bytes: cfg.limits.max_message_bytes },
    )
    .context("starting the Thrift server threads")?;
    info!(
        node = cfg.node_id,
        client = %cfg.client_listen,
        admin = %cfg.admin_listen,
        peer = %cfg.peer_listen,
        "listening; recovering state from ZooKeeper and PostgreSQL"
    );

    let (node, handle) = start_node(&cfg, &metrics, &admin).await;
    let transport = TcpTransport::start(cfg.node_id, peer_listener, cfg.peers.clone(), TcpConfig::default());
    let mut node_task = tokio::spawn(node.run(transport));
    let _ = admin.node.set(handle.clone());
    let service_cfg = ServiceConfig { request_timeout: cfg.request_timeout, ..ServiceConfig::default() };
    let service = Arc::new(Service::new(handle, SystemClock, service_cfg, os_random()));
    frontend.set_service(service.clone());
    let _ = admin.service.set(service.clone());
    tokio::spawn(barista_runtime::verify::periodic::run(service.clone(), cfg.verify_interval));
    if let Some(pg) = &pg {
        pg.set_service(service).await;
    }
    info!(node = cfg.node_id, "serving clients");

    tokio::select! {
        signal = shutdown_signal() => {
            info!(node = cfg.node_id, "{signal}: stopping");
            Ok(())
        }
        ended = &mut node_task => {
            error!(node = cfg.node_id, "the node loop ended: {ended:?}");
            anyhow::bail!("the node loop ended unexpectedly")
        }
    }
}

/// Recovers the node, retrying while ZooKeeper or PostgreSQL cannot be reached; the last error is
/// shown by `/status` meanwhile.
async fn start_node(
    cfg: &ServeConfig,
    metrics: &Arc<Metrics>,
    admin: &AdminState,
) -> (Node<ZkStore, PgBackend, SystemClock>, NodeHandle) {
    let mut core = CoreConfig::new(cfg.node_id, cfg.peers.len() as u32, cfg.protocol);
    core.heartbeat_ticks = cfg.heartbeat_ticks;
    core.election_ticks = cfg.election_ticks;
    core.batch_max = cfg.batch_max;
    core.window = cfg.window;
    core.executor_ahead_max = cfg.executor_ahead_max;
    core.retain_slots = cfg.retain_slots;
    core.seed = os_random();
    let counting = metrics.clone();
    let node_cfg = NodeConfig {
        tick: cfg.tick,
        idle_txn_timeout: cfg.idle_txn_timeout,
        on_apply: Some(ApplyHook(Arc::new(move |executed| match executed {
            Executed::Slot(_, value) => {
                counting.slots_applied.inc();
                counting.commands_applied.inc_by(value.commands().len() as u64);
            }
            Executed::Read => counting.reads_outside_log.inc(),
        }))),
        ..NodeConfig::new(core)
    };
    let mut zk = ZkConfig::new(cfg.zookeeper.clone(), cfg.node_id.to_string());
    zk.root = cfg.zookeeper_root.clone();
    zk.session_timeout = cfg.zookeeper_session_timeout;
    loop {
        // Both were validated with the configuration; a failure here is a failure to connect.
        let attempt = async {
            let store = ZkStore::new(zk.clone()).context("ZooKeeper settings")?;
            let backend = PgBackend::new(&cfg.postgres).context("PostgreSQL connection string")?;
            Node::start(node_cfg.clone(), store, backend, SystemClock).await.context("recovering")
        };
        match attempt.await {
            Ok(started) => {
                *admin.starting.lock().unwrap_or_else(|p| p.into_inner()) = None;
                info!(node = cfg.node_id, applied = started.1.status().applied, "recovered");
                return started;
            }
            Err(e) => {
                warn!(node = cfg.node_id, "cannot start yet, retrying in {START_RETRY:?}: {e:#}");
                *admin.starting.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                tokio::time::sleep(START_RETRY).await;
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM; names the signal.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            warn!("cannot watch SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
