//! The statement-level policy: which kinds of statement Barista replicates, and what each is.
//!
//! Default deny: a statement type not listed here is refused, because sqlparser also parses other
//! databases' dialects and Barista only vouches for PostgreSQL statements whose replication it has
//! thought through. The reasons for each refusal are in the advice texts and in
//! `docs/determinism.md`; two facts of Barista's executor explain most of them:
//!
//! - each statement runs inside a transaction the executor opens (to record the applied slot
//!   with the statement's work), so statements that cannot run in a transaction block fail
//!   (`VACUUM` and `ANALYZE` excepted: see `maintenance`);
//! - a replica that restarts re-applies the log after its last applied slot on new PostgreSQL
//!   connections, so anything that lives in a PostgreSQL session across transactions (settings,
//!   prepared statements, temporary tables, listeners, cursors WITH HOLD, session locks, cached
//!   sequence values) is lost on that replica alone.

use super::functions::{BOOKKEEPING_REFUSAL, fold, setting_refusal};
use super::refusal::Refusal;
use sqlparser::ast::{
    AlterRoleOperation, AlterTableOperation, ColumnDef, ColumnOption, ContextModifier, CopySource, CopyTarget,
    CreateTable, Expr, ObjectName, ObjectType, SequenceOptions, Set, Statement, TransactionAccessMode, TransactionMode,
    Value,
};

/// What a statement does, as the executor needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// Observes data and changes nothing a later statement could observe: a `SELECT` without
    /// locking clauses, data-modifying CTEs, sequence calls or calls to user functions; `SHOW`;
    /// `EXPLAIN` without `ANALYZE`. Only the serving replica's result reaches the client.
    ReadOnly,
    /// Changes rows or other state later statements observe (sequences, row locks, cursors).
    Write,
    /// Changes the schema (PostgreSQL DDL is transactional, so it runs like a write).
    Ddl,
    /// Changes only the state of the current transaction: `SAVEPOINT`, `RELEASE`,
    /// `ROLLBACK TO SAVEPOINT`, `SET LOCAL`, `SET TRANSACTION`. Meaningful inside an explicit
    /// transaction (the client's begin()).
    Transaction,
    /// Physical maintenance that changes no logical data and may run again harmlessly: `VACUUM`,
    /// `ANALYZE` (see `maintenance`). Sent on its own, the executor runs it outside a transaction
    /// and records its outcome after; inside a transaction it runs there (where PostgreSQL
    /// refuses `VACUUM`, the same way on every replica).
    Maintenance,
}

/// How the statement's kind is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindRule {
    /// Known from the statement type alone.
    Fixed(StatementKind),
    /// A query: read-only unless the walk finds something that writes.
    ReadUnlessWrites,
}

const SESSION_STATE: &str = "a replica that restarts re-applies the log on new PostgreSQL \
    connections, so session state set by an earlier transaction would be missing on that replica";

fn refuse(construct: &str, advice: impl Into<String>) -> Result<KindRule, Refusal> {
    Err(Refusal::new(construct, advice))
}

/// The refusal for `VACUUM` where it is not a statement of its own (a function body; a client's
/// `VACUUM` is recognised before parsing, see `maintenance`).
pub(crate) fn vacuum_refusal() -> Refusal {
    Refusal::new(
        "VACUUM inside a function body",
        "PostgreSQL cannot run VACUUM inside a function or a transaction block; send it as a \
         statement of its own",
    )
}

/// The statement-level decision for `statement` (top-level or nested).
pub(crate) fn policy(statement: &Statement) -> Result<KindRule, Refusal> {
    use KindRule::{Fixed, ReadUnlessWrites};
    use StatementKind::{Ddl, ReadOnly, Transaction, Write};
    match statement {
        Statement::Query(_) => Ok(ReadUnlessWrites),
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_) => Ok(Fixed(Write)),
        Statement::Truncate(_) | Statement::Call(_) | Statement::Analyze(_) => Ok(Fixed(Write)),
        Statement::Fetch { .. } | Statement::Close { .. } => Ok(Fixed(Write)),
        Statement::Lock(lock) if lock.nowait => refuse(
            "LOCK ... NOWAIT",
            "whether the lock is free at that instant differs between replicas (autovacuum holds \
             locks on its own schedule); leave out NOWAIT: Barista runs one transaction at a time",
        ),
        Statement::Lock(_) => Ok(Fixed(Write)),
        Statement::Declare { stmts, .. } => {
            if stmts.iter().any(|d| d.hold == Some(true)) {
                refuse(
                    "DECLARE ... WITH HOLD",
                    format!(
                        "a cursor WITH HOLD outlives its transaction, and {SESSION_STATE}; \
                             declare the cursor without HOLD inside a transaction"
                    ),
                )
            } else {
                Ok(Fixed(Write))
            }
        }
        Statement::Explain { analyze: true, statement, .. } => policy(statement),
        Statement::Explain { .. } | Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => {
            Ok(Fixed(ReadOnly))
        }
        Statement::Set(set) => set_policy(set),
        Statement::Reset(_) => refuse(
            "RESET",
            format!(
                "it changes session settings, and {SESSION_STATE}; use SET LOCAL inside a \
                     transaction, which ends with it"
            ),
        ),
        Statement::Discard { .. } => refuse("DISCARD", format!("it drops session state, and {SESSION_STATE}")),
        Statement::Savepoint { .. } | Statement::ReleaseSavepoint { .. } => Ok(Fixed(Transaction)),
        Statement::Rollback { savepoint: Some(_), .. } => Ok(Fixed(Transaction)),
        Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => refuse(
            "transaction control (BEGIN, COMMIT, ROLLBACK)",
            "Barista runs transactions through its own log entries; use the client's \
                 begin(), commit() and rollback() (or send the whole transaction as one batch). \
                 SAVEPOINT, RELEASE and ROLLBACK TO SAVEPOINT are allowed inside a transaction",
        ),
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => refuse(
            "PREPARE / EXECUTE / DEALLOCATE",
            format!(
                "prepared statements live in the PostgreSQL session, and {SESSION_STATE}; \
                         send the statement text with parameters instead"
            ),
        ),
        Statement::LISTEN { .. } | Statement::UNLISTEN { .. } => refuse(
            "LISTEN / UNLISTEN",
            "notifications would come from whichever replica the listener is connected to, and \
             listeners live in a PostgreSQL session; poll a table through Barista instead",
        ),
        Statement::NOTIFY { .. } => refuse(
            "NOTIFY",
            "every replica would deliver the notification to its own listeners; write the event \
             to an outbox table and have consumers read it through Barista",
        ),
        Statement::Copy { source, to, target, .. } => copy_refusal(source, *to, target),
        Statement::Vacuum(_) => Err(vacuum_refusal()),
        Statement::Load { .. } => refuse(
            "LOAD",
            "it loads a shared library into one server session; configure libraries on each \
             replica (shared_preload_libraries)",
        ),
        Statement::CreateDatabase { .. } | Statement::Drop { object_type: ObjectType::Database, .. } => refuse(
            "CREATE DATABASE / DROP DATABASE",
            "they cannot run inside a transaction, and each replica's databases are managed \
                 on that replica, outside the log",
        ),
        Statement::CreateTable(table) => create_table_policy(table),
        Statement::CreateView(view) if view.temporary => temporary_refusal("CREATE TEMPORARY VIEW"),
        Statement::CreateSequence { temporary: true, .. } => temporary_refusal("CREATE TEMPORARY SEQUENCE"),
        Statement::CreateSequence { sequence_options, .. } => {
            sequence_cache_policy(sequence_options)?;
            Ok(Fixed(Ddl))
        }
        Statement::CreateIndex(index) if index.concurrently => refuse(
            "CREATE INDEX CONCURRENTLY",
            "it cannot run inside the transaction Barista runs each statement in; use CREATE \
             INDEX (it locks writes to the table while it builds)",
        ),
        Statement::CreateFunction(function) if function.temporary => temporary_refusal("a temporary function"),
        Statement::AlterTable(alter) => {
            for operation in &alter.operations {
                if let AlterTableOperation::AddColumn { column_def, .. } = operation {
                    add_column_policy(column_def)?;
                }
            }
            Ok(Fixed(Ddl))
        }
        Statement::AlterRole {
            operation: AlterRoleOperation::Set { .. } | AlterRoleOperation::Reset { .. }, ..
        } => refuse(
            "ALTER ROLE ... SET",
            "per-role settings reach sessions opened after the change, and a replica that \
                 restarts opens its sessions at other times than the others; configure settings \
                 identically on every replica instead",
        ),
        Statement::CreateServer(_)
        | Statement::CreateForeignTable(_)
        | Statement::CreateForeignDataWrapper(_)
        | Statement::CreateUserMapping(_) => refuse(
            "foreign data (CREATE SERVER / FOREIGN TABLE)",
            "foreign tables read data that lives outside the replicated databases; bring the data \
             in through the client",
        ),
        Statement::CreateView(_)
        | Statement::CreateIndex(_)
        | Statement::CreateRole(_)
        | Statement::CreatePolicy(_)
        | Statement::CreateRule(_)
        | Statement::CreateTrigger(_)
        | Statement::CreateFunction(_)
        | Statement::CreateDomain(_)
        | Statement::CreateType { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateExtension(_)
        | Statement::CreateCollation(_)
        | Statement::CreateAggregate(_)
        | Statement::CreateOperator(_)
        | Statement::CreateOperatorFamily(_)
        | Statement::CreateOperatorClass(_)
        | Statement::CreateTextSearch(_)
        | Statement::AlterSchema(_)
        | Statement::AlterIndex { .. }
        | Statement::AlterView(_)
        | Statement::AlterFunction(_)
        | Statement::AlterType(_)
        | Statement::AlterCollation(_)
        | Statement::AlterOperator(_)
        | Statement::AlterOperatorFamily(_)
        | Statement::AlterOperatorClass(_)
        | Statement::AlterTextSearch(_)
        | Statement::AlterRole { .. }
        | Statement::AlterPolicy(_)
        | Statement::AlterTrigger(_)
        | Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::DropDomain(_)
        | Statement::DropProcedure { .. }
        | Statement::DropPolicy(_)
        | Statement::DropRule(_)
        | Statement::DropTrigger(_)
        | Statement::DropExtension(_)
        | Statement::DropOperator(_)
        | Statement::DropOperatorFamily(_)
        | Statement::DropOperatorClass(_)
        | Statement::Comment { .. }
        | Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::AlterDefaultPrivileges(_)
        | Statement::RefreshMaterializedView(_) => Ok(Fixed(Ddl)),
        _ => refuse(
            "this kind of statement",
            "Barista replicates the PostgreSQL statements whose determinism it has checked, and \
             this is not one of them; see docs/determinism.md",
        ),
    }
}

fn temporary_refusal(construct: &str) -> Result<KindRule, Refusal> {
    refuse(
        construct,
        format!(
            "temporary objects live in the PostgreSQL session, and {SESSION_STATE}; use a \
                 regular object, or CREATE TEMPORARY TABLE ... ON COMMIT DROP inside a \
                 transaction"
        ),
    )
}

fn set_policy(set: &Set) -> Result<KindRule, Refusal> {
    let transaction = Ok(KindRule::Fixed(StatementKind::Transaction));
    match set {
        Set::SingleAssignment { scope: Some(ContextModifier::Local), variable, .. } => {
            local_setting_policy(&setting_name(variable))?;
            transaction
        }
        Set::SetTimeZone { local: true, .. } => transaction,
        Set::SetRole { context_modifier: Some(ContextModifier::Local), .. } => {
            refuse("SET LOCAL ROLE", format!("{BOOKKEEPING_REFUSAL}; grant the connecting role what it needs"))
        }
        Set::SetTransaction { snapshot: Some(_), .. } => {
            refuse("SET TRANSACTION SNAPSHOT", "snapshot ids are assigned by each server independently")
        }
        Set::SetTransaction { modes, .. }
            if modes.iter().any(|m| matches!(m, TransactionMode::AccessMode(TransactionAccessMode::ReadOnly))) =>
        {
            refuse("SET TRANSACTION READ ONLY", BOOKKEEPING_REFUSAL)
        }
        Set::SetTransaction { session: false, .. } => transaction,
        _ => refuse(
            "session-level SET",
            format!(
                "a setting that outlives the transaction is session state, and \
                     {SESSION_STATE}; use SET LOCAL inside a transaction (or set_config(name, \
                     value, true)), or configure the setting identically on every replica"
            ),
        ),
    }
}

fn setting_name(variable: &ObjectName) -> String {
    variable.0.iter().map(|part| part.as_ident().map(fold).unwrap_or_default()).collect::<Vec<_>>().join(".")
}

/// `SET LOCAL name` (or `set_config(name, _, true)`): allowed unless the setting is Barista's
/// own or makes results depend on elapsed time.
pub(crate) fn local_setting_policy(name: &str) -> Result<(), Refusal> {
    match setting_refusal(name) {
        Some(why) => Err(Refusal::new(format!("setting {name}"), format!("{why}; leave it as it is"))),
        None => Ok(()),
    }
}

fn copy_refusal(source: &CopySource, to: bool, target: &CopyTarget) -> Result<KindRule, Refusal> {
    let _ = source;
    let (construct, why) = match (to, target) {
        (false, CopyTarget::Stdin) => (
            "COPY ... FROM STDIN",
            "the rows would travel outside the statement, so they could not be in the log (Barista's PostgreSQL port turns a COPY's rows into INSERTs itself)",
        ),
        (true, CopyTarget::Stdout) => {
            ("COPY ... TO STDOUT", "Barista returns results as rows of a statement, not as a copy stream")
        }
        (_, CopyTarget::Program { .. }) => {
            ("COPY ... PROGRAM", "every replica would run the program on its own machine")
        }
        _ => ("COPY with a file", "every replica would read or write a file on its own disk"),
    };
    refuse(construct, format!("{why}; use INSERT ... VALUES (batched) to load rows and SELECT to read them"))
}

fn create_table_policy(table: &CreateTable) -> Result<KindRule, Refusal> {
    let on_commit_drop = matches!(table.on_commit, Some(sqlparser::ast::OnCommit::Drop));
    if table.temporary && !on_commit_drop {
        return temporary_refusal("CREATE TEMPORARY TABLE");
    }
    if table.unlogged {
        return refuse(
            "CREATE UNLOGGED TABLE",
            "PostgreSQL empties unlogged tables after a crash, so a replica that crashed would \
             lose rows the others keep; use a regular table",
        );
    }
    for column in &table.columns {
        identity_cache_policy(column)?;
    }
    Ok(KindRule::Fixed(StatementKind::Ddl))
}

/// `ALTER TABLE ... ADD COLUMN` with a sequence-backed or identity column fills the existing rows
/// in the table's physical order, which differs between replicas.
fn add_column_policy(column: &ColumnDef) -> Result<(), Refusal> {
    identity_cache_policy(column)?;
    let serial = matches!(
        column.data_type.to_string().to_lowercase().as_str(),
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
    );
    let identity = column
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::Generated { generation_expr: None, .. } | ColumnOption::Identity(_)));
    let nextval_default = column.options.iter().any(|o| match &o.option {
        ColumnOption::Default(Expr::Function(f)) => {
            f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| fold(i) == "nextval")
        }
        _ => false,
    });
    if serial || identity || nextval_default {
        return Err(Refusal::new(
            "ADD COLUMN with a serial, identity or nextval() default",
            "PostgreSQL numbers the existing rows in their physical order, which differs between \
             replicas; add the column without the default, number the rows with UPDATE ... FROM \
             (SELECT key, row_number() OVER (ORDER BY key) ...), then attach the default",
        ));
    }
    Ok(())
}

fn identity_cache_policy(column: &ColumnDef) -> Result<(), Refusal> {
    for option in &column.options {
        if let ColumnOption::Generated { sequence_options: Some(options), .. } = &option.option {
            sequence_cache_policy(options)?;
        }
    }
    Ok(())
}

/// `CACHE n` with n > 1 hands each session a block of values: a replica that restarts gets a new
/// session, starts a new block, and draws different values from then on.
fn sequence_cache_policy(options: &[SequenceOptions]) -> Result<(), Refusal> {
    for option in options {
        if let SequenceOptions::Cache(cache) = option {
            let is_one =
                matches!(cache, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.as_str() == "1"));
            if !is_one {
                return Err(Refusal::new(
                    "a sequence with CACHE greater than 1",
                    "cached values belong to one PostgreSQL session; a replica that restarts \
                     starts a new block and would draw different values. Leave CACHE at 1",
                ));
            }
        }
    }
    Ok(())
}
