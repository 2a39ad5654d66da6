//! Divergence detection (issue 7, item 5) on three real replicas: `barista verify` finds them
//! agreeing; then one follower's PostgreSQL is changed behind Barista's back (psql, directly), and
//! the next `barista verify` exits non-zero naming that replica and the table. The replica marks
//! itself diverged (on `/status`, in its metrics, in `barista status`) and refuses clients while it
//! keeps applying the log; the other two stay healthy and keep serving writes. Repaired by hand,
//! it is healthy again after the next check.
//!
//! About 20 s, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod support;

use std::process::Command;
use std::time::Duration;

use barista_client::{Client, ClientConfig, Value};
use support::{Cluster, REPLICAS, wait_for};

/// Runs `barista verify` against every replica; its exit code and its output (stdout, stderr).
fn verify(cluster: &Cluster) -> (Option<i32>, String) {
    let admins: Vec<String> = cluster.replicas.iter().map(|r| r.admin.clone()).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_barista"))
        .args(["verify", "--admin", &admins.join(","), "--timeout-secs", "60"])
        .output()
        .expect("run barista verify");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

fn metric(cluster: &Cluster, i: usize, name: &str) -> String {
    let metrics = cluster.admin_get(i, "/metrics");
    let prefix = format!("barista_{name}{{node=\"{i}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name}:\n{metrics}")).to_owned()
}

#[test]
fn a_replica_changed_behind_barista_s_back_is_found_and_marked_unhealthy() {
    // No periodic check: the test starts every check itself.
    let cluster = Cluster::start("divergence", |_| vec![("BARISTA_VERIFY_INTERVAL_MS".into(), "0".into())]);
    let leader = cluster.leader();
    let victim = (leader + 1) % REPLICAS;
    let all: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    let mut db = Client::connect(&all, ClientConfig::default()).expect("connect");
    db.execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)", &[])
        .expect("create accounts");
    db.execute("CREATE TABLE events (id serial PRIMARY KEY, note text)", &[]).expect("create events");
    for k in 0..20 {
        let insert = "INSERT INTO accounts VALUES ($1, $2, 100)";
        db.execute(insert, &[Value::Int(k), Value::Text(format!("owner {k}"))]).expect("insert account");
        db.execute("INSERT INTO events (note) VALUES ($1)", &[Value::Text(format!("opened {k}"))]).expect("event");
    }
    cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));

    let (code, out) = verify(&cluster);
    assert_eq!(code, Some(0), "{out}\n{}", cluster.logs());
    assert!(out.contains("agreed: all 3 replicas hold the same data"), "{out}");
    for i in 0..REPLICAS {
        let r = cluster.report(i);
        assert!(r.is_healthy() && r.diverged_replicas.is_empty(), "{r:?}");
        assert_eq!(r.last_check.map(|c| c.verdict).as_deref(), Some("agreed"));
        assert_eq!(metric(&cluster, i, "diverged"), "0");
    }

    // Behind Barista's back: one follower's PostgreSQL, directly.
    cluster.query(victim, "UPDATE accounts SET balance = balance + 1 WHERE id = 7");
    db.execute("INSERT INTO events (note) VALUES ('after the change')", &[]).expect("a write through Barista");

    let (code, out) = verify(&cluster);
    assert_eq!(code, Some(4), "{out}\n{}", cluster.logs());
    assert!(out.contains(&format!("DIVERGED: replica(s) [{victim}]")), "{out}");
    assert!(out.contains("NO (differs in public.accounts)"), "{out}");
    let marked = wait_for("the changed replica to report itself diverged", Duration::from_secs(30), || {
        let r = cluster.report(victim);
        (r.health == "diverged").then_some(r)
    });
    let detail = marked.detail.clone().unwrap_or_default();
    assert!(detail.contains("public.accounts"), "{marked:?}");
    assert_eq!(marked.diverged_replicas, [victim as u32]);
    assert_eq!(metric(&cluster, victim, "diverged"), "1");
    assert_eq!(metric(&cluster, victim, "healthy"), "0");
    for i in (0..REPLICAS).filter(|i| *i != victim) {
        let r = wait_for("the others to see the divergence", Duration::from_secs(30), || {
            let r = cluster.report(i);
            (r.diverged_replicas == [victim as u32]).then_some(r)
        });
        assert!(r.is_healthy(), "{r:?}");
        assert_eq!(metric(&cluster, i, "diverged"), "0");
        assert_eq!(metric(&cluster, i, "diverged_replicas"), "1");
    }
    let log = std::fs::read_to_string(&cluster.replicas[victim].log).unwrap_or_default();
    assert!(log.contains("this replica diverged from the majority"), "{log}");

    // `barista status` names it and fails.
    let admins: Vec<String> = cluster.replicas.iter().map(|r| r.admin.clone()).collect();
    let status = Command::new(env!("CARGO_BIN_EXE_barista"))
        .args(["status", "--admin", &admins.join(",")])
        .output()
        .expect("run barista status");
    let table = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(3), "{table}");
    assert!(table.contains(&format!("DIVERGENCE: replica(s) [{victim}]")), "{table}");
    assert!(table.contains("diverged"), "{table}");

    // The other two keep serving writes; the diverged replica serves no client, and keeps applying.
    let others: Vec<String> = (0..REPLICAS).filter(|i| *i != victim).map(|i| all[i].clone()).collect();
    let mut healthy = Client::connect(&others, ClientConfig::default()).expect("connect to the healthy two");
    for k in 20..25 {
        let insert = "INSERT INTO accounts VALUES ($1, $2, 100)";
        healthy.execute(insert, &[Value::Int(k), Value::Text(format!("owner {k}"))]).expect("write on the healthy two");
    }
    let refused = Client::connect(&[all[victim].clone()], ClientConfig { rounds: 1, ..ClientConfig::default() })
        .and_then(|mut c| c.execute("SELECT 1", &[]).map(|_| ()));
    let refused = refused.expect_err("the diverged replica serves no client");
    assert!(refused.to_string().contains("diverged"), "{refused}");
    cluster.wait_applied(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.query(victim, "SELECT count(*) FROM accounts").trim(), "25");

    // Repaired by hand: the next check finds it agreeing, and it serves again.
    cluster.query(victim, "UPDATE accounts SET balance = balance - 1 WHERE id = 7");
    let (code, out) = verify(&cluster);
    assert_eq!(code, Some(0), "{out}\n{}", cluster.logs());
    wait_for("the repaired replica to be healthy", Duration::from_secs(30), || {
        cluster.report(victim).is_healthy().then_some(())
    });
    let mut again = Client::connect(&[all[victim].clone()], ClientConfig::default()).expect("connect to it again");
    again.execute("INSERT INTO events (note) VALUES ('served again')", &[]).expect("it serves again");
}
