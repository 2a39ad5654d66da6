//! The decision rule: from the reports the log carried, which digest is the reference and which
//! replicas diverged from it. Pure functions of the reports and the cluster size, so every replica
//! decides alike.

use std::collections::BTreeMap;

use barista_core::{NodeId, Slot};

use super::{DatabaseDigest, Digest};

/// Checks whose reports are kept (in memory and in `barista_checks`); older ones are forgotten.
pub const CHECKS_KEPT: usize = 16;

/// The reports of the most recent checks, by check (the slot of its `Checksum`) and replica.
/// Equal when they hold the same reports.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    by_check: BTreeMap<Slot, BTreeMap<NodeId, DatabaseDigest>>,
    /// Bumped by every change, so a reader can tell cheaply whether to look again.
    version: u64,
}

impl PartialEq for Checks {
    fn eq(&self, other: &Checks) -> bool {
        self.by_check == other.by_check
    }
}

impl Checks {
    /// Records `replica`'s report for `check`. The first report of a replica for a check wins: a
    /// replayed slot or a re-proposed report carries the same digest anyway. Returns the oldest
    /// check still kept when this dropped older ones (the caller deletes their records).
    pub fn record(&mut self, check: Slot, replica: NodeId, digest: DatabaseDigest) -> Option<Slot> {
        if self.is_forgotten(check) {
            return None; // a late report for a check already forgotten
        }
        let reports = self.by_check.entry(check).or_default();
        if reports.contains_key(&replica) {
            return None;
        }
        reports.insert(replica, digest);
        self.version += 1;
        let mut dropped = false;
        while self.by_check.len() > CHECKS_KEPT {
            self.by_check.pop_first();
            dropped = true;
        }
        dropped.then(|| self.by_check.keys().next().copied()).flatten()
    }

    /// Whether a report for `check` would be ignored: the check is older than every kept one
    /// and no room is left.
    pub fn is_forgotten(&self, check: Slot) -> bool {
        self.by_check.len() >= CHECKS_KEPT && self.by_check.keys().next().is_some_and(|&oldest| check < oldest)
    }

    /// Changes whenever a report is recorded.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every kept check with its reports, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Slot, &BTreeMap<NodeId, DatabaseDigest>)> {
        self.by_check.iter().map(|(slot, reports)| (*slot, reports))
    }

    /// One check's reports.
    pub fn reports(&self, check: Slot) -> Option<&BTreeMap<NodeId, DatabaseDigest>> {
        self.by_check.get(&check)
    }
}

/// What one check's reports say so far.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// No digest has a majority yet, and the missing reports could still make one.
    Pending,
    /// A majority reported this digest and no replica reported another (some may not have
    /// reported yet).
    Agreed(Digest),
    /// A majority reported `majority`; the `minority` reported something else.
    Diverged {
        /// The reference digest.
        majority: Digest,
        /// The replicas whose digest differs, ascending.
        minority: Vec<NodeId>,
    },
    /// No digest has, or can still get, a majority: no replica can be told apart as the odd one
    /// (e.g. three different digests of three replicas, or a two-two tie of four).
    NoMajority,
}

/// The verdict on `reports` in a cluster of `nodes` replicas.
pub fn verdict(reports: &BTreeMap<NodeId, DatabaseDigest>, nodes: u32) -> Verdict {
    let majority = nodes / 2 + 1;
    let mut counts: BTreeMap<Digest, u32> = BTreeMap::new();
    for report in reports.values() {
        *counts.entry(report.digest).or_default() += 1;
    }
    let best = counts.iter().max_by_key(|(_, n)| **n).map(|(d, n)| (*d, *n));
    match best {
        Some((digest, n)) if n >= majority => {
            let minority: Vec<NodeId> =
                reports.iter().filter(|(_, r)| r.digest != digest).map(|(node, _)| *node).collect();
            if minority.is_empty() { Verdict::Agreed(digest) } else { Verdict::Diverged { majority: digest, minority } }
        }
        best => {
            let missing = nodes.saturating_sub(reports.len() as u32);
            if best.map_or(0, |(_, n)| n) + missing >= majority { Verdict::Pending } else { Verdict::NoMajority }
        }
    }
}

/// Why a replica is marked diverged.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Divergence {
    /// The check (its slot) that found it.
    pub check: Slot,
    /// This replica's digest there.
    pub digest: Digest,
    /// The majority's digest.
    pub majority: Digest,
    /// The tables that differ from the majority's.
    pub tables: Vec<String>,
}

/// Whether `me` is diverged: the verdict of the newest check that has both a majority digest and
/// a report of `me` (a newer check still waiting for reports, or for `me`'s, changes nothing yet).
pub fn standing(checks: &Checks, me: NodeId, nodes: u32) -> Option<Divergence> {
    for (check, reports) in checks.iter().rev() {
        let Some(mine) = reports.get(&me) else { continue };
        let majority = match verdict(reports, nodes) {
            Verdict::Agreed(_) => return None,
            Verdict::Diverged { majority, .. } => majority,
            Verdict::Pending | Verdict::NoMajority => continue,
        };
        if mine.digest == majority {
            return None;
        }
        let reference = reports.values().find(|r| r.digest == majority)?;
        return Some(Divergence { check, digest: mine.digest, majority, tables: mine.differing_tables(reference) });
    }
    None
}

/// One check as `/status` and `barista verify` show it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckSummary {
    /// The check's slot.
    pub check: Slot,
    /// Its verdict so far.
    pub verdict: Verdict,
    /// Each reporting replica's digest.
    pub reports: BTreeMap<NodeId, Digest>,
    /// For each replica of the minority, the tables that differ from the majority's.
    pub differing: BTreeMap<NodeId, Vec<String>>,
}

/// Every kept check, oldest first, summarized.
pub fn summaries(checks: &Checks, nodes: u32) -> Vec<CheckSummary> {
    checks
        .iter()
        .map(|(check, reports)| {
            let verdict = verdict(reports, nodes);
            let mut differing = BTreeMap::new();
            if let Verdict::Diverged { majority, minority } = &verdict {
                if let Some(reference) = reports.values().find(|r| r.digest == *majority) {
                    for node in minority {
                        if let Some(report) = reports.get(node) {
                            differing.insert(*node, report.differing_tables(reference));
                        }
                    }
                }
            }
            CheckSummary {
                check,
                verdict,
                reports: reports.iter().map(|(node, r)| (*node, r.digest)).collect(),
                differing,
            }
        })
        .collect()
}

/// The replicas the checks mark diverged, ascending: each one judged, as [`standing`] judges a
/// replica itself, by the newest check that has a majority digest and its report.
pub fn diverged_replicas(summaries: &[CheckSummary]) -> Vec<NodeId> {
    let mut judged = BTreeMap::new();
    for summary in summaries.iter().rev() {
        let minority = match &summary.verdict {
            Verdict::Agreed(_) => &[][..],
            Verdict::Diverged { minority, .. } => minority.as_slice(),
            Verdict::Pending | Verdict::NoMajority => continue,
        };
        for node in summary.reports.keys() {
            judged.entry(*node).or_insert_with(|| minority.contains(node));
        }
    }
    judged.into_iter().filter(|(_, diverged)| *diverged).map(|(node, _)| node).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::TableDigest;

    fn digest(seed: u8) -> DatabaseDigest {
        DatabaseDigest::from_tables(vec![TableDigest { table: "public.t".into(), rows: 1, digest: Digest([seed; 16]) }])
    }

    fn reports(of: &[(NodeId, u8)]) -> BTreeMap<NodeId, DatabaseDigest> {
        of.iter().map(|(node, seed)| (*node, digest(*seed))).collect()
    }

    #[test]
    fn a_majority_digest_marks_the_others() {
        let d = |seed| digest(seed).digest;
        assert_eq!(verdict(&reports(&[(0, 1), (1, 1), (2, 1)]), 3), Verdict::Agreed(d(1)));
        assert_eq!(verdict(&reports(&[(0, 1), (2, 1)]), 3), Verdict::Agreed(d(1)), "agreed so far");
        assert_eq!(
            verdict(&reports(&[(0, 1), (1, 2), (2, 1)]), 3),
            Verdict::Diverged { majority: d(1), minority: vec![1] }
        );
        assert_eq!(
            verdict(&reports(&[(0, 5), (1, 2), (2, 1), (3, 5), (4, 5)]), 5),
            Verdict::Diverged { majority: d(5), minority: vec![1, 2] }
        );
    }

    #[test]
    fn ties_and_scattered_digests_have_no_majority() {
        assert_eq!(verdict(&reports(&[(0, 1)]), 3), Verdict::Pending);
        assert_eq!(verdict(&reports(&[(0, 1), (1, 2)]), 3), Verdict::Pending, "the third report decides");
        assert_eq!(verdict(&reports(&[(0, 1), (1, 2), (2, 3)]), 3), Verdict::NoMajority);
        assert_eq!(verdict(&reports(&[(0, 1), (1, 1), (2, 2), (3, 2)]), 4), Verdict::NoMajority, "a two-two tie");
        assert_eq!(verdict(&reports(&[(0, 1), (1, 2), (2, 3)]), 5), Verdict::Pending, "two more could agree");
        assert_eq!(verdict(&reports(&[(0, 1), (1, 2), (2, 3), (3, 4)]), 5), Verdict::NoMajority);
        assert_eq!(verdict(&BTreeMap::new(), 1), Verdict::Pending);
        assert_eq!(verdict(&reports(&[(0, 7)]), 1), Verdict::Agreed(digest(7).digest));
    }

    fn checks(of: &[(Slot, NodeId, u8)]) -> Checks {
        let mut checks = Checks::default();
        for (check, node, seed) in of {
            checks.record(*check, *node, digest(*seed));
        }
        checks
    }

    #[test]
    fn standing_follows_the_newest_decided_check_that_has_my_report() {
        // Check 10: replica 2 differs.
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9)]);
        let d = standing(&c, 2, 3).expect("diverged");
        assert_eq!((d.check, d.digest, d.majority), (10, digest(9).digest, digest(1).digest));
        assert_eq!(d.tables, ["public.t"]);
        assert_eq!(standing(&c, 0, 3), None);
        // Check 20 is decided without replica 2's report yet: replica 2 stays diverged.
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9), (20, 0, 3), (20, 1, 3)]);
        assert_eq!(standing(&c, 2, 3).map(|d| d.check), Some(10));
        // Its report agrees: healthy again.
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9), (20, 0, 3), (20, 1, 3), (20, 2, 3)]);
        assert_eq!(standing(&c, 2, 3), None);
        // A check without a majority changes nothing.
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9), (20, 0, 3), (20, 1, 4), (20, 2, 5)]);
        assert_eq!(standing(&c, 2, 3).map(|d| d.check), Some(10));
        assert_eq!(diverged_replicas(&summaries(&c, 3)), [2]);
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9), (20, 0, 3), (20, 1, 3)]);
        assert_eq!(diverged_replicas(&summaries(&c, 3)), [2], "not cleared by a check it has not reported to");
        let c = checks(&[(10, 0, 1), (10, 1, 1), (10, 2, 9), (20, 0, 3), (20, 1, 3), (20, 2, 3)]);
        assert!(diverged_replicas(&summaries(&c, 3)).is_empty());
    }

    #[test]
    fn the_first_report_wins_and_old_checks_are_forgotten() {
        let mut c = Checks::default();
        assert_eq!(c.record(1, 0, digest(1)), None);
        let version = c.version();
        assert_eq!(c.record(1, 0, digest(2)), None);
        assert_eq!((c.version(), c.reports(1).map(|r| r[&0].digest)), (version, Some(digest(1).digest)));
        for check in 2..=CHECKS_KEPT as Slot {
            assert_eq!(c.record(check, 0, digest(1)), None);
        }
        assert_eq!(c.record(100, 0, digest(1)), Some(2), "check 1 dropped");
        assert_eq!(c.record(1, 1, digest(1)), None, "a late report for a forgotten check");
        assert!(c.reports(1).is_none());
        let summary = summaries(&checks(&[(5, 0, 1), (5, 1, 2), (5, 2, 1)]), 3);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].differing.get(&1).map(Vec::as_slice), Some(&["public.t".to_string()][..]));
    }
}
