//! The applier: runs the executor beside the node's consensus loop instead of inside it.
//!
//! The loop waits on the acceptor store (a persist per turn) and the applier waits on the
//! database (a few round trips per slot). Serial, each waited for the other: a replica catching
//! up persisted the accepts of new slots between slots of its backlog, and a leader applying a
//! slot could not persist or send the next. Side by side, the two waits overlap, as in etcd,
//! whose raft log is persisted and whose committed entries are applied by different goroutines.
//!
//! What keeps it safe is the order of hand-over, not the interleaving:
//! - the loop hands a slot over only after the persist that came with its decision, so the store
//!   holds every applied slot's decided value (`Replica::recover` counts the slots through AP as
//!   decided by it);
//! - the applier applies slots strictly in order and never skips one: a database fault stops it at
//!   that slot until [`Executor::recover`] succeeds, and it then applies again from the
//!   database's AP, with the values it kept;
//! - it keeps every value above the flushed AP, since a database crash can take back what was
//!   not flushed; only flushed slots are reported `Done` ([`Event::Durable`]), which lets the log
//!   forget them.
//!
//! Both run in the node's task (joined, not spawned), so the simulation schedules them as one
//! node, and a node that is killed stops both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use barista_core::{Slot, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use crate::command::{ClientCommand, ConnId};
use crate::executor::{Applied, Executor, Outcome};
use crate::node::{ApplyHook, Executed, NodeConfig};
use crate::sql::{BackendFault, SqlBackend};
use crate::verify::{Checks, DatabaseDigest};

/// What the applier tells the loop.
pub(crate) enum Event {
    /// A slot was applied.
    Applied(AppliedSlot),
    /// Every slot through this one is on disk: the replica's `Done`.
    Durable(Slot),
    /// A database fault stopped the applier at `slot`; it recovers by itself.
    Fault { slot: Slot, fault: BackendFault },
    /// The database is reachable again; the executor is back at AP `applied`.
    Recovered { applied: Slot },
}

/// What the loop hands the applier, in order.
pub(crate) enum Work {
    /// A decided slot to apply.
    Slot(Slot, Value),
    /// A read to answer without the log if the executor may (see `executor::read`).
    Read { command: ClientCommand, reply: oneshot::Sender<Option<Outcome>> },
}

/// One applied slot: the outcomes to answer and the executor's state after it, which the loop
/// mirrors for status, idle transactions and divergence checks.
pub(crate) struct AppliedSlot {
    /// The executor's AP after the slot (it stays put inside an open transaction).
    pub applied: Slot,
    /// The slot just executed: ahead of AP inside an open transaction.
    pub executed: Slot,
    /// Each command's outcome, for the clients waiting at this replica.
    pub outcomes: Vec<Applied>,
    /// The open transaction's session and the last request it ran.
    pub open_txn: Option<(ConnId, u64)>,
    /// Digests computed by the slot's checks: this replica's reports to propose.
    pub digests: Vec<(Slot, DatabaseDigest)>,
    /// The recorded checks, when the slot changed them.
    pub checks: Option<Arc<Checks>>,
}

/// Applies the slots the loop hands over, in order, and flushes them.
pub(crate) struct Applier<B: SqlBackend> {
    executor: Executor<B>,
    /// Values handed over and not yet flushed, by slot.
    values: BTreeMap<Slot, Value>,
    on_apply: Option<ApplyHook>,
    flush_every: Duration,
    retry: Duration,
    /// How long after its transaction's last command in the log a read may skip the log: half
    /// the idle-transaction timeout (see `executor::read`).
    read_window: Duration,
    flushed_at: Instant,
    checks_seen: u64,
    events: mpsc::UnboundedSender<Event>,
}

impl<B: SqlBackend> Applier<B> {
    pub(crate) fn new(executor: Executor<B>, cfg: &NodeConfig, events: mpsc::UnboundedSender<Event>) -> Self {
        let checks_seen = executor.checks().version();
        Applier {
            executor,
            values: BTreeMap::new(),
            on_apply: cfg.on_apply.clone(),
            flush_every: cfg.flush_every,
            retry: cfg.retry,
            read_window: cfg.idle_txn_timeout / 2,
            flushed_at: Instant::now(),
            checks_seen,
            events,
        }
    }

    /// Applies what arrives on `work` until the loop drops its end.
    pub(crate) async fn run(mut self, mut work: mpsc::UnboundedReceiver<Work>) {
        loop {
            loop {
                match work.try_recv() {
                    Ok(handed) => self.take(handed).await,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let next = self.executor.executed() + 1;
            if let Some(value) = self.values.get(&next).cloned() {
                self.apply(next, &value).await;
                if self.flushed_at.elapsed() >= self.flush_every {
                    self.flush().await;
                }
                continue;
            }
            let unflushed = self.executor.durable() < self.executor.applied();
            tokio::select! {
                handed = work.recv() => match handed {
                    Some(handed) => self.take(handed).await,
                    None => return,
                },
                () = tokio::time::sleep_until(self.flushed_at + self.flush_every), if unflushed => {
                    self.flush().await;
                }
            }
        }
    }

    /// Keeps a slot for its turn, or answers a read now: between two slots, where the executor
    /// stands at a slot boundary.
    async fn take(&mut self, work: Work) {
        match work {
            Work::Slot(slot, value) => {
                self.values.insert(slot, value);
            }
            Work::Read { command, reply } => {
                let outcome = match self.executor.read(&command, self.read_window).await {
                    Ok(outcome) => outcome,
                    Err(fault) => {
                        warn!(conn = %command.conn, "a read outside the log failed; it goes through the log: {fault}");
                        None
                    }
                };
                if let (Some(hook), Some(_)) = (&self.on_apply, &outcome) {
                    (hook.0)(Executed::Read);
                }
                let _ = reply.send(outcome);
            }
        }
    }

    async fn apply(&mut self, slot: Slot, value: &Value) {
        match self.executor.apply(slot, value).await {
            Ok(outcomes) => {
                if let Some(hook) = &self.on_apply {
                    (hook.0)(Executed::Slot(slot, value));
                }
                let checks = self.executor.checks();
                let changed = (checks.version() != self.checks_seen).then(|| Arc::new(checks.clone()));
                self.checks_seen = checks.version();
                let open_txn =
                    self.executor.open_transaction().map(|conn| (conn, self.executor.last_request(conn).unwrap_or(0)));
                let _ = self.events.send(Event::Applied(AppliedSlot {
                    applied: self.executor.applied(),
                    executed: self.executor.executed(),
                    outcomes,
                    open_txn,
                    digests: self.executor.take_digests(),
                    checks: changed,
                }));
                if planted!(DoneBeforeFlush) {
                    let applied = self.executor.applied();
                    self.values = self.values.split_off(&(applied + 1));
                    let _ = self.events.send(Event::Durable(applied));
                }
            }
            Err(fault) => self.fault(slot, fault).await,
        }
    }

    /// Makes the applied slots durable and reports them as `Done`; the values they needed are
    /// no longer kept.
    async fn flush(&mut self) {
        match self.executor.flush().await {
            Ok(()) => {
                self.flushed_at = Instant::now();
                let durable = self.executor.durable();
                self.values = self.values.split_off(&(durable + 1));
                let _ = self.events.send(Event::Durable(durable));
            }
            Err(fault) => self.fault(self.executor.executed() + 1, fault).await,
        }
    }

    /// Stops at `slot` after a database fault, and goes back to what the database committed once
    /// it answers again (or until the loop stops).
    async fn fault(&mut self, slot: Slot, fault: BackendFault) {
        warn!(slot, "cannot apply: {fault}");
        let _ = self.events.send(Event::Fault { slot, fault });
        // Until the loop stops: it drops its end of the events when it does.
        while !self.events.is_closed() {
            tokio::time::sleep(self.retry).await;
            match self.executor.recover().await {
                Ok(()) => {
                    let applied = self.executor.applied();
                    if self.values.keys().next().is_some_and(|&kept| kept > applied + 1) {
                        // Only a database that lost flushed commits (fsync off) gets here.
                        warn!(applied, "the database came back behind every slot kept: re-seed this replica");
                    }
                    let _ = self.events.send(Event::Recovered { applied });
                    return;
                }
                Err(e) => warn!("database still unavailable: {e}"),
            }
        }
    }
}
