//! Log purging on real processes (issue 6, item 4), counted where it matters: the slot nodes
//! under each replica's `/…/paxos/{machine}/store` in ZooKeeper, read with a ZooKeeper client of
//! the test's own (not through the store code under test).
//!
//! One cluster, retention set differently per replica so both behaviours show side by side:
//! replica 0 runs with the default `retain_slots = 0` (purge below `Min` only), replicas 1 and 2
//! with `retain_slots = RETAIN`.
//!
//! 1. All replicas up, a sustained write load: every store stays far below `RETAIN` slots while
//!    the log grows many times past it (`Min` alone keeps it bounded).
//! 2. One replica with retention stopped, the load goes on: `Min` stops advancing, so replica 0's
//!    store grows with every slot (today's default: unbounded while a replica is down), while the
//!    running replica with retention stays within `RETAIN` plus the slots in flight.
//! 3. The stopped replica restarts behind the purge point of the leader, but replica 0 still
//!    holds the log: it catches up from replica 0 instead of giving up, and never reports
//!    `needs_reseed` (only a replica behind every peer's purge point must be re-seeded; that case
//!    is `server/tests/reseed.rs`'s), while the cluster keeps taking writes.
//!
//! About 20 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};
use barista_server::local_cluster::LocalCluster;
use support::{Cluster, REPLICAS, wait_for};

/// `retain_slots` of replicas 1 and 2.
const RETAIN: u64 = 100;
/// Writer threads: enough that slots pile up faster than one client's round trips.
const WRITERS: u64 = 4;
/// With every replica up, no store may hold more than this many slots: well below `RETAIN`, so
/// it is `Min` that bounds them, not the retention setting.
const ALL_UP_MAX: usize = 50;
/// Slots a store with retention may hold beyond `RETAIN`: the undecided window and slots decided
/// but not yet applied or purged at the moment of counting.
const SLACK: usize = 80;

/// A write load through `barista-client`, counting acknowledged inserts.
struct Load {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(addrs: &[String]) -> Load {
        let (acked, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let threads = (0..WRITERS)
            .map(|id| {
                let (addrs, acked, stop) = (addrs.to_vec(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let cfg =
                        ClientConfig { backoff: Duration::from_millis(50), rounds: 20, ..ClientConfig::default() };
                    let mut db = Client::connect(&addrs, cfg).expect("connect");
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        db.execute("INSERT INTO t (w, n) VALUES ($1, $2)", &[Value::Int(id as i64), Value::Int(n)])
                            .expect("insert");
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load { acked, stop, threads }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("writer thread");
        }
    }
}

/// Counts the slot nodes of each replica's store in ZooKeeper.
struct StoreCounter {
    rt: tokio::runtime::Runtime,
    zk: zookeeper_client::Client,
}

impl StoreCounter {
    fn connect(port: u16) -> StoreCounter {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let zk = rt
            .block_on(zookeeper_client::Client::connector().connect(&format!("127.0.0.1:{port}")))
            .expect("connect to ZooKeeper");
        StoreCounter { rt, zk }
    }

    /// Slot nodes under replica `i`'s store.
    fn count(&self, i: usize) -> usize {
        let path = format!("/barista-test/paxos/{i}/store");
        self.rt.block_on(self.zk.list_children(&path)).unwrap_or_else(|e| panic!("listing {path}: {e}")).len()
    }
}

#[test]
fn purging_bounds_the_stored_log_and_a_replica_behind_the_leaders_purge_point_learns_from_another_peer() {
    let mut cluster = Cluster::start("purge", |i| {
        if i == 0 { Vec::new() } else { vec![("BARISTA_RETAIN_SLOTS".into(), RETAIN.to_string())] }
    });
    let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    let mut setup = Client::connect(&addrs, ClientConfig::default()).expect("connect");
    setup.execute("CREATE TABLE t (w bigint NOT NULL, n bigint NOT NULL)", &[]).expect("create");
    setup.close().expect("close");
    let zk = StoreCounter::connect(cluster.zk_port);
    let t0 = std::time::Instant::now();
    // The highest slot any running replica has seen (a stopped one does not answer).
    let top = |c: &Cluster| LocalCluster::reports(c).iter().flatten().map(|r| r.max_slot).max().unwrap_or(0);

    // 1. All up: the log grows to many times ALL_UP_MAX; no store ever holds more than that.
    let load = Load::start(&addrs);
    let start = top(&cluster);
    let mut peak = 0;
    wait_for("the log to grow by 5 * ALL_UP_MAX slots", Duration::from_secs(40), || {
        let counts: Vec<usize> = (0..REPLICAS).map(|i| zk.count(i)).collect();
        peak = peak.max(counts.iter().copied().max().unwrap_or(0));
        assert!(
            counts.iter().all(|c| *c <= ALL_UP_MAX),
            "a store holds too many slots with all replicas up: {counts:?}"
        );
        (top(&cluster) >= start + 5 * ALL_UP_MAX as u64).then_some(())
    });
    let metrics = cluster.admin_get(1, "/metrics");
    assert!(metrics.contains("barista_retained_slots{"), "{metrics}");
    assert!(metrics.contains("barista_floor_slot{"), "{metrics}");
    let r = cluster.report(1);
    assert!(r.floor > start && r.retained <= ALL_UP_MAX, "{r:?}");
    eprintln!("[{:?}] all up: log {start}..{}, at most {peak} slots stored per replica", t0.elapsed(), top(&cluster));

    // Make a replica with retention the leader, so the replica stopped next learns from a peer
    // that purged (replica 0 keeps everything while a replica is down).
    if cluster.leader() == 0 {
        cluster.stop_replica(0);
        wait_for("a new leader", Duration::from_secs(20), || {
            [1, 2].iter().find(|i| cluster.report(**i).role.as_deref() == Some("leader")).map(|_| ())
        });
        cluster.start_replica(0).unwrap_or_else(|e| panic!("restart replica 0: {e}"));
        cluster.wait_ready(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    }
    let leader = cluster.leader();
    let down = 3 - leader; // the other replica with retention
    assert!(leader != 0 && down != 0);

    // 2. One replica down: Min is stuck; replica 0 (no retention) keeps every slot, the leader
    //    (retention) at most RETAIN + SLACK.
    cluster.stop_replica(down);
    let left_at = zk.count(0);
    let stop_slot = top(&cluster);
    let mut leader_peak = 0;
    let grow = 3 * RETAIN;
    wait_for("the log to grow by 3 * RETAIN slots", Duration::from_secs(60), || {
        leader_peak = leader_peak.max(zk.count(leader));
        assert!(leader_peak <= RETAIN as usize + SLACK, "replica {leader} holds {leader_peak} slots");
        (top(&cluster) >= stop_slot + grow).then_some(())
    });
    let unbounded = zk.count(0);
    assert!(
        unbounded >= left_at + grow as usize - SLACK,
        "replica 0 (retain_slots 0) keeps the log since replica {down} stopped: {left_at} -> {unbounded}"
    );
    let floor0 = cluster.report(0).floor;
    assert!(floor0 <= stop_slot + 1, "replica 0's floor {floor0} passed the stopped replica's AP");
    eprintln!(
        "[{:?}] replica {down} down for {grow} slots: replica 0 (retain_slots 0) stores {unbounded} slots, \
         replica {leader} (retain_slots {RETAIN}) at most {leader_peak}",
        t0.elapsed()
    );

    // 3. It comes back behind the leader's purge point, not replica 0's: it learns from replica 0.
    cluster.start_replica(down).unwrap_or_else(|e| panic!("restart replica {down}: {e}"));
    let target = top(&cluster);
    let caught_up = wait_for("the restarted replica to catch up from replica 0", Duration::from_secs(60), || {
        let r = LocalCluster::report(&cluster, down).ok()?;
        assert!(!r.needs_reseed, "replica {down} gave up though replica 0 holds the log: {r:?}");
        (r.applied >= target).then_some(r)
    });
    assert!(cluster.admin_get(down, "/metrics").contains(&format!("barista_needs_reseed{{node=\"{down}\"}} 0")));
    let before = load.acked();
    wait_for("writes to go on", Duration::from_secs(20), || (load.acked() >= before + 50).then_some(()));
    load.stop();
    eprintln!("[{:?}] replica {down} caught up from replica 0 to slot {}", t0.elapsed(), caught_up.applied);
}
