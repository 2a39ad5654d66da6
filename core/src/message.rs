//! Messages between replicas. Names follow the protocol: prepare, promise, accept, accepted,
//! nack, decide; plus what a leader-based log needs around them (heartbeat, forward, learn).
//!
//! Every message travels in an [`Envelope`] that piggybacks the sender's `Done` (the last slot it
//! applied), so every replica learns `Min()` without extra messages.

use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, NodeId, Slot};
use crate::value::{Command, Value};

/// A message with its sender, receiver and the sender's `Done`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender has applied every slot up to and including this one.
    pub done: Slot,
    /// The message itself.
    pub message: Message,
}

/// What an acceptor reports about one slot in a [`Message::Promise`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PromiseEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot the value was accepted at (`n_a`); meaningless when `decided`.
    pub ballot: Ballot,
    /// The accepted (or decided) value.
    pub value: Value,
    /// The reporter knows this value is decided: the proposer must use it as is.
    pub decided: bool,
}

/// A protocol message.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a. In paxos mode it covers `slot` alone; with `onward` (multi-paxos) it covers every
    /// slot from `slot` on, so one prepare serves a leader's whole term.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The slot, or the first slot covered when `onward`.
        slot: Slot,
        /// Covers all slots from `slot` on.
        onward: bool,
    },
    /// Phase 1b: the acceptor promised `ballot` and reports what it accepted in the covered slots.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// As in the prepare.
        slot: Slot,
        /// As in the prepare.
        onward: bool,
        /// Accepted or decided values in the covered slots.
        entries: Vec<PromiseEntry>,
    },
    /// Phase 2a. `decided_upto` piggybacks the leader's decided prefix (multi-paxos).
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The value to accept.
        value: Value,
        /// Every slot up to this one is decided at the sender.
        decided_upto: Slot,
    },
    /// Phase 2b.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
    },
    /// Refusal of a prepare, accept or heartbeat because the acceptor promised a higher ballot.
    Nack {
        /// The refused ballot.
        ballot: Ballot,
        /// The higher ballot the acceptor promised.
        promised: Ballot,
        /// The slot of the refused message (0 for a heartbeat).
        slot: Slot,
    },
    /// Paxos mode: the proposer learned that `slot` is decided.
    Decide {
        /// The slot.
        slot: Slot,
        /// Its decided value.
        value: Value,
    },
    /// Multi-paxos leader liveness, and the decision broadcast: every slot up to `decided_upto` is
    /// decided, and a follower that accepted a slot at `ballot` knows its value.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's decided prefix.
        decided_upto: Slot,
        /// The leader's `Min()`. Followers only talk to the leader, so they learn the other
        /// followers' `Done` through it; without this they could never forget anything.
        min: Slot,
    },
    /// A follower's answer to a heartbeat, so the leader knows it still has a majority.
    HeartbeatReply {
        /// The heartbeat's ballot.
        ballot: Ballot,
        /// The follower's decided prefix.
        decided_upto: Slot,
        /// The highest slot the follower has seen (`Max()`). A slot an earlier leader got accepted
        /// only by replicas outside the new leader's promise majority is unknown to the new
        /// leader; this is how it learns of it and fills it (see `mp_on_heartbeat_reply`).
        max_slot: Slot,
    },
    /// A follower hands client commands to the leader.
    Forward {
        /// The commands, each still owned (re-sent until decided) by its origin.
        commands: Vec<Command>,
    },
    /// Paxos mode, sent periodically to every peer: there is no leader whose heartbeats would tell
    /// a replica that missed the decide messages that it is behind, or relay everyone's `Done`.
    Progress {
        /// The sender's decided prefix.
        decided_upto: Slot,
        /// The sender's `Min()`.
        min: Slot,
    },
    /// A replica missing decided slots asks for them, starting at `slot`.
    LearnRequest {
        /// The first slot wanted.
        slot: Slot,
    },
    /// Decided slots for a learner.
    LearnReply {
        /// Decided slots, ascending.
        entries: Vec<(Slot, Value)>,
        /// The sender's decided prefix, so the learner knows whether to ask again.
        decided_upto: Slot,
        /// The sender forgot every slot below this one.
        floor: Slot,
    },
    /// A replica that lost its acceptor state asks for the highest ballot each peer promised
    /// (see `rejoin.rs`).
    RejoinQuery,
    /// The answer to a [`Message::RejoinQuery`].
    RejoinInfo {
        /// The highest ballot the sender promised, in any slot.
        promised: Ballot,
        /// The highest slot the sender has seen (`Max()`).
        max_slot: Slot,
    },
    /// A rejoining replica asks the receiver to promise at least `ballot` from its floor on, so
    /// that no accept of an older ballot (one the lost incarnation may have voted in) lands.
    Fence {
        /// The fence ballot.
        ballot: Ballot,
    },
    /// The receiver persisted the fence.
    Fenced {
        /// The fence ballot.
        ballot: Ballot,
        /// The highest slot the sender has seen (`Max()`) once fenced.
        max_slot: Slot,
    },
}

impl Message {
    /// The ballot the message carries, if any.
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Message::Prepare { ballot, .. }
            | Message::Promise { ballot, .. }
            | Message::Accept { ballot, .. }
            | Message::Accepted { ballot, .. }
            | Message::Heartbeat { ballot, .. }
            | Message::HeartbeatReply { ballot, .. }
            | Message::Fence { ballot }
            | Message::Fenced { ballot, .. } => Some(*ballot),
            Message::Nack { promised, .. } | Message::RejoinInfo { promised, .. } => Some(*promised),
            Message::Decide { .. }
            | Message::Forward { .. }
            | Message::Progress { .. }
            | Message::LearnRequest { .. }
            | Message::LearnReply { .. }
            | Message::RejoinQuery => None,
        }
    }

    /// Whether this message may leave before the `Ready` it came in is persisted (see
    /// [`crate::Ready::early`]): requests and facts that assert nothing about this replica's
    /// acceptor state. A leader's accepts are the point: its own vote and the followers' are then
    /// written at the same time instead of one after the other. Promises, votes, refusals and
    /// fences are never early; nor is anything whose early arrival would gain nothing.
    pub fn may_precede_persist(&self) -> bool {
        matches!(
            self,
            Message::Accept { .. } | Message::Heartbeat { .. } | Message::Forward { .. } | Message::LearnRequest { .. }
        )
    }

    /// A short name for traces and message counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::Decide { .. } => "decide",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatReply { .. } => "heartbeat_reply",
            Message::Forward { .. } => "forward",
            Message::Progress { .. } => "progress",
            Message::LearnRequest { .. } => "learn_request",
            Message::LearnReply { .. } => "learn_reply",
            Message::RejoinQuery => "rejoin_query",
            Message::RejoinInfo { .. } => "rejoin_info",
            Message::Fence { .. } => "fence",
            Message::Fenced { .. } => "fenced",
        }
    }
}
