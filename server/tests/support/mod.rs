//! A real three-replica Barista on one machine, for integration tests: three PostgreSQL clusters
//! and one ZooKeeper started by `scripts/pg.sh` and `scripts/zk.sh`, and three `barista serve`
//! processes (the built binary), all on free 127.0.0.1 ports in one temporary directory.
//!
//! Cleanup: [`Cluster`]'s `Drop` stops the barista processes by PID and the services through their
//! scripts (which use their PID files), also when a test fails. A watcher process, in a process
//! group of its own, does the same once the test process has exited (should it be killed before
//! `Drop` runs), then removes the directory. Nothing is ever stopped by process name.
//!
//! PostgreSQL and ZooKeeper must be installed (`scripts/setup.sh`): without them the tests fail
//! and say so, never skip.
#![allow(dead_code)] // each test binary uses part of this module

use std::fmt::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use barista_server::admin::{Report, fetch_report, http_get};
use barista_server::api::generated::{BaristaSyncClient, DBException};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{
    ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, TTcpChannel, WriteHalf,
};

/// Replicas in the cluster.
pub const REPLICAS: usize = 3;

/// The generated Thrift client over a buffered TCP connection.
pub type Client = BaristaSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<TTcpChannel>>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<TTcpChannel>>>,
>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is inside the repository").to_owned()
}

/// Runs a script from `scripts/`; its stdout, or why it failed.
fn script(name: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(repo().join("scripts").join(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/{name}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("scripts/{name} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The PostgreSQL binaries' directory, as the scripts find it.
fn pg_bindir() -> PathBuf {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1/scripts/lib.sh" && pg_bindir"#)
        .arg("pg_bindir")
        .arg(repo())
        .output()
        .unwrap_or_else(|e| panic!("running bash: {e}"));
    assert!(
        out.status.success(),
        "PostgreSQL is not installed ({}); run scripts/setup.sh as root",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit` saying `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One replica's addresses and process.
pub struct Replica {
    /// Node id.
    pub id: usize,
    /// Its PostgreSQL's port.
    pub pg_port: u16,
    /// Thrift client API.
    pub client: String,
    /// Admin HTTP.
    pub admin: String,
    /// The `barista serve` process.
    process: Option<Child>,
    log: PathBuf,
}

/// The services and three replicas. Dropping it stops everything.
pub struct Cluster {
    /// The temporary directory holding everything.
    pub dir: PathBuf,
    /// The replicas, by node id.
    pub replicas: Vec<Replica>,
    zk_port: u16,
    bindir: PathBuf,
    /// Stops everything if this process dies before `Drop` runs.
    _watcher: Child,
}

impl Cluster {
    /// Starts ZooKeeper, three PostgreSQL clusters and three replicas, and waits until every
    /// replica is healthy and they agree on a leader. `env(i)` adds environment variables to
    /// replica `i` (every configuration key is also one).
    pub fn start(label: &str, env: impl Fn(usize) -> Vec<(String, String)>) -> Cluster {
        let dir = std::env::temp_dir().join(format!("barista-server-test-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // PostgreSQL runs as user postgres (when we are root), which must enter this directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod the test directory");
        let bindir = pg_bindir();
        let watcher = spawn_watcher(&dir);
        let ports: Vec<u16> = script("free-port.sh", &["13"])
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(|p| p.trim().parse().expect("free-port.sh prints ports"))
            .collect();
        let zk_port = ports[0];
        let replicas = (0..REPLICAS)
            .map(|i| Replica {
                id: i,
                pg_port: ports[1 + i],
                client: format!("127.0.0.1:{}", ports[4 + i]),
                admin: format!("127.0.0.1:{}", ports[7 + i]),
                process: None,
                log: dir.join(format!("barista{i}.log")),
            })
            .collect();
        let peers: Vec<String> = (0..REPLICAS).map(|i| format!("\"127.0.0.1:{}\"", ports[10 + i])).collect();
        let mut cluster = Cluster { dir, replicas, zk_port, bindir, _watcher: watcher };
        cluster.start_services();
        for i in 0..REPLICAS {
            let config = cluster.write_config(i, &peers.join(", "));
            cluster.spawn_replica(i, &config, &env(i));
        }
        cluster.wait_ready();
        cluster
    }

    /// ZooKeeper and the three PostgreSQL clusters, in parallel (about a second).
    fn start_services(&self) {
        std::thread::scope(|scope| {
            let zk_dir = self.dir.join("zk");
            let zk_port = self.zk_port.to_string();
            let zk = scope.spawn(move || script("zk.sh", &["start", &zk_dir.to_string_lossy(), &zk_port]).map(drop));
            let pgs: Vec<_> = self
                .replicas
                .iter()
                .map(|r| {
                    let data = self.dir.join(format!("pg{}", r.id));
                    let port = r.pg_port;
                    scope.spawn(move || {
                        script("pg.sh", &["start", &data.to_string_lossy(), &port.to_string()])?;
                        // Test data need not survive a power failure: no fsync on commit.
                        self.psql(port, "ALTER SYSTEM SET fsync = off")?;
                        self.psql(port, "SELECT pg_reload_conf()").map(drop)
                    })
                })
                .collect();
            let mut failures = Vec::new();
            for handle in pgs.into_iter().chain([zk]) {
                match handle.join() {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => failures.push(e),
                    Err(_) => failures.push("a service start panicked".into()),
                }
            }
            assert!(failures.is_empty(), "starting the services (run scripts/setup.sh?):\n{}", failures.join("\n"));
        });
    }

    fn write_config(&self, i: usize, peers: &str) -> PathBuf {
        let r = &self.replicas[i];
        let text = format!(
            r#"node_id = {i}
peers = [{peers}]
client_listen = "{client}"
admin_listen = "{admin}"
postgres = "host=127.0.0.1 port={pg} user=postgres dbname=postgres"
zookeeper = "127.0.0.1:{zk}"
zookeeper_root = "/barista-test"
election_timeout_ms = 300
request_timeout_ms = 20000
"#,
            client = r.client,
            admin = r.admin,
            pg = r.pg_port,
            zk = self.zk_port,
        );
        let path = self.dir.join(format!("barista{i}.toml"));
        std::fs::write(&path, text).expect("write a replica's configuration");
        path
    }

    fn spawn_replica(&mut self, i: usize, config: &Path, env: &[(String, String)]) {
        let log = std::fs::File::create(&self.replicas[i].log).expect("create a replica's log");
        let child = Command::new(env!("CARGO_BIN_EXE_barista"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting barista serve: {e}"));
        std::fs::write(self.dir.join(format!("barista{i}.pid")), child.id().to_string()).expect("write a pid file");
        self.replicas[i].process = Some(child);
    }

    /// Waits until every replica is healthy and all follow the same leader.
    fn wait_ready(&mut self) {
        let admins: Vec<String> = self.replicas.iter().map(|r| r.admin.clone()).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for r in &mut self.replicas {
                if let Some(Ok(Some(status))) = r.process.as_mut().map(Child::try_wait) {
                    panic!("replica {} exited ({status}) while starting:\n{}", r.id, tail(&r.log));
                }
            }
            let reports: Vec<Option<Report>> =
                admins.iter().map(|a| fetch_report(a, Duration::from_secs(1)).ok()).collect();
            let leaders: Vec<Option<u32>> = reports.iter().map(|r| r.as_ref().and_then(|r| r.leader)).collect();
            if reports.iter().all(|r| r.as_ref().is_some_and(Report::is_healthy))
                && leaders[0].is_some()
                && leaders.iter().all(|l| *l == leaders[0])
            {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ready: {reports:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every replica's report (panics if one does not answer).
    pub fn reports(&self) -> Vec<Report> {
        self.replicas
            .iter()
            .map(|r| {
                fetch_report(&r.admin, Duration::from_secs(2)).unwrap_or_else(|e| panic!("replica {}: {e:#}", r.id))
            })
            .collect()
    }

    /// Replica `i`'s report (panics if it does not answer).
    pub fn report(&self, i: usize) -> Report {
        fetch_report(&self.replicas[i].admin, Duration::from_secs(2)).unwrap_or_else(|e| panic!("replica {i}: {e:#}"))
    }

    /// The leader's node id.
    pub fn leader(&self) -> usize {
        self.reports()[0].leader.expect("a leader") as usize
    }

    /// `GET path` on replica `i`'s admin address.
    pub fn admin_get(&self, i: usize, path: &str) -> String {
        http_get(&self.replicas[i].admin, path, Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A Thrift client connected to replica `i`.
    pub fn client(&self, i: usize) -> Client {
        connect(&self.replicas[i].client)
    }

    /// Runs SQL on replica `i`'s own PostgreSQL directly; unaligned rows, `|` between columns.
    pub fn query(&self, i: usize, sql: &str) -> String {
        self.psql(self.replicas[i].pg_port, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    fn psql(&self, port: u16, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("psql on port {port}: {sql}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// The last lines of every replica's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for r in &self.replicas {
            let _ = write!(out, "----- replica {} ({}) -----\n{}", r.id, r.log.display(), tail(&r.log));
        }
        out
    }

    /// Stops replica `i` (SIGTERM by PID, SIGKILL after 5 s) and waits for its exit.
    pub fn stop_replica(&mut self, i: usize) {
        let Some(mut child) = self.replicas[i].process.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.stop_replica(i);
        }
        for r in &self.replicas {
            let _ = script("pg.sh", &["stop", &self.dir.join(format!("pg{}", r.id)).to_string_lossy()]);
        }
        let _ = script("zk.sh", &["stop", &self.dir.join("zk").to_string_lossy()]);
        // The watcher removes the directory once this process exits.
    }
}

/// A shell in its own process group that waits for this test process to end, then stops the
/// replicas (by the PIDs in their pid files) and the services (by their scripts), and removes the
/// directory (a failed test printed the logs' tails already).
fn spawn_watcher(dir: &Path) -> Child {
    let watch = r#"source "$1/scripts/lib.sh"
        while pid_alive "$2"; do sleep 0.5; done
        for f in "$3"/barista*.pid; do [[ -f $f ]] && kill -9 "$(<"$f")" 2>/dev/null; done
        for d in "$3"/pg*; do [[ -d $d ]] && "$1/scripts/pg.sh" stop "$d" >/dev/null 2>&1; done
        "$1/scripts/zk.sh" stop "$3/zk" >/dev/null 2>&1
        rm -rf "$3""#;
    Command::new("bash")
        .arg("-c")
        .arg(watch)
        .arg("barista-test-watcher")
        .arg(repo())
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting the cleanup watcher: {e}"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n") + "\n"
}

/// A Thrift client on `addr`, with a read timeout so a test never hangs on a silent server.
pub fn connect(addr: &str) -> Client {
    let sock = addr.to_socket_addrs().expect("an address").next().expect("resolves");
    let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("set a read timeout");
    let (read, write) = TTcpChannel::with_stream(stream).split().expect("split the channel");
    BaristaSyncClient::new(
        TBinaryInputProtocol::new(TBufferedReadTransport::new(read), true),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true),
    )
}

/// The `DBException` in a call's error (panics on any other error).
pub fn db_exception<T: std::fmt::Debug>(result: thrift::Result<T>) -> DBException {
    match result {
        Err(thrift::Error::User(e)) => match e.downcast::<DBException>() {
            Ok(ex) => *ex,
            Err(other) => panic!("not a DBException: {other:?}"),
        },
        other => panic!("expected a DBException, got {other:?}"),
    }
}
