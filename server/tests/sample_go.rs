//! The Go sample client (`clients/go`) against a live three-replica cluster: built as its README
//! says (`go build ./cmd/sample`, offline, with Debian's golang-thrift-dev), it tours the API (DDL,
//! parameters, a committed and a rolled-back transaction, a batch, a NULL read back, a unique
//! violation's SQLSTATE 23505 through `errors.As`, close); its output is checked line by line, and
//! every replica's own PostgreSQL must then hold the same expected rows.
//!
//! About 10 s, most of it starting PostgreSQL and ZooKeeper, plus a first `go build` (~20 s,
//! cached under the target directory after that).
#![cfg(not(madsim))]

mod samples;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use samples::{FRUIT_QUERY, FRUIT_ROWS, addresses, check_fruit_tour, expect_everywhere, repo, run};
use support::Cluster;

#[test]
fn the_go_sample_runs_against_a_live_cluster() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let binary = tmp.join(format!("barista-go-sample-{}", std::process::id()));
    run(
        "go build ./cmd/sample (needs golang-go and golang-thrift-dev: run scripts/setup.sh)",
        Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg("./cmd/sample")
            .current_dir(repo().join("clients/go"))
            // Offline, as in CI: the thrift module is Debian's copy (a replace in go.mod), so
            // nothing may be fetched. The build cache stays in the target directory.
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", tmp.join("go-build")),
        Duration::from_secs(300),
    );

    let cluster = Cluster::start("sample-go", |_| Vec::new());
    let out = run("the Go sample", Command::new(&binary).arg(addresses(&cluster)), Duration::from_secs(60));
    let _ = std::fs::remove_file(&binary);
    check_fruit_tour(&cluster, "the Go sample", &out);
    expect_everywhere(&cluster, &[0, 1, 2], FRUIT_QUERY, FRUIT_ROWS);
}
