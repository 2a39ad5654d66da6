//! Everything about one simulation run, derived from its seed.
//!
//! One `u64` decides cluster size, protocol, fault rates and workload; printing the derived
//! configuration first means a failing run explains itself before it is replayed.

use std::fmt;
use std::time::Duration;

use barista_core::Protocol;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// How hostile the network and the nodes are during the fault phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability that a protocol message is dropped.
    pub drop: f64,
    /// Probability that a protocol message is delivered twice.
    pub duplicate: f64,
    /// Probability that a protocol message is held back (and so reordered).
    pub delay: f64,
    /// Longest hold-back.
    pub delay_max: Duration,
    /// Mean time between fault events (crash, restart, partition, heal, store outage).
    pub event_every: Duration,
    /// Crash/restart replicas.
    pub crashes: bool,
    /// Partition the network.
    pub partitions: bool,
    /// Take the acceptor store down.
    pub store_outages: bool,
    /// Make the acceptor store slow (tens of milliseconds per write).
    pub store_slowness: bool,
    /// Take a replica's database down, half the time as a power failure that loses its commits
    /// since the last flush; and make some replica crashes whole-machine power failures.
    pub database_outages: bool,
    /// Pause replicas (every task of the node frozen, as in a long stop-the-world pause or
    /// SIGSTOP; its peers' messages queue up) and resume them.
    pub pauses: bool,
    /// Cut single directions of links between replicas (one-way partitions).
    pub one_way: bool,
    /// Delete a replica's acceptor state (its ZooKeeper nodes) and restart it, one replica at
    /// a time.
    pub lost_state: bool,
}

/// Workload mix: how many clients of each kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Clients inserting unique rows (lost / duplicated writes).
    pub inserters: usize,
    /// Clients moving money between accounts (conservation, interactive transactions).
    pub bankers: usize,
    /// Clients reading, writing and compare-and-setting registers (linearizability).
    pub registers: usize,
    /// Requests each client makes.
    pub requests_per_client: usize,
}

/// One run's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The seed everything came from.
    pub seed: u64,
    /// Replicas: 3 or 5.
    pub nodes: u32,
    /// Consensus protocol.
    pub protocol: Protocol,
    /// Fault injection in the fault phase.
    pub faults: Faults,
    /// Clients.
    pub workload: Workload,
    /// A ZooKeeper write's normal latency.
    pub store_latency: Duration,
    /// Length of the fault phase (simulated time).
    pub fault_phase: Duration,
    /// After healing, the cluster must converge within this (simulated time).
    pub converge_within: Duration,
}

impl SimConfig {
    /// Derives a run from `seed`.
    pub fn from_seed(seed: u64) -> SimConfig {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = if rng.random_bool(0.7) { 3 } else { 5 };
        let protocol = if rng.random_bool(0.75) { Protocol::MultiPaxos } else { Protocol::Paxos };
        let hostile = rng.random_bool(0.8);
        let faults = Faults {
            drop: if hostile { rng.random_range(0.0..0.1) } else { 0.0 },
            duplicate: if hostile { rng.random_range(0.0..0.05) } else { 0.0 },
            delay: if hostile { rng.random_range(0.0..0.1) } else { 0.0 },
            delay_max: Duration::from_millis(rng.random_range(1..200)),
            event_every: Duration::from_millis(rng.random_range(200..2000)),
            crashes: hostile && rng.random_bool(0.7),
            partitions: hostile && rng.random_bool(0.6),
            store_outages: hostile && rng.random_bool(0.3),
            store_slowness: hostile && rng.random_bool(0.3),
            database_outages: hostile && rng.random_bool(0.3),
            pauses: false,
            one_way: false,
            lost_state: false,
        };
        let workload = Workload {
            inserters: rng.random_range(1..=3),
            bankers: rng.random_range(0..=2),
            registers: 0,
            requests_per_client: rng.random_range(10..40),
        };
        let mut cfg = SimConfig {
            seed,
            nodes,
            protocol,
            faults,
            workload,
            store_latency: Duration::from_micros(rng.random_range(200..3000)),
            fault_phase: Duration::from_secs(rng.random_range(3..10)),
            converge_within: Duration::from_secs(60),
        };
        // Drawn last, so that every other parameter of a seed is what it was before registers.
        cfg.workload.registers = rng.random_range(0..=2);
        // Likewise for the faults added after registers.
        cfg.faults.pauses = hostile && rng.random_bool(0.4);
        cfg.faults.one_way = hostile && cfg.faults.partitions && rng.random_bool(0.5);
        cfg.faults.lost_state = hostile && cfg.faults.crashes && rng.random_bool(0.4);
        cfg
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fl = &self.faults;
        write!(
            f,
            "seed={} nodes={} protocol={:?} drop={:.3} dup={:.3} delay={:.3}/{:?} events every {:?} \
             crashes={} lost_state={} partitions={} one_way={} pauses={} store_outages={} store_slowness={} db_outages={} store_latency={:?} \
             inserters={} bankers={} registers={} requests={} \
             fault_phase={:?}",
            self.seed,
            self.nodes,
            self.protocol,
            fl.drop,
            fl.duplicate,
            fl.delay,
            fl.delay_max,
            fl.event_every,
            fl.crashes,
            fl.lost_state,
            fl.partitions,
            fl.one_way,
            fl.pauses,
            fl.store_outages,
            fl.store_slowness,
            fl.database_outages,
            self.store_latency,
            self.workload.inserters,
            self.workload.bankers,
            self.workload.registers,
            self.workload.requests_per_client,
            self.fault_phase,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_run_and_seeds_cover_both_sizes_and_protocols() {
        assert_eq!(SimConfig::from_seed(42), SimConfig::from_seed(42));
        let runs: Vec<SimConfig> = (0..200).map(SimConfig::from_seed).collect();
        for nodes in [3, 5] {
            assert!(runs.iter().any(|r| r.nodes == nodes));
        }
        for protocol in [Protocol::Paxos, Protocol::MultiPaxos] {
            assert!(runs.iter().any(|r| r.protocol == protocol));
        }
        assert!(runs.iter().any(|r| r.faults.crashes) && runs.iter().any(|r| !r.faults.crashes));
        assert!(runs.iter().any(|r| r.faults.pauses) && runs.iter().any(|r| r.faults.one_way));
        assert!(runs.iter().any(|r| r.faults.lost_state) && runs.iter().any(|r| !r.faults.lost_state));
        assert!((0..=2).all(|n| runs.iter().any(|r| r.workload.registers == n)));
    }
}
