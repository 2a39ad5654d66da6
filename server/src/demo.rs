//! `barista demo`: starts a three-replica cluster on this machine ([`crate::local_cluster`]) and
//! narrates, with real output, what Barista guarantees:
//!
//! 1. synchronous replication with strong consistency: rows written through one replica are read
//!    back through another at once, and every replica's own PostgreSQL holds the same rows;
//! 2. automatic failover: the leader is killed with SIGKILL and the client's writes go on;
//! 3. recovery: (a) the killed replica restarts and catches up from the log; (b) all three stop
//!    and start again, and every committed row and the log position survive; (c) a replica's
//!    database is wiped and `barista reseed` rebuilds it from a healthy replica while a client
//!    keeps writing.
//!
//! Then it leaves the cluster running, prints how to reach it, and stops everything on Ctrl-C (or
//! at once with `--no-wait`). Each step ends with a line `OK <step>: ...`; `server/tests/demo.rs`
//! checks for them.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use barista_client::{Client, ClientConfig, Value};

use crate::admin::status_cmd::table;
use crate::cli::DemoArgs;
use crate::local_cluster::{LocalCluster, Options, REPLICAS, Stopped, on_interrupt};

/// How long the demo waits for any one thing (an election, a catch-up) before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// The demo's table, and the direct query that reads it from each replica's database.
const CREATE: &str = "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL)";
const INSERT: &str = "INSERT INTO orders VALUES ($1, $2, $3)";
const DIRECT: &str = "SELECT id, item, qty FROM orders ORDER BY id";
/// A fingerprint of the whole table: row count and an md5 over every row in order.
const FINGERPRINT: &str = "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(id || ':' || item || ':' || qty, \
                           ',' ORDER BY id), '')) FROM orders";

const ITEMS: [&str; 5] = ["espresso", "cappuccino", "flat white", "cortado", "macchiato"];

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let binary = std::env::current_exe().context("finding the barista binary")?;
    let dir = match &args.dir {
        Some(dir) => absolute(dir)?,
        None => default_dir(&binary)?,
    };
    println!("Barista demo: three replicas of one database on this machine, kept identical by Multi-Paxos.");
    println!("State directory: {} (emptied first; logs stay there)", dir.display());

    heading("Starting the cluster");
    println!("One ZooKeeper (the Paxos acceptor state), three PostgreSQL clusters (one per replica) and three");
    println!("`barista serve` processes, all on free ports of 127.0.0.1, with default settings.");
    let t = Instant::now();
    let mut cluster = LocalCluster::start(Options::new(&dir, &binary))
        .context("starting the local cluster (is everything installed? run scripts/setup.sh as root)")?;
    if let Some(pid) = cluster.zookeeper_pid() {
        println!("  ZooKeeper           127.0.0.1:{:<5}  (pid {pid})", cluster.zk_port);
    }
    for i in 0..REPLICAS {
        let r = &cluster.replicas[i];
        println!(
            "  replica {i}: barista serve client {}  admin {}  (pid {}); PostgreSQL 127.0.0.1:{} (pid {})",
            r.client,
            r.admin,
            cluster.replica_pid(i).unwrap_or_default(),
            r.pg_port,
            cluster.postgres_pid(i).unwrap_or_default(),
        );
    }
    println!("  replica 0 was started as: barista {}", shell_words(&cluster.serve_args(0)));
    println!("Ready in {:.1} s: every replica healthy, all following one leader.", secs(t.elapsed()));
    status(&cluster);

    // From here on a Ctrl-C stops what was started, by PID, and says so.
    let signals = Signals::install(&cluster)?;
    let tour = tour(&mut cluster);
    if let Err(e) = tour {
        // A tour cut short by Ctrl-C fails as the replicas go; the signal handler reports the
        // stop and exits.
        signals.park_if_interrupted();
        eprintln!("barista demo: {e:#}");
        eprintln!("Replica logs:\n{}", cluster.logs());
        stop(&mut cluster)?;
        return Err(e.context("the demo failed"));
    }
    println!("\nStart and tour took {:.1} s.", secs(started.elapsed()));
    connection_details(&cluster);

    if args.no_wait {
        println!("\n--no-wait: stopping everything now.");
    } else {
        println!("\nThe cluster keeps running. Press Ctrl-C to stop it (every process above is stopped by its PID).");
        signals.wait();
        println!("\nCtrl-C: stopping the cluster.");
    }
    stop(&mut cluster)?;
    Ok(())
}

/// The narrated steps.
fn tour(cluster: &mut LocalCluster) -> anyhow::Result<()> {
    let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    let leader = cluster.leader(PATIENCE)?;
    let follower = (leader + 1) % REPLICAS;
    let other = (leader + 2) % REPLICAS;

    heading("1. Synchronous replication with strong consistency");
    println!("A client writes through one replica. Barista puts each statement in a replicated log (one");
    println!("Paxos decision per slot) and every replica executes the log in the same order on its own");
    println!("PostgreSQL. A write is acknowledged only once it is decided and executed, so a read through");
    println!("*any* replica sees it, and the three databases end up holding exactly the same rows.");
    let mut writer = client_on(&addrs, follower)?;
    println!(
        "\nbarista-client connected to replica {follower} ({}), a follower: it forwards to leader {leader}.",
        writer.replica()
    );
    println!("  > {CREATE}");
    writer.execute(CREATE, &[]).context("creating the table")?;
    for (id, item) in ITEMS.iter().enumerate() {
        let id = id as i64 + 1;
        writer
            .execute(INSERT, &[Value::Int(id), Value::Text((*item).into()), Value::Int(id)])
            .with_context(|| format!("inserting row {id}"))?;
        println!("  > INSERT INTO orders VALUES ({id}, '{item}', {id})   -- acknowledged");
    }
    let mut reader = client_on(&addrs, other)?;
    let rows = reader.execute("SELECT count(*) FROM orders", &[]).context("reading through another replica")?;
    let seen = rows.text(0, 0).unwrap_or_default();
    println!("\nAt once, through replica {other} (a different replica, a new session): SELECT count(*) -> {seen}");
    ensure!(seen == ITEMS.len().to_string(), "replica {other} saw {seen} rows, not {}", ITEMS.len());
    reader.close().context("closing the reading session")?;

    let ap = cluster.wait_applied(PATIENCE)?;
    println!("\nNow each replica's own PostgreSQL, read directly with psql (not through Barista): {DIRECT}");
    let tables = direct_tables(cluster)?;
    for (i, rows) in tables.iter().enumerate() {
        println!("  replica {i}, PostgreSQL 127.0.0.1:{}:", cluster.replicas[i].pg_port);
        for line in rows.lines() {
            println!("      {line}");
        }
    }
    ensure!(tables.iter().all(|t| *t == tables[0]), "the databases differ");
    ensure!(tables[0].lines().count() == ITEMS.len(), "expected {} rows: {}", ITEMS.len(), tables[0]);
    status(cluster);
    println!(
        "OK 1: the rows written through replica {follower} was read at once through replica {other}, and all three databases hold the same {} rows (every replica applied the log through slot {ap}).",
        ITEMS.len()
    );

    heading("2. Automatic failover");
    println!("The leader orders the log. Kill it without warning (SIGKILL: no goodbye to its peers), and the");
    println!("other two notice its silence, elect a new leader among themselves (a majority is 2 of 3), and");
    println!("carry on. The client, which was talking to the leader, moves to another replica by itself and");
    println!("retries its request under the same request number, so the request runs exactly once.");
    writer.close().context("closing the first session")?;
    let mut writer = client_on(&addrs, leader)?;
    println!("\nbarista-client now connected to the leader, replica {leader} ({}).", writer.replica());
    let ap_before = cluster.report(leader)?.applied;
    let pid = cluster.kill_replica(leader).context("the leader was not running")?;
    let killed_at = Instant::now();
    println!("  kill -KILL {pid}   (replica {leader}, the leader, at AP {ap_before})");
    let mut first = None;
    let mut slowest = Duration::ZERO;
    const WRITES: i64 = 20;
    for n in 0..WRITES {
        let id = 100 + n;
        let t = Instant::now();
        writer
            .execute(INSERT, &[Value::Int(id), Value::Text("after failover".into()), Value::Int(1)])
            .with_context(|| format!("writing row {id} after the leader died"))?;
        let took = t.elapsed();
        if first.is_none() {
            first = Some(killed_at.elapsed());
            println!(
                "  first write after the kill: acknowledged {:.0} ms after the kill, through replica {}",
                millis(killed_at.elapsed()),
                replica_of(cluster, writer.replica())
            );
        }
        slowest = slowest.max(took);
    }
    let first = first.unwrap_or_default();
    let new_leader = cluster.leader(PATIENCE)?;
    println!(
        "  {WRITES} writes (ids 100..{}) all acknowledged; the slowest took {:.0} ms, the first one included.",
        100 + WRITES - 1,
        millis(slowest)
    );
    println!("  new leader: replica {new_leader}");
    ensure!(new_leader != leader, "the dead replica {leader} is still named leader");
    status(cluster);
    println!(
        "OK 2: leader {leader} killed; replica {new_leader} took over and the first write after the kill succeeded {:.0} ms after it.",
        millis(first)
    );

    heading("3a. A crashed replica catches up");
    println!("Restart the killed replica on its old data. It reads its acceptor state from ZooKeeper and its");
    println!("AP (the last log slot applied to its database) from its PostgreSQL, learns the slots decided");
    println!("while it was down from its peers, and executes them in order until it is level.");
    let behind = cluster.report(new_leader)?.applied;
    let pid = cluster.start_replica(leader)?;
    let t = Instant::now();
    println!("\n  restarted replica {leader} (pid {pid}); it stopped at AP {ap_before}, the others are at AP {behind}");
    cluster.wait_ready(PATIENCE)?;
    let ap = cluster.wait_applied(PATIENCE)?;
    println!("  replica {leader} healthy and level at AP {ap} after {:.1} s", secs(t.elapsed()));
    let prints = fingerprints(cluster)?;
    for (i, p) in prints.iter().enumerate() {
        println!("  replica {i}'s database: {p}");
    }
    ensure!(prints.iter().all(|p| *p == prints[0]), "the databases differ after catch-up");
    let aps: Vec<u64> = (0..REPLICAS).map(|i| cluster.report(i).map(|r| r.applied)).collect::<Result<_, _>>()?;
    ensure!(aps.iter().all(|a| *a == aps[0]), "APs differ after catch-up: {aps:?}");
    status(cluster);
    println!(
        "OK 3a: replica {leader} replayed slots {}..{ap} and its database is identical to the others' ({}).",
        ap_before + 1,
        prints[0]
    );

    heading("3b. Paxos state survives a restart of every replica");
    println!("Stop all three replicas, then start them again. Every accepted Paxos vote is in ZooKeeper and");
    println!("every executed slot is in PostgreSQL (in the same transaction as its work), so nothing that was");
    println!("acknowledged can be lost or run twice, and the log goes on from where it was.");
    writer.close().context("closing the second session")?;
    let before = fingerprints(cluster)?[0].clone();
    let ap_before = cluster.report(0)?.applied;
    for i in 0..REPLICAS {
        let pid = cluster.stop_replica(i).context("a replica was not running")?;
        println!("  stopped replica {i} (SIGTERM to pid {pid})");
    }
    let t = Instant::now();
    for i in 0..REPLICAS {
        let pid = cluster.start_replica(i)?;
        println!("  started replica {i} again (pid {pid})");
    }
    cluster.wait_ready(PATIENCE)?;
    println!("  all three healthy with a leader again after {:.1} s", secs(t.elapsed()));
    let after = fingerprints(cluster)?;
    for (i, p) in after.iter().enumerate() {
        println!("  replica {i}'s database: {p}");
    }
    ensure!(after.iter().all(|p| *p == before), "rows changed across the restart: before {before}, after {after:?}");
    let mut writer = Client::connect(&addrs, config()).context("connecting after the restart")?;
    writer
        .execute(INSERT, &[Value::Int(200), Value::Text("after restart".into()), Value::Int(1)])
        .context("writing after the restart")?;
    println!(
        "  > INSERT INTO orders VALUES (200, 'after restart', 1)   -- acknowledged, through replica {}",
        replica_of(cluster, writer.replica())
    );
    writer.close().context("closing the last session")?;
    let ap = cluster.wait_applied(PATIENCE)?;
    ensure!(ap > ap_before, "the log did not go on: AP {ap} after the restart, {ap_before} before");
    let prints = fingerprints(cluster)?;
    ensure!(prints.iter().all(|p| *p == prints[0]), "the databases differ after the restart: {prints:?}");
    status(cluster);
    println!(
        "OK 3b: every committed row survived ({before}); the log went on from AP {ap_before} to {ap} and all three databases match ({}).",
        prints[0]
    );

    reseed_step(cluster, &addrs)
}

/// Step 3c: a wiped replica re-seeded from a healthy one while a client writes.
fn reseed_step(cluster: &mut LocalCluster, addrs: &[String]) -> anyhow::Result<()> {
    heading("3c. A wiped replica is re-seeded from a healthy one, while writes go on");
    println!("A replica whose disk is lost has nothing to replay from. `barista reseed` copies a healthy");
    println!("replica's database as one consistent snapshot (an exported PostgreSQL snapshot, at a known AP)");
    println!("while that replica keeps serving; the rebuilt replica then catches up from the log like any");
    println!("restarted one. A client writes all along.");
    let leader = cluster.leader(PATIENCE)?;
    let (target, source) = ((leader + 1) % REPLICAS, (leader + 2) % REPLICAS);
    let writer = Writer::start(addrs, 1000)?;
    writer.wait_for(10)?;
    let pid = cluster.stop_replica(target).context("the replica to wipe was not running")?;
    println!("\n  stopped replica {target} (SIGTERM to pid {pid})");
    cluster.wipe_database(target).with_context(|| format!("wiping replica {target}'s database"))?;
    let tables = cluster.query(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")?;
    println!(
        "  wiped its PostgreSQL: data directory deleted, a fresh one initialized on port {} ({} tables in it)",
        cluster.replicas[target].pg_port,
        tables.trim()
    );
    let before = writer.acked();
    println!("\n$ barista {}", shell_words(&cluster.reseed_args(target, source)));
    let out = cluster.reseed(target, source, &[]).context("barista reseed")?;
    for line in out.lines() {
        println!("  | {line}");
    }
    let during = writer.acked() - before;
    println!("  ({during} writes were acknowledged while the re-seed ran)");
    ensure!(during > 0, "no write was acknowledged while the re-seed ran");
    let pid = cluster.start_replica(target)?;
    let t = Instant::now();
    cluster.wait_ready(PATIENCE)?;
    writer.wait_for(10)?;
    let written = writer.stop()?;
    let ap = cluster.wait_applied(PATIENCE)?;
    println!(
        "\n  started replica {target} (pid {pid}): healthy and level at AP {ap} after {:.1} s; the client wrote {written} rows",
        secs(t.elapsed())
    );
    let prints = fingerprints(cluster)?;
    for (i, p) in prints.iter().enumerate() {
        println!("  replica {i}'s database: {p}");
    }
    ensure!(prints.iter().all(|p| *p == prints[0]), "the databases differ after the re-seed: {prints:?}");
    let dumps = (0..REPLICAS).map(|i| cluster.dump_data(i)).collect::<Result<Vec<_>, _>>()?;
    ensure!(dumps.iter().all(|d| *d == dumps[0]), "the databases' full dumps differ after the re-seed");
    println!(
        "  pg_dump --data-only of the three databases (Barista's own tables included, its DDL epoch left out): identical"
    );
    status(cluster);
    println!(
        "OK 3c: replica {target}'s database was wiped and re-seeded from replica {source} while {during} writes went on; all three databases are identical at AP {ap} ({}).",
        prints[0]
    );
    Ok(())
}

/// A client writing rows to `orders` in the background, one at a time, counting acknowledgements.
struct Writer {
    acked: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<u64>>,
}

impl Writer {
    /// Writes ids `first`, `first + 1`, ... about every 10 ms.
    fn start(addrs: &[String], first: i64) -> anyhow::Result<Writer> {
        let mut db = Client::connect(addrs, config()).context("connecting the background writer")?;
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (acked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut id = first;
            while !stopping.load(Ordering::SeqCst) {
                db.execute(INSERT, &[Value::Int(id), Value::Text("during re-seed".into()), Value::Int(1)])
                    .with_context(|| format!("writing row {id} in the background"))?;
                count.fetch_add(1, Ordering::SeqCst);
                id += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            db.close().context("closing the background writer")?;
            Ok((id - first) as u64)
        });
        Ok(Writer { acked, stop, thread })
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until `more` further rows are acknowledged.
    fn wait_for(&self, more: u64) -> anyhow::Result<()> {
        let target = self.acked() + more;
        let deadline = Instant::now() + PATIENCE;
        while self.acked() < target {
            ensure!(!self.thread.is_finished(), "the background writer stopped");
            ensure!(Instant::now() < deadline, "the background writer made no progress for {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops it; the rows it wrote.
    fn stop(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().map_err(|_| anyhow::anyhow!("the background writer panicked"))?
    }
}

/// A client session whose first choice is replica `first` (then the others, in order).
fn client_on(addrs: &[String], first: usize) -> anyhow::Result<Client> {
    let order: Vec<&String> = addrs.iter().cycle().skip(first).take(addrs.len()).collect();
    Client::connect(&order, config()).with_context(|| format!("connecting to replica {first}"))
}

/// Quick retries: a failover should show what Barista does, not the client's back-off.
fn config() -> ClientConfig {
    ClientConfig { backoff: Duration::from_millis(50), ..ClientConfig::default() }
}

/// The node id whose client address is `addr` (for narration).
fn replica_of(cluster: &LocalCluster, addr: &str) -> String {
    cluster.replicas.iter().find(|r| r.client == addr).map_or_else(|| addr.to_string(), |r| r.id.to_string())
}

/// Every replica's table, read directly from its PostgreSQL.
fn direct_tables(cluster: &LocalCluster) -> anyhow::Result<Vec<String>> {
    (0..REPLICAS).map(|i| cluster.query(i, DIRECT).with_context(|| format!("reading replica {i}'s database"))).collect()
}

/// Every replica's table fingerprint, read directly from its PostgreSQL.
fn fingerprints(cluster: &LocalCluster) -> anyhow::Result<Vec<String>> {
    (0..REPLICAS)
        .map(|i| {
            let out = cluster.query(i, FINGERPRINT).with_context(|| format!("reading replica {i}'s database"))?;
            Ok(out.trim().to_owned())
        })
        .collect()
}

/// Prints the `barista status` table of the cluster.
fn status(cluster: &LocalCluster) {
    let answers: Vec<(String, anyhow::Result<crate::admin::Report>)> = cluster
        .replicas
        .iter()
        .zip(cluster.reports())
        .map(|(r, report)| (r.admin.clone(), report.map_err(anyhow::Error::from)))
        .collect();
    println!("\n$ barista status");
    for line in table(&answers).lines() {
        println!("  {line}");
    }
}

fn connection_details(cluster: &LocalCluster) {
    heading("Your cluster");
    let clients: Vec<&str> = cluster.replicas.iter().map(|r| r.client.as_str()).collect();
    let admins: Vec<&str> = cluster.replicas.iter().map(|r| r.admin.as_str()).collect();
    println!("Thrift client API (any replica; barista-client and the samples in clients/ take the list):");
    println!("  {}", clients.join(","));
    println!("  e.g. /usr/bin/python3 clients/python/sample.py {}", clients.join(","));
    println!("A SQL prompt through Barista (any replica; psql, pgbench and PostgreSQL drivers connect alike):");
    println!("  {}", cluster.barista_psql_command(0));
    println!(
        "A SQL prompt on each replica's own PostgreSQL (read it; write through Barista, or the replicas diverge):"
    );
    for i in 0..REPLICAS {
        println!("  replica {i}: {}", cluster.psql_command(i));
    }
    println!("Cluster status:");
    println!("  barista status --admin {}", admins.join(","));
    println!("Logs: {}/barista{{0,1,2}}.log", cluster.dir.display());
}

/// Stops everything and lists each process stopped, with its PID.
fn stop(cluster: &mut LocalCluster) -> anyhow::Result<()> {
    let stopped = cluster.stop().context("stopping the cluster")?;
    print_stopped(&stopped);
    Ok(())
}

fn print_stopped(stopped: &[Stopped]) {
    for s in stopped {
        println!("  stopped {} (pid {})", s.what, s.pid);
    }
    println!("Stopped every process this demo started.");
    let _ = std::io::stdout().flush();
}

/// SIGINT and SIGTERM handling: while the tour runs, a signal stops the cluster at once (by PID)
/// and exits; afterwards it wakes [`Signals::wait`].
struct Signals {
    waiting: Arc<AtomicBool>,
    interrupted: Arc<AtomicBool>,
    woken: mpsc::Receiver<()>,
}

impl Signals {
    fn install(cluster: &LocalCluster) -> anyhow::Result<Signals> {
        let waiting = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::channel();
        let stopper = cluster.stopper();
        let flag = waiting.clone();
        let interrupted = Arc::new(AtomicBool::new(false));
        let stopping = interrupted.clone();
        on_interrupt(move || {
            if flag.load(Ordering::SeqCst) {
                let _ = wake.send(());
                return;
            }
            stopping.store(true, Ordering::SeqCst);
            println!("\nInterrupted: stopping the cluster.");
            match stopper.stop() {
                Ok(stopped) => print_stopped(&stopped),
                Err(e) => eprintln!("barista demo: stopping the cluster: {e}"),
            }
            std::process::exit(130);
        })
        .context("handling SIGINT and SIGTERM")?;
        Ok(Signals { waiting, interrupted, woken })
    }

    /// Blocks for good if a signal cut the tour short: the handler stops everything and exits.
    fn park_if_interrupted(&self) {
        while self.interrupted.load(Ordering::SeqCst) {
            std::thread::park();
        }
    }

    /// Blocks until SIGINT or SIGTERM.
    fn wait(&self) {
        self.waiting.store(true, Ordering::SeqCst);
        let _ = self.woken.recv();
    }
}

fn heading(title: &str) {
    println!("\n=== {title} ===");
    let _ = std::io::stdout().flush();
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Arguments as a shell would need them (quoted when they hold spaces).
fn shell_words(args: &[String]) -> String {
    args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")
}

fn absolute(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("making {} absolute", dir.display()))
}

/// `target/demo` when the binary was built in a cargo `target/` directory (running from a
/// clone), else `$XDG_STATE_HOME/barista/demo` (`~/.local/state/barista/demo`).
fn default_dir(binary: &std::path::Path) -> anyhow::Result<PathBuf> {
    if let Some(target) = binary.ancestors().find(|d| d.file_name().is_some_and(|n| n == "target")) {
        return Ok(target.join("demo"));
    }
    let state = match std::env::var_os("XDG_STATE_HOME") {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local").join("state"),
            None => bail!("no --dir given, and neither XDG_STATE_HOME nor HOME is set"),
        },
    };
    Ok(state.join("barista").join("demo"))
}
