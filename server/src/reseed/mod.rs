//! `barista reseed`: rebuilds a stopped replica's database from a consistent snapshot of a
//! healthy replica that keeps serving (DESIGN.md section 6, issue 6 item 3).
//!
//! # Why a snapshot is enough
//! The executor writes AP (`sqlpaxoslog`) in the same PostgreSQL transaction as a slot's work, and
//! every request's outcome (`barista_sessions`) in the same transaction as its effects; a
//! transaction that ends in the middle of a slot moves the durable position past itself in the
//! same transaction (`runtime/src/executor/mod.rs`). So every transaction-consistent state of a
//! replica's database is a state that replica could be in right after a crash: restored anywhere,
//! it says where to resume (AP + 1), and replaying the log from there answers the commands whose
//! effects it already holds from their records instead of running them again. A REPEATABLE READ
//! transaction on the source exports such a state (`pg_export_snapshot`) and `pg_dump --snapshot`
//! copies exactly it, while the source goes on applying slots. The restored replica then catches
//! up from its peers like any replica restarted after a crash.
//!
//! Two kinds of state are outside MVCC and get their own care ([`snapshot`]): sequences
//! (`nextval` is not rolled back, and `pg_dump` reads their current values, not the snapshot's),
//! and roles (cluster-wide, not in a database dump).
//!
//! # Steps
//! 1. The source: its `/status` must say healthy and not in need of a re-seed; it must not be the
//!    target.
//! 2. The target: its `barista serve` must not run (its admin address must not answer, and no
//!    Barista connection may be open on its database), and its database must be empty unless
//!    `--force` (then its schemas are dropped).
//! 3. The snapshot: taken while the source's executor waits between two transactions with no
//!    sequence draw outstanding (see [`snapshot`]), with AP and every sequence's state read at
//!    that point, and the roles as of it.
//! 4. The copy: roles first, then `pg_dump --snapshot | psql --single-transaction`, with the
//!    sequences set and AP checked inside the same transaction: the target gets all of it or
//!    nothing.
//! 5. The acceptor state: the target's own ZooKeeper store keeps its promise, but its slots up to
//!    the snapshot's AP are deleted (a purge below its new `Done`): they are decided everywhere,
//!    and recovery requires the retained log to be decided without gaps up to AP.
//! 6. The log: the source must still retain slot AP + 1 (`retain_slots` may have purged past it
//!    while copying); else the re-seed must be run again.
//!
//! Then the operator starts the replica with `barista serve` and its configuration, as always.

mod restore;
mod snapshot;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use barista_core::{Persist, Slot};
use barista_runtime::zookeeper::{ZkConfig, ZkStore};
use clap::ArgMatches;

use crate::admin::{Report, fetch_report};
use crate::cli::ReseedArgs;
use crate::config::ServeConfig;

/// How long a replica's admin endpoint gets to answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait for a PostgreSQL connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `application_name` of the re-seed's own connections (so they are never taken for Barista's).
const APPLICATION_NAME: &str = "barista-reseed";
/// `application_name` of a running replica's connections (`runtime::postgres`).
const REPLICA_APPLICATION_NAME: &str = "barista";

/// What a re-seed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reseeded {
    /// The replica re-seeded.
    pub node: u32,
    /// The replica copied from.
    pub source: u32,
    /// AP of the copy: the replica resumes at the next slot.
    pub applied: Slot,
    /// Bytes of SQL copied.
    pub bytes: u64,
    /// Slot records deleted from the replica's acceptor store.
    pub slots_trimmed: usize,
}

/// Runs `barista reseed`.
pub fn run(args: ReseedArgs, matches: &ArgMatches) -> anyhow::Result<Reseeded> {
    let ReseedArgs { from, from_postgres, force, pg_bindir, replica } = args;
    let cfg = ServeConfig::load(replica, matches)?;
    let bindir = pg_bindir.map_or_else(find_pg_bindir, Ok)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let reseeded = reseed(&runtime, &cfg, &from, &from_postgres, force, &bindir);
    runtime.shutdown_timeout(Duration::from_secs(1));
    let reseeded = reseeded?;
    println!(
        "Re-seeded replica {} from replica {} at AP {}. Start it with its usual configuration \
         (barista serve ...): it replays the log from slot {} on, as after a crash.",
        reseeded.node,
        reseeded.source,
        reseeded.applied,
        reseeded.applied + 1
    );
    Ok(reseeded)
}

fn reseed(
    runtime: &tokio::runtime::Runtime,
    cfg: &ServeConfig,
    from: &str,
    from_postgres: &str,
    force: bool,
    bindir: &Path,
) -> anyhow::Result<Reseeded> {
    let started = Instant::now();
    let node = cfg.node_id;
    println!("barista reseed: replica {node} from the replica at {from}");

    // 1. The source.
    let source = healthy_source(from, node, cfg.peers.len())?;
    println!(
        "  source: replica {} ({}), healthy, AP {}, log retained from slot {}",
        source.node,
        source.role.as_deref().unwrap_or("-"),
        source.applied,
        source.floor
    );
    if source.role.as_deref() == Some("leader") {
        println!(
            "  note: replica {} leads; the snapshot may pause its executor for a moment (a follower is a \
             better source)",
            source.node
        );
    }

    // 2. The target.
    if let Ok(running) = fetch_report(&cfg.admin_listen.to_string(), Duration::from_secs(1)) {
        bail!(
            "replica {node}'s admin address {} answers (as replica {}, {}): stop that `barista serve` \
             before re-seeding its database",
            cfg.admin_listen,
            running.node,
            running.health
        );
    }
    let source_cfg = pg_config(from_postgres, "--from-postgres")?;
    let target_cfg = pg_config(&cfg.postgres, "postgres")?;
    let target = runtime.block_on(restore::Target::open(&target_cfg))?;
    runtime.block_on(target.check_idle())?;
    // Before anything is dropped: a target configuration that names the source's database
    // would otherwise wipe a healthy replica.
    let source_id = runtime.block_on(async {
        let client = connect(&source_cfg, "the source database (--from-postgres)").await?;
        Ok::<_, anyhow::Error>(database_identity(&client).await)
    })?;
    ensure!(
        source_id.is_none() || source_id != runtime.block_on(database_identity(&target.client)),
        "--from-postgres and replica {node}'s `postgres` setting name the same database"
    );
    let contents = runtime.block_on(target.contents())?;
    if !contents.is_empty() {
        ensure!(
            force,
            "replica {node}'s database is not empty ({contents}); re-seeding replaces it: pass --force to \
             drop what it holds"
        );
        println!("  target: dropping what replica {node}'s database holds ({contents}): --force");
        runtime.block_on(target.clear())?;
    } else {
        println!("  target: replica {node} is stopped and its database is empty");
    }

    // 3. The snapshot.
    let snap = runtime.block_on(snapshot::take(&source_cfg))?;
    ensure!(
        snap.applied >= source.applied,
        "the database at --from-postgres is at AP {} while replica {} reported AP {}: is it that replica's \
         database?",
        snap.applied,
        source.node,
        source.applied
    );
    println!(
        "  snapshot {} at AP {}{}: {} tables, {} sequences, {} roles ({})",
        snap.id,
        snap.applied,
        if snap.commands_done > 0 {
            format!(" (+{} commands of the next slot)", snap.commands_done)
        } else {
            String::new()
        },
        snap.tables,
        snap.sequences.len(),
        snap.roles.len(),
        snap.moment
    );

    // 4. The copy.
    runtime.block_on(target.create_roles(&snap.roles, &snap.memberships))?;
    let copy = restore::copy(bindir, from_postgres, &cfg.postgres, &snap);
    let applied = snap.applied;
    runtime.block_on(snap.finish());
    let bytes = copy?;
    let restored = runtime.block_on(target.applied())?;
    ensure!(restored == applied, "the restored database is at AP {restored}, not {applied}");
    drop(target);

    // 5. The acceptor state.
    let slots_trimmed = runtime.block_on(trim_acceptor_store(cfg, applied))?;

    // 6. The log.
    let after = fetch_report(from, ADMIN_TIMEOUT).with_context(|| format!("asking {from} for /status again"))?;
    ensure!(
        after.floor <= applied + 1,
        "while copying, replica {} purged its log up to slot {} (retain_slots), past the snapshot's next slot \
         {}: replica {node} could not catch up. Run the re-seed again with --force (it is quicker the second \
         time round), or raise retain_slots",
        after.node,
        after.floor - 1,
        applied + 1
    );
    println!(
        "  done in {:.1} s; replica {} still holds the log from slot {} (needed: {})",
        started.elapsed().as_secs_f64(),
        after.node,
        after.floor,
        applied + 1
    );
    Ok(Reseeded { node, source: source.node, applied, bytes, slots_trimmed })
}

/// The source's report, if it may be copied from.
fn healthy_source(from: &str, target: u32, nodes: usize) -> anyhow::Result<Report> {
    let report = fetch_report(from, ADMIN_TIMEOUT)
        .with_context(|| format!("asking the source replica's admin address {from} for /status"))?;
    ensure!(report.node != target, "--from {from} is replica {target} itself: name another replica");
    ensure!(
        (report.node as usize) < nodes,
        "--from {from} is replica {}, but this cluster's `peers` list only {nodes} replicas",
        report.node
    );
    ensure!(
        !report.needs_reseed,
        "replica {} at {from} fell behind the purge point and needs a re-seed itself: copy from another replica",
        report.node
    );
    ensure!(
        report.is_healthy(),
        "replica {} at {from} is {}{}: re-seed from a healthy replica",
        report.node,
        report.health,
        report.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
    );
    Ok(report)
}

/// A tokio-postgres configuration for `conninfo`, with the re-seed's application name.
fn pg_config(conninfo: &str, what: &str) -> anyhow::Result<tokio_postgres::Config> {
    let mut config = tokio_postgres::Config::from_str(conninfo)
        .with_context(|| format!("{what}: not a PostgreSQL connection string"))?;
    ensure!(!config.get_hosts().is_empty(), "{what}: the connection string names no host");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name(APPLICATION_NAME);
    Ok(config)
}

/// Connects, and runs the connection on the current runtime.
async fn connect(config: &tokio_postgres::Config, what: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        config.connect(tokio_postgres::NoTls).await.with_context(|| format!("connecting to {what}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The PostgreSQL cluster's system identifier and the database's name, when this role may read
/// them (`pg_control_system` is for superusers and `pg_monitor` by default).
async fn database_identity(client: &tokio_postgres::Client) -> Option<(String, String)> {
    let row = client
        .query_one("SELECT system_identifier::text, current_database()::text FROM pg_control_system()", &[])
        .await
        .ok()?;
    Some((row.get(0), row.get(1)))
}

/// Deletes the target's acceptor records of slots through `applied` (its new `Done`); returns how
/// many there were. Nothing is written if the replica has no acceptor state at all: that is a
/// replica that never ran, or one whose acceptor state was lost, which is not this procedure's
/// business.
async fn trim_acceptor_store(cfg: &ServeConfig, applied: Slot) -> anyhow::Result<usize> {
    let base = format!("{}/paxos/{}", cfg.zookeeper_root.trim_end_matches('/'), cfg.node_id);
    let zk = zookeeper_client::Client::connector()
        .with_session_timeout(cfg.zookeeper_session_timeout)
        .with_connection_timeout(CONNECT_TIMEOUT)
        .with_fail_eagerly()
        .connect(&cfg.zookeeper)
        .await
        .with_context(|| format!("connecting to ZooKeeper at {}", cfg.zookeeper))?;
    let exists = zk.check_stat(&format!("{base}/promise")).await.with_context(|| format!("reading {base}"))?;
    drop(zk);
    if exists.is_none() {
        println!("  acceptor state: replica {} has none in ZooKeeper ({base}): nothing to trim", cfg.node_id);
        return Ok(0);
    }
    let mut zk = ZkConfig::new(cfg.zookeeper.clone(), cfg.node_id.to_string());
    zk.root = cfg.zookeeper_root.clone();
    zk.session_timeout = cfg.zookeeper_session_timeout;
    let mut store = ZkStore::new(zk).context("ZooKeeper settings")?;
    let state = store.try_load().await.with_context(|| format!("loading replica {}'s acceptor state", cfg.node_id))?;
    let below = state.slots.range(..=applied).count();
    if below > 0 {
        let purge = Persist { purge_below: Some(applied + 1), ..Persist::default() };
        store.try_persist(&purge).await.with_context(|| format!("deleting slots of {base} up to {applied}"))?;
    }
    println!(
        "  acceptor state: kept replica {}'s promise and {} slot records above {applied}; deleted {below} \
         at or below it (decided everywhere)",
        cfg.node_id,
        state.slots.len() - below
    );
    Ok(below)
}

/// `pg_dump` and `psql`: the newest `/usr/lib/postgresql/*/bin` (Debian's layout; a binary at
/// least as new as the source server is needed), else the directory of `pg_dump` on PATH.
fn find_pg_bindir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_dump").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|d| d.join("pg_dump").is_file()))
        .ok_or_else(|| anyhow!("pg_dump not found (install PostgreSQL's client programs, or pass --pg-bindir)"))
}
