//! One simulation run: start a cluster, run clients through a fault phase, heal, and check that
//! the cluster converged to one correct state.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::Handle;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::check;
use crate::cluster::SimCluster;
use crate::config::SimConfig;
use crate::linearizability::{self, Verdict};
use crate::rpc::Client;
use crate::workload::{self, History};

/// What kind of promise a failed run broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Wrong data, lost or duplicated writes, an invariant violated.
    Safety,
    /// The healed cluster did not converge, or clients got no answer after healing.
    Liveness,
    /// A panic that is not an invariant check.
    Crash,
}

/// A failed run.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed to replay.
    pub seed: u64,
    /// Which promise broke.
    pub class: FailureClass,
    /// What was seen.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} failure, seed {}: {}\nreplay: RUSTFLAGS=\"--cfg madsim\" cargo run -p barista-sim --bin barista-sim -- run {}",
            self.class, self.seed, self.message, self.seed
        )
    }
}

/// What a passing run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Acknowledged inserts.
    pub inserts: usize,
    /// Committed transfers.
    pub transfers: usize,
    /// Fault events injected.
    pub fault_events: usize,
    /// The last applied slot.
    pub applied: u64,
    /// Simulated time the run took, in milliseconds.
    pub simulated_ms: u64,
    /// Canonical data of replica 0 (for determinism checks).
    pub fingerprint: String,
}

fn client_addr(k: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, k as u8 + 1)), 9000)
}

/// Runs the simulation described by `cfg` inside the current madsim runtime.
pub async fn simulate(cfg: SimConfig) -> Result<Report, Failure> {
    let mut cluster = SimCluster::start(&cfg);
    let result = simulate_on(&cfg, &mut cluster).await;
    // madsim keeps a finished run's tasks (and so the databases) alive: delete them explicitly.
    for disk in &cluster.disks {
        disk.db.remove();
    }
    result
}

async fn simulate_on(cfg: &SimConfig, cluster: &mut SimCluster) -> Result<Report, Failure> {
    let fail = |class, message: String| Failure { seed: cfg.seed, class, message };
    let started = Instant::now();
    let addrs = cluster.service_addrs();
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0xfa17);

    // Schema first, on a quiet network.
    let setup_deadline = Instant::now() + Duration::from_secs(30);
    let node = Handle::current().create_node().name("setup").ip(client_addr(200).ip()).build();
    let addrs_setup = addrs.clone();
    let ok = node
        .spawn(
            async move { workload::setup(Client::new(client_addr(200), addrs_setup, 0).await, setup_deadline).await },
        )
        .await
        .unwrap_or(false);
    if !ok {
        return Err(fail(FailureClass::Liveness, "could not create the schema on a healthy cluster".into()));
    }

    // Clients run through the fault phase and into the healed phase.
    let client_deadline = Instant::now() + cfg.fault_phase + cfg.converge_within;
    let mut clients = Vec::new();
    let w = &cfg.workload;
    let register_clock = workload::RegisterClock::new();
    for k in 0..w.inserters + w.bankers + w.registers {
        let node = Handle::current().create_node().name(format!("client-{k}")).ip(client_addr(k).ip()).build();
        let (addrs, requests, seed) = (addrs.clone(), w.requests_per_client, cfg.seed ^ (k as u64) << 8);
        let (kind, clock) = (workload::Kind::of(k, w), register_clock.clone());
        clients.push(node.spawn(async move {
            let client = Client::new(client_addr(k), addrs, k).await;
            match kind {
                workload::Kind::Inserter => workload::inserter(k as u64, client, requests, client_deadline).await,
                workload::Kind::Banker => workload::banker(k as u64, client, requests, seed, client_deadline).await,
                workload::Kind::Register => {
                    workload::register(k as u64, client, requests, seed, clock, client_deadline).await
                }
            }
        }));
    }

    // Fault phase.
    cluster.faults_on.store(true, Ordering::Relaxed);
    let fault_end = Instant::now() + cfg.fault_phase;
    let mut clogged = Vec::new();
    let mut clogged_links = Vec::new();
    let mut paused = Vec::new();
    // The faults added later draw from their own stream, so every fault a seed injected before
    // they existed is still injected, at the same moment.
    let mut more_rng = StdRng::seed_from_u64(cfg.seed ^ 0x9a05_e0e1);
    let mut fault_events = 0;
    let mut next_event = Instant::now();
    while Instant::now() < fault_end {
        tokio::time::sleep(Duration::from_millis(5)).await;
        // A replica hung in a store write dies right there.
        for j in 0..cluster.up.len() {
            if cluster.disks[j].store.tripped() && cluster.up[j] {
                cluster.crash(j);
            }
        }
        if Instant::now() >= next_event {
            next_event = Instant::now() + rng.random_range(cfg.faults.event_every / 2..cfg.faults.event_every * 3 / 2);
            fault_events += inject(cluster, &mut rng, &mut clogged, &mut clogged_links);
            fault_events += inject_more(cluster, &mut more_rng, &mut paused, &mut clogged_links);
        }
    }

    // Healed phase: everything back, and the cluster must converge.
    cluster.faults_on.store(false, Ordering::Relaxed);
    for id in clogged.drain(..) {
        NetSim::current().unclog_node(id);
    }
    for i in paused.drain(..) {
        Handle::current().resume(cluster.ids[i]);
    }
    for (a, b) in clogged_links.drain(..) {
        NetSim::current().unclog_link(a, b);
        NetSim::current().unclog_link(b, a);
    }
    if !cluster.zk_up {
        cluster.start_zk();
    }
    for i in 0..cluster.up.len() {
        cluster.disks[i].store.disarm_tripwire();
        if cluster.disks[i].store.tripped() && cluster.up[i] {
            cluster.crash(i); // hung in a store write: it dies there, and restarts below
        }
        cluster.disks[i].store.set_down(false);
        cluster.disks[i].store.set_latency(cfg.store_latency);
        cluster.disks[i].db.set_down(false);
        if !cluster.up[i] {
            cluster.restart(i);
        }
    }
    let mut histories: Vec<History> = Vec::new();
    for c in clients {
        match c.await {
            Ok(h) => histories.push(h),
            Err(e) => return Err(fail(FailureClass::Crash, format!("client task failed: {e}"))),
        }
    }
    let converge_deadline = Instant::now() + cfg.converge_within;
    let applied = loop {
        if let Some(ap) = converged(cluster) {
            break ap;
        }
        if Instant::now() > converge_deadline {
            let statuses: Vec<String> = (0..cluster.up.len()).map(|i| format!("{:?}", cluster.status(i))).collect();
            return Err(fail(
                FailureClass::Liveness,
                format!("no convergence within {:?} after healing:\n{}", cfg.converge_within, statuses.join("\n")),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let conflicts = cluster.applied.conflicts();
    if !conflicts.is_empty() {
        return Err(fail(FailureClass::Safety, format!("replicas applied different sequences: {conflicts:?}")));
    }
    let violations: Vec<&String> = histories.iter().flat_map(|h| &h.violations).collect();
    if !violations.is_empty() {
        return Err(fail(FailureClass::Safety, format!("clients saw broken promises: {violations:?}")));
    }
    let dbs: Vec<_> = cluster.disks.iter().map(|d| d.db.clone()).collect();
    let acked: Vec<i64> = histories.iter().flat_map(|h| h.acked_inserts.iter().copied()).collect();
    check::identical(&dbs).await.map_err(|e| fail(FailureClass::Safety, e))?;
    check::money_conserved(&dbs).await.map_err(|e| fail(FailureClass::Safety, e))?;
    check::no_acked_insert_lost(&dbs, &acked).await.map_err(|e| fail(FailureClass::Safety, e))?;
    let register_ops: Vec<_> = histories.iter().flat_map(|h| h.register_ops.iter().cloned()).collect();
    linearizability::check_registers(&register_ops, workload::REGISTER_INITIAL).map_err(|v| {
        // A search out of budget is the harness's failure, not evidence against the cluster.
        fail(if v.verdict == Verdict::Unknown { FailureClass::Crash } else { FailureClass::Safety }, v.message)
    })?;
    let fingerprint = check::snapshot(&dbs[0]).await.map_err(|e| fail(FailureClass::Crash, e))?;
    Ok(Report {
        inserts: acked.len(),
        transfers: histories.iter().map(|h| h.committed_transfers).sum(),
        fault_events,
        applied,
        simulated_ms: started.elapsed().as_millis() as u64,
        fingerprint,
    })
}

/// Every replica is up, healthy, and applied the same last slot, with nothing left to apply and
/// no open transaction. Returns that slot.
fn converged(cluster: &SimCluster) -> Option<u64> {
    let statuses: Option<Vec<_>> = (0..cluster.up.len()).map(|i| cluster.status(i)).collect();
    let statuses = statuses?;
    let first = statuses.first()?;
    let done = statuses.iter().all(|s| {
        s.health == barista_runtime::node::Health::Healthy
            && s.applied == first.applied
            && s.core.decided_upto == first.applied
            && s.core.pending == 0
            && s.open_txn.is_none()
    });
    done.then_some(first.applied)
}

/// Pauses or resumes a replica, cuts or restores one direction of a link between two replicas,
/// and deletes a replica's acceptor state, each at random and only if the seed enables it;
/// returns how many it did. (Resuming a replica that crashed meanwhile is harmless: a restarted
/// node runs unpaused.)
fn inject_more(
    cluster: &mut SimCluster,
    rng: &mut StdRng,
    paused: &mut Vec<usize>,
    clogged_links: &mut Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
) -> usize {
    let n = cluster.up.len();
    let f = cluster.cfg.faults.clone();
    let mut events = 0;
    if f.pauses && rng.random_bool(0.3) {
        if !paused.is_empty() && rng.random_bool(0.5) {
            let i = paused.swap_remove(rng.random_range(0..paused.len()));
            Handle::current().resume(cluster.ids[i]);
            events += 1;
        } else {
            let i = rng.random_range(0..n);
            if cluster.up[i] && !paused.contains(&i) {
                Handle::current().pause(cluster.ids[i]);
                paused.push(i);
                events += 1;
            }
        }
    }
    if f.one_way && rng.random_bool(0.3) {
        let a = rng.random_range(0..n);
        let b = (a + rng.random_range(1..n)) % n;
        let link = (cluster.ids[a], cluster.ids[b]);
        match clogged_links.iter().position(|l| *l == link) {
            Some(k) => {
                clogged_links.swap_remove(k);
                NetSim::current().unclog_link(link.0, link.1);
            }
            None => {
                NetSim::current().clog_link(link.0, link.1);
                clogged_links.push(link);
            }
        }
        events += 1;
    }
    if f.lost_state && rng.random_bool(0.3) {
        let i = rng.random_range(0..n);
        if cluster.up[i] && !cluster.another_lost(i) {
            cluster.lose_acceptor_state(i);
            events += 1;
        }
    }
    events
}

/// Injects one random fault; returns 1 if it did something.
fn inject(
    cluster: &mut SimCluster,
    rng: &mut StdRng,
    clogged: &mut Vec<madsim::task::NodeId>,
    clogged_links: &mut Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
) -> usize {
    let n = cluster.up.len();
    // Half the time the target is the leader (if there is one): failover is where consensus is
    // most fragile, so that is where faults should land most.
    let leader = (0..n).find(|&j| cluster.status(j).is_some_and(|s| s.core.role == barista_core::RoleKind::Leader));
    let i = match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => rng.random_range(0..n),
    };
    let f = &cluster.cfg.faults;
    match rng.random_range(0..10) {
        0 if f.crashes && cluster.up[i] => {
            cluster.crash(i);
            // Sometimes the whole machine: its PostgreSQL loses what it had not flushed, and is
            // back (recovered) before the replica restarts.
            if cluster.cfg.faults.database_outages && rng.random_bool(0.5) {
                cluster.power_failure(i);
                cluster.disks[i].db.set_down(false);
            }
        }
        1 if f.crashes && !cluster.up[i] => cluster.restart(i),
        2 if f.partitions && !clogged.contains(&cluster.ids[i]) => {
            NetSim::current().clog_node(cluster.ids[i]);
            clogged.push(cluster.ids[i]);
        }
        3 if f.partitions && !clogged.is_empty() => {
            let id = clogged.remove(rng.random_range(0..clogged.len()));
            NetSim::current().unclog_node(id);
        }
        4 if f.store_outages => {
            let down = rng.random_bool(0.5);
            cluster.disks[i].store.set_down(down);
        }
        5 if f.database_outages => {
            let down = rng.random_bool(0.5);
            // Half the outages are power failures of the database server alone.
            if down && rng.random_bool(0.5) {
                cluster.power_failure(i);
            } else {
                cluster.disks[i].db.set_down(down);
            }
        }
        7 if f.crashes && cluster.up[i] => cluster.disks[i].store.arm_tripwire(),
        // ZooKeeper down as a whole, or back.
        8 if f.store_outages => {
            if cluster.zk_up {
                cluster.stop_zk();
            } else {
                cluster.start_zk();
            }
        }
        // One replica cut off from ZooKeeper (both directions), until the next heal.
        9 if f.store_outages && !clogged_links.contains(&(cluster.ids[i], cluster.zk)) => {
            NetSim::current().clog_link(cluster.ids[i], cluster.zk);
            NetSim::current().clog_link(cluster.zk, cluster.ids[i]);
            clogged_links.push((cluster.ids[i], cluster.zk));
        }
        6 if f.store_slowness => {
            let slow = rng.random_bool(0.5);
            let latency =
                if slow { Duration::from_millis(rng.random_range(10..100)) } else { cluster.cfg.store_latency };
            cluster.disks[i].store.set_latency(latency);
        }
        _ => return 0,
    }
    1
}
