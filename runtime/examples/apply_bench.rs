//! How fast one replica's executor applies decided slots to PostgreSQL: the ceiling of a
//! restarted replica's catch-up (issue 6), without consensus, networking or other replicas.
//!
//! Builds `--slots` slots of autocommit `INSERT`s spread over `--conns` sessions (one command a
//! slot, as a replica that replays a log of single requests sees them), applies them in order with
//! a flush every `--flush-every` slots (the node flushes on a timer), and prints slots per second.
//! Without `--url` it runs a throwaway PostgreSQL of its own (`scripts/pg.sh`, default settings
//! including fsync) in a temporary directory on a free port, and stops it afterwards.
//!
//! ```sh
//! cargo run --release -p barista-runtime --example apply_bench -- --slots 20000
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use barista_core::Slot;
use barista_runtime::command::{ClientCommand, ConnId, Op, Statement};
use barista_runtime::executor::{Executor, Outcome};
use barista_runtime::postgres::PgBackend;
use barista_runtime::sql::{SqlBackend, SqlSession, SqlValue};
use barista_runtime::testkit;
use clap::Parser;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Slots per second one executor applies to PostgreSQL")]
struct Args {
    /// Slots applied (after the sessions' opens).
    #[arg(long, default_value_t = 10_000)]
    slots: u64,
    /// Sessions the inserts are spread over, round robin.
    #[arg(long, default_value_t = 4)]
    conns: u64,
    /// Slots between flushes (the node flushes every 50 ms).
    #[arg(long, default_value_t = 50)]
    flush_every: u64,
    /// An existing PostgreSQL to use (its database must be empty of Barista's tables), e.g.
    /// `host=127.0.0.1 port=5432 user=postgres dbname=bench`.
    #[arg(long)]
    url: Option<String>,
}

/// A PostgreSQL of this run's own, stopped when dropped.
struct Server {
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn start() -> anyhow::Result<Server> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the runtime crate has a parent")?;
        let port: u16 = script(repo, "free-port.sh", &[])?.trim().parse().context("free-port.sh output")?;
        let base = std::env::temp_dir().join(format!("barista-apply-bench-{}", std::process::id()));
        std::fs::create_dir_all(&base)?;
        // The server runs as user postgres when we are root: it must enter the directory.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755))?;
        let server = Server { dir: base.join("data"), port };
        script(repo, "pg.sh", &["start", &server.data(), &port.to_string()])?;
        Ok(server)
    }

    fn data(&self) -> String {
        self.dir.display().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(repo) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
            let _ = script(repo, "pg.sh", &["stop", &self.data()]);
        }
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

fn script(repo: &Path, name: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(repo.join("scripts").join(name)).args(args).output()?;
    if !out.status.success() {
        bail!("scripts/{name} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn command(conn: u64, request_seq: u64, op: Op) -> ClientCommand {
    ClientCommand { conn: ConnId(conn + 1), request_seq, timestamp_us: 1_764_000_000_000_000, op }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = if args.url.is_none() { Some(Server::start()?) } else { None };
    let url = match (&args.url, &server) {
        (Some(url), _) => url.clone(),
        (None, Some(s)) => format!("host=127.0.0.1 port={} user=postgres dbname=postgres", s.port),
        (None, None) => unreachable!("a server is started when no URL is given"),
    };
    let backend = PgBackend::new(&url)?;
    let mut setup = backend.connect().await?;
    setup
        .execute("CREATE TABLE bench (w int8, n int8, at timestamptz DEFAULT now())", &[])
        .await?
        .map_err(|e| anyhow::anyhow!("creating the table: {e}"))?;
    let mut executor = Executor::open(backend).await?;

    let mut slot: Slot = executor.applied();
    for conn in 0..args.conns {
        slot += 1;
        executor.apply(slot, &testkit::slot([command(conn, 1, Op::Open)])).await?;
    }
    let values: Vec<_> = (0..args.slots)
        .map(|i| {
            let (conn, n) = (i % args.conns, i / args.conns);
            let stmt = Statement {
                sql: "INSERT INTO bench (w, n) VALUES ($1, $2)".into(),
                params: vec![SqlValue::Int(conn as i64), SqlValue::Int(n as i64)],
            };
            testkit::slot([command(conn, n + 2, Op::Execute(stmt))])
        })
        .collect();

    let started = Instant::now();
    for (i, value) in values.iter().enumerate() {
        slot += 1;
        for applied in executor.apply(slot, value).await? {
            if let Outcome::Error(e) = applied.outcome {
                bail!("slot {slot}: {e}");
            }
        }
        if (i as u64 + 1) % args.flush_every == 0 {
            executor.flush().await?;
        }
    }
    executor.flush().await?;
    let elapsed = started.elapsed();
    println!(
        "{} slots ({} sessions, flush every {}): {:.2} s, {:.0} slots/s, {:.0} us/slot",
        args.slots,
        args.conns,
        args.flush_every,
        elapsed.as_secs_f64(),
        args.slots as f64 / elapsed.as_secs_f64(),
        elapsed.as_micros() as f64 / args.slots as f64
    );
    Ok(())
}
