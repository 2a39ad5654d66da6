//! The output of the state machine: what to persist, what to send, what to apply.

use crate::acceptor::{Paxo, Promise};
use crate::ballot::Slot;
use crate::message::Envelope;
use crate::value::Value;

/// Everything the replica needs done after one or more inputs, drained by
/// [`crate::Replica::take_ready`].
///
/// **The order of the fields is the contract.** The driver must
/// 1. durably write [`Ready::persist`] (as one atomic batch), and only when that write finished
/// 2. send [`Ready::messages`] — a promise or an accepted vote may only leave the node once the
///    vote is on disk, or a crash could make the acceptor contradict a vote it already cast; then
/// 3. apply [`Ready::decided`] in order, and report progress with [`crate::Replica::applied`].
///
/// A driver that cannot persist must not send; it keeps the `Ready` and retries the write (the
/// replica stops voting meanwhile, because nothing it says leaves the node).
#[derive(Debug, Default, PartialEq)]
pub struct Ready {
    /// Acceptor state to write before anything else.
    pub persist: Persist,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<Envelope>,
    /// Newly decided slots, contiguous and ascending, each handed out exactly once.
    pub decided: Vec<(Slot, Value)>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.messages.is_empty() && self.decided.is_empty()
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
