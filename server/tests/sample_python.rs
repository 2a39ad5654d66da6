//! The Python sample client (`clients/python`) against a live three-replica cluster, run as its
//! README says (`/usr/bin/python3 sample.py ADDRESSES`, Debian's python3-thrift; or the
//! interpreter `$BARISTA_PYTHON` names):
//!
//! - `sample.py` tours the API (DDL, parameters, a committed and a rolled-back transaction, a
//!   batch, a NULL read back, a unique violation's SQLSTATE 23505, close); its output is checked
//!   line by line and every replica's own PostgreSQL must then hold the same expected rows.
//! - `insert_loop.py` inserts keys one by one while the test stops the replica it is using, part
//!   way through: the loop must finish, and each surviving replica must hold every key exactly
//!   once (the table has no unique key, so a request run twice would leave a duplicate).
//!
//! About 10 s each, most of it starting PostgreSQL and ZooKeeper.
#![cfg(not(madsim))]

mod samples;
mod support;

use std::process::Command;
use std::time::Duration;

use samples::{FRUIT_QUERY, FRUIT_ROWS, Running, addresses, check_fruit_tour, expect_everywhere, repo, run};
use support::{Cluster, REPLICAS};

/// The interpreter: `$BARISTA_PYTHON` (e.g. a virtualenv's python with the PyPI package
/// `thrift`), else Debian's, which sees python3-thrift (the python3 first on PATH may be another).
fn python(script: &str) -> Command {
    let mut cmd = Command::new(std::env::var_os("BARISTA_PYTHON").unwrap_or_else(|| "/usr/bin/python3".into()));
    // Unbuffered, so each line reaches the test when it is printed.
    cmd.arg("-u").arg(script).current_dir(repo().join("clients/python")).env_remove("PYTHONPATH");
    cmd
}

#[test]
fn the_python_sample_runs_against_a_live_cluster() {
    let cluster = Cluster::start("sample-python", |_| Vec::new());
    let out = run("sample.py", python("sample.py").arg(addresses(&cluster)), Duration::from_secs(60));
    check_fruit_tour(&cluster, "sample.py", &out);
    expect_everywhere(&cluster, &[0, 1, 2], FRUIT_QUERY, FRUIT_ROWS);
}

#[test]
fn the_python_client_fails_over_mid_loop_without_losing_or_repeating_inserts() {
    const N: u32 = 200;
    // Stop the replica in use once this many inserts are acknowledged.
    const STOP_AT: u32 = 60;
    let mut cluster = Cluster::start("failover-python", |_| Vec::new());
    let mut child =
        Running::spawn("insert_loop.py", python("insert_loop.py").arg(addresses(&cluster)).arg(N.to_string()));
    let line_limit = Duration::from_secs(60);

    let mut used: Option<usize> = None;
    let mut stopped: Option<usize> = None;
    let mut switched_to: Option<String> = None;
    let mut acked = Vec::new();
    let mut done = false;
    while let Some(line) = child.next_line(line_limit) {
        if let Some(addr) = line.strip_prefix("using ") {
            let i = cluster.replicas.iter().position(|r| r.client == addr);
            assert!(i.is_some(), "insert_loop.py uses {addr}, not a replica of the cluster");
            if stopped.is_some() {
                switched_to = Some(addr.to_string());
            }
            used = i;
        } else if let Some(k) = line.strip_prefix("ack ") {
            acked.push(k.parse::<u32>().unwrap_or_else(|e| panic!("ack {k:?}: {e}")));
            if acked.len() == STOP_AT as usize && stopped.is_none() {
                // The loop is mid-flight: its next insert is being sent to this replica now.
                let victim = used.expect("a \"using\" line comes first");
                cluster.stop_replica(victim);
                stopped = Some(victim);
            }
        } else if line == format!("done {N}") {
            done = true;
        } else {
            panic!("unexpected line from insert_loop.py: {line:?}");
        }
    }
    let status = child.wait(Duration::from_secs(10));
    let stderr = child.stderr();
    assert!(status.success() && done, "insert_loop.py failed ({status}):\n{stderr}\n{}", cluster.logs());
    let victim = stopped.expect("the replica was stopped mid-loop");
    let new = switched_to.expect("the loop moved to another replica after the stop");
    assert_ne!(new, cluster.replicas[victim].client);
    eprintln!(
        "stopped {} after {STOP_AT} acknowledged inserts; the loop went on at {new}",
        cluster.replicas[victim].client
    );
    assert_eq!(acked, (1..=N).collect::<Vec<_>>(), "every key acknowledged once, in order");

    // Every acknowledged key, once each, on every surviving replica.
    let survivors: Vec<usize> = (0..REPLICAS).filter(|i| *i != victim).collect();
    let expected: String = (1..=N).map(|k| format!("{k}|1\n")).collect();
    expect_everywhere(&cluster, &survivors, "SELECT k, count(*) FROM acked GROUP BY k ORDER BY k", &expected);
}
