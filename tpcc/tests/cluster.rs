//! The kit end to end against a real three-replica Barista on this machine: `load` through
//! `barista://`, `check --after-load` on every replica's own PostgreSQL, `run` in procedures mode
//! (a follower killed with SIGKILL and restarted in the middle: the fault run in
//! miniature) and briefly in interactive mode, then `check` again: the consistency conditions hold
//! on every replica and the three databases are identical. Then both modes again through
//! Barista's PostgreSQL port with the `postgres://` target that measures PostgreSQL itself
//! (issue 10: one client code for every system); a `postgres://` session carries on at the next
//! replica of its URL when the one it is connected to is killed; and `check` once more.
//!
//! The load is a divided test database (`--test-divisor 10`: 10,000 items, 300 customers per
//! district, one warehouse), not TPC-C's full warehouse: a debug-build Barista applies about
//! 150 KB of SQL per second here, and one full warehouse is about 90 MB (over six minutes). The
//! measured interval is 10 s instead of the minute, without warm-up: the test checks that
//! the kit and Barista work together and stay consistent; benchmarks measure (README).
//!
//! PostgreSQL and ZooKeeper must be installed (`scripts/setup.sh`); the `barista` binary is built
//! first if the target directory has none.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barista_server::local_cluster::{LocalCluster, Options, REPLICAS};
use barista_tpcc::target::{DbError, Session, Target};

/// The `barista` binary of this build (`target/debug/barista`), built if missing.
fn barista_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/cluster-HASH -> target/debug
    let dir = exe.parent().and_then(|d| d.parent()).expect("a target directory").to_path_buf();
    let binary = dir.join("barista");
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "barista-server", "--bin", "barista"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the barista binary failed");
    }
    assert!(binary.is_file(), "no barista binary at {}", binary.display());
    binary
}

/// Runs `barista-tpcc ARGS`; panics with its output if it fails. Returns its stdout.
fn tpcc<S: AsRef<str>>(args: &[S]) -> String {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_barista-tpcc")).args(&args).output().expect("running barista-tpcc");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("$ barista-tpcc {} ({:.1} s)\n{stdout}{stderr}", args.join(" "), started.elapsed().as_secs_f64());
    assert!(out.status.success(), "barista-tpcc {} failed:\n{stdout}\n{stderr}", args.join(" "));
    stdout
}

/// `check` on every replica's own PostgreSQL, once all have applied the whole log.
fn check_replicas(cluster: &LocalCluster, after_load: bool) {
    cluster.wait_applied(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let mut args = vec!["check".to_string()];
    for r in &cluster.replicas {
        args.extend(["--target".to_string(), format!("postgres://postgres@127.0.0.1:{}/postgres", r.pg_port)]);
    }
    if after_load {
        args.push("--after-load".into());
    }
    let out = tpcc(&args);
    assert!(out.contains("all 3 databases hold identical data"), "{out}");
    assert!(out.contains("check passed"), "{out}");
}

/// The JSON report of a run: New-Orders completed, none failed.
fn clean_report(path: &std::path::Path) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the JSON report")).expect("valid JSON");
    assert!(json["tpmc"].as_f64().unwrap_or(0.0) > 0.0, "{json}");
    assert_eq!(json["errors"].as_u64(), Some(0), "{json}");
    assert_eq!(json["transactions"][0]["name"].as_str(), Some("New-Order"));
    json
}

/// `barista-tpcc run --target TARGET` with `rest` (space-separated) and extra arguments.
fn run_args(target: &str, rest: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_string(), "--target".into(), target.into()];
    args.extend(rest.split(' ').map(str::to_string));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn load_run_and_check_through_three_replicas() {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("barista-tpcc-test-{}", std::process::id()));
    let mut opts = Options::new(&dir, barista_binary());
    opts.zookeeper_root = "/barista-tpcc-test".into();
    let timers = ["--election-timeout-ms", "300", "--request-timeout-ms", "60000"];
    opts.extra_args = vec![timers.iter().map(|s| s.to_string()).collect(); REPLICAS];
    opts.fsync = false;
    opts.remove_dir = true;
    let mut cluster =
        LocalCluster::start(opts).unwrap_or_else(|e| panic!("starting the cluster (run scripts/setup.sh?): {e}"));
    let barista =
        format!("barista://{}", cluster.replicas.iter().map(|r| r.client.as_str()).collect::<Vec<_>>().join(","));
    println!("cluster up after {:.1} s", started.elapsed().as_secs_f64());

    tpcc(&["load", "--target", &barista, "--warehouses", "1", "--test-divisor", "10", "--seed", "42", "--quiet"]);
    check_replicas(&cluster, true);

    // Procedures mode, 10 s measured. A follower (not the leader, not replica 0 where the
    // terminals connect first) is killed with SIGKILL 3 s in and restarted 2 s later: it catches
    // up from the log, and the terminals never notice.
    let report = dir.join("procedures.json");
    let report_arg = report.to_string_lossy().into_owned();
    let run = Command::new(env!("CARGO_BIN_EXE_barista-tpcc"))
        .args(run_args(
            &barista,
            "--terminals 4 --warmup 0 --duration 10 --mode procedures --seed 7 --quiet",
            &["--report", &report_arg],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting barista-tpcc run");
    std::thread::sleep(Duration::from_secs(3));
    let leader = cluster.report(0).ok().and_then(|r| r.leader).unwrap_or(0) as usize;
    let victim = if leader == 2 { 1 } else { 2 };
    cluster.kill_replica(victim).expect("the follower was running");
    println!("killed replica {victim} (the leader is {leader}) 3 s into the measured interval");
    std::thread::sleep(Duration::from_secs(2));
    cluster.start_replica(victim).unwrap_or_else(|e| panic!("restarting replica {victim}: {e}"));
    let out = run.wait_with_output().expect("barista-tpcc run");
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "barista-tpcc run failed");
    clean_report(&report);
    let svg = std::fs::read_to_string(report.with_extension("svg")).expect("the chart");
    assert!(svg.starts_with("<svg"));

    // Interactive mode, briefly: Barista serializes its transactions.
    tpcc(&run_args(&barista, "--terminals 2 --warmup 0 --duration 5 --mode interactive --seed 8 --quiet", &[]));
    check_replicas(&cluster, false);

    // The same through Barista's PostgreSQL port: tokio-postgres's extended protocol (Parse,
    // Describe, Bind, Execute, binary results), the URL listing every replica as libpq takes it.
    let pg = format!(
        "postgres://postgres@{}/postgres",
        cluster.replicas.iter().map(|r| r.pg_listen.as_str()).collect::<Vec<_>>().join(",")
    );
    let report = dir.join("pgwire.json");
    let report_arg = report.to_string_lossy().into_owned();
    let procedures = "--terminals 4 --warmup 0 --duration 6 --mode procedures --seed 9 --quiet";
    tpcc(&run_args(&pg, procedures, &["--report", &report_arg]));
    let json = clean_report(&report);
    assert_eq!(json["target"].as_str(), Some(pg.as_str()), "{json}");
    tpcc(&run_args(&pg, "--terminals 2 --warmup 0 --duration 3 --mode interactive --seed 10 --quiet", &[]));

    // A `postgres://` session outlives the replica it is connected to, as the terminals of a
    // fault run need: a follower first in the URL is killed, and the session's next statement
    // runs on the next replica of the URL. (A follower, so that no election is in the way.)
    let leader = cluster.leader(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    let first = (leader + 1) % REPLICAS;
    let order = [first, (first + 1) % REPLICAS, (first + 2) % REPLICAS];
    let url = format!(
        "postgres://postgres@{}/postgres",
        order.iter().map(|&i| cluster.replicas[i].pg_listen.as_str()).collect::<Vec<_>>().join(",")
    );
    let mut session = Target::parse(&url).and_then(|t| Ok(t.connect()?)).expect("connecting through the port");
    let warehouses =
        |s: &mut dyn Session| -> Result<i64, DbError> { s.execute("SELECT count(*) FROM warehouse", &[])?.int(0, 0) };
    assert_eq!(warehouses(session.as_mut()).expect("a read through the first replica"), 1);
    cluster.kill_replica(first).expect("the follower was running");
    // The statement that meets the closed connection may fail; the next one connects again.
    let after = warehouses(session.as_mut()).or_else(|e| {
        println!("first statement after the kill: {e}");
        warehouses(session.as_mut())
    });
    assert_eq!(after.expect("a read through the next replica"), 1);
    drop(session);
    cluster.start_replica(first).unwrap_or_else(|e| panic!("restarting replica {first}: {e}"));
    cluster.wait_ready(Duration::from_secs(60)).unwrap_or_else(|e| panic!("replica {first} back: {e}"));
    check_replicas(&cluster, false);
    println!("whole test took {:.1} s", started.elapsed().as_secs_f64());
}
