//! What Barista knows about functions by name, without PostgreSQL's catalog.
//!
//! The checker runs before a statement reaches any PostgreSQL, so it cannot look up a function's
//! volatility. It knows PostgreSQL's built-in functions that matter for determinism by name, and
//! treats every other function as a user function: allowed (every user function was created
//! through Barista, whose body check ran then), but assumed to write, so a statement that calls
//! one is never classified read-only.
//!
//! Names are compared the way PostgreSQL resolves them: unquoted identifiers fold to lower case,
//! quoted ones are exact. Only unqualified names and names in `pg_catalog` are built-ins; a
//! function of the same name in another schema is a user function, except for the refusal lists,
//! which match any schema because extensions such as `uuid-ossp` install their non-deterministic
//! functions in user schemas.

use super::time::TimeForm;
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

/// How a function name is called: `now()` is a call, `CURRENT_TIMESTAMP` a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeSyntax {
    /// `now()`: always with an empty argument list.
    Call,
    /// `CURRENT_TIMESTAMP` or `CURRENT_TIMESTAMP(3)`: an SQL keyword with an optional precision.
    Keyword,
}

/// Why a function's value depends on the replica, and what to do instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Family {
    pub why: &'static str,
    pub advice: &'static str,
}

/// What the checker does with a call to a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FunctionClass {
    /// Rewritten from the transaction timestamp.
    Time(TimeForm, TimeSyntax),
    /// Returns a different value on each replica: allowed in read-only statements (only the
    /// serving replica's result reaches the client), refused where the value could be stored.
    VariesByReplica(Family),
    /// Refused everywhere: a side effect outside the replicated data, or session state.
    Refused(Family),
    /// `nextval`, `setval`: deterministic under Barista's serial execution, but writes, and the
    /// values drawn depend on the order rows are visited.
    Sequence,
    /// `set_config(name, value, is_local)`: `SET` as a function; the arguments decide.
    SetConfig,
    /// Transaction-scoped advisory locks: released at commit, so a replica that restarts and
    /// re-applies the transaction takes them again. They count as writes.
    TransactionLock,
    /// An aggregate whose result depends on the order of its input (`string_agg`, `array_agg`).
    OrderSensitiveAggregate,
    /// A window function whose result depends on the order within the window (`row_number`).
    OrderSensitiveWindow,
    /// A built-in that only computes from its arguments (and the session's identical settings).
    Pure,
    /// Anything else: a user function (or a built-in Barista does not list).
    Unknown,
}

/// A function name as PostgreSQL would resolve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Callee {
    /// Schema name, folded as PostgreSQL folds it; `None` when unqualified.
    pub schema: Option<String>,
    /// Function name, folded as PostgreSQL folds it.
    pub name: String,
    /// The name was written in double quotes (so it cannot be an SQL keyword).
    pub quoted: bool,
}

impl Callee {
    /// The callee of `name`, or `None` for names with more than two parts or parts that are
    /// not identifiers (no PostgreSQL function has those; they are treated as unknown).
    pub fn of(name: &ObjectName) -> Option<Self> {
        let parts: Vec<&Ident> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => Some(ident),
                ObjectNamePart::Function(_) => None,
            })
            .collect::<Option<_>>()?;
        match parts.as_slice() {
            [name] => Some(Self { schema: None, name: fold(name), quoted: name.quote_style.is_some() }),
            [schema, name] => {
                Some(Self { schema: Some(fold(schema)), name: fold(name), quoted: name.quote_style.is_some() })
            }
            _ => None,
        }
    }

    /// `pg_catalog` or unqualified: where PostgreSQL finds built-ins.
    fn is_builtin_path(&self) -> bool {
        self.schema.as_deref().is_none_or(|schema| schema == "pg_catalog")
    }

    /// The name as the client would recognise it in an error message.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}()", self.name),
            None => format!("{}()", self.name),
        }
    }
}

/// An identifier as PostgreSQL folds it: unquoted to lower case, quoted as written.
pub(crate) fn fold(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_lowercase() }
}

const RANDOM: Family = Family {
    why: "it returns a different value on every replica, so the replicas would store different data",
    advice: "generate the value in the client and send it as a literal or parameter \
             (random() is allowed in a read-only SELECT, whose result only the serving replica returns)",
};
const CLOCK: Family = Family {
    why: "it reads each replica's own clock",
    advice: "use now() or CURRENT_TIMESTAMP, which Barista fixes to one leader-chosen timestamp \
             per transaction, or send the time as a parameter",
};
const UUID: Family = Family {
    why: "it returns different random bytes on every replica",
    advice: "generate the UUID (or bytes) in the client and send it as a literal or parameter",
};
const XID: Family = Family {
    why: "transaction ids and snapshots are assigned by each PostgreSQL server independently",
    advice: "use a sequence (nextval) or a value the client sends",
};
const SERVER: Family = Family {
    why: "it describes the replica's own server process, which differs between replicas",
    advice: "do not store it; read it in a read-only SELECT",
};
const STORAGE: Family = Family {
    why: "physical storage (sizes, file names, statistics) differs between replicas",
    advice: "do not store it; read it in a read-only SELECT",
};
const FILES: Family =
    Family { why: "it reads files on the replica's own disk", advice: "send the content from the client" };
const SESSION_SEQUENCE: Family = Family {
    why: "it reads state of the PostgreSQL session, which a replica loses when it restarts and \
          re-applies the log on a new connection",
    advice: "use INSERT ... RETURNING, or call nextval() in the statement that needs the value",
};
const AGE_FROM_TODAY: Family = Family {
    why: "with one argument it counts from each replica's own current date",
    advice: "write age(CURRENT_DATE, x): Barista fixes CURRENT_DATE per transaction",
};
const SEED: Family = Family {
    why: "it seeds the session's random generator, which is not replicated",
    advice: "generate random values in the client (random() is allowed only in read-only SELECTs)",
};
const SLEEP: Family = Family {
    why: "every client waits while the replicated log is stalled by the sleep",
    advice: "sleep in the client",
};
const SESSION_LOCK: Family = Family {
    why: "session-level advisory locks live in a PostgreSQL session, which a replica loses when it \
          restarts and re-applies the log",
    advice: "use pg_advisory_xact_lock (released at commit), or SELECT ... FOR UPDATE on a row",
};
const NOTIFY: Family = Family {
    why: "every replica would deliver the notification to its own listeners",
    advice: "write the event to an outbox table and have consumers read it through Barista",
};
const ADMIN: Family = Family {
    why: "it administers one server; replicas are administered one by one, outside the log",
    advice: "run it on each replica directly",
};
const LARGE_OBJECT: Family = Family {
    why: "large objects are identified by OIDs that each server assigns on its own",
    advice: "store the data in a bytea column",
};
const REMOTE: Family = Family {
    why: "every replica would reach the remote server itself",
    advice: "call the other system from the client",
};

/// Built-ins whose value depends on the replica.
const VARIES_BY_REPLICA: &[(&str, Family)] = &[
    ("random", RANDOM),
    ("random_normal", RANDOM),
    ("clock_timestamp", CLOCK),
    ("timeofday", CLOCK),
    ("gen_random_uuid", UUID),
    ("uuid_generate_v1", UUID),
    ("uuid_generate_v1mc", UUID),
    ("uuid_generate_v4", UUID),
    ("uuidv4", UUID),
    ("uuidv7", UUID),
    ("gen_random_bytes", UUID),
    ("gen_salt", UUID),
    ("txid_current", XID),
    ("txid_current_if_assigned", XID),
    ("txid_current_snapshot", XID),
    ("pg_current_xact_id", XID),
    ("pg_current_xact_id_if_assigned", XID),
    ("pg_current_snapshot", XID),
    ("pg_export_snapshot", XID),
    ("pg_backend_pid", SERVER),
    ("inet_server_addr", SERVER),
    ("inet_server_port", SERVER),
    ("inet_client_addr", SERVER),
    ("inet_client_port", SERVER),
    ("version", SERVER),
    ("pg_postmaster_start_time", SERVER),
    ("pg_conf_load_time", SERVER),
    ("pg_current_wal_lsn", SERVER),
    ("pg_current_wal_insert_lsn", SERVER),
    ("pg_current_wal_flush_lsn", SERVER),
    ("pg_my_temp_schema", SERVER),
    ("pg_blocking_pids", SERVER),
    ("pg_relation_size", STORAGE),
    ("pg_total_relation_size", STORAGE),
    ("pg_table_size", STORAGE),
    ("pg_indexes_size", STORAGE),
    ("pg_database_size", STORAGE),
    ("pg_tablespace_size", STORAGE),
    ("pg_relation_filenode", STORAGE),
    ("pg_relation_filepath", STORAGE),
    ("pg_read_file", FILES),
    ("pg_read_binary_file", FILES),
    ("pg_ls_dir", FILES),
    ("pg_stat_file", FILES),
    ("pg_ls_logdir", FILES),
    ("pg_ls_waldir", FILES),
    ("pg_ls_tmpdir", FILES),
    ("pg_ls_archive_statusdir", FILES),
    ("currval", SESSION_SEQUENCE),
    ("lastval", SESSION_SEQUENCE),
];

/// Built-ins refused in every statement.
const REFUSED: &[(&str, Family)] = &[
    ("setseed", SEED),
    ("pg_sleep", SLEEP),
    ("pg_sleep_for", SLEEP),
    ("pg_sleep_until", SLEEP),
    ("pg_advisory_lock", SESSION_LOCK),
    ("pg_advisory_lock_shared", SESSION_LOCK),
    ("pg_advisory_unlock", SESSION_LOCK),
    ("pg_advisory_unlock_shared", SESSION_LOCK),
    ("pg_advisory_unlock_all", SESSION_LOCK),
    ("pg_try_advisory_lock", SESSION_LOCK),
    ("pg_try_advisory_lock_shared", SESSION_LOCK),
    ("pg_notify", NOTIFY),
    ("pg_terminate_backend", ADMIN),
    ("pg_cancel_backend", ADMIN),
    ("pg_reload_conf", ADMIN),
    ("pg_rotate_logfile", ADMIN),
    ("pg_switch_wal", ADMIN),
    ("pg_create_restore_point", ADMIN),
    ("pg_promote", ADMIN),
    ("pg_backup_start", ADMIN),
    ("pg_backup_stop", ADMIN),
    ("pg_create_physical_replication_slot", ADMIN),
    ("pg_create_logical_replication_slot", ADMIN),
    ("pg_drop_replication_slot", ADMIN),
    ("pg_logical_emit_message", ADMIN),
    ("pg_log_backend_memory_contexts", ADMIN),
    ("pg_file_write", ADMIN),
    ("pg_file_rename", ADMIN),
    ("pg_file_unlink", ADMIN),
    ("loread", LARGE_OBJECT),
    ("lowrite", LARGE_OBJECT),
];

/// Families recognised by prefix: large objects (`lo_import`, `lo_creat`, ...), statistics
/// resets (before the wider `pg_stat_`), statistics views' functions, and `dblink`.
const REFUSED_PREFIXES: &[(&str, Family)] = &[("lo_", LARGE_OBJECT), ("pg_stat_reset", ADMIN), ("dblink", REMOTE)];
const VARIES_PREFIXES: &[(&str, Family)] = &[("pg_stat_", STORAGE)];

const TIME: &[(&str, TimeForm, TimeSyntax)] = &[
    ("now", TimeForm::Timestamptz, TimeSyntax::Call),
    ("transaction_timestamp", TimeForm::Timestamptz, TimeSyntax::Call),
    // PostgreSQL's statement_timestamp() moves within a transaction; Barista's is the
    // transaction's, which is deterministic and differs only in multi-statement transactions.
    ("statement_timestamp", TimeForm::Timestamptz, TimeSyntax::Call),
    ("current_timestamp", TimeForm::Timestamptz, TimeSyntax::Keyword),
    ("current_date", TimeForm::Date, TimeSyntax::Keyword),
    ("current_time", TimeForm::Timetz, TimeSyntax::Keyword),
    ("localtimestamp", TimeForm::Timestamp, TimeSyntax::Keyword),
    ("localtime", TimeForm::Time, TimeSyntax::Keyword),
];

const ORDER_SENSITIVE_AGGREGATES: &[&str] = &[
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "json_object_agg_unique",
    "jsonb_object_agg_unique",
    "json_arrayagg",
    "json_objectagg",
    "xmlagg",
];

const ORDER_SENSITIVE_WINDOWS: &[&str] =
    &["row_number", "ntile", "lag", "lead", "first_value", "last_value", "nth_value"];

/// Built-ins known to compute only from their arguments. A read-only SELECT may call only these
/// (and the time and varies-by-replica families); anything else might write.
///
/// `current_user` and friends are here because every replica connects as the same role to a
/// database of the same name: a deployment invariant the executor's configuration keeps.
const PURE: &[&str] = &[
    // Aggregates and window functions whose result does not depend on input order.
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "bit_xor",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "corr",
    "covar_pop",
    "covar_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "grouping",
    // Numbers.
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "sign",
    "sqrt",
    "cbrt",
    "exp",
    "ln",
    "log",
    "log10",
    "power",
    "pow",
    "mod",
    "div",
    "pi",
    "degrees",
    "radians",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "gcd",
    "lcm",
    "factorial",
    "scale",
    "trim_scale",
    "width_bucket",
    "greatest",
    "least",
    "coalesce",
    "nullif",
    "num_nulls",
    "num_nonnulls",
    // Text.
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "lower",
    "upper",
    "initcap",
    "btrim",
    "ltrim",
    "rtrim",
    "lpad",
    "rpad",
    "left",
    "right",
    "substr",
    "strpos",
    "replace",
    "translate",
    "reverse",
    "repeat",
    "split_part",
    "concat",
    "concat_ws",
    "format",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "md5",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "encode",
    "decode",
    "to_hex",
    "ascii",
    "chr",
    "starts_with",
    "regexp_replace",
    "regexp_match",
    "regexp_matches",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_like",
    "regexp_count",
    "regexp_substr",
    "regexp_instr",
    "string_to_array",
    "string_to_table",
    "array_to_string",
    "unistr",
    "normalize",
    "to_ascii",
    // Arrays and set-returning helpers.
    "unnest",
    "array_length",
    "array_lower",
    "array_upper",
    "cardinality",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_position",
    "array_positions",
    "array_remove",
    "array_replace",
    "array_dims",
    "array_ndims",
    "array_fill",
    "generate_series",
    "generate_subscripts",
    // Date and time arithmetic (the current time itself is the time family).
    "to_char",
    "to_date",
    "to_timestamp",
    "to_number",
    "date_trunc",
    "date_part",
    "date_bin",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "isfinite",
    "timezone",
    // JSON.
    "json_build_object",
    "json_build_array",
    "jsonb_build_object",
    "jsonb_build_array",
    "to_json",
    "to_jsonb",
    "row_to_json",
    "array_to_json",
    "json_array_length",
    "jsonb_array_length",
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
    "json_object_keys",
    "jsonb_object_keys",
    "json_extract_path",
    "jsonb_extract_path",
    "json_extract_path_text",
    "jsonb_extract_path_text",
    "jsonb_set",
    "jsonb_set_lax",
    "jsonb_insert",
    "jsonb_strip_nulls",
    "json_strip_nulls",
    "jsonb_pretty",
    "jsonb_typeof",
    "json_typeof",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_path_exists",
    "jsonb_path_match",
    "json_populate_record",
    "jsonb_populate_record",
    "json_to_record",
    "jsonb_to_record",
    "json_to_recordset",
    "jsonb_to_recordset",
    // Session facts that are equal on every replica by configuration.
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_catalog",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_setting",
    "pg_typeof",
    "format_type",
    // Catalog readers that psql's `\d` and drivers' metadata queries call: they render or test
    // catalog rows, which every replica holds alike (object ids may differ between replicas, but
    // these only read a catalog row by id, they do not expose the counter).
    "pg_get_expr",
    "pg_get_constraintdef",
    "pg_get_indexdef",
    "pg_get_triggerdef",
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_partkeydef",
    "pg_get_userbyid",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_statisticsobjdef_columns",
    "pg_relation_is_publishable",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_encoding_to_char",
    "obj_description",
    "col_description",
    "shobj_description",
];

/// The class of a call to `callee` with `arg_count` arguments (`None`: no parentheses).
pub(crate) fn classify(callee: &Callee, arg_count: Option<usize>) -> FunctionClass {
    let name = callee.name.as_str();
    // Refusal lists match any schema: see the module documentation.
    if let Some((_, family)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return FunctionClass::Refused(*family);
    }
    if let Some((_, family)) = REFUSED_PREFIXES.iter().find(|(p, _)| name.starts_with(p)) {
        return FunctionClass::Refused(*family);
    }
    if let Some((_, family)) = VARIES_BY_REPLICA.iter().find(|(n, _)| *n == name) {
        return FunctionClass::VariesByReplica(*family);
    }
    if let Some((_, family)) = VARIES_PREFIXES.iter().find(|(p, _)| name.starts_with(p)) {
        return FunctionClass::VariesByReplica(*family);
    }
    if !callee.is_builtin_path() {
        return FunctionClass::Unknown;
    }
    if let Some((_, form, syntax)) = TIME.iter().find(|(n, _, _)| *n == name) {
        // A quoted or qualified keyword is an ordinary (user) function name, not the keyword.
        let keyword_ok = *syntax == TimeSyntax::Keyword && !callee.quoted && callee.schema.is_none();
        let call_ok = *syntax == TimeSyntax::Call && arg_count == Some(0);
        return if keyword_ok || call_ok { FunctionClass::Time(*form, *syntax) } else { FunctionClass::Unknown };
    }
    match name {
        "nextval" | "setval" => FunctionClass::Sequence,
        "set_config" => FunctionClass::SetConfig,
        "pg_advisory_xact_lock"
        | "pg_advisory_xact_lock_shared"
        | "pg_try_advisory_xact_lock"
        | "pg_try_advisory_xact_lock_shared" => FunctionClass::TransactionLock,
        "age" if arg_count == Some(1) => FunctionClass::VariesByReplica(AGE_FROM_TODAY),
        "age" => FunctionClass::Pure,
        _ if ORDER_SENSITIVE_AGGREGATES.contains(&name) => FunctionClass::OrderSensitiveAggregate,
        _ if ORDER_SENSITIVE_WINDOWS.contains(&name) => FunctionClass::OrderSensitiveWindow,
        _ if PURE.contains(&name) => FunctionClass::Pure,
        _ => FunctionClass::Unknown,
    }
}

/// Session settings whose effect depends on elapsed time, so that the same statement can fail
/// on one replica and succeed on another; refused even with `SET LOCAL`. `seed` is `setseed`.
const TIME_DEPENDENT_SETTINGS: &[&str] = &[
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "transaction_timeout",
    "deadlock_timeout",
    "seed",
];

/// Settings under which Barista's own bookkeeping, which runs in the client's transaction as the
/// connecting role, would fail on every replica: the replicas would halt at that slot for good.
const BOOKKEEPING_SETTINGS: &[&str] = &["transaction_read_only", "role", "session_authorization"];

/// Why [`BOOKKEEPING_SETTINGS`], a read-only transaction and another role are refused.
pub(crate) const BOOKKEEPING_REFUSAL: &str = "Barista records each statement's outcome and its place in \
    the log in the same transaction, as the connecting role; a read-only transaction or another \
    role would make that record fail on every replica, which would stop the cluster";

/// Why a transaction-scoped setting of `name` is refused, if it is.
pub(crate) fn setting_refusal(name: &str) -> Option<&'static str> {
    let name = name.to_lowercase();
    if name.starts_with("barista.") {
        Some("settings under barista. are Barista's own (the pinned transaction timestamp)")
    } else if BOOKKEEPING_SETTINGS.contains(&name.as_str()) {
        Some(BOOKKEEPING_REFUSAL)
    } else if TIME_DEPENDENT_SETTINGS.contains(&name.as_str()) {
        Some(
            "its effect depends on elapsed time or on the session's random seed, so the same \
              statement could fail on one replica and succeed on another",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Ident;

    fn callee(schema: Option<&str>, name: Ident) -> Callee {
        let mut parts = Vec::new();
        if let Some(schema) = schema {
            parts.push(ObjectNamePart::Identifier(Ident::new(schema)));
        }
        parts.push(ObjectNamePart::Identifier(name));
        Callee::of(&ObjectName(parts)).expect("one or two identifier parts")
    }

    #[test]
    fn folds_names_like_postgresql() {
        let c = callee(None, Ident::new("NOW"));
        assert_eq!(classify(&c, Some(0)), FunctionClass::Time(TimeForm::Timestamptz, TimeSyntax::Call));
        let quoted_upper = callee(None, Ident::with_quote('"', "NOW"));
        assert_eq!(classify(&quoted_upper, Some(0)), FunctionClass::Unknown);
        let quoted_lower = callee(None, Ident::with_quote('"', "now"));
        assert!(matches!(classify(&quoted_lower, Some(0)), FunctionClass::Time(..)));
    }

    #[test]
    fn only_pg_catalog_and_unqualified_names_are_builtins() {
        assert!(matches!(classify(&callee(Some("pg_catalog"), Ident::new("now")), Some(0)), FunctionClass::Time(..)));
        assert_eq!(classify(&callee(Some("app"), Ident::new("now")), Some(0)), FunctionClass::Unknown);
        assert_eq!(classify(&callee(Some("app"), Ident::new("lower")), Some(1)), FunctionClass::Unknown);
        // Refusals follow the name into any schema: extensions live in user schemas.
        assert!(matches!(
            classify(&callee(Some("public"), Ident::new("uuid_generate_v4")), Some(0)),
            FunctionClass::VariesByReplica(_)
        ));
    }

    #[test]
    fn keyword_forms_are_keywords_only_when_bare() {
        let bare = callee(None, Ident::new("CURRENT_DATE"));
        assert!(matches!(classify(&bare, None), FunctionClass::Time(TimeForm::Date, TimeSyntax::Keyword)));
        let quoted = callee(None, Ident::with_quote('"', "current_date"));
        assert_eq!(classify(&quoted, None), FunctionClass::Unknown);
        // now(1) is not PostgreSQL's now(): someone's overload.
        assert_eq!(classify(&callee(None, Ident::new("now")), Some(1)), FunctionClass::Unknown);
    }

    #[test]
    fn age_depends_on_its_arity() {
        let age = callee(None, Ident::new("age"));
        assert!(matches!(classify(&age, Some(1)), FunctionClass::VariesByReplica(_)));
        assert_eq!(classify(&age, Some(2)), FunctionClass::Pure);
    }

    #[test]
    fn prefixes_cover_families() {
        assert!(matches!(classify(&callee(None, Ident::new("lo_import")), Some(1)), FunctionClass::Refused(_)));
        assert!(matches!(classify(&callee(None, Ident::new("pg_stat_reset")), Some(0)), FunctionClass::Refused(_)));
        assert!(matches!(
            classify(&callee(None, Ident::new("pg_stat_get_live_tuples")), Some(1)),
            FunctionClass::VariesByReplica(_)
        ));
        assert!(matches!(classify(&callee(None, Ident::new("lower")), Some(1)), FunctionClass::Pure));
    }

    #[test]
    fn settings_refused_even_locally() {
        assert!(setting_refusal("statement_timeout").is_some());
        assert!(setting_refusal("Barista.txn_timestamp").is_some());
        assert!(setting_refusal("search_path").is_none());
    }
}
