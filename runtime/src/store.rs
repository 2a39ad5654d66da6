//! Durable acceptor state: the `AcceptorStore` trait, and an in-memory store for tests and the
//! simulation. ZooKeeper implements the same trait in production (issue 4).
//!
//! A store holds what [`barista_core::Persist`] describes: the onward promise and one
//! [`barista_core::Paxo`] per slot. The node writes each `Ready`'s `persist` here before it sends
//! that `Ready`'s messages; a vote that was sent but not stored could be forgotten in a crash, and
//! the acceptor would then contradict itself.

use std::future::Future;
use std::sync::{Arc, Mutex};

use barista_core::{AcceptorState, Persist};
use thiserror::Error;

/// The store cannot be reached or refused the write. The node stops voting until it succeeds.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("acceptor store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where an acceptor keeps its promises and votes.
///
/// To ensure correctness an implementation must:
/// - make `persist` durable before it returns `Ok`: a crash right after must not lose it;
/// - write each record of one `persist` (the promise, each slot's `Paxo`) whole, never torn;
///   the records of one batch need not land together: the node sends nothing of a batch before
///   `persist` returns, so a crash part-way leaves votes nobody has heard of, and each record on
///   its own is a state the acceptor may be in. A failed `persist` is retried whole;
/// - apply `purge_below` after those writes (it may take several steps, and may be finished by a
///   later call: purging only removes slots every replica applied, so it is safe to repeat);
/// - make `load` return exactly the state that the successful `persist` calls describe, and
///   `None` before the first successful `persist` (even of an empty batch) and after the store's
///   contents were deleted: the node tells a brand-new replica from one that lost its votes by
///   this (see `Node::start`), so an empty state must never pass for no state, nor the reverse.
pub trait AcceptorStore: Send + 'static {
    /// Reads the whole persisted state (at start, before the node answers anyone); `None` if the
    /// store holds no state of this replica at all.
    fn load(&mut self) -> impl Future<Output = Result<Option<AcceptorState>, StoreError>> + Send;

    /// Durably applies one batch. On a store that holds nothing, any batch (even an empty one)
    /// makes it hold state.
    fn persist(&mut self, batch: &Persist) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a [`MemStore`] keeps: shared with whoever created it, so it outlives a crashed node.
#[derive(Debug, Default)]
struct MemDisk {
    state: AcceptorState,
    /// A persist landed since the store was created or wiped.
    holds: bool,
    down: bool,
    /// How long a write takes (a ZooKeeper round trip, or a slow one).
    latency: std::time::Duration,
    /// The next write hangs forever and sets `tripped`: the node is stuck mid-write, as a
    /// process that dies during its ZooKeeper round trip is.
    tripwire: bool,
    tripped: bool,
}

/// An in-memory store. Clones share one state, which survives the node that used it; it can be
/// taken down to model an unreachable ZooKeeper.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    disk: Arc<Mutex<MemDisk>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// While down, every call fails with [`StoreError`].
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Every write takes `latency` from now on. The write lands at the end of it, so a node that
    /// crashes meanwhile has not persisted it.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = latency;
    }

    /// Makes the next write hang without landing (see [`MemStore::tripped`]); the simulation
    /// then kills the node, which died while writing.
    pub fn arm_tripwire(&self) {
        self.lock().tripwire = true;
    }

    /// Disarms a tripwire that has not fired yet.
    pub fn disarm_tripwire(&self) {
        self.lock().tripwire = false;
    }

    /// True once an armed write started (and hangs). Reading it resets it.
    pub fn tripped(&self) -> bool {
        let mut disk = self.lock();
        std::mem::take(&mut disk.tripped)
    }

    /// The stored state, for checkers.
    pub fn snapshot(&self) -> AcceptorState {
        self.lock().state.clone()
    }

    /// Loses everything (a wiped disk, or deleted ZooKeeper nodes).
    pub fn wipe(&self) {
        let mut disk = self.lock();
        (disk.state, disk.holds) = (AcceptorState::default(), false);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemDisk> {
        // A panic while holding this lock already failed the test that caused it.
        self.disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_up(disk: &MemDisk) -> Result<(), StoreError> {
        if disk.down { Err(StoreError("store is down".into())) } else { Ok(()) }
    }
}

impl MemStore {
    /// Like [`AcceptorStore::persist`], but the write lands only if `admit()` says so, checked
    /// atomically with the write itself, after the latency: a store that serves several clients
    /// (the simulation's ZooKeeper) uses it to refuse a write from a fenced-off client. Returns
    /// whether the write landed.
    pub async fn persist_if(&self, batch: &Persist, admit: impl FnOnce() -> bool) -> Result<bool, StoreError> {
        let (tripped, latency) = {
            let mut disk = self.lock();
            let tripped = std::mem::take(&mut disk.tripwire);
            disk.tripped |= tripped;
            (tripped, disk.latency)
        };
        if tripped {
            return std::future::pending().await;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut disk = self.lock();
        MemStore::check_up(&disk)?;
        if !admit() {
            return Ok(false);
        }
        disk.state.apply(batch);
        disk.holds = true;
        Ok(true)
    }
}

impl AcceptorStore for MemStore {
    async fn load(&mut self) -> Result<Option<AcceptorState>, StoreError> {
        let disk = self.lock();
        MemStore::check_up(&disk)?;
        Ok(disk.holds.then(|| disk.state.clone()))
    }

    async fn persist(&mut self, batch: &Persist) -> Result<(), StoreError> {
        self.persist_if(batch, || true).await.map(|_| ())
    }
}

/// The conformance suite every [`AcceptorStore`] must pass. `fresh` returns a store with nothing
/// in it; `reopen` returns a new handle on the same durable state (a restarted node).
pub mod conformance {
    use super::*;
    use barista_core::{Ballot, Paxo, Promise, Value};

    fn paxo(round: u64, decided: bool) -> Paxo {
        let b = Ballot { round, node: 1 };
        Paxo { n_p: b, n_a: b, v_a: Some(Value::Noop), decided }
    }

    /// Runs every check; panics with the name of the first one that fails.
    pub async fn run_all<S: AcceptorStore>(mut fresh: impl FnMut() -> S, mut reopen: impl FnMut(&S) -> S) {
        let mut store = fresh();
        assert_eq!(store.load().await, Ok(None), "a fresh store holds nothing");
        store.persist(&Persist::default()).await.expect("persist nothing");
        assert_eq!(store.load().await, Ok(Some(AcceptorState::default())), "an empty persist makes it hold state");
        assert_eq!(reopen(&store).load().await, Ok(Some(AcceptorState::default())), "also once reopened");

        let promise = Promise { ballot: Ballot { round: 3, node: 2 }, from: 5 };
        let first =
            Persist { promise: Some(promise), slots: vec![(5, paxo(3, false)), (6, paxo(3, true))], purge_below: None };
        store.persist(&first).await.expect("persist");
        let mut expected = AcceptorState::default();
        expected.apply(&first);
        assert_eq!(store.load().await.as_ref(), Ok(&Some(expected.clone())), "load returns what was persisted");
        let reopened = reopen(&store).load().await;
        assert_eq!(reopened.as_ref(), Ok(&Some(expected.clone())), "a reopened store sees the same state");

        let overwrite = Persist { promise: None, slots: vec![(5, paxo(4, true))], purge_below: None };
        store.persist(&overwrite).await.expect("persist");
        expected.apply(&overwrite);
        assert_eq!(store.load().await.as_ref(), Ok(&Some(expected.clone())), "a later write of a slot replaces it");

        let many: Vec<_> = (7..300).map(|s| (s, paxo(4, s % 2 == 0))).collect();
        let big = Persist { promise: None, slots: many, purge_below: None };
        store.persist(&big).await.expect("persist a large batch");
        expected.apply(&big);
        assert_eq!(store.load().await.as_ref(), Ok(&Some(expected.clone())), "a large batch is stored whole");

        let purge = Persist { promise: None, slots: vec![(300, paxo(5, false))], purge_below: Some(250) };
        store.persist(&purge).await.expect("persist with purge");
        expected.apply(&purge);
        let loaded = reopen(&store).load().await.expect("load").expect("state");
        assert_eq!(loaded, expected, "purge removes exactly the slots below it");
        assert_eq!(loaded.slots.keys().next(), Some(&250));

        store.persist(&Persist { purge_below: Some(250), ..Persist::default() }).await.expect("repeat purge");
        assert_eq!(store.load().await.as_ref(), Ok(&Some(expected)), "repeating a purge changes nothing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mem_store_passes_the_conformance_suite() {
        conformance::run_all(MemStore::new, MemStore::clone).await;
    }

    #[tokio::test]
    async fn a_down_store_refuses_and_loses_nothing() {
        let mut store = MemStore::new();
        store.persist(&Persist { purge_below: Some(3), ..Persist::default() }).await.expect("persist");
        store.set_down(true);
        assert!(store.load().await.is_err());
        assert!(store.persist(&Persist::default()).await.is_err());
        store.set_down(false);
        assert_eq!(store.load().await, Ok(Some(AcceptorState::default())));
    }

    #[tokio::test]
    async fn a_wiped_store_holds_nothing_until_the_next_persist() {
        let mut store = MemStore::new();
        store.persist(&Persist { purge_below: Some(3), ..Persist::default() }).await.expect("persist");
        store.wipe();
        assert_eq!(store.load().await, Ok(None));
        store.persist(&Persist::default()).await.expect("persist");
        assert_eq!(store.load().await, Ok(Some(AcceptorState::default())));
    }
}
