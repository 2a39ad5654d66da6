//! The output of the state machine: what to persist, what to send, what to apply.

use crate::acceptor::{Paxo, Promise};
use crate::ballot::Slot;
use crate::message::Envelope;
use crate::value::Value;

/// Everything the replica needs done after one or more inputs, drained by
/// [`crate::Replica::take_ready`].
///
/// **The order of the fields is the contract.** The driver must
/// 1. send [`Ready::early`] whenever it likes: before, or while, it writes `persist`;
/// 2. durably write [`Ready::persist`] (as one atomic batch), and only when that write finished
/// 3. send [`Ready::messages`] — a promise or an accepted vote may only leave the node once the
///    vote is on disk, or a crash could make the acceptor contradict a vote it already cast; then
/// 4. apply [`Ready::decided`] in order, and report progress with [`crate::Replica::applied`];
///
/// and step no input into the replica, or take the next `Ready`, until `persist` is written: a
/// decision counts this replica's own vote, which must be durable before an answer to its early
/// accept can complete a majority.
///
/// A driver that cannot persist must not send `messages`; it keeps the `Ready` and retries the
/// write (the replica stops voting meanwhile, because nothing it says leaves the node).
#[derive(Debug, Default, PartialEq)]
pub struct Ready {
    /// Messages that assert nothing about this replica's acceptor state (a leader's accepts and
    /// heartbeats, forwarded commands, learn requests; see
    /// [`crate::Message::may_precede_persist`]). Sending them before `persist` is written lets a
    /// leader's disk write overlap its followers' instead of preceding them, which takes one of
    /// the three sequential writes off every decision (as etcd raft's leader does with its own
    /// log append). A crash before `persist` is written is then a leader that asked for votes
    /// and forgot it did: the acceptors' answers are what any majority sees, and a restarted
    /// replica campaigns with a ballot above every one it promised, so it never proposes again
    /// under the ballot it used.
    pub early: Vec<Envelope>,
    /// Acceptor state to write before `messages`.
    pub persist: Persist,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<Envelope>,
    /// Newly decided slots, contiguous and ascending, each handed out exactly once.
    pub decided: Vec<(Slot, Value)>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.early.is_empty() && self.persist.is_empty() && self.messages.is_empty() && self.decided.is_empty()
    }
}

/// Changes to the durable acceptor state, written as one atomic batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Persist {
    /// The new onward promise, if it changed.
    pub promise: Option<Promise>,
    /// Slots whose state changed, ascending, with their full new state.
    pub slots: Vec<(Slot, Paxo)>,
    /// Delete every slot below this one (all replicas applied them).
    pub purge_below: Option<Slot>,
}

impl Persist {
    /// True when nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.promise.is_none() && self.slots.is_empty() && self.purge_below.is_none()
    }
}
