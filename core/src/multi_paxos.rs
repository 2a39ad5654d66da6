//! Multi-Paxos: one leader, phase 1 once per term, one round trip per slot.
//!
//! ```text
//!   Follower --(no leader heard for election timeout)--> Candidate
//!   Candidate --(promises from a majority)--> Leader
//!   Candidate --(timeout)--> Candidate with a higher ballot
//!   Leader --(nack with a higher ballot)--> Candidate (re-elects itself above it)
//!   Leader --(no majority heard for election timeout)--> Follower
//!   any --(accept/heartbeat at or above its promise from another node)--> Follower
//! ```
//!
//! A candidate prepares every slot from its first undecided one onwards ("prepare ahead of
//! time"). On winning it re-proposes, at its own ballot, the highest-ballot value reported for
//! each slot (or the decided value, or a no-op for a hole), and only then new commands.
//!
//! A replica that heard a live leader within the election timeout refuses to promise to anyone
//! else, so a node that was cut off and comes back with a high ballot cannot depose a leader the
//! majority still hears. A leader that receives a nack (some acceptor promised higher) re-elects
//! itself above that ballot; its followers help because it is the leader they hear.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::RngExt;
use rand::rngs::SmallRng;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::config::Config;
use crate::config::MAX_BACKOFF_SHIFT;
use crate::message::{Message, PromiseEntry};
use crate::replica::Replica;
use crate::value::{BatchLimit, Command, Value};

/// Multi-Paxos state of one replica.
#[derive(Debug)]
pub(crate) struct MultiPaxos {
    pub(crate) role: Role,
    /// The leader this replica follows (itself when leading).
    pub(crate) leader: Option<NodeId>,
    /// Tick at which the leader was last heard.
    pub(crate) last_heard: u64,
    /// Tick at which a follower or candidate (re)starts an election.
    pub(crate) election_deadline: u64,
}

#[derive(Debug)]
pub(crate) enum Role {
    Follower,
    Candidate(Candidacy),
    Leader(Leadership),
}

/// Phase 1 in progress.
#[derive(Debug)]
pub(crate) struct Candidacy {
    pub(crate) ballot: Ballot,
    /// First slot prepared.
    pub(crate) from: Slot,
    /// Bitmap of replicas that promised.
    pub(crate) promised: u64,
    /// Tick the prepare was last sent to the replicas that have not promised.
    pub(crate) sent: u64,
    /// Per slot, the report that must win: a decided value, else the highest-ballot one.
    pub(crate) entries: BTreeMap<Slot, PromiseEntry>,
    /// Commands a deposed leader still had queued; proposed if it wins again.
    pub(crate) queue: VecDeque<Command>,
}

/// A won term.
#[derive(Debug)]
pub(crate) struct Leadership {
    pub(crate) ballot: Ballot,
    /// Next slot to propose a new batch in.
    pub(crate) next_slot: Slot,
    /// Proposed, not yet decided.
    pub(crate) in_flight: BTreeMap<Slot, InFlight>,
    /// Commands waiting for a slot.
    pub(crate) queue: VecDeque<Command>,
    /// Every command queued or in flight in this term. An origin re-forwards its command until
    /// it learns the command's slot, and a slow round trip made every re-forward a new copy in
    /// the log: batches grew to a hundred duplicates, each retransmitted, and a lossy link went
    /// into congestion collapse that outlasted the faults (simulation seeds 19 and 101).
    pub(crate) holding: BTreeSet<Command>,
    /// Tick each peer last answered.
    pub(crate) last_ack: Vec<u64>,
    pub(crate) last_heartbeat: u64,
    /// The decided prefix the followers were last told about.
    pub(crate) decided_sent: Slot,
}

#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) value: Value,
    pub(crate) acks: u64,
    pub(crate) sent: u64,
    /// Retransmissions so far: each one waits twice as long as the one before (up to
    /// [`MAX_BACKOFF_SHIFT`] doublings), so a slow peer is not sent copies faster than it can
    /// answer them.
    pub(crate) retries: u32,
}

impl MultiPaxos {
    pub(crate) fn new(cfg: &Config, rng: &mut SmallRng) -> MultiPaxos {
        MultiPaxos { role: Role::Follower, leader: None, last_heard: 0, election_deadline: election_timeout(cfg, rng) }
    }
}

/// A randomized election timeout in `[election_ticks, 2 * election_ticks)`, so that replicas that
/// lost their leader at the same moment rarely campaign at the same moment.
fn election_timeout(cfg: &Config, rng: &mut SmallRng) -> u64 {
    cfg.election_ticks + rng.random_range(0..cfg.election_ticks)
}

/// Keeps, per slot, the report a new leader must follow.
fn merge(best: &mut BTreeMap<Slot, PromiseEntry>, entries: Vec<PromiseEntry>) {
    for entry in entries {
        match best.get(&entry.slot) {
            Some(kept) if kept.decided || (!entry.decided && kept.ballot >= entry.ballot) => {}
            _ => {
                best.insert(entry.slot, entry);
            }
        }
    }
}

impl Replica {
    fn leadership(&mut self) -> Option<&mut Leadership> {
        match &mut self.mp.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    fn reset_election_timer(&mut self) {
        self.mp.election_deadline = self.now + election_timeout(&self.cfg, &mut self.rng);
    }

    /// A client command submitted here: a leader queues it, a follower forwards it on flush.
    pub(crate) fn mp_enqueue_own(&mut self, command: Command) {
        let now = self.now;
        if let Some(l) = self.leadership() {
            let id = command.id;
            if l.holding.insert(command.clone()) {
                l.queue.push_back(command);
            }
            if let Some(p) = self.pending.get_mut(&id) {
                p.sent = Some(now);
            }
        }
    }

    /// Starts (or restarts) an election with a ballot above every ballot seen.
    pub(crate) fn mp_campaign(&mut self) {
        let me = self.cfg.id;
        let ballot = Ballot::after_round(self.max_round, me);
        self.max_round = ballot.round;
        let from = self.decided_upto + 1;
        let queue = match std::mem::replace(&mut self.mp.role, Role::Follower) {
            Role::Leader(l) => l.queue,
            Role::Candidate(c) => c.queue,
            Role::Follower => VecDeque::new(),
        };
        self.mp.leader = None;
        self.reset_election_timer();
        let own = match self.acceptor.prepare_onward(ballot, from) {
            Ok(entries) => entries,
            // Unreachable while max_round tracks every ballot this acceptor promised; staying a
            // follower is the safe answer if it ever is not.
            Err(_) => return,
        };
        let mut entries = BTreeMap::new();
        merge(&mut entries, own);
        let (promised, sent) = (Replica::bit(me), self.now);
        self.mp.role = Role::Candidate(Candidacy { ballot, from, promised, sent, entries, queue });
        self.broadcast(Message::Prepare { ballot, slot: from, onward: true });
        self.mp_try_win();
    }

    /// True if this replica must not help `challenger` because it hears a live leader.
    fn hears_live_leader(&self, challenger: NodeId) -> bool {
        match &self.mp.role {
            Role::Leader(_) => true,
            Role::Follower | Role::Candidate(_) => {
                self.mp.leader.is_some_and(|l| l != challenger)
                    && self.now < self.mp.last_heard + self.cfg.election_ticks
            }
        }
    }

    pub(crate) fn mp_on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        if self.hears_live_leader(from) {
            return; // no reply: the challenger times out and the leader is left alone
        }
        if slot < self.floor {
            // The candidate lacks slots this acceptor forgot (only possible with `retain_slots`:
            // below `Min` every candidate has decided everything). A promise would hide the values
            // this acceptor accepted there, and the candidate could propose other ones into
            // decided slots; so no promise: a replica that fell behind the purge point never leads.
            // It is told where this log starts instead, as a learner would be: with no leader to
            // hear from, nothing else would tell it that only a re-seed can bring it back.
            let (decided_upto, floor) = (self.decided_upto, self.floor);
            self.send(from, Message::LearnReply { entries: Vec::new(), decided_upto, floor });
            return;
        }
        match self.acceptor.prepare_onward(ballot, slot) {
            Ok(entries) => {
                if !matches!(self.mp.role, Role::Follower) {
                    self.mp_step_down();
                }
                // Granting a promise counts as hearing from a (future) leader: do not campaign
                // against the candidate just helped.
                self.reset_election_timer();
                self.send(from, Message::Promise { ballot, slot, onward: true, entries });
            }
            Err(promised) => self.send(from, Message::Nack { ballot, promised, slot }),
        }
    }

    pub(crate) fn mp_on_promise(&mut self, from: NodeId, ballot: Ballot, entries: Vec<PromiseEntry>) {
        let Role::Candidate(c) = &mut self.mp.role else {
            return;
        };
        if c.ballot != ballot {
            return;
        }
        c.promised |= Replica::bit(from);
        merge(&mut c.entries, entries);
        self.mp_try_win();
    }

    fn mp_try_win(&mut self) {
        let Role::Candidate(c) = &self.mp.role else {
            return;
        };
        if !self.is_majority(c.promised) {
            return;
        }
        let Role::Candidate(c) = std::mem::replace(&mut self.mp.role, Role::Follower) else {
            return;
        };
        self.mp_become_leader(c);
    }

    fn mp_become_leader(&mut self, c: Candidacy) {
        let me = self.cfg.id;
        // Decided reports are facts: learn them first so they are not re-proposed.
        for entry in c.entries.values().filter(|e| e.decided) {
            self.learner.note_decided_elsewhere(entry.slot);
            self.decide(entry.slot, &entry.value);
        }
        let last_reported = c.entries.keys().next_back().copied().unwrap_or(0);
        // Our own `Max()` counts too: it may come from an accept we refused, which no promiser
        // reports, and a slot we saw but nobody fills would keep us from agreeing on `Max()`.
        let next_slot = last_reported.max(self.decided_upto).max(self.max_slot).max(c.from - 1) + 1;
        let mut queue = c.queue;
        let queued: BTreeSet<u64> = queue.iter().filter(|cmd| cmd.origin == me).map(|cmd| cmd.id).collect();
        for p in self.pending.values_mut().filter(|p| !queued.contains(&p.command.id)) {
            queue.push_back(p.command.clone());
            p.sent = Some(self.now);
        }
        let holding = queue.iter().cloned().collect();
        self.mp.role = Role::Leader(Leadership {
            ballot: c.ballot,
            next_slot,
            in_flight: BTreeMap::new(),
            queue,
            holding,
            last_ack: vec![self.now; self.cfg.nodes as usize],
            last_heartbeat: self.now,
            decided_sent: 0,
        });
        self.mp.leader = Some(me);
        self.mp.last_heard = self.now;
        // Every slot this term inherits gets a value at the new ballot: the reported one (the
        // highest-ballot accepted value is the only one that may have been chosen) or a no-op.
        // Not below the floor: a candidate keeps learning and applying while it campaigns, so
        // `Min()` may have passed `c.from`, and a forgotten slot reads as undecided here (found by
        // the property tests: the leader re-accepted a no-op into a slot every replica had
        // applied and forgotten).
        for slot in c.from.max(self.floor)..next_slot {
            if self.decided(slot).is_some() {
                continue;
            }
            let value = c.entries.get(&slot).map_or(Value::Noop, |e| e.value.clone());
            #[cfg(madsim)]
            let value = if crate::planted::is_planted(crate::planted::Bug::LeaderOverridesAccepted) {
                Value::Noop
            } else {
                value
            };
            self.mp_propose_at(slot, value);
        }
    }

    /// Proposes `value` in `slot` at the leader's ballot: self-accept, then accept to all peers.
    fn mp_propose_at(&mut self, slot: Slot, value: Value) {
        let (me, now, decided_upto) = (self.cfg.id, self.now, self.decided_upto);
        let Some(ballot) = self.leadership().map(|l| l.ballot) else {
            return;
        };
        if self.acceptor.accept(ballot, slot, &value).is_err() {
            // This acceptor promised a higher ballot to someone: that leader's term has begun.
            self.mp_step_down();
            return;
        }
        self.max_slot = self.max_slot.max(slot);
        if let Some(l) = self.leadership() {
            l.holding.extend(value.commands().iter().cloned());
            l.in_flight.insert(slot, InFlight { value: value.clone(), acks: Replica::bit(me), sent: now, retries: 0 });
            l.decided_sent = l.decided_sent.max(decided_upto);
        }
        self.broadcast(Message::Accept { ballot, slot, value, decided_upto });
        self.mp_check_decided(slot);
    }

    fn mp_check_decided(&mut self, slot: Slot) {
        let Some(l) = self.leadership() else { return };
        let Some(acks) = l.in_flight.get(&slot).map(|f| f.acks) else {
            return;
        };
        if !self.is_majority(acks) {
            return;
        }
        let Some(flight) = self.leadership().and_then(|l| l.in_flight.remove(&slot)) else {
            return;
        };
        self.decide(slot, &flight.value);
    }

    pub(crate) fn mp_on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        let now = self.now;
        let Some(l) = self.leadership() else { return };
        if l.ballot != ballot {
            return;
        }
        l.last_ack[from as usize] = now;
        if let Some(flight) = l.in_flight.get_mut(&slot) {
            flight.acks |= Replica::bit(from);
            self.mp_check_decided(slot);
        }
    }

    pub(crate) fn mp_on_nack(&mut self, ballot: Ballot, promised: Ballot) {
        let Some(l) = self.leadership() else { return };
        if l.ballot == ballot && promised > ballot {
            // Some acceptor promised above our term (typically a replica that was cut off and
            // campaigned). Re-elect ourselves above it; our followers will help.
            self.mp_campaign();
        }
    }

    /// The ballot this replica leads or campaigns with, if any.
    pub(crate) fn mp_own_ballot(&self) -> Option<Ballot> {
        match &self.mp.role {
            Role::Leader(l) => Some(l.ballot),
            Role::Candidate(c) => Some(c.ballot),
            Role::Follower => None,
        }
    }

    /// An accept or heartbeat from `ballot`'s leader that this acceptor did not refuse.
    pub(crate) fn mp_follow(&mut self, ballot: Ballot) {
        let own_ballot = self.mp_own_ballot();
        if own_ballot.is_some_and(|own| own >= ballot) {
            return; // a stale leader's message; it will be nacked on its next accept
        }
        if own_ballot.is_some() {
            self.mp_step_down();
        }
        let leader = ballot.node;
        let new_leader = self.mp.leader != Some(leader);
        self.mp.leader = Some(leader);
        self.mp.last_heard = self.now;
        self.reset_election_timer();
        if new_leader {
            // Commands a previous leader held may be lost with it: offer them all again.
            for p in self.pending.values_mut() {
                p.sent = None;
            }
        }
    }

    pub(crate) fn mp_on_heartbeat(&mut self, from: NodeId, ballot: Ballot, decided_upto: Slot, min: Slot) {
        let promised = self.acceptor.state.promise.ballot;
        if ballot < promised {
            self.send(from, Message::Nack { ballot, promised, slot: 0 });
            return;
        }
        self.mp_follow(ballot);
        // Every replica had applied below the leader's Min when it computed it.
        self.min_known = self.min_known.max(min);
        self.learn_from_leader(ballot, decided_upto);
        let (decided_upto, max_slot) = (self.decided_upto, self.max_slot);
        self.send(from, Message::HeartbeatReply { ballot, decided_upto, max_slot });
    }

    pub(crate) fn mp_on_heartbeat_reply(&mut self, from: NodeId, ballot: Ballot, max_slot: Slot) {
        let now = self.now;
        let Some(l) = self.leadership().filter(|l| l.ballot == ballot) else { return };
        l.last_ack[from as usize] = now;
        // The follower holds a slot this term never proposed in: an earlier leader's accept that
        // no replica of our promise majority reported. Nobody would ever decide it, so the
        // follower's log would stay undecided past our prefix for as long as no new command
        // reaches that slot (found by the property tests: an idle cluster never settled). No
        // promiser reported any value at or above `next_slot`, so no value can have been chosen
        // there below our ballot and a no-op is safe; its accept overwrites the stale value.
        self.mp_fill_through(max_slot);
    }

    /// Proposes a no-op in every slot from `next_slot` through `max_slot` (as leader). Safe: no
    /// promiser reported a value at or above `next_slot`, so none can have been chosen there
    /// below our ballot.
    fn mp_fill_through(&mut self, max_slot: Slot) {
        let Some(l) = self.leadership() else { return };
        let first = l.next_slot;
        if max_slot >= first {
            l.next_slot = max_slot + 1;
            for slot in first..=max_slot {
                self.mp_propose_at(slot, Value::Noop);
            }
        }
    }

    pub(crate) fn mp_on_forward(&mut self, commands: Vec<Command>) {
        // Not the leader: drop them. Their origins re-send to whoever leads next.
        if let Some(l) = self.leadership() {
            for command in commands {
                if l.holding.insert(command.clone()) {
                    l.queue.push_back(command);
                }
            }
        }
    }

    pub(crate) fn mp_step_down(&mut self) {
        self.mp.role = Role::Follower;
        self.mp.leader = None;
        self.reset_election_timer();
    }

    pub(crate) fn mp_on_decided(&mut self, slot: Slot, value: &Value) {
        if let Some(l) = self.leadership() {
            // Normally the same value; the in-flight one can differ only if another leader's
            // decision reached us first, and then its commands are no longer held either.
            let proposed = l.in_flight.remove(&slot).map(|f| f.value);
            for command in value.commands().iter().chain(proposed.iter().flat_map(Value::commands)) {
                l.holding.remove(command);
            }
        }
    }

    pub(crate) fn mp_tick(&mut self) {
        let now = self.now;
        let (retransmit_ticks, heartbeat_ticks, election_ticks) =
            (self.cfg.retransmit_ticks, self.cfg.heartbeat_ticks, self.cfg.election_ticks);
        let majority = self.cfg.majority();
        let me = self.cfg.id as usize;
        let Some(l) = self.leadership() else {
            self.mp_retry_prepare();
            if now >= self.mp.election_deadline && !self.rejoining() && self.min() >= self.lost_below {
                self.mp_campaign();
            }
            self.mp_retry_forwards();
            return;
        };
        let ballot = l.ballot;
        let retransmit = l
            .in_flight
            .iter_mut()
            .filter(|(_, f)| f.sent + (retransmit_ticks << f.retries.min(MAX_BACKOFF_SHIFT)) <= now)
            .map(|(slot, f)| {
                f.sent = now;
                f.retries += 1;
                (*slot, f.value.clone(), f.acks)
            })
            .collect::<Vec<_>>();
        let heartbeat_due = now >= l.last_heartbeat + heartbeat_ticks;
        let heard =
            1 + l.last_ack.iter().enumerate().filter(|(n, t)| *n != me && **t + election_ticks > now).count() as u32;
        if heard < majority {
            // Cut off from a majority: stop claiming to lead so clients go elsewhere.
            self.mp_step_down();
            return;
        }
        let decided_upto = self.decided_upto;
        for (slot, value, acks) in retransmit {
            for peer in self.peers().filter(|p| acks & Replica::bit(*p) == 0).collect::<Vec<_>>() {
                self.send(peer, Message::Accept { ballot, slot, value: value.clone(), decided_upto });
            }
        }
        if heartbeat_due {
            if let Some(l) = self.leadership() {
                l.last_heartbeat = now;
                l.decided_sent = decided_upto;
            }
            let min = self.min();
            self.broadcast(Message::Heartbeat { ballot, decided_upto, min });
        }
    }

    /// A candidate asks the replicas that have not promised again, every `retransmit_ticks`.
    /// A follower ignores a prepare while it still hears the old leader (its lease); after the
    /// leader died, the first candidate's prepare often reaches the other follower just before
    /// that lease runs out. Waiting for a whole new election timeout then (and for a second
    /// campaign, when the other follower's own, lower, ballot met this candidate's promise in the
    /// meantime) made one failover in twenty take about twice as long as the rest.
    fn mp_retry_prepare(&mut self) {
        let now = self.now;
        let Role::Candidate(c) = &mut self.mp.role else { return };
        if c.sent + self.cfg.retransmit_ticks > now {
            return;
        }
        c.sent = now;
        let (ballot, from, promised) = (c.ballot, c.from, c.promised);
        for peer in self.peers().filter(|p| promised & Replica::bit(*p) == 0).collect::<Vec<_>>() {
            self.send(peer, Message::Prepare { ballot, slot: from, onward: true });
        }
    }

    /// Re-sends commands a leader has not decided in time (or that never left: no leader known).
    fn mp_retry_forwards(&mut self) {
        let now = self.now;
        let retry = self.cfg.forward_retry_ticks;
        for p in self.pending.values_mut() {
            if p.sent.is_some_and(|sent| sent + retry <= now) {
                p.sent = None;
            }
        }
    }

    /// Called from `take_ready`: cut queued commands into slots, tell followers about new
    /// decisions, forward commands to the leader.
    pub(crate) fn mp_flush(&mut self) {
        match &self.mp.role {
            Role::Leader(_) => self.mp_propose_queued(),
            Role::Follower | Role::Candidate(_) => self.mp_forward_unsent(),
        }
    }

    fn mp_propose_queued(&mut self) {
        // A slot above our term's first that we saw ourselves after the term began (an earlier
        // leader's accept, refused below our ballot) is filled as a follower's report of it
        // would be: an idle leader would otherwise never decide it, and its log would stay
        // undecided past the prefix (found by a 60,000-case soak of the property tests).
        self.mp_fill_through(self.max_slot);
        let window = self.cfg.window;
        loop {
            let mut limit = BatchLimit::new(&self.cfg);
            let held = self.executor_behind();
            let Some(l) = self.leadership() else { return };
            if l.queue.is_empty() || l.in_flight.len() >= window || held {
                break;
            }
            let take = l.queue.iter().take_while(|c| limit.admit(c)).count();
            let batch: Vec<Command> = l.queue.drain(..take).collect();
            let slot = l.next_slot;
            l.next_slot += 1;
            self.mp_propose_at(slot, Value::batch(batch));
        }
        let decided_upto = self.decided_upto;
        let now = self.now;
        let Some(l) = self.leadership() else { return };
        if l.decided_sent < decided_upto {
            // The decision broadcast: followers that accepted these slots at our ballot now know
            // their values; the others will ask.
            l.decided_sent = decided_upto;
            l.last_heartbeat = now;
            let ballot = l.ballot;
            let min = self.min();
            self.broadcast(Message::Heartbeat { ballot, decided_upto, min });
        }
    }

    /// True if the leader should hold its queued commands for a later slot: this replica's
    /// executor has `executor_ahead_max` of the proposed slots still to execute, and it is
    /// moving (it executed one within the last tick), so those commands would wait for it
    /// anyway and can share one slot instead of taking one each.
    fn executor_behind(&self) -> bool {
        let ahead_max = self.cfg.executor_ahead_max;
        let Role::Leader(l) = &self.mp.role else { return false };
        let proposed = l.next_slot.saturating_sub(1);
        ahead_max > 0 && proposed.saturating_sub(self.executed) >= ahead_max && self.now <= self.executed_at + 1
    }

    fn mp_forward_unsent(&mut self) {
        let Some(leader) = self.mp.leader else { return };
        let now = self.now;
        let commands: Vec<Command> = self
            .pending
            .values_mut()
            .filter(|p| p.sent.is_none())
            .map(|p| {
                p.sent = Some(now);
                p.command.clone()
            })
            .collect();
        if !commands.is_empty() {
            self.send(leader, Message::Forward { commands });
        }
    }
}
