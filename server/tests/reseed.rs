//! `barista reseed` on real processes (issue 6, item 3): a replica's database rebuilt from a
//! consistent snapshot of a healthy replica while the cluster keeps taking writes, then ordinary
//! catch-up; afterwards every database holds exactly the same data (`pg_dump --data-only`, Barista's
//! own tables and every sequence's value included) and every acknowledged write exactly once.
//!
//! The load mixes autocommit inserts and explicit transactions, some rolled back, all drawing
//! from a `bigserial` sequence: a sequence is the state a snapshot gets wrong most easily (it is
//! not versioned, and a rolled-back draw stays drawn).
//!
//! 1. `a_wiped_replica_is_reseeded_while_writes_go_on`: a follower's PostgreSQL is wiped and
//!    re-initialized (its ZooKeeper acceptor state stays), re-seeded from the other follower under
//!    load, restarted, and caught up.
//! 2. `a_replica_behind_the_purge_point_is_reseeded`: with `retain_slots` set, a follower that was
//!    down too long reports `needs_reseed`; the re-seed refuses a running target, a source that
//!    needs a re-seed itself and a non-empty target without `--force`; with `--force` it re-seeds
//!    the replica from an idle cluster (the other way to find a moment between slots), and the
//!    replica rejoins healthy and takes part in the writes that follow.
//!
//! About 30 s each, most of it starting PostgreSQL and ZooKeeper and waiting for the load.
#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};
use barista_server::local_cluster::LocalCluster;
use support::{Cluster, REPLICAS, wait_for};

/// The test table: every row names its writer and that writer's write number.
const CREATE: &str = "CREATE TABLE t (id bigserial PRIMARY KEY, w bigint NOT NULL, n bigint NOT NULL)";
/// Autocommit writers; writer `TXN_WRITER` writes in explicit transactions instead.
const WRITERS: u64 = 3;
const TXN_WRITER: u64 = WRITERS;

/// A write load through `barista-client`. Writer `w` writes `(w, n)` for n = 1, 2, ... and counts
/// what was acknowledged: autocommit inserts one at a time; the transaction writer two rows per
/// transaction, and rolls every third transaction back (its draws from the sequence stay drawn).
struct Load {
    acked: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts the writers; `pause` between writes paces each of them. Writer `w` goes on from
    /// write `after[w] + 1` (an earlier load's count; empty for a first load).
    fn start(addrs: &[String], pause: Duration, after: &[u64]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Vec<Arc<AtomicU64>> =
            (0..=WRITERS as usize).map(|w| Arc::new(AtomicU64::new(after.get(w).copied().unwrap_or(0)))).collect();
        let threads = (0..=WRITERS)
            .map(|w| {
                let (addrs, acked, stop) = (addrs.to_vec(), acked[w as usize].clone(), stop.clone());
                std::thread::spawn(move || {
                    let cfg =
                        ClientConfig { backoff: Duration::from_millis(50), rounds: 40, ..ClientConfig::default() };
                    let mut db = Client::connect(&addrs, cfg).expect("connect");
                    let insert = "INSERT INTO t (w, n) VALUES ($1, $2)";
                    let mut round = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        round += 1;
                        let n = acked.load(Ordering::Relaxed) as i64;
                        if w == TXN_WRITER {
                            db.begin().expect("begin");
                            db.execute(insert, &[Value::Int(w as i64), Value::Int(n + 1)]).expect("insert in txn");
                            db.execute(insert, &[Value::Int(w as i64), Value::Int(n + 2)]).expect("insert in txn");
                            if round % 3 == 0 {
                                db.rollback().expect("rollback");
                            } else {
                                db.commit().expect("commit");
                                acked.fetch_add(2, Ordering::Relaxed);
                            }
                        } else {
                            db.execute(insert, &[Value::Int(w as i64), Value::Int(n + 1)]).expect("insert");
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        std::thread::sleep(pause);
                    }
                    db.close().expect("close");
                })
            })
            .collect();
        Load { acked, stop, threads }
    }

    /// Writes acknowledged so far, all writers together (earlier loads' included).
    fn acked(&self) -> u64 {
        self.acked.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// Waits until `more` further writes are acknowledged.
    fn wait_for_more(&self, more: u64, what: &str) {
        let target = self.acked() + more;
        wait_for(what, Duration::from_secs(60), || (self.acked() >= target).then_some(()));
    }

    /// Stops the writers; what each had acknowledged (earlier loads' included).
    fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a writer failed");
        }
        self.acked.iter().map(|a| a.load(Ordering::Relaxed)).collect()
    }
}

fn addrs(cluster: &Cluster) -> Vec<String> {
    cluster.replicas.iter().map(|r| r.client.clone()).collect()
}

fn create_table(cluster: &Cluster) {
    let mut setup = Client::connect(&addrs(cluster), ClientConfig::default()).expect("connect");
    setup.execute(CREATE, &[]).expect("create");
    setup.close().expect("close");
}

/// Runs `barista reseed` for `target` from `from` while `load` runs, and checks that writes
/// were acknowledged while it ran; its output.
fn reseed_under_load(cluster: &Cluster, load: &Load, target: usize, from: usize, extra: &[&str]) -> String {
    let before = load.acked();
    let out = cluster.reseed(target, from, extra).unwrap_or_else(|e| panic!("barista reseed: {e}"));
    let during = load.acked() - before;
    eprintln!("{out}writes acknowledged while the re-seed ran: {during}");
    assert!(during > 0, "no write was acknowledged while the re-seed ran:\n{out}");
    assert!(out.contains(&format!("Re-seeded replica {target} from replica {from} at AP ")), "{out}");
    out
}

/// Starts `target` again and waits until it is healthy, needs no re-seed, and every running
/// replica has applied everything decided.
fn rejoin(cluster: &mut Cluster, target: usize) {
    cluster.start_replica(target).unwrap_or_else(|e| panic!("starting replica {target}: {e}"));
    cluster.wait_ready(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let r = cluster.report(target);
    assert!(!r.needs_reseed, "replica {target} still needs a re-seed: {r:?}");
}

/// After the load stopped: all databases identical, and every acknowledged write there once.
fn check_identical(cluster: &Cluster, acked: &[u64]) {
    let ap = cluster.wait_applied(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let dumps: Vec<String> =
        (0..REPLICAS).map(|i| cluster.dump_data(i).unwrap_or_else(|e| panic!("dumping replica {i}: {e}"))).collect();
    for (i, dump) in dumps.iter().enumerate().skip(1) {
        assert!(
            *dump == dumps[0],
            "replica {i}'s data differs from replica 0's at AP {ap}:\n{}",
            diff(&dumps[0], dump)
        );
    }
    assert!(dumps[0].contains("setval('public.t_id_seq'"), "the dump has the sequence:\n{}", dumps[0]);
    // Every acknowledged write exactly once (the rows of a rolled-back transaction never).
    let rows = cluster.query(0, "SELECT w, n, count(*) FROM t GROUP BY w, n ORDER BY w, n");
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for line in rows.lines() {
        let cols: Vec<u64> = line.split('|').map(|c| c.parse().expect("a number")).collect();
        assert_eq!(cols[2], 1, "row ({}, {}) is there {} times", cols[0], cols[1], cols[2]);
        seen.entry(cols[0]).or_default().push(cols[1]);
    }
    for (w, count) in acked.iter().enumerate() {
        let expected: Vec<u64> = (1..=*count).collect();
        assert!(
            seen.get(&(w as u64)).map_or(*count == 0, |ns| *ns == expected),
            "writer {w}: acknowledged 1..={count}, found {:?}",
            seen.get(&(w as u64)).map(|ns| (ns.len(), ns.first(), ns.last()))
        );
    }
    eprintln!(
        "all {REPLICAS} databases identical at AP {ap}; {} acknowledged writes each there once",
        acked.iter().sum::<u64>()
    );
}

/// The first lines where two dumps differ.
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let only_a: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).take(5).collect();
    let only_b: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).take(5).collect();
    format!("only in the first: {only_a:?}\nonly in the second: {only_b:?}")
}

/// The two followers of the current leader: (the one to re-seed, the source).
fn followers(cluster: &Cluster) -> (usize, usize) {
    let leader = cluster.leader();
    ((leader + 1) % REPLICAS, (leader + 2) % REPLICAS)
}

#[test]
fn a_wiped_replica_is_reseeded_while_writes_go_on() {
    let mut cluster = Cluster::start("reseed-wipe", |_| Vec::new());
    create_table(&cluster);
    let load = Load::start(&addrs(&cluster), Duration::ZERO, &[]);
    load.wait_for_more(200, "writes before the wipe");
    let (target, source) = followers(&cluster);

    cluster.stop_replica(target);
    cluster.wipe_database(target).unwrap_or_else(|e| panic!("wiping replica {target}'s database: {e}"));
    assert_eq!(cluster.query(target, "SELECT to_regclass('public.t') IS NULL").trim(), "t", "the wipe left the table");
    load.wait_for_more(200, "writes while the replica is down");

    let out = reseed_under_load(&cluster, &load, target, source, &[]);
    assert!(out.contains("database is empty"), "{out}");
    rejoin(&mut cluster, target);
    load.wait_for_more(200, "writes after the replica rejoined");
    let acked = load.stop();
    check_identical(&cluster, &acked);
}

#[test]
fn a_replica_behind_the_purge_point_is_reseeded() {
    const RETAIN: u64 = 100;
    let mut cluster = Cluster::start("reseed-purged", |_| vec![("BARISTA_RETAIN_SLOTS".into(), RETAIN.to_string())]);
    create_table(&cluster);
    let (target, source) = followers(&cluster);

    // Down while the log grows well past the retention window: it comes back behind the purge
    // point of its peers.
    cluster.stop_replica(target);
    let load = Load::start(&addrs(&cluster), Duration::ZERO, &[]);
    let top = |c: &Cluster| LocalCluster::reports(c).iter().flatten().map(|r| r.applied).max().unwrap_or(0);
    let stopped_at = top(&cluster);
    wait_for("the log to grow by 3 * RETAIN slots", Duration::from_secs(60), || {
        (top(&cluster) >= stopped_at + 3 * RETAIN).then_some(())
    });
    let acked_fast = load.stop();
    cluster.start_replica(target).unwrap_or_else(|e| panic!("restarting replica {target}: {e}"));
    wait_for("the restarted replica to report needs_reseed", Duration::from_secs(30), || {
        LocalCluster::report(&cluster, target).ok().filter(|r| r.needs_reseed)
    });

    // The refusals: a running target; a source that needs a re-seed itself; a database that is
    // not empty, without --force.
    let running = cluster.reseed(target, source, &[]).expect_err("re-seeding a running replica");
    assert!(running.to_string().contains("stop that `barista serve`"), "{running}");
    let lagging = cluster.reseed(source, target, &[]).expect_err("copying from a replica that needs a re-seed");
    assert!(lagging.to_string().contains("needs a re-seed itself"), "{lagging}");
    cluster.stop_replica(target);
    let full = cluster.reseed(target, source, &[]).expect_err("re-seeding over data without --force");
    assert!(full.to_string().contains("--force"), "{full}");

    // The cluster is idle now: the snapshot is taken without waiting for the end of a slot.
    let out = cluster.reseed(target, source, &["--force"]).unwrap_or_else(|e| panic!("barista reseed --force: {e}"));
    eprintln!("{out}");
    assert!(out.contains("--force") && out.contains("taken while the source was idle"), "{out}");
    rejoin(&mut cluster, target);
    // It takes part again: writes go on, and it applies them with the others.
    let load = Load::start(&addrs(&cluster), Duration::from_millis(5), &acked_fast);
    load.wait_for_more(100, "writes after the replica rejoined");
    let acked = load.stop();
    check_identical(&cluster, &acked);
}
