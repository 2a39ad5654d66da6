//! A simulated cluster: one madsim node per replica, running the production node loop, executor
//! and service over simulated TCP, with stand-ins for ZooKeeper (an in-memory store that outlives
//! the node) and PostgreSQL (SQLite that keeps committed data across a crash).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barista_core::Config;
use barista_runtime::clock::SystemClock;
use barista_runtime::node::{ApplyHook, Executed, Node, NodeConfig, NodeHandle, NodeStatus};
use barista_runtime::service::{Service, ServiceConfig};
use barista_runtime::store::MemStore;
use barista_runtime::tcp::{TcpConfig, TcpTransport};
use barista_runtime::testkit::sqlite::SqliteDb;
use madsim::runtime::Handle;
use tokio::net::TcpListener;
use tracing::warn;

use crate::applied::AppliedLog;
use crate::config::SimConfig;
use crate::faulty::FaultyTransport;
use crate::rpc;
use crate::zk;

/// Port replicas talk to each other on.
const PEER_PORT: u16 = 7000;
/// Port the client service listens on.
const SERVICE_PORT: u16 = 7001;
/// Port a replica talks to the ZooKeeper stand-in from.
const STORE_PORT: u16 = 7002;

/// The address of replica `i` on `port`.
pub fn replica_addr(i: usize, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), port)
}

/// Replica `i`'s client service address.
pub fn service_addr(i: usize) -> SocketAddr {
    replica_addr(i, SERVICE_PORT)
}

/// Everything of one replica that outlives its process.
#[derive(Clone)]
pub struct ReplicaDisk {
    /// The acceptor store (ZooKeeper stand-in).
    pub store: MemStore,
    /// The database (PostgreSQL stand-in).
    pub db: Arc<SqliteDb>,
}

/// The running cluster, as the harness sees it.
pub struct SimCluster {
    /// The run's configuration.
    pub cfg: SimConfig,
    /// madsim node ids of the replicas.
    pub ids: Vec<madsim::task::NodeId>,
    /// Durable state per replica.
    pub disks: Vec<ReplicaDisk>,
    /// Whether each replica is running.
    pub up: Vec<bool>,
    handles: Arc<Mutex<Vec<Option<NodeHandle>>>>,
    /// Message-level faults apply while set.
    pub faults_on: Arc<AtomicBool>,
    /// What every replica applied, slot by slot.
    pub applied: Arc<AppliedLog>,
    /// The ZooKeeper stand-in's node.
    pub zk: madsim::task::NodeId,
    /// Whether the ZooKeeper stand-in is running.
    pub zk_up: bool,
    /// The stand-in's write fences, which deleting a replica's state must move too.
    fences: zk::Fences,
    /// Replicas whose acceptor state was deleted and that have not been seen rejoined since.
    lost: Vec<bool>,
}

impl SimCluster {
    /// Starts every replica.
    pub fn start(cfg: &SimConfig) -> SimCluster {
        let n = cfg.nodes as usize;
        let handles = Arc::new(Mutex::new(vec![None; n]));
        let faults_on = Arc::new(AtomicBool::new(false));
        let applied = Arc::new(AppliedLog::default());
        let disks: Vec<ReplicaDisk> = (0..n)
            .map(|_| ReplicaDisk {
                store: {
                    let store = MemStore::new();
                    store.set_latency(cfg.store_latency);
                    store
                },
                db: Arc::new(SqliteDb::new().expect("the SQLite stand-in opens in the temporary directory")),
            })
            .collect();
        let peers: Vec<SocketAddr> = (0..n).map(|i| replica_addr(i, PEER_PORT)).collect();
        let stores: Vec<MemStore> = disks.iter().map(|d| d.store.clone()).collect();
        let fences = zk::Fences::default();
        let zk = Handle::current()
            .create_node()
            .name("zookeeper")
            .ip(zk::zk_addr().ip())
            .init({
                let fences = fences.clone();
                move || zk::serve(stores.clone(), fences.clone())
            })
            .build()
            .id();
        let ids = (0..n)
            .map(|i| {
                let disk = disks[i].clone();
                let (cfg, peers, handles, faults_on) = (cfg.clone(), peers.clone(), handles.clone(), faults_on.clone());
                let hook = {
                    let applied = applied.clone();
                    ApplyHook(Arc::new(move |executed| {
                        if let Executed::Slot(slot, value) = executed {
                            applied.record(i, slot, value);
                        }
                    }))
                };
                let incarnation = Arc::new(AtomicU64::new(0));
                let store_clients = Arc::new(AtomicU32::new(0));
                Handle::current()
                    .create_node()
                    .name(format!("replica-{i}"))
                    .ip(replica_addr(i, 0).ip())
                    .init(move || {
                        let incarnation = incarnation.fetch_add(1, Ordering::Relaxed);
                        run_replica(
                            i,
                            cfg.clone(),
                            disk.clone(),
                            peers.clone(),
                            handles.clone(),
                            faults_on.clone(),
                            incarnation,
                            store_clients.clone(),
                            hook.clone(),
                        )
                    })
                    .build()
                    .id()
            })
            .collect();
        SimCluster {
            cfg: cfg.clone(),
            ids,
            disks,
            up: vec![true; n],
            handles,
            faults_on,
            applied,
            zk,
            zk_up: true,
            fences,
            lost: vec![false; n],
        }
    }

    /// Kills replica `i`: its memory, connections and open transactions are gone.
    pub fn crash(&mut self, i: usize) {
        self.lock_handles()[i] = None;
        Handle::current().kill(self.ids[i]);
        self.up[i] = false;
    }

    /// Replica `i`'s database server loses power: every commit since its last flush is gone,
    /// and it stays down until set up again.
    pub fn power_failure(&self, i: usize) {
        self.disks[i].db.lose_unflushed().expect("the SQLite stand-in restores its flushed copy");
    }

    /// Stops the ZooKeeper stand-in (its data stays).
    pub fn stop_zk(&mut self) {
        Handle::current().kill(self.zk);
        self.zk_up = false;
    }

    /// Starts the ZooKeeper stand-in again.
    pub fn start_zk(&mut self) {
        Handle::current().restart(self.zk);
        self.zk_up = true;
    }

    /// Restarts replica `i` from its disk.
    pub fn restart(&mut self, i: usize) {
        Handle::current().restart(self.ids[i]);
        self.up[i] = true;
    }

    /// Kills replica `i`, deletes its acceptor state (its ZooKeeper nodes; its database stays)
    /// and restarts it: it must rejoin without contradicting the votes it forgot.
    pub fn lose_acceptor_state(&mut self, i: usize) {
        self.crash(i);
        // Not a bare wipe: a write the killed incarnation left in flight must not land after it.
        zk::delete_state(&self.disks[i].store, &self.fences, i);
        self.restart(i);
        self.lost[i] = true;
    }

    /// True if a replica other than `i` lost its acceptor state and that loss still matters: it
    /// has not been seen rejoined, or some replica has not yet applied the slots its log held.
    /// Two at once could have lost a majority's votes: no protocol recovers from that alone, and
    /// the rejoin waits for an operator instead. And while a replica lags behind the first loss,
    /// the slots it still needs are in one log fewer; losing a second log then can leave them in
    /// none (seed 119: two databases applied them, no log kept them, and the lagging replica
    /// could only be re-seeded). That is two faults at once as well. The replica reports its rejoin
    /// until the end is persisted, since a crash in between leaves the store empty and it rejoins
    /// again (seed 3983: the report once ended early, while the ZooKeeper stand-in was down, and
    /// a second loss then left two replicas rejoining).
    pub fn another_lost(&mut self, i: usize) -> bool {
        let statuses: Vec<Option<NodeStatus>> = (0..self.lost.len()).map(|j| self.status(j)).collect();
        for (j, status) in statuses.iter().enumerate() {
            let Some(status) = status.as_ref().filter(|s| self.lost[j] && !s.core.rejoining) else { continue };
            // Its log starts at its floor: below it, the slots are in the other logs only.
            let floor = status.core.floor;
            if statuses.iter().all(|s| s.as_ref().is_some_and(|s| s.applied + 1 >= floor)) {
                self.lost[j] = false;
            }
        }
        self.lost.iter().enumerate().any(|(j, lost)| j != i && *lost)
    }

    /// The status of replica `i`, if it is running and started.
    pub fn status(&self, i: usize) -> Option<NodeStatus> {
        self.lock_handles()[i].as_ref().map(NodeHandle::status)
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, Vec<Option<NodeHandle>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every client service address.
    pub fn service_addrs(&self) -> Vec<SocketAddr> {
        (0..self.ids.len()).map(service_addr).collect()
    }
}

/// One incarnation of replica `i`: recover, then run until killed.
// Everything one incarnation needs, passed by value because the init closure re-runs it on restart.
#[allow(clippy::too_many_arguments)]
async fn run_replica(
    i: usize,
    cfg: SimConfig,
    disk: ReplicaDisk,
    peers: Vec<SocketAddr>,
    handles: Arc<Mutex<Vec<Option<NodeHandle>>>>,
    faults_on: Arc<AtomicBool>,
    incarnation: u64,
    store_clients: Arc<AtomicU32>,
    hook: ApplyHook,
) {
    let seed = cfg.seed ^ ((i as u64) << 48) ^ (incarnation << 32);
    let mut core = Config::new(i as u32, cfg.nodes, cfg.protocol);
    core.seed = seed;
    let node_cfg = NodeConfig {
        tick: Duration::from_millis(10),
        retry: Duration::from_millis(50),
        idle_txn_timeout: Duration::from_secs(2),
        on_apply: Some(hook),
        ..NodeConfig::new(core)
    };
    // The store or the database may be down right now: keep trying, as a real node would.
    let (node, handle) = loop {
        let instance = store_clients.fetch_add(1, Ordering::Relaxed);
        let store = zk::ZkClient::new(i, replica_addr(i, STORE_PORT), instance);
        match Node::start(node_cfg.clone(), store, disk.db.backend(), SystemClock).await {
            Ok(started) => break started,
            Err(e) => {
                warn!(replica = i, "cannot start yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let listener = match TcpListener::bind(peers[i]).await {
        Ok(listener) => listener,
        Err(e) => panic!("replica {i} cannot bind its peer port in the simulation: {e}"),
    };
    let tcp = TcpTransport::start(i as u32, listener, peers, TcpConfig::default());
    let transport = FaultyTransport::new(tcp, cfg.faults.clone(), faults_on, seed);
    handles.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(handle.clone());
    let service = Arc::new(Service::new(handle, SystemClock, ServiceConfig::default(), seed ^ 0x5e11));
    tokio::spawn(rpc::serve(service, service_addr(i)));
    node.run(transport).await;
}
