//! Rejoining after this replica's acceptor state was lost (its ZooKeeper nodes deleted, its
//! store wiped) while its database still says it applied slots.
//!
//! An acceptor that forgot its votes is dangerous: it may have promised a ballot, or accepted a
//! value that was chosen with its vote, and a proposer that now asks it would hear "nothing", pick
//! another value and decide a slot twice. So the replica does not vote again until nothing it
//! may have voted for can matter:
//!
//! 1. **Query.** Ask every peer for the highest ballot it promised. A ballot in which the lost
//!    incarnation voted completed phase 1 with a majority, so some other replica promised it:
//!    with every peer answering, `highest` is at or above all of them.
//! 2. **Fence.** Every peer raises its onward promise to the fence ballot: `highest`, or just
//!    above it when `highest` was this replica's own (its lost incarnation may still have
//!    accepts of that ballot in flight). From then on no accept of an older ballot lands
//!    anywhere, so no vote of the lost incarnation can complete a new majority. Each peer answers
//!    with its `Max()`, after persisting the fence; every slot the lost incarnation voted in that
//!    was chosen was accepted by some peer, so it is at or below the highest `Max()` reported.
//! 3. **Learn.** Without voting, learn every slot up to that `Max()` as decided. Then persist
//!    the fence as this replica's own promise and vote again, above every ballot of the past.
//!
//! Nothing is persisted until the end, so a crash in between leaves the store empty and the
//! rejoin starts over. Every peer must answer: two replicas that lost their state at once cannot
//! rejoin by themselves, since the votes of a majority may be gone; they wait (and say so in
//! [`crate::Status::rejoining`]) rather than risk deciding a slot twice.

use crate::ballot::{Ballot, NodeId, Slot};
use crate::message::Message;
use crate::replica::Replica;

/// Where a rejoin stands.
#[derive(Debug)]
pub(crate) struct Rejoin {
    phase: Phase,
    /// Tick the current phase's requests were last sent, for retransmission.
    sent: u64,
}

#[derive(Debug)]
enum Phase {
    Query { answered: u64, highest: Ballot },
    Fence { ballot: Ballot, answered: u64, max_slot: Slot },
    Learn { ballot: Ballot, upto: Slot },
}

impl Replica {
    /// Starts rejoining: nothing is voted until it completes.
    pub(crate) fn rejoin_start(&mut self) {
        self.rejoin = Some(Rejoin { phase: Phase::Query { answered: 0, highest: Ballot::ZERO }, sent: self.now });
        self.broadcast(Message::RejoinQuery);
    }

    /// True while this replica must not vote (promise, accept, campaign or propose).
    pub(crate) fn rejoining(&self) -> bool {
        self.rejoin.is_some()
    }

    /// A peer asks what this replica promised. A replica that is itself rejoining knows nothing
    /// worth reporting, so it stays silent.
    pub(crate) fn on_rejoin_query(&mut self, from: NodeId) {
        if self.rejoining() {
            return;
        }
        let (promised, max_slot) = (self.acceptor.highest_promised(), self.max_slot);
        self.send(from, Message::RejoinInfo { promised, max_slot });
    }

    pub(crate) fn on_rejoin_info(&mut self, from: NodeId, promised: Ballot, max_slot: Slot) {
        let all = self.all_peers();
        let me = self.cfg.id;
        let Some(Rejoin { phase: Phase::Query { answered, highest }, .. }) = &mut self.rejoin else {
            return;
        };
        *answered |= Replica::bit(from);
        *highest = (*highest).max(promised);
        self.max_slot = self.max_slot.max(max_slot);
        if *answered != all {
            return;
        }
        let ballot =
            if highest.node == me || highest.is_zero() { Ballot::after_round(highest.round, me) } else { *highest };
        self.max_round = self.max_round.max(ballot.round);
        self.rejoin = Some(Rejoin { phase: Phase::Fence { ballot, answered: 0, max_slot: 0 }, sent: self.now });
        self.broadcast(Message::Fence { ballot });
    }

    /// A rejoining peer fences this acceptor. The answer leaves after the raised promise is
    /// persisted (the `Ready` order), so the peer may count on it.
    pub(crate) fn on_fence(&mut self, from: NodeId, ballot: Ballot) {
        if self.rejoining() {
            return;
        }
        self.acceptor.fence(ballot, self.floor);
        let deposed = self.mp_own_ballot().is_some_and(|own| own < ballot);
        if deposed {
            // Our own acceptor no longer accepts our ballot: re-elect above the fence now rather
            // than after an election timeout.
            self.mp_campaign();
        }
        self.send(from, Message::Fenced { ballot, max_slot: self.max_slot });
    }

    pub(crate) fn on_fenced(&mut self, from: NodeId, fenced: Ballot, peer_max_slot: Slot) {
        let all = self.all_peers();
        let Some(Rejoin { phase: Phase::Fence { ballot, answered, max_slot }, .. }) = &mut self.rejoin else {
            return;
        };
        if *ballot != fenced {
            return;
        }
        *answered |= Replica::bit(from);
        *max_slot = (*max_slot).max(peer_max_slot);
        if *answered != all {
            return;
        }
        let (ballot, upto) = (*ballot, (*max_slot).max(self.max_slot));
        self.max_slot = upto;
        self.rejoin = Some(Rejoin { phase: Phase::Learn { ballot, upto }, sent: self.now });
        self.rejoin_check_learned();
    }

    /// Finishes the rejoin once it has learned enough, else resends the current phase's
    /// requests to the peers that have not answered.
    pub(crate) fn rejoin_tick(&mut self) {
        self.rejoin_check_learned();
        let (now, all, retransmit) = (self.now, self.all_peers(), self.cfg.retransmit_ticks);
        let Some(rejoin) = &mut self.rejoin else { return };
        let (message, answered) = match rejoin.phase {
            Phase::Query { answered, .. } => (Message::RejoinQuery, answered),
            Phase::Fence { ballot, answered, .. } => (Message::Fence { ballot }, answered),
            Phase::Learn { .. } => return,
        };
        if now < rejoin.sent + retransmit {
            return;
        }
        rejoin.sent = now;
        for peer in self.peers().filter(|p| all & !answered & Replica::bit(*p) != 0).collect::<Vec<_>>() {
            self.send(peer, message.clone());
        }
    }

    /// Ends the rejoin once every slot the lost incarnation may have voted in is decided here:
    /// the fence becomes this replica's own promise, and everything it holds is persisted.
    pub(crate) fn rejoin_check_learned(&mut self) {
        let Some(Rejoin { phase: Phase::Learn { ballot, upto }, .. }) = self.rejoin else {
            return;
        };
        if self.decided_upto < upto {
            return;
        }
        self.acceptor.fence(ballot, self.decided_upto + 1);
        self.acceptor.mark_all_dirty();
        self.rejoin = None;
    }
}
