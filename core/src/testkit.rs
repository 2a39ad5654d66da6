//! An in-process cluster for tests and benchmarks: replicas, their durable state, and a network
//! the caller schedules by hand. It drives each replica exactly as the contract on [`Ready`]
//! says (persist, then send, then apply) and checks cluster-wide safety as it goes.
//!
//! A crash drops the replica together with any input it handled since its last
//! [`Cluster::process`], which is precisely the state it had not persisted yet.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::acceptor::AcceptorState;
use crate::ballot::{NodeId, Slot};
use crate::config::{Config, Protocol};
use crate::message::{Envelope, Message};
use crate::ready::{Persist, Ready};
use crate::replica::{CommandId, ProposeError, Replica};
use crate::value::Value;

/// One replica's durable state: what survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// The acceptor state as persisted (ZooKeeper in production).
    pub acceptor: AcceptorState,
    /// The applied log (PostgreSQL in production); its length is AP.
    pub applied: Vec<(Slot, Value)>,
    /// The acceptor state was deleted and nothing was persisted since: a restart must rejoin
    /// (the runtime tells this by a marker the store's first persist writes).
    pub lost: bool,
}

/// A cluster of replicas wired through a hand-scheduled network.
pub struct Cluster {
    configs: Vec<Config>,
    /// Live replicas; `None` while crashed.
    pub replicas: Vec<Option<Replica>>,
    /// Durable state per replica.
    pub disks: Vec<Disk>,
    /// Messages sent and not yet delivered or dropped.
    pub network: Vec<Envelope>,
    /// Messages sent so far, by kind.
    pub sent: BTreeMap<&'static str, u64>,
    /// Every value seen decided anywhere, per slot (only with checks on).
    pub decided: BTreeMap<Slot, Value>,
    /// Directed links `(from, to)` on which messages are dropped when delivered.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Votes a replica sent before it lost its acceptor state, still in flight (or copied): the
    /// persist-before-send check cannot hold for them, since their record is gone. The rejoin
    /// is what keeps them harmless, and the decided-value checks are what verify it.
    orphans: Vec<Envelope>,
    /// Decided slots handed out and not executed yet, per replica: empty unless its executor
    /// is stalled ([`Cluster::stall_executor`]).
    unexecuted: Vec<VecDeque<(Slot, Value)>>,
    stalled: BTreeSet<NodeId>,
    checks: bool,
    restarts: u64,
}

impl Cluster {
    /// `nodes` replicas with default configuration, seeded from `seed`.
    pub fn new(nodes: u32, protocol: Protocol, seed: u64) -> Cluster {
        Cluster::with_config(nodes, protocol, seed, |_| {})
    }

    /// Like [`Cluster::new`], with `tune` applied to every replica's configuration.
    pub fn with_config(nodes: u32, protocol: Protocol, seed: u64, tune: impl Fn(&mut Config)) -> Cluster {
        let configs: Vec<Config> = (0..nodes)
            .map(|id| {
                let mut c = Config::new(id, nodes, protocol);
                c.seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(u64::from(id));
                tune(&mut c);
                c
            })
            .collect();
        let replicas =
            configs.iter().map(|c| Some(Replica::new(c.clone()).expect("test configuration is valid"))).collect();
        Cluster {
            replicas,
            disks: vec![Disk::default(); nodes as usize],
            configs,
            network: Vec::new(),
            sent: BTreeMap::new(),
            decided: BTreeMap::new(),
            cut: BTreeSet::new(),
            orphans: Vec::new(),
            unexecuted: vec![VecDeque::new(); nodes as usize],
            stalled: BTreeSet::new(),
            checks: true,
            restarts: 0,
        }
    }

    /// Stops recording decided values and applied logs (for benchmarks, whose logs are long).
    pub fn without_checks(mut self) -> Cluster {
        self.checks = false;
        self
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// True for an empty cluster.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The live replica `node`. Panics if it is crashed.
    pub fn replica(&self, node: NodeId) -> &Replica {
        self.replicas[node as usize].as_ref().expect("replica is up")
    }

    /// The live replica `node`, mutably. Panics if it is crashed.
    pub fn replica_mut(&mut self, node: NodeId) -> &mut Replica {
        self.replicas[node as usize].as_mut().expect("replica is up")
    }

    /// True if `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.replicas[node as usize].is_some()
    }

    /// Submits a command at `node` and processes the result.
    pub fn propose(&mut self, node: NodeId, payload: impl Into<Bytes>) -> Result<CommandId, ProposeError> {
        let id = self.replica_mut(node).propose(payload.into())?;
        self.process(node);
        Ok(id)
    }

    /// One tick at `node` (if up), processed.
    pub fn tick(&mut self, node: NodeId) {
        if let Some(r) = &mut self.replicas[node as usize] {
            r.tick();
            self.process(node);
        }
    }

    /// One tick at every live replica.
    pub fn tick_all(&mut self) {
        for node in 0..self.len() as NodeId {
            self.tick(node);
        }
    }

    /// Steps the receiver of `network[index]` with it, without processing the result (so a crash
    /// right after loses what the message changed). Returns false if the index is out of range.
    pub fn deliver_unprocessed(&mut self, index: usize) -> bool {
        if index >= self.network.len() {
            return false;
        }
        let envelope = self.network.remove(index);
        if self.cut.contains(&(envelope.from, envelope.to)) {
            return true;
        }
        if let Some(r) = &mut self.replicas[envelope.to as usize] {
            r.step(envelope);
        }
        true
    }

    /// Drops every message to or from `node` from now on, until [`Cluster::heal`].
    pub fn isolate(&mut self, node: NodeId) {
        for other in 0..self.len() as NodeId {
            if other != node {
                self.cut.insert((node, other));
                self.cut.insert((other, node));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Delivers `network[index]` and processes the receiver.
    pub fn deliver(&mut self, index: usize) {
        if index < self.network.len() {
            let to = self.network[index].to;
            self.deliver_unprocessed(index);
            self.process(to);
        }
    }

    /// Delivers messages in the order sent until none are left or `max` were delivered. Returns
    /// how many were delivered.
    pub fn deliver_all(&mut self, max: usize) -> usize {
        let mut delivered = 0;
        while !self.network.is_empty() && delivered < max {
            self.deliver(0);
            delivered += 1;
        }
        delivered
    }

    /// Delivers only the messages in flight now (one network hop), in order; returns how many.
    pub fn deliver_hop(&mut self) -> usize {
        let hop: Vec<Envelope> = std::mem::take(&mut self.network);
        let count = hop.len();
        for envelope in hop {
            let to = envelope.to;
            if self.cut.contains(&(envelope.from, to)) {
                continue;
            }
            if let Some(r) = &mut self.replicas[to as usize] {
                r.step(envelope);
            }
            self.process(to);
        }
        count
    }

    /// Drives `node` through its `Ready`: persist, then send, then apply.
    pub fn process(&mut self, node: NodeId) {
        let Some(r) = &mut self.replicas[node as usize] else {
            return;
        };
        let Ready { early, persist, messages, decided } = r.take_ready();
        for m in early.iter().chain(&messages) {
            *self.sent.entry(m.message.kind()).or_default() += 1;
        }
        self.network.extend(early);
        let disk = &mut self.disks[node as usize];
        disk.acceptor.apply(&persist);
        disk.lost &= persist == Persist::default();
        if self.checks {
            for (slot, paxo) in persist.slots.iter().filter(|(_, p)| p.decided) {
                let value = paxo.v_a.clone().expect("decided slot has a value");
                let first = self.decided.entry(*slot).or_insert_with(|| value.clone());
                assert_eq!(*first, value, "SAFETY: slot {slot} decided with two values");
            }
        }
        self.network.extend(messages);
        for (slot, value) in decided {
            // A replica hands out a decided slot without writing the mark when its store holds
            // the value already; the oracle sees the decision here.
            if self.checks {
                let first = self.decided.entry(slot).or_insert_with(|| value.clone());
                assert_eq!(*first, value, "SAFETY: slot {slot} decided with two values");
            }
            self.unexecuted[node as usize].push_back((slot, value));
        }
        if !self.stalled.contains(&node) {
            self.execute(node, usize::MAX);
        }
    }

    /// Executes up to `max` of the slots handed out to `node`, in order, and reports them
    /// applied (executed and durable at once: the testkit's database does not crash alone).
    fn execute(&mut self, node: NodeId, max: usize) {
        let (disk, queue) = (&mut self.disks[node as usize], &mut self.unexecuted[node as usize]);
        let mut last = None;
        for (slot, value) in queue.drain(..max.min(queue.len())) {
            let ap = disk.applied.last().map_or(0, |(s, _)| *s);
            assert_eq!(slot, ap + 1, "applied out of order");
            if !self.checks {
                disk.applied.clear();
            }
            disk.applied.push((slot, value));
            last = Some(slot);
        }
        if let (Some(last), Some(r)) = (last, &mut self.replicas[node as usize]) {
            r.applied(last);
        }
    }

    /// Stalls `node`'s executor (a slow database): decided slots queue up unexecuted until
    /// [`Cluster::execute_next`] or until it is resumed (`stalled` false), which executes them.
    pub fn stall_executor(&mut self, node: NodeId, stalled: bool) {
        if stalled {
            self.stalled.insert(node);
        } else {
            self.stalled.remove(&node);
            self.execute(node, usize::MAX);
            self.process(node);
        }
    }

    /// Executes the oldest slot queued at a stalled `node`, and processes the node.
    pub fn execute_next(&mut self, node: NodeId) {
        self.execute(node, 1);
        self.process(node);
    }

    /// Crashes `node`: memory and unprocessed inputs are lost, its disk stays.
    pub fn crash(&mut self, node: NodeId) {
        self.replicas[node as usize] = None;
        self.unexecuted[node as usize].clear();
    }

    /// Crashes `node` in the middle of its `Ready`: the early messages left, the persist never
    /// finished (a leader whose accepts went out while its own vote was being written).
    pub fn crash_while_persisting(&mut self, node: NodeId) {
        if let Some(r) = &mut self.replicas[node as usize] {
            let early = r.take_ready().early;
            self.network.extend(early);
        }
        self.crash(node);
    }

    /// Crashes `node` and deletes its acceptor state (its ZooKeeper nodes), keeping the applied
    /// log (its database): it restarts as a replica that lost its votes.
    pub fn lose_acceptor_state(&mut self, node: NodeId) {
        self.crash(node);
        let disk = &mut self.disks[node as usize];
        (disk.acceptor, disk.lost) = (AcceptorState::default(), true);
        self.orphans.extend(self.network.iter().filter(|m| m.from == node).cloned());
    }

    /// Restarts a crashed `node` from its disk.
    pub fn restart(&mut self, node: NodeId) {
        if self.is_up(node) {
            return;
        }
        self.restarts += 1;
        let mut cfg = self.configs[node as usize].clone();
        cfg.seed = cfg.seed.wrapping_add(self.restarts);
        let disk = &self.disks[node as usize];
        let ap = disk.applied.last().map_or(0, |(s, _)| *s);
        let replica = if disk.lost {
            Replica::rejoin(cfg, ap).expect("rejoin")
        } else {
            Replica::recover(cfg, disk.acceptor.clone(), ap).expect("recover from own disk")
        };
        self.replicas[node as usize] = Some(replica);
        self.process(node);
    }

    /// Ticks every live replica and delivers everything, `rounds` times, stopping early once
    /// nothing is pending, nothing is in flight and all live replicas agree on the decided prefix.
    /// Returns the rounds used, or `None` if it did not settle.
    pub fn settle(&mut self, rounds: usize) -> Option<usize> {
        for round in 0..rounds {
            self.tick_all();
            self.deliver_all(100_000);
            if self.is_settled() {
                return Some(round + 1);
            }
        }
        None
    }

    /// Nothing pending at live replicas, every live replica applied the same prefix, (in
    /// multi-paxos) all follow one live leader, and none is rejoining after lost acceptor state
    /// unless a peer is down (it cannot finish before every peer answers).
    pub fn is_settled(&self) -> bool {
        let live: Vec<&Replica> = self.replicas.iter().flatten().collect();
        let all_up = live.len() == self.len();
        let Some(first) = live.first() else { return true };
        let (applied, leader) = (first.status().applied, first.status().leader);
        let leader_ok = first.config().protocol == Protocol::Paxos
            || leader.is_some_and(|l| self.is_up(l) && self.replica(l).status().role == crate::RoleKind::Leader);
        leader_ok
            && live.iter().all(|r| {
                let s = r.status();
                s.pending == 0
                    && s.applied == applied
                    && s.decided_upto == applied
                    && s.max_slot <= applied
                    && s.leader == leader
                    && !(s.rejoining && all_up)
            })
    }

    /// The first live replica that claims to lead.
    pub fn leader(&self) -> Option<NodeId> {
        self.replicas.iter().flatten().find(|r| r.status().role == crate::RoleKind::Leader).map(|r| r.id())
    }

    /// Everything that must hold at every moment, whatever the network and crashes did, checked
    /// across the whole cluster (the property tests and the fuzz target call it after every
    /// input):
    ///
    /// - every applied log is a prefix of the longest one ([`Cluster::check_applied_prefixes`]);
    /// - every live replica's own [`Replica::invariants`];
    /// - no slot is ever held as decided with two values, by any replica, in memory or on disk
    ///   (recorded in [`Cluster::decided`], which [`Cluster::process`] also checks on persist);
    /// - persist before send: a vote in flight is already on its sender's disk;
    /// - nothing was applied that was not seen decided.
    ///
    /// A no-op for a cluster made [`Cluster::without_checks`].
    pub fn check_safety(&mut self) -> Result<(), String> {
        if !self.checks {
            return Ok(());
        }
        self.check_applied_prefixes()?;
        for replica in self.replicas.iter().flatten() {
            replica.invariants().map_err(|violation| format!("INVARIANT: {violation}"))?;
            for (slot, paxo) in replica.acceptor_state().slots.iter().filter(|(_, p)| p.decided) {
                let value = paxo.v_a.as_ref().ok_or_else(|| format!("slot {slot} decided without a value"))?;
                let first = self.decided.entry(*slot).or_insert_with(|| value.clone());
                if first != value {
                    return Err(format!("replica {} holds slot {slot} decided with a second value", replica.id()));
                }
            }
        }
        self.check_votes_persisted()?;
        for (node, disk) in self.disks.iter().enumerate() {
            for (slot, value) in &disk.applied {
                if self.decided.get(slot) != Some(value) {
                    return Err(format!("replica {node} applied slot {slot} with a value never seen decided"));
                }
            }
        }
        Ok(())
    }

    /// Persist before send: a promise or an accepted vote in flight is already on its sender's
    /// disk, so a crash cannot make the sender contradict it. Disks only ever raise ballots, except
    /// for slots purged below `Min()`, which every replica applied (so at most the sender's AP).
    fn check_votes_persisted(&self) -> Result<(), String> {
        for m in self.network.iter().filter(|m| !self.orphans.contains(m)) {
            let disk = &self.disks[m.from as usize];
            let applied = disk.applied.last().map_or(0, |(slot, _)| *slot);
            let persisted = match &m.message {
                Message::Promise { ballot, onward: true, .. } => disk.acceptor.promise.ballot >= *ballot,
                Message::Promise { ballot, slot, onward: false, .. } => {
                    *slot <= applied || disk.acceptor.promised(*slot) >= *ballot
                }
                Message::Accepted { ballot, slot } => {
                    *slot <= applied || disk.acceptor.slots.get(slot).is_some_and(|p| p.n_a >= *ballot)
                }
                _ => true,
            };
            if !persisted {
                return Err(format!("replica {} sent a vote it has not persisted: {m:?}", m.from));
            }
        }
        Ok(())
    }

    /// Checks that every replica's applied log is a prefix of the longest one.
    pub fn check_applied_prefixes(&self) -> Result<(), String> {
        let longest = self.disks.iter().max_by_key(|d| d.applied.len()).map(|d| &d.applied);
        let Some(longest) = longest else {
            return Ok(());
        };
        for (node, disk) in self.disks.iter().enumerate() {
            if disk.applied.iter().zip(longest.iter()).any(|(a, b)| a != b) {
                return Err(format!("replica {node} applied a different sequence"));
            }
        }
        Ok(())
    }
}
