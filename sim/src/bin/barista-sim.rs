//! `barista-sim`: run one simulation seed, or sweep many on every core keeping only failures.
//!
//! Build with `RUSTFLAGS="--cfg madsim"`; without it this binary only says so.

#[cfg(not(madsim))]
fn main() {
    eprintln!("barista-sim runs the deterministic simulation; build it with RUSTFLAGS=\"--cfg madsim\"");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    sweep::main();
}

#[cfg(madsim)]
mod sweep {
    use std::path::PathBuf;
    use std::time::Instant;

    use barista_core::planted::Bug;
    use barista_sim::config::SimConfig;
    use barista_sim::sweep::{FAILURE_PREFIX, REPORT_PREFIX};
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    #[command(about = "Deterministic simulation of Barista clusters")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Run one seed and print what happened (set RUST_LOG=debug for the full trace).
        Run {
            /// The seed to run.
            seed: u64,
            /// Plant a bug (see `sweep --bug`).
            #[arg(long, value_parser = barista_sim::planted_by_name)]
            bug: Option<Bug>,
            /// Print machine-readable result lines (used by `sweep`).
            #[arg(long)]
            report: bool,
        },
        /// Run many seeds on all cores; write a log for each failing seed only.
        Sweep {
            /// First seed.
            #[arg(long, default_value_t = 0)]
            from: u64,
            /// Number of seeds.
            #[arg(long, default_value_t = 1000)]
            seeds: u64,
            /// Parallel runs (default: available cores).
            #[arg(long)]
            jobs: Option<usize>,
            /// Where failing seeds' logs go.
            #[arg(long, default_value = "target/sim-failures")]
            logs: PathBuf,
            /// Plant a bug in every run (reply-before-persist, skip-ap-update, no-exactly-once,
            /// leader-overrides-accepted, done-before-flush, read-out-of-turn) and stop at the
            /// first seed that catches it.
            #[arg(long, value_parser = barista_sim::planted_by_name)]
            bug: Option<Bug>,
        },
    }

    pub fn main() {
        let cli = Cli::parse();
        match cli.command {
            Command::Run { seed, bug, report } => {
                if !report {
                    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
                }
                println!("{}", SimConfig::from_seed(seed));
                match barista_sim::run_seed_with(seed, bug) {
                    Ok(r) => {
                        println!(
                            "ok: {} inserts, {} transfers, {} fault events, applied through slot {}, {} simulated ms",
                            r.inserts, r.transfers, r.fault_events, r.applied, r.simulated_ms
                        );
                        if report {
                            let mut h = std::hash::DefaultHasher::new();
                            std::hash::Hash::hash(&r.fingerprint, &mut h);
                            println!("fingerprint {:016x}", std::hash::Hasher::finish(&h));
                            println!("{REPORT_PREFIX}{}", r.simulated_ms);
                        }
                    }
                    Err(failure) => {
                        if report {
                            println!("{FAILURE_PREFIX}{:?}", failure.class);
                        }
                        println!("{failure}");
                        std::process::exit(1);
                    }
                }
            }
            Command::Sweep { from, seeds, jobs, logs, bug } => sweep(from, seeds, jobs, logs, bug),
        }
    }

    fn sweep(from: u64, seeds: u64, jobs: Option<usize>, logs: PathBuf, bug: Option<Bug>) {
        let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let started = Instant::now();
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("cannot find this program to run seeds with: {e}");
                std::process::exit(2);
            }
        };
        let options = barista_sim::sweep::Options {
            exe,
            jobs,
            bug,
            stop_at_first_failure: bug.is_some(),
            timeout: barista_sim::sweep::DEFAULT_TIMEOUT,
        };
        let summary = barista_sim::sweep::sweep(
            from..from + seeds,
            options,
            move |failure| {
                let _ = std::fs::create_dir_all(&logs);
                let text = format!("{}\n{failure}\n", SimConfig::from_seed(failure.seed));
                let _ = std::fs::write(logs.join(format!("seed-{}.log", failure.seed)), text);
                eprintln!("FAIL {failure}");
            },
            move |done| {
                if done % 100 == 0 || std::env::var_os("BARISTA_SIM_PROGRESS").is_some() {
                    eprintln!("{done}/{seeds} seeds, {:.0} s", started.elapsed().as_secs_f64());
                }
            },
        );
        let failed: Vec<u64> = summary.failures.iter().map(|f| f.seed).collect();
        println!(
            "{} seeds in {:.1} s wall, {:.0} simulated s ({:.1} simulated s per wall s on {jobs} jobs); {} failed: {failed:?}",
            summary.seeds,
            summary.wall_s,
            summary.simulated_s,
            summary.simulated_s / summary.wall_s.max(f64::EPSILON),
            failed.len()
        );
        if !failed.is_empty() {
            std::process::exit(1);
        }
    }
}
