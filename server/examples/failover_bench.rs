//! The two recovery measurements of issue 6 (item 6) on one three-replica cluster on this
//! machine, with default settings:
//!
//! - failover time: the leader is killed with SIGKILL while a write load runs; the time from the
//!   kill to the first write acknowledged through `barista-client` (default client settings, a
//!   fresh request issued right after the kill), over `--kills` kills; the killed replica is
//!   restarted and the cluster waited on between kills. p50, p99, max.
//! - catch-up rate: one follower is stopped for `--down-seconds` while the load runs through the
//!   others; it is restarted, and the slots per second it replays until its AP reaches the
//!   others' are compared with the load's own slots per second. Measured twice: under the
//!   closed-loop load of the failover part (`--writers` threads writing as fast as they can, which
//!   saturates this machine), and under a paced load of `--paced-rate` commands per second. On one
//!   machine the three replicas, their PostgreSQL servers and ZooKeeper share the CPU, so a load
//!   that takes all of it leaves the replay only its share: the first ratio says how catch-up
//!   fares when the machine has nothing to spare, the second how fast a replica catches up while
//!   the cluster does ordinary work.
//!
//! ```sh
//! cargo build --release -p barista-server --bin barista --example failover_bench
//! target/release/examples/failover_bench --kills 20
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use barista_client::{Client, ClientConfig, Value};
use barista_server::local_cluster::LocalCluster;
use clap::Parser;

mod common;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Failover time and catch-up rate of a three-replica Barista")]
struct Args {
    /// Leader kills measured.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Writer threads of the background load.
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Seconds a follower stays down while the load runs, for each catch-up measurement.
    #[arg(long, default_value_t = 15)]
    down_seconds: u64,
    /// Commands per second of the paced load for the second catch-up measurement (0 skips it).
    #[arg(long, default_value_t = 100)]
    paced_rate: u64,
    /// State directory of the cluster (emptied first, removed afterwards).
    #[arg(long, default_value = "target/failover-bench")]
    dir: PathBuf,
}

const INSERT: &str = "INSERT INTO bench (w, n) VALUES ($1, $2)";
/// Longest wait for anything the cluster should do on its own (an election, a restart).
const LIMIT: Duration = Duration::from_secs(60);

/// A background write load through `barista-client`: each writer as fast as it can, or all of
/// them together at a fixed rate.
struct Load {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `rate` commands per second over all writers, or `None` for as fast as they go.
    fn start(addrs: &[String], writers: u64, rate: Option<u64>) -> Load {
        let (acked, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        // Each writer's share of the rate, on a fixed schedule: a late command does not move the
        // ones after it, so the rate holds as long as the cluster keeps up.
        let interval = rate.map(|r| Duration::from_secs_f64(writers as f64 / r.max(1) as f64));
        let threads = (0..writers)
            .map(|w| {
                let (addrs, acked, stop) = (addrs.to_vec(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Many rounds: the load must outlast every election without giving up.
                    let cfg = ClientConfig { rounds: 50, ..ClientConfig::default() };
                    let Ok(mut db) = Client::connect(&addrs, cfg) else { return };
                    let mut n = 0;
                    let mut due = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(interval) = interval {
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            due += interval;
                        }
                        n += 1;
                        // An error means the retries ran out during an election: carry on.
                        if db.execute(INSERT, &[Value::Int(w as i64 + 1), Value::Int(n)]).is_ok() {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load { acked, stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The highest AP among the running replicas other than `except`.
fn others_applied(cluster: &LocalCluster, except: usize) -> u64 {
    (0..cluster.replicas.len())
        .filter(|i| *i != except)
        .filter_map(|i| cluster.report(i).ok())
        .map(|r| r.applied)
        .max()
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cluster = common::start_cluster(&args.dir)?;
    let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    Client::connect(&addrs, ClientConfig::default())?.execute("CREATE TABLE bench (w int, n int)", &[])?;
    let load = Load::start(&addrs, args.writers, None);

    // (a) Failover time.
    let mut probe = Client::connect(&addrs, ClientConfig { rounds: 50, ..ClientConfig::default() })?;
    let mut seq = 0;
    let mut times = Vec::with_capacity(args.kills);
    for kill in 1..=args.kills {
        let leader = cluster.leader(LIMIT)?;
        seq += 1;
        probe.execute(INSERT, &[Value::Int(0), Value::Int(seq)]).context("write before the kill")?;
        let killed_at = Instant::now();
        cluster.kill_replica(leader);
        let mut failed = 0;
        loop {
            seq += 1;
            match probe.execute(INSERT, &[Value::Int(0), Value::Int(seq)]) {
                Ok(_) => break,
                Err(e) if killed_at.elapsed() < LIMIT => {
                    failed += 1;
                    eprintln!("  write after kill {kill} failed, retrying: {e}");
                }
                Err(e) => return Err(e).context("no write succeeded after the kill"),
            }
        }
        let took = killed_at.elapsed();
        times.push(took);
        cluster.start_replica(leader)?;
        cluster.wait_ready(LIMIT)?;
        let new_leader = cluster.leader(LIMIT)?;
        println!(
            "kill {kill:>3}/{}: leader {leader} killed, first write acknowledged after {}{}; new leader {new_leader}",
            args.kills,
            ms(took),
            if failed > 0 { format!(" ({failed} client errors first)") } else { String::new() }
        );
    }
    times.sort_unstable();
    // Printed now: a catch-up that fails below must not lose these.
    println!();
    println!("failover time (leader SIGKILL -> first acknowledged write), {} kills:", times.len());
    println!("  {:<10} {:>10}", "p50", ms(common::quantile(&times, 0.50)));
    println!("  {:<10} {:>10}", "p99", ms(common::quantile(&times, 0.99)));
    println!("  {:<10} {:>10}", "max", ms(times.last().copied().unwrap_or_default()));
    println!("  {:<10} {:>10}", "min", ms(times.first().copied().unwrap_or_default()));

    // (b) Catch-up rate, under the same load, then under a paced one; each printed when measured.
    catch_up(&mut cluster, &load, args.down_seconds)?
        .print(&format!("closed-loop load, {} writers as fast as they go", args.writers));
    load.stop();
    if args.paced_rate > 0 {
        let load = Load::start(&addrs, args.writers, Some(args.paced_rate));
        catch_up(&mut cluster, &load, args.down_seconds)?.print(&format!("paced load, {} commands/s", args.paced_rate));
        load.stop();
    }
    cluster.wait_applied(LIMIT)?;
    cluster.stop()?;
    Ok(())
}

/// One catch-up measurement.
struct CatchUp {
    replica: usize,
    down_for: Duration,
    /// Slots per second the others decided while it was down.
    load_rate: f64,
    /// Commands the load had acknowledged meanwhile.
    commands: u64,
    ap_at_stop: u64,
    ap_at_restart: u64,
    replayed: u64,
    recovery: Duration,
    replay: Duration,
    caught_up_at: u64,
    /// Replayed slots per second from the restart, process start included.
    total_rate: f64,
}

/// Stops the follower after the leader for `down_seconds` while `load` runs, restarts it and
/// waits until its AP reaches the others'.
fn catch_up(cluster: &mut LocalCluster, load: &Load, down_seconds: u64) -> anyhow::Result<CatchUp> {
    let leader = cluster.leader(LIMIT)?;
    let down = (leader + 1) % cluster.replicas.len();
    cluster.wait_applied(LIMIT)?;
    cluster.stop_replica(down);
    let (t0, ap0) = (Instant::now(), others_applied(cluster, down));
    let acked0 = load.acked.load(Ordering::Relaxed);
    println!("replica {down} stopped; load runs through the others for {down_seconds} s ...");
    std::thread::sleep(Duration::from_secs(down_seconds)); // the measurement window itself
    let (down_for, ap1) = (t0.elapsed(), others_applied(cluster, down));
    let commands = load.acked.load(Ordering::Relaxed) - acked0;
    let restarted_at = Instant::now();
    cluster.start_replica(down)?;
    // Its AP as it recovered, from its first answer; then every 20 ms until it reaches the others.
    let ap_at_restart = loop {
        if let Ok(r) = cluster.report(down)
            && r.health == "healthy"
        {
            break r.applied;
        }
        if restarted_at.elapsed() > LIMIT {
            bail!("replica {down} did not come back:\n{}", cluster.logs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let recovery = restarted_at.elapsed();
    let replay_start = Instant::now();
    let caught_up_at = loop {
        let mine = cluster.report(down).map(|r| r.applied).unwrap_or(0);
        let theirs = others_applied(cluster, down);
        if mine >= theirs {
            break mine;
        }
        // Generous: under a load that takes the whole machine, replay barely outruns the load.
        if restarted_at.elapsed() > LIMIT * 15 {
            bail!("replica {down} did not catch up: AP {mine}, others {theirs}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let replay = replay_start.elapsed();
    let replayed = caught_up_at - ap_at_restart;
    Ok(CatchUp {
        replica: down,
        down_for,
        load_rate: (ap1 - ap0) as f64 / down_for.as_secs_f64(),
        commands,
        ap_at_stop: ap0,
        ap_at_restart,
        replayed,
        recovery,
        replay,
        caught_up_at,
        total_rate: replayed as f64 / restarted_at.elapsed().as_secs_f64(),
    })
}

impl CatchUp {
    fn print(&self, load: &str) {
        let replay_rate = self.replayed as f64 / self.replay.as_secs_f64().max(0.001);
        println!();
        println!("catch-up of replica {}, down {:.1} s under a {load}:", self.replica, self.down_for.as_secs_f64());
        let row = |what: &str, value: String| println!("  {what:<44} {value:>12}");
        row("load while it was down", format!("{:.0} slots/s", self.load_rate));
        row("  (commands acknowledged meanwhile)", self.commands.to_string());
        row("others' AP when it stopped", self.ap_at_stop.to_string());
        row("its AP at its first healthy answer", self.ap_at_restart.to_string());
        row("slots replayed after restart", self.replayed.to_string());
        row("restart to first answer (recovery)", ms(self.recovery));
        row("replay time, first answer -> caught up", ms(self.replay));
        row("replay rate", format!("{replay_rate:.0} slots/s"));
        row("replay rate incl. process restart", format!("{:.0} slots/s", self.total_rate));
        row("replay rate / load rate", format!("{:.1}x", replay_rate / self.load_rate.max(1e-9)));
        row("caught up at slot", self.caught_up_at.to_string());
    }
}
