//! Helpers for the tests that run PostgreSQL clients through Barista's PostgreSQL-protocol port
//! (`pg_*.rs`).
#![allow(dead_code)] // each test binary uses part of this module

use std::path::PathBuf;
use std::process::Command;

use crate::support::Cluster;

/// A PostgreSQL client program (`psql`, `pgbench`): from `$PG_BINDIR`, else Debian's PostgreSQL
/// 15 (`scripts/setup.sh`), else PATH.
pub fn pg_program(name: &str) -> PathBuf {
    let dir = std::env::var_os("PG_BINDIR").map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from);
    let path = dir.join(name);
    if path.is_file() { path } else { PathBuf::from(name) }
}

/// Host and port of replica `i`'s PostgreSQL-protocol front end.
pub fn pg_addr(cluster: &Cluster, i: usize) -> (String, String) {
    let (host, port) = cluster.replicas[i].pg_listen.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.to_owned())
}

/// `program` (`psql`, `pgbench`) connected to replica `i`'s PostgreSQL-protocol port as user
/// postgres with `password`, its error output merged into its output (so that errors appear
/// where they happened).
pub fn pg_client(cluster: &Cluster, i: usize, program: &str, password: &str) -> Command {
    let (host, port) = pg_addr(cluster, i);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec \"$0\" \"$@\" 2>&1"])
        .arg(pg_program(program))
        .args(["-h", &host, "-p", &port, "-U", "postgres"])
        .env("PGPASSWORD", password)
        .env("PGDATABASE", "postgres")
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE");
    cmd
}
