//! The periodic divergence check: the multi-paxos leader proposes a `Checksum` when no check has
//! been applied for an interval. In paxos mode every replica may, taking turns a quarter of an
//! interval apart by node id, so one check per interval is the rule and a replica that is down
//! does not stop the checks. Any replica seeing a new check applied restarts its own wait, so a
//! new leader carries on the schedule instead of checking at once.

use std::sync::Arc;
use std::time::Duration;

use barista_core::RoleKind;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::node::NodeStatus;
use crate::service::Service;

/// Runs forever, proposing a check every `interval` (never when `interval` is zero).
pub async fn run<C: Clock>(service: Arc<Service<C>>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let poll = (interval / 10).clamp(Duration::from_millis(50), Duration::from_secs(10));
    let newest = |s: &NodeStatus| s.checks.last().map(|c| c.check);
    let mut seen = newest(&service.node().status());
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(poll).await;
        let status = service.node().status();
        if newest(&status) != seen {
            seen = newest(&status);
            since = Instant::now();
        }
        let turn = match status.core.role {
            RoleKind::Leader => 0,
            RoleKind::Proposer => status.core.id,
            RoleKind::Follower | RoleKind::Candidate => continue,
        };
        if since.elapsed() < interval + interval * turn / 4 {
            continue;
        }
        match service.verify().await {
            Ok(check) => info!(check, "periodic divergence check started"),
            Err(e) => warn!("could not start the periodic divergence check: {e}"),
        }
        since = Instant::now();
    }
}
