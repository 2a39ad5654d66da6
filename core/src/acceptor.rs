//! The acceptor: the durable half of Paxos.
//!
//! Per slot it keeps a [`Paxo`] `{ n_p, n_a, v_a, decided }`; for Multi-Paxos it also keeps one
//! onward [`Promise`] that covers every slot from a given one, so a leader's single prepare serves
//! all future slots. The slot's effective promise is the larger of the two.
//!
//! Every rule here protects one fact: once this acceptor told a proposer "I promise `b`" or "I
//! accepted `(b, v)`", it never acts as if it had not. That is why every change is recorded as
//! dirty and handed to the driver to persist before any reply leaves the node (see
//! [`crate::Ready`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, Slot};
use crate::message::PromiseEntry;
use crate::ready::Persist;
use crate::value::Value;

/// The acceptor's state for one slot, as persisted.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Paxo {
    /// Highest ballot promised for this slot alone (paxos mode, or raised by an accept).
    pub n_p: Ballot,
    /// Ballot of the last accepted value; [`Ballot::ZERO`] if none.
    pub n_a: Ballot,
    /// The last accepted value; once `decided`, the decided value.
    pub v_a: Option<Value>,
    /// `v_a` is known to be the slot's decided value.
    pub decided: bool,
}

/// The Multi-Paxos promise: no ballot below `ballot` is accepted in any slot `>= from`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Promise {
    /// The promised ballot.
    pub ballot: Ballot,
    /// First slot covered.
    pub from: Slot,
}

/// Everything an acceptor persists. A replica restarts from this and its applied slot.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AcceptorState {
    /// The onward promise.
    pub promise: Promise,
    /// Per-slot state, for slots not yet forgotten.
    pub slots: BTreeMap<Slot, Paxo>,
}

impl AcceptorState {
    /// The ballot this acceptor promised for `slot`: the slot's own promise or the onward one.
    pub fn promised(&self, slot: Slot) -> Ballot {
        let own = self.slots.get(&slot).map_or(Ballot::ZERO, |p| p.n_p);
        if slot >= self.promise.from { own.max(self.promise.ballot) } else { own }
    }

    /// Applies `persist` to this state, as a store would. Used by stores kept in memory and by
    /// tests that restart a replica from what it persisted.
    pub fn apply(&mut self, persist: &Persist) {
        if let Some(promise) = persist.promise {
            self.promise = promise;
        }
        for (slot, paxo) in &persist.slots {
            self.slots.insert(*slot, paxo.clone());
        }
        if let Some(below) = persist.purge_below {
            self.slots = self.slots.split_off(&below);
        }
    }
}

/// A value the acceptor was told is decided differs from the one it already knew as decided.
/// Only a bug (or a non-Paxos peer) can cause this.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConflictingDecision {
    /// The slot with two decided values.
    pub slot: Slot,
}

/// The acceptor state plus what changed since the last [`Acceptor::take_persist`].
#[derive(Debug, Default)]
pub(crate) struct Acceptor {
    pub(crate) state: AcceptorState,
    dirty: BTreeSet<Slot>,
    promise_dirty: bool,
    purge_below: Option<Slot>,
}

impl Acceptor {
    pub(crate) fn new(state: AcceptorState) -> Acceptor {
        Acceptor { state, ..Acceptor::default() }
    }

    pub(crate) fn slot(&self, slot: Slot) -> Option<&Paxo> {
        self.state.slots.get(&slot)
    }

    /// Multi-Paxos phase 1: promise `ballot` for every slot from `from` on and report what was
    /// accepted there. Refused with the higher ballot if any covered slot promised more.
    pub(crate) fn prepare_onward(&mut self, ballot: Ballot, from: Slot) -> Result<Vec<PromiseEntry>, Ballot> {
        let covered = self.state.slots.range(from..);
        let highest = covered.clone().map(|(_, p)| p.n_p).max().unwrap_or(Ballot::ZERO).max(self.state.promise.ballot);
        if ballot < highest {
            return Err(highest);
        }
        let entries = covered.filter_map(|(slot, paxo)| entry(*slot, paxo)).collect();
        let old = self.state.promise;
        // A higher promise that covered fewer slots would un-promise the slots in between, and
        // the proposer of the old ballot relied on them; so the covered range only grows.
        let new_from = if old.ballot.is_zero() { from } else { from.min(old.from) };
        let new = Promise { ballot, from: new_from };
        if new != old {
            self.state.promise = new;
            self.promise_dirty = true;
        }
        Ok(entries)
    }

    /// The highest ballot this acceptor promised, onward or in any one slot.
    pub(crate) fn highest_promised(&self) -> Ballot {
        self.state.slots.values().map(|p| p.n_p).max().unwrap_or(Ballot::ZERO).max(self.state.promise.ballot)
    }

    /// Promises at least `ballot` for every slot from `from` on, reporting nothing: a rejoining
    /// replica's fence (see `rejoin.rs`), and that replica's own promise once it rejoined.
    pub(crate) fn fence(&mut self, ballot: Ballot, from: Slot) {
        let old = self.state.promise;
        // As in `prepare_onward`, the covered range only grows.
        let new = Promise {
            ballot: old.ballot.max(ballot),
            from: if old.ballot.is_zero() { from } else { from.min(old.from) },
        };
        if new != old {
            self.state.promise = new;
            self.promise_dirty = true;
        }
    }

    /// Marks the whole state for persisting: a rejoined replica persisted nothing while it
    /// rejoined.
    pub(crate) fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.state.slots.keys().copied());
        self.promise_dirty = true;
    }

    /// Paxos phase 1 for one slot.
    pub(crate) fn prepare_slot(&mut self, ballot: Ballot, slot: Slot) -> Result<Option<PromiseEntry>, Ballot> {
        let promised = self.state.promised(slot);
        if ballot < promised {
            return Err(promised);
        }
        let paxo = self.state.slots.entry(slot).or_default();
        if paxo.n_p != ballot {
            paxo.n_p = ballot;
            self.dirty.insert(slot);
        }
        Ok(entry(slot, paxo))
    }

    /// Phase 2: accept `(ballot, value)` in `slot` unless a higher ballot was promised there.
    /// Accepting also promises `ballot` for the slot.
    pub(crate) fn accept(&mut self, ballot: Ballot, slot: Slot, value: &Value) -> Result<(), Ballot> {
        let promised = self.state.promised(slot);
        if ballot < promised {
            return Err(promised);
        }
        let paxo = self.state.slots.entry(slot).or_default();
        if paxo.n_p == ballot && paxo.n_a == ballot {
            return Ok(()); // a retransmission: nothing new to persist
        }
        paxo.n_p = ballot;
        paxo.n_a = ballot;
        // A decided slot keeps its value: any ballot accepted after a decision carries that same
        // value (Paxos safety), so there is nothing to overwrite.
        if !paxo.decided {
            paxo.v_a = Some(value.clone());
        }
        self.dirty.insert(slot);
        Ok(())
    }

    /// Records `value` as decided in `slot`. Returns `Ok(true)` if this is news.
    pub(crate) fn decide(&mut self, slot: Slot, value: &Value) -> Result<bool, ConflictingDecision> {
        let paxo = self.state.slots.entry(slot).or_default();
        if paxo.decided {
            return if paxo.v_a.as_ref() == Some(value) { Ok(false) } else { Err(ConflictingDecision { slot }) };
        }
        // Replacing a losing accepted value keeps the acceptor safe: any value accepted at a
        // ballot at or above the deciding one is the decided value, so a proposer that reads this
        // entry (marked decided) proposes exactly what it would have had to anyway.
        //
        // The mark alone is not written: when the store already holds the decided value (this
        // acceptor accepted it, the common case), a restart counts the slot as decided once it is
        // applied (see `Replica::recover`), and above AP the slot is learned again, which Paxos
        // allows. Writing the mark cost every replica a second store write per slot, on the way
        // from the decision to applying it.
        let stored = paxo.v_a.as_ref() == Some(value);
        paxo.v_a = Some(value.clone());
        paxo.decided = true;
        if !stored {
            self.dirty.insert(slot);
        }
        Ok(true)
    }

    /// Forgets every slot below `below` (applied on every replica) in memory and in the store.
    pub(crate) fn forget_below(&mut self, below: Slot) {
        self.state.slots = self.state.slots.split_off(&below);
        self.dirty = self.dirty.split_off(&below);
        self.purge_below = Some(below);
    }

    #[cfg(test)]
    pub(crate) fn has_persist(&self) -> bool {
        self.promise_dirty || !self.dirty.is_empty() || self.purge_below.is_some()
    }

    /// Drains the changes made since the last call.
    pub(crate) fn take_persist(&mut self) -> Persist {
        let promise = std::mem::take(&mut self.promise_dirty).then_some(self.state.promise);
        let slots = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|slot| self.state.slots.get(&slot).map(|p| (slot, p.clone())))
            .collect();
        Persist { promise, slots, purge_below: self.purge_below.take() }
    }
}

fn entry(slot: Slot, paxo: &Paxo) -> Option<PromiseEntry> {
    let value = paxo.v_a.clone()?;
    Some(PromiseEntry { slot, ballot: paxo.n_a, value, decided: paxo.decided })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    #[test]
    fn accept_refuses_below_the_effective_promise() {
        let mut a = Acceptor::default();
        a.prepare_onward(b(2, 1), 5).expect("first promise");
        // Below the onward range the slot's own promise (none) applies.
        assert_eq!(a.accept(b(1, 0), 4, &Value::Noop), Ok(()));
        assert_eq!(a.accept(b(1, 0), 5, &Value::Noop), Err(b(2, 1)));
        assert_eq!(a.accept(b(2, 1), 5, &Value::Noop), Ok(()));
        assert_eq!(a.slot(5).map(|p| p.n_a), Some(b(2, 1)));
    }

    #[test]
    fn onward_promise_range_never_shrinks() {
        let mut a = Acceptor::default();
        a.prepare_onward(b(1, 0), 10).expect("promise");
        a.prepare_onward(b(2, 1), 20).expect("higher promise");
        assert_eq!(a.state.promise, Promise { ballot: b(2, 1), from: 10 });
        assert_eq!(a.state.promised(15), b(2, 1));
    }

    #[test]
    fn prepare_reports_accepted_values_and_refuses_lower_ballots() {
        let mut a = Acceptor::default();
        a.accept(b(3, 2), 7, &Value::Noop).expect("accept");
        let entries = a.prepare_onward(b(4, 0), 1).expect("promise");
        assert_eq!(entries, vec![PromiseEntry { slot: 7, ballot: b(3, 2), value: Value::Noop, decided: false }]);
        assert_eq!(a.prepare_onward(b(3, 9), 1), Err(b(4, 0)));
        assert_eq!(a.prepare_slot(b(3, 9), 7), Err(b(4, 0)));
    }

    #[test]
    fn decided_value_is_never_replaced() {
        let mut a = Acceptor::default();
        let v = Value::batch(vec![]);
        assert_eq!(a.decide(1, &v), Ok(true));
        assert_eq!(a.decide(1, &v), Ok(false));
        assert_eq!(a.decide(1, &Value::Noop), Err(ConflictingDecision { slot: 1 }));
        a.accept(b(9, 0), 1, &Value::Noop).expect("accept after decide");
        assert_eq!(a.slot(1).and_then(|p| p.v_a.clone()), Some(v));
    }

    #[test]
    fn deciding_the_stored_value_writes_nothing_but_another_value_is_written() {
        let (mine, theirs) = (Value::batch(vec![]), Value::Noop);
        let mut a = Acceptor::default();
        a.accept(b(1, 0), 1, &mine).expect("accept");
        a.accept(b(1, 0), 2, &mine).expect("accept");
        let accepted = a.take_persist();
        assert_eq!(accepted.slots.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(a.decide(1, &mine), Ok(true));
        assert!(a.take_persist().is_empty(), "the store holds slot 1's decided value already");
        assert_eq!(a.decide(2, &theirs), Ok(true));
        assert_eq!(a.decide(3, &theirs), Ok(true));
        let decided = a.take_persist();
        assert_eq!(
            decided.slots.iter().map(|(s, p)| (*s, p.v_a.clone())).collect::<Vec<_>>(),
            vec![(2, Some(theirs.clone())), (3, Some(theirs))]
        );
    }

    #[test]
    fn persist_replays_into_the_same_state() {
        let mut a = Acceptor::default();
        a.prepare_onward(b(1, 0), 1).expect("promise");
        a.accept(b(1, 0), 1, &Value::Noop).expect("accept");
        a.accept(b(1, 0), 2, &Value::Noop).expect("accept");
        let mut store = AcceptorState::default();
        store.apply(&a.take_persist());
        assert_eq!(store, a.state);
        a.forget_below(2);
        store.apply(&a.take_persist());
        assert_eq!(store, a.state);
        assert!(!a.has_persist());
    }
}
