//! Deciding, before a statement enters the replicated log, whether every replica will compute
//! the same result from it, and rewriting what can be made deterministic.
//!
//! Barista replicates SQL *statements*: every replica executes every statement of the log, in log
//! order, one transaction at a time. That is only correct if the same statement on the same data
//! gives the same result everywhere. [`check`] is the gate: it parses the statement (with
//! sqlparser's PostgreSQL dialect, never with regular expressions) and returns either a
//! [`Checked`] statement to propose, or a [`Refusal`] naming the construct and what to write
//! instead. The full policy, one row per construct, is `docs/determinism.md`; it is generated
//! from [`CASES`], and each case is a unit test.
//!
//! ```text
//!   client SQL ──► tokenize ──► parse ──► statement policy ──► walk (expressions) ──► splice
//!                     │            │            │                    │                  │
//!                 too deep?   unparseable?   refused type?     refused construct?   Rewritten
//!                     └────────────┴────────────┴──── Refusal ───────┘           or Deterministic
//! ```
//!
//! # The policy in brief
//! - **Time** (`now()`, `CURRENT_TIMESTAMP`, `CURRENT_DATE`, `LOCALTIME`, ...) is rewritten from
//!   one leader-chosen [`TxnTimestamp`] per transaction: a literal in statements that run now,
//!   a read of the pinned setting [`PINNED_TIMESTAMP_SETTING`] in stored expressions (column
//!   defaults, views, function bodies), which the executor pins with [`pin_timestamp_sql`] at the
//!   start of every transaction.
//! - **Values that differ by replica** (`random()`, `gen_random_uuid()`, `clock_timestamp()`,
//!   `pg_backend_pid()`, ...) and **row-order-dependent results** (`LIMIT` without `ORDER BY`,
//!   `TABLESAMPLE`, unordered `string_agg`) are allowed in read-only statements, where only the
//!   serving replica's result reaches the client, and refused where they could be stored.
//! - **Session state** (session `SET`, `PREPARE`, `LISTEN`, temporary tables, cursors `WITH
//!   HOLD`, session advisory locks) is refused: a replica that restarts re-applies the log on new
//!   connections and would miss it.
//! - **Sequences** are allowed: statements run serially in log order, so `nextval` draws the same
//!   values everywhere, rolled-back draws included; refused where rows are visited in physical
//!   order (`UPDATE`, unordered `SELECT`), and `CACHE > 1` is refused.
//! - **User functions** are allowed where called and checked where created (see `body`).
//! - **Maintenance** (`VACUUM`, `ANALYZE`) changes no logical data: allowed, and run by the
//!   executor outside a transaction (see `maintenance`).
//! - **Statements sqlparser cannot parse** are refused, as are several statements in one string
//!   and transaction control (`BEGIN`/`COMMIT`: the client API has its own calls).
//!
//! Rewrites splice into the client's own text (see `text`): what Barista does not rewrite reaches
//! PostgreSQL byte for byte, and rewriting a rewritten statement changes nothing.
//!
//! Nothing here panics on any input: every index and lookup is checked, and input that would
//! build a syntax tree too deep for the stack is refused before it is parsed.

mod body;
mod cases;
mod functions;
mod maintenance;
mod memo;
mod refusal;
mod statement;
mod text;
mod time;
mod unparsed;
mod walk;

#[cfg(test)]
mod tests;

pub use cases::{CASE_TIMESTAMP_US, CASES, Case, Expect, FIXTURE, policy_table_markdown};
pub use memo::Memo;
pub use refusal::{FEATURE_NOT_SUPPORTED, Refusal, SYNTAX_ERROR};
pub use statement::StatementKind;
pub use time::{PINNED_TIMESTAMP_SETTING, TimestampOutOfRange, TxnTimestamp, pin_timestamp_sql};

use sqlparser::ast::{Statement, Visit};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use statement::KindRule;
use text::{Edit, Tokens};
use time::TimeHead;
use walk::Walk;

/// A statement Barista will replicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// What the statement does, for the executor.
    pub kind: StatementKind,
    /// Whether the text to execute is the client's or a rewrite.
    pub verdict: Verdict,
}

/// The text to put in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The client's text, byte for byte.
    Deterministic,
    /// The client's text with time functions replaced (and nothing else changed).
    Rewritten {
        /// The statement to execute on every replica.
        sql: String,
    },
}

impl Checked {
    /// The SQL to execute: the rewrite, or `original` unchanged.
    pub fn sql<'a>(&'a self, original: &'a str) -> &'a str {
        match &self.verdict {
            Verdict::Deterministic => original,
            Verdict::Rewritten { sql } => sql,
        }
    }
}

/// Check one client statement and rewrite its time functions from `timestamp`, the
/// transaction's leader-chosen timestamp.
///
/// `sql` must hold exactly one statement (a trailing `;` is fine). The result is the same for
/// the same input on every machine, so it may run on the leader before proposing or on each
/// replica before executing.
pub fn check(sql: &str, timestamp: TxnTimestamp) -> Result<Checked, Refusal> {
    checked(sql, analyze(sql, Scope::Statement)?, timestamp)
}

/// The statement `analysis` found in `sql`, with its time rewritten from `timestamp`.
fn checked(sql: &str, analysis: Analysis, timestamp: TxnTimestamp) -> Result<Checked, Refusal> {
    let verdict = if analysis.edits.is_empty() {
        Verdict::Deterministic
    } else {
        Verdict::Rewritten { sql: text::splice(sql, analysis.edits, timestamp)? }
    };
    Ok(Checked { kind: analysis.kind, verdict })
}

/// Whether `sql` is a `VACUUM` or `ANALYZE` that [`check`] accepts ([`StatementKind::Maintenance`]),
/// which the executor runs outside a transaction when it is sent on its own. Cheap for every
/// other statement: only text that starts with one of the verbs (or a comment) is tokenized.
pub fn is_maintenance(sql: &str) -> bool {
    let head = sql.trim_start();
    let starts_with = |verb: &str| head.get(..verb.len()).is_some_and(|h| h.eq_ignore_ascii_case(verb));
    let candidate = ["VACUUM", "ANALYZE", "ANALYSE", "--", "/*"].into_iter().any(starts_with);
    candidate
        && Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .ok()
            .filter(|tokens| check_chain_length(tokens).is_ok())
            .and_then(|tokens| maintenance::check(&tokens))
            .is_some_and(|kind| kind.is_ok())
}

/// Where the text being analysed comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// A client statement: exactly one, and read-only statements keep their exemptions.
    Statement,
    /// The body of a `LANGUAGE sql` function at this nesting depth: any number of statements,
    /// no read-only exemptions (the function may be called from a write), time pinned.
    FunctionBody(usize),
}

#[derive(Clone)]
struct Analysis {
    kind: StatementKind,
    edits: Vec<Edit>,
}

/// The longest run of tokens allowed without a separator (`,` `(` `)` `;`). A long chain such as
/// `a = 1 OR a = 2 OR ...` parses into a tree as deep as the chain, and dropping or walking a tree
/// deeper than a few tens of thousands of levels overflows a 2 MiB thread stack: an abort, not a
/// panic. Lists (`IN (...)`, `VALUES (...), (...)`) reset the count, so bulk statements pass.
const MAX_CHAIN_TOKENS: usize = 10_000;

/// Check a `LANGUAGE sql` function body; edits are in the body's own offsets.
pub(crate) fn analyze_function_body(body: &str, depth: usize) -> Result<Vec<Edit>, Refusal> {
    analyze(body, Scope::FunctionBody(depth)).map(|analysis| analysis.edits)
}

fn analyze(sql: &str, scope: Scope) -> Result<Analysis, Refusal> {
    let raw = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Refusal::unparsable(format!("its SQL tokenizer failed ({e}); check quotes and comments")))?;
    check_chain_length(&raw)?;
    // VACUUM and ANALYZE by PostgreSQL's grammar, which sqlparser does not know (see there).
    if scope == Scope::Statement
        && let Some(kind) = maintenance::check(&raw)
    {
        return kind.map(|kind| Analysis { kind, edits: Vec::new() });
    }
    let statements = match Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(raw.clone()).parse_statements()
    {
        Ok(statements) => statements,
        Err(e) => return Err(unparsed::refusal(&raw, &e.to_string())),
    };
    let tokens = Tokens::new(sql, raw).ok_or_else(|| Refusal::internal("map the parser's locations"))?;
    if scope == Scope::Statement {
        match statements.len() {
            0 => return Err(Refusal::new("an empty statement", "send one SQL statement")),
            1 => {}
            _ => {
                return Err(Refusal::new(
                    "several statements in one string",
                    "send one statement per execute call, or a batch with one statement per \
                     entry: Barista returns one result per statement",
                ));
            }
        }
    }
    let mut kind = StatementKind::ReadOnly;
    let mut edits = Vec::new();
    for statement in &statements {
        let analysis = analyze_statement(sql, &tokens, statement, scope)?;
        kind = analysis.kind;
        edits.extend(analysis.edits);
    }
    Ok(Analysis { kind, edits })
}

fn analyze_statement(sql: &str, tokens: &Tokens, statement: &Statement, scope: Scope) -> Result<Analysis, Refusal> {
    let rule = statement::policy(statement)?;
    let (head, body_depth) = match (scope, rule) {
        (Scope::FunctionBody(depth), _) => (TimeHead::Pinned, depth),
        (Scope::Statement, KindRule::Fixed(StatementKind::Ddl)) => (TimeHead::Pinned, 0),
        (Scope::Statement, _) => (TimeHead::Literal, 0),
    };
    let mut walk = Walk::new(sql, tokens, head, body_depth);
    if let std::ops::ControlFlow::Break(refusal) = statement.visit(&mut walk) {
        return Err(refusal);
    }
    let kind = match rule {
        KindRule::Fixed(kind) => kind,
        KindRule::ReadUnlessWrites if walk.creates_table => StatementKind::Ddl,
        KindRule::ReadUnlessWrites if walk.writes => StatementKind::Write,
        KindRule::ReadUnlessWrites => StatementKind::ReadOnly,
    };
    let exempt = kind == StatementKind::ReadOnly && scope == Scope::Statement;
    if !exempt && let Some(refusal) = walk.deferred.into_iter().next() {
        return Err(refusal);
    }
    Ok(Analysis { kind, edits: walk.edits })
}

/// Refuse token streams whose longest separator-free run exceeds [`MAX_CHAIN_TOKENS`]; see there.
fn check_chain_length(tokens: &[TokenWithSpan]) -> Result<(), Refusal> {
    // One counter per open parenthesis level; the sum bounds the depth of any tree node.
    let mut levels: Vec<usize> = vec![0];
    let mut total = 0usize;
    for token in tokens {
        match token.token {
            Token::Whitespace(_) => {}
            Token::LParen | Token::LBracket => levels.push(0),
            Token::RParen | Token::RBracket => {
                if levels.len() > 1 {
                    total -= levels.pop().unwrap_or(0);
                }
                // The closed group is one operand of the enclosing chain.
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                    total += 1;
                }
            }
            Token::Comma | Token::SemiColon => {
                if let Some(top) = levels.last_mut() {
                    total -= *top;
                    *top = 0;
                }
            }
            _ => {
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                    total += 1;
                }
            }
        }
        if total > MAX_CHAIN_TOKENS {
            return Err(Refusal::new(
                "an expression chain too long to check",
                format!(
                    "more than {MAX_CHAIN_TOKENS} tokens without a separator nest too deeply; \
                     use IN (...) or = ANY(ARRAY[...]) instead of long OR chains, or split the \
                     statement"
                ),
            ));
        }
    }
    Ok(())
}
