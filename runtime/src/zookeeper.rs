//! The production [`AcceptorStore`]: an acceptor's promises and votes in ZooKeeper (DESIGN.md
//! section 3). Only in the normal build: zookeeper-client runs its own task on real tokio and real
//! sockets, which the simulation cannot host (it uses the stand-in in `barista-sim` instead).
//!
//! # Layout
//! Under `{root}/paxos/{machine}/`:
//! - `store/{seq}`: slot `seq`'s [`Paxo`](barista_core::Paxo). `{seq}` is zero-padded to 20
//!   digits (the width of `u64::MAX`), so ZooKeeper's names sort in slot order.
//! - `promise`: the Multi-Paxos onward [`Promise`], beside `store/`. Its existence also says
//!   that this replica's acceptor state is here at all: the first persist creates the layout,
//!   and a load that finds no promise node reports no state (`None`), which the node reads as
//!   "lost" if its database says it ran before (see [`crate::store::AcceptorStore`]).
//!
//! Each record is a version byte followed by postcard (serde) bytes. A record with a version
//! this build does not know fails [`ZkStore::try_load`] with an error naming the node, instead of
//! being misread.
//!
//! # Writes
//! A `persist` is one ZooKeeper multi-op (one round trip) when it fits in one request, else a few,
//! in order (see Limits). It creates or sets each slot
//! node (which one is decided from an in-memory set of existing slot nodes, re-read whenever it
//! may be wrong), then deletes the first nodes below `purge_below`; the rest of a large purge
//! follows in multi-ops of [`ZkConfig::purge_chunk`] deletes.
//!
//! Every multi-op also rewrites the promise node with the data version this store last saw (the
//! *fence*). So writes land strictly in the order this store issued them: a request whose answer
//! was lost (a timeout, a dropped connection) and that reaches ZooKeeper later fails instead of
//! overwriting newer state, and `load` bumps the fence before it reads, so nothing a crashed
//! predecessor left in flight can land after a restarted node read its state. A write that finds
//! the fence moved (or a node it did not expect) re-reads the view and retries, at most twice;
//! then it fails with [`ZkStoreError::Conflict`]: another process writes this machine's state.
//! The fence does not stop such a process (each conflict is logged): run one per machine name.
//!
//! # Limits
//! ZooKeeper refuses a request over `jute.maxbuffer` (1 MiB - 1 by default, server and client
//! side), and one persist batch can hold many slots (a window of accepts, or a whole catch-up
//! reply of decided slots) of up to `batch_max` commands each: no fixed setting keeps every batch
//! under the limit. So a batch whose request would exceed [`ZkConfig::max_request_bytes`] is
//! written in several fenced multi-ops, in order, the promise in the first. That gives up
//! atomicity across slots, which the acceptor does not need: the node sends nothing of a batch
//! until all of it is stored, and each record on its own is a state the acceptor may be in (its
//! ballots only grow), so a crash between two requests leaves votes nobody has heard of, as a
//! crash just before sending would. Each record is still written whole; one slot whose record
//! alone cannot fit in a request is refused before any IO ([`ZkStoreError::RecordTooLarge`]).
//!
//! # Unreachable ZooKeeper
//! Every call is bounded: connecting by [`ZkConfig::connect_timeout`] (with fail-eagerly, so a
//! refused connection fails at once), each request by [`ZkConfig::op_timeout`], and while the
//! client is reconnecting calls fail at once instead of queueing. The client reconnects within
//! its session by itself; an expired session is replaced by a new one on the next call. Nothing is
//! lost either way: all nodes are persistent.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use barista_core::{AcceptorState, Persist, Promise, Slot};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tracing::{info, warn};
use zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, Error as ZkError, MultiWriteError, MultiWriteResult, SessionState,
};

use crate::store::{AcceptorStore, StoreError};

/// Default of [`ZkConfig::max_request_bytes`]: below ZooKeeper's default `jute.maxbuffer` of
/// 1,048,575 bytes, with room for the estimate's slack.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_000_000;

/// Encoding version written in front of every record.
const RECORD_VERSION: u8 = 1;

/// Digits of a slot node's name: `u64::MAX` has 20.
const SLOT_DIGITS: usize = 20;

/// Bytes of a multi-op request besides its operations: length prefix (4), request header (8),
/// closing multi header (9).
const REQUEST_OVERHEAD: usize = 21;

/// Upper bound on an operation's bytes besides its path and data: multi header (9), path and
/// data length prefixes (8), a create's flags (4) and ACL (`world:anyone`, 27). Rounded up, so
/// the estimate never undercounts.
const OP_OVERHEAD: usize = 64;

/// Upper bound on an encoded promise record: version byte, then a ballot (two varints) and a slot
/// (one varint), at most 10 bytes each.
const PROMISE_RECORD_MAX: usize = 32;

/// Conflicting writes tolerated within one call before it gives up (see [`ZkStoreError::Conflict`]).
const CONFLICT_RETRIES: usize = 2;

/// Every node is persistent (they must survive the session) and open: access control is the
/// network's, as for the rest of the cluster.
const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// Settings of a [`ZkStore`].
#[derive(Clone, Debug)]
pub struct ZkConfig {
    /// ZooKeeper connect string, e.g. `127.0.0.1:2181` or `zk1:2181,zk2:2181,zk3:2181`.
    pub connect: String,
    /// Path under which `paxos/{machine}` lives; default `/barista`.
    pub root: String,
    /// This replica's name in the layout (one path component), e.g. its node id.
    pub machine: String,
    /// Session timeout asked of ZooKeeper (it clamps it to 2..20 ticks).
    pub session_timeout: Duration,
    /// Longest wait to open a session.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request.
    pub op_timeout: Duration,
    /// Largest request this store sends; a persist batch that needs more is refused. Must not
    /// exceed ZooKeeper's `jute.maxbuffer`.
    pub max_request_bytes: usize,
    /// Most deletes in one purge multi-op.
    pub purge_chunk: usize,
    /// Slot reads in flight at once during `load`.
    pub load_concurrency: usize,
}

impl ZkConfig {
    /// Defaults for replica `machine` of the ZooKeeper ensemble at `connect`.
    pub fn new(connect: impl Into<String>, machine: impl Into<String>) -> ZkConfig {
        ZkConfig {
            connect: connect.into(),
            root: "/barista".into(),
            machine: machine.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(5),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            purge_chunk: 256,
            load_concurrency: 64,
        }
    }

    fn validate(&self) -> Result<(), ZkStoreError> {
        let bad = |setting, reason: &str| Err(ZkStoreError::Config { setting, reason: reason.into() });
        if self.connect.trim().is_empty() {
            return bad("connect", "empty connect string");
        }
        if !self.root.starts_with('/') {
            return bad("root", "must be an absolute path");
        }
        if self.root != "/" && self.root.split('/').skip(1).any(|c| !valid_component(c)) {
            return bad("root", "empty, '.' or '..' path component, or a trailing '/'");
        }
        if !valid_component(&self.machine) || self.machine.contains('/') {
            return bad("machine", "must be one non-empty path component, not '.' or '..'");
        }
        let durations = [
            ("session_timeout", self.session_timeout),
            ("connect_timeout", self.connect_timeout),
            ("op_timeout", self.op_timeout),
        ];
        if let Some((setting, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return bad(setting, "must be positive");
        }
        if self.max_request_bytes < 4096 {
            return bad("max_request_bytes", "below 4096 bytes no useful batch fits");
        }
        if self.purge_chunk == 0 {
            return bad("purge_chunk", "must be positive");
        }
        if self.load_concurrency == 0 {
            return bad("load_concurrency", "must be positive");
        }
        Ok(())
    }
}

fn valid_component(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains('\0')
}

/// Why a record could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The node holds no bytes.
    #[error("empty record")]
    Empty,
    /// Written by another encoding version.
    #[error("record encoding version {0} is not supported (this build reads version {RECORD_VERSION})")]
    Version(u8),
    /// Corrupt or truncated.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// What went wrong in a [`ZkStore`]. Converted to [`StoreError`] at the trait boundary.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ZkStoreError {
    /// A setting is unusable.
    #[error("invalid ZooKeeper store setting `{setting}`: {reason}")]
    Config {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The client lost its connection and is reconnecting (within its session).
    #[error("not connected to ZooKeeper at {connect}: reconnecting")]
    Disconnected {
        /// The connect string.
        connect: String,
    },
    /// ZooKeeper (or the client) reported an error.
    #[error("ZooKeeper {op}: {source}")]
    ZooKeeper {
        /// What the store was doing.
        op: &'static str,
        /// The client's error.
        source: ZkError,
    },
    /// No answer in time. The request may still be applied later; the fence makes that harmless.
    #[error("ZooKeeper {op}: no answer within {after:?}")]
    Timeout {
        /// What the store was doing.
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// One slot's record does not fit in a request. Nothing of the batch was written.
    #[error(
        "slot {slot}'s record needs a ZooKeeper request of about {bytes} bytes, over the {limit}-byte \
         limit (jute.maxbuffer); nothing of its batch was written (the core's batch_bytes_max keeps \
         a slot below it)"
    )]
    RecordTooLarge {
        /// The slot.
        slot: Slot,
        /// Estimated request size with that record alone.
        bytes: usize,
        /// [`ZkConfig::max_request_bytes`].
        limit: usize,
    },
    /// A stored record cannot be decoded.
    #[error("ZooKeeper node {path}: {error}")]
    Record {
        /// The node.
        path: String,
        /// Why.
        error: RecordError,
    },
    /// A value could not be encoded.
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// A node under `store/` whose name is not a slot number.
    #[error("unexpected ZooKeeper node {path} in the acceptor store (not a {SLOT_DIGITS}-digit slot number)")]
    UnexpectedNode {
        /// The node.
        path: String,
    },
    /// The layout this store created is gone.
    #[error("ZooKeeper node {path} is missing: the acceptor state was deleted while in use")]
    Missing {
        /// The node.
        path: String,
    },
    /// Writes kept finding state this store did not write, even after re-reading it.
    #[error(
        "writes to {path} keep conflicting ({source}): another process may be writing this machine's \
         acceptor state"
    )]
    Conflict {
        /// The node that conflicted last.
        path: String,
        /// ZooKeeper's error for it.
        source: ZkError,
    },
    /// ZooKeeper answered something the protocol does not allow.
    #[error("unexpected ZooKeeper answer: {0}")]
    Unexpected(String),
}

impl From<ZkStoreError> for StoreError {
    fn from(e: ZkStoreError) -> StoreError {
        StoreError(e.to_string())
    }
}

/// What this store believes is in ZooKeeper. Dropped whenever a request's outcome is unknown, and
/// re-read before the next write.
#[derive(Debug)]
struct View {
    /// The promise node's bytes (rewritten unchanged by writes that carry no new promise).
    promise: Vec<u8>,
    /// The promise node's data version: the fence every write checks.
    fence: i32,
    /// Slot nodes that exist.
    existing: BTreeSet<Slot>,
}

/// Acceptor state in ZooKeeper. Construction does no IO: the session is opened on first use and
/// reopened on demand, so a node can start (and report itself unhealthy) while ZooKeeper is down.
#[derive(Debug)]
pub struct ZkStore {
    cfg: ZkConfig,
    promise_path: String,
    store_path: String,
    client: Option<Client>,
    /// The directories and the promise node exist (this store object created or found them).
    layout_ready: bool,
    view: Option<View>,
    /// A purge that an earlier call started but did not finish.
    pending_purge: Option<Slot>,
}

impl ZkStore {
    /// A store for `cfg` (not connected yet).
    pub fn new(cfg: ZkConfig) -> Result<ZkStore, ZkStoreError> {
        cfg.validate()?;
        let base = format!("{}/paxos/{}", cfg.root.trim_end_matches('/'), cfg.machine);
        Ok(ZkStore {
            promise_path: format!("{base}/promise"),
            store_path: format!("{base}/store"),
            cfg,
            client: None,
            layout_ready: false,
            view: None,
            pending_purge: None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ZkConfig {
        &self.cfg
    }

    /// The session, while connected (for status and diagnostics).
    pub fn session_id(&self) -> Option<i64> {
        let client = self.client.as_ref()?;
        (client.state() == SessionState::SyncConnected).then(|| client.session_id().0)
    }

    /// The node that holds `slot`.
    pub fn slot_path(&self, slot: Slot) -> String {
        format!("{}/{}", self.store_path, slot_name(slot))
    }

    /// The promise node.
    pub fn promise_path(&self) -> &str {
        &self.promise_path
    }

    /// [`AcceptorStore::load`] with a typed error.
    pub async fn try_load_found(&mut self) -> Result<Option<AcceptorState>, ZkStoreError> {
        let client = self.client().await?;
        let result = self.load_on(&client).await;
        if result.is_err() {
            self.view = None;
        }
        result
    }

    /// The stored state, empty if there is none (for tools; a node needs to tell the two apart,
    /// see [`ZkStore::try_load_found`]).
    pub async fn try_load(&mut self) -> Result<AcceptorState, ZkStoreError> {
        Ok(self.try_load_found().await?.unwrap_or_default())
    }

    /// [`AcceptorStore::persist`] with a typed error.
    pub async fn try_persist(&mut self, batch: &Persist) -> Result<(), ZkStoreError> {
        if batch.is_empty() && self.pending_purge.is_none() && self.layout_ready {
            return Ok(());
        }
        let purge = batch.purge_below;
        // A slot below the batch's own purge is deleted by it at once (`AcceptorState::apply`
        // inserts, then purges), so it is not written.
        let mut writes = Vec::with_capacity(batch.slots.len());
        for (slot, paxo) in &batch.slots {
            if purge.is_none_or(|below| *slot >= below) {
                writes.push((*slot, encode_record(paxo)?));
            }
        }
        let promise = batch.promise.as_ref().map(encode_record).transpose()?;
        let requests = self.split(&writes)?;
        let client = self.client().await?;
        if !self.layout_ready {
            // The first write makes this replica's state exist (see the module docs).
            self.create_layout(&client).await?;
            self.layout_ready = true;
        }
        let result = self.persist_on(&client, promise, &writes, &requests, purge).await;
        if result.is_err() {
            // The failed request may still have been applied (only its answer lost): re-read
            // before the next write instead of guessing which nodes exist.
            self.view = None;
        }
        result
    }

    /// The connected client, opening a session if there is none (or it ended).
    async fn client(&mut self) -> Result<Client, ZkStoreError> {
        if let Some(client) = &self.client {
            let state = client.state();
            if state == SessionState::SyncConnected {
                return Ok(client.clone());
            }
            if !state.is_terminated() {
                // The client's task is reconnecting within the session. A request sent now would
                // wait in its queue until then, past any timeout: refuse at once instead.
                return Err(ZkStoreError::Disconnected { connect: self.cfg.connect.clone() });
            }
            warn!(session = %client.session_id(), %state, "ZooKeeper session ended; opening a new one");
            self.client = None;
            self.view = None;
        }
        let connector = Client::connector().with_session_timeout(self.cfg.session_timeout).with_fail_eagerly();
        let client = timed("connect", self.cfg.connect_timeout, connector.connect(&self.cfg.connect))
            .await?
            .map_err(zk("connect"))?;
        info!(connect = %self.cfg.connect, session = %client.session_id(), "ZooKeeper session open");
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Creates `store/` (and its parents) and an empty promise record, if missing.
    async fn create_layout(&self, client: &Client) -> Result<(), ZkStoreError> {
        let t = self.cfg.op_timeout;
        timed("create the store directory", t, client.mkdir(&self.store_path, &PERSISTENT))
            .await?
            .map_err(zk("create the store directory"))?;
        let empty = encode_record(&Promise::default())?;
        match timed("create the promise record", t, client.create(&self.promise_path, &empty, &PERSISTENT)).await? {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(zk("create the promise record")(e)),
        }
    }

    /// Re-reads the promise node and the list of slot nodes.
    async fn refresh_view(&mut self, client: &Client) -> Result<(), ZkStoreError> {
        let t = self.cfg.op_timeout;
        let missing = |path: &str, op| {
            let path = path.to_string();
            move |e| if e == ZkError::NoNode { ZkStoreError::Missing { path } } else { zk(op)(e) }
        };
        let (promise, stat) = timed("read the promise record", t, client.get_data(&self.promise_path))
            .await?
            .map_err(missing(&self.promise_path, "read the promise record"))?;
        let names = timed("list the slots", t, client.list_children(&self.store_path))
            .await?
            .map_err(missing(&self.store_path, "list the slots"))?;
        let mut existing = BTreeSet::new();
        for name in names {
            let slot = parse_slot_name(&name)
                .ok_or_else(|| ZkStoreError::UnexpectedNode { path: format!("{}/{name}", self.store_path) })?;
            existing.insert(slot);
        }
        self.view = Some(View { promise, fence: stat.version, existing });
        Ok(())
    }

    fn view(&self) -> Result<&View, ZkStoreError> {
        self.view.as_ref().ok_or_else(|| ZkStoreError::Unexpected("no view of the store to write against".into()))
    }

    async fn load_on(&mut self, client: &Client) -> Result<Option<AcceptorState>, ZkStoreError> {
        let mut conflicts = 0;
        let promise = loop {
            match self.refresh_view(client).await {
                Err(ZkStoreError::Missing { path }) if path == self.promise_path => {
                    // Never written, or deleted: no state (a later persist recreates the layout).
                    self.layout_ready = false;
                    return Ok(None);
                }
                result => result?,
            }
            let view = self.view()?;
            let promise: Promise = decode_record(&view.promise)
                .map_err(|error| ZkStoreError::Record { path: self.promise_path.clone(), error })?;
            // Bump the fence before reading: a write a crashed predecessor left in flight fails
            // from now on instead of landing after this read.
            let bump = view.promise.clone();
            match self.commit(client, "fence", &bump, &[], &[]).await? {
                Committed::Done => break promise,
                Committed::Stale { path, source } => {
                    conflicts += 1;
                    if conflicts > CONFLICT_RETRIES {
                        return Err(ZkStoreError::Conflict { path, source });
                    }
                    warn!(%path, %source, "acceptor state changed while loading it; reading it again");
                }
            }
        };
        let view = self.view()?;
        let t = self.cfg.op_timeout;
        // Pipelined reads on the one connection: `load_concurrency` requests in flight.
        let targets: Vec<(Slot, String)> = view.existing.iter().map(|&slot| (slot, self.slot_path(slot))).collect();
        let mut reads = futures::stream::iter(targets.into_iter().map(|(slot, path)| {
            let read = client.get_data(&path);
            async move { (slot, timed("read a slot", t, read).await, path) }
        }))
        .buffered(self.cfg.load_concurrency);
        let mut slots = BTreeMap::new();
        while let Some((slot, read, path)) = reads.next().await {
            match read? {
                Ok((data, _)) => {
                    let paxo: barista_core::Paxo =
                        decode_record(&data).map_err(|error| ZkStoreError::Record { path, error })?;
                    slots.insert(slot, paxo);
                }
                // The fence keeps this store's own writes out; only another writer can delete a
                // slot between the listing and the read.
                Err(ZkError::NoNode) => {
                    return Err(ZkStoreError::Conflict { path, source: ZkError::NoNode });
                }
                Err(e) => return Err(zk("read a slot")(e)),
            }
        }
        self.layout_ready = true;
        Ok(Some(AcceptorState { promise, slots }))
    }

    /// Cuts `writes` into requests under the size limit, as `(start, end, bytes)` ranges of it
    /// (one empty range for a batch without writes). Fails, before any IO, if one record alone
    /// does not fit.
    fn split(&self, writes: &[(Slot, Vec<u8>)]) -> Result<Vec<(usize, usize, usize)>, ZkStoreError> {
        let slot_path_len = self.store_path.len() + 1 + SLOT_DIGITS;
        let empty = REQUEST_OVERHEAD + op_bytes(self.promise_path.len(), PROMISE_RECORD_MAX);
        let limit = self.cfg.max_request_bytes;
        let mut requests = Vec::new();
        let (mut start, mut bytes) = (0, empty);
        for (i, (slot, data)) in writes.iter().enumerate() {
            let op = op_bytes(slot_path_len, data.len());
            if empty + op > limit {
                return Err(ZkStoreError::RecordTooLarge { slot: *slot, bytes: empty + op, limit });
            }
            if bytes + op > limit {
                requests.push((start, i, bytes));
                (start, bytes) = (i, empty);
            }
            bytes += op;
        }
        requests.push((start, writes.len(), bytes));
        Ok(requests)
    }

    async fn persist_on(
        &mut self,
        client: &Client,
        mut promise: Option<Vec<u8>>,
        writes: &[(Slot, Vec<u8>)],
        requests: &[(usize, usize, usize)],
        purge: Option<Slot>,
    ) -> Result<(), ZkStoreError> {
        if self.view.is_none() {
            self.refresh_view(client).await?;
        }
        // An earlier batch's purge comes before this batch's writes, as it was issued.
        if let Some(below) = self.pending_purge {
            self.purge(client, below).await?;
            self.pending_purge = None;
        }
        for (n, &(start, end, bytes)) in requests.iter().enumerate() {
            if start == end && promise.is_none() {
                continue; // a batch that only purges: the purge requests carry the fence
            }
            let last = n + 1 == requests.len();
            // The promise rides in the first request; the later ones rewrite the fence unchanged.
            self.write_request(client, promise.take(), &writes[start..end], purge.filter(|_| last), bytes).await?;
        }
        if let Some(below) = purge {
            // Remembered until done: a later call finishes it before its own writes.
            self.pending_purge = Some(below);
            self.purge(client, below).await?;
            self.pending_purge = None;
        }
        Ok(())
    }

    /// One request of a persist: the fence (the new promise, if any), `writes`, and as many of
    /// the first deletes below `purge` as fit in it.
    async fn write_request(
        &mut self,
        client: &Client,
        promise: Option<Vec<u8>>,
        writes: &[(Slot, Vec<u8>)],
        purge: Option<Slot>,
        bytes: usize,
    ) -> Result<(), ZkStoreError> {
        let mut conflicts = 0;
        loop {
            let view = self.view()?;
            let fence = promise.clone().unwrap_or_else(|| view.promise.clone());
            // The first deletes of the purge ride in the same request when they fit: a batch
            // usually purges a few slots, and this saves a round trip. ZooKeeper applies a
            // multi-op's operations in order, so they still come after the writes.
            let mut deletes = Vec::new();
            if let Some(below) = purge {
                let mut total = bytes;
                for &slot in view.existing.range(..below).take(self.cfg.purge_chunk) {
                    total += op_bytes(self.store_path.len() + 1 + SLOT_DIGITS, 0);
                    if total > self.cfg.max_request_bytes {
                        break;
                    }
                    deletes.push(slot);
                }
            }
            match self.commit(client, "persist", &fence, writes, &deletes).await? {
                Committed::Done => return Ok(()),
                Committed::Stale { path, source } => {
                    conflicts += 1;
                    if conflicts > CONFLICT_RETRIES {
                        return Err(ZkStoreError::Conflict { path, source });
                    }
                    warn!(%path, %source, "acceptor state changed behind this store; re-reading it and retrying");
                    self.refresh_view(client).await?;
                }
            }
        }
    }

    /// Deletes every slot node below `below`, `purge_chunk` per request.
    async fn purge(&mut self, client: &Client, below: Slot) -> Result<(), ZkStoreError> {
        let mut conflicts = 0;
        loop {
            let view = self.view()?;
            let chunk: Vec<Slot> = view.existing.range(..below).take(self.cfg.purge_chunk).copied().collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let fence = view.promise.clone();
            match self.commit(client, "purge", &fence, &[], &chunk).await? {
                Committed::Done => conflicts = 0,
                Committed::Stale { path, source } => {
                    conflicts += 1;
                    if conflicts > CONFLICT_RETRIES {
                        return Err(ZkStoreError::Conflict { path, source });
                    }
                    warn!(%path, %source, "acceptor state changed behind this store; re-reading it and retrying");
                    self.refresh_view(client).await?;
                }
            }
        }
    }

    /// One fenced multi-op: the promise node rewritten with `fence` bytes at the version in the
    /// view, then `writes` (create or set), then `deletes`. Updates the view when it lands.
    async fn commit(
        &mut self,
        client: &Client,
        op: &'static str,
        fence: &[u8],
        writes: &[(Slot, Vec<u8>)],
        deletes: &[Slot],
    ) -> Result<Committed, ZkStoreError> {
        let view = self.view()?;
        let mut multi = client.new_multi_writer();
        let build = zk("build a multi-op");
        multi.add_set_data(&self.promise_path, fence, Some(view.fence)).map_err(build)?;
        for (slot, data) in writes {
            let path = self.slot_path(*slot);
            if view.existing.contains(slot) {
                multi.add_set_data(&path, data, None).map_err(build)?;
            } else {
                multi.add_create(&path, data, &PERSISTENT).map_err(build)?;
            }
        }
        for slot in deletes {
            multi.add_delete(&self.slot_path(*slot), None).map_err(build)?;
        }
        let results = match timed(op, self.cfg.op_timeout, multi.commit()).await? {
            Ok(results) => results,
            // The view was wrong: a node exists that it says does not (or the reverse), or the
            // fence moved. Nothing of this request was applied.
            Err(MultiWriteError::OperationFailed { index, source })
                if matches!(source, ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode) =>
            {
                let path = match index.checked_sub(1) {
                    None => self.promise_path.clone(),
                    Some(i) if i < writes.len() => self.slot_path(writes[i].0),
                    Some(i) => deletes.get(i - writes.len()).map_or_else(String::new, |s| self.slot_path(*s)),
                };
                return Ok(Committed::Stale { path, source });
            }
            Err(e) => return Err(zk(op)(e.into())),
        };
        let Some(MultiWriteResult::SetData { stat }) = results.first() else {
            return Err(ZkStoreError::Unexpected(format!("{op}: the fence's result is missing ({results:?})")));
        };
        let fence_version = stat.version;
        if let Some(view) = self.view.as_mut() {
            view.fence = fence_version;
            view.promise = fence.to_vec();
            view.existing.extend(writes.iter().map(|(slot, _)| *slot));
            for slot in deletes {
                view.existing.remove(slot);
            }
        }
        Ok(Committed::Done)
    }
}

/// How a fenced multi-op ended, when ZooKeeper answered.
enum Committed {
    Done,
    /// Refused because the view was out of date.
    Stale {
        path: String,
        source: ZkError,
    },
}

impl AcceptorStore for ZkStore {
    async fn load(&mut self) -> Result<Option<AcceptorState>, StoreError> {
        Ok(self.try_load_found().await?)
    }

    async fn persist(&mut self, batch: &Persist) -> Result<(), StoreError> {
        Ok(self.try_persist(batch).await?)
    }
}

/// A slot node's name: the slot zero-padded to 20 digits.
pub fn slot_name(slot: Slot) -> String {
    format!("{slot:0SLOT_DIGITS$}")
}

/// The slot a node name stands for; `None` unless it is exactly 20 digits.
pub fn parse_slot_name(name: &str) -> Option<Slot> {
    if name.len() != SLOT_DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// A record: the version byte, then postcard.
pub fn encode_record<T: Serialize>(value: &T) -> Result<Vec<u8>, ZkStoreError> {
    let mut out = vec![RECORD_VERSION];
    let body = postcard::to_allocvec(value).map_err(|e| ZkStoreError::Encode(e.to_string()))?;
    out.extend(body);
    Ok(out)
}

/// Reads a record written by [`encode_record`].
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    let (version, body) = bytes.split_first().ok_or(RecordError::Empty)?;
    if *version != RECORD_VERSION {
        return Err(RecordError::Version(*version));
    }
    postcard::from_bytes(body).map_err(|e| RecordError::Malformed(e.to_string()))
}

/// Estimated bytes of one operation on `path_len`-byte path with `data_len` bytes of data.
fn op_bytes(path_len: usize, data_len: usize) -> usize {
    OP_OVERHEAD + path_len + data_len
}

/// `fut`, or [`ZkStoreError::Timeout`] after `after`.
async fn timed<T>(op: &'static str, after: Duration, fut: impl Future<Output = T>) -> Result<T, ZkStoreError> {
    tokio::time::timeout(after, fut).await.map_err(|_| ZkStoreError::Timeout { op, after })
}

fn zk(op: &'static str) -> impl Fn(ZkError) -> ZkStoreError + Copy {
    move |source| ZkStoreError::ZooKeeper { op, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barista_core::{Ballot, Paxo, Value};

    #[test]
    fn slot_names_are_padded_so_they_sort_numerically() {
        let names: Vec<String> = [100, 9, 10, 0, u64::MAX].into_iter().map(slot_name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        let slots: Vec<Slot> = sorted.iter().map(|n| parse_slot_name(n).expect("a slot name")).collect();
        assert_eq!(slots, vec![0, 9, 10, 100, u64::MAX]);
        assert_eq!(slot_name(9), "00000000000000000009");
        for bad in
            ["9", "0000000000000000000x", "000000000000000000009", "-0000000000000000009", "99999999999999999999"]
        {
            assert_eq!(parse_slot_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_round_trip_and_unknown_versions_are_errors() {
        let b = Ballot { round: u64::MAX, node: u32::MAX };
        let paxo = Paxo { n_p: b, n_a: b, v_a: Some(Value::Noop), decided: true };
        let bytes = encode_record(&paxo).expect("encode");
        assert_eq!(decode_record::<Paxo>(&bytes), Ok(paxo));
        let promise = Promise { ballot: b, from: u64::MAX };
        let bytes = encode_record(&promise).expect("encode");
        assert!(bytes.len() <= PROMISE_RECORD_MAX, "{} bytes", bytes.len());
        assert_eq!(decode_record::<Promise>(&bytes), Ok(promise));
        assert_eq!(decode_record::<Promise>(&[]), Err(RecordError::Empty));
        let mut future = bytes.clone();
        future[0] = 9;
        assert_eq!(decode_record::<Promise>(&future), Err(RecordError::Version(9)));
        assert!(RecordError::Version(9).to_string().contains("version 9 is not supported"));
        assert!(matches!(decode_record::<Promise>(&bytes[..3]), Err(RecordError::Malformed(_))));
    }

    #[test]
    fn settings_are_checked() {
        let ok = ZkConfig::new("127.0.0.1:2181", "0");
        ZkStore::new(ok.clone()).expect("defaults are valid");
        let cases: Vec<(&str, ZkConfig)> = vec![
            ("machine", ZkConfig { machine: "a/b".into(), ..ok.clone() }),
            ("machine", ZkConfig { machine: "..".into(), ..ok.clone() }),
            ("machine", ZkConfig { machine: String::new(), ..ok.clone() }),
            ("root", ZkConfig { root: "barista".into(), ..ok.clone() }),
            ("root", ZkConfig { root: "/a//b".into(), ..ok.clone() }),
            ("root", ZkConfig { root: "/a/".into(), ..ok.clone() }),
            ("connect", ZkConfig { connect: " ".into(), ..ok.clone() }),
            ("op_timeout", ZkConfig { op_timeout: Duration::ZERO, ..ok.clone() }),
            ("purge_chunk", ZkConfig { purge_chunk: 0, ..ok.clone() }),
            ("max_request_bytes", ZkConfig { max_request_bytes: 100, ..ok.clone() }),
        ];
        for (setting, cfg) in cases {
            match ZkStore::new(cfg) {
                Err(ZkStoreError::Config { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{setting}: {other:?}"),
            }
        }
        let store = ZkStore::new(ZkConfig { root: "/".into(), ..ok }).expect("root /");
        assert_eq!(store.promise_path(), "/paxos/0/promise");
        assert_eq!(store.slot_path(7), "/paxos/0/store/00000000000000000007");
    }

    #[tokio::test]
    async fn an_oversized_record_is_refused_before_any_io() {
        // Nothing listens here: a refused batch must not even try to connect.
        let mut store = ZkStore::new(ZkConfig::new("127.0.0.1:1", "0")).expect("store");
        let b = Ballot { round: 1, node: 0 };
        let paxo = |bytes: usize| {
            let command = barista_core::Command { origin: 0, id: 0, payload: vec![0u8; bytes].into() };
            Paxo { n_p: b, n_a: b, v_a: Some(Value::batch(vec![command])), decided: false }
        };
        let batch = Persist { promise: None, slots: vec![(1, paxo(10)), (2, paxo(1_200_000))], purge_below: None };
        let err = store.try_persist(&batch).await.expect_err("refused");
        assert!(matches!(err, ZkStoreError::RecordTooLarge { slot: 2, limit: DEFAULT_MAX_REQUEST_BYTES, .. }), "{err}");
    }

    #[test]
    fn a_large_batch_is_split_into_requests_under_the_limit_in_order() {
        let store =
            ZkStore::new(ZkConfig { max_request_bytes: 10_000, ..ZkConfig::new("127.0.0.1:1", "0") }).expect("store");
        let writes: Vec<(Slot, Vec<u8>)> = (1..=10).map(|slot| (slot, vec![0u8; 3_000])).collect();
        let requests = store.split(&writes).expect("split");
        assert!(requests.len() > 1, "{requests:?}");
        assert_eq!(requests.first().map(|r| r.0), Some(0));
        assert_eq!(requests.last().map(|r| r.1), Some(writes.len()));
        assert!(requests.windows(2).all(|w| w[0].1 == w[1].0), "contiguous, in order: {requests:?}");
        assert!(requests.iter().all(|r| r.2 <= 10_000 && r.0 < r.1), "{requests:?}");
        assert_eq!(
            store.split(&[]).expect("split"),
            vec![(0, 0, REQUEST_OVERHEAD + op_bytes(store.promise_path.len(), PROMISE_RECORD_MAX))]
        );
    }
}
