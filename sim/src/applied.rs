//! The checker that every replica applies exactly the same value in every slot.
//!
//! Each replica's node reports every slot it applies (through `NodeConfig::on_apply`); the log
//! keeps the first value seen per slot, outside the replicas, so it survives their crashes and
//! catches a replica that applies something else, even once, even if it later crashes.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use barista_core::{Slot, Value};

/// What the replicas applied, slot by slot.
#[derive(Default)]
pub struct AppliedLog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per slot: a digest of the value and the replica that applied it first.
    slots: BTreeMap<Slot, (u64, usize)>,
    conflicts: Vec<String>,
}

fn digest(value: &Value) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the same value hashes the same in every run.
    let mut h = DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    h.finish()
}

impl AppliedLog {
    /// Records that `replica` applied `value` in `slot`.
    pub fn record(&self, replica: usize, slot: Slot, value: &Value) {
        let d = digest(value);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.slots.get(&slot).copied() {
            None => {
                inner.slots.insert(slot, (d, replica));
            }
            Some((first, by)) if first != d => {
                inner
                    .conflicts
                    .push(format!("slot {slot}: replica {replica} applied a value other than replica {by}'s"));
            }
            Some(_) => {}
        }
    }

    /// Every disagreement seen.
    pub fn conflicts(&self) -> Vec<String> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).conflicts.clone()
    }
}
