//! `barista verify`: runs a divergence check now. It starts the check through the first admin
//! address that accepts it (`POST /verify`: the replica proposes a `Checksum` and answers the
//! check's slot once it applied it), then reads `GET /checks` from every address until every
//! replica's report is in (the reports travel through the log, so any replica shows all of them)
//! or the timeout passes, and prints each replica's digest and whether it agrees with the
//! majority's.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use super::report::{CheckReport, ChecksReport};
use super::status_cmd::{http_get, http_post};
use crate::cli::VerifyArgs;

/// Longest wait for one `GET /checks`.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between rounds of `GET /checks`.
const POLL: Duration = Duration::from_millis(200);

/// What the check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every replica reported, and all digests are the same.
    Agreed,
    /// A majority agrees and at least one replica's digest differs.
    Diverged,
    /// A replica did not report in time, or no digest has a majority.
    Incomplete,
}

/// Runs `barista verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs.max(1));
    let (check, through) = start(&args.admin, deadline)?;
    println!("divergence check started at slot {check} (through {through}); waiting for every replica's report");
    let mut shown = None;
    let mut best: Option<(u32, CheckReport)> = None;
    loop {
        for addr in &args.admin {
            let Ok(view) = fetch_checks(addr) else { continue };
            let Some(found) = view.checks.into_iter().find(|c| c.check == check) else { continue };
            if best.as_ref().is_none_or(|(_, b)| found.reports.len() > b.reports.len()) {
                best = Some((view.nodes, found));
            }
        }
        let (got, nodes) = best.as_ref().map_or((0, 0), |(nodes, c)| (c.reports.len(), *nodes as usize));
        if shown != Some(got) {
            eprintln!("reports: {got} of {}", if nodes == 0 { "?".to_string() } else { nodes.to_string() });
            shown = Some(got);
        }
        let settled = best.as_ref().is_some_and(|(_, c)| c.verdict == "no-majority");
        if (nodes > 0 && got >= nodes) || settled || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    let Some((nodes, report)) = best else {
        println!("no replica shows the check at slot {check} within {}s", args.timeout_secs);
        return Ok(Outcome::Incomplete);
    };
    print!("{}", table(&report, nodes));
    let complete = report.reports.len() >= nodes as usize;
    Ok(match report.verdict.as_str() {
        "diverged" => Outcome::Diverged,
        "agreed" if complete => Outcome::Agreed,
        _ => Outcome::Incomplete,
    })
}

/// `POST /verify` to each address in turn until one starts the check; returns its slot and the
/// address. The replica answers once it applied the check, which waits for an open transaction
/// to end: the request may take a while.
fn start(admin: &[String], deadline: Instant) -> anyhow::Result<(u64, String)> {
    let mut errors = Vec::new();
    for addr in admin {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        match http_post(addr, "/verify", left).and_then(|body| {
            let answer: serde_json::Value = serde_json::from_str(&body).context("POST /verify: not JSON")?;
            answer["check"].as_u64().ok_or_else(|| anyhow!("POST /verify answered {body}"))
        }) {
            Ok(check) => return Ok((check, addr.clone())),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Err(anyhow!("no replica started the check:\n  {}", errors.join("\n  ")))
}

fn fetch_checks(addr: &str) -> anyhow::Result<ChecksReport> {
    let body = http_get(addr, "/checks", ASK_TIMEOUT)?;
    serde_json::from_str(&body).with_context(|| format!("{addr}: /checks is not a Barista answer"))
}

/// The per-replica table and the verdict line.
pub fn table(report: &CheckReport, nodes: u32) -> String {
    let mut out = format!("{:<8} {:>10} {:<32} {}\n", "REPLICA", "CHECK", "DIGEST", "AGREES");
    for r in &report.reports {
        let agrees = match r.agrees {
            Some(true) => "yes".to_string(),
            Some(false) if r.differing_tables.is_empty() => "NO".to_string(),
            Some(false) => format!("NO (differs in {})", r.differing_tables.join(", ")),
            None => "?".to_string(),
        };
        out.push_str(&format!("{:<8} {:>10} {:<32} {agrees}\n", r.replica, report.check, r.digest));
    }
    let missing: Vec<u32> = (0..nodes).filter(|n| !report.reports.iter().any(|r| r.replica == *n)).collect();
    for node in &missing {
        out.push_str(&format!("{node:<8} {:>10} {:<32} ? (no report)\n", report.check, "-"));
    }
    let minority: Vec<u32> = report.reports.iter().filter(|r| r.agrees == Some(false)).map(|r| r.replica).collect();
    out.push_str(&match report.verdict.as_str() {
        "agreed" if missing.is_empty() => {
            format!("agreed: all {nodes} replicas hold the same data at slot {}\n", report.check)
        }
        "agreed" => format!("agreed so far, but replica(s) {missing:?} did not report in time\n"),
        "diverged" => format!(
            "DIVERGED: replica(s) {minority:?} differ from the majority's digest {} and are marked unhealthy; \
             repair or re-seed them, then verify again\n",
            report.majority.as_deref().unwrap_or("?")
        ),
        "no-majority" => "NO MAJORITY: no digest is shared by a majority of the replicas; \
             Barista cannot tell which replicas are right\n"
            .to_string(),
        _ => format!("incomplete: replica(s) {missing:?} did not report in time, and no digest has a majority yet\n"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::report::ReplicaDigest;

    fn digest(replica: u32, digest: &str, agrees: Option<bool>, tables: &[&str]) -> ReplicaDigest {
        ReplicaDigest {
            replica,
            digest: digest.into(),
            agrees,
            differing_tables: tables.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn the_table_names_the_odd_replica_and_the_missing_ones() {
        let report = CheckReport {
            check: 42,
            verdict: "diverged".into(),
            majority: Some("aa".into()),
            reports: vec![digest(0, "aa", Some(true), &[]), digest(2, "bb", Some(false), &["public.t"])],
        };
        let text = table(&report, 3);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("0 ") && lines[1].ends_with("yes"), "{text}");
        assert!(lines[2].starts_with("2 ") && lines[2].ends_with("NO (differs in public.t)"), "{text}");
        assert!(lines[3].starts_with("1 ") && lines[3].ends_with("(no report)"), "{text}");
        assert!(lines[4].starts_with("DIVERGED: replica(s) [2]"), "{text}");
    }
}
