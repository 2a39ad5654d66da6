//! pgbench's TPC-B-like script, in one invocation on one machine (issue 10), against
//!
//! - `PostgreSQL`: one PostgreSQL server directly;
//! - `pgpool-II`: pgpool-II in native replication mode over three PostgreSQL servers
//!   (`scripts/pgpool.sh`, the setup the TPC-C side-by-side uses; Debian package `pgpool2`);
//! - `Barista`: a three-replica Barista cluster through replica 0's PostgreSQL-protocol port;
//!
//! and prints tps and average latency per client count, then the ratios.
//!
//! ```sh
//! cargo build --release -p barista-server --bin barista --example pgbench_compare
//! target/release/examples/pgbench_compare --seconds 10 --clients 1,4,16
//! ```
//!
//! Every target runs the same pgbench binary, script (`-M simple` by default, `--mode` to
//! change) and scale 1 tables, on servers with PostgreSQL's default settings (fsync on). The
//! direct side uses replica 0's own server, in a database of its own (so Barista's replicas stay
//! identical). The tables are loaded everywhere with plain `pgbench -i` (its default steps: COPY
//! from the client, then VACUUM), and pgbench runs with `-n`. The targets take turns
//! at each client count, so a noisy moment of a shared machine does not land on one only.
//! Barista lets one explicit transaction be open cluster-wide at a time, so its clients take
//! turns; pgpool-II runs each write on its main server first, then on the two others.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use barista_server::local_cluster::default_scripts_dir;
use clap::{Parser, ValueEnum};

#[allow(dead_code)] // `quantile`: pgbench reports its own figures
mod common;

/// The systems measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum System {
    /// One PostgreSQL server.
    Postgres,
    /// pgpool-II native replication over three PostgreSQL servers.
    Pgpool,
    /// Barista's PostgreSQL port (three replicas).
    Barista,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Postgres => "PostgreSQL",
            System::Pgpool => "pgpool-II",
            System::Barista => "Barista",
        }
    }
}

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "pgbench TPC-B-like: PostgreSQL directly, pgpool-II native replication (3 servers) and Barista's \
             PostgreSQL port (3 replicas)")]
struct Args {
    /// Measured seconds per client count and system.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// The systems to measure, comma-separated; ratios are against the first.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "postgres,pgpool,barista")]
    systems: Vec<System>,
    /// pgbench's query mode: simple, extended or prepared.
    #[arg(long, default_value = "simple")]
    mode: String,
    /// Directory of pgbench and psql.
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pg_bindir: PathBuf,
    /// State directory (emptied first): the cluster in `barista/`, pgpool-II and its servers in
    /// `pgpool/`, each removed when stopped.
    #[arg(long, default_value = "target/pgbench-compare")]
    dir: PathBuf,
}

/// Where a system listens.
struct Target {
    system: System,
    port: String,
    dbname: &'static str,
}

/// What pgbench reported.
#[derive(Clone, Copy)]
struct Measured {
    tps: f64,
    latency_ms: f64,
}

/// pgpool-II and its three servers, started by `scripts/pgpool.sh`; stopped (by their PID files)
/// when dropped.
struct Pgpool {
    scripts: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Pgpool {
    /// Starts three PostgreSQL servers and pgpool-II in `dir` on free ports, taking up to
    /// `clients` connections at once.
    fn start(scripts: &Path, dir: &Path, clients: usize) -> anyhow::Result<Pgpool> {
        let ports: Vec<u16> =
            script_output(scripts, "free-port.sh", &["4"])?.lines().filter_map(|p| p.trim().parse().ok()).collect();
        let [port, backends @ ..] = ports.as_slice() else { bail!("free-port.sh 4 printed {ports:?}") };
        let pgpool = Pgpool { scripts: scripts.to_path_buf(), dir: dir.to_path_buf(), port: *port };
        let mut args = vec!["start".to_string(), path_str(dir), port.to_string()];
        args.extend(backends.iter().map(u16::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A few more than pgbench's clients: pgpool-II refuses a connection beyond its children.
        let out = Command::new(scripts.join("pgpool.sh"))
            .args(&args)
            .env("PGPOOL_CHILDREN", (clients + 4).to_string())
            .output()
            .context("running scripts/pgpool.sh")?;
        if !out.status.success() {
            // `pgpool` is dropped here, which stops whatever did start.
            bail!("scripts/pgpool.sh {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(pgpool)
    }
}

impl Drop for Pgpool {
    fn drop(&mut self) {
        if let Err(e) = script_output(&self.scripts, "pgpool.sh", &["stop", &path_str(&self.dir)]) {
            eprintln!("stopping pgpool-II: {e:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs `scripts/NAME ARGS`; its stdout, or an error with its stderr.
fn script_output(scripts: &Path, name: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(scripts.join(name)).args(args).output().with_context(|| format!("running {name}"))?;
    if !out.status.success() {
        bail!("scripts/{name} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(args: &Args, program: &str, target: &Target, extra: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args.pg_bindir.join(program))
        .args(["-h", "127.0.0.1", "-p", &target.port, "-U", "postgres"])
        .args(extra)
        .env("PGDATABASE", target.dbname)
        .output()
        .with_context(|| format!("running {program}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("{program} {} on {}: {}\n{text}", extra.join(" "), target.system.name(), out.status);
    }
    Ok(text)
}

fn reported(out: &str, label: &str) -> anyhow::Result<f64> {
    let line = out.lines().find(|l| l.starts_with(label)).with_context(|| format!("no {label:?} in:\n{out}"))?;
    let value = line[label.len()..].split_whitespace().next().unwrap_or_default();
    value.parse().with_context(|| format!("{label:?} in {line:?}"))
}

fn prepare(args: &Args, target: &Target) -> anyhow::Result<()> {
    // pgbench's default steps (`dtgvp`): the same load on every system.
    run(args, "pgbench", target, &["-i", "-s", "1"])?;
    Ok(())
}

fn measure(args: &Args, target: &Target, clients: usize) -> anyhow::Result<Measured> {
    let seconds = args.seconds.to_string();
    // One pgbench thread per 4 clients, so the client machine is not the bottleneck.
    let threads = clients.div_ceil(4).to_string();
    let clients = clients.to_string();
    let out = run(args, "pgbench", target, &["-n", "-T", &seconds, "-c", &clients, "-j", &threads, "-M", &args.mode])?;
    let failed = reported(&out, "number of failed transactions:")?;
    if failed > 0.0 {
        bail!("{failed} transactions failed on {}:\n{out}", target.system.name());
    }
    Ok(Measured { tps: reported(&out, "tps =")?, latency_ms: reported(&out, "latency average =")? })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut systems = args.systems.clone();
    systems.dedup();
    anyhow::ensure!(!systems.is_empty() && !args.clients.is_empty(), "nothing to measure");
    let dir = std::path::absolute(&args.dir)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("emptying {}", dir.display())),
    }
    // Declared before the pgpool guard, so that it is dropped after it.
    let cluster = common::start_cluster(&dir.join("barista"))?;
    let mut targets = Vec::new();
    // Kept until the end of main: dropping it stops pgpool-II and its servers.
    let mut _pgpool = None;
    for &system in &systems {
        let target = match system {
            System::Postgres => {
                cluster.query(0, "CREATE DATABASE pgbench_direct").context("creating the direct side's database")?;
                Target { system, port: cluster.replicas[0].pg_port.to_string(), dbname: "pgbench_direct" }
            }
            System::Pgpool => {
                println!("starting pgpool-II (native replication) over three PostgreSQL servers ...");
                let scripts = default_scripts_dir(&common::barista_binary()?);
                let max_clients = args.clients.iter().copied().max().unwrap_or(1);
                let pgpool = Pgpool::start(&scripts, &dir.join("pgpool"), max_clients)?;
                let port = pgpool.port.to_string();
                _pgpool = Some(pgpool);
                Target { system, port, dbname: "postgres" }
            }
            System::Barista => {
                let listen = &cluster.replicas[0].pg_listen;
                let port = listen.rsplit_once(':').map(|(_, p)| p.to_owned()).context("replica 0's pg_listen")?;
                Target { system, port, dbname: "postgres" }
            }
        };
        prepare(&args, &target)?;
        targets.push(target);
    }
    println!(
        "pgbench TPC-B-like, scale 1, -M {}, {} s per point, fsync on everywhere. PostgreSQL = one server; \
         pgpool-II = native replication over 3 servers; Barista = 3 replicas through replica 0's PostgreSQL port",
        args.mode, args.seconds
    );
    let mut results: Vec<(usize, Vec<Measured>)> = Vec::new();
    print!("{:>7} |", "clients");
    for t in &targets {
        print!(" {:>16} {:>16} |", format!("{} tps", t.system.name()), "latency ms");
    }
    println!();
    for &clients in &args.clients {
        let mut row = Vec::new();
        print!("{clients:>7} |");
        for target in &targets {
            let m = measure(&args, target, clients)?;
            print!(" {:>16.1} {:>16.2} |", m.tps, m.latency_ms);
            row.push(m);
        }
        println!();
        results.push((clients, row));
    }
    if targets.len() > 1 {
        println!("\nratios: tps (higher is better) and average latency (lower is better)");
        let pairs: Vec<(usize, usize)> =
            (0..targets.len()).flat_map(|b| (b + 1..targets.len()).map(move |a| (a, b))).collect();
        print!("{:>7} |", "clients");
        for &(a, b) in &pairs {
            let name = format!("{} / {}", targets[a].system.name(), targets[b].system.name());
            print!(" {name:>26} |");
        }
        println!();
        for (clients, row) in &results {
            print!("{clients:>7} |");
            for &(a, b) in &pairs {
                let cell =
                    format!("{:.3}x tps, {:.2}x lat", row[a].tps / row[b].tps, row[a].latency_ms / row[b].latency_ms);
                print!(" {cell:>26} |");
            }
            println!();
        }
    }
    Ok(())
}
