//! What the node keeps of the checks: the summaries it publishes, its own standing, the alarms it
//! raised, and the reports it proposes for the digests its executor computed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use barista_core::{NodeId, Slot};
use tokio::time::Instant;
use tracing::error;

use super::DatabaseDigest;
use super::tally::{self, CHECKS_KEPT, CheckSummary, Checks, Divergence, Verdict};
use crate::command::{ClientCommand, ConnId, Op};
use crate::node::Health;

/// The node's view of the divergence checks.
pub(crate) struct Watch {
    me: NodeId,
    nodes: u32,
    /// [`Checks::version`] last read; `None` before the first read.
    seen: Option<u64>,
    /// Every kept check, oldest first, as `/status` shows them.
    pub(crate) summaries: Arc<Vec<CheckSummary>>,
    /// Whether this replica is diverged, and why.
    pub(crate) standing: Option<Divergence>,
    /// The divergences already logged: (check, minority).
    alarmed: BTreeSet<(Slot, Vec<NodeId>)>,
    /// This replica's digests whose report the log has not recorded yet, and when each was last
    /// proposed. A report applied while a client transaction is open is answered `Busy`, and a
    /// proposal can be lost with a leader: it is proposed again until it is recorded.
    unreported: BTreeMap<Slot, (DatabaseDigest, Option<Instant>)>,
}

/// Wait before proposing a report again.
const REPORT_RETRY: Duration = Duration::from_secs(1);

impl Watch {
    pub(crate) fn new(me: NodeId, nodes: u32) -> Watch {
        Watch {
            me,
            nodes,
            seen: None,
            summaries: Arc::default(),
            standing: None,
            alarmed: BTreeSet::new(),
            unreported: BTreeMap::new(),
        }
    }

    /// Reads `checks` again if they changed, and logs each divergence once, as an error, on
    /// every replica. After a restart only this replica's own standing is logged again.
    pub(crate) fn refresh(&mut self, checks: &Checks) {
        if self.seen == Some(checks.version()) {
            return;
        }
        let first = self.seen.is_none();
        self.seen = Some(checks.version());
        self.summaries = Arc::new(tally::summaries(checks, self.nodes));
        let standing = tally::standing(checks, self.me, self.nodes);
        for summary in self.summaries.iter() {
            let Verdict::Diverged { majority, minority } = &summary.verdict else { continue };
            if !self.alarmed.insert((summary.check, minority.clone())) || first {
                continue;
            }
            for node in minority {
                error!(
                    check = summary.check,
                    replica = node,
                    digest = %summary.reports.get(node).copied().unwrap_or_default(),
                    majority = %majority,
                    tables = ?summary.differing.get(node),
                    "DIVERGENCE: replica {node}'s data differs from the majority's at the check in slot {}",
                    summary.check
                );
            }
        }
        if let Some(d) = &standing {
            if first || self.standing.as_ref() != Some(d) {
                error!(
                    check = d.check,
                    digest = %d.digest,
                    majority = %d.majority,
                    tables = ?d.tables,
                    "this replica diverged from the majority at the check in slot {}: it stops serving clients \
                     until a later check finds it agreeing (repair or re-seed its database, then run `barista verify`)",
                    d.check
                );
            }
        }
        self.standing = standing;
    }

    /// The health to publish: a fault first, else diverged, else healthy.
    pub(crate) fn health(&self, faults: &Health) -> Health {
        match (faults, &self.standing) {
            (Health::Healthy, Some(d)) => Health::Diverged(d.clone()),
            (health, _) => health.clone(),
        }
    }

    /// Takes the digests of the checks the executor just applied, to report them.
    pub(crate) fn add_digests(&mut self, digests: Vec<(Slot, DatabaseDigest)>) {
        for (check, digest) in digests {
            self.unreported.entry(check).or_insert((digest, None));
        }
        while self.unreported.len() > CHECKS_KEPT {
            self.unreported.pop_first();
        }
    }

    /// The reports to propose now: those not recorded in `checks` yet, first proposed or last
    /// proposed a while ago, and none while a client transaction is open (it would be `Busy`).
    pub(crate) fn due_reports(&mut self, checks: &Checks, txn_open: bool, timestamp_us: i64) -> Vec<ClientCommand> {
        let me = self.me;
        self.unreported.retain(|check, _| {
            !checks.is_forgotten(*check) && !checks.reports(*check).is_some_and(|r| r.contains_key(&me))
        });
        if txn_open {
            return Vec::new();
        }
        let now = Instant::now();
        self.unreported
            .iter_mut()
            .filter(|(_, (_, at))| at.is_none_or(|at| now.duration_since(at) >= REPORT_RETRY))
            .map(|(check, (digest, at))| {
                *at = Some(now);
                ClientCommand {
                    // Nobody waits for a report's outcome: no session, no request number.
                    conn: ConnId(0),
                    request_seq: 0,
                    timestamp_us,
                    op: Op::ChecksumReport { check: *check, replica: me, digest: digest.clone() },
                }
            })
            .collect()
    }
}
