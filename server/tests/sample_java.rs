//! The Java sample client (`clients/java`) against a live three-replica cluster, compiled as its
//! README says (plain `javac` against Debian's libthrift-java, no Maven) into this build's
//! temporary directory:
//!
//! - `Sample` tours the API (DDL, parameters, a committed and a rolled-back transaction, an atomic
//!   batch, a NULL read back, a unique violation's SQLSTATE 23505, close), with a dead address
//!   first in its replica list that it must skip; its output is checked line by line and every
//!   replica's own PostgreSQL must then hold the same expected rows.
//! - `InsertLoop` inserts keys one by one while the test stops the replica it is using, part way
//!   through: the loop must finish, and each surviving replica must hold every key exactly once
//!   (the table has no unique key, so a request run twice would leave a duplicate).
//!
//! About 15 s each (the two run in parallel), most of it starting PostgreSQL and ZooKeeper and
//! compiling the generated code (once per run of this file).
#![cfg(not(madsim))]

mod samples;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use samples::{
    FRUIT_QUERY, FRUIT_ROWS, LOOP_KEYS, addresses, check_fruit_tour, expect_everywhere, insert_loop_survives_a_stop,
    repo, run,
};
use support::Cluster;

/// The README's build command, with the output directory as `$1`.
const JAVAC: &str = "javac -d \"$1\" -cp /usr/share/java/thrift.jar \
                     gen/barista/*.java src/barista/client/*.java src/barista/sample/*.java";

/// The README's run classpath after the build directory: the Thrift runtime (its manifest names
/// slf4j-api and the rest) and slf4j's no-op binding, which keeps slf4j from warning on stderr.
const RUNTIME: &str = "/usr/share/java/thrift.jar:/usr/share/java/slf4j-nop.jar";

/// Compiles the sample once for both tests (they run in parallel and would race on one output
/// directory); returns the classes' directory.
fn build() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sample-java");
        // A fresh directory: no class of a deleted source file survives.
        let _ = std::fs::remove_dir_all(&out);
        run(
            "javac (clients/java)",
            Command::new("bash").arg("-c").arg(JAVAC).arg("javac").arg(&out).current_dir(repo().join("clients/java")),
            Duration::from_secs(300),
        );
        out
    })
}

fn java(main_class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(format!("{}:{RUNTIME}", build().display())).arg(main_class);
    cmd
}

#[test]
fn the_java_sample_runs_against_a_live_cluster() {
    // The compile overlaps the cluster's start (mostly waiting on PostgreSQL and ZooKeeper).
    let compile = std::thread::spawn(build);
    let cluster = Cluster::start("sample-java", |_| Vec::new());
    if let Err(panic) = compile.join() {
        std::panic::resume_unwind(panic);
    }
    // Nothing listens on port 1 of loopback: the client must move on to the next address.
    let replicas = format!("127.0.0.1:1,{}", addresses(&cluster));
    let out = run("the Java sample", java("barista.sample.Sample").arg(replicas), Duration::from_secs(60));
    check_fruit_tour(&cluster, "the Java sample", &out);
    expect_everywhere(&cluster, &[0, 1, 2], FRUIT_QUERY, FRUIT_ROWS);
}

#[test]
fn the_java_client_fails_over_mid_loop_without_losing_or_repeating_inserts() {
    let compile = std::thread::spawn(build);
    let mut cluster = Cluster::start("failover-java", |_| Vec::new());
    if let Err(panic) = compile.join() {
        std::panic::resume_unwind(panic);
    }
    let mut loop_cmd = java("barista.sample.InsertLoop");
    loop_cmd.arg(addresses(&cluster)).arg(LOOP_KEYS.to_string());
    insert_loop_survives_a_stop(&mut cluster, "InsertLoop", &mut loop_cmd);
}
