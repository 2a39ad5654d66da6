//! A linearizability checker for client histories, in the style of Porcupine: Wing & Gong's
//! search with Lowe's just-in-time linearization, memoizing every (set of linearized operations,
//! model state) pair already explored, and P-compositionality (each independent object, here each
//! register key, is checked on its own).
//!
//! Written here rather than taken from a crate: `porcupine-rs` checks partitions on crossbeam
//! threads (madsim refuses system threads) and bounds work by wall-clock time (which stands still
//! in the simulation); stateright's tester enumerates interleavings without memoization and pulls
//! in its whole model checker. Neither models an operation with an unknown outcome directly.
//!
//! An operation the client gave up on may or may not have taken effect, at any time after it was
//! invoked: it is treated as returning at +infinity (Porcupine's approach) with whatever output the
//! sequential specification gives at the point it is linearized. Since such an operation can always
//! be placed last, a history is linearizable as soon as every *completed* operation is placed.
//!
//! The search is exponential in the worst case, so it runs against a step budget and answers
//! [`Verdict::Unknown`] rather than hang; the simulation's register workload is sized so that it
//! never does.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Debug};
use std::hash::Hash;

/// A sequential specification of one object.
///
/// Deterministic on purpose: `step` says what the object *would* answer, and the checker compares
/// that with what the client was told. That is what makes an unknown outcome easy to check: it
/// takes whatever effect the specification gives it at its linearization point.
pub trait Model {
    /// The object's state (memoized, so it must hash).
    type State: Clone + Eq + Hash + Debug;
    /// What a client asks.
    type Input: Debug;
    /// What the object answers.
    type Output: Eq + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`: the answer, and the state after.
    fn step(&self, state: &Self::State, input: &Self::Input) -> (Self::Output, Self::State);
}

/// One operation of a history.
///
/// Times are any monotonic stamps: only their order matters. An operation that returned at the
/// same stamp another was invoked at is taken as concurrent with it (the permissive reading: a
/// violation must be certain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Which client ran it (reporting only: a client's operations are ordered by their times).
    pub client: usize,
    /// What was asked.
    pub input: I,
    /// When it was invoked.
    pub call: u64,
    /// When it returned and what it answered; `None` if the client never learnt the outcome.
    pub ret: Option<(u64, O)>,
}

/// The answer of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some total order of the operations respects real time and the specification.
    Linearizable,
    /// No such order exists.
    NotLinearizable,
    /// The search ran out of budget before deciding.
    Unknown,
}

/// Search steps allowed per independent object. A step is one candidate tried or one backtrack;
/// a million takes a few hundred milliseconds in a debug build.
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// Total search steps allowed while shrinking a non-linearizable history to a minimal one.
const MINIMIZE_BUDGET: u64 = 20 * DEFAULT_BUDGET;

/// Checks one object's history.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], budget: u64) -> Verdict {
    let views: Vec<View<'_, M>> = ops.iter().map(View::of).collect();
    search(model, &views, budget).0
}

/// What [`check_partitioned`] found wrong with one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding<K> {
    /// The object (the smallest key that failed).
    pub key: K,
    /// [`Verdict::NotLinearizable`] or [`Verdict::Unknown`].
    pub verdict: Verdict,
    /// Indices into the checked history, in invocation order: for `NotLinearizable`, a minimal set
    /// of that key's operations that cannot be linearized (see [`minimize`]); for `Unknown`, all of
    /// the key's operations.
    pub ops: Vec<usize>,
    /// For `NotLinearizable`: the operation whose answer no order can explain, given the others.
    pub culprit: Option<usize>,
}

/// Checks a history of many independent objects, each object (`key(i)` is the object of
/// `ops[i]`) on its own: a history is linearizable if and only if each object's sub-history is
/// (P-compositionality), and the sub-histories are far cheaper to search. Reports the smallest
/// failing key, so a report names the same key however the history was gathered.
pub fn check_partitioned<M: Model, K: Ord>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    key: impl Fn(usize) -> K,
    budget: u64,
) -> Result<(), Finding<K>> {
    let mut partitions: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for i in 0..ops.len() {
        partitions.entry(key(i)).or_default().push(i);
    }
    for (k, indices) in partitions {
        let part: Vec<View<'_, M>> = indices.iter().map(|&i| View::of(&ops[i])).collect();
        match search(model, &part, budget).0 {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable => {
                let (minimal, culprit) = minimize(model, &part, budget);
                let mut minimal: Vec<usize> = minimal.into_iter().map(|j| indices[j]).collect();
                minimal.sort_by_key(|&i| (ops[i].call, i));
                return Err(Finding {
                    key: k,
                    verdict: Verdict::NotLinearizable,
                    ops: minimal,
                    culprit: culprit.map(|j| indices[j]),
                });
            }
            Verdict::Unknown => {
                return Err(Finding { key: k, verdict: Verdict::Unknown, ops: indices, culprit: None });
            }
        }
    }
    Ok(())
}

/// One operation as the search sees it: the history's own, or with its outcome hidden.
struct View<'a, M: Model> {
    call: u64,
    ret: Option<(u64, &'a M::Output)>,
    input: &'a M::Input,
}

// Not derived: a derive would demand `M: Clone`, and a view only holds references.
impl<M: Model> Clone for View<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M: Model> Copy for View<'_, M> {}

impl<'a, M: Model> View<'a, M> {
    fn of(op: &'a Operation<M::Input, M::Output>) -> View<'a, M> {
        View { call: op.call, ret: op.ret.as_ref().map(|(t, o)| (*t, o)), input: &op.input }
    }

    /// The same operation, as if its client never learnt the outcome.
    fn unknown(self) -> View<'a, M> {
        View { ret: None, ..self }
    }
}

/// Shrinks a non-linearizable history to a small witness, as indices into `ops`, and names the
/// culprit: a report of three operations is readable, one of two hundred is not.
///
/// First the shortest non-linearizable prefix of the history (in event order, operations still
/// running at the cut having unknown outcomes): linearizability is prefix-closed, so bisection
/// finds it, and its last event is the return of the culprit, the first answer that no order can
/// explain. Then every other operation is dropped, latest first, if the culprit's answer stays
/// unexplainable and nothing else becomes so (with the culprit's outcome hidden, the rest must
/// still be linearizable). Without that second condition, dropping a write would make an
/// innocent read of its value the witness. Within [`MINIMIZE_BUDGET`]; out of budget, it returns
/// what it has.
fn minimize<'a, M: Model>(model: &M, ops: &[View<'a, M>], budget: u64) -> (Vec<usize>, Option<usize>) {
    let spent = std::cell::Cell::new(0);
    let run = |views: Vec<View<'a, M>>| {
        let (verdict, steps) = search(model, &views, budget);
        spent.set(spent.get() + steps);
        verdict
    };
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, false, i));
        if let Some((ret, _)) = op.ret {
            events.push((ret.max(op.call), true, i));
        }
    }
    events.sort_unstable();
    // The history of the first `k` events: each operation invoked by then, with its outcome if
    // it returned by then.
    let prefix = |k: usize| -> Vec<(usize, View<'a, M>)> {
        let mut returned = vec![false; ops.len()];
        for &(_, is_ret, i) in &events[..k] {
            returned[i] |= is_ret;
        }
        let called = events[..k].iter().filter(|&&(_, is_ret, _)| !is_ret).map(|&(_, _, i)| i);
        called.map(|i| (i, if returned[i] { ops[i] } else { ops[i].unknown() })).collect()
    };
    let views = |part: &[(usize, View<'a, M>)], hidden: usize| -> Vec<View<'a, M>> {
        part.iter().map(|&(i, v)| if i == hidden { v.unknown() } else { v }).collect()
    };
    // The smallest k whose prefix is not linearizable (the whole history is not).
    let (mut lo, mut hi) = (0, events.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if run(views(&prefix(mid), NIL)) == Verdict::Linearizable {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (_, is_ret, culprit) = events[hi - 1];
    if !is_ret {
        // Only a return can make a linearizable prefix unlinearizable: a search ran out of budget.
        return ((0..ops.len()).collect(), None);
    }
    let mut keep = prefix(hi);
    let mut changed = true;
    while changed && spent.get() < MINIMIZE_BUDGET {
        changed = false;
        for i in keep.iter().rev().map(|&(i, _)| i).collect::<Vec<_>>() {
            if i == culprit || spent.get() >= MINIMIZE_BUDGET {
                continue;
            }
            let candidate: Vec<(usize, View<'a, M>)> = keep.iter().copied().filter(|&(j, _)| j != i).collect();
            if run(views(&candidate, NIL)) == Verdict::NotLinearizable
                && run(views(&candidate, culprit)) == Verdict::Linearizable
            {
                keep = candidate;
                changed = true;
            }
        }
    }
    (keep.into_iter().map(|(i, _)| i).collect(), Some(culprit))
}

/// No node.
const NIL: usize = usize::MAX;

/// The search: returns the verdict and the steps it took.
///
/// The history is a doubly linked list of call and return events in time order (node 0 is a
/// sentinel head). Walking from the head, a call may be linearized now if the specification agrees
/// with its answer; it is then lifted out of the list (call and return) and the walk restarts.
/// Reaching a return means that operation's call was not linearized in time: undo the last choice
/// and try the next candidate after it. Operations with unknown outcomes have no return node.
fn search<M: Model>(model: &M, ops: &[View<'_, M>], budget: u64) -> (Verdict, u64) {
    // Calls sort before returns at the same stamp: equal stamps are concurrent.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, false, i));
        if let Some((ret, _)) = op.ret {
            events.push((ret.max(op.call), true, i));
        }
    }
    events.sort_unstable();
    let nodes = events.len() + 1;
    let (mut next, mut prev) = (vec![NIL; nodes], vec![NIL; nodes]);
    let mut node_op = vec![NIL; nodes];
    let mut is_call = vec![false; nodes];
    let (mut call_node, mut ret_node) = (vec![NIL; ops.len()], vec![NIL; ops.len()]);
    for (j, &(_, is_ret, op)) in events.iter().enumerate() {
        let node = j + 1;
        prev[node] = j;
        next[j] = node;
        node_op[node] = op;
        is_call[node] = !is_ret;
        if is_ret {
            ret_node[op] = node;
        } else {
            call_node[op] = node;
        }
    }

    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, n: usize| {
        next[prev[n]] = next[n];
        if next[n] != NIL {
            prev[next[n]] = prev[n];
        }
    };
    // Relinking in the reverse order of unlinking restores the list exactly (dancing links).
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, n: usize| {
        next[prev[n]] = n;
        if next[n] != NIL {
            prev[next[n]] = n;
        }
    };

    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut completed_left = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut steps = 0u64;
    let mut cur = next[0];
    loop {
        if completed_left == 0 {
            return (Verdict::Linearizable, steps); // what is left has unknown outcomes: place it last
        }
        if steps >= budget {
            return (Verdict::Unknown, steps);
        }
        steps += 1;
        // Not NIL: a completed operation is left, so its return node is still ahead in the list.
        debug_assert_ne!(cur, NIL);
        let op = node_op[cur];
        if is_call[cur] {
            let (output, after) = model.step(&state, ops[op].input);
            let agrees = ops[op].ret.is_none_or(|(_, told)| *told == output);
            if agrees {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), after.clone())) {
                    stack.push((op, std::mem::replace(&mut state, after)));
                    unlink(&mut next, &mut prev, call_node[op]);
                    if ret_node[op] != NIL {
                        unlink(&mut next, &mut prev, ret_node[op]);
                        completed_left -= 1;
                    }
                    cur = next[0];
                    continue;
                }
                // This set and state were explored before, from another order: nothing new there.
                linearized[op / 64] &= !(1 << (op % 64));
            }
            cur = next[cur];
        } else {
            let Some((undo, before)) = stack.pop() else { return (Verdict::NotLinearizable, steps) };
            state = before;
            linearized[undo / 64] &= !(1 << (undo % 64));
            if ret_node[undo] != NIL {
                relink(&mut next, &mut prev, ret_node[undo]);
                completed_left += 1;
            }
            relink(&mut next, &mut prev, call_node[undo]);
            cur = next[call_node[undo]];
        }
    }
}

/// What a register client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Set the value.
    Write(i64),
    /// Set the value to `to` if it is `from`.
    Cas {
        /// The value expected.
        from: i64,
        /// The value set.
        to: i64,
    },
}

/// What a register answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read.
    Read(i64),
    /// The write happened.
    Written,
    /// Whether the compare-and-set set the value.
    Cas(bool),
}

/// A single integer register with read, write and compare-and-set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Register {
    /// The value before any operation.
    pub initial: i64,
}

impl Model for Register {
    type State = i64;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> i64 {
        self.initial
    }

    fn step(&self, &value: &i64, input: &RegisterInput) -> (RegisterOutput, i64) {
        match *input {
            RegisterInput::Read => (RegisterOutput::Read(value), value),
            RegisterInput::Write(v) => (RegisterOutput::Written, v),
            RegisterInput::Cas { from, to } if from == value => (RegisterOutput::Cas(true), to),
            RegisterInput::Cas { .. } => (RegisterOutput::Cas(false), value),
        }
    }
}

/// One register operation as a simulated client recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterOp {
    /// The register (row) it addressed.
    pub key: i64,
    /// The operation, stamped in the order events happened in the simulation.
    pub op: Operation<RegisterInput, RegisterOutput>,
    /// Simulated milliseconds at invocation (for reports).
    pub called_ms: u64,
    /// Simulated milliseconds at return, if it returned (for reports).
    pub returned_ms: Option<u64>,
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = match self.op.input {
            RegisterInput::Read => "read".to_string(),
            RegisterInput::Write(v) => format!("write {v}"),
            RegisterInput::Cas { from, to } => format!("cas {from}->{to}"),
        };
        let output = match self.op.ret.as_ref().map(|(_, o)| o) {
            None => "unknown outcome".to_string(),
            Some(RegisterOutput::Read(v)) => format!("read {v}"),
            Some(RegisterOutput::Written) => "ok".to_string(),
            Some(RegisterOutput::Cas(set)) => if *set { "set" } else { "not set" }.to_string(),
        };
        let returned = match (self.returned_ms, &self.op.ret) {
            (Some(ms), Some((stamp, _))) => format!("{ms} ms #{stamp}"),
            _ => "never".to_string(),
        };
        write!(
            f,
            "client {} key {}: {input} -> {output} [called {} ms #{}, returned {returned}]",
            self.op.client, self.key, self.called_ms, self.op.call
        )
    }
}

/// Why a register history failed its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterViolation {
    /// [`Verdict::NotLinearizable`], or [`Verdict::Unknown`] if the search gave up.
    pub verdict: Verdict,
    /// The offending key and operations, readable.
    pub message: String,
}

/// Checks every client's register operations together, key by key (every register starts at
/// `initial`).
pub fn check_registers(ops: &[RegisterOp], initial: i64) -> Result<(), RegisterViolation> {
    let plain: Vec<Operation<RegisterInput, RegisterOutput>> = ops.iter().map(|r| r.op.clone()).collect();
    let finding = match check_partitioned(&Register { initial }, &plain, |i| ops[i].key, DEFAULT_BUDGET) {
        Ok(()) => return Ok(()),
        Err(finding) => finding,
    };
    let listed: Vec<String> = finding.ops.iter().map(|&i| format!("  {}", ops[i])).collect();
    let message = match finding.verdict {
        Verdict::Unknown => format!(
            "register history of key {} ({} operations) too concurrent to check within {DEFAULT_BUDGET} steps; \
             shrink the register workload",
            finding.key,
            finding.ops.len()
        ),
        _ => format!(
            "register history not linearizable: key {}, and these {} operations cannot be ordered \
             (any one removed, the rest can; #N is the order events happened in):\n{}",
            finding.key,
            finding.ops.len(),
            listed.join("\n")
        ),
    };
    Err(RegisterViolation { verdict: finding.verdict, message })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::RegisterInput::{Cas, Read, Write};
    use super::*;

    type Op = Operation<RegisterInput, RegisterOutput>;

    fn done(client: usize, input: RegisterInput, call: u64, ret: u64, output: RegisterOutput) -> Op {
        Operation { client, input, call, ret: Some((ret, output)) }
    }

    fn lost(client: usize, input: RegisterInput, call: u64) -> Op {
        Operation { client, input, call, ret: None }
    }

    fn read(client: usize, call: u64, ret: u64, value: i64) -> Op {
        done(client, Read, call, ret, RegisterOutput::Read(value))
    }

    fn write(client: usize, value: i64, call: u64, ret: u64) -> Op {
        done(client, Write(value), call, ret, RegisterOutput::Written)
    }

    fn cas(client: usize, from: i64, to: i64, call: u64, ret: u64, set: bool) -> Op {
        done(client, Cas { from, to }, call, ret, RegisterOutput::Cas(set))
    }

    fn verdict(ops: &[Op]) -> Verdict {
        check(&Register::default(), ops, DEFAULT_BUDGET)
    }

    #[test]
    fn an_empty_history_and_a_sequential_one_are_linearizable() {
        assert_eq!(verdict(&[]), Verdict::Linearizable);
        let ops = [
            read(0, 0, 1, 0),
            write(0, 5, 2, 3),
            cas(1, 5, 6, 4, 5, true),
            cas(0, 5, 7, 6, 7, false),
            read(1, 8, 9, 6),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not_linearizable() {
        let ops = [write(0, 1, 0, 10), read(1, 11, 20, 0)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    #[test]
    fn a_read_of_the_older_of_two_ordered_writes_is_not_linearizable() {
        // Real-time order between writes of different clients counts, not only within a client.
        let ops = [write(0, 1, 0, 10), write(1, 2, 11, 20), read(2, 21, 30, 1)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    #[test]
    fn two_compare_and_sets_from_the_same_old_value_cannot_both_succeed() {
        let ops = [cas(0, 0, 1, 0, 10, true), cas(1, 0, 2, 5, 15, true)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
        // One of them failing is fine, whichever it is.
        assert_eq!(verdict(&[cas(0, 0, 1, 0, 10, true), cas(1, 0, 2, 5, 15, false)]), Verdict::Linearizable);
        assert_eq!(verdict(&[cas(0, 0, 1, 0, 10, false), cas(1, 0, 2, 5, 15, true)]), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_operations_that_can_be_ordered_are_linearizable() {
        // Both reads overlap the write: one saw it, one did not, and the old value was read
        // by the read that returned later. Order: read 0 (client 2), write 1, read 1 (client 1).
        let ops = [write(0, 1, 0, 100), read(1, 10, 20, 1), read(2, 15, 90, 0)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // But once a read saw the new value, a read that starts after it cannot see the old one.
        let ops = [write(0, 1, 0, 100), read(1, 10, 20, 1), read(2, 25, 90, 0)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    #[test]
    fn operations_at_the_same_stamp_are_concurrent() {
        // The read was invoked at the stamp the write returned at: it may precede it.
        let ops = [write(0, 1, 0, 10), read(1, 10, 20, 0)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_outcome_write_explains_a_later_read() {
        // The client gave up on the write, yet a read long after its invocation saw it.
        let ops = [lost(0, Write(7), 0), read(1, 50, 60, 7), read(1, 70, 80, 7)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
        // An unknown compare-and-set that succeeded explains the value too.
        let ops = [lost(0, Cas { from: 0, to: 7 }, 0), read(1, 50, 60, 7)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_outcome_write_that_never_took_effect_is_linearizable() {
        let ops = [lost(0, Write(7), 0), read(1, 50, 60, 0), write(1, 3, 61, 70), read(2, 80, 90, 3)];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_outcome_write_cannot_take_effect_before_it_was_invoked() {
        let ops = [read(1, 0, 10, 7), lost(0, Write(7), 20)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
        // Nor take effect twice: once overwritten, its value cannot come back.
        let ops = [lost(0, Write(7), 0), read(1, 10, 20, 7), write(1, 8, 21, 30), read(1, 31, 40, 7)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    #[test]
    fn a_value_nobody_wrote_is_not_linearizable_even_with_unknown_outcomes() {
        let ops = [lost(0, Write(7), 0), lost(1, Cas { from: 3, to: 9 }, 1), read(2, 10, 20, 9)];
        assert_eq!(verdict(&ops), Verdict::NotLinearizable);
    }

    #[test]
    fn keys_are_checked_apart_and_the_smallest_failing_key_is_reported_with_a_minimal_set() {
        // Each key alone is fine except key 3 (stale read) and key 5 (double cas); merged into
        // one register, keys 1 and 2 would also conflict.
        let ops = [
            write(0, 1, 0, 10),         // key 1
            read(1, 20, 30, 0),         // key 2
            read(2, 0, 5, 0),           // key 3: noise
            write(0, 4, 11, 19),        // key 3
            read(2, 21, 25, 0),         // key 3: stale
            read(2, 26, 29, 4),         // key 3: noise
            cas(0, 0, 1, 40, 50, true), // key 5
            cas(1, 0, 2, 40, 50, true), // key 5
        ];
        let keys = [1, 2, 3, 3, 3, 3, 5, 5];
        let finding = check_partitioned(&Register::default(), &ops, |i| keys[i], DEFAULT_BUDGET);
        assert_eq!(
            finding,
            Err(Finding { key: 3, verdict: Verdict::NotLinearizable, ops: vec![3, 4], culprit: Some(4) })
        );
        let ok = check_partitioned(&Register::default(), &ops[..4], |i| keys[i], DEFAULT_BUDGET);
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn an_exhausted_budget_answers_unknown_instead_of_searching_on() {
        // Forty overlapping writes, then a read of a value none of them wrote: every subset of
        // the writes, with each possible last value, is a distinct search state.
        let mut ops: Vec<Op> = (0..40).map(|i| write(i, i as i64 + 1, i as u64, 100 + i as u64)).collect();
        ops.push(read(99, 200, 210, 1000));
        let started = Instant::now();
        assert_eq!(check(&Register::default(), &ops, 100_000), Verdict::Unknown);
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    /// A random history of a real (atomic) register: each operation takes effect at a random
    /// instant inside its interval, so the history is linearizable by construction. Some
    /// operations lose their answer; of those, half never took effect.
    fn random_history(seed: u64, clients: usize, ops_per_client: usize) -> Vec<Op> {
        let mut rng = StdRng::seed_from_u64(seed);
        // (effect instant, client, call, ret, input, unknown, took effect)
        let mut planned = Vec::new();
        for c in 0..clients {
            let mut t = rng.random_range(0..5u64);
            for j in 0..ops_per_client {
                let call = t + rng.random_range(0..3);
                let effect = call + rng.random_range(0..20);
                let ret = effect + rng.random_range(0..20);
                let unique = (c as i64 + 1) * 1_000_000 + j as i64;
                let input = match rng.random_range(0..3) {
                    0 => Read,
                    1 => Write(unique),
                    // An expected value that is sometimes right: a recent write of anyone.
                    _ => Cas { from: rng.random_range(0..clients as i64 + 1) * 1_000_000 + j as i64, to: unique },
                };
                let unknown = rng.random_bool(0.03);
                let took_effect = !unknown || rng.random_bool(0.5);
                planned.push((effect, c, call, ret, input, unknown, took_effect));
                t = ret;
            }
        }
        planned.sort_by_key(|p| (p.0, p.1));
        let register = Register::default();
        let mut value = register.init();
        let mut ops = Vec::new();
        for (_, client, call, ret, input, unknown, took_effect) in planned {
            let output = if took_effect {
                let (output, after) = register.step(&value, &input);
                value = after;
                output
            } else {
                RegisterOutput::Written // never reported
            };
            ops.push(Operation { client, input, call, ret: (!unknown).then_some((ret, output)) });
        }
        ops
    }

    #[test]
    fn a_few_hundred_operations_per_key_check_well_under_a_second() {
        for seed in 0..10 {
            let ops = random_history(seed, 4, 75);
            let started = Instant::now();
            assert_eq!(verdict(&ops), Verdict::Linearizable, "seed {seed}");
            assert!(started.elapsed() < Duration::from_millis(500), "seed {seed} took {:?}", started.elapsed());
        }
    }

    #[test]
    fn a_read_of_an_unwritten_value_in_a_long_history_is_found_and_reported_alone() {
        let mut ops = random_history(7, 4, 75);
        let i = ops.iter().position(|op| op.input == Read && op.ret.is_some()).expect("the history has reads");
        if let Some((_, output)) = &mut ops[i].ret {
            *output = RegisterOutput::Read(-1);
        }
        let started = Instant::now();
        let finding = check_partitioned(&Register::default(), &ops, |_| 0, DEFAULT_BUDGET);
        assert_eq!(finding, Err(Finding { key: 0, verdict: Verdict::NotLinearizable, ops: vec![i], culprit: Some(i) }));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    #[test]
    fn a_register_violation_names_the_key_and_the_operations() {
        let op = |key, op| RegisterOp { key, op, called_ms: 0, returned_ms: Some(1) };
        let ops = [op(2, write(0, 1, 0, 10)), op(1, read(1, 11, 20, 0)), op(2, read(1, 11, 20, 0))];
        let violation = check_registers(&ops, 0).expect_err("key 2 read a stale value");
        assert_eq!(violation.verdict, Verdict::NotLinearizable);
        assert!(violation.message.contains("key 2"), "{}", violation.message);
        assert!(violation.message.contains("client 0 key 2: write 1 -> ok"), "{}", violation.message);
        assert!(violation.message.contains("client 1 key 2: read -> read 0"), "{}", violation.message);
        assert!(check_registers(&ops[..2], 0).is_ok());
    }
}
