//! pgbench's TPC-B-like script against one PostgreSQL and against Barista's PostgreSQL-protocol
//! port (three replicas), in one invocation on one machine (issue 10): tps and average latency
//! per client count, and the ratios.
//!
//! ```sh
//! cargo build --release -p barista-server --bin barista --example pgbench_compare
//! target/release/examples/pgbench_compare --seconds 10 --clients 1,4,16
//! ```
//!
//! Both sides run the same pgbench binary, script (`-M simple` by default, `--mode` to change)
//! and scale 1 tables, against the same PostgreSQL server (replica 0's, fsync on): the direct
//! side in a database of its own (so Barista's replicas stay identical), the Barista side through
//! replica 0's `pg_listen`. The tables are loaded as `server/tests/pg_pgbench.rs` loads them
//! (Barista refuses pgbench's COPY and VACUUM), and pgbench runs with `-n`. Barista lets one
//! explicit transaction be open cluster-wide at a time, so its clients take turns.
//! pgpool-II is not measured here (it is not installed by `scripts/setup.sh`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;

#[allow(dead_code)] // `quantile`: pgbench reports its own figures
mod common;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "pgbench TPC-B-like: Barista's PostgreSQL port (3 replicas) versus PostgreSQL directly")]
struct Args {
    /// Measured seconds per client count and target.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// pgbench's query mode: simple, extended or prepared.
    #[arg(long, default_value = "simple")]
    mode: String,
    /// Directory of pgbench and psql.
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pg_bindir: PathBuf,
    /// State directory of the cluster (emptied first, removed afterwards).
    #[arg(long, default_value = "target/pgbench-compare")]
    dir: PathBuf,
}

/// pgbench's `-I G` rows for scale 1, ordered as Barista asks.
const LOAD: &str = "BEGIN;
INSERT INTO pgbench_branches (bid, bbalance) SELECT bid, 0 FROM generate_series(1, 1) AS bid ORDER BY bid;
INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT tid, (tid - 1) / 10 + 1, 0 FROM generate_series(1, 10) AS tid ORDER BY tid;
INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
  SELECT aid, (aid - 1) / 100000 + 1, 0, '' FROM generate_series(1, 100000) AS aid ORDER BY aid;
COMMIT;";

/// Where a target listens.
struct Target {
    name: &'static str,
    port: String,
    dbname: &'static str,
}

/// What pgbench reported.
struct Measured {
    tps: f64,
    latency_ms: f64,
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
        bail!("{program} {} on {}: {}\n{text}", extra.join(" "), target.name, out.status);
    }
    Ok(text)
}

fn reported(out: &str, label: &str) -> anyhow::Result<f64> {
    let line = out.lines().find(|l| l.starts_with(label)).with_context(|| format!("no {label:?} in:\n{out}"))?;
    let value = line[label.len()..].split_whitespace().next().unwrap_or_default();
    value.parse().with_context(|| format!("{label:?} in {line:?}"))
}

fn prepare(args: &Args, target: &Target) -> anyhow::Result<()> {
    run(args, "pgbench", target, &["-i", "-I", "dt", "-s", "1"])?;
    run(args, "psql", target, &["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", LOAD])?;
    run(args, "pgbench", target, &["-i", "-I", "p"])?;
    Ok(())
}

fn measure(args: &Args, target: &Target, clients: usize) -> anyhow::Result<Measured> {
    let (seconds, clients) = (args.seconds.to_string(), clients.to_string());
    // One pgbench thread per 4 clients, so the client machine is not the bottleneck.
    let threads = clients.parse::<usize>().unwrap_or(1).div_ceil(4).to_string();
    let out = run(args, "pgbench", target, &["-n", "-T", &seconds, "-c", &clients, "-j", &threads, "-M", &args.mode])?;
    let failed = reported(&out, "number of failed transactions:")?;
    if failed > 0.0 {
        bail!("{failed} transactions failed on {}:\n{out}", target.name);
    }
    Ok(Measured { tps: reported(&out, "tps =")?, latency_ms: reported(&out, "latency average =")? })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cluster = common::start_cluster(&args.dir)?;
    let direct_port = cluster.replicas[0].pg_port.to_string();
    cluster.query(0, "CREATE DATABASE pgbench_direct").context("creating the direct side's database")?;
    let barista_port =
        cluster.replicas[0].pg_listen.rsplit_once(':').map(|(_, p)| p.to_owned()).context("replica 0's pg_listen")?;
    let direct = Target { name: "PostgreSQL", port: direct_port, dbname: "pgbench_direct" };
    let barista = Target { name: "Barista", port: barista_port, dbname: "postgres" };
    for target in [&direct, &barista] {
        prepare(&args, target)?;
    }
    println!(
        "pgbench TPC-B-like, scale 1, -M {}, {} s per point; PostgreSQL = replica 0's server directly, \
         Barista = 3 replicas through replica 0's PostgreSQL port",
        args.mode, args.seconds
    );
    println!(
        "{:>7} | {:>14} {:>14} | {:>14} {:>14} | {:>9} {:>12}",
        "clients", "PG tps", "PG lat ms", "Barista tps", "Barista lat ms", "tps ratio", "latency ratio"
    );
    for &clients in &args.clients {
        let pg = measure(&args, &direct, clients)?;
        let ba = measure(&args, &barista, clients)?;
        println!(
            "{clients:>7} | {:>14.1} {:>14.2} | {:>14.1} {:>14.2} | {:>9.3} {:>12.1}",
            pg.tps,
            pg.latency_ms,
            ba.tps,
            ba.latency_ms,
            ba.tps / pg.tps,
            ba.latency_ms / pg.latency_ms
        );
    }
    Ok(())
}
