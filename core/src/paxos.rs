//! Classic Paxos per slot: any replica proposes; two round trips per slot.
//!
//! ```text
//!   pick a free slot --prepare(b)--> majority promise --accept(b, v)--> majority accepted --decide-->
//!        ^                               |                                   |
//!        '--- back off a random number of ticks <--- nack or timeout --------'
//! ```
//!
//! `v` is the highest-ballot value any promiser reported (or the decided one), else this
//! replica's own batch. A proposer whose slot went to another value keeps its commands and
//! proposes them again in a later slot. A hole (a slot below known decided slots that nobody
//! decided, e.g. its proposer crashed) is first asked for, then filled by proposing a no-op,
//! which phase 1 turns into any value that may already have been chosen there.

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::config::MAX_BACKOFF_SHIFT;
use crate::message::{Message, PromiseEntry};
use crate::replica::Replica;
use crate::value::{BatchLimit, Value};

/// Paxos-mode proposer state of one replica.
#[derive(Debug, Default)]
pub(crate) struct PaxosProposer {
    pub(crate) proposals: BTreeMap<Slot, SlotProposal>,
    /// Own pending commands not in any proposal, oldest first (ids of decided ones are skipped).
    pub(crate) unassigned: VecDeque<u64>,
    /// No new proposal before this tick.
    pub(crate) backoff_until: u64,
    /// Ballots lost, halved by each proposal of ours that is chosen: each loss doubles the
    /// proposal timeout and the range of the random back-off (up to [`MAX_BACKOFF_SHIFT`]
    /// doublings). A fixed range let five replicas filling the same hole collide forever
    /// (simulation seeds 225 and 229).
    pub(crate) losses: u32,
    /// While some slot above the decided prefix is known: since when the prefix has been stuck,
    /// and the highest slot known then.
    pub(crate) hole: Option<(u64, Slot)>,
}

#[derive(Debug)]
pub(crate) struct SlotProposal {
    pub(crate) ballot: Ballot,
    /// The ids of own commands this proposal carries.
    pub(crate) own_ids: Vec<u64>,
    /// What to propose if no promiser reports an accepted value.
    pub(crate) own: Value,
    pub(crate) phase: Phase,
    pub(crate) started: u64,
}

#[derive(Debug)]
pub(crate) enum Phase {
    Preparing { promised: u64, best: Option<PromiseEntry> },
    Accepting { value: Value, acks: u64 },
}

fn keep_best(best: &mut Option<PromiseEntry>, entry: Option<PromiseEntry>) {
    let Some(entry) = entry else { return };
    match best {
        Some(kept) if kept.decided || (!entry.decided && kept.ballot >= entry.ballot) => {}
        _ => *best = Some(entry),
    }
}

impl Replica {
    /// The lowest undecided slot that this replica is not proposing in and whose acceptor holds
    /// no accepted value. Phase 1 still finds any value accepted elsewhere (and our commands then
    /// go round again), so the choice is only about liveness: always taking the slot after the
    /// highest one seen left a hole behind every proposal that lost phase 1, faster than no-ops
    /// could fill them under contention (simulation seeds 156, 199, 246, 256).
    fn px_free_slot(&self) -> Slot {
        let mut slot = (self.decided_upto + 1).max(self.floor);
        while self.px.proposals.contains_key(&slot) || self.acceptor.slot(slot).is_some_and(|p| p.v_a.is_some()) {
            slot += 1;
        }
        slot
    }

    /// Starts phase 1 for `own` in `slot`.
    fn px_start(&mut self, slot: Slot, own: Value, own_ids: Vec<u64>) {
        let me = self.cfg.id;
        let ballot = Ballot::after_round(self.max_round.max(self.acceptor.state.promised(slot).round), me);
        self.max_round = ballot.round;
        let best = match self.acceptor.prepare_slot(ballot, slot) {
            Ok(entry) => entry,
            Err(_) => return, // unreachable: the ballot is above every round seen
        };
        for id in &own_ids {
            if let Some(p) = self.pending.get_mut(id) {
                p.slot = Some(slot);
            }
        }
        let phase = Phase::Preparing { promised: Replica::bit(me), best };
        self.px.proposals.insert(slot, SlotProposal { ballot, own_ids, own, phase, started: self.now });
        self.max_slot = self.max_slot.max(slot);
        self.broadcast(Message::Prepare { ballot, slot, onward: false });
        self.px_try_accept_phase(slot);
    }

    pub(crate) fn px_on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        if slot < self.floor {
            return;
        }
        self.max_slot = self.max_slot.max(slot);
        match self.acceptor.prepare_slot(ballot, slot) {
            Ok(entry) => {
                let entries = entry.into_iter().collect();
                self.send(from, Message::Promise { ballot, slot, onward: false, entries });
            }
            Err(promised) => self.send(from, Message::Nack { ballot, promised, slot }),
        }
    }

    pub(crate) fn px_on_promise(&mut self, from: NodeId, ballot: Ballot, slot: Slot, entries: Vec<PromiseEntry>) {
        let Some(p) = self.px.proposals.get_mut(&slot) else {
            return;
        };
        let Phase::Preparing { promised, best } = &mut p.phase else {
            return;
        };
        if p.ballot != ballot {
            return;
        }
        *promised |= Replica::bit(from);
        keep_best(best, entries.into_iter().find(|e| e.slot == slot));
        self.px_try_accept_phase(slot);
    }

    fn px_try_accept_phase(&mut self, slot: Slot) {
        let me = self.cfg.id;
        let Some(p) = self.px.proposals.get(&slot) else {
            return;
        };
        let Phase::Preparing { promised, best } = &p.phase else {
            return;
        };
        if !self.is_majority(*promised) {
            return;
        }
        if let Some(entry) = best.as_ref().filter(|e| e.decided).cloned() {
            self.decide(slot, &entry.value);
            return;
        }
        let value = best.as_ref().map_or_else(|| p.own.clone(), |e| e.value.clone());
        let ballot = p.ballot;
        if self.acceptor.accept(ballot, slot, &value).is_err() {
            self.px_abort(slot, true);
            return;
        }
        if let Some(p) = self.px.proposals.get_mut(&slot) {
            p.phase = Phase::Accepting { value: value.clone(), acks: Replica::bit(me) };
        }
        let decided_upto = self.decided_upto;
        self.broadcast(Message::Accept { ballot, slot, value, decided_upto });
        self.px_check_decided(slot);
    }

    pub(crate) fn px_on_accepted(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        let Some(p) = self.px.proposals.get_mut(&slot) else {
            return;
        };
        let Phase::Accepting { acks, .. } = &mut p.phase else {
            return;
        };
        if p.ballot != ballot {
            return;
        }
        *acks |= Replica::bit(from);
        self.px_check_decided(slot);
    }

    fn px_check_decided(&mut self, slot: Slot) {
        let Some(p) = self.px.proposals.get(&slot) else {
            return;
        };
        let Phase::Accepting { value, acks } = &p.phase else {
            return;
        };
        if !self.is_majority(*acks) {
            return;
        }
        let value = value.clone();
        // Halved, not cleared: one win under steady contention must not bring back the short
        // back-off that caused the duel.
        self.px.losses /= 2;
        self.broadcast(Message::Decide { slot, value: value.clone() });
        self.decide(slot, &value);
    }

    pub(crate) fn px_on_nack(&mut self, ballot: Ballot, slot: Slot) {
        if self.px.proposals.get(&slot).is_some_and(|p| p.ballot == ballot) {
            self.px_abort(slot, true);
        }
    }

    /// Gives up a proposal: its commands wait for a later slot, after a random back-off so that
    /// duelling proposers stop colliding. `lost` counts it as a lost ballot; a window of proposals
    /// that time out together is one loss, not one per proposal, which took the back-off and the
    /// timeout to their maximum at once and slowed recovery after an outage (found by fuzzing).
    fn px_abort(&mut self, slot: Slot, lost: bool) {
        self.px_release(slot);
        let range = self.cfg.backoff_ticks_max << self.px.losses.min(MAX_BACKOFF_SHIFT);
        if lost {
            // Capped: each win halves it, and a long outage must not take many wins to forget.
            self.px.losses = (self.px.losses + 1).min(MAX_BACKOFF_SHIFT + 1);
        }
        let backoff = self.rng.random_range(1..=range);
        self.px.backoff_until = self.px.backoff_until.max(self.now + backoff);
    }

    /// Drops the proposal at `slot`; its own commands that are still pending become unassigned.
    fn px_release(&mut self, slot: Slot) {
        let Some(p) = self.px.proposals.remove(&slot) else {
            return;
        };
        for id in p.own_ids.into_iter().rev() {
            if let Some(pending) = self.pending.get_mut(&id) {
                pending.slot = None;
                self.px.unassigned.push_front(id);
            }
        }
    }

    pub(crate) fn px_on_decided(&mut self, slot: Slot) {
        // Commands of ours that made it are no longer pending; the rest go round again.
        self.px_release(slot);
    }

    pub(crate) fn px_tick(&mut self) {
        let now = self.now;
        // Grows with the losses like the back-off: a store slower than the configured timeout
        // made every proposal time out before its second round trip, forever (simulation seed 0).
        let timeout = self.cfg.proposal_timeout_ticks << self.px.losses.min(MAX_BACKOFF_SHIFT);
        let expired: Vec<Slot> =
            self.px.proposals.iter().filter(|(_, p)| p.started + timeout <= now).map(|(s, _)| *s).collect();
        for (i, slot) in expired.into_iter().enumerate() {
            self.px_abort(slot, i == 0);
        }
        self.px_fill_hole();
        if now % self.cfg.heartbeat_ticks == 0 {
            let (decided_upto, min) = (self.decided_upto, self.min());
            self.broadcast(Message::Progress { decided_upto, min });
        }
    }

    /// Proposes a no-op in the lowest undecided slot once the decided prefix has been stuck for a
    /// while (the learner asks peers first; this covers a slot nobody decided). Replica `i` waits
    /// `2 + i` proposal timeouts: every replica sees the hole at about the same tick, and all of
    /// them proposing at once was a duel every time.
    ///
    /// The wait runs once for all the slots known when the prefix got stuck, not once per slot:
    /// by then every proposal for them has timed out and the learner has asked, so they are filled
    /// one after the other without waiting again. Restarting the wait for each slot (found by the
    /// property tests) stalled the log for `2 * proposal_timeout_ticks` per hole, and holes come
    /// in runs: a crashed proposer's whole window, or every slot duelling proposers abandoned.
    fn px_fill_hole(&mut self) {
        let next = self.decided_upto + 1;
        if next > self.max_slot || self.rejoining() {
            self.px.hole = None;
            return;
        }
        match self.px.hole {
            Some((since, known)) if next <= known => {
                // Replicas take turns, one timeout apart, so they do not all fill the hole at once.
                let wait = (2 + u64::from(self.cfg.id)) * self.cfg.proposal_timeout_ticks;
                if !self.px.proposals.contains_key(&next)
                    && self.now >= since + wait
                    && self.now >= self.px.backoff_until
                {
                    self.px_start(next, Value::Noop, Vec::new());
                }
            }
            _ => self.px.hole = Some((self.now, self.max_slot)),
        }
    }

    /// Called from `take_ready`: start proposals for unassigned commands, window permitting.
    pub(crate) fn px_flush(&mut self) {
        if self.now < self.px.backoff_until || self.rejoining() {
            return;
        }
        while self.px.proposals.len() < self.cfg.window {
            let mut ids = Vec::new();
            let mut commands = Vec::new();
            let mut limit = BatchLimit::new(&self.cfg);
            while let Some(&id) = self.px.unassigned.front() {
                let Some(p) = self.pending.get(&id).filter(|p| p.slot.is_none()) else {
                    self.px.unassigned.pop_front(); // decided or already in a proposal
                    continue;
                };
                if !limit.admit(&p.command) {
                    break; // it leads the next slot
                }
                commands.push(p.command.clone());
                ids.push(id);
                self.px.unassigned.pop_front();
            }
            if commands.is_empty() {
                break;
            }
            let slot = self.px_free_slot();
            self.px_start(slot, Value::batch(commands), ids);
        }
    }
}
