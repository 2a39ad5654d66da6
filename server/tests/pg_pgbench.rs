//! pgbench, unchanged, through Barista's PostgreSQL-protocol port of a live three-replica cluster
//! (`pg_auth = trust`, the default):
//!
//! 1. `pgbench -i`, with its default steps `dtgvp`: drops and creates the tables, loads the rows
//!    client-side with `COPY ... FROM STDIN` inside `BEGIN` ... `COMMIT` (the front end sends them
//!    as INSERTs), runs `VACUUM ANALYZE` on each table (outside a transaction on every replica)
//!    and adds the primary keys.
//! 2. The TPC-B-like script for 5 s with 4 clients in each of `-M simple` (replica 0) and
//!    `-M extended` (replica 1), and 3 s with 2 clients in `-M prepared` (replica 2): no
//!    transaction may fail.
//! 3. The four pgbench tables are identical on the three PostgreSQL databases, and the balances
//!    agree: the account, teller and branch balances and the history's deltas have one sum.
//!
//! About 25 s (most of it the three runs).
#![cfg(not(madsim))]

mod pg;
mod samples;
mod support;

use std::time::Duration;

use pg::pg_client;
use samples::{run, wait_applied};
use support::{Cluster, REPLICAS};

/// Every replica's digest of the pgbench tables and its balance sums.
const DIGEST: &str = "SELECT
  (SELECT md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a),
  (SELECT md5(string_agg(t::text, ',' ORDER BY tid)) FROM pgbench_tellers t),
  (SELECT md5(string_agg(b::text, ',' ORDER BY bid)) FROM pgbench_branches b),
  (SELECT md5(string_agg(h::text, ',' ORDER BY h::text)) FROM pgbench_history h),
  (SELECT count(*) FROM pgbench_history),
  (SELECT sum(abalance) FROM pgbench_accounts),
  (SELECT sum(tbalance) FROM pgbench_tellers),
  (SELECT sum(bbalance) FROM pgbench_branches),
  (SELECT coalesce(sum(delta), 0) FROM pgbench_history)";

fn pgbench(cluster: &Cluster, replica: usize, args: &[&str], limit: Duration) -> String {
    let mut cmd = pg_client(cluster, replica, "pgbench", "");
    cmd.args(args);
    run(&format!("pgbench {}", args.join(" ")), &mut cmd, limit).stdout
}

/// The number after `label` on its line of pgbench's report.
fn reported(out: &str, label: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in:\n{out}"));
    let value = line[label.len()..].split_whitespace().next().unwrap_or_default();
    value.parse().unwrap_or_else(|_| panic!("{label:?}: {line}"))
}

#[test]
fn pgbench_runs_through_barista_and_the_replicas_agree() {
    let cluster = Cluster::start("pgbench", |_| Vec::new());
    let long = Duration::from_secs(120);
    let out = pgbench(&cluster, 0, &["-i", "-s", "1"], long);
    for step in ["creating tables...", "generating data (client-side)...", "vacuuming...", "creating primary keys..."] {
        assert!(out.contains(step), "{out}");
    }
    wait_applied(&cluster, &[0, 1, 2]);
    let loaded = "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_tellers), \
                  (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_accounts WHERE filler IS NULL)";
    for replica in 0..REPLICAS {
        assert_eq!(cluster.query(replica, loaded).trim(), "100000|10|1|0", "replica {replica}");
    }

    for (mode, replica, seconds, clients) in
        [("simple", 0, "5", "4"), ("extended", 1, "5", "4"), ("prepared", 2, "3", "2")]
    {
        let out = pgbench(&cluster, replica, &["-n", "-T", seconds, "-c", clients, "-M", mode], long);
        let processed = reported(&out, "number of transactions actually processed:");
        let failed = reported(&out, "number of failed transactions:");
        assert!(processed > 0.0 && failed == 0.0, "pgbench -M {mode}:\n{out}");
        println!("pgbench -M {mode} -c {clients}: {processed} transactions, tps {}", reported(&out, "tps ="));
    }

    wait_applied(&cluster, &[0, 1, 2]);
    let digests: Vec<String> = (0..REPLICAS).map(|i| cluster.query(i, DIGEST).trim().to_owned()).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "the replicas differ:\n{}", digests.join("\n"));
    let fields: Vec<&str> = digests[0].split('|').collect();
    assert!(fields[4].parse::<u64>().is_ok_and(|n| n > 0), "no history rows: {}", digests[0]);
    assert!(fields[5..].iter().all(|sum| *sum == fields[5]), "the balances disagree: {}", digests[0]);
}
