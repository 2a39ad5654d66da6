//! The `barista-tpcc` command: `load`, `run` and `check` (see `--help` and the README).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use barista_tpcc::load::{LoadOptions, Scale, load};
use barista_tpcc::report::{Report, chart_svg, compare, compare_table};
use barista_tpcc::run::{RunOptions, run};
use barista_tpcc::target::Target;
use barista_tpcc::txn::Mode;
use clap::{Parser, Subcommand};

const TARGET_HELP: &str = "postgres://user@host:port/db (PostgreSQL, a synchronous-replication primary, a pgpool-II \
                           front) or barista://host:port[,host:port...] (a Barista cluster's Thrift addresses)";

/// TPC-C 5.11 for Barista and PostgreSQL: load the nine tables, run the five transactions, check
/// the consistency conditions. The same SQL goes to Barista (barista://) and to PostgreSQL
/// (postgres://), so the numbers compare.
///
/// Example against a local Barista cluster, then checking every replica's own PostgreSQL:
///
///   barista-tpcc load --target barista://127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092 --warehouses 1
///
///   barista-tpcc run --target barista://127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092 --terminals 8 --duration 60 --report run.json
///
///   barista-tpcc check --target postgres://postgres@127.0.0.1:5433/postgres --target postgres://postgres@127.0.0.1:5434/postgres ...
#[derive(Parser, Debug)]
#[command(name = "barista-tpcc", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the schema (dropping a previous one), install the stored procedures and load N
    /// warehouses with TPC-C's initial population, in parallel, with a progress bar.
    Load {
        #[arg(long, help = TARGET_HELP)]
        target: String,
        /// Warehouses (each: 10 districts, 30,000 customers, 100,000 stock rows, ...; items are 100,000 in all).
        #[arg(long, default_value_t = 1)]
        warehouses: i64,
        /// Parallel loading sessions.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Seed of the generated data (printed; the same seed loads the same rows).
        #[arg(long)]
        seed: Option<u64>,
        /// Longest INSERT statement in KiB (Barista holds one statement per log slot of ~900 KB).
        #[arg(long, default_value_t = 200)]
        statement_kib: usize,
        /// Do not install the stored procedures of procedures mode.
        #[arg(long)]
        no_procedures: bool,
        /// Divide the items and the customers and orders per district by this (1: TPC-C's
        /// cardinalities). Anything else is NOT a conformant TPC-C database: it is for quick tests
        /// (a debug-build Barista takes minutes for one full warehouse). run and check follow it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=100))]
        test_divisor: i64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the five transactions (45/43/4/4/4) from T terminals bound to home warehouses: a
    /// warm-up, then the measured interval; print tpmC, per-type throughput and latency.
    Run {
        #[arg(long, help = TARGET_HELP)]
        target: String,
        /// Warehouses to use (default: all that were loaded).
        #[arg(long)]
        warehouses: Option<i64>,
        /// Terminals (sessions), spread over the warehouses: terminal t serves warehouse t mod W + 1.
        #[arg(long, default_value_t = 10)]
        terminals: usize,
        /// Warm-up in seconds (not measured).
        #[arg(long, default_value_t = 10)]
        warmup: u64,
        /// Measured interval in seconds.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// interactive: BEGIN, one statement per call, COMMIT. procedures: one stored-procedure
        /// call per transaction (installed by load).
        #[arg(long, value_enum, default_value_t = Mode::Procedures)]
        mode: Mode,
        /// Keying and think times of clause 5.2.5 (off: transactions back to back).
        #[arg(long)]
        keying_think: bool,
        /// Seed of the terminals' inputs (printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Write the report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the chart (SVG: throughput over time, latency by type) to this file. Default:
        /// the report's path with .svg.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// A label for the report (side-by-side comparisons).
        #[arg(long, default_value = "")]
        label: String,
        /// No live progress.
        #[arg(long)]
        quiet: bool,
    },
    /// Compare run reports (JSON files from run --report, grouped by --label): print one ratio
    /// table against a baseline, and optionally save it as JSON and one chart of all of them.
    Compare {
        /// Report files.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The label to divide by (default: the first report's).
        #[arg(long)]
        baseline: Option<String>,
        /// Write the comparison as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write one chart of all the reports here (SVG).
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// Check TPC-C consistency conditions 1-12 on each PostgreSQL given (for Barista: each
    /// replica's own PostgreSQL, read directly), and that all of them hold identical data.
    /// Exits non-zero on any failure.
    Check {
        /// A PostgreSQL URL; repeat for every replica.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// Also condition 11, which holds only right after a load.
        #[arg(long)]
        after_load: bool,
    },
}

fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    })
}

fn main() -> ExitCode {
    match main_result() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("barista-tpcc: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_result() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Load { target, warehouses, workers, seed, statement_kib, no_procedures, test_divisor, quiet } => {
            let seed = seed_or_clock(seed);
            let t = Target::parse(&target)?;
            let scale = Scale::divided(test_divisor);
            println!("loading {warehouses} warehouse(s) into {target} with {workers} workers, seed {seed}");
            if !scale.is_tpcc() {
                println!(
                    "test database, not TPC-C's cardinalities: {} items, {} customers per district (--test-divisor {test_divisor})",
                    scale.items, scale.customers
                );
            }
            let summary = load(
                &t,
                &LoadOptions {
                    warehouses,
                    workers,
                    seed,
                    statement_bytes: statement_kib * 1024,
                    procedures: !no_procedures,
                    progress: !quiet,
                    scale,
                },
            )?;
            println!(
                "loaded {} rows in {:.1} s ({:.0} rows/s); load-time C constants: C_LAST {}, C_ID {}, OL_I_ID {}",
                summary.rows,
                summary.elapsed.as_secs_f64(),
                summary.rows as f64 / summary.elapsed.as_secs_f64().max(1e-9),
                summary.constants.c_last,
                summary.constants.c_id,
                summary.constants.ol_i_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            target,
            warehouses,
            terminals,
            warmup,
            duration,
            mode,
            keying_think,
            seed,
            report,
            chart,
            label,
            quiet,
        } => {
            let seed = seed_or_clock(seed);
            let t = Target::parse(&target)?;
            println!(
                "running TPC-C on {target}: {terminals} terminal(s), {mode:?} mode, {warmup} s warm-up, {duration} s measured, seed {seed}"
            );
            let result = run(
                &t,
                &RunOptions {
                    warehouses,
                    terminals,
                    warmup: Duration::from_secs(warmup),
                    duration: Duration::from_secs(duration),
                    mode,
                    keying_think,
                    seed,
                    progress: !quiet,
                    label,
                },
            )?;
            print!("{}", result.table());
            if let Some(path) = &report {
                std::fs::write(path, serde_json::to_string_pretty(&result)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("report: {}", path.display());
            }
            let chart = chart.or_else(|| report.map(|p| p.with_extension("svg")));
            if let Some(path) = chart {
                std::fs::write(&path, chart_svg(&[&result])).with_context(|| format!("writing {}", path.display()))?;
                println!("chart: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { reports, baseline, json, chart } => {
            let reports: Vec<Report> = reports
                .iter()
                .map(|p| -> anyhow::Result<Report> {
                    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_str(&text).with_context(|| format!("{} is not a barista-tpcc report", p.display()))
                })
                .collect::<anyhow::Result<_>>()?;
            let rows = compare(&reports, baseline.as_deref());
            print!("{}", compare_table(&rows));
            if let Some(path) = json {
                let body = serde_json::json!({ "comparison": rows, "reports": reports });
                std::fs::write(&path, serde_json::to_string_pretty(&body)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("comparison: {}", path.display());
            }
            if let Some(path) = chart {
                let refs: Vec<&Report> = reports.iter().collect();
                std::fs::write(&path, chart_svg(&refs)).with_context(|| format!("writing {}", path.display()))?;
                println!("chart: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { targets, after_load } => {
            let (text, ok) = barista_tpcc::check::check(&targets, after_load)?;
            print!("{text}");
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
