//! Learning decided slots: from the leader's piggybacked decided prefix, from decide messages,
//! and by asking peers for slots this replica is missing (hole filling and catch-up of a replica
//! that was down or cut off).

use crate::ballot::{Ballot, NodeId, Slot};
use crate::config::Protocol;
use crate::message::Message;
use crate::replica::Replica;
use crate::value::Value;

/// What this replica knows it is missing.
#[derive(Debug)]
pub(crate) struct Learner {
    /// Some replica has every slot up to here decided.
    pub(crate) target: Slot,
    /// Tick of the outstanding catch-up request, if any.
    pub(crate) requested: Option<u64>,
    /// Peer to ask next when there is no leader to ask.
    pub(crate) cursor: NodeId,
    /// Every peer's log starts above our next slot: the log cannot bring us back.
    pub(crate) needs_reseed: bool,
    /// Peers whose log starts above our next slot (bits), since our last progress. One such peer
    /// is not enough to give up: it may have purged with a short retention, or lost its store
    /// and rejoined, while another still holds the slots.
    pub(crate) beyond: u64,
    /// Paxos mode: tick of the last poll of a peer's decided prefix.
    pub(crate) polled: u64,
}

impl Learner {
    pub(crate) fn new(decided_upto: Slot) -> Learner {
        Learner { target: decided_upto, requested: None, cursor: 0, needs_reseed: false, beyond: 0, polled: 0 }
    }

    pub(crate) fn note_decided_elsewhere(&mut self, slot: Slot) {
        self.target = self.target.max(slot);
    }
}

impl Replica {
    /// The leader of `ballot` has decided every slot through `decided_upto`. A slot this acceptor
    /// accepted at that same ballot holds the only value that ballot proposed there, so it is the
    /// decided one; any other slot in the range is missing and will be asked for.
    pub(crate) fn learn_from_leader(&mut self, ballot: Ballot, decided_upto: Slot) {
        self.learner.note_decided_elsewhere(decided_upto);
        if decided_upto <= self.decided_upto {
            return;
        }
        let known: Vec<(Slot, Value)> = self
            .acceptor
            .state
            .slots
            .range(self.decided_upto + 1..=decided_upto)
            .filter(|(_, p)| !p.decided && p.n_a == ballot)
            .filter_map(|(slot, p)| Some((*slot, p.v_a.clone()?)))
            .collect();
        for (slot, value) in known {
            self.decide(slot, &value);
        }
    }

    pub(crate) fn on_learn_request(&mut self, from: NodeId, slot: Slot) {
        let start = slot.max(self.floor);
        let entries = self
            .acceptor
            .state
            .slots
            .range(start..)
            .filter(|(_, p)| p.decided)
            .take(self.cfg.learn_batch_max)
            .filter_map(|(slot, p)| Some((*slot, p.v_a.clone()?)))
            .collect();
        let (decided_upto, floor) = (self.decided_upto, self.floor);
        self.send(from, Message::LearnReply { entries, decided_upto, floor });
    }

    pub(crate) fn on_learn_reply(
        &mut self,
        from: NodeId,
        entries: Vec<(Slot, Value)>,
        decided_upto: Slot,
        floor: Slot,
    ) {
        self.learner.note_decided_elsewhere(decided_upto);
        let next = self.decided_upto + 1;
        if floor > next && !entries.iter().any(|(slot, _)| *slot == next) {
            self.learner.beyond |= Replica::bit(from);
            let all = self.all_peers();
            self.learner.needs_reseed = self.learner.beyond & all == all;
            // Ask another peer now rather than after the retry timeout.
            self.learner.requested = None;
        }
        let before = self.decided_upto;
        for (slot, value) in entries {
            self.learner.note_decided_elsewhere(slot);
            self.decide(slot, &value);
        }
        if self.decided_upto > before {
            self.learner.beyond = 0;
            // Progress: ask for the next chunk right away, so catch-up runs at network speed.
            // Without progress the retry timer paces the requests.
            self.learner.requested = None;
            // And ask the same peer, which has it. Moving on round-robin (when no leader is known:
            // always in paxos mode) cost a retry timeout per chunk for every peer that was down
            // or behind (found by the property tests).
            self.learner.cursor = from;
        }
    }

    pub(crate) fn learner_tick(&mut self) {
        if self.learner.requested.is_some_and(|t| t + self.cfg.learn_retry_ticks <= self.now) {
            self.learner.requested = None;
        }
        self.learner_poll();
    }

    /// Paxos mode: every `election_ticks`, ask a peer (round-robin) for the slots after our
    /// decided prefix. Multi-paxos followers hear the leader's decided prefix on every heartbeat,
    /// but paxos mode has no periodic message at all: a replica that missed a decide (lost, or
    /// sent while it was down) would learn of the slot only when some later proposal reached it,
    /// so an idle cluster never converged (found by the property tests). The reply carries the
    /// peer's decided prefix, and `learner_flush` fetches whatever is missing.
    fn learner_poll(&mut self) {
        if self.cfg.protocol != Protocol::Paxos
            || self.cfg.nodes == 1
            || self.learner.requested.is_some()
            || self.now < self.learner.polled + self.cfg.election_ticks
        {
            return;
        }
        self.learner.polled = self.now;
        self.learner.requested = Some(self.now);
        let peer = self.learner_next_peer();
        self.send(peer, Message::LearnRequest { slot: self.decided_upto + 1 });
    }

    /// The next peer in round-robin order, so one dead peer cannot stall learning; a peer whose
    /// log starts above what we need is skipped while another may still have it.
    fn learner_next_peer(&mut self) -> NodeId {
        let n = self.cfg.nodes;
        let mut peer = self.learner.cursor % n;
        for _ in 0..n {
            if peer != self.cfg.id && self.learner.beyond & Replica::bit(peer) == 0 {
                break;
            }
            peer = (peer + 1) % n;
        }
        if peer == self.cfg.id {
            peer = (peer + 1) % n;
        }
        self.learner.cursor = peer + 1;
        peer
    }

    /// Called from `take_ready`: ask a peer for missing decided slots, one request at a time.
    pub(crate) fn learner_flush(&mut self) {
        if self.decided_upto >= self.learner.target || self.learner.requested.is_some() || self.cfg.nodes == 1 {
            return;
        }
        let beyond = self.learner.beyond;
        let peer = match self.mp.leader.filter(|l| *l != self.cfg.id && beyond & Replica::bit(*l) == 0) {
            Some(leader) => leader,
            None => self.learner_next_peer(),
        };
        self.learner.requested = Some(self.now);
        self.send(peer, Message::LearnRequest { slot: self.decided_upto + 1 });
    }
}
