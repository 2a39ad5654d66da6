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

use samples::{FRUIT_QUERY, FRUIT_ROWS, Running, addresses, check_fruit_tour, expect_everywhere, repo, run};
use support::{Cluster, REPLICAS};

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
    const N: u32 = 200;
    // Stop the replica in use once this many inserts are acknowledged.
    const STOP_AT: u32 = 60;
    let compile = std::thread::spawn(build);
    let mut cluster = Cluster::start("failover-java", |_| Vec::new());
    if let Err(panic) = compile.join() {
        std::panic::resume_unwind(panic);
    }
    let mut child =
        Running::spawn("InsertLoop", java("barista.sample.InsertLoop").arg(addresses(&cluster)).arg(N.to_string()));
    let line_limit = Duration::from_secs(60);

    let mut used: Option<usize> = None;
    let mut stopped: Option<usize> = None;
    let mut acked_after_stop = 0;
    let mut switched_to: Option<String> = None;
    let mut acked = Vec::new();
    let mut done = false;
    while let Some(line) = child.next_line(line_limit) {
        if let Some(addr) = line.strip_prefix("using ") {
            let i = cluster.replicas.iter().position(|r| r.client == addr);
            assert!(i.is_some(), "InsertLoop uses {addr}, not a replica of the cluster");
            if stopped.is_some() {
                switched_to = Some(addr.to_string());
            }
            used = i;
        } else if let Some(k) = line.strip_prefix("ack ") {
            acked.push(k.parse::<u32>().unwrap_or_else(|e| panic!("ack {k:?}: {e}")));
            if stopped.is_some() {
                acked_after_stop += 1;
            }
            if acked.len() == STOP_AT as usize && stopped.is_none() {
                // The loop is mid-flight: its next insert is being sent to this replica now.
                let victim = used.expect("a \"using\" line comes first");
                cluster.stop_replica(victim);
                stopped = Some(victim);
            }
        } else if line == format!("done {N}") {
            done = true;
        } else {
            panic!("unexpected line from InsertLoop: {line:?}");
        }
    }
    let status = child.wait(Duration::from_secs(10));
    let stderr = child.stderr();
    assert!(status.success() && done, "InsertLoop failed ({status}):\n{stderr}\n{}", cluster.logs());
    let victim = stopped.expect("the replica was stopped mid-loop");
    let new = switched_to.expect("the loop moved to another replica after the stop");
    assert_ne!(new, cluster.replicas[victim].client);
    assert!(acked_after_stop > 0, "inserts were acknowledged after the stop");
    assert_eq!(acked, (1..=N).collect::<Vec<_>>(), "every key acknowledged once, in order");

    // Every acknowledged key, once each, on every surviving replica.
    let survivors: Vec<usize> = (0..REPLICAS).filter(|i| *i != victim).collect();
    let expected: String = (1..=N).map(|k| format!("{k}|1\n")).collect();
    expect_everywhere(&cluster, &survivors, "SELECT k, count(*) FROM acked GROUP BY k ORDER BY k", &expected);
}
