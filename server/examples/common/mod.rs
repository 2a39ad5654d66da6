//! What the benchmark programs in `examples/` share: a local three-replica cluster started from
//! the release build next to them, and quantiles of measured latencies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use barista_server::local_cluster::{LocalCluster, Options, on_interrupt};

/// Starts ZooKeeper, three PostgreSQL servers and three replicas with default settings in `dir`
/// (emptied first, removed when the cluster is dropped), running the `barista` binary next to this
/// program's directory (`target/release/examples/X` runs `target/release/barista`).
pub fn start_cluster(dir: &Path) -> anyhow::Result<LocalCluster> {
    let binary = barista_binary()?;
    let mut opts = Options::new(std::path::absolute(dir)?, &binary);
    opts.remove_dir = true;
    println!("starting ZooKeeper, three PostgreSQL servers and three replicas (default settings) ...");
    let cluster = LocalCluster::start(opts).context("starting the cluster (run scripts/setup.sh as root first?)")?;
    stop_on_signal(&cluster)?;
    Ok(cluster)
}

/// On SIGINT or SIGTERM, stops the cluster's processes (by PID, as `LocalCluster::stop` does) and
/// exits: an interrupted benchmark leaves nothing running.
fn stop_on_signal(cluster: &LocalCluster) -> anyhow::Result<()> {
    let stopper = cluster.stopper();
    on_interrupt(move || {
        eprintln!("interrupted: stopping the cluster");
        if let Err(e) = stopper.stop() {
            eprintln!("stopping the cluster: {e}");
        }
        std::process::exit(130);
    })
    .context("handling SIGINT and SIGTERM")
}

/// The `barista` binary next to this program's directory (`target/release/examples/X` runs
/// `target/release/barista`).
pub fn barista_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program")?;
    let binary = exe.parent().and_then(|d| d.parent()).map(|d| d.join("barista")).context("locating barista")?;
    if !binary.is_file() {
        bail!("{} not found: build it with `cargo build --release -p barista-server --bin barista`", binary.display());
    }
    Ok(binary)
}

/// The value at quantile `q` (0 to 1) of `sorted` latencies; zero for none.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).copied().unwrap_or_default()
}
