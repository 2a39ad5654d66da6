//! A whole Barista cluster on this machine: one ZooKeeper and one PostgreSQL cluster per replica,
//! started by `scripts/zk.sh` and `scripts/pg.sh`, and one `barista serve` process per replica,
//! all on free 127.0.0.1 ports (`scripts/free-port.sh`) in one state directory.
//!
//! `barista demo` and the integration tests (`server/tests/support/`) both run on this, so that
//! there is one way to start, watch and stop a local cluster.
//!
//! Everything is stopped by PID, never by process name: the `barista serve` children by their
//! [`Child`] handles, PostgreSQL and ZooKeeper by their scripts (which read their PID files).
//! [`LocalCluster::stop`] (also run by `Drop`) does it in order; a [`Stopper`] does the same from
//! another thread (a Ctrl-C handler). A watcher process, in a process group of its own, stops
//! everything by the PID files should this process die without stopping the cluster (SIGKILL,
//! a panic with `panic = abort`): it notices the end of this process as the end of its stdin.
//!
//! PostgreSQL and ZooKeeper must be installed (`scripts/setup.sh`); without them starting fails
//! with an error that says so.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::admin::{Report, fetch_report};

/// Replicas in a local cluster.
pub const REPLICAS: usize = 3;

/// How long a stopped `barista serve` gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What went wrong starting, querying or stopping a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL's binaries are not installed.
    #[error("PostgreSQL is not installed ({0}); run scripts/setup.sh as root")]
    PostgresMissing(String),
    /// The `scripts/` directory was not found.
    #[error("Barista's scripts/ directory not found (looked for {0}); run from a clone of the repository")]
    NoScripts(PathBuf),
    /// A script failed; `detail` is its stderr.
    #[error("scripts/{script} {args}: {detail}")]
    Script {
        /// The script's name.
        script: String,
        /// Its arguments.
        args: String,
        /// Its error output.
        detail: String,
    },
    /// An operating system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A `barista serve` process exited by itself.
    #[error("replica {id} exited ({status}); last lines of {log}:\n{tail}")]
    ReplicaExited {
        /// Node id.
        id: usize,
        /// How it ended.
        status: ExitStatus,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// A condition did not hold before its deadline.
    #[error("timed out after {limit:?} waiting for {what}{detail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        limit: Duration,
        /// The last state seen, if useful (starts with a newline).
        detail: String,
    },
    /// A replica's admin endpoint did not answer.
    #[error("replica {id}'s /status: {detail}")]
    Admin {
        /// Node id.
        id: usize,
        /// The error.
        detail: String,
    },
    /// `psql` failed.
    #[error("psql on port {port}: {sql}: {detail}")]
    Sql {
        /// The PostgreSQL's port.
        port: u16,
        /// The statement.
        sql: String,
        /// psql's error output.
        detail: String,
    },
    /// The cluster was stopped (by a [`Stopper`]) and starts nothing any more.
    #[error("the cluster has been stopped")]
    Stopped,
    /// An operation that needs replica `0` stopped found it running.
    #[error("replica {0} is running; stop it first")]
    Running(usize),
    /// A `barista` command other than `serve` failed.
    #[error("barista {command} failed ({status}):\n{output}")]
    Command {
        /// The subcommand.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its output and error output.
        output: String,
    },
}

impl Error {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// How to start a local cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// The state directory: databases, ZooKeeper data, logs, PID files. Emptied at start.
    pub dir: PathBuf,
    /// The `barista` binary to run `serve` from.
    pub binary: PathBuf,
    /// Barista's `scripts/` directory ([`default_scripts_dir`]).
    pub scripts: PathBuf,
    /// ZooKeeper path of the acceptor state.
    pub zookeeper_root: String,
    /// Extra `barista serve` flags for replica `i` (`extra_args[i]`), e.g. `--election-timeout-ms`.
    pub extra_args: Vec<Vec<String>>,
    /// Extra environment variables for replica `i` (every configuration key is also one).
    pub extra_env: Vec<Vec<(String, String)>>,
    /// PostgreSQL's `fsync`: off makes tests faster; data then need not survive a power failure.
    pub fsync: bool,
    /// Remove `dir` once the cluster is stopped (tests); keep it otherwise (its logs stay readable).
    pub remove_dir: bool,
    /// How long [`LocalCluster::start`] waits for the replicas to be healthy and agree on a leader.
    pub ready_timeout: Duration,
}

impl Options {
    /// Defaults for a cluster in `dir` running `binary`: the scripts next to the binary, fsync on,
    /// the directory kept, every replica on its default settings.
    pub fn new(dir: impl Into<PathBuf>, binary: impl Into<PathBuf>) -> Options {
        let binary = binary.into();
        Options {
            dir: dir.into(),
            scripts: default_scripts_dir(&binary),
            binary,
            zookeeper_root: "/barista".into(),
            extra_args: vec![Vec::new(); REPLICAS],
            extra_env: vec![Vec::new(); REPLICAS],
            fsync: true,
            remove_dir: false,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Barista's `scripts/` directory: the first `scripts/pg.sh` found in a directory above `binary`
/// (`target/release/barista` is two levels below the repository), else the one of the source tree
/// this crate was built from.
pub fn default_scripts_dir(binary: &Path) -> PathBuf {
    binary
        .ancestors()
        .map(|d| d.join("scripts"))
        .find(|d| d.join("pg.sh").is_file())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts"))
}

/// One replica's addresses.
#[derive(Clone, Debug)]
pub struct Replica {
    /// Node id.
    pub id: usize,
    /// Its PostgreSQL's port on 127.0.0.1.
    pub pg_port: u16,
    /// How the replica connects to its PostgreSQL (`scripts/pg.sh conninfo`): through the unix
    /// socket, which costs less CPU per statement than TCP, when the data directory's path allows.
    pub postgres: String,
    /// Thrift client API (`host:port`).
    pub client: String,
    /// Admin HTTP (`host:port`).
    pub admin: String,
    /// Peer address (`host:port`).
    pub peer: String,
    /// Barista's PostgreSQL-protocol front end (`host:port`): psql and drivers connect here.
    pub pg_listen: String,
    /// Its `barista serve` log.
    pub log: PathBuf,
}

/// One process the cluster started and stopped, for the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// What it was (`barista serve (replica 0)`, `PostgreSQL 1`, `ZooKeeper`).
    pub what: String,
    /// Its PID.
    pub pid: u32,
}

/// What a [`Stopper`] shares with its cluster.
struct Shared {
    /// The running `barista serve` processes, by node id.
    children: Vec<Option<Child>>,
    /// Set once everything was stopped: nothing starts any more.
    stopped: bool,
}

/// Runs `then` on a thread of its own at the first SIGINT or SIGTERM this process gets: for a
/// program that must stop its cluster (a [`Stopper`]) before it exits, since a signal ends the
/// process without unwinding, so `Drop` never runs. Both signals are registered before this
/// returns, so none slips through.
pub fn on_interrupt(then: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut int, mut term) = runtime.block_on(async {
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        then();
    });
    Ok(())
}

/// Stops a cluster's processes from any thread (a Ctrl-C handler), by PID.
#[derive(Clone)]
pub struct Stopper {
    shared: Arc<Mutex<Shared>>,
    dir: PathBuf,
    scripts: PathBuf,
}

impl Stopper {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops every replica (SIGTERM, SIGKILL after 5 s), then PostgreSQL and ZooKeeper through their
    /// scripts; returns what was running and is now stopped. Afterwards the cluster starts
    /// nothing. Stopping twice is harmless.
    pub fn stop(&self) -> Result<Vec<Stopped>, Error> {
        let mut shared = self.lock();
        shared.stopped = true;
        let mut stopped = Vec::new();
        let mut children: Vec<(usize, Child)> =
            shared.children.iter_mut().enumerate().filter_map(|(i, c)| c.take().map(|c| (i, c))).collect();
        // All at once: SIGTERM to each, then wait for each.
        for (_, child) in &children {
            signal(child.id(), "TERM");
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (i, child) in &mut children {
            stop_child(child, deadline);
            let _ = std::fs::remove_file(self.dir.join(format!("barista{i}.pid")));
            stopped.push(Stopped { what: format!("barista serve (replica {i})"), pid: child.id() });
        }
        let mut failures = Vec::new();
        for i in 0..shared.children.len() {
            let data = self.dir.join(format!("pg{i}"));
            let pid = read_pid(&data.join("postmaster.pid"));
            match script(&self.scripts, "pg.sh", &["stop", &path_str(&data)]) {
                Ok(_) => stopped.extend(pid.map(|pid| Stopped { what: format!("PostgreSQL {i}"), pid })),
                Err(e) => failures.push(e),
            }
        }
        let zk = self.dir.join("zk");
        let pid = read_pid(&zk.join("zk.pid"));
        match script(&self.scripts, "zk.sh", &["stop", &path_str(&zk)]) {
            Ok(_) => stopped.extend(pid.map(|pid| Stopped { what: "ZooKeeper".into(), pid })),
            Err(e) => failures.push(e),
        }
        match failures.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(stopped),
        }
    }
}

/// Waits for `child` until `deadline`, then kills it (SIGKILL) and reaps it.
fn stop_child(child: &mut Child, deadline: Instant) {
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIG`name` to `pid` (`kill` needs no unsafe code, unlike libc).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The PID on the first line of a PID file, if there is one.
fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.lines().next()?.trim().parse().ok()
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs `scripts/name args`; its stdout, or why it failed.
fn script(scripts: &Path, name: &str, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(scripts.join(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io(format!("running {}", scripts.join(name).display())))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Script {
            script: name.into(),
            args: args.join(" "),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Polls `check` every 50 ms until it gives `Ok(Some(_))` or an error, or `limit` has passed.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout { what: what.into(), limit, detail: String::new() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ZooKeeper, one PostgreSQL per replica and the `barista serve` processes. Dropping it stops
/// everything.
pub struct LocalCluster {
    /// The state directory.
    pub dir: PathBuf,
    /// The replicas, by node id.
    pub replicas: Vec<Replica>,
    /// ZooKeeper's port on 127.0.0.1.
    pub zk_port: u16,
    opts: Options,
    bindir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    /// Stops everything should this process die first; told to just exit once `stop` has run.
    watcher: Option<(Child, ChildStdin)>,
}

impl LocalCluster {
    /// Starts ZooKeeper and the PostgreSQL clusters (in parallel), then the replicas, and waits
    /// until every replica is healthy and all follow one leader.
    pub fn start(opts: Options) -> Result<LocalCluster, Error> {
        let dir = opts.dir.clone();
        if !opts.scripts.join("pg.sh").is_file() {
            return Err(Error::NoScripts(opts.scripts.join("pg.sh")));
        }
        let bindir = pg_bindir(&opts.scripts)?;
        // A fresh directory: a previous run's databases would hold its rows and its log.
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { what: format!("emptying {}", dir.display()), source: e }),
        }
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        // PostgreSQL runs as user postgres when we are root, and must enter this directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io(format!("chmod {}", dir.display())))?;
        let watcher = spawn_watcher(&opts.scripts, &dir, opts.remove_dir)?;

        const KINDS: usize = 5;
        let ports: Vec<u16> = script(&opts.scripts, "free-port.sh", &[&(1 + KINDS * REPLICAS).to_string()])?
            .lines()
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        if ports.len() != 1 + KINDS * REPLICAS {
            return Err(Error::Script {
                script: "free-port.sh".into(),
                args: (1 + KINDS * REPLICAS).to_string(),
                detail: format!("printed {} ports", ports.len()),
            });
        }
        let port = |kind: usize, i: usize| ports[1 + kind * REPLICAS + i];
        let replicas = (0..REPLICAS)
            .map(|i| {
                let data = path_str(&dir.join(format!("pg{i}")));
                let conninfo = script(&opts.scripts, "pg.sh", &["conninfo", &data, &port(0, i).to_string()])?;
                Ok(Replica {
                    id: i,
                    pg_port: port(0, i),
                    postgres: conninfo.trim().to_owned(),
                    client: format!("127.0.0.1:{}", port(1, i)),
                    admin: format!("127.0.0.1:{}", port(2, i)),
                    peer: format!("127.0.0.1:{}", port(3, i)),
                    pg_listen: format!("127.0.0.1:{}", port(4, i)),
                    log: dir.join(format!("barista{i}.log")),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let shared = Arc::new(Mutex::new(Shared { children: (0..REPLICAS).map(|_| None).collect(), stopped: false }));
        let mut cluster =
            LocalCluster { dir, replicas, zk_port: ports[0], opts, bindir, shared, watcher: Some(watcher) };
        cluster.start_services()?;
        for i in 0..REPLICAS {
            cluster.start_replica(i)?;
        }
        cluster.wait_ready(cluster.opts.ready_timeout)?;
        Ok(cluster)
    }

    /// A handle that stops this cluster from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper { shared: self.shared.clone(), dir: self.dir.clone(), scripts: self.opts.scripts.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// ZooKeeper and the PostgreSQL clusters, in parallel (about a second).
    fn start_services(&self) -> Result<(), Error> {
        let scripts = &self.opts.scripts;
        std::thread::scope(|scope| {
            let zk_dir = path_str(&self.dir.join("zk"));
            let zk_port = self.zk_port.to_string();
            let zk = scope.spawn(move || script(scripts, "zk.sh", &["start", &zk_dir, &zk_port]).map(drop));
            let pgs: Vec<_> = self.replicas.iter().map(|r| scope.spawn(move || self.start_postgres(r.id))).collect();
            let mut first_error = None;
            for handle in pgs.into_iter().chain([zk]) {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(Error::Io { what: "starting a service".into(), source: std::io::Error::other("panicked") })
                });
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }

    /// Initializes (if needed) and starts PostgreSQL `i`.
    fn start_postgres(&self, i: usize) -> Result<(), Error> {
        let data = path_str(&self.dir.join(format!("pg{i}")));
        let port = self.replicas[i].pg_port;
        script(&self.opts.scripts, "pg.sh", &["start", &data, &port.to_string()])?;
        if !self.opts.fsync {
            self.psql(port, "ALTER SYSTEM SET fsync = off")?;
            self.psql(port, "SELECT pg_reload_conf()")?;
        }
        Ok(())
    }

    /// Wipes replica `i`'s database as a lost disk would: stops its PostgreSQL, deletes the data
    /// directory, and starts a freshly initialized, empty one on the same port. The replica must
    /// be stopped; its acceptor state in ZooKeeper is kept.
    pub fn wipe_database(&self, i: usize) -> Result<(), Error> {
        if self.replica_pid(i).is_some() {
            return Err(Error::Running(i));
        }
        let data = self.dir.join(format!("pg{i}"));
        script(&self.opts.scripts, "pg.sh", &["stop", &path_str(&data)])?;
        std::fs::remove_dir_all(&data).map_err(Error::io(format!("deleting {}", data.display())))?;
        self.start_postgres(i)
    }

    /// The `barista reseed` arguments that rebuild replica `i` from replica `from`: the source's
    /// admin and PostgreSQL addresses, then replica `i`'s own `serve` configuration.
    pub fn reseed_args(&self, i: usize, from: usize) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "reseed".into(),
            "--from".into(),
            self.replicas[from].admin.clone(),
            "--from-postgres".into(),
            self.replicas[from].postgres.clone(),
            "--pg-bindir".into(),
            path_str(&self.bindir),
        ];
        args.extend(self.serve_args(i).into_iter().skip(1));
        args
    }

    /// Runs `barista reseed` for replica `i` from replica `from`, with `extra` flags (`--force`);
    /// its output.
    pub fn reseed(&self, i: usize, from: usize, extra: &[&str]) -> Result<String, Error> {
        let mut cmd = self.barista_command(i);
        cmd.args(self.reseed_args(i, from)).args(extra);
        let out = cmd.stdin(Stdio::null()).output().map_err(Error::io("running barista reseed"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        Err(Error::Command {
            command: "reseed".into(),
            status: out.status,
            output: stdout + &String::from_utf8_lossy(&out.stderr),
        })
    }

    /// Replica `i`'s data as `pg_dump --data-only` writes it (every table, Barista's own included,
    /// and every sequence's value but the DDL epoch's), its lines sorted and its comments left
    /// out: two databases that hold the same rows give the same text, whatever their rows'
    /// physical order.
    pub fn dump_data(&self, i: usize) -> Result<String, Error> {
        let port = self.replicas[i].pg_port.to_string();
        let out = Command::new(self.bindir.join("pg_dump"))
            .args(["--data-only", "--no-password", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            // Each server's count of its own DDL, which the divergence checksum skips too.
            .args(["--exclude-table=public.barista_ddl_epoch", "postgres"])
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io("running pg_dump"))?;
        if !out.status.success() {
            return Err(Error::Sql {
                port: self.replicas[i].pg_port,
                sql: "pg_dump --data-only".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // `\restrict` and `\unrestrict` carry a random key per dump.
        let mut lines: Vec<&str> =
            text.lines().filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.is_empty()).collect();
        lines.sort_unstable();
        Ok(lines.join("\n"))
    }

    /// A `barista` command with replica `i`'s environment and no other Barista settings.
    fn barista_command(&self, i: usize) -> Command {
        let mut cmd = Command::new(&self.opts.binary);
        // Only this cluster's settings: none inherited from whoever runs us.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("BARISTA_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.opts.extra_env.get(i).into_iter().flatten().map(|(k, v)| (k, v)));
        cmd
    }

    /// The `barista serve` arguments of replica `i`.
    pub fn serve_args(&self, i: usize) -> Vec<String> {
        let r = &self.replicas[i];
        let peers: Vec<&str> = self.replicas.iter().map(|r| r.peer.as_str()).collect();
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--node-id".into(),
            i.to_string(),
            "--peers".into(),
            peers.join(","),
            "--client-listen".into(),
            r.client.clone(),
            "--admin-listen".into(),
            r.admin.clone(),
            "--pg-listen".into(),
            r.pg_listen.clone(),
            "--postgres".into(),
            self.replicas[i].postgres.clone(),
            "--zookeeper".into(),
            format!("127.0.0.1:{}", self.zk_port),
            "--zookeeper-root".into(),
            self.opts.zookeeper_root.clone(),
        ];
        args.extend(self.opts.extra_args.get(i).into_iter().flatten().cloned());
        args
    }

    /// Starts replica `i`'s `barista serve` (a no-op if it runs). Its output goes to its log,
    /// appended to across restarts.
    pub fn start_replica(&mut self, i: usize) -> Result<u32, Error> {
        let mut shared = self.lock();
        if shared.stopped {
            return Err(Error::Stopped);
        }
        if let Some(child) = &shared.children[i] {
            return Ok(child.id());
        }
        let r = &self.replicas[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .map_err(Error::io(format!("opening {}", r.log.display())))?;
        let log_err = log.try_clone().map_err(Error::io("duplicating a log handle"))?;
        let mut cmd = self.barista_command(i);
        cmd.args(self.serve_args(i));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C in the terminal reaches only the parent, which stops
            // the replicas itself, in order.
            .process_group(0)
            .spawn()
            .map_err(Error::io(format!("starting {} serve", self.opts.binary.display())))?;
        let pid = child.id();
        std::fs::write(self.dir.join(format!("barista{i}.pid")), pid.to_string())
            .map_err(Error::io("writing a pid file"))?;
        shared.children[i] = Some(child);
        Ok(pid)
    }

    /// Replica `i`'s PID, if it runs.
    pub fn replica_pid(&self, i: usize) -> Option<u32> {
        self.lock().children[i].as_ref().map(Child::id)
    }

    /// PostgreSQL `i`'s postmaster PID.
    pub fn postgres_pid(&self, i: usize) -> Option<u32> {
        read_pid(&self.dir.join(format!("pg{i}")).join("postmaster.pid"))
    }

    /// ZooKeeper's PID.
    pub fn zookeeper_pid(&self) -> Option<u32> {
        read_pid(&self.dir.join("zk").join("zk.pid"))
    }

    /// The watcher's PID (a process this cluster started too).
    pub fn watcher_pid(&self) -> Option<u32> {
        self.watcher.as_ref().map(|(w, _)| w.id())
    }

    /// Kills replica `i` with SIGKILL (a crash: no chance to clean up) and reaps it; its PID.
    pub fn kill_replica(&mut self, i: usize) -> Option<u32> {
        let mut child = self.lock().children[i].take()?;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(self.dir.join(format!("barista{i}.pid")));
        Some(child.id())
    }

    /// Stops replica `i` (SIGTERM, SIGKILL after 5 s) and waits for its exit; its PID.
    pub fn stop_replica(&mut self, i: usize) -> Option<u32> {
        let mut child = self.lock().children[i].take()?;
        signal(child.id(), "TERM");
        stop_child(&mut child, Instant::now() + STOP_GRACE);
        let _ = std::fs::remove_file(self.dir.join(format!("barista{i}.pid")));
        Some(child.id())
    }

    /// Fails if a replica that should run has exited.
    fn check_alive(&self) -> Result<(), Error> {
        let mut shared = self.lock();
        for (i, slot) in shared.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                *slot = None;
                let r = &self.replicas[i];
                return Err(Error::ReplicaExited {
                    id: i,
                    status,
                    log: r.log.display().to_string(),
                    tail: tail(&r.log),
                });
            }
        }
        Ok(())
    }

    /// Waits until every running replica is healthy and all follow the same leader.
    pub fn wait_ready(&self, limit: Duration) -> Result<(), Error> {
        let running: Vec<usize> = (0..self.replicas.len()).filter(|i| self.replica_pid(*i).is_some()).collect();
        let deadline = Instant::now() + limit;
        loop {
            self.check_alive()?;
            let reports: Vec<Option<Report>> = running.iter().map(|i| self.report(*i).ok()).collect();
            let leaders: Vec<Option<u32>> = reports.iter().map(|r| r.as_ref().and_then(|r| r.leader)).collect();
            if reports.iter().all(|r| r.as_ref().is_some_and(Report::is_healthy))
                && leaders.first().is_some_and(Option::is_some)
                && leaders.iter().all(|l| *l == leaders[0])
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "the replicas to be healthy and agree on a leader".into(),
                    limit,
                    detail: format!("\n{reports:?}\n{}", self.logs()),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running replica has applied every slot decided anywhere (their databases
    /// then hold the same rows); returns that slot.
    pub fn wait_applied(&self, limit: Duration) -> Result<u64, Error> {
        let running: Vec<usize> = (0..self.replicas.len()).filter(|i| self.replica_pid(*i).is_some()).collect();
        let reports = || running.iter().map(|i| self.report(*i)).collect::<Result<Vec<_>, _>>();
        let target = reports()?.iter().map(|r| r.decided).max().unwrap_or(0);
        wait_for("every replica to apply the whole log", limit, || {
            self.check_alive()?;
            Ok(reports()?.iter().all(|r| r.applied >= target).then_some(target))
        })
    }

    /// Replica `i`'s `/status`.
    pub fn report(&self, i: usize) -> Result<Report, Error> {
        fetch_report(&self.replicas[i].admin, Duration::from_secs(2))
            .map_err(|e| Error::Admin { id: i, detail: format!("{e:#}") })
    }

    /// Every replica's `/status`, or why it has none.
    pub fn reports(&self) -> Vec<Result<Report, Error>> {
        (0..self.replicas.len()).map(|i| self.report(i)).collect()
    }

    /// The node id of the leader the replicas agree on, waiting up to `limit` for one.
    pub fn leader(&self, limit: Duration) -> Result<usize, Error> {
        wait_for("the replicas to agree on a leader", limit, || {
            self.check_alive()?;
            let leaders: Vec<Option<u32>> = (0..self.replicas.len())
                .filter(|i| self.replica_pid(*i).is_some())
                .map(|i| self.report(i).ok().filter(Report::is_healthy).and_then(|r| r.leader))
                .collect();
            let first = leaders.first().copied().flatten();
            Ok(first.filter(|_| leaders.iter().all(|l| *l == first)).map(|l| l as usize))
        })
    }

    /// Runs SQL on replica `i`'s own PostgreSQL, directly (not through Barista); unaligned rows,
    /// `|` between columns.
    pub fn query(&self, i: usize, sql: &str) -> Result<String, Error> {
        self.psql(self.replicas[i].pg_port, sql)
    }

    /// The `psql` command that opens a SQL prompt on replica `i`'s PostgreSQL.
    pub fn psql_command(&self, i: usize) -> String {
        format!("psql -h 127.0.0.1 -p {} -U postgres", self.replicas[i].pg_port)
    }

    /// The `psql` command that opens a SQL prompt through Barista, on replica `i`'s
    /// PostgreSQL-protocol port (with the default `pg_auth = trust`).
    pub fn barista_psql_command(&self, i: usize) -> String {
        let (host, port) = self.replicas[i].pg_listen.rsplit_once(':').unwrap_or(("127.0.0.1", ""));
        format!("psql -h {host} -p {port} -U postgres")
    }

    fn psql(&self, port: u16, sql: &str) -> Result<String, Error> {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io("running psql"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Sql { port, sql: sql.into(), detail: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
        }
    }

    /// The last lines of every replica's log, for error messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for r in &self.replicas {
            let _ = write!(out, "----- replica {} ({}) -----\n{}", r.id, r.log.display(), tail(&r.log));
        }
        out
    }

    /// Stops everything (see [`Stopper::stop`]), then dismisses the watcher and, if the options
    /// say so, removes the directory. Returns every process stopped, the watcher included.
    pub fn stop(&mut self) -> Result<Vec<Stopped>, Error> {
        let result = self.stopper().stop();
        let mut stopped = result?;
        if let Some((mut watcher, mut stdin)) = self.watcher.take() {
            // "done": everything is stopped already; it only removes the directory if asked to.
            let _ = stdin.write_all(b"done\n");
            drop(stdin);
            let _ = watcher.wait();
            stopped.push(Stopped { what: "cleanup watcher".into(), pid: watcher.id() });
        }
        Ok(stopped)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The PostgreSQL binaries' directory, as the scripts find it.
fn pg_bindir(scripts: &Path) -> Result<PathBuf, Error> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1/lib.sh" && pg_bindir"#)
        .arg("pg_bindir")
        .arg(scripts)
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io("running bash"))?;
    if !out.status.success() {
        return Err(Error::PostgresMissing(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A shell in its own process group (so a Ctrl-C in the terminal does not reach it) that reads
/// its stdin until it ends. The end comes when this process exits, however it exits (the kernel
/// closes the pipe). If what it read was not "done" (the cluster's orderly `stop` writes that),
/// it stops the replicas by the PIDs in their pid files and the services by their scripts. Then it
/// removes the directory if `remove_dir`.
fn spawn_watcher(scripts: &Path, dir: &Path, remove_dir: bool) -> Result<(Child, ChildStdin), Error> {
    let watch = r#"IFS= read -r line
        if [[ $line != done ]]; then
            for f in "$2"/barista*.pid; do [[ -f $f ]] && kill -9 "$(<"$f")" 2>/dev/null; done
            for d in "$2"/pg*; do [[ -d $d ]] && "$1/pg.sh" stop "$d" >/dev/null 2>&1; done
            "$1/zk.sh" stop "$2/zk" >/dev/null 2>&1
        fi
        if [[ $3 == 1 ]]; then rm -rf "$2"; fi
        exit 0"#;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(watch)
        .arg("barista-cluster-watcher")
        .arg(scripts)
        .arg(dir)
        .arg(if remove_dir { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(Error::io("starting the cleanup watcher"))?;
    let stdin = child.stdin.take().ok_or_else(|| Error::Io {
        what: "the cleanup watcher's stdin".into(),
        source: std::io::Error::other("not piped"),
    })?;
    Ok((child, stdin))
}

/// The last 30 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n") + "\n"
}
