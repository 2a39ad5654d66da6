//! The expression-level policy: one walk over a parsed statement.
//!
//! The walk visits every node (sqlparser's `Visitor`, pre-order, so findings come in source
//! order) and records three things:
//! - refusals that hold whatever the statement is (`Break` stops the walk at the first);
//! - *deferred* refusals, for constructs that are harmless in a read-only statement (`random()`,
//!   `LIMIT` without `ORDER BY`, ...): the caller applies them once it knows whether the
//!   statement writes, which the walk itself finds out (a call to a user function might write);
//! - edits: time functions to replace, and aliases that keep output column names.
//!
//! Context the policy needs (is this `SELECT` ordered, is this value cast to text) is kept in
//! stacks and in small sets of node addresses, compared by address only.

use super::body;
use super::functions::{Callee, FunctionClass, TimeSyntax, classify, fold};
use super::refusal::Refusal;
use super::statement;
use super::text::{Edit, Replacement, Tokens};
use super::time::{TimeForm, TimeHead};
use sqlparser::ast::{
    CastKind, DataType, Distinct, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, Ident, NamedWindowExpr, NonBlock, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, Value, ValueWithSpan, Visitor, WindowType,
};
use std::ops::ControlFlow;

/// System columns whose values describe one server's physical storage or transaction ids.
const SYSTEM_COLUMNS: &[&str] = &["ctid", "xmin", "xmax", "cmin", "cmax"];

/// Date/time input strings PostgreSQL evaluates against its own clock (`'now'::timestamptz`).
const SPECIAL_DATETIME_WORDS: &[&str] = &["now", "today", "tomorrow", "yesterday"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatementFrame {
    /// `UPDATE` and `DELETE` visit rows in physical order, which differs between replicas.
    UnorderedRows,
    Other,
}

struct SelectFrame {
    /// The `SELECT` reads from a relation (its rows come in physical order unless sorted).
    has_from: bool,
    /// Its query has an `ORDER BY`.
    ordered: bool,
    /// Named windows (`WINDOW w AS (...)`) that have an `ORDER BY`.
    ordered_windows: Vec<String>,
}

/// The findings of one walk.
pub(crate) struct Walk<'a> {
    text: &'a str,
    tokens: &'a Tokens,
    head: TimeHead,
    body_depth: usize,
    statements: Vec<StatementFrame>,
    selects: Vec<SelectFrame>,
    ordered_selects: Vec<*const Select>,
    exists_queries: Vec<*const Query>,
    text_values: Vec<*const ValueWithSpan>,
    /// Functions that are (inside casts and parentheses) a whole unaliased select-list item,
    /// with the number of closing parentheses of the item that follow them.
    naming_functions: Vec<(*const Function, usize)>,
    /// Something in the statement writes (or might: a user function).
    pub writes: bool,
    /// `SELECT ... INTO` creates a table.
    pub creates_table: bool,
    /// Refusals that apply unless the statement is read-only.
    pub deferred: Vec<Refusal>,
    /// Rewrites, in byte offsets of `text`.
    pub edits: Vec<Edit>,
}

impl<'a> Walk<'a> {
    pub fn new(text: &'a str, tokens: &'a Tokens, head: TimeHead, body_depth: usize) -> Self {
        Self {
            text,
            tokens,
            head,
            body_depth,
            statements: Vec::new(),
            selects: Vec::new(),
            ordered_selects: Vec::new(),
            exists_queries: Vec::new(),
            text_values: Vec::new(),
            naming_functions: Vec::new(),
            writes: false,
            creates_table: false,
            deferred: Vec::new(),
            edits: Vec::new(),
        }
    }

    fn defer(&mut self, refusal: Refusal) {
        self.deferred.push(refusal);
    }

    /// Remember select-list items whose output column PostgreSQL names after a time function
    /// (`SELECT now()` is a column named `now`): the rewrite must keep that name.
    fn note_item_names(&mut self, items: &[SelectItem]) {
        for item in items {
            let SelectItem::UnnamedExpr(item_expr) = item else { continue };
            let mut expr = item_expr;
            let mut closing = 0;
            loop {
                match expr {
                    Expr::Cast { kind: CastKind::DoubleColon, expr: inner, .. } => expr = inner.as_ref(),
                    Expr::Cast { kind: CastKind::Cast, expr: inner, .. } | Expr::Nested(inner) => {
                        closing += 1;
                        expr = inner.as_ref();
                    }
                    Expr::Function(function) => {
                        self.naming_functions.push((function as *const Function, closing));
                        break;
                    }
                    _ => break,
                }
            }
        }
    }

    fn function(&mut self, function: &Function) -> ControlFlow<Refusal> {
        let Some(callee) = Callee::of(&function.name) else {
            self.writes = true;
            return ControlFlow::Continue(());
        };
        let arg_count = match &function.args {
            FunctionArguments::None => None,
            FunctionArguments::List(list) => Some(list.args.len()),
            FunctionArguments::Subquery(_) => Some(1),
        };
        match classify(&callee, arg_count) {
            FunctionClass::Time(form, syntax) => return self.time(function, &callee, form, syntax),
            FunctionClass::VariesByReplica(family) => {
                self.defer(Refusal::new(
                    format!("{} in a statement that writes", callee.display()),
                    format!("{}; {}", family.why, family.advice),
                ));
            }
            FunctionClass::Refused(family) => {
                return ControlFlow::Break(Refusal::new(
                    callee.display(),
                    format!("{}; {}", family.why, family.advice),
                ));
            }
            FunctionClass::Sequence => {
                self.writes = true;
                return self.sequence(&callee);
            }
            FunctionClass::SetConfig => {
                self.writes = true;
                return set_config(function);
            }
            FunctionClass::TransactionLock | FunctionClass::Unknown => self.writes = true,
            FunctionClass::OrderSensitiveAggregate => {
                if !aggregate_ordered(function) && !self.window_ordered(function) {
                    self.defer(unordered(
                        &format!("{} without ORDER BY in a statement that writes", callee.display()),
                        "the order of its input, and so its result, differs between replicas; \
                         write the aggregate's ORDER BY, e.g. string_agg(name, ',' ORDER BY name)",
                    ));
                }
            }
            FunctionClass::OrderSensitiveWindow => {
                if !self.window_ordered(function) {
                    self.defer(unordered(
                        &format!("{} without ORDER BY in its window in a statement that writes", callee.display()),
                        "rows are numbered in an order that differs between replicas; add ORDER BY \
                         (on a unique key) to the window",
                    ));
                }
            }
            FunctionClass::Pure => {}
        }
        ControlFlow::Continue(())
    }

    /// A time function: record the edit that replaces it (and keeps its column name).
    fn time(
        &mut self,
        function: &Function,
        callee: &Callee,
        form: TimeForm,
        syntax: TimeSyntax,
    ) -> ControlFlow<Refusal> {
        let precision = match (syntax, &function.args) {
            (_, FunctionArguments::None) => None,
            (TimeSyntax::Call, _) => None,
            (TimeSyntax::Keyword, FunctionArguments::List(list)) if list.clauses.is_empty() => {
                match list.args.as_slice() {
                    [
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(ValueWithSpan {
                            value: Value::Number(digits, false),
                            ..
                        }))),
                    ] if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits.clone()),
                    _ => return ControlFlow::Break(bad_precision(callee)),
                }
            }
            (TimeSyntax::Keyword, _) => return ControlFlow::Break(bad_precision(callee)),
        };
        let Some(location) = function.name.0.first().and_then(|part| part.as_ident()).map(|i| i.span.start) else {
            return ControlFlow::Break(Refusal::internal("locate a time function"));
        };
        let parens = !matches!(function.args, FunctionArguments::None);
        let extent = self.tokens.call_extent(location, function.name.0.len(), parens);
        let Some((first, last)) = extent else {
            return ControlFlow::Break(Refusal::internal("locate a time function"));
        };
        let (Some(start), Some(end)) = (self.tokens.start(first), self.tokens.end(last)) else {
            return ControlFlow::Break(Refusal::internal("locate a time function"));
        };
        self.edits.push(Edit { start, end, replacement: Replacement::Time { head: self.head, form, precision } });
        let naming = self.naming_functions.iter().find(|(f, _)| std::ptr::eq(*f, function)).map(|(_, c)| *c);
        if let Some(closing) = naming {
            let Some(item_end) = self.tokens.item_end(last, closing) else {
                return ControlFlow::Break(Refusal::internal("find the end of a select-list item"));
            };
            self.edits.push(Edit {
                start: item_end,
                end: item_end,
                replacement: Replacement::Text(format!(" AS \"{}\"", callee.name)),
            });
        }
        ControlFlow::Continue(())
    }

    /// `nextval`/`setval` draw values in the order rows are visited; refused where that order
    /// is physical (and so differs between replicas).
    fn sequence(&mut self, callee: &Callee) -> ControlFlow<Refusal> {
        let in_unordered_rows = self.statements.last() == Some(&StatementFrame::UnorderedRows);
        let unordered_select = self.selects.last().is_some_and(|s| s.has_from && !s.ordered);
        if in_unordered_rows || unordered_select {
            return ControlFlow::Break(unordered(
                &format!("{} over rows in no defined order", callee.display()),
                "UPDATE, DELETE and a SELECT without ORDER BY visit rows in their physical order, \
                 which differs between replicas, so different rows would get different values; \
                 draw values in an INSERT ... VALUES, or in a SELECT with ORDER BY on a unique key",
            ));
        }
        ControlFlow::Continue(())
    }

    /// Whether an aggregate or window function's window orders its rows.
    fn window_ordered(&self, function: &Function) -> bool {
        let named = |name: &Ident| {
            let name = fold(name);
            self.selects.last().is_some_and(|s| s.ordered_windows.contains(&name))
        };
        match &function.over {
            Some(WindowType::WindowSpec(spec)) => {
                !spec.order_by.is_empty() || spec.window_name.as_ref().is_some_and(named)
            }
            Some(WindowType::NamedWindow(name)) => named(name),
            None => false,
        }
    }

    fn table_function(&mut self, name: &sqlparser::ast::ObjectName, arg_count: usize) -> ControlFlow<Refusal> {
        let Some(callee) = Callee::of(name) else {
            self.writes = true;
            return ControlFlow::Continue(());
        };
        match classify(&callee, Some(arg_count)) {
            FunctionClass::Time(..) => ControlFlow::Break(Refusal::new(
                format!("{} in FROM", callee.display()),
                "Barista rewrites time functions only where they are values; select it instead: \
                 SELECT now()",
            )),
            FunctionClass::Refused(family) => {
                ControlFlow::Break(Refusal::new(callee.display(), format!("{}; {}", family.why, family.advice)))
            }
            FunctionClass::VariesByReplica(family) => {
                self.defer(Refusal::new(
                    format!("{} in a statement that writes", callee.display()),
                    format!("{}; {}", family.why, family.advice),
                ));
                ControlFlow::Continue(())
            }
            FunctionClass::Pure | FunctionClass::OrderSensitiveAggregate | FunctionClass::OrderSensitiveWindow => {
                ControlFlow::Continue(())
            }
            FunctionClass::Sequence
            | FunctionClass::SetConfig
            | FunctionClass::TransactionLock
            | FunctionClass::Unknown => {
                self.writes = true;
                ControlFlow::Continue(())
            }
        }
    }
}

impl Visitor for Walk<'_> {
    type Break = Refusal;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Refusal> {
        // The top-level statement's policy ran before the walk (it decides the time head).
        if !self.statements.is_empty()
            && let Err(refusal) = statement::policy(statement)
        {
            return ControlFlow::Break(refusal);
        }
        let mut frame = StatementFrame::Other;
        match statement {
            Statement::Insert(insert) => {
                self.writes = true;
                if let Some(source) = &insert.source
                    && source.order_by.is_none()
                    && reads_relation(&source.body)
                {
                    self.defer(unordered(
                        "INSERT ... SELECT without ORDER BY",
                        "rows would be inserted in an order that differs between replicas, and \
                         with it the sequence values, defaults and conflict winners they get; add \
                         ORDER BY on a unique key",
                    ));
                }
                if let Some(items) = &insert.returning {
                    self.note_item_names(items);
                }
            }
            Statement::Update(update) => {
                self.writes = true;
                frame = StatementFrame::UnorderedRows;
                if let Some(items) = &update.returning {
                    self.note_item_names(items);
                }
            }
            Statement::Delete(delete) => {
                self.writes = true;
                frame = StatementFrame::UnorderedRows;
                if let Some(items) = &delete.returning {
                    self.note_item_names(items);
                }
            }
            Statement::Merge(_) | Statement::Call(_) => self.writes = true,
            Statement::CreateFunction(function) => {
                match body::check(function, self.text, self.tokens, self.body_depth) {
                    Ok(edits) => self.edits.extend(edits),
                    Err(refusal) => return ControlFlow::Break(refusal),
                }
            }
            _ => {}
        }
        self.statements.push(frame);
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _: &Statement) -> ControlFlow<Refusal> {
        self.statements.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refusal> {
        for lock in &query.locks {
            self.writes = true;
            match lock.nonblock {
                Some(NonBlock::SkipLocked) => {
                    return ControlFlow::Break(Refusal::new(
                        "FOR UPDATE/SHARE SKIP LOCKED",
                        "which rows are locked at that instant differs between replicas, so each \
                         would skip different rows; Barista runs one transaction at a time, so \
                         leave out SKIP LOCKED (and use ORDER BY ... LIMIT to pick rows)",
                    ));
                }
                Some(NonBlock::Nowait) => {
                    return ControlFlow::Break(Refusal::new(
                        "FOR UPDATE/SHARE NOWAIT",
                        "whether a lock is free at that instant differs between replicas; leave \
                         out NOWAIT: Barista runs one transaction at a time",
                    ));
                }
                None => {}
            }
        }
        let limited = query.limit_clause.is_some() || query.fetch.is_some();
        let in_exists = self.exists_queries.iter().any(|q| std::ptr::eq(*q, query));
        if limited && query.order_by.is_none() && !in_exists {
            self.defer(unordered(
                "LIMIT/OFFSET/FETCH without ORDER BY in a statement that writes",
                "which rows are kept differs between replicas; add ORDER BY on a unique key",
            ));
        }
        if let SetExpr::Select(select) = query.body.as_ref()
            && query.order_by.is_some()
        {
            self.ordered_selects.push(select.as_ref() as *const Select);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Refusal> {
        let ordered = self.ordered_selects.iter().any(|s| std::ptr::eq(*s, select));
        if let Some(into) = &select.into {
            if into.temporary {
                return ControlFlow::Break(Refusal::new(
                    "SELECT ... INTO TEMPORARY",
                    "temporary tables live in the PostgreSQL session, which a replica loses when \
                     it restarts and re-applies the log; use a regular table",
                ));
            }
            if into.unlogged {
                return ControlFlow::Break(Refusal::new(
                    "SELECT ... INTO UNLOGGED",
                    "PostgreSQL empties unlogged tables after a crash; use a regular table",
                ));
            }
            self.creates_table = true;
        }
        if matches!(select.distinct, Some(Distinct::On(_))) && !ordered {
            self.defer(unordered(
                "DISTINCT ON without ORDER BY in a statement that writes",
                "which row of each group is kept differs between replicas; add ORDER BY",
            ));
        }
        self.note_item_names(&select.projection);
        let ordered_windows = select
            .named_window
            .iter()
            .filter(|w| matches!(&w.1, NamedWindowExpr::WindowSpec(spec) if !spec.order_by.is_empty()))
            .map(|w| fold(&w.0))
            .collect();
        self.selects.push(SelectFrame { has_from: !select.from.is_empty(), ordered, ordered_windows });
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, _: &Select) -> ControlFlow<Refusal> {
        self.selects.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Refusal> {
        match factor {
            TableFactor::Table { name, args, sample, .. } => {
                if sample.is_some() {
                    self.defer(unordered(
                        "TABLESAMPLE in a statement that writes",
                        "the sample depends on each replica's physical storage; select rows by a \
                         condition on their data instead",
                    ));
                }
                if let Some(args) = args {
                    return self.table_function(name, args.args.len());
                }
            }
            TableFactor::Function { name, args, .. } => return self.table_function(name, args.len()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refusal> {
        match expr {
            Expr::Function(function) => return self.function(function),
            Expr::Identifier(ident) => return system_column(ident),
            Expr::CompoundIdentifier(idents) => {
                if let Some(ident) = idents.last() {
                    return system_column(ident);
                }
            }
            Expr::Cast { expr: inner, data_type, .. } if is_text_type(data_type) => {
                if let Expr::Value(value) = inner.as_ref() {
                    self.text_values.push(value as *const ValueWithSpan);
                }
            }
            Expr::TypedString(typed) if is_text_type(&typed.data_type) => {
                self.text_values.push(&typed.value as *const ValueWithSpan);
            }
            Expr::Exists { subquery, .. } => self.exists_queries.push(subquery.as_ref() as *const Query),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<Refusal> {
        let text = match &value.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s)
            | Value::NationalStringLiteral(s) => s.as_str(),
            Value::DollarQuotedString(d) => d.value.as_str(),
            _ => return ControlFlow::Continue(()),
        };
        let as_text = self.text_values.iter().any(|v| std::ptr::eq(*v, value));
        if !as_text && is_special_datetime(text) {
            self.defer(Refusal::new(
                format!("the date/time input '{}' in a statement that writes", text.trim()),
                "PostgreSQL reads 'now', 'today', 'tomorrow' and 'yesterday' from each replica's \
                 own clock; write now(), CURRENT_DATE or CURRENT_DATE + 1 (Barista fixes them per \
                 transaction), or, if you meant the text, write it as 'today'::text",
            ));
        }
        ControlFlow::Continue(())
    }
}

fn unordered(construct: &str, advice: &str) -> Refusal {
    Refusal::new(construct, advice)
}

fn bad_precision(callee: &Callee) -> Refusal {
    Refusal::new(
        format!("{} with this precision", callee.name.to_uppercase()),
        "write the precision as a constant, e.g. CURRENT_TIMESTAMP(3)",
    )
}

fn system_column(ident: &Ident) -> ControlFlow<Refusal> {
    let name = fold(ident);
    if SYSTEM_COLUMNS.contains(&name.as_str()) {
        return ControlFlow::Break(Refusal::new(
            format!("the system column {name}"),
            "it describes where and by which transaction a row was written on one server, which \
             differs between replicas; identify rows by their primary key",
        ));
    }
    ControlFlow::Continue(())
}

/// `set_config(name, value, is_local)`: allowed only as `SET LOCAL` of an allowed setting, with
/// constant arguments (a computed name or flag could not be checked).
fn set_config(function: &Function) -> ControlFlow<Refusal> {
    let constant = |arg: &FunctionArg| match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => Some(v.value.clone()),
        _ => None,
    };
    let args: Vec<Option<Value>> = match &function.args {
        FunctionArguments::List(list) => list.args.iter().map(constant).collect(),
        _ => Vec::new(),
    };
    match args.as_slice() {
        [Some(Value::SingleQuotedString(name)), _, Some(Value::Boolean(true))] => {
            match statement::local_setting_policy(name) {
                Ok(()) => ControlFlow::Continue(()),
                Err(refusal) => ControlFlow::Break(refusal),
            }
        }
        [_, _, Some(Value::Boolean(true))] => ControlFlow::Break(Refusal::new(
            "set_config() with a computed setting name",
            "Barista must see which setting is changed; write the name as a constant",
        )),
        _ => ControlFlow::Break(Refusal::new(
            "set_config(..., false)",
            "a setting that outlives the transaction is session state, which a replica loses when \
             it restarts and re-applies the log; use set_config(name, value, true) (SET LOCAL)",
        )),
    }
}

fn aggregate_ordered(function: &Function) -> bool {
    let in_args = match &function.args {
        FunctionArguments::List(list) => {
            list.clauses.iter().any(|c| matches!(c, FunctionArgumentClause::OrderBy(order) if !order.is_empty()))
        }
        _ => false,
    };
    in_args || !function.within_group.is_empty()
}

/// Whether the rows of an `INSERT`'s source come from a relation (and so in physical order).
fn reads_relation(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => !select.from.is_empty() && !is_series_scan(select),
        SetExpr::Query(query) => query.order_by.is_none() && reads_relation(&query.body),
        SetExpr::Values(_) => false,
        _ => true,
    }
}

/// A `SELECT` from `generate_series(...)` alone: no join, grouping, `DISTINCT` or `HAVING`. The
/// function scan returns the series in order on every replica, and filtering keeps that order, so
/// rows inserted from it are inserted in one order everywhere (pgbench's `-I G` loads this way).
fn is_series_scan(select: &Select) -> bool {
    let [from] = select.from.as_slice() else { return false };
    let series = |name: &sqlparser::ast::ObjectName| {
        let name = name.to_string().to_ascii_lowercase();
        name == "generate_series" || name == "pg_catalog.generate_series"
    };
    from.joins.is_empty()
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(exprs, modifiers) if exprs.is_empty() && modifiers.is_empty())
        && matches!(&from.relation, TableFactor::Table { name, args: Some(_), .. } if series(name))
}

fn is_text_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Text
            | DataType::Varchar(_)
            | DataType::CharacterVarying(_)
            | DataType::Char(_)
            | DataType::Character(_)
            | DataType::String(_)
    ) || matches!(data_type, DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("name")
        || name.to_string().eq_ignore_ascii_case("citext") || name.to_string().eq_ignore_ascii_case("bpchar"))
}

/// `'now'`, `' Today '`, `'tomorrow 10:00'`: a special date/time word, alone or with a time.
fn is_special_datetime(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    let mut words = lower.split_whitespace();
    let Some(first) = words.next() else { return false };
    let time_like = |w: &str| w.chars().all(|c| c.is_ascii_digit() || ":.+-".contains(c));
    SPECIAL_DATETIME_WORDS.contains(&first) && words.all(time_like)
}

#[cfg(test)]
mod tests {
    use super::is_special_datetime;

    #[test]
    fn special_datetime_words_are_recognised_with_times_only() {
        for yes in ["now", " NOW ", "today", "Tomorrow 10:00", "yesterday 00:00:00+02"] {
            assert!(is_special_datetime(yes), "{yes}");
        }
        for no in ["", "nowhere", "see you tomorrow", "today is sunny", "2026-11-25", "epoch"] {
            assert!(!is_special_datetime(no), "{no}");
        }
    }
}
