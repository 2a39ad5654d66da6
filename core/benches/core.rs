//! Throughput of `barista-core` alone: three replicas wired in-process through the
//! [`Cluster`] test harness, no IO, no serialization, no clock.
//!
//! Why: the core is the ceiling for the whole system. If it cannot decide slots fast enough on
//! one core, no runtime or network tuning will help, so the issue sets targets for it in
//! isolation: at least 100,000 slots/s unbatched and 1,000,000 commands/s at batch 256 on one
//! core, in multi-paxos.
//!
//! What one iteration does (the steady state, after the leader was elected outside the measured
//! loop):
//!
//! 1. submit `SLOTS_PER_ITER * batch` commands at the proposer (the multi-paxos leader; in paxos
//!    mode each replica in turn, one round at a time, so proposers never duel) without draining
//!    in between, so that `take_ready` cuts them into `SLOTS_PER_ITER` slots of `batch` commands
//!    (`Config::batch_max = batch`, `Config::window = SLOTS_PER_ITER`: the whole iteration is in
//!    flight at once);
//! 2. process the proposer (persist, send, apply) and deliver every message hop by hop until the
//!    network is empty, processing each receiver after each message.
//!
//! At the end of an iteration every replica has decided and applied every slot. The harness
//! reports `applied`, so `Done`/`Min()` advance and every replica forgets the slots all have
//! applied; [`Cluster::without_checks`] keeps only the last applied entry per disk. Memory
//! therefore stays flat however long criterion runs (checked before measuring).
//!
//! Two groups report the same runs in two units: `slots` (slots decided per second) and
//! `commands` (commands decided per second). Time does not advance inside the loop (no ticks), so
//! no timer fires (retransmission, election, periodic heartbeat): this is the pure replication
//! path. The multi-paxos leader's decision broadcast (a `Heartbeat` carrying `decided_upto`) does
//! go out, and because the harness drains a replica's `Ready` after every single message it goes
//! out once per decided slot: a conservative driver that never coalesces inputs.
//!
//! Run with `cargo bench -p barista-core`.

use std::time::Duration;

use barista_core::testkit::Cluster;
use barista_core::{NodeId, Protocol, RoleKind};
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

/// Slots decided per measured iteration, all in flight at once (the pipelining window).
const SLOTS_PER_ITER: usize = 64;

/// Commands per slot.
const BATCHES: [usize; 3] = [1, 16, 256];

const PROTOCOLS: [Protocol; 2] = [Protocol::MultiPaxos, Protocol::Paxos];

/// A three-replica cluster in steady state, and the replica that proposes.
struct Bench {
    cluster: Cluster,
    proposer: NodeId,
    /// Paxos mode: hand the proposer role to the next replica after every round (see `round`).
    rotate: bool,
    batch: usize,
    /// A 16-byte payload shared by every command: cloning it is a reference-count increment, as
    /// for a command sliced out of a receive buffer in the runtime.
    payload: Bytes,
}

impl Bench {
    fn new(protocol: Protocol, batch: usize) -> Bench {
        let mut cluster = Cluster::with_config(3, protocol, 1, |cfg| {
            cfg.batch_max = batch;
            cfg.window = SLOTS_PER_ITER;
        })
        .without_checks();
        // Elect the leader (multi-paxos) before measuring anything: tick until one exists, then
        // settle so every follower knows it. (Explicit rather than relying on `settle` alone,
        // which once counted an empty cluster with no leader yet as settled.)
        if protocol == Protocol::MultiPaxos {
            for _ in 0..1_000 {
                if cluster.leader().is_some() {
                    break;
                }
                cluster.tick_all();
                cluster.deliver_all(usize::MAX);
            }
        }
        cluster.settle(1_000).expect("the cluster settles before the benchmark");
        let proposer = match protocol {
            Protocol::MultiPaxos => cluster.leader().expect("a leader was elected"),
            Protocol::Paxos => 0,
        };
        let mut bench = Bench {
            cluster,
            proposer,
            rotate: protocol == Protocol::Paxos,
            batch,
            payload: Bytes::from(vec![0x5a; 16]),
        };
        bench.check_steady_state();
        bench
    }

    /// One measured iteration: `SLOTS_PER_ITER` slots of `batch` commands, decided and applied
    /// everywhere, all proposed by one replica.
    fn round(&mut self) {
        let replica = self.cluster.replica_mut(self.proposer);
        for _ in 0..SLOTS_PER_ITER * self.batch {
            replica.propose(self.payload.clone()).expect("below the pending limit");
        }
        self.cluster.process(self.proposer);
        while self.cluster.deliver_hop() > 0 {}
        if self.rotate {
            // Paxos mode has no leader: any replica proposes. Rounds are sequential, so rotating
            // never makes proposers duel. It also spreads `Done`: a replica learns a peer's `Done`
            // only from messages that peer sends it, and with a single fixed proposer the other
            // two never talk to each other, so they would never forget anything and memory would
            // grow for the whole run.
            self.proposer = (self.proposer + 1) % self.cluster.len() as NodeId;
        }
    }

    /// Runs a few rounds and checks that each decides exactly the expected slots on every
    /// replica, and that the retained log does not grow: the benchmark measures what it claims,
    /// and a long run does not slowly fill memory.
    fn check_steady_state(&mut self) {
        let leader_before = self.cluster.leader();
        let start = self.cluster.replica(self.proposer).status().applied;
        let rounds = 20;
        let mut retained = Vec::new();
        for _ in 0..rounds {
            self.round();
            // Slots held in memory and on "disk" (the store the harness applies `Persist` to).
            retained.push(
                (0..self.cluster.len())
                    .flat_map(|n| {
                        let memory = self.cluster.replica(n as NodeId).acceptor_state().slots.len();
                        [memory, self.cluster.disks[n].acceptor.slots.len()]
                    })
                    .max()
                    .unwrap_or(0),
            );
        }
        let expected = start + (rounds * SLOTS_PER_ITER) as u64;
        for node in 0..self.cluster.len() as NodeId {
            let status = self.cluster.replica(node).status();
            assert_eq!(status.applied, expected, "replica {node} applied: {status:?}");
            assert_eq!(status.pending, 0, "replica {node} pending: {status:?}");
            assert!(
                status.floor + 3 * SLOTS_PER_ITER as u64 > status.applied,
                "replica {node} does not forget: {status:?}"
            );
            if leader_before.is_some() {
                assert_ne!(status.role, RoleKind::Candidate, "re-election during the run");
            }
        }
        assert_eq!(self.cluster.leader(), leader_before, "leadership changed");
        let bound = 3 * SLOTS_PER_ITER;
        assert!(retained.iter().all(|n| *n <= bound), "retained log grows: {retained:?}");
        let applied_commands: usize = self.cluster.disks[0].applied.iter().map(|(_, v)| v.commands().len()).sum();
        assert_eq!(applied_commands, self.batch, "last slot is a full batch");
    }
}

fn name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::MultiPaxos => "multi_paxos",
        Protocol::Paxos => "paxos",
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    // 12 benchmarks in all; about 5 s each keeps `cargo bench -p barista-core` near one minute
    // (plus the build) on a 2-core machine.
    group.sample_size(20).warm_up_time(Duration::from_millis(800)).measurement_time(Duration::from_secs(4));
}

/// Slots decided per second, per protocol and batch size.
fn slots(c: &mut Criterion) {
    let mut group = c.benchmark_group("slots");
    configure(&mut group);
    group.throughput(Throughput::Elements(SLOTS_PER_ITER as u64));
    for protocol in PROTOCOLS {
        for batch in BATCHES {
            let mut bench = Bench::new(protocol, batch);
            group.bench_function(format!("{}/batch_{batch}", name(protocol)), |b| {
                b.iter(|| bench.round());
            });
        }
    }
    group.finish();
}

/// Commands decided per second, per protocol and batch size.
fn commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("commands");
    configure(&mut group);
    for protocol in PROTOCOLS {
        for batch in BATCHES {
            let mut bench = Bench::new(protocol, batch);
            group.throughput(Throughput::Elements((SLOTS_PER_ITER * batch) as u64));
            group.bench_function(format!("{}/batch_{batch}", name(protocol)), |b| {
                b.iter(|| bench.round());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, slots, commands);
criterion_main!(benches);
