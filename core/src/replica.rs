//! The replica: one node's whole replication state machine, and its public API.
//!
//! Inputs are fed with [`Replica::step`] (a peer message), [`Replica::tick`] (time),
//! [`Replica::propose`] (a client command) and [`Replica::applied`] (progress of the executor);
//! outputs are drained with [`Replica::take_ready`]. Protocol-specific handling lives in
//! `multi_paxos.rs`, `paxos.rs` and `learner.rs`; this file holds what both protocols share:
//! deciding a slot, tracking `Done`/`Min`, forgetting, and assembling the [`Ready`].

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use thiserror::Error;

use crate::acceptor::{Acceptor, AcceptorState};
use crate::ballot::{Ballot, NodeId, Slot};
use crate::config::{Config, ConfigError, Protocol};
use crate::learner::Learner;
use crate::message::{Envelope, Message};
use crate::multi_paxos::{MultiPaxos, Role};
use crate::paxos::PaxosProposer;
use crate::ready::{Persist, Ready};
use crate::rejoin::Rejoin;
use crate::value::{Command, Value};

/// Identifies a proposed command at the replica that accepted it from a client.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CommandId(pub u64);

/// Why [`Replica::propose`] refused a command.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProposeError {
    /// Too many of this replica's commands are still undecided; try again later.
    #[error("too many undecided commands ({0}); try again later")]
    Backpressure(usize),
    /// The command alone is over [`Config::batch_bytes_max`]: no slot can hold it.
    #[error("command of {bytes} bytes is over the {max}-byte limit of one log slot")]
    TooLarge {
        /// The command's size, as [`Command::size`] counts it.
        bytes: usize,
        /// [`Config::batch_bytes_max`].
        max: usize,
    },
}

/// Why [`Replica::recover`] refused the persisted state.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecoverError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A slot at or below the applied slot is missing or undecided in the middle of the retained
    /// log, so the persisted acceptor state does not match the applied position.
    #[error("persisted log has a gap at slot {slot} (applied through {applied})")]
    Gap {
        /// The missing slot.
        slot: Slot,
        /// The applied slot given to recover.
        applied: Slot,
    },
}

/// A broken internal invariant: a bug, reported with enough context to debug it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("replica {node}: invariant violated: {what}")]
pub struct InvariantViolation {
    /// The replica.
    pub node: NodeId,
    /// What was wrong.
    pub what: String,
}

/// The role of a replica, for status reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RoleKind {
    /// Paxos mode has no leader: every replica proposes.
    Proposer,
    /// Multi-paxos follower.
    Follower,
    /// Multi-paxos replica running phase 1 to become leader.
    Candidate,
    /// Multi-paxos leader.
    Leader,
}

/// A snapshot of a replica's position, for `barista status`, metrics and tests.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Status {
    /// This replica.
    pub id: NodeId,
    /// Its role.
    pub role: RoleKind,
    /// The leader it follows (multi-paxos), if it knows one.
    pub leader: Option<NodeId>,
    /// The highest ballot it promised.
    pub promised: Ballot,
    /// Every slot up to this one is decided here.
    pub decided_upto: Slot,
    /// Applied through this slot (`Done`).
    pub applied: Slot,
    /// Highest slot seen (`Max()`).
    pub max_slot: Slot,
    /// Slots below this one are forgotten (`Min()` as last computed, or the retention bound).
    pub floor: Slot,
    /// Slots held in the acceptor state (and so in the store once persisted): what purging
    /// keeps bounded.
    pub retained: usize,
    /// Commands submitted here and not yet seen decided.
    pub pending: usize,
    /// Every peer answered a catch-up request with a log that starts above this replica's next
    /// slot: it cannot catch up from the log and must be re-seeded.
    pub needs_reseed: bool,
    /// This replica lost its acceptor state and does not vote until it has rejoined (see
    /// [`Replica::recover`]). It stays so while any peer is unreachable.
    pub rejoining: bool,
}

/// A command submitted here, kept until it is seen decided (so it survives a lost forward or a
/// leader change; the executor drops the occasional duplicate by its request sequence).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) command: Command,
    /// Tick it was last forwarded to a leader.
    pub(crate) sent: Option<u64>,
    /// Paxos mode: the slot whose proposal carries it.
    pub(crate) slot: Option<Slot>,
}

/// One replica's replication state machine. See the crate docs for the flow.
#[derive(Debug)]
pub struct Replica {
    pub(crate) cfg: Config,
    pub(crate) rng: SmallRng,
    pub(crate) now: u64,
    pub(crate) acceptor: Acceptor,
    /// Slots below this are forgotten everywhere in this replica.
    pub(crate) floor: Slot,
    pub(crate) decided_upto: Slot,
    /// Decided slots up to here were handed out in a `Ready`.
    pub(crate) emitted_upto: Slot,
    pub(crate) applied: Slot,
    /// The executor's own position, ahead of `applied` (`Done`) by what it has not flushed.
    pub(crate) executed: Slot,
    /// The tick at which `executed` last moved (see [`Config::executor_ahead_max`]).
    pub(crate) executed_at: u64,
    /// `Done` of every replica as last heard (own entry is `applied`).
    pub(crate) done: Vec<Slot>,
    pub(crate) max_slot: Slot,
    /// Highest ballot round seen anywhere, so a new ballot can beat them all.
    pub(crate) max_round: u64,
    /// A `Min()` computed by the leader, which hears from every follower.
    pub(crate) min_known: Slot,
    pub(crate) pending: BTreeMap<u64, Pending>,
    pub(crate) next_command_id: u64,
    pub(crate) mp: MultiPaxos,
    pub(crate) px: PaxosProposer,
    pub(crate) learner: Learner,
    pub(crate) outbox: Vec<Envelope>,
    pub(crate) violation: Option<String>,
    /// Set while rejoining after the acceptor state was lost.
    pub(crate) rejoin: Option<Rejoin>,
    /// After lost acceptor state: the slots below this one were applied here, but their values
    /// are gone with the store. Until every replica has applied them (`Min()` reaches this), this
    /// replica must not lead: a follower that lacks one would ask it in vain, and a leader
    /// re-prepares only from its own decided prefix on (found by the property tests).
    pub(crate) lost_below: Slot,
}

impl Replica {
    /// A replica with empty state: a brand-new cluster member.
    pub fn new(cfg: Config) -> Result<Replica, ConfigError> {
        Replica::recover(cfg, AcceptorState::default(), 0).map_err(|e| match e {
            RecoverError::Config(c) => c,
            RecoverError::Gap { .. } => unreachable!("an empty log has no gap"),
        })
    }

    /// A replica restarted from its persisted acceptor state and the last slot its executor
    /// applied (AP). Decided slots above `applied` are handed out again for applying.
    pub fn recover(cfg: Config, mut state: AcceptorState, applied: Slot) -> Result<Replica, RecoverError> {
        cfg.validate()?;
        // The retained log must hold a value without gaps from its first slot through `applied`,
        // and each is the slot's decided value: a slot is handed out for applying only once the
        // store holds its decided value (the acceptor writes it when it differs from the one
        // accepted, and marks nothing otherwise), and purging only ever removes a prefix.
        let floor = state.slots.keys().next().map_or(applied + 1, |first| (*first).min(applied + 1));
        for slot in floor..=applied {
            match state.slots.get_mut(&slot) {
                Some(paxo) if paxo.v_a.is_some() => paxo.decided = true,
                _ => return Err(RecoverError::Gap { slot, applied }),
            }
        }
        let mut decided_upto = applied;
        while state.slots.get(&(decided_upto + 1)).is_some_and(|p| p.decided) {
            decided_upto += 1;
        }
        let max_round = state
            .slots
            .values()
            .flat_map(|p| [p.n_p.round, p.n_a.round])
            .chain([state.promise.ballot.round])
            .max()
            .unwrap_or(0);
        let max_slot = state.slots.keys().next_back().copied().unwrap_or(0).max(applied);
        let mut done = vec![0; cfg.nodes as usize];
        done[cfg.id as usize] = applied;
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mp = MultiPaxos::new(&cfg, &mut rng);
        let replica = Replica {
            rng,
            now: 0,
            acceptor: Acceptor::new(state),
            floor,
            decided_upto,
            emitted_upto: applied,
            applied,
            executed: applied,
            executed_at: 0,
            done,
            max_slot,
            max_round,
            min_known: 0,
            pending: BTreeMap::new(),
            next_command_id: 0,
            mp,
            px: PaxosProposer::default(),
            learner: Learner::new(decided_upto),
            outbox: Vec::new(),
            violation: None,
            rejoin: None,
            lost_below: 0,
            cfg,
        };
        replica.debug_check();
        Ok(replica)
    }

    /// A replica that ran before and lost its acceptor state (its store was deleted or wiped)
    /// but kept its database, which applied through `applied`. It may have promised ballots and
    /// accepted values it no longer knows of, so it rejoins before it votes again (see
    /// `rejoin.rs`): it learns and applies meanwhile, persists nothing until done, and reports
    /// [`Status::rejoining`]. The caller tells a lost store from a brand-new one (the runtime by
    /// a marker its first persist writes, against its database's own).
    pub fn rejoin(cfg: Config, applied: Slot) -> Result<Replica, ConfigError> {
        let mut replica = Replica::recover(cfg, AcceptorState::default(), applied).map_err(|e| match e {
            RecoverError::Config(c) => c,
            RecoverError::Gap { .. } => unreachable!("an empty log has no gap"),
        })?;
        replica.lost_below = applied + 1;
        replica.rejoin_start();
        replica.debug_check();
        Ok(replica)
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Handles one message from a peer. Messages not addressed to this replica, from unknown
    /// nodes, or about forgotten slots are ignored: the network may deliver anything.
    pub fn step(&mut self, envelope: Envelope) {
        let Envelope { from, to, done, message } = envelope;
        if to != self.cfg.id || from == self.cfg.id || from >= self.cfg.nodes {
            return;
        }
        let peer_done = &mut self.done[from as usize];
        *peer_done = (*peer_done).max(done);
        if let Some(ballot) = message.ballot() {
            self.max_round = self.max_round.max(ballot.round);
        }
        match message {
            // Not a vote while rejoining: the lost incarnation may have voted otherwise.
            Message::Prepare { .. } | Message::Accept { .. } if self.rejoining() => {}
            Message::Prepare { ballot, slot, onward } => self.on_prepare(from, ballot, slot, onward),
            Message::Promise { ballot, slot, onward, entries } => self.on_promise(from, ballot, slot, onward, entries),
            Message::Accept { ballot, slot, value, decided_upto } => {
                self.on_accept(from, ballot, slot, value, decided_upto)
            }
            Message::Accepted { ballot, slot } => self.on_accepted(from, ballot, slot),
            Message::Nack { ballot, promised, slot } => self.on_nack(ballot, promised, slot),
            Message::Decide { slot, value } => {
                self.learner.note_decided_elsewhere(slot);
                self.decide(slot, &value);
            }
            Message::Heartbeat { ballot, decided_upto, min } if self.is_multi_paxos() => {
                self.mp_on_heartbeat(from, ballot, decided_upto, min)
            }
            Message::HeartbeatReply { ballot, max_slot, .. } if self.is_multi_paxos() => {
                self.mp_on_heartbeat_reply(from, ballot, max_slot)
            }
            Message::Forward { commands } if self.is_multi_paxos() => self.mp_on_forward(commands),
            Message::Heartbeat { .. } | Message::HeartbeatReply { .. } | Message::Forward { .. } => {}
            Message::Progress { decided_upto, min } => {
                self.learner.note_decided_elsewhere(decided_upto);
                self.min_known = self.min_known.max(min);
            }
            Message::LearnRequest { slot } => self.on_learn_request(from, slot),
            Message::LearnReply { entries, decided_upto, floor } => {
                self.on_learn_reply(from, entries, decided_upto, floor)
            }
            Message::RejoinQuery => self.on_rejoin_query(from),
            Message::RejoinInfo { promised, max_slot } => self.on_rejoin_info(from, promised, max_slot),
            Message::Fence { ballot } => self.on_fence(from, ballot),
            Message::Fenced { ballot, max_slot } => self.on_fenced(from, ballot, max_slot),
        }
        self.debug_check();
    }

    /// Advances time by one tick: heartbeats, elections, retransmissions, back-off.
    pub fn tick(&mut self) {
        self.now += 1;
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_tick(),
            Protocol::Paxos => self.px_tick(),
        }
        self.learner_tick();
        self.rejoin_tick();
        self.debug_check();
    }

    /// Submits a client command. It is re-sent until this replica sees it decided; it may be
    /// decided more than once (after a lost acknowledgement), so the executor deduplicates.
    pub fn propose(&mut self, payload: Bytes) -> Result<CommandId, ProposeError> {
        if self.pending.len() >= self.cfg.pending_max {
            return Err(ProposeError::Backpressure(self.pending.len()));
        }
        let command = Command { origin: self.cfg.id, id: self.next_command_id, payload };
        if command.size() > self.cfg.batch_bytes_max {
            return Err(ProposeError::TooLarge { bytes: command.size(), max: self.cfg.batch_bytes_max });
        }
        let id = self.next_command_id;
        self.next_command_id += 1;
        self.pending.insert(id, Pending { command: command.clone(), sent: None, slot: None });
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_enqueue_own(command),
            Protocol::Paxos => self.px.unassigned.push_back(id),
        }
        self.debug_check();
        Ok(CommandId(id))
    }

    /// Reports that the executor applied every slot through `slot`. This replica's `Done`.
    pub fn applied(&mut self, slot: Slot) {
        debug_assert!(slot <= self.emitted_upto, "applied {slot} beyond what was handed out ({})", self.emitted_upto);
        let slot = slot.min(self.emitted_upto);
        if slot > self.applied {
            self.applied = slot;
            self.done[self.cfg.id as usize] = slot;
        }
        self.executed(slot);
    }

    /// Reports that the executor executed every slot through `slot`, flushed or not. It paces
    /// a leader's proposals ([`Config::executor_ahead_max`]); only [`Replica::applied`] is `Done`.
    pub fn executed(&mut self, slot: Slot) {
        let slot = slot.min(self.emitted_upto);
        if slot > self.executed {
            self.executed = slot;
            self.executed_at = self.now;
        }
        self.debug_check();
    }

    /// Drains everything to do. Commands queued since the last call are cut into batches here,
    /// which is where batching comes from: whatever arrived while slots were in flight shares
    /// the next slot. See [`Ready`] for the order the driver must follow.
    pub fn take_ready(&mut self) -> Ready {
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_flush(),
            Protocol::Paxos => self.px_flush(),
        }
        self.learner_flush();
        self.forget_below_min();
        let decided = (self.emitted_upto + 1..=self.decided_upto)
            .filter_map(|slot| Some((slot, self.acceptor.slot(slot)?.v_a.clone()?)))
            .collect::<Vec<_>>();
        self.emitted_upto = self.decided_upto;
        let mut persist = self.acceptor.take_persist();
        if self.rejoining() {
            // Nothing is stored until the rejoin completes (then everything is): a crash before
            // that must find the store empty and start the rejoin over.
            persist = Persist::default();
        }
        self.debug_check();
        let (early, messages) =
            std::mem::take(&mut self.outbox).into_iter().partition(|e| e.message.may_precede_persist());
        Ready { early, persist, messages, decided }
    }

    /// Where this replica stands.
    pub fn status(&self) -> Status {
        let role = match (&self.cfg.protocol, &self.mp.role) {
            (Protocol::Paxos, _) => RoleKind::Proposer,
            (Protocol::MultiPaxos, Role::Follower) => RoleKind::Follower,
            (Protocol::MultiPaxos, Role::Candidate(_)) => RoleKind::Candidate,
            (Protocol::MultiPaxos, Role::Leader(_)) => RoleKind::Leader,
        };
        Status {
            id: self.cfg.id,
            role,
            leader: self.mp.leader,
            promised: self.acceptor.state.promise.ballot,
            decided_upto: self.decided_upto,
            applied: self.applied,
            max_slot: self.max_slot,
            floor: self.floor,
            retained: self.acceptor.state.slots.len(),
            pending: self.pending.len(),
            needs_reseed: self.learner.needs_reseed,
            rejoining: self.rejoining(),
        }
    }

    /// The acceptor state as it would be after persisting every `Ready` taken so far.
    pub fn acceptor_state(&self) -> &AcceptorState {
        &self.acceptor.state
    }

    /// The decided value of `slot`, if this replica knows it and has not forgotten it.
    pub fn decided(&self, slot: Slot) -> Option<&Value> {
        self.acceptor.slot(slot).filter(|p| p.decided).and_then(|p| p.v_a.as_ref())
    }

    /// `Min()`: one more than the smallest `Done` this replica has heard of, directly or through
    /// the leader. Every slot below it was applied by every replica.
    pub fn min(&self) -> Slot {
        let heard = self.done.iter().copied().min().unwrap_or(0) + 1;
        heard.max(self.min_known)
    }

    /// Records that `slot` is decided with `value`, and everything that follows from it.
    pub(crate) fn decide(&mut self, slot: Slot, value: &Value) {
        if slot < self.floor {
            return; // applied everywhere and forgotten
        }
        match self.acceptor.decide(slot, value) {
            Ok(true) => {}
            Ok(false) => return,
            Err(conflict) => {
                self.violation.get_or_insert(format!("slot {} decided with two different values", conflict.slot));
                return;
            }
        }
        self.max_slot = self.max_slot.max(slot);
        while self.acceptor.slot(self.decided_upto + 1).is_some_and(|p| p.decided) {
            self.decided_upto += 1;
        }
        for command in value.commands().iter().filter(|c| c.origin == self.cfg.id) {
            if self.pending.get(&command.id).is_some_and(|p| p.command == *command) {
                self.pending.remove(&command.id);
            }
        }
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_on_decided(slot, value),
            Protocol::Paxos => self.px_on_decided(slot),
        }
    }

    /// Where this replica's retained log starts: `Min()`, or, with [`Config::retain_slots`] set,
    /// no more than that many slots below its own applied slot even while a peer lags further.
    /// Never above `applied + 1`: only what this replica applied may be forgotten.
    pub fn purge_floor(&self) -> Slot {
        let retained = match self.cfg.retain_slots {
            0 => 0,
            n => (self.applied + 1).saturating_sub(n),
        };
        self.min().max(retained)
    }

    /// Forgets slots every replica has applied (or that fell out of the retention window), in
    /// memory and (through the next `Ready`) in the store.
    fn forget_below_min(&mut self) {
        let floor = self.purge_floor();
        if floor > self.floor {
            self.acceptor.forget_below(floor);
            self.floor = floor;
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        self.outbox.push(Envelope { from: self.cfg.id, to, done: self.applied, message });
    }

    pub(crate) fn broadcast(&mut self, message: Message) {
        for to in self.peers() {
            self.send(to, message.clone());
        }
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = NodeId> + use<> {
        let me = self.cfg.id;
        (0..self.cfg.nodes).filter(move |n| *n != me)
    }

    fn is_multi_paxos(&self) -> bool {
        self.cfg.protocol == Protocol::MultiPaxos
    }

    pub(crate) fn bit(node: NodeId) -> u64 {
        1 << node
    }

    /// Every peer's bit.
    pub(crate) fn all_peers(&self) -> u64 {
        self.peers().fold(0, |bits, peer| bits | Replica::bit(peer))
    }

    pub(crate) fn is_majority(&self, votes: u64) -> bool {
        votes.count_ones() >= self.cfg.majority()
    }

    /// Routes a prepare to the protocol that owns it.
    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot, onward: bool) {
        match (self.cfg.protocol, onward) {
            (Protocol::MultiPaxos, true) => self.mp_on_prepare(from, ballot, slot),
            (Protocol::Paxos, false) => self.px_on_prepare(from, ballot, slot),
            _ => {} // a peer running the other protocol: misconfigured, ignore
        }
    }

    fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        onward: bool,
        entries: Vec<crate::PromiseEntry>,
    ) {
        match (self.cfg.protocol, onward) {
            (Protocol::MultiPaxos, true) => self.mp_on_promise(from, ballot, entries),
            (Protocol::Paxos, false) => self.px_on_promise(from, ballot, slot, entries),
            _ => {}
        }
    }

    fn on_accept(&mut self, from: NodeId, ballot: Ballot, slot: Slot, value: Value, decided_upto: Slot) {
        if slot < self.floor {
            return;
        }
        self.max_slot = self.max_slot.max(slot);
        match self.acceptor.accept(ballot, slot, &value) {
            Ok(()) => self.send(from, Message::Accepted { ballot, slot }),
            Err(promised) => {
                self.send(from, Message::Nack { ballot, promised, slot });
                return;
            }
        }
        if self.cfg.protocol == Protocol::MultiPaxos {
            self.mp_follow(ballot);
            self.learn_from_leader(ballot, decided_upto);
        }
    }

    fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_on_accepted(from, ballot, slot),
            Protocol::Paxos => self.px_on_accepted(from, ballot, slot),
        }
    }

    fn on_nack(&mut self, ballot: Ballot, promised: Ballot, slot: Slot) {
        match self.cfg.protocol {
            Protocol::MultiPaxos => self.mp_on_nack(ballot, promised),
            Protocol::Paxos => self.px_on_nack(ballot, slot),
        }
    }

    /// Panics on a broken invariant in debug builds (tests, simulation); free in release.
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(violation) = self.invariants() {
            panic!("{violation}");
        }
    }
}
