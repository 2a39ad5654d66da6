//! `barista-tpcc run`: T terminals, each on its own thread and session, bound to a home warehouse
//! (terminal t serves warehouse t mod W + 1), draw transactions from a 45/43/4/4/4 deck and run
//! them back to back (or with keying and think times), through a warm-up and a measured
//! interval. A progress line shows tpmC so far.
//!
//! A transaction that fails with a serialization failure or deadlock is run again (up to
//! [`RETRIES`] times, counted as retries); any other failure counts as an error, and the
//! terminal goes on with its next transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::load::Scale;
use crate::random::{Constants, Rng};
use crate::report::{Report, ReportHeader, Stats};
use crate::target::{Session, Target};
use crate::txn::{Deck, Kind, Mode, Outcome, Terminal};

/// Times a transaction is run again after a serialization failure or deadlock.
pub const RETRIES: u32 = 10;

/// How `run` runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Warehouses to use (at most those loaded; default all).
    pub warehouses: Option<i64>,
    /// Terminals.
    pub terminals: usize,
    /// Warm-up before the measured interval.
    pub warmup: Duration,
    /// The measured interval.
    pub duration: Duration,
    /// Interactive or procedures.
    pub mode: Mode,
    /// Keying and think times (clause 5.2.5).
    pub keying_think: bool,
    /// Seed of the terminals' inputs.
    pub seed: u64,
    /// Show live progress.
    pub progress: bool,
    /// A label for the report.
    pub label: String,
}

/// The load-time facts a run needs, from `tpcc_meta`: the NURand constants, the warehouses, and
/// the scale.
pub fn read_meta(session: &mut dyn Session) -> anyhow::Result<(Constants, i64, Scale)> {
    let rows = session
        .execute("SELECT name, value FROM tpcc_meta ORDER BY name", &[])
        .context("reading tpcc_meta (was the database loaded with barista-tpcc load?)")?;
    let get = |name: &str| -> anyhow::Result<i64> {
        let row = rows.rows.iter().find(|r| r.first().and_then(|c| c.as_deref()) == Some(name));
        row.and_then(|r| r.get(1)?.as_deref()?.parse().ok()).with_context(|| format!("tpcc_meta has no {name}"))
    };
    let scale = Scale {
        items: get("items").unwrap_or(Scale::TPCC.items),
        customers: get("customers").unwrap_or(Scale::TPCC.customers),
    };
    Ok((Constants { c_last: get("c_last")?, c_id: get("c_id")?, ol_i_id: get("ol_i_id")? }, get("warehouses")?, scale))
}

/// Sleeps until `until` or until `stop` is set, whichever is first.
fn sleep_until(until: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// What the terminals share with the progress display.
struct Shared {
    stop: AtomicBool,
    /// New-Orders completed in the measured interval so far.
    new_orders: AtomicU64,
    /// All transactions completed, and failed, since the start.
    completed: AtomicU64,
    errors: AtomicU64,
}

/// One terminal's loop; returns what it measured.
#[allow(clippy::too_many_arguments)]
fn terminal_loop(
    mut terminal: Terminal,
    mut session: Box<dyn Session>,
    keying_think: bool,
    measure_from: Instant,
    end: Instant,
    shared: &Shared,
) -> Stats {
    let mut stats = Stats::new();
    let mut deck = Deck::new();
    let mut rng = Rng::new(terminal.rng.next_u64());
    while Instant::now() < end && !shared.stop.load(Ordering::Relaxed) {
        let kind = deck.draw(&mut rng);
        let (keying_s, think_mean_s) = kind.keying_and_think_s();
        if keying_think {
            sleep_until(Instant::now() + Duration::from_secs_f64(keying_s), &shared.stop);
            if Instant::now() >= end {
                break;
            }
        }
        let started = Instant::now();
        let mut retries = 0;
        let result = loop {
            match terminal.execute(session.as_mut(), kind) {
                Err(e) if e.is_retryable() && retries < RETRIES => retries += 1,
                other => break other,
            }
        };
        let finished = Instant::now();
        let measured = started >= measure_from && finished <= end;
        match &result {
            Ok(_) => shared.completed.fetch_add(1, Ordering::Relaxed),
            Err(_) => shared.errors.fetch_add(1, Ordering::Relaxed),
        };
        if measured {
            let s = stats.of(kind);
            s.retries += u64::from(retries);
            match result {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Committed => s.committed += 1,
                        Outcome::RolledBack => s.rolled_back += 1,
                    }
                    s.record(finished - started);
                    stats.tick(kind, (finished - measure_from).as_secs() as usize);
                    if kind == Kind::NewOrder {
                        shared.new_orders.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    s.errors += 1;
                    stats.error_sample(format!("{}: {e}", kind.name()));
                }
            }
        } else if let Err(e) = result {
            stats.error_sample(format!("{} (outside the measured interval): {e}", kind.name()));
        }
        if keying_think {
            // Negative exponential, at most ten times the mean (clause 5.2.5.4).
            let think = (-rng.unit().max(1e-12).ln() * think_mean_s).min(10.0 * think_mean_s);
            sleep_until(Instant::now() + Duration::from_secs_f64(think), &shared.stop);
        }
    }
    stats
}

/// Runs the benchmark and returns its report.
pub fn run(target: &Target, opts: &RunOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.terminals >= 1, "--terminals must be at least 1");
    let mut session = target.connect().with_context(|| format!("connecting to {}", target.describe()))?;
    let (load_constants, loaded, scale) = read_meta(session.as_mut())?;
    let warehouses = opts.warehouses.unwrap_or(loaded);
    anyhow::ensure!(
        (1..=loaded).contains(&warehouses),
        "--warehouses {warehouses}: the database holds {loaded} warehouse(s)"
    );
    drop(session);
    let mut rng = Rng::new(opts.seed);
    let constants = load_constants.for_run(&mut rng);

    // Every terminal connects before the clock starts.
    let sessions: Vec<Box<dyn Session>> = (0..opts.terminals)
        .map(|t| target.connect().with_context(|| format!("connecting terminal {t}")))
        .collect::<anyhow::Result<_>>()?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        new_orders: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.duration;
    let progress = if opts.progress {
        ProgressBar::new(opts.warmup.as_secs() + opts.duration.as_secs())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stats = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(t, session)| {
                let w_id = (t as i64 % warehouses) + 1;
                let d_id = ((t as i64 / warehouses) % 10) + 1;
                let mut terminal = Terminal::new(w_id, d_id, warehouses, constants, rng.next_u64(), opts.mode);
                terminal.scale = scale;
                let shared = &shared;
                let keying_think = opts.keying_think;
                scope.spawn(move || terminal_loop(terminal, session, keying_think, measure_from, end, shared))
            })
            .collect();
        while Instant::now() < end && handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            progress.set_position(now.saturating_duration_since(start).as_secs());
            let message = if now < measure_from {
                format!(
                    "warm-up: {} transactions, {} errors",
                    shared.completed.load(Ordering::Relaxed),
                    shared.errors.load(Ordering::Relaxed)
                )
            } else {
                let minutes = (now - measure_from).as_secs_f64() / 60.0;
                format!(
                    "tpmC {:.0} so far, {} transactions, {} errors",
                    shared.new_orders.load(Ordering::Relaxed) as f64 / minutes.max(1e-9),
                    shared.completed.load(Ordering::Relaxed),
                    shared.errors.load(Ordering::Relaxed)
                )
            };
            progress.set_message(message);
        }
        shared.stop.store(true, Ordering::Relaxed);
        let mut total = Stats::new();
        for handle in handles {
            match handle.join() {
                Ok(stats) => total.merge(&stats),
                Err(_) => total.error_sample("a terminal thread panicked".into()),
            }
        }
        total
    });
    progress.finish_and_clear();
    let measured = opts.duration;
    let mode = match opts.mode {
        Mode::Interactive => "interactive",
        Mode::Procedures => "procedures",
    };
    Ok(Report::new(
        &stats,
        measured,
        ReportHeader {
            target: target.describe(),
            label: opts.label.clone(),
            mode: mode.into(),
            warehouses,
            scale,
            terminals: opts.terminals,
            keying_think: opts.keying_think,
            warmup: opts.warmup,
            seed: opts.seed,
        },
    ))
}
