//! A real three-replica Barista on one machine, for integration tests: a thin layer over
//! [`barista_server::local_cluster`] (which `barista demo` runs on too) that panics instead of
//! returning errors, names its temporary directory after the test, and connects Thrift clients.
//!
//! Cleanup is the library's: `Drop` stops the replicas by PID and the services through their
//! scripts, also when a test fails, and a watcher process does it should the test process die
//! first; then the directory is removed. Nothing is ever stopped by process name.
//!
//! PostgreSQL and ZooKeeper must be installed (`scripts/setup.sh`): without them the tests fail
//! and say so, never skip.
#![allow(dead_code)] // each test binary uses part of this module

use std::net::{TcpStream, ToSocketAddrs};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use barista_server::admin::{Report, http_get};
use barista_server::api::generated::{BaristaSyncClient, DBException};
use barista_server::local_cluster::{LocalCluster, Options};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{
    ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, TTcpChannel, WriteHalf,
};

pub use barista_server::local_cluster::REPLICAS;

pub mod load;

/// The generated Thrift client over a buffered TCP connection.
pub type Client = BaristaSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<TTcpChannel>>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<TTcpChannel>>>,
>;

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit` saying `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The services and three replicas. Dropping it stops everything and removes its directory.
/// The library's methods (addresses, `replicas`, `logs`, `stop_replica`, ...) are reachable
/// through `Deref`; the ones here panic instead of returning errors.
pub struct Cluster(LocalCluster);

impl Deref for Cluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.0
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.0
    }
}

impl Cluster {
    /// Starts ZooKeeper, three PostgreSQL clusters and three replicas, and waits until every
    /// replica is healthy and they agree on a leader. `env(i)` adds environment variables to
    /// replica `i` (every configuration key is also one).
    pub fn start(label: &str, env: impl Fn(usize) -> Vec<(String, String)>) -> Cluster {
        let dir = std::env::temp_dir().join(format!("barista-server-test-{}-{label}", std::process::id()));
        let mut opts = Options::new(dir, env!("CARGO_BIN_EXE_barista"));
        opts.zookeeper_root = "/barista-test".into();
        // Requests may wait out a slow shared machine.
        let timers = ["--request-timeout-ms", "20000"];
        opts.extra_args = vec![timers.iter().map(|s| s.to_string()).collect(); REPLICAS];
        opts.extra_env = (0..REPLICAS).map(env).collect();
        // Test data need not survive a power failure.
        opts.fsync = false;
        opts.remove_dir = true;
        Cluster(
            LocalCluster::start(opts).unwrap_or_else(|e| panic!("starting the cluster (run scripts/setup.sh?): {e}")),
        )
    }

    /// Every replica's report (panics if one does not answer).
    pub fn reports(&self) -> Vec<Report> {
        (0..REPLICAS).map(|i| self.report(i)).collect()
    }

    /// Replica `i`'s report (panics if it does not answer).
    pub fn report(&self, i: usize) -> Report {
        self.0.report(i).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The leader's node id.
    pub fn leader(&self) -> usize {
        self.reports()[0].leader.expect("a leader") as usize
    }

    /// `GET path` on replica `i`'s admin address.
    pub fn admin_get(&self, i: usize, path: &str) -> String {
        http_get(&self.replicas[i].admin, path, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A Thrift client connected to replica `i`.
    pub fn client(&self, i: usize) -> Client {
        connect(&self.replicas[i].client)
    }

    /// Runs SQL on replica `i`'s own PostgreSQL directly; unaligned rows, `|` between columns.
    pub fn query(&self, i: usize, sql: &str) -> String {
        self.0.query(i, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stops replica `i` (SIGTERM by PID, SIGKILL after 5 s) and waits for its exit.
    pub fn stop_replica(&mut self, i: usize) {
        self.0.stop_replica(i);
    }
}

/// A Thrift client on `addr`, with a read timeout so a test never hangs on a silent server.
pub fn connect(addr: &str) -> Client {
    let sock = addr.to_socket_addrs().expect("an address").next().expect("resolves");
    let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("set a read timeout");
    let (read, write) = TTcpChannel::with_stream(stream).split().expect("split the channel");
    BaristaSyncClient::new(
        TBinaryInputProtocol::new(TBufferedReadTransport::new(read), true),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true),
    )
}

/// The `DBException` in a call's error (panics on any other error).
pub fn db_exception<T: std::fmt::Debug>(result: thrift::Result<T>) -> DBException {
    match result {
        Err(thrift::Error::User(e)) => match e.downcast::<DBException>() {
            Ok(ex) => *ex,
            Err(other) => panic!("not a DBException: {other:?}"),
        },
        other => panic!("expected a DBException, got {other:?}"),
    }
}
