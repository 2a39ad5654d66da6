//! The C++ sample client (`clients/cpp`) against a live three-replica cluster, built as its README
//! says (`make`, g++ with Debian's libthrift-dev) into this build's temporary directory, and run
//! with a dead address (`127.0.0.1:1`) first in its replica list, which it must skip. Its output
//! is the common tour of the API (DDL, parameters, a committed and a rolled-back transaction, an
//! atomic batch, a NULL read back, a unique violation's SQLSTATE 23505, close), checked line by
//! line; then every replica's own PostgreSQL must hold the same expected rows.
//!
//! About 20 s on a cold build (compiling the generated code, while the cluster starts), 10 s
//! after.
#![cfg(not(madsim))]

mod samples;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use samples::{FRUIT_QUERY, FRUIT_ROWS, addresses, check_fruit_tour, expect_everywhere, repo, run};
use support::Cluster;

#[test]
fn the_cpp_sample_runs_against_a_live_cluster() {
    // Outside the source tree; make rebuilds only what changed since the last run.
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sample-cpp");
    let make = {
        let build = build.clone();
        // The compile overlaps the cluster's start (mostly waiting on PostgreSQL and ZooKeeper).
        std::thread::spawn(move || {
            run(
                "make (clients/cpp)",
                Command::new("make")
                    .arg("-j2")
                    .arg("-C")
                    .arg(repo().join("clients/cpp"))
                    .arg(format!("BUILD={}", build.display())),
                Duration::from_secs(300),
            )
        })
    };
    let cluster = Cluster::start("sample-cpp", |_| Vec::new());
    if let Err(panic) = make.join() {
        std::panic::resume_unwind(panic);
    }

    // Nothing listens on port 1 of loopback: the client must move on to the next address.
    let replicas = format!("127.0.0.1:1,{}", addresses(&cluster));
    let out = run("the C++ sample", Command::new(build.join("sample")).arg(replicas), Duration::from_secs(60));
    check_fruit_tour(&cluster, "the C++ sample", &out);
    expect_everywhere(&cluster, &[0, 1, 2], FRUIT_QUERY, FRUIT_ROWS);
}
