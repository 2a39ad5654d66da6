//! Autocommit INSERTs through a three-replica Barista against the same INSERTs sent directly to
//! one of its PostgreSQL servers, at several client counts, in one invocation (issue 4): rows per
//! second, p50 and p99 latency, and the ratios.
//!
//! ```sh
//! cargo build --release -p barista-server --bin barista --example insert_bench
//! target/release/examples/insert_bench --seconds 10 --clients 1,8,32
//! ```
//!
//! Both sides use the same machine, the same PostgreSQL server (replica 0's, fsync on) and the
//! same statement with three parameters; the direct clients use tokio-postgres with the statement
//! prepared once per connection, the Barista clients use `barista-client` (one thread each). The
//! direct side writes to its own database so that Barista's replicas stay identical.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use barista_client::{Client, ClientConfig, Value};
use clap::Parser;

mod common;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Autocommit INSERTs: Barista (3 replicas) versus PostgreSQL directly")]
struct Args {
    /// Measured seconds per client count and target.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// State directory of the cluster (emptied first, removed afterwards).
    #[arg(long, default_value = "target/insert-bench")]
    dir: PathBuf,
}

const INSERT: &str = "INSERT INTO bench (client, seq, payload) VALUES ($1, $2, $3)";
const CREATE: &str = "CREATE TABLE bench (client int, seq int, payload text, PRIMARY KEY (client, seq))";
/// 100 bytes per row, like a small application row.
const PAYLOAD: &str =
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

/// What one run measured: every request's latency.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        common::quantile(&sorted, p)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cluster = common::start_cluster(&args.dir)?;
    let addrs: Vec<String> = cluster.replicas.iter().map(|r| r.client.clone()).collect();
    Client::connect(&addrs, ClientConfig::default())?.execute(CREATE, &[])?;
    let pg_port = cluster.replicas[0].pg_port;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(direct_setup(pg_port))?;

    let mut rows = Vec::new();
    for (round, &clients) in args.clients.iter().enumerate() {
        let duration = Duration::from_secs(args.seconds);
        // Each round uses its own client ids, so no round's keys collide with an earlier one's.
        let first_id = round * 10_000;
        println!("{clients} client(s): Barista for {}s ...", args.seconds);
        let barista = barista_run(&addrs, clients, first_id, duration)?;
        println!("{clients} client(s): PostgreSQL directly for {}s ...", args.seconds);
        let direct = runtime.block_on(direct_run(pg_port, clients, first_id, duration))?;
        rows.push((clients, barista, direct));
    }
    drop(cluster); // stops everything by PID

    println!();
    println!(
        "{:>7} | {:>12} {:>9} {:>9} | {:>12} {:>9} {:>9} | {:>10} {:>9} {:>9}",
        "clients", "barista/s", "p50 ms", "p99 ms", "postgres/s", "p50 ms", "p99 ms", "rate ratio", "p50 x", "p99 x"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (clients, b, d) in &rows {
        println!(
            "{clients:>7} | {:>12.0} {:>9.2} {:>9.2} | {:>12.0} {:>9.2} {:>9.2} | {:>10.3} {:>9.1} {:>9.1}",
            b.rate(),
            ms(b.percentile(0.5)),
            ms(b.percentile(0.99)),
            d.rate(),
            ms(d.percentile(0.5)),
            ms(d.percentile(0.99)),
            b.rate() / d.rate(),
            ms(b.percentile(0.5)) / ms(d.percentile(0.5)),
            ms(b.percentile(0.99)) / ms(d.percentile(0.99)),
        );
    }
    println!("(rate ratio: Barista's rows/s over PostgreSQL's; p50 x, p99 x: Barista's latency over PostgreSQL's)");
    Ok(())
}

/// `clients` threads, each its own Barista session, inserting until `duration` has passed.
fn barista_run(addrs: &[String], clients: usize, first_id: usize, duration: Duration) -> anyhow::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (addrs, stop) = (addrs.to_vec(), stop.clone());
            std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                let mut db = Client::connect(&addrs, ClientConfig::default())?;
                let mut latencies = Vec::new();
                let id = Value::Int((first_id + c) as i64);
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    db.execute(INSERT, &[id.clone(), Value::Int(seq), Value::Text(PAYLOAD.into())])?;
                    latencies.push(t.elapsed());
                }
                db.close()?;
                Ok(latencies)
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    for t in threads {
        latencies.extend(t.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??);
    }
    Ok(Run { latencies, elapsed })
}

async fn connect(pg_port: u16, database: &str) -> anyhow::Result<tokio_postgres::Client> {
    let url = format!("host=127.0.0.1 port={pg_port} user=postgres dbname={database}");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A database of its own on replica 0's server, with the same table.
async fn direct_setup(pg_port: u16) -> anyhow::Result<()> {
    connect(pg_port, "postgres").await?.batch_execute("CREATE DATABASE direct").await?;
    connect(pg_port, "direct").await?.batch_execute(CREATE).await?;
    Ok(())
}

/// `clients` tasks, each its own PostgreSQL connection, inserting until `duration` has passed.
async fn direct_run(pg_port: u16, clients: usize, first_id: usize, duration: Duration) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(async move {
                let db = connect(pg_port, "direct").await?;
                let insert = db.prepare(INSERT).await?;
                let id = (first_id + c) as i32;
                let mut latencies = Vec::new();
                let mut seq: i32 = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    db.execute(&insert, &[&id, &seq, &PAYLOAD]).await?;
                    latencies.push(t.elapsed());
                    seq += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Run { latencies, elapsed: started.elapsed() })
}
