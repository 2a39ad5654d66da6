//! The JavaScript (Node.js) sample client (`clients/javascript`) against a live three-replica
//! cluster, run as its README says (`npm ci` when `node_modules` is missing, then
//! `node sample.js ADDRESSES`): it tours the API with async/await (DDL, parameters, a committed
//! and a rolled-back transaction, a batch, a NULL read back, a unique violation's SQLSTATE 23505
//! as a rejected promise, close); its output is checked line by line, and every replica's own
//! PostgreSQL must then hold the same expected rows. And `insert-loop.js` inserts keys one by one
//! while the test stops the replica it is using, part way through: the loop must finish, and each
//! surviving replica must hold every key exactly once (its promise-based failover must notice a
//! connection that dropped with a call in flight, and retry that call under the same number).
//!
//! About 10 s each, most of it starting PostgreSQL and ZooKeeper, plus `npm ci` the first time (a few
//! seconds, needs the npm registry).
#![cfg(not(madsim))]

mod samples;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use samples::{
    FRUIT_QUERY, FRUIT_ROWS, LOOP_KEYS, addresses, check_fruit_tour, expect_everywhere, insert_loop_survives_a_stop,
    repo, run,
};
use support::Cluster;

/// `clients/javascript`, with its dependencies installed (`npm ci` unless `node_modules` exists).
fn javascript_dir() -> PathBuf {
    let dir = repo().join("clients/javascript");
    // Both tests may get here at once: one installs, the other waits for it.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("node_modules").exists() {
        // Exactly the locked dependencies (package-lock.json), as the README says.
        run(
            "npm ci (needs nodejs and npm: run scripts/setup.sh)",
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir),
            Duration::from_secs(300),
        );
    }
    dir
}

#[test]
fn the_javascript_sample_runs_against_a_live_cluster() {
    let dir = javascript_dir();
    let cluster = Cluster::start("sample-javascript", |_| Vec::new());
    let out = run(
        "node sample.js",
        Command::new("node").arg("sample.js").arg(addresses(&cluster)).current_dir(&dir),
        Duration::from_secs(60),
    );
    check_fruit_tour(&cluster, "node sample.js", &out);
    expect_everywhere(&cluster, &[0, 1, 2], FRUIT_QUERY, FRUIT_ROWS);
}

#[test]
fn the_javascript_client_fails_over_mid_loop_without_losing_or_repeating_inserts() {
    let dir = javascript_dir();
    let mut cluster = Cluster::start("failover-javascript", |_| Vec::new());
    let mut loop_cmd = Command::new("node");
    loop_cmd.arg("insert-loop.js").arg(addresses(&cluster)).arg(LOOP_KEYS.to_string()).current_dir(&dir);
    insert_loop_survives_a_stop(&mut cluster, "node insert-loop.js", &mut loop_cmd);
}
