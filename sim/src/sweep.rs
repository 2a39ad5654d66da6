//! Running many seeds in parallel, keeping only the failures.
//!
//! Every seed runs in its own child process (`barista-sim run SEED --report`): madsim does not
//! free a finished run's tasks, so thousands of runs in one process would pile up memory, and a
//! run that aborts (a stack overflow, an abort in C code) takes down only its own process.

use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::planted_name;
use crate::run::{Failure, FailureClass};

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed, with what failed.
    pub failures: Vec<Failure>,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Simulated seconds, over all passing seeds.
    pub simulated_s: f64,
}

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `barista-sim` binary that runs one seed.
    pub exe: PathBuf,
    /// Parallel runs.
    pub jobs: usize,
    /// A bug planted in every run (to prove the checkers catch it).
    pub bug: Option<barista_core::planted::Bug>,
    /// Stop handing out seeds after the first failure.
    pub stop_at_first_failure: bool,
    /// Wall-clock time one seed may take. Simulated time is bounded inside the run, but a task
    /// that spins without letting simulated time pass would hang its process forever; past this
    /// the child is killed and the seed reported as hung.
    pub timeout: Duration,
}

/// The default for [`Options::timeout`]: a passing seed takes well under a second in a release
/// build and a few seconds in a debug build.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The last line a passing `run --report` prints.
pub const REPORT_PREFIX: &str = "REPORT simulated_ms=";
/// The line a failing `run --report` prints before the failure.
pub const FAILURE_PREFIX: &str = "FAILURE class=";

/// Reads `pipe` to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs one seed in a child process.
fn run_child(options: &Options, seed: u64) -> Result<u64, Failure> {
    let mut cmd = Command::new(&options.exe);
    cmd.args(["run", &seed.to_string(), "--report"]);
    if let Some(bug) = options.bug {
        cmd.args(["--bug", planted_name(bug)]);
    }
    let crash = |message: String| Failure { seed, class: FailureClass::Crash, message };
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| crash(format!("cannot start: {e}")))?;
    // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = match child.wait_timeout(options.timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(crash(format!("hung: no result within {:?} of wall-clock time", options.timeout)));
        }
        Err(e) => return Err(crash(format!("cannot wait for the run: {e}"))),
    };
    let output =
        std::process::Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        let simulated_ms = stdout.lines().find_map(|l| l.strip_prefix(REPORT_PREFIX)?.parse().ok()).unwrap_or(0);
        return Ok(simulated_ms);
    }
    let class = match stdout.lines().find_map(|l| l.strip_prefix(FAILURE_PREFIX)) {
        Some("Safety") => FailureClass::Safety,
        Some("Liveness") => FailureClass::Liveness,
        _ => FailureClass::Crash,
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = format!(
        "{}\n{}",
        stdout.trim_end(),
        stderr.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    Err(Failure { seed, class, message })
}

/// Runs every seed in `seeds`, `options.jobs` at a time. `on_failure` is called as failures
/// happen (to log them), `on_progress` after each seed with the count done.
pub fn sweep(
    seeds: Range<u64>,
    options: Options,
    on_failure: impl Fn(&Failure) + Send + Sync + 'static,
    on_progress: impl Fn(u64) + Send + Sync + 'static,
) -> Summary {
    let started = Instant::now();
    let end = seeds.end;
    let next = Arc::new(AtomicU64::new(seeds.start));
    let done = Arc::new(AtomicU64::new(0));
    let simulated_ms = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (on_failure, on_progress, options) = (Arc::new(on_failure), Arc::new(on_progress), Arc::new(options));
    let workers: Vec<_> = (0..options.jobs.max(1))
        .map(|_| {
            let (next, done, simulated_ms, failures, stop) =
                (next.clone(), done.clone(), simulated_ms.clone(), failures.clone(), stop.clone());
            let (on_failure, on_progress, options) = (on_failure.clone(), on_progress.clone(), options.clone());
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match run_child(&options, seed) {
                        Ok(ms) => {
                            simulated_ms.fetch_add(ms, Ordering::Relaxed);
                        }
                        Err(failure) => {
                            on_failure(&failure);
                            if options.stop_at_first_failure {
                                stop.store(true, Ordering::Relaxed);
                            }
                            failures.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
                        }
                    }
                    on_progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let mut failures = std::mem::take(&mut *failures.lock().unwrap_or_else(|p| p.into_inner()));
    failures.sort_by_key(|f| f.seed);
    Summary {
        seeds: done.load(Ordering::Relaxed),
        failures,
        wall_s: started.elapsed().as_secs_f64(),
        simulated_s: simulated_ms.load(Ordering::Relaxed) as f64 / 1000.0,
    }
}
