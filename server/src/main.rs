//! The `barista` binary: parses the command line and runs the subcommand (`serve`, `status`,
//! `reseed`, `demo`).

use std::process::ExitCode;

use anyhow::Context;
use barista_server::cli::{Cli, Command};
use barista_server::config::ServeConfig;
use barista_server::{admin, demo, logging, reseed, serve};
use clap::{CommandFactory, FromArgMatches};

/// `barista status` exit code when a replica is unreachable or unhealthy.
const DEGRADED: u8 = 3;
/// `barista verify` exit code when a replica's digest differs from the majority's.
const DIVERGED: u8 = 4;
/// `barista verify` exit code when the check did not complete: a replica did not report in
/// time, or no digest has a majority.
const INCOMPLETE: u8 = 5;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("barista: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).context("parsing the command line")?;
    match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").context("the serve subcommand's arguments")?;
            let cfg = ServeConfig::load(*args, serve_matches)?;
            logging::init(&cfg.log_level)?;
            serve::run(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => {
            let all_healthy = admin::status_cmd::run(&args)?;
            Ok(if all_healthy { ExitCode::SUCCESS } else { ExitCode::from(DEGRADED) })
        }
        Command::Verify(args) => Ok(match admin::verify_cmd::run(&args)? {
            admin::verify_cmd::Outcome::Agreed => ExitCode::SUCCESS,
            admin::verify_cmd::Outcome::Diverged => ExitCode::from(DIVERGED),
            admin::verify_cmd::Outcome::Incomplete => ExitCode::from(INCOMPLETE),
        }),
        Command::Reseed(args) => {
            let reseed_matches = matches.subcommand_matches("reseed").context("the reseed subcommand's arguments")?;
            reseed::run(*args, reseed_matches)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            demo::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
