//! `barista status`: asks every replica's admin address for its `/status` and prints the cluster
//! as a table: who is leader, each replica's AP, health and lag behind the furthest replica,
//! which replica must be re-seeded, and which ones the divergence checks found diverged.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::report::Report;
use crate::cli::StatusArgs;

/// Longest `/status` answer read.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// `GET path` from the admin endpoint at `addr`; the body of a `200` answer.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<String> {
    http_request("GET", addr, path, timeout)
}

/// `POST path` (no body) to the admin endpoint at `addr`; the body of a `200` answer.
pub fn http_post(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<String> {
    http_request("POST", addr, path, timeout)
}

fn http_request(method: &str, addr: &str, path: &str, timeout: Duration) -> anyhow::Result<String> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut response).with_context(|| format!("reading from {addr}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| anyhow!("{addr}: malformed HTTP answer"))?;
    let status_line = head.lines().next().unwrap_or("");
    if status_line.split_whitespace().nth(1) != Some("200") {
        let why = body.trim();
        if why.is_empty() {
            bail!("{addr}: {status_line}");
        }
        bail!("{addr}: {status_line}: {why}");
    }
    Ok(body.to_owned())
}

/// One replica's report from its admin address.
pub fn fetch_report(addr: &str, timeout: Duration) -> anyhow::Result<Report> {
    let body = http_get(addr, "/status", timeout)?;
    serde_json::from_str(&body).with_context(|| format!("{addr}: /status is not a Barista status"))
}

/// Runs `barista status`; returns whether every replica answered and is healthy.
pub fn run(args: &StatusArgs) -> anyhow::Result<bool> {
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let answers: Vec<(String, anyhow::Result<Report>)> = std::thread::scope(|scope| {
        let asks: Vec<_> =
            args.admin.iter().map(|addr| (addr.clone(), scope.spawn(move || fetch_report(addr, timeout)))).collect();
        asks.into_iter()
            .map(|(addr, ask)| (addr, ask.join().unwrap_or_else(|_| Err(anyhow!("status request panicked")))))
            .collect()
    });
    if args.json {
        let json: Vec<serde_json::Value> = answers
            .iter()
            .map(|(addr, answer)| match answer {
                Ok(report) => serde_json::json!({ "admin": addr, "status": report }),
                Err(e) => serde_json::json!({ "admin": addr, "error": format!("{e:#}") }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", table(&answers));
    }
    // A replica that must be re-seeded votes but can never apply again: not a healthy cluster.
    Ok(answers.iter().all(|(_, a)| a.as_ref().is_ok_and(|r| r.is_healthy() && !r.needs_reseed)))
}

/// The human-readable table `barista status` prints (`barista demo` too).
pub fn table(answers: &[(String, anyhow::Result<Report>)]) -> String {
    let furthest = answers.iter().filter_map(|(_, a)| a.as_ref().ok()).map(|r| r.applied).max().unwrap_or(0);
    let mut out = format!(
        "{:<22} {:>4} {:<21} {:<10} {:>6} {:>10} {:>10} {:>6}\n",
        "ADMIN", "NODE", "HEALTH", "ROLE", "LEADER", "AP", "DECIDED", "LAG"
    );
    for (addr, answer) in answers {
        match answer {
            Ok(r) => {
                let leader = r.leader.map_or("-".to_string(), |l| l.to_string());
                out.push_str(&format!(
                    "{addr:<22} {:>4} {:<21} {:<10} {leader:>6} {:>10} {:>10} {:>6}\n",
                    r.node,
                    r.health,
                    r.role.as_deref().unwrap_or("-"),
                    r.applied,
                    r.decided,
                    furthest - r.applied,
                ));
                if let Some(detail) = &r.detail {
                    out.push_str(&format!("{:<22}      {detail}\n", ""));
                }
                if r.rejoining {
                    out.push_str(&format!(
                        "{:<22}      lost its acceptor state: not voting until every peer has answered\n",
                        ""
                    ));
                }
                if r.needs_reseed {
                    out.push_str(&format!(
                        "{:<22}      fell behind the purge point (slot {} is purged on its peers): re-seed it\n",
                        "",
                        r.applied + 1
                    ));
                }
            }
            Err(e) => out.push_str(&format!("{addr:<22} {:>4} unreachable: {e:#}\n", "?")),
        }
    }
    let leaders: Vec<u32> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok())
        .filter(|r| r.role.as_deref() == Some("leader"))
        .map(|r| r.node)
        .collect();
    out.push_str(&match leaders.as_slice() {
        [] => "leader: none among the replicas that answered\n".to_string(),
        [one] => format!("leader: node {one}\n"),
        many => format!("leader: several replicas believe they lead: {many:?} (an election is settling)\n"),
    });
    out.push_str(&divergence_line(answers));
    out
}

/// What the divergence checks say, from the replica that applied the newest one.
fn divergence_line(answers: &[(String, anyhow::Result<Report>)]) -> String {
    let newest = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok())
        .filter(|r| r.last_check.is_some())
        .max_by_key(|r| r.last_check.as_ref().map(|c| c.check));
    let Some(report) = newest else { return "divergence checks: none yet\n".into() };
    let last = report.last_check.as_ref().map_or(0, |c| c.check);
    match report.diverged_replicas.as_slice() {
        [] => format!("divergence checks: no replica diverged (newest check at slot {last})\n"),
        nodes => format!(
            "DIVERGENCE: replica(s) {nodes:?} hold data that differs from the majority's (newest check at slot {last}; \
             `barista verify` shows the digests): repair or re-seed them\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node: u32, role: &str, applied: u64) -> Report {
        Report {
            node,
            health: "healthy".into(),
            detail: None,
            role: Some(role.into()),
            leader: Some(0),
            applied,
            decided: applied,
            max_slot: applied,
            pending: 0,
            floor: applied + 1,
            retained: 0,
            rejoining: false,
            needs_reseed: false,
            diverged_replicas: Vec::new(),
            last_check: None,
        }
    }

    #[test]
    fn table_shows_leader_lag_and_unreachable_replicas() {
        let answers = vec![
            ("a:1".to_string(), Ok(report(0, "leader", 12))),
            ("b:1".to_string(), Ok(report(1, "follower", 9))),
            ("c:1".to_string(), Err(anyhow!("connection refused"))),
        ];
        let text = table(&answers);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("a:1") && lines[1].ends_with(" 0"), "{text}");
        assert!(lines[2].contains("follower") && lines[2].ends_with(" 3"), "lag 12 - 9: {text}");
        assert!(lines[3].contains("unreachable: connection refused"), "{text}");
        assert_eq!(lines[4], "leader: node 0");
        assert_eq!(lines[5], "divergence checks: none yet");
    }
}
