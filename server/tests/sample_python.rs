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

use samples::{
    FRUIT_QUERY, FRUIT_ROWS, LOOP_KEYS, addresses, check_fruit_tour, expect_everywhere, insert_loop_survives_a_stop,
    repo, run,
};
use support::Cluster;

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
    let mut cluster = Cluster::start("failover-python", |_| Vec::new());
    let mut loop_cmd = python("insert_loop.py");
    loop_cmd.arg(addresses(&cluster)).arg(LOOP_KEYS.to_string());
    insert_loop_survives_a_stop(&mut cluster, "insert_loop.py", &mut loop_cmd);
}
