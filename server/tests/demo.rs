//! `barista demo --no-wait` from start to finish, as the README runs it: it must exit 0 within its
//! deadline, print each step's `OK` line, and leave none of the processes it started running (it
//! names each by PID as it starts and stops it).
//!
//! About 15 s: starting PostgreSQL and ZooKeeper, the tour, stopping everything.
#![cfg(not(madsim))]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole demo's deadline: it takes about 15 s on a quiet machine; the README promises a minute.
const DEADLINE: Duration = Duration::from_secs(120);

/// True if `pid` is a live process (a zombie counts as dead: on machines whose PID 1 does not reap
/// orphans, a stopped server can stay a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[test]
fn the_demo_runs_every_step_and_leaves_nothing_running() {
    let dir = std::env::temp_dir().join(format!("barista-demo-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_barista"))
        .args(["demo", "--no-wait", "--dir"])
        .arg(&dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start barista demo");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Read both pipes on threads, so the demo never blocks on a full one.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for barista demo") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            // By PID; its own Ctrl-C handling is not what is tested here. Its watcher then stops
            // what it started.
            let _ = child.kill();
            let _ = child.wait();
            panic!("barista demo did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "barista demo failed ({status}) after {took:?}:\n{stdout}\n--- stderr\n{stderr}");

    for step in ["OK 1:", "OK 2:", "OK 3a:", "OK 3b:", "OK 3c:", "Stopped every process"] {
        assert!(stdout.lines().any(|l| l.contains(step)), "no line with {step:?} in:\n{stdout}");
    }
    // Every PID it named, started or stopped, is gone.
    let pids: Vec<u32> =
        stdout.split("(pid ").skip(1).filter_map(|rest| rest.split(')').next()?.trim().parse().ok()).collect();
    assert!(pids.len() >= 12, "expected the PIDs of ZooKeeper, 3 PostgreSQL and the replicas, got {pids:?}:\n{stdout}");
    let stopped = stdout.lines().filter(|l| l.trim_start().starts_with("stopped ") && l.contains("(pid ")).count();
    assert!(stopped >= 8, "expected 3 replicas, 3 PostgreSQL, ZooKeeper and the watcher stopped:\n{stdout}");
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "still running after the demo: {left:?}\n{stdout}");
    eprintln!("barista demo --no-wait took {took:?}");
}
