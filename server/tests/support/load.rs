//! A write load for failure tests: clients of `barista-client` keep incrementing one counter,
//! failing over between replicas, while a test kills, restarts or damages replicas; then the
//! outcome is checked on every database, read directly:
//!
//! - the counter equals the number of increments applied, which is at least the number of
//!   acknowledged ones and at most that plus the attempts that ended in an error;
//! - no request was applied twice (every increment also logs its `(client, attempt)` pair, in a
//!   table without a unique key, so a repeated request would show as a duplicate);
//! - all databases are identical, restarted replicas' included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};

use super::{Cluster, REPLICAS, wait_for};

/// What the load did, as its clients saw it.
#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

/// The running load.
pub struct CounterLoad {
    counts: Arc<Counts>,
    clients: Vec<JoinHandle<()>>,
}

impl CounterLoad {
    /// Creates the counter tables through the cluster and starts `clients` incrementing clients.
    pub fn start(cluster: &Cluster, clients: u64) -> CounterLoad {
        let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
        let mut setup = Client::connect(&addrs, ClientConfig::default()).expect("connect");
        setup.execute("CREATE TABLE counter (k int PRIMARY KEY, n bigint NOT NULL)", &[]).expect("create counter");
        setup
            .execute("CREATE TABLE applied (client bigint NOT NULL, attempt bigint NOT NULL)", &[])
            .expect("create log");
        setup.execute("INSERT INTO counter VALUES (1, 0)", &[]).expect("insert");
        setup.close().expect("close");
        let counts = Arc::new(Counts::default());
        let clients = (0..clients).map(|id| incrementer(addrs.clone(), id, counts.clone())).collect();
        CounterLoad { counts, clients }
    }

    /// Increments acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.counts.acked.load(Ordering::Relaxed)
    }

    /// Waits until `n` more increments than now are acknowledged: the cluster takes writes.
    pub fn wait_for_more(&self, what: &str, n: u64) {
        let from = self.acked();
        wait_for(&format!("{n} acknowledged increments {what}"), Duration::from_secs(30), || {
            (self.acked() >= from + n).then_some(())
        });
    }

    /// Stops the clients, waits until every running replica applied the whole log, and checks the
    /// outcome on every database. Returns (acknowledged, failed, counter).
    pub fn stop_and_check(self, cluster: &Cluster) -> (u64, u64, u64) {
        self.counts.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().expect("client thread");
        }
        cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        let acked = self.counts.acked.load(Ordering::Relaxed);
        let failed = self.counts.failed.load(Ordering::Relaxed);
        let counter = cluster.query(0, "SELECT n FROM counter WHERE k = 1");
        let counter: u64 = counter.trim().parse().unwrap_or_else(|e| panic!("counter {counter:?}: {e}"));
        assert!(counter >= acked && counter <= acked + failed, "counter {counter}: acked {acked}, failed {failed}");
        let repeated = cluster
            .query(0, "SELECT client, attempt, count(*) FROM applied GROUP BY client, attempt HAVING count(*) > 1");
        assert_eq!(repeated, "", "requests applied twice");
        assert_eq!(cluster.query(0, "SELECT count(*) FROM applied").trim(), counter.to_string());
        let dump = "SELECT (SELECT n FROM counter), \
                    (SELECT string_agg(client || ':' || attempt, ',' ORDER BY client, attempt) FROM applied)";
        let first = cluster.query(0, dump);
        for i in 1..REPLICAS {
            assert_eq!(cluster.query(i, dump), first, "replica {i} differs from replica 0");
        }
        (acked, failed, counter)
    }
}

/// One client: increments the counter until told to stop, each request logging who sent it.
fn incrementer(addrs: Vec<String>, id: u64, counts: Arc<Counts>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let cfg = ClientConfig { backoff: Duration::from_millis(50), rounds: 20, ..ClientConfig::default() };
        let mut db = Client::connect(&addrs, cfg).expect("connect");
        let increment = "WITH logged AS (INSERT INTO applied (client, attempt) VALUES ($1, $2)) \
                         UPDATE counter SET n = n + 1 WHERE k = 1";
        let mut attempt = 0;
        while !counts.stop.load(Ordering::Relaxed) {
            attempt += 1;
            match db.execute(increment, &[Value::Int(id as i64), Value::Int(attempt)]) {
                Ok(_) => counts.acked.fetch_add(1, Ordering::Relaxed),
                // The client already failed over and retried; an error here means its retries ran
                // out during an election. The request may or may not have run: counted apart.
                Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    })
}
