//! The ZooKeeper acceptor store against a real ZooKeeper 3.8, started by `scripts/zk.sh` on a free
//! loopback port in a temporary directory: the store conformance suite, the padding and order of
//! slot names, a restarted store, the request size limit, unknown record versions, a view made
//! stale by another writer, outages (shorter and longer than the session), and a latency print-out
//! (`cargo test -p barista-runtime --test zookeeper -- --nocapture persist_latency`).
//!
//! ZooKeeper must be installed (`scripts/setup.sh`): without it these tests fail, never skip.
//! Tests share one server while any of them runs (each under its own root path); the outage test
//! has its own, since it stops it. Servers are stopped by PID when the last test using them ends,
//! even on failure, and servers left behind by a killed run are stopped by the next run.
#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use barista_core::{AcceptorState, Ballot, Command as LogCommand, Paxo, Persist, Promise, Slot, Value};
use barista_runtime::store::{AcceptorStore, conformance};
use barista_runtime::zookeeper::{RecordError, ZkConfig, ZkStore, ZkStoreError, slot_name};

/// A standalone ZooKeeper in its own directory, stopped (by the PID in its directory) on drop.
struct ZkServer {
    dir: PathBuf,
    port: u16,
    tick_ms: Option<u32>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

/// Where the servers' directories go: under the target directory, named `zk-{test pid}-{n}`.
fn base_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("zookeeper-store")
}

/// Runs a script; its stdout, or why it failed.
fn script(name: &str, args: &[&str], tick_ms: Option<u32>) -> Result<String, String> {
    let mut command = Command::new(scripts().join(name));
    command.args(args);
    if let Some(tick) = tick_ms {
        command.env("ZK_TICK_TIME", tick.to_string());
    }
    let out = command.output().map_err(|e| format!("cannot run scripts/{name}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("scripts/{name} {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Stops servers whose test process is gone (a run that was killed before its guards ran).
fn sweep_stale_servers() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("zk-").and_then(|rest| rest.split('-').next()) else { continue };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let dir = entry.path();
        // zk.sh stops only a ZooKeeper whose command line names this directory's config.
        if script("zk.sh", &["stop", &dir.to_string_lossy()], None).is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

impl ZkServer {
    /// Starts a server; `tick_ms` sets ZooKeeper's tick (sessions may last 2 to 20 ticks).
    fn start(tick_ms: Option<u32>) -> ZkServer {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale_servers);
        let dir = base_dir().join(format!("zk-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&dir).expect("create the server directory");
        let mut last = String::new();
        // A free port is free when printed, not reserved: another process may take it first.
        for _ in 0..3 {
            let port: u16 = match script("free-port.sh", &[], None).map(|p| p.trim().parse()) {
                Ok(Ok(port)) => port,
                other => panic!("scripts/free-port.sh gave no port: {other:?}"),
            };
            let server = ZkServer { dir: dir.clone(), port, tick_ms };
            match server.try_start() {
                Ok(()) => return server,
                Err(e) if e.contains("already in use") => last = e,
                Err(e) => {
                    drop(server);
                    panic!(
                        "cannot start ZooKeeper for these tests. Is ZooKeeper 3.8 installed? Run \
                         scripts/setup.sh (as root) to install it.\n{e}"
                    );
                }
            }
        }
        panic!("no free port for ZooKeeper after 3 tries: {last}");
    }

    fn try_start(&self) -> Result<(), String> {
        script("zk.sh", &["start", &self.dir.to_string_lossy(), &self.port.to_string()], self.tick_ms).map(drop)
    }

    fn connect(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server, keeping its data.
    fn stop(&self) {
        script("zk.sh", &["stop", &self.dir.to_string_lossy()], None).expect("stop ZooKeeper");
    }

    /// Starts it again on the same port with the same data.
    fn restart(&self) {
        self.try_start().expect("restart ZooKeeper on the same port");
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        match script("zk.sh", &["stop", &self.dir.to_string_lossy()], None) {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            Err(e) => eprintln!("could not stop the test ZooKeeper in {}: {e}", self.dir.display()),
        }
    }
}

/// The server shared by the tests that do not stop it; started by the first of them and stopped
/// when the last one that holds it ends.
fn shared_server() -> Arc<ZkServer> {
    static SHARED: Mutex<Weak<ZkServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(ZkServer::start(None));
    *shared = Arc::downgrade(&server);
    server
}

/// A root path no other test (or earlier run on the same server) uses.
fn unique_root(test: &str) -> String {
    format!("/barista-test/{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

fn config(server: &ZkServer, root: &str) -> ZkConfig {
    ZkConfig { root: root.into(), ..ZkConfig::new(server.connect(), "0") }
}

fn store(server: &ZkServer, root: &str) -> ZkStore {
    ZkStore::new(config(server, root)).expect("valid config")
}

fn ballot(round: u64) -> Ballot {
    Ballot { round, node: 1 }
}

/// A slot holding one command of `payload` bytes.
fn paxo(round: u64, payload: usize) -> Paxo {
    let command = LogCommand { origin: 1, id: round, payload: vec![7u8; payload].into() };
    Paxo { n_p: ballot(round), n_a: ballot(round), v_a: Some(Value::batch(vec![command])), decided: false }
}

fn writes(slots: impl IntoIterator<Item = Slot>, round: u64, payload: usize) -> Persist {
    Persist { promise: None, slots: slots.into_iter().map(|s| (s, paxo(round, payload))).collect(), purge_below: None }
}

async fn persist(store: &mut ZkStore, expected: &mut AcceptorState, batch: Persist) {
    store.try_persist(&batch).await.unwrap_or_else(|e| panic!("persist: {e}"));
    expected.apply(&batch);
}

async fn load(store: &mut ZkStore) -> AcceptorState {
    store.try_load().await.unwrap_or_else(|e| panic!("load: {e}"))
}

/// Retries until ZooKeeper is back; how long that took.
async fn persist_until_ok(store: &mut ZkStore, batch: &Persist) -> Duration {
    let start = Instant::now();
    loop {
        match store.try_persist(batch).await {
            Ok(()) => return start.elapsed(),
            Err(e) => assert!(start.elapsed() < Duration::from_secs(60), "ZooKeeper did not come back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn conformance_suite_passes() {
    let server = shared_server();
    conformance::run_all(
        || store(&server, &unique_root("conformance")),
        |s: &ZkStore| ZkStore::new(s.config().clone()).expect("valid config"),
    )
    .await;
}

#[tokio::test]
async fn slot_names_are_padded_and_load_in_numeric_order() {
    let server = shared_server();
    let root = unique_root("padding");
    let mut s = store(&server, &root);
    let mut expected = AcceptorState::default();
    for slot in [100, 9, 10] {
        persist(&mut s, &mut expected, writes([slot], 1, 10)).await;
    }
    let loaded = load(&mut store(&server, &root)).await;
    assert_eq!(loaded.slots.keys().copied().collect::<Vec<_>>(), vec![9, 10, 100]);
    assert_eq!(loaded, expected);

    // ZooKeeper itself sorts the names as strings: padded, that is slot order.
    let client = zookeeper_client::Client::connect(&server.connect()).await.expect("raw client");
    let mut names = client.list_children(&format!("{root}/paxos/0/store")).await.expect("list");
    names.sort();
    assert_eq!(names, vec!["00000000000000000009", "00000000000000000010", "00000000000000000100"]);
    assert_eq!(names[0], slot_name(9));
}

#[tokio::test]
async fn a_new_store_object_on_the_same_root_loads_the_same_state_and_continues() {
    let server = shared_server();
    let root = unique_root("restart");
    let mut expected = AcceptorState::default();
    {
        let mut first = store(&server, &root);
        assert_eq!(load(&mut first).await, expected);
        let promise = Some(Promise { ballot: ballot(2), from: 1 });
        persist(&mut first, &mut expected, Persist { promise, ..writes(1..=20, 2, 50) }).await;
        persist(&mut first, &mut expected, Persist { purge_below: Some(5), ..writes([7], 3, 60) }).await;
    }
    let mut second = store(&server, &root);
    assert_eq!(load(&mut second).await, expected, "a restarted store loads what was persisted");
    // Its view of which nodes exist was rebuilt: setting existing slots and creating new ones works.
    persist(&mut second, &mut expected, Persist { purge_below: Some(10), ..writes([8, 12, 21], 4, 70) }).await;
    let promise = Some(Promise { ballot: ballot(5), from: 10 });
    persist(&mut second, &mut expected, Persist { promise, ..Persist::default() }).await;
    let loaded = load(&mut store(&server, &root)).await;
    assert_eq!(loaded, expected);
    assert_eq!(loaded.slots.keys().next(), Some(&10));
}

#[tokio::test]
async fn a_batch_over_the_request_limit_is_stored_in_several_requests() {
    let server = shared_server();
    let root = unique_root("size");
    let mut s = store(&server, &root);
    let mut expected = AcceptorState::default();
    persist(&mut s, &mut expected, writes([1], 1, 10)).await;

    // 1.2 MB in two slots: over one request's limit, so written in two, and all of it loads back.
    let promise = Some(Promise { ballot: ballot(2), from: 2 });
    persist(&mut s, &mut expected, Persist { promise, ..writes([2, 3], 2, 600_000) }).await;
    assert_eq!(load(&mut store(&server, &root)).await, expected);

    // One record that cannot fit in any request is refused, and nothing of its batch is written.
    let err = s.try_persist(&writes([4, 5], 3, 1_200_000)).await.expect_err("a 1.2 MB record is refused");
    assert!(matches!(err, ZkStoreError::RecordTooLarge { .. }), "{err}");
    let message = AcceptorStore::persist(&mut s, &writes([4, 5], 3, 1_200_000)).await.expect_err("refused").0;
    assert!(message.contains("jute.maxbuffer") && message.contains("nothing of its batch"), "{message}");
    assert_eq!(load(&mut s).await, expected, "a refused batch changes nothing");

    // Just under the limit in one request: the server takes it (the default limit fits its jute.maxbuffer).
    persist(&mut s, &mut expected, writes(10..20, 1, 98_000)).await;
    assert_eq!(load(&mut store(&server, &root)).await, expected);

    // And the limit is real: with the check raised, ZooKeeper refuses a larger request itself.
    let mut unchecked =
        ZkStore::new(ZkConfig { max_request_bytes: 4_000_000, ..config(&server, &root) }).expect("config");
    assert_eq!(load(&mut unchecked).await, expected);
    let result = unchecked.try_persist(&writes([30, 31], 1, 600_000)).await;
    assert!(result.is_err(), "ZooKeeper accepted a 1.2 MB request: the limit assumed here is wrong");
    assert_eq!(load(&mut store(&server, &root)).await, expected, "nothing of it landed");
}

#[tokio::test]
async fn an_unknown_record_version_is_a_clear_load_error() {
    let server = shared_server();
    let root = unique_root("version");
    let mut s = store(&server, &root);
    let mut expected = AcceptorState::default();
    let promise = Some(Promise { ballot: ballot(1), from: 1 });
    persist(&mut s, &mut expected, Persist { promise, ..writes([1, 2], 1, 10) }).await;

    let client = zookeeper_client::Client::connect(&server.connect()).await.expect("raw client");
    for path in [s.slot_path(2), s.promise_path().to_string()] {
        let (good, _) = client.get_data(&path).await.expect("read");
        let mut future = good.clone();
        future[0] = 9;
        client.set_data(&path, &future, None).await.expect("write a future version");
        let err = s.try_load().await.expect_err("an unknown version fails the load");
        assert_eq!(err, ZkStoreError::Record { path: path.clone(), error: RecordError::Version(9) });
        let message = AcceptorStore::load(&mut s).await.expect_err("fails").0;
        assert!(message.contains(&path) && message.contains("version 9 is not supported"), "{message}");
        client.set_data(&path, &good, None).await.expect("restore");
        assert_eq!(load(&mut s).await, expected);
    }
}

#[tokio::test]
async fn writes_behind_a_stores_back_are_detected_and_resolved() {
    let server = shared_server();
    let root = unique_root("stale");
    let (mut a, mut b) = (store(&server, &root), store(&server, &root));
    let mut expected = AcceptorState::default();
    load(&mut a).await;
    // b's load moves the fence: a's next write finds its view stale, re-reads it and retries.
    load(&mut b).await;
    persist(&mut a, &mut expected, writes([1], 1, 10)).await;
    // b believes slot 1 does not exist and would create it; the fence stops that first.
    persist(&mut b, &mut expected, writes([1, 2], 2, 10)).await;
    persist(&mut a, &mut expected, Persist { purge_below: Some(2), ..writes([3], 3, 10) }).await;
    assert_eq!(load(&mut store(&server, &root)).await, expected);
    assert_eq!(expected.slots.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
}

#[tokio::test]
async fn an_outage_fails_calls_promptly_and_loses_nothing() {
    // Its own server, since this test stops it. Ticks of 500 ms allow a 2 s session.
    let server = ZkServer::start(Some(500));
    let cfg = ZkConfig {
        session_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        op_timeout: Duration::from_secs(2),
        ..config(&server, "/barista")
    };
    let bound = cfg.op_timeout + Duration::from_secs(1);
    let mut s = ZkStore::new(cfg.clone()).expect("config");
    let mut expected = AcceptorState::default();
    assert_eq!(load(&mut s).await, expected);
    let promise = Some(Promise { ballot: ballot(1), from: 1 });
    persist(&mut s, &mut expected, Persist { promise, ..writes(1..=5, 1, 100) }).await;
    // Near the size limit, so the restarts below must replay a large transaction too.
    persist(&mut s, &mut expected, writes(6..16, 1, 95_000)).await;
    let first_session = s.session_id().expect("connected");

    // A short outage.
    let server = Arc::new(server);
    let stopper = server.clone();
    tokio::task::spawn_blocking(move || stopper.stop()).await.expect("stop");
    let start = Instant::now();
    let err = s.try_persist(&writes([20], 2, 100)).await.expect_err("ZooKeeper is down");
    let failed_in = start.elapsed();
    assert!(failed_in < bound, "persist took {failed_in:?} to fail: {err}");
    let start = Instant::now();
    s.try_load().await.expect_err("ZooKeeper is down");
    assert!(start.elapsed() < bound, "load took {:?} to fail", start.elapsed());
    let restarter = server.clone();
    tokio::task::spawn_blocking(move || restarter.restart()).await.expect("restart");
    let batch = Persist { promise: Some(Promise { ballot: ballot(2), from: 1 }), ..writes([20, 3], 2, 100) };
    let recovered_in = persist_until_ok(&mut s, &batch).await;
    expected.apply(&batch);
    assert_eq!(load(&mut s).await, expected, "nothing acknowledged before the outage is lost");
    eprintln!(
        "short outage: persist failed in {failed_in:?}; back {recovered_in:?} after the restart; session {}",
        if s.session_id() == Some(first_session) { "kept" } else { "replaced" }
    );

    // An outage longer than the session: the client gives the session up, the store opens a new one.
    let session = s.session_id().expect("connected");
    let stopper = server.clone();
    tokio::task::spawn_blocking(move || stopper.stop()).await.expect("stop");
    tokio::time::sleep(cfg.session_timeout * 2).await;
    let start = Instant::now();
    let err = s.try_persist(&writes([21], 3, 100)).await.expect_err("ZooKeeper is down");
    let failed_in = start.elapsed();
    assert!(failed_in < bound, "persist took {failed_in:?} to fail: {err}");
    assert_eq!(s.session_id(), None);
    let restarter = server.clone();
    tokio::task::spawn_blocking(move || restarter.restart()).await.expect("restart");
    let batch = Persist { purge_below: Some(3), ..writes([21], 3, 100) };
    let recovered_in = persist_until_ok(&mut s, &batch).await;
    expected.apply(&batch);
    let new_session = s.session_id().expect("connected");
    assert_ne!(new_session, session, "an expired session is replaced");
    eprintln!("long outage: persist failed in {failed_in:?}; back {recovered_in:?} after the restart; new session");
    assert_eq!(load(&mut s).await, expected);
    assert_eq!(load(&mut ZkStore::new(cfg).expect("config")).await, expected, "a restarted node sees it too");
}

/// Not a benchmark with assertions: prints persist latency against the local ZooKeeper.
#[tokio::test]
async fn persist_latency() {
    let server = shared_server();
    let mut s = store(&server, &unique_root("latency"));
    load(&mut s).await;
    let mut next: Slot = 1;
    for (slots, rounds) in [(1usize, 300usize), (64, 100)] {
        let mut times = Vec::with_capacity(rounds);
        for i in 0..rounds + 10 {
            // Fresh slots each time (creates), and the previous batch's slots purged, as a node does.
            let batch = Persist { purge_below: Some(next), ..writes(next..next + slots as Slot, 1, 100) };
            next += slots as Slot;
            let start = Instant::now();
            s.try_persist(&batch).await.unwrap_or_else(|e| panic!("persist: {e}"));
            if i >= 10 {
                times.push(start.elapsed());
            }
        }
        times.sort();
        let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        eprintln!(
            "persist, {slots} slot(s) of one 100-byte command (+ purge of the previous batch), {rounds} runs: \
             mean {mean:?}, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            pick(0.5),
            pick(0.9),
            pick(0.99),
            pick(1.0)
        );
    }
    // And a restart's load of many slots (pipelined reads).
    let root = unique_root("load-latency");
    let mut s = store(&server, &root);
    load(&mut s).await;
    for first in (1..=2000).step_by(200) {
        s.try_persist(&writes(first..first + 200, 1, 100)).await.unwrap_or_else(|e| panic!("persist: {e}"));
    }
    let mut fresh = store(&server, &root);
    let start = Instant::now();
    let state = load(&mut fresh).await;
    eprintln!("load of {} slots by a new store (connect included): {:?}", state.slots.len(), start.elapsed());
}
