//! Helpers for the tests of the sample clients under `clients/` (`sample_*.rs`): run a sample as a
//! child process with a deadline, read its output line by line as it comes, check the output of
//! the common "fruit" tour, and check what every replica's own PostgreSQL holds.
//!
//! Children are stopped by their PID (`Child::kill`) when they overrun, and when the test fails
//! (`Drop`), never by name.
#![allow(dead_code)] // each test binary uses part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::support::{Cluster, REPLICAS, wait_for};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is inside the repository").to_owned()
}

/// The cluster's client addresses as a sample takes them: `host:port,host:port,...`.
pub fn addresses(cluster: &Cluster) -> String {
    cluster.replicas.iter().map(|r| r.client.as_str()).collect::<Vec<_>>().join(",")
}

/// What a finished child printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion within `limit` and returns its output; panics, showing the output,
/// if it cannot start, overruns (it is killed) or exits with an error. `what` names it.
pub fn run(what: &str, cmd: &mut Command, limit: Duration) -> Output {
    let mut child = Running::spawn(what, cmd);
    let deadline = Instant::now() + limit;
    let mut stdout = String::new();
    loop {
        match child.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                stdout.push_str(&line);
                stdout.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                child.kill();
                panic!("{what} did not finish within {limit:?}; its output:\n{stdout}\n{}", child.stderr());
            }
        }
    }
    let status = child.wait(deadline.saturating_duration_since(Instant::now()));
    let stderr = child.stderr();
    assert!(status.success(), "{what} failed ({status}):\n--- stdout\n{stdout}--- stderr\n{stderr}");
    Output { stdout, stderr }
}

/// A child whose stdout arrives line by line on a channel (read by a thread, so the child
/// never blocks on a full pipe) and whose stderr is collected by another thread.
pub struct Running {
    pub what: String,
    child: Child,
    pub lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    pub fn spawn(what: &str, cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running { what: what.to_string(), child, lines, stderr: Some(stderr) }
    }

    /// The next line of stdout, or `None` when the child closed it; panics after `limit`.
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                let stderr = self.stderr();
                panic!("{} printed nothing for {limit:?}:\n{stderr}", self.what);
            }
        }
    }

    /// Waits for the child's exit (it has closed stdout); kills it after `limit`.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                let stderr = self.stderr();
                panic!("{} did not exit within {limit:?}:\n{stderr}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the child wrote to stderr (once it has closed it).
    pub fn stderr(&mut self) -> String {
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }

    /// Stops the child (SIGKILL by its PID) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Waits until each replica in `replicas` has applied every slot decided anywhere among them, so
/// their databases can be compared.
pub fn wait_applied(cluster: &Cluster, replicas: &[usize]) {
    let reports = || replicas.iter().map(|i| cluster.report(*i)).collect::<Vec<_>>();
    let target = reports().iter().map(|r| r.decided).max().unwrap_or(0);
    wait_for("the replicas to apply the whole log", Duration::from_secs(30), || {
        reports().iter().all(|r| r.applied >= target).then_some(())
    });
}

/// Waits for `replicas` to catch up, then checks that each one's own PostgreSQL answers `sql`
/// with `expected` (psql's unaligned form: `|` between columns, a line per row).
pub fn expect_everywhere(cluster: &Cluster, replicas: &[usize], sql: &str, expected: &str) {
    wait_applied(cluster, replicas);
    for &i in replicas {
        let got = cluster.query(i, sql);
        assert_eq!(got, expected, "replica {i}'s database after the sample: {sql}\n{}", cluster.logs());
    }
}

/// The lines the sample programs print for the common tour, in order, after their first line
/// (`connected to ADDRESS (connection ID)`). The constraint violation's line must start with the
/// text given here (the rest is PostgreSQL's message).
pub const FRUIT_TOUR: &[&str] = &[
    "created table fruit",
    "inserted 2 rows",
    "committed a transaction: cherry added, apple now green",
    "rolled back a transaction: no durian, banana kept",
    "batch of 3 statements: 3 rows changed",
    "row 1 apple green",
    "row 2 banana NULL",
    "row 3 cherry DARK RED",
    "row 5 elderberry purple",
    "row 6 fig NULL",
    "constraint violation: SQLSTATE 23505 (error code 1): ",
    "closed",
    "done",
];

/// The table `fruit` after the tour, as [`FRUIT_QUERY`] shows it.
pub const FRUIT_ROWS: &str = "1|apple|green\n2|banana|NULL\n3|cherry|DARK RED\n5|elderberry|purple\n6|fig|NULL\n";

/// Reads the table `fruit` back, a NULL shown as `NULL`.
pub const FRUIT_QUERY: &str = "SELECT id, name, coalesce(color, 'NULL') FROM fruit ORDER BY id";

/// Checks a sample's output of the fruit tour against [`FRUIT_TOUR`], and that it connected to
/// one of the cluster's replicas.
pub fn check_fruit_tour(cluster: &Cluster, what: &str, out: &Output) {
    let lines: Vec<&str> = out.stdout.lines().collect();
    let context = || format!("{what}'s output:\n{}\n--- stderr\n{}", out.stdout, out.stderr);
    let first = lines.first().copied().unwrap_or_default();
    assert!(
        cluster.replicas.iter().any(|r| first.starts_with(&format!("connected to {} (connection ", r.client))),
        "the first line should name the replica it connected to; {}",
        context()
    );
    assert_eq!(lines.len(), FRUIT_TOUR.len() + 1, "one line per step; {}", context());
    for (line, want) in lines[1..].iter().zip(FRUIT_TOUR) {
        if want.ends_with(": ") {
            assert!(line.starts_with(want) && line.len() > want.len(), "expected {want:?}...; {}", context());
        } else {
            assert_eq!(line, want, "{}", context());
        }
    }
}

/// How many keys the insert loops (`insert_loop.py`, `insert-loop.js`, `InsertLoop`) are told to insert.
pub const LOOP_KEYS: u32 = 200;

/// After how many acknowledged inserts the test stops the replica in use.
const STOP_AFTER: usize = 60;

/// Runs an insert loop (`cmd`, already given the addresses and [`LOOP_KEYS`]) and stops the
/// replica it uses once [`STOP_AFTER`] keys are acknowledged, while the loop goes on sending. The
/// loop must finish, having moved to another replica, with every key acknowledged once; then every
/// surviving replica must hold each key exactly once (the loop's table has no unique key, so a
/// request run twice would leave a duplicate row).
///
/// The loop prints `using ADDRESS` (first, and whenever it moves), `ack K` per key, `done N`.
pub fn insert_loop_survives_a_stop(cluster: &mut Cluster, what: &str, cmd: &mut Command) {
    let mut child = Running::spawn(what, cmd);
    let line_limit = Duration::from_secs(60);
    let mut used: Option<usize> = None;
    let mut stopped: Option<usize> = None;
    let mut moved_to: Option<String> = None;
    let mut acked = Vec::new();
    let mut done = false;
    while let Some(line) = child.next_line(line_limit) {
        if let Some(addr) = line.strip_prefix("using ") {
            let i = cluster.replicas.iter().position(|r| r.client == addr);
            assert!(i.is_some(), "{what} uses {addr}, not a replica of the cluster");
            if stopped.is_some() {
                moved_to = Some(addr.to_string());
            }
            used = i;
        } else if let Some(k) = line.strip_prefix("ack ") {
            acked.push(k.parse::<u32>().unwrap_or_else(|e| panic!("{what}: ack {k:?}: {e}")));
            if acked.len() == STOP_AFTER && stopped.is_none() {
                // The loop is mid-flight: its next insert is on its way to this replica now.
                let victim = used.expect("a \"using\" line comes first");
                cluster.stop_replica(victim);
                stopped = Some(victim);
            }
        } else if line == format!("done {LOOP_KEYS}") {
            done = true;
        } else {
            panic!("unexpected line from {what}: {line:?}");
        }
    }
    let status = child.wait(Duration::from_secs(10));
    let stderr = child.stderr();
    assert!(status.success() && done, "{what} failed ({status}):\n{stderr}\n{}", cluster.logs());
    let victim = stopped.expect("the replica in use was stopped mid-loop");
    let moved_to = moved_to.expect("the loop moved to another replica after the stop");
    assert_ne!(moved_to, cluster.replicas[victim].client);
    eprintln!(
        "{what}: stopped {} after {STOP_AFTER} acknowledged inserts; went on at {moved_to}",
        cluster.replicas[victim].client
    );
    assert_eq!(acked, (1..=LOOP_KEYS).collect::<Vec<_>>(), "every key acknowledged once, in order");

    let survivors: Vec<usize> = (0..REPLICAS).filter(|i| *i != victim).collect();
    let expected: String = (1..=LOOP_KEYS).map(|k| format!("{k}|1\n")).collect();
    expect_everywhere(cluster, &survivors, "SELECT k, count(*) FROM acked GROUP BY k ORDER BY k", &expected);
}
