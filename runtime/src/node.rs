//! The node: one replica's event loop, driving `barista-core` with real (or simulated) IO.
//!
//! ```text
//!   ticks ─┐                            0. transport.send    (early: accepts, heartbeats)
//!   peers ─┼─> Replica ──take_ready──> 1. store.persist   (retried until it succeeds; no vote
//!   client ┘                            2. transport.send    leaves before it is durable)
//!   requests                            3. hand decided slots to the applier
//!        ^                                         |
//!        └── answers, AP, Done <── applier: executor.apply, every 50 ms executor.flush
//! ```
//!
//! A read of the session's own open transaction takes a shorter way: the service puts it on the
//! applier's hand-over itself, and the applier answers it between two slots without the log if
//! the executor may (see `executor::read`), or says no and the service submits it.
//!
//! The same loop runs in production and in the simulation; only the store, backend, transport and
//! clock differ. A store that is down stops the loop at step 1 (the replica stops voting and
//! reports itself unhealthy). The applier ([`crate::applier`]) runs beside the loop, so a persist
//! and the application of earlier slots overlap; a database fault stops it at that slot, which is
//! retried, never skipped, while the replica goes on voting.
//!
//! The database commits asynchronously and one flush waits for the disk for every slot applied
//! since the last one (see [`Executor::flush`]). A client is answered once its slot is applied,
//! from a slot the replicated log holds whatever happens to this database; only `Done`, which
//! lets the log forget the slot, waits for the disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use barista_core::{Config, Persist, ProposeError, RecoverError, Replica, RoleKind, Slot, Status};
use bytes::Bytes;
use futures::FutureExt;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::applier::{Applier, Event, Work};
use crate::clock::Clock;
use crate::command::{ClientCommand, ConnId, Op};
use crate::executor::{Applied, Executor, Outcome};
use crate::sql::{BackendFault, SqlBackend};
use crate::store::{AcceptorStore, StoreError};
use crate::transport::Transport;
use crate::verify::watch::Watch;
use crate::verify::{CheckSummary, Checks, Divergence};

/// Messages stepped per `drive` at most, so ticks and client requests still get their turn
/// under a flood.
const MAX_STEPS_PER_DRIVE: usize = 256;

/// Settings of the node loop around the core's own [`Config`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The core's configuration (id, cluster size, protocol, timers in ticks, limits).
    pub core: Config,
    /// Length of one core tick.
    pub tick: Duration,
    /// Wait between retries of a failed store write or database operation.
    pub retry: Duration,
    /// An explicit transaction idle this long is rolled back through the log.
    pub idle_txn_timeout: Duration,
    /// Applied slots are flushed to disk, and reported as `Done`, at most this often.
    pub flush_every: Duration,
    /// Most client requests queued for the loop.
    pub request_queue: usize,
    /// Called with every slot this replica applies (the simulation checks that all replicas
    /// apply the same value in every slot) and every read it answers without the log (counted
    /// in the metrics).
    pub on_apply: Option<ApplyHook>,
}

/// What an [`ApplyHook`] is called with.
#[derive(Clone, Copy, Debug)]
pub enum Executed<'a> {
    /// A slot of the log, applied.
    Slot(Slot, &'a barista_core::Value),
    /// A read of the open transaction, answered without the log (see `executor::read`).
    Read,
}

/// A callback for every applied slot and every read answered without the log.
#[derive(Clone)]
pub struct ApplyHook(pub std::sync::Arc<ApplyFn>);

/// The function behind an [`ApplyHook`].
pub type ApplyFn = dyn Fn(Executed<'_>) + Send + Sync;

impl std::fmt::Debug for ApplyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplyHook")
    }
}

impl NodeConfig {
    /// Defaults around `core`.
    pub fn new(core: Config) -> NodeConfig {
        NodeConfig {
            core,
            tick: Duration::from_millis(10),
            retry: Duration::from_millis(100),
            idle_txn_timeout: Duration::from_secs(30),
            flush_every: Duration::from_millis(50),
            request_queue: 10_000,
            on_apply: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The acceptor store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database could not be opened.
    #[error(transparent)]
    Backend(#[from] BackendFault),
    /// The persisted state is unusable.
    #[error(transparent)]
    Recover(#[from] barista_core::RecoverError),
}

/// Whether the node can do its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Voting and applying.
    Healthy,
    /// Cannot persist votes: not voting until the store is back.
    StoreUnavailable(String),
    /// Cannot apply the next slot: stopped at it until the database is back.
    DatabaseUnavailable {
        /// The slot it is stopped at.
        slot: Slot,
        /// The fault.
        fault: String,
    },
    /// A divergence check found this replica's data different from the majority's: it applies
    /// the log but serves no client until a later check finds it agreeing (see [`crate::verify`]).
    Diverged(Divergence),
}

/// What the node reports about itself.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// The core's view.
    pub core: Status,
    /// AP: committed in the database through this slot.
    pub applied: Slot,
    /// Health.
    pub health: Health,
    /// The session holding the cluster's open transaction, as of this replica's last applied slot.
    pub open_txn: Option<ConnId>,
    /// The most recent divergence checks, oldest first, as this replica applied their reports.
    pub checks: std::sync::Arc<Vec<CheckSummary>>,
}

/// A request from the client-facing service.
pub(crate) enum Request {
    Submit { command: ClientCommand, reply: Reply },
}

/// Where a submitted command's outcome goes.
type Reply = oneshot::Sender<Result<Outcome, SubmitError>>;

/// Why a command could not be submitted.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SubmitError {
    /// Too many undecided commands at this replica.
    #[error("replica overloaded: {0}")]
    Overloaded(String),
    /// The command does not fit in one log slot; it was not proposed.
    #[error("{0}")]
    TooLarge(String),
    /// The node stopped.
    #[error("replica is shutting down")]
    Stopped,
}

/// A handle on a running node, for the client-facing service and for status.
#[derive(Clone)]
pub struct NodeHandle {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<NodeStatus>,
    /// The applier's hand-over, for reads outside the log.
    to_applier: mpsc::WeakUnboundedSender<Work>,
}

impl NodeHandle {
    /// Submits `command` and waits until this replica applied it. The returned future may be
    /// dropped (e.g. on a client timeout); the command still runs once decided.
    pub async fn submit(&self, command: ClientCommand) -> Result<Outcome, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::Submit { command, reply }).await.map_err(|_| SubmitError::Stopped)?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    /// Answers `command` on this replica without the log, if it is a read of the open
    /// transaction that may be answered so (see `executor::read`); `None` when it must be
    /// submitted.
    pub async fn read(&self, command: ClientCommand) -> Option<Outcome> {
        let (reply, rx) = oneshot::channel();
        // Straight to the applier: the consensus loop has no part in it. A stopped node has no
        // applier to upgrade to, and a stopping one drops the reply: the read is then submitted.
        self.to_applier.upgrade()?.send(Work::Read { command, reply }).ok()?;
        rx.await.ok().flatten()
    }

    /// The open transaction's session, as of the node's latest status (without copying it).
    pub fn open_txn(&self) -> Option<ConnId> {
        self.status.borrow().open_txn
    }

    /// The node's latest status.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }

    /// Waits until `pred` holds for the node's status (or the node stopped).
    pub async fn wait_for(&self, mut pred: impl FnMut(&NodeStatus) -> bool) -> Option<NodeStatus> {
        let mut rx = self.status.clone();
        loop {
            if pred(&rx.borrow_and_update()) {
                return Some(rx.borrow().clone());
            }
            rx.changed().await.ok()?;
        }
    }
}

/// The open transaction the node is timing, and since when it made no progress.
struct IdleTxn {
    conn: ConnId,
    last_request: u64,
    since: Instant,
    /// When this node last proposed the abort. It proposes again after another timeout: the
    /// proposal can be lost with a leader, and nothing else would ever end the transaction.
    proposed_at: Option<Instant>,
}

/// One replica: the consensus loop and, beside it, the applier (see [`crate::applier`]). Built by
/// [`Node::start`].
pub struct Node<S: AcceptorStore, B: SqlBackend, C: Clock> {
    driver: Driver<S, C>,
    applier: Applier<B>,
    /// The applier's end of the hand-over.
    work: mpsc::UnboundedReceiver<Work>,
}

/// The consensus loop: steps the core, persists, sends, hands decided slots to the applier and
/// answers clients from what it applied.
struct Driver<S: AcceptorStore, C: Clock> {
    cfg: NodeConfig,
    replica: Replica,
    store: S,
    clock: C,
    requests: mpsc::Receiver<Request>,
    waiters: BTreeMap<(ConnId, u64), Vec<Reply>>,
    /// Decided slots handed to the applier, through this one.
    handed_upto: Slot,
    to_applier: mpsc::UnboundedSender<Work>,
    events: mpsc::UnboundedReceiver<Event>,
    /// The executor's AP, as the applier last reported it.
    applied: Slot,
    /// The open transaction's session and its last request, as the applier last reported them.
    open_txn: Option<(ConnId, u64)>,
    /// The recorded divergence checks, as the applier last reported them.
    recorded_checks: Arc<Checks>,
    health: Health,
    /// The replica started by rejoining, and the persist that ends the rejoin (the fence as its
    /// own promise, and everything it learned) has not landed yet. Until it has, the node still
    /// says `rejoining`: a crash in between leaves the store empty and the replica rejoins
    /// again, so an operator must not yet take another replica's state away.
    rejoin_unpersisted: bool,
    idle: Option<IdleTxn>,
    checks: Watch,
    status: watch::Sender<NodeStatus>,
}

impl<S: AcceptorStore, B: SqlBackend, C: Clock> Node<S, B, C> {
    /// Rebuilds the replica from its store and database (before it answers anyone) and returns
    /// the loop, ready to [`Node::run`], with a handle on it.
    pub async fn start(
        cfg: NodeConfig,
        mut store: S,
        backend: B,
        clock: C,
    ) -> Result<(Node<S, B, C>, NodeHandle), StartError> {
        // Which replica this is, told by two marks that are lost independently: the database's
        // bookkeeping and the acceptor store's state. Neither: brand new (the store is marked
        // first, so a crash before the bookkeeping exists leaves a replica that is still new,
        // with an empty store). The store's: a restart. Only the database's: the acceptor state
        // was deleted, and the replica may have voted in ways nobody remembers, so it rejoins.
        let ran_before = Executor::ran_before(&backend).await?;
        let stored = store.load().await?;
        if stored.is_none() && !ran_before {
            store.persist(&Persist::default()).await?;
        }
        let executor = Executor::open(backend).await?;
        let (node, applied) = (cfg.core.id, executor.applied());
        let replica = match stored {
            Some(state) => {
                info!(node, applied, "node recovered");
                Replica::recover(cfg.core.clone(), state, applied)?
            }
            None if ran_before => {
                warn!(
                    node,
                    applied,
                    "acceptor state lost (none in the store, but the database served as this replica): \
                     rejoining, not voting until every peer is fenced"
                );
                Replica::rejoin(cfg.core.clone(), applied).map_err(RecoverError::Config)?
            }
            None => {
                info!(node, "a new replica: no acceptor state and a new database");
                Replica::new(cfg.core.clone()).map_err(RecoverError::Config)?
            }
        };
        let (requests_tx, requests) = mpsc::channel(cfg.request_queue);
        let (to_applier, work) = mpsc::unbounded_channel();
        // Weak: the loop's end alone keeps the hand-over open, so the applier stops with it.
        let reads = to_applier.downgrade();
        let (events_tx, events) = mpsc::unbounded_channel();
        let recorded_checks = Arc::new(executor.checks().clone());
        let mut checks = Watch::new(cfg.core.id, cfg.core.nodes);
        checks.refresh(&recorded_checks);
        let initial = NodeStatus {
            core: replica.status(),
            applied,
            health: checks.health(&Health::Healthy),
            open_txn: None,
            checks: checks.summaries.clone(),
        };
        let initial_rejoining = initial.core.rejoining;
        let (status, status_rx) = watch::channel(initial);
        let applier = Applier::new(executor, &cfg, events_tx);
        let driver = Driver {
            handed_upto: applied,
            to_applier,
            events,
            applied,
            open_txn: None,
            recorded_checks,
            cfg,
            replica,
            store,
            clock,
            requests,
            waiters: BTreeMap::new(),
            health: Health::Healthy,
            rejoin_unpersisted: initial_rejoining,
            idle: None,
            checks,
            status,
        };
        Ok((Node { driver, applier, work }, NodeHandle { requests: requests_tx, status: status_rx, to_applier: reads }))
    }

    /// Runs over `transport` until every [`NodeHandle`] is dropped or the transport closes.
    pub async fn run<T: Transport>(self, transport: T) {
        let Node { driver, applier, work } = self;
        let node = driver.cfg.core.id;
        tokio::join!(driver.run(transport), applier.run(work));
        info!(node, "node stopped");
    }
}

impl<S: AcceptorStore, C: Clock> Driver<S, C> {
    async fn run<T: Transport>(mut self, mut transport: T) {
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.replica.tick();
                    self.check_idle_txn();
                    self.propose_reports();
                }
                envelope = transport.recv() => match envelope {
                    Some(envelope) => {
                        self.replica.step(envelope);
                        // Step every message already here before one `drive`: their state
                        // changes share one persist, which is the node's bottleneck. One persist
                        // per message let a burst (retransmissions after a partition heals) queue
                        // up for many seconds.
                        for _ in 1..MAX_STEPS_PER_DRIVE {
                            match transport.recv().now_or_never() {
                                Some(Some(envelope)) => self.replica.step(envelope),
                                _ => break,
                            }
                        }
                    }
                    None => break,
                },
                request = self.requests.recv() => match request {
                    Some(request) => self.handle(request),
                    None => break,
                },
                event = self.events.recv() => match event {
                    Some(event) => {
                        self.on_event(event);
                        while let Ok(event) = self.events.try_recv() {
                            self.on_event(event);
                        }
                    }
                    None => break,
                },
            }
            self.drive(&mut transport).await;
        }
        // Dropping `self` drops the hand-over, which stops the applier.
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Submit { command, reply } => {
                let key = (command.conn, command.request_seq);
                match self.replica.propose(Bytes::from(command.encode())) {
                    Ok(_) => self.waiters.entry(key).or_default().push(reply),
                    Err(ProposeError::Backpressure(n)) => {
                        let _ = reply.send(Err(SubmitError::Overloaded(format!("{n} commands undecided"))));
                    }
                    Err(e @ ProposeError::TooLarge { .. }) => {
                        let _ = reply.send(Err(SubmitError::TooLarge(format!(
                            "request too large to replicate: {e} (a slot is one ZooKeeper record); \
                             send less in one request, e.g. split the batch"
                        ))));
                    }
                }
            }
        }
    }

    /// Early messages, persist, then the other messages, then apply: the order `Ready` demands;
    /// then, when due, the flush that makes the applied slots `Done`.
    async fn drive<T: Transport>(&mut self, transport: &mut T) {
        let mut ready = self.replica.take_ready();
        // Out while the persist runs: a leader's accepts reach the followers, whose writes then
        // overlap this one. Nothing is stepped before the persist finished (this loop is serial),
        // as `Ready` requires.
        for envelope in ready.early.drain(..) {
            transport.send(envelope);
        }
        if planted!(ReplyBeforePersist) {
            for envelope in ready.messages.drain(..) {
                transport.send(envelope);
            }
        }
        if !ready.persist.is_empty() {
            while let Err(e) = self.store.persist(&ready.persist).await {
                self.set_health(Health::StoreUnavailable(e.to_string()));
                tokio::time::sleep(self.cfg.retry).await;
            }
            // Nothing stepped the replica during the persist, so its status is the one this
            // `Ready` was taken in: if the rejoin had ended, this persist carried its end. Asked
            // only while a rejoin is pending: building the status on every persist is waste.
            if self.rejoin_unpersisted && !self.replica.status().rejoining {
                self.rejoin_unpersisted = false;
            }
        }
        for envelope in ready.messages {
            transport.send(envelope);
        }
        if let Some((last, _)) = ready.decided.last() {
            self.hand_over(*last);
        }
        if matches!(self.health, Health::StoreUnavailable(_)) {
            self.set_health(Health::Healthy);
        }
        self.publish();
    }

    /// Hands the applier every decided slot through `upto` it does not have yet. The values come
    /// from the replica, which keeps every slot above this replica's `Done`.
    fn hand_over(&mut self, upto: Slot) {
        while self.handed_upto < upto {
            let slot = self.handed_upto + 1;
            let Some(value) = self.replica.decided(slot).cloned() else {
                warn!(slot, "decided slot missing from the replica; waiting for it");
                return;
            };
            if self.to_applier.send(Work::Slot(slot, value)).is_err() {
                return; // the applier stopped: the node is stopping
            }
            self.handed_upto = slot;
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Applied(slot) => {
                self.database_back();
                self.applied = slot.applied;
                // What paces a leader's proposals (`executor_ahead_max`): the executor's progress,
                // not AP, which stays put while a transaction is open. Reported as AP, every
                // statement of an open transaction looked like one more slot the executor had
                // not run, and a leader held the next one back for up to two ticks.
                self.replica.executed(slot.executed);
                let owner_changed = self.open_txn.map(|(conn, _)| conn) != slot.open_txn.map(|(conn, _)| conn);
                self.open_txn = slot.open_txn;
                if let Some(checks) = slot.checks {
                    self.recorded_checks = checks;
                }
                if owner_changed {
                    // Before the answers: a client whose BEGIN is answered may read at once, and
                    // the service asks the status whether its session holds the open transaction
                    // (else the read goes through the log).
                    self.publish();
                }
                self.answer(slot.outcomes);
                self.checks.add_digests(slot.digests);
                self.checks.refresh(&self.recorded_checks);
                self.propose_reports();
            }
            Event::Durable(done) => {
                self.database_back();
                self.replica.applied(done);
            }
            Event::Fault { slot, fault } => {
                self.set_health(Health::DatabaseUnavailable { slot, fault: fault.to_string() })
            }
            Event::Recovered { applied } => {
                self.database_back();
                self.applied = applied;
                self.open_txn = None;
            }
        }
    }

    fn database_back(&mut self) {
        if let Health::DatabaseUnavailable { slot, .. } = self.health {
            info!(slot, "database back; applying again");
            self.set_health(Health::Healthy);
        }
    }

    fn answer(&mut self, applied: Vec<Applied>) {
        for Applied { conn, request_seq, outcome } in applied {
            for reply in self.waiters.remove(&(conn, request_seq)).into_iter().flatten() {
                let _ = reply.send(Ok(outcome.clone())); // the client may have given up
            }
        }
        // Time the open transaction from its last real progress, as the executor sees it: a late
        // duplicate of an older request is answered "stale" and is no progress, and an abort
        // must name the request the executor will compare against.
        self.idle = match (self.open_txn, self.idle.take()) {
            (None, _) => None,
            (Some((conn, last_request)), idle) => match idle {
                Some(idle) if idle.conn == conn && idle.last_request == last_request => Some(idle),
                _ => Some(IdleTxn { conn, last_request, since: Instant::now(), proposed_at: None }),
            },
        };
    }

    /// Proposes rolling back an open transaction that has been idle too long. The leader does it.
    /// In paxos mode every replica may (the executor ignores a stale or repeated abort), but they
    /// take turns, half a timeout apart, starting from one picked by the connection id: five
    /// replicas proposing at the same moment duelled for the same slot and starved the log
    /// (simulation seed 156).
    fn check_idle_txn(&mut self) {
        let role = self.replica.status().role;
        let (me, nodes) = (self.cfg.core.id, self.cfg.core.nodes);
        let Some(idle) = self.idle.as_mut() else { return };
        let turn = match role {
            RoleKind::Leader => 0,
            RoleKind::Proposer => (me + nodes - (idle.conn.0 % u64::from(nodes)) as u32) % nodes,
            RoleKind::Follower | RoleKind::Candidate => return,
        };
        let timeout = self.cfg.idle_txn_timeout;
        let first = timeout + timeout * turn / 2;
        let due = idle.since.elapsed() >= first && idle.proposed_at.is_none_or(|at| at.elapsed() >= timeout);
        if !due {
            return;
        }
        idle.proposed_at = Some(Instant::now());
        let command = ClientCommand {
            conn: idle.conn,
            request_seq: 0,
            timestamp_us: self.clock.now_us(),
            op: Op::AbortIdle { since_request: idle.last_request },
        };
        warn!(conn = %idle.conn, "transaction idle for {:?}: rolling it back", self.cfg.idle_txn_timeout);
        if let Err(e) = self.replica.propose(Bytes::from(command.encode())) {
            warn!("could not propose the idle abort: {e}");
            idle.proposed_at = None;
        }
    }

    /// Proposes this replica's divergence-check reports that are due (see `verify::watch`).
    fn propose_reports(&mut self) {
        let txn_open = self.open_txn.is_some();
        for report in self.checks.due_reports(&self.recorded_checks, txn_open, self.clock.now_us()) {
            if let Err(e) = self.replica.propose(Bytes::from(report.encode())) {
                warn!("could not propose this replica's checksum report: {e}");
            }
        }
    }

    fn set_health(&mut self, health: Health) {
        if self.health != health {
            warn!(node = self.cfg.core.id, ?health, "health changed");
            self.health = health;
            self.publish();
        }
    }

    fn publish(&mut self) {
        let mut core = self.replica.status();
        core.rejoining |= self.rejoin_unpersisted;
        let status = NodeStatus {
            core,
            applied: self.applied,
            health: self.checks.health(&self.health),
            open_txn: self.open_txn.map(|(conn, _)| conn),
            checks: self.checks.summaries.clone(),
        };
        self.status.send_replace(status);
    }
}
