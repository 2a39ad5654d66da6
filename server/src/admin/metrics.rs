//! The replica's metrics, in the Prometheus text format.
//!
//! Counters and the latency histogram are updated where things happen (the Thrift front end, the
//! node's apply hook); the gauges that describe the node (health, AP, decided slot, purge floor,
//! divergence, leader) are read from its status at scrape time, so they are never stale.

use std::time::Duration;

use barista_core::RoleKind;
use barista_runtime::node::{Health, NodeStatus};
use barista_runtime::verify::diverged_replicas;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets, in seconds: 0.5 ms to 10 s (the default request timeout).
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];

/// Every metric of one replica.
pub struct Metrics {
    registry: Registry,
    healthy: IntGauge,
    started: IntGauge,
    applied_slot: IntGauge,
    decided_slot: IntGauge,
    max_slot: IntGauge,
    floor_slot: IntGauge,
    retained_slots: IntGauge,
    needs_reseed: IntGauge,
    rejoining: IntGauge,
    diverged: IntGauge,
    diverged_replicas: IntGauge,
    last_check_slot: IntGauge,
    leader: IntGauge,
    is_leader: IntGauge,
    pending: IntGauge,
    /// Slots applied by this process.
    pub slots_applied: IntCounter,
    /// Client commands applied by this process (a slot holds a batch of them).
    pub commands_applied: IntCounter,
    /// Reads of the open transaction this process answered without the log.
    pub reads_outside_log: IntCounter,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Thrift client connections being served.
    pub connections: IntGauge,
    /// Thrift client connections refused because every worker was busy.
    pub connections_refused: IntCounter,
}

/// A metric definition that the registry refused: a bug in this file (names are constants).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Registers every metric.
    pub fn new(node_id: u32) -> Result<Metrics, MetricsError> {
        let registry = Registry::new_custom(Some("barista".into()), None)?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, MetricsError> {
            let g = IntGauge::with_opts(Opts::new(name, help).const_label("node", node_id.to_string()))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            let c = IntCounter::with_opts(Opts::new(name, help).const_label("node", node_id.to_string()))?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Client requests answered, by method and outcome.")
                .const_label("node", node_id.to_string()),
            &["method", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Client request latency, by method.")
                .const_label("node", node_id.to_string())
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Metrics {
            healthy: gauge("healthy", "1 if the replica votes and applies; 0 if its store or database is down.")?,
            started: gauge("started", "1 once the replica recovered its state and runs.")?,
            applied_slot: gauge("applied_slot", "AP: the last slot committed in this replica's database.")?,
            decided_slot: gauge("decided_slot", "Every slot up to this one is decided here.")?,
            max_slot: gauge("max_slot", "The highest slot this replica has seen.")?,
            floor_slot: gauge("floor_slot", "Slots below this one are purged here (log forgetting).")?,
            retained_slots: gauge(
                "retained_slots",
                "Log slots this replica holds (in memory and, once persisted, in ZooKeeper).",
            )?,
            needs_reseed: gauge(
                "needs_reseed",
                "1 if this replica fell behind its peers' purge point and must be re-seeded.",
            )?,
            rejoining: gauge(
                "rejoining",
                "1 while this replica, having lost its acceptor state, waits to vote again.",
            )?,
            diverged: gauge(
                "diverged",
                "1 if a divergence check found this replica's data different from the majority's (an alarm).",
            )?,
            diverged_replicas: gauge(
                "diverged_replicas",
                "How many replicas the divergence checks mark diverged, as this replica applied their reports.",
            )?,
            last_check_slot: gauge("last_check_slot", "Slot of the newest divergence check applied here (0: none).")?,
            leader: gauge("leader", "The leader this replica follows (-1: none known).")?,
            is_leader: gauge("is_leader", "1 if this replica is the multi-paxos leader.")?,
            pending: gauge("pending_commands", "Commands submitted here and not yet decided.")?,
            slots_applied: counter("slots_applied_total", "Log slots applied by this process.")?,
            commands_applied: counter("commands_applied_total", "Client commands applied by this process.")?,
            reads_outside_log: counter(
                "reads_outside_log_total",
                "Reads of the open transaction this process answered without the log.",
            )?,
            connections: gauge("client_connections", "Thrift client connections being served.")?,
            connections_refused: counter(
                "client_connections_refused_total",
                "Thrift client connections refused because every worker was busy.",
            )?,
            requests,
            latency,
            registry,
        })
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, method: &str, outcome: &str, elapsed: Duration) {
        self.requests.with_label_values(&[method, outcome]).inc();
        self.latency.with_label_values(&[method]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the node gauges set from `status` (`None`: not started yet).
    pub fn render(&self, status: Option<&NodeStatus>) -> String {
        match status {
            None => {
                self.started.set(0);
                self.healthy.set(0);
            }
            Some(s) => {
                self.started.set(1);
                self.healthy.set(i64::from(s.health == Health::Healthy));
                self.applied_slot.set(clamp(s.applied));
                self.decided_slot.set(clamp(s.core.decided_upto));
                self.max_slot.set(clamp(s.core.max_slot));
                self.floor_slot.set(clamp(s.core.floor));
                self.retained_slots.set(s.core.retained as i64);
                self.needs_reseed.set(i64::from(s.core.needs_reseed));
                self.rejoining.set(i64::from(s.core.rejoining));
                self.diverged.set(i64::from(matches!(s.health, Health::Diverged(_))));
                self.diverged_replicas.set(diverged_replicas(&s.checks).len() as i64);
                self.last_check_slot.set(s.checks.last().map_or(0, |c| clamp(c.check)));
                self.leader.set(s.core.leader.map_or(-1, i64::from));
                self.is_leader.set(i64::from(s.core.role == RoleKind::Leader));
                self.pending.set(s.core.pending as i64);
            }
        }
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a malformed metric family, which `new` rules out.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn clamp(slot: u64) -> i64 {
    i64::try_from(slot).unwrap_or(i64::MAX)
}
