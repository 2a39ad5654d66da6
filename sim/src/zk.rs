//! The ZooKeeper stand-in: its own simulated node, holding every replica's acceptor state.
//!
//! Replicas reach it over the simulated network, so everything that happens to a real ZooKeeper
//! can happen here: its links can be cut (one replica loses its store while the others keep
//! theirs), it can be slow, and it can go down as a whole and come back with its data (the
//! stores live outside the node, in the harness, as ZooKeeper's data directory would).
//!
//! Writes are fenced and ordered. Each `load` (a replica starting) opens a new epoch for that
//! replica, and writes of an older epoch are refused: a write the previous incarnation left in
//! flight must not land after the new one read its state, or it could overwrite a newer vote.
//! Within an epoch a write carries a sequence number and lands only if it is newer than the last
//! one that landed: a timed-out attempt that arrives late is ignored. Deleting a replica's state
//! ([`delete_state`]) closes its epoch too, as deleting the promise node does in ZooKeeper.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barista_core::{AcceptorState, Persist};
use barista_runtime::store::{AcceptorStore, MemStore, StoreError};
use madsim::net::Endpoint;

/// Tag on which the stand-in receives requests.
const REQUEST_TAG: u64 = 2;
/// How long a replica waits for an answer before reporting the store unreachable.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The stand-in's address.
pub fn zk_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)), 2181)
}

enum Op {
    Load,
    Persist { epoch: u64, seq: u64, batch: Persist },
}

/// The state (for a load; `None` if the store holds none) and the epoch.
type Reply = Result<(Option<AcceptorState>, u64), StoreError>;

/// Per replica: the current epoch and the newest write of it that landed. Kept with the stores,
/// outside the stand-in's node, so it survives the stand-in's restarts.
pub type Fences = Arc<Mutex<BTreeMap<usize, (u64, u64)>>>;

/// Serves the replicas' stores until the node is killed.
pub async fn serve(stores: Vec<MemStore>, fences: Fences) {
    let Ok(ep) = Endpoint::bind(zk_addr()).await else { return };
    let ep = Arc::new(ep);
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(REQUEST_TAG).await else { return };
        let Ok(call) = payload.downcast::<(u64, usize, Op)>() else { continue };
        let (reply_tag, replica, op) = *call;
        let Some(store) = stores.get(replica).cloned() else { continue };
        let (ep, fences) = (ep.clone(), fences.clone());
        tokio::spawn(async move {
            let reply = handle(store, &fences, replica, op).await;
            let _ = ep.send_to_raw(from, reply_tag, Box::new(reply)).await;
        });
    }
}

/// Deletes `replica`'s acceptor state held in `store`, as an operator deleting its ZooKeeper
/// nodes would, and fences off every write issued before the deletion.
///
/// Why the fence: in ZooKeeper every multi-op rewrites the promise node at the data version its
/// writer last saw (see `barista_runtime::zookeeper`), so deleting that node makes every write
/// issued against the old state fail, including one a killed incarnation left in flight. Without
/// it, such a write (its handler here still waiting out the store latency) landed after the
/// deletion, under the epoch only the next `load` would have closed: the emptied store held a
/// fragment (one slot and no promise), the restarted replica took it for its intact state and
/// recovered instead of rejoining (voting with its promises forgotten), and the harness, seeing no
/// rejoin, let a second replica lose its state as well: together the two deletions took the only
/// copies of the slots a third, crashed replica still had to apply (simulation seed 1797).
pub fn delete_state(store: &MemStore, fences: &Fences, replica: usize) {
    {
        let mut guard = fence(fences, replica);
        let entry = guard.entry(replica).or_default();
        *entry = (entry.0 + 1, 0); // no incarnation holds this epoch: only a `load` opens the next
    }
    store.wipe();
}

fn fence(fences: &Fences, replica: usize) -> std::sync::MutexGuard<'_, BTreeMap<usize, (u64, u64)>> {
    let mut guard = fences.lock().unwrap_or_else(|p| p.into_inner());
    guard.entry(replica).or_default();
    guard
}

async fn handle(mut store: MemStore, fences: &Fences, replica: usize, op: Op) -> Reply {
    match op {
        Op::Load => {
            let state = store.load().await?;
            let mut guard = fence(fences, replica);
            let entry = guard.entry(replica).or_default();
            *entry = (entry.0 + 1, 0); // a new incarnation: fence off the previous one
            Ok((state, entry.0))
        }
        Op::Persist { epoch, seq, batch } => {
            // Checked and recorded under the store's lock, together with the write itself.
            let admit = || {
                let mut guard = fence(fences, replica);
                let entry = guard.entry(replica).or_default();
                let admitted = entry.0 == epoch && seq > entry.1;
                if admitted {
                    entry.1 = seq;
                }
                admitted
            };
            if store.persist_if(&batch, admit).await? {
                return Ok((None, epoch));
            }
            let (current, _) = fence(fences, replica).get(&replica).copied().unwrap_or_default();
            if epoch != current {
                Err(StoreError(format!("fenced: epoch {epoch} was superseded by a restart (epoch {current})")))
            } else {
                Ok((None, epoch)) // a late attempt: a newer one already landed
            }
        }
    }
}

/// One replica's connection to the stand-in: an [`AcceptorStore`].
pub struct ZkClient {
    replica: usize,
    /// `None` until bound (lazily, on first use, on the replica's own node).
    ep: Option<Endpoint>,
    bind: SocketAddr,
    /// The tag of the last call; its high half is this client's own (see [`ZkClient::new`]).
    next_tag: u64,
    epoch: u64,
    seq: u64,
}

impl ZkClient {
    /// A client for `replica`, binding its endpoint at `bind` (on the replica's node). `instance`
    /// must differ from every other client of this replica (every incarnation and every start
    /// attempt binds the same address): replies are told apart by their tags alone, and a reply
    /// to a call a killed incarnation left in flight reaches whichever endpoint holds the address
    /// by then. With tags numbered alike in every client, a later client took such a reply for
    /// the answer to its own call of the same number (a stale "fenced" error was seen; a stale
    /// success would have passed an unstored vote for a stored one).
    pub fn new(replica: usize, bind: SocketAddr, instance: u32) -> ZkClient {
        // Above REQUEST_TAG for any instance, and unique for 2^32 calls per client.
        let next_tag = (u64::from(instance) + 1) << 32;
        ZkClient { replica, ep: None, bind, next_tag, epoch: 0, seq: 0 }
    }

    async fn call(&mut self, op: Op) -> Reply {
        if self.ep.is_none() {
            self.ep = Some(Endpoint::bind(self.bind).await.map_err(|e| StoreError(format!("bind: {e}")))?);
        }
        let Some(ep) = &self.ep else { return Err(StoreError("no endpoint".into())) };
        self.next_tag += 1;
        let tag = self.next_tag;
        ep.send_to_raw(zk_addr(), REQUEST_TAG, Box::new((tag, self.replica, op)))
            .await
            .map_err(|e| StoreError(format!("send: {e}")))?;
        match tokio::time::timeout(TIMEOUT, ep.recv_from_raw(tag)).await {
            Ok(Ok((payload, _))) => match payload.downcast::<Reply>() {
                Ok(reply) => *reply,
                Err(_) => Err(StoreError("unexpected reply".into())),
            },
            Ok(Err(e)) => Err(StoreError(format!("receive: {e}"))),
            Err(_) => Err(StoreError(format!("no answer from the ZooKeeper stand-in within {TIMEOUT:?}"))),
        }
    }
}

impl AcceptorStore for ZkClient {
    async fn load(&mut self) -> Result<Option<AcceptorState>, StoreError> {
        let (state, epoch) = self.call(Op::Load).await?;
        self.epoch = epoch;
        self.seq = 0;
        Ok(state)
    }

    async fn persist(&mut self, batch: &Persist) -> Result<(), StoreError> {
        // Every attempt gets a new number, so whichever attempt of a batch lands first wins and
        // any earlier attempt that is still in flight is ignored when it arrives.
        self.seq += 1;
        let seq = self.seq;
        self.call(Op::Persist { epoch: self.epoch, seq, batch: batch.clone() }).await.map(|_| ())
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use barista_core::{Ballot, Paxo, Value};

    use super::*;

    fn one_slot(slot: u64) -> Persist {
        let b = Ballot { round: 1, node: 0 };
        Persist {
            slots: vec![(slot, Paxo { n_p: b, n_a: b, v_a: Some(Value::Noop), decided: true })],
            ..Persist::default()
        }
    }

    /// Seed 1797: a write issued before the replica's state was deleted, and handled after,
    /// re-created a fragment of the state, which the restarted replica took for its own.
    #[madsim::test]
    async fn a_write_issued_before_the_state_was_deleted_does_not_land_after_it() {
        let (store, fences) = (MemStore::new(), Fences::default());
        let Ok((None, epoch)) = handle(store.clone(), &fences, 0, Op::Load).await else {
            panic!("a fresh store holds no state");
        };
        let first = Op::Persist { epoch, seq: 1, batch: one_slot(1) };
        assert!(handle(store.clone(), &fences, 0, first).await.is_ok(), "the current incarnation writes");
        // Issued now, handled (as an async fn, it does nothing until awaited) after the deletion.
        let in_flight = handle(store.clone(), &fences, 0, Op::Persist { epoch, seq: 2, batch: one_slot(2) });
        delete_state(&store, &fences, 0);
        assert!(in_flight.await.is_err(), "the write of the deleted state's writer is refused");
        let Ok((state, _)) = handle(store.clone(), &fences, 0, Op::Load).await else { panic!("load") };
        assert_eq!(state, None, "the restarted replica finds its state lost, not a fragment of it");
    }

    /// A reply to a call that an earlier client of the replica abandoned (killed with it in
    /// flight) reaches the next client, which binds the same address: it must not be taken for
    /// the answer to that client's own call.
    #[madsim::test]
    async fn a_reply_to_an_abandoned_call_is_not_taken_for_a_later_clients_answer() {
        let store = MemStore::new();
        store.set_latency(Duration::from_millis(400));
        let (stores, fences) = (vec![store], Fences::default());
        let sim = madsim::runtime::Handle::current();
        sim.create_node()
            .name("zookeeper")
            .ip(zk_addr().ip())
            .init(move || serve(stores.clone(), fences.clone()))
            .build();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let replica = sim.create_node().name("replica").ip(ip).build();
        let bind = SocketAddr::new(ip, 7002);
        let second_persist = replica.spawn(async move {
            let mut first = ZkClient::new(0, bind, 0);
            first.load().await.expect("the first client loads");
            // Abandoned at 100 ms; the stand-in refuses it at 400 ms (the second client's load
            // fenced it off) and answers to `bind`, while the second client's persist, of the
            // same call number, waits there for its own answer (at 500 ms).
            let abandoned = tokio::time::timeout(Duration::from_millis(100), first.persist(&one_slot(1))).await;
            assert!(abandoned.is_err(), "the first client's persist is still in flight when it is dropped");
            drop(first);
            let mut second = ZkClient::new(0, bind, 1);
            second.load().await.expect("the second client loads");
            second.persist(&one_slot(2)).await
        });
        assert_eq!(second_persist.await.expect("the replica's task runs"), Ok(()));
    }
}
