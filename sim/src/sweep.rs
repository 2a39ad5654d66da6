//! Running many seeds in parallel, keeping only the failures.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::run::Failure;

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
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Parallel runs.
    pub jobs: usize,
    /// A bug planted in every run (to prove the checkers catch it).
    pub bug: Option<barista_core::planted::Bug>,
    /// Stop handing out seeds after the first failure.
    pub stop_at_first_failure: bool,
}

/// Runs every seed in `seeds`, each in its own madsim runtime. `on_failure` is called as failures
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
    let on_failure = Arc::new(on_failure);
    let on_progress = Arc::new(on_progress);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..options.jobs.max(1))
        .map(|_| {
            let (next, done, simulated_ms, failures) =
                (next.clone(), done.clone(), simulated_ms.clone(), failures.clone());
            let (on_failure, on_progress, stop) = (on_failure.clone(), on_progress.clone(), stop.clone());
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match crate::run_seed_with(seed, options.bug) {
                        Ok(report) => {
                            simulated_ms.fetch_add(report.simulated_ms, Ordering::Relaxed);
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
