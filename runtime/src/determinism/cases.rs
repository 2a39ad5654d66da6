//! The policy as data: one case per construct, each with an example, the expected outcome and the
//! reason. `docs/determinism.md` is generated from this list and a unit test runs every case, so
//! the documented policy and the implemented one cannot drift apart. The same list is meant to be
//! replayed against three real PostgreSQL replicas (identical data on all three, or the refusal):
//! examples only use the tables of [`FIXTURE`].

use super::StatementKind;
use std::fmt::Write as _;

/// The transaction timestamp the expected rewrites are written for:
/// `2026-11-25 14:50:00.123456+00`.
pub const CASE_TIMESTAMP_US: i64 = 1_795_618_200_123_456;

/// The schema the examples run against (each statement itself passes [`super::check`]).
pub const FIXTURE: &[&str] = &[
    "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric NOT NULL DEFAULT 0, created_at timestamptz)",
    "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, kind text, note text)",
    "CREATE SEQUENCE ticket_seq",
];

/// What Barista does with a case's example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Replicated as written, with this kind.
    Unchanged(StatementKind),
    /// Replicated as exactly this text (at [`CASE_TIMESTAMP_US`]), with this kind.
    Rewritten(StatementKind, &'static str),
    /// Refused; the refusal's `construct` contains this text.
    Refused(&'static str),
}

/// One row of the policy table.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Stable identifier (the unit test reports failures by it).
    pub id: &'static str,
    /// The construct, as the table names it.
    pub construct: &'static str,
    /// An example statement over [`FIXTURE`].
    pub sql: &'static str,
    /// What Barista does with the example.
    pub expect: Expect,
    /// Why.
    pub why: &'static str,
}

const fn case(id: &'static str, construct: &'static str, sql: &'static str, expect: Expect, why: &'static str) -> Case {
    Case { id, construct, sql, expect, why }
}

use Expect::{Refused, Rewritten, Unchanged};
use StatementKind::{Ddl, Maintenance, ReadOnly, Transaction, Write};

/// Sentences the table repeats.
const SESSION: &str = "A replica that restarts re-applies the log on new PostgreSQL connections, so \
    state kept in a session between transactions would be missing on that replica alone.";
const READ_OK: &str = "Allowed in a read-only SELECT: only the serving replica's result reaches the \
    client, and any value the client sends back comes through the log as a literal.";

/// Every construct Barista's policy considers.
pub const CASES: &[Case] = &[
    // Time.
    case(
        "time-now",
        "now()",
        "INSERT INTO events (at, kind) VALUES (now(), 'login')",
        Rewritten(
            Write,
            "INSERT INTO events (at, kind) VALUES ('2026-11-25 14:50:00.123456+00'::timestamptz, 'login')",
        ),
        "PostgreSQL's now() is when each replica began the transaction. Barista uses one leader-chosen timestamp per transaction (PostgreSQL's own meaning), as a literal.",
    ),
    case(
        "time-current-timestamp",
        "CURRENT_TIMESTAMP(p)",
        "UPDATE items SET created_at = CURRENT_TIMESTAMP(3) WHERE id = 1",
        Rewritten(Write, "UPDATE items SET created_at = '2026-11-25 14:50:00.123456+00'::timestamptz(3) WHERE id = 1"),
        "Same timestamp; the precision becomes a type modifier, which rounds as CURRENT_TIMESTAMP(3) does.",
    ),
    case(
        "time-current-date",
        "CURRENT_DATE",
        "DELETE FROM events WHERE at < CURRENT_DATE - 30",
        Rewritten(Write, "DELETE FROM events WHERE at < '2026-11-25 14:50:00.123456+00'::timestamptz::date - 30"),
        "A cast of the transaction timestamp, so the date follows the session TimeZone as PostgreSQL's does; TimeZone is equal on all replicas because session SET is refused.",
    ),
    case(
        "time-current-time",
        "CURRENT_TIME",
        "SELECT CURRENT_TIME",
        Rewritten(ReadOnly, "SELECT '2026-11-25 14:50:00.123456+00'::timestamptz::timetz AS \"current_time\""),
        "Reads are rewritten too, so a client sees its transaction's time; the alias keeps the output column's name.",
    ),
    case(
        "time-localtimestamp",
        "LOCALTIMESTAMP, LOCALTIME",
        "SELECT LOCALTIMESTAMP(0), LOCALTIME",
        Rewritten(
            ReadOnly,
            "SELECT '2026-11-25 14:50:00.123456+00'::timestamptz::timestamp(0) AS \"localtimestamp\", '2026-11-25 14:50:00.123456+00'::timestamptz::time AS \"localtime\"",
        ),
        "Casts of the transaction timestamp in the session TimeZone, with the precision kept.",
    ),
    case(
        "time-transaction-timestamp",
        "transaction_timestamp()",
        "UPDATE items SET created_at = transaction_timestamp() WHERE id = 2",
        Rewritten(Write, "UPDATE items SET created_at = '2026-11-25 14:50:00.123456+00'::timestamptz WHERE id = 2"),
        "Another name for now().",
    ),
    case(
        "time-statement-timestamp",
        "statement_timestamp()",
        "INSERT INTO events (at) VALUES (statement_timestamp())",
        Rewritten(Write, "INSERT INTO events (at) VALUES ('2026-11-25 14:50:00.123456+00'::timestamptz)"),
        "Barista has one timestamp per transaction, so this equals now(): deterministic, and different from PostgreSQL only between statements of one transaction.",
    ),
    case(
        "time-text-untouched",
        "now() in strings and comments",
        "SELECT id FROM items WHERE created_at > pg_catalog.now() - interval '1 day' AND name <> 'now()' -- now()",
        Rewritten(
            ReadOnly,
            "SELECT id FROM items WHERE created_at > '2026-11-25 14:50:00.123456+00'::timestamptz - interval '1 day' AND name <> 'now()' -- now()",
        ),
        "Rewrites are located from the parse tree and spliced into the client's text; everything else reaches PostgreSQL byte for byte.",
    ),
    case(
        "time-column-name",
        "output column named after a time function",
        "SELECT now()::date, CAST(now() AS text) AS t",
        Rewritten(
            ReadOnly,
            "SELECT '2026-11-25 14:50:00.123456+00'::timestamptz::date AS \"now\", CAST('2026-11-25 14:50:00.123456+00'::timestamptz AS text) AS t",
        ),
        "PostgreSQL names the column now; the rewrite adds that name as an alias so clients reading columns by name see no change.",
    ),
    case(
        "time-returning",
        "now() in RETURNING",
        "INSERT INTO events (kind) VALUES ('x') RETURNING id, now()",
        Rewritten(
            Write,
            "INSERT INTO events (kind) VALUES ('x') RETURNING id, '2026-11-25 14:50:00.123456+00'::timestamptz AS \"now\"",
        ),
        "RETURNING lists name their columns like select lists.",
    ),
    case(
        "time-default",
        "DEFAULT now() (column defaults)",
        "CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
        Rewritten(
            Ddl,
            "CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT current_setting('barista.txn_timestamp')::timestamptz)",
        ),
        "A default runs in later transactions, where a literal would freeze the CREATE's moment. It reads the setting the executor pins to each transaction's timestamp.",
    ),
    case(
        "time-alter-default",
        "SET DEFAULT CURRENT_TIMESTAMP",
        "ALTER TABLE items ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP",
        Rewritten(
            Ddl,
            "ALTER TABLE items ALTER COLUMN created_at SET DEFAULT current_setting('barista.txn_timestamp')::timestamptz",
        ),
        "Same as column defaults in CREATE TABLE.",
    ),
    case(
        "time-view",
        "now() in a view",
        "CREATE VIEW recent_events AS SELECT id FROM events WHERE at > now() - interval '1 hour'",
        Rewritten(
            Ddl,
            "CREATE VIEW recent_events AS SELECT id FROM events WHERE at > current_setting('barista.txn_timestamp')::timestamptz - interval '1 hour'",
        ),
        "A view is evaluated by later statements: stored expressions read the pinned timestamp.",
    ),
    case(
        "time-policy",
        "now() in a row-level security policy",
        "CREATE POLICY fresh ON events USING (at > now() - interval '1 day')",
        Rewritten(
            Ddl,
            "CREATE POLICY fresh ON events USING (at > current_setting('barista.txn_timestamp')::timestamptz - interval '1 day')",
        ),
        "Stored expression: pinned timestamp.",
    ),
    case(
        "time-sql-function",
        "time in a LANGUAGE sql body",
        "CREATE FUNCTION events_today() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM events WHERE at >= CURRENT_DATE $$",
        Rewritten(
            Ddl,
            "CREATE FUNCTION events_today() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM events WHERE at >= current_setting('barista.txn_timestamp')::timestamptz::date $$",
        ),
        "Bodies run in later transactions: time inside them reads the pinned timestamp.",
    ),
    case(
        "time-plpgsql-trigger",
        "now() in a plpgsql trigger function",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$",
        Rewritten(
            Ddl,
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := current_setting('barista.txn_timestamp')::timestamptz; RETURN NEW; END $$",
        ),
        "The classic updated_at trigger, made deterministic.",
    ),
    case(
        "time-special-input",
        "'now', 'today' date/time input",
        "INSERT INTO events (at) VALUES ('now')",
        Refused("'now'"),
        "PostgreSQL reads these strings from each replica's clock, and Barista cannot see the column type to rewrite them. Write now() or CURRENT_DATE; write 'today'::text for the word.",
    ),
    case(
        "time-in-from",
        "time function in FROM",
        "SELECT * FROM now()",
        Refused("now() in FROM"),
        "Only value positions are rewritten; select the function instead.",
    ),
    case(
        "clock-timestamp",
        "clock_timestamp()",
        "INSERT INTO events (at) VALUES (clock_timestamp())",
        Refused("clock_timestamp()"),
        "Reads each replica's clock at execution.",
    ),
    case(
        "timeofday",
        "timeofday()",
        "UPDATE items SET name = timeofday() WHERE id = 1",
        Refused("timeofday()"),
        "Reads each replica's clock.",
    ),
    case(
        "clock-timestamp-read",
        "clock_timestamp() in a read",
        "SELECT clock_timestamp()",
        Unchanged(ReadOnly),
        READ_OK,
    ),
    case(
        "age-one-argument",
        "age(x) with one argument",
        "UPDATE items SET name = age(created_at)::text WHERE id = 1",
        Refused("age()"),
        "Counts from each replica's current date; age(CURRENT_DATE, x) is rewritten instead.",
    ),
    // Random values.
    case(
        "random-write",
        "random() in a write",
        "INSERT INTO items (id, name, price) VALUES (1, 'x', random())",
        Refused("random()"),
        "A different value on every replica would be stored.",
    ),
    case("random-read", "random() in a read", "SELECT random()", Unchanged(ReadOnly), READ_OK),
    case(
        "order-by-random-write",
        "ORDER BY random() in a write",
        "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 1)",
        Refused("random()"),
        "Each replica would delete a different row.",
    ),
    case(
        "order-by-random-read",
        "ORDER BY random() in a read",
        "SELECT id FROM items ORDER BY random() LIMIT 3",
        Unchanged(ReadOnly),
        READ_OK,
    ),
    case(
        "setseed",
        "setseed()",
        "SELECT setseed(0.5)",
        Refused("setseed()"),
        "Seeds a session's generator: session state, and random() is only allowed where its value is not stored anyway.",
    ),
    case(
        "gen-random-uuid",
        "gen_random_uuid()",
        "INSERT INTO events (kind, note) VALUES ('signup', gen_random_uuid()::text)",
        Refused("gen_random_uuid()"),
        "Random bytes differ per replica. Generate UUIDs in the client and send them as parameters.",
    ),
    case(
        "uuid-generate-v4",
        "uuid_generate_v4() (uuid-ossp, any schema)",
        "INSERT INTO events (note) VALUES (public.uuid_generate_v4()::text)",
        Refused("uuid_generate_v4()"),
        "Extensions install their functions in user schemas, so refusals match the name in any schema.",
    ),
    case(
        "tablesample-write",
        "TABLESAMPLE in a write",
        "INSERT INTO events (note) SELECT name FROM items TABLESAMPLE BERNOULLI (10) ORDER BY id",
        Refused("TABLESAMPLE"),
        "The sample depends on each replica's physical storage, REPEATABLE or not.",
    ),
    case(
        "tablesample-read",
        "TABLESAMPLE in a read",
        "SELECT id FROM items TABLESAMPLE SYSTEM (10)",
        Unchanged(ReadOnly),
        READ_OK,
    ),
    // The replica's own identity.
    case(
        "txid-current",
        "txid_current(), pg_current_xact_id()",
        "INSERT INTO events (note) VALUES (txid_current()::text)",
        Refused("txid_current()"),
        "Each server assigns transaction ids on its own.",
    ),
    case(
        "pg-backend-pid",
        "pg_backend_pid()",
        "INSERT INTO events (note) VALUES (pg_backend_pid()::text)",
        Refused("pg_backend_pid()"),
        "Each replica's session is a different process.",
    ),
    case("pg-backend-pid-read", "pg_backend_pid() in a read", "SELECT pg_backend_pid()", Unchanged(ReadOnly), READ_OK),
    case(
        "inet-server-addr",
        "inet_server_addr(), inet_server_port()",
        "INSERT INTO events (note) VALUES (host(inet_server_addr()))",
        Refused("inet_server_addr()"),
        "Each replica has its own address.",
    ),
    case(
        "inet-client-addr",
        "inet_client_addr()",
        "UPDATE items SET name = inet_client_addr()::text WHERE id = 1",
        Refused("inet_client_addr()"),
        "The client of each replica's PostgreSQL is that replica's executor, at its own address.",
    ),
    case(
        "version",
        "version()",
        "INSERT INTO events (note) VALUES (version())",
        Refused("version()"),
        "Replicas may run different PostgreSQL builds (for example during a rolling upgrade).",
    ),
    case(
        "current-user",
        "current_user, session_user",
        "INSERT INTO events (note) VALUES (current_user)",
        Unchanged(Write),
        "Deterministic because every replica's executor connects as the same role to a database of the same name (a deployment invariant).",
    ),
    case(
        "system-columns",
        "ctid, xmin, xmax, cmin, cmax",
        "DELETE FROM items WHERE ctid = '(0,1)'",
        Refused("ctid"),
        "Physical row positions and transaction ids differ between replicas, even for a literal the client read earlier.",
    ),
    case(
        "relation-size",
        "pg_total_relation_size() and other storage facts",
        "INSERT INTO events (note) VALUES (pg_total_relation_size('items')::text)",
        Refused("pg_total_relation_size()"),
        "Physical storage differs between replicas.",
    ),
    // Row order.
    case(
        "limit-write",
        "LIMIT without ORDER BY in a write",
        "DELETE FROM events WHERE id IN (SELECT id FROM events LIMIT 10)",
        Refused("LIMIT"),
        "Which rows are kept depends on physical order, which differs between replicas.",
    ),
    case(
        "limit-ordered-write",
        "LIMIT with ORDER BY in a write",
        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 10)",
        Unchanged(Write),
        "Deterministic when the ORDER BY is total (includes a unique key); Barista cannot check uniqueness without the catalog.",
    ),
    case(
        "fetch-first-write",
        "FETCH FIRST / OFFSET without ORDER BY in a write",
        "UPDATE items SET price = 0 WHERE id = (SELECT id FROM items FETCH FIRST 1 ROW ONLY)",
        Refused("LIMIT/OFFSET/FETCH"),
        "Same as LIMIT.",
    ),
    case(
        "limit-read",
        "LIMIT without ORDER BY in a read",
        "SELECT id FROM items LIMIT 5",
        Unchanged(ReadOnly),
        READ_OK,
    ),
    case(
        "limit-in-exists",
        "LIMIT inside EXISTS",
        "DELETE FROM items WHERE EXISTS (SELECT 1 FROM events LIMIT 1)",
        Unchanged(Write),
        "LIMIT cannot change whether a row exists.",
    ),
    case(
        "insert-select-unordered",
        "INSERT ... SELECT without ORDER BY",
        "INSERT INTO events (kind, note) SELECT 'copy', name FROM items",
        Refused("INSERT ... SELECT without ORDER BY"),
        "Rows would be inserted in physical order, so serial ids, ON CONFLICT winners and trigger order would differ.",
    ),
    case(
        "insert-select-series",
        "INSERT ... SELECT from generate_series alone",
        "INSERT INTO events (kind, note) SELECT 'series', 'row ' || g FROM generate_series(1, 3) AS g WHERE g > 1",
        Unchanged(Write),
        "A series is returned in order on every replica (pgbench -i -I G loads this way).",
    ),
    case(
        "insert-select-series-joined",
        "INSERT ... SELECT from generate_series joined to a table",
        "INSERT INTO events (kind, note) SELECT 'copy', name FROM generate_series(1, 2) AS g, items",
        Refused("INSERT ... SELECT without ORDER BY"),
        "The join visits the table in physical order.",
    ),
    case(
        "insert-select-ordered",
        "INSERT ... SELECT with ORDER BY",
        "INSERT INTO events (kind, note) SELECT 'copy', name FROM items ORDER BY id",
        Unchanged(Write),
        "Rows are inserted in a defined order.",
    ),
    case(
        "distinct-on",
        "DISTINCT ON without ORDER BY in a write",
        "UPDATE items SET price = 1 WHERE id IN (SELECT DISTINCT ON (name) id FROM items)",
        Refused("DISTINCT ON"),
        "Which row of each group is kept depends on physical order.",
    ),
    case(
        "string-agg-unordered",
        "string_agg, array_agg, json_agg without ORDER BY in a write",
        "UPDATE events SET note = (SELECT string_agg(name, ',') FROM items) WHERE id = 1",
        Refused("string_agg()"),
        "The aggregate's input order, and so its result, depends on physical order.",
    ),
    case(
        "string-agg-ordered",
        "string_agg with ORDER BY in a write",
        "UPDATE events SET note = (SELECT string_agg(name, ',' ORDER BY name) FROM items) WHERE id = 1",
        Unchanged(Write),
        "Input order is defined.",
    ),
    case(
        "row-number-unordered",
        "row_number() OVER () in a write",
        "UPDATE items SET price = s.n FROM (SELECT id, row_number() OVER () AS n FROM items) s WHERE items.id = s.id",
        Refused("row_number()"),
        "Rows are numbered in physical order.",
    ),
    // Locks.
    case(
        "skip-locked",
        "FOR UPDATE SKIP LOCKED",
        "SELECT id FROM items ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        Refused("SKIP LOCKED"),
        "Which rows are locked at that instant differs between replicas. Barista runs one transaction at a time, so plain FOR UPDATE serves the same purpose.",
    ),
    case(
        "nowait",
        "FOR UPDATE NOWAIT, LOCK ... NOWAIT",
        "SELECT id FROM items WHERE id = 1 FOR UPDATE NOWAIT",
        Refused("NOWAIT"),
        "Whether a lock is free depends on timing (autovacuum takes locks on its own schedule).",
    ),
    case(
        "for-update",
        "FOR UPDATE",
        "SELECT id FROM items WHERE id = 1 FOR UPDATE",
        Unchanged(Write),
        "Row locks are taken in log order on every replica; counted as a write.",
    ),
    case(
        "lock-table",
        "LOCK TABLE",
        "LOCK TABLE items IN EXCLUSIVE MODE",
        Unchanged(Write),
        "Waits (never fails) on every replica; Barista runs one transaction at a time.",
    ),
    case(
        "advisory-session-lock",
        "pg_advisory_lock() and other session-level advisory locks",
        "SELECT pg_advisory_lock(42)",
        Refused("pg_advisory_lock()"),
        SESSION,
    ),
    case(
        "advisory-xact-lock",
        "pg_advisory_xact_lock()",
        "SELECT pg_advisory_xact_lock(42)",
        Unchanged(Write),
        "Released at commit, so a replica that re-applies the transaction takes it again; taken in log order everywhere.",
    ),
    // Sequences.
    case(
        "nextval",
        "nextval(), setval()",
        "INSERT INTO events (id, kind) VALUES (nextval('events_id_seq'), 'x')",
        Unchanged(Write),
        "Statements run one at a time in log order, so every replica draws the same values, rolled-back draws included. Caveat: after a PostgreSQL crash a sequence may skip up to 32 values on that replica (see Open problems).",
    ),
    case(
        "setval",
        "setval()",
        "SELECT setval('ticket_seq', 100)",
        Unchanged(Write),
        "Runs in log order on every replica.",
    ),
    case(
        "serial-column",
        "SERIAL / BIGSERIAL columns",
        "CREATE TABLE tickets (id bigserial PRIMARY KEY, title text)",
        Unchanged(Ddl),
        "A sequence with CACHE 1, drawn in log order.",
    ),
    case(
        "identity-column",
        "GENERATED ... AS IDENTITY",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric)",
        Unchanged(Ddl),
        "Same as SERIAL.",
    ),
    case(
        "sequence-cache",
        "CACHE greater than 1",
        "CREATE SEQUENCE batch_seq CACHE 20",
        Refused("CACHE greater than 1"),
        "Cached values belong to a session; a restarted replica starts a new block and draws different values.",
    ),
    case(
        "nextval-update",
        "nextval() in UPDATE",
        "UPDATE items SET price = nextval('ticket_seq')",
        Refused("nextval()"),
        "UPDATE visits rows in physical order, so different rows would get different values.",
    ),
    case(
        "nextval-unordered-select",
        "nextval() in a SELECT without ORDER BY",
        "SELECT nextval('ticket_seq'), id FROM items",
        Refused("nextval()"),
        "Values are drawn in physical row order.",
    ),
    case(
        "currval",
        "currval(), lastval() in a write",
        "INSERT INTO events (note) VALUES (currval('ticket_seq')::text)",
        Refused("currval()"),
        "Reads session state that a restarted replica does not have. Use INSERT ... RETURNING.",
    ),
    case(
        "add-column-serial",
        "ADD COLUMN with serial, identity or nextval() default",
        "ALTER TABLE items ADD COLUMN seq bigserial",
        Refused("ADD COLUMN"),
        "PostgreSQL numbers existing rows in physical order.",
    ),
    // Session state.
    case("set-session", "SET (session level)", "SET search_path = app, public", Refused("session-level SET"), SESSION),
    case("set-time-zone", "SET TIME ZONE", "SET TIME ZONE 'UTC'", Refused("session-level SET"), SESSION),
    case(
        "set-local",
        "SET LOCAL",
        "SET LOCAL search_path = app, public",
        Unchanged(Transaction),
        "Ends with the transaction, which a restarted replica re-applies whole. Barista's own tables are schema-qualified, so search_path cannot hide them.",
    ),
    case(
        "set-local-timeout",
        "statement_timeout, lock_timeout (even SET LOCAL)",
        "SET LOCAL statement_timeout = '5s'",
        Refused("statement_timeout"),
        "Whether a statement times out depends on each replica's speed.",
    ),
    case(
        "set-transaction-read-only",
        "SET TRANSACTION READ ONLY, transaction_read_only",
        "SET TRANSACTION READ ONLY",
        Refused("SET TRANSACTION READ ONLY"),
        "Barista records each statement's outcome in the same transaction; a read-only transaction would make that record fail on every replica and stop the cluster.",
    ),
    case(
        "set-config-read-only",
        "set_config('transaction_read_only', ...)",
        "SELECT set_config('transaction_read_only', 'on', true)",
        Refused("transaction_read_only"),
        "The same, through set_config.",
    ),
    case(
        "set-local-role",
        "SET LOCAL ROLE, set_config('role', ...)",
        "SET LOCAL ROLE postgres",
        Refused("SET LOCAL ROLE"),
        "Barista's record of the statement runs as the connecting role in the same transaction; under another role it could fail on every replica and stop the cluster. Grant the connecting role what it needs.",
    ),
    case(
        "set-pinned-timestamp",
        "barista.* settings",
        "SET LOCAL barista.txn_timestamp = '2000-01-01'",
        Refused("barista.txn_timestamp"),
        "Barista's own setting: the pinned transaction timestamp.",
    ),
    case(
        "set-transaction",
        "SET TRANSACTION",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        Unchanged(Transaction),
        "Transaction-scoped; with one transaction at a time, every level behaves the same on every replica.",
    ),
    case(
        "set-config-session",
        "set_config(..., false)",
        "SELECT set_config('search_path', 'app', false)",
        Refused("set_config(..., false)"),
        SESSION,
    ),
    case(
        "set-config-local",
        "set_config(..., true)",
        "SELECT set_config('search_path', 'app', true)",
        Unchanged(Write),
        "Same as SET LOCAL.",
    ),
    case("reset", "RESET", "RESET ALL", Refused("RESET"), SESSION),
    case("discard", "DISCARD", "DISCARD ALL", Refused("DISCARD"), SESSION),
    case(
        "prepare",
        "PREPARE",
        "PREPARE get_item (bigint) AS SELECT name FROM items WHERE id = $1",
        Refused("PREPARE"),
        SESSION,
    ),
    case("execute", "EXECUTE", "EXECUTE get_item(1)", Refused("EXECUTE"), SESSION),
    case("deallocate", "DEALLOCATE", "DEALLOCATE get_item", Refused("DEALLOCATE"), SESSION),
    case(
        "listen",
        "LISTEN, UNLISTEN",
        "LISTEN item_changes",
        Refused("LISTEN"),
        "Listeners live in a session and would hear whichever replica they connect to. Poll a table through Barista.",
    ),
    case(
        "notify",
        "NOTIFY",
        "NOTIFY item_changes, 'id=1'",
        Refused("NOTIFY"),
        "Every replica would notify its own listeners. Use an outbox table.",
    ),
    case(
        "pg-notify",
        "pg_notify()",
        "SELECT pg_notify('item_changes', 'id=1')",
        Refused("pg_notify()"),
        "Same as NOTIFY.",
    ),
    case(
        "temp-table",
        "CREATE TEMPORARY TABLE",
        "CREATE TEMP TABLE scratch (id bigint)",
        Refused("CREATE TEMPORARY TABLE"),
        SESSION,
    ),
    case(
        "temp-table-on-commit-drop",
        "CREATE TEMPORARY TABLE ... ON COMMIT DROP",
        "CREATE TEMP TABLE scratch (id bigint) ON COMMIT DROP",
        Unchanged(Ddl),
        "Lives only as long as its transaction, which a restarted replica re-applies whole.",
    ),
    case(
        "select-into-temp",
        "SELECT ... INTO TEMPORARY",
        "SELECT id INTO TEMP scratch FROM items",
        Refused("INTO TEMPORARY"),
        SESSION,
    ),
    case(
        "temp-view",
        "CREATE TEMPORARY VIEW / SEQUENCE",
        "CREATE TEMP VIEW cheap AS SELECT id FROM items WHERE price < 1",
        Refused("CREATE TEMPORARY VIEW"),
        SESSION,
    ),
    case(
        "cursor-with-hold",
        "DECLARE ... WITH HOLD",
        "DECLARE c CURSOR WITH HOLD FOR SELECT id FROM items ORDER BY id",
        Refused("WITH HOLD"),
        SESSION,
    ),
    case(
        "cursor",
        "DECLARE CURSOR (in a transaction)",
        "DECLARE c CURSOR FOR SELECT id FROM items ORDER BY id",
        Unchanged(Write),
        "Transaction-scoped; FETCH moves it on every replica, so cursor statements count as writes.",
    ),
    case(
        "unlogged-table",
        "CREATE UNLOGGED TABLE",
        "CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text)",
        Refused("UNLOGGED"),
        "PostgreSQL empties unlogged tables after a crash, on the crashed replica only.",
    ),
    // Files and other servers.
    case(
        "copy-stdin",
        "COPY ... FROM STDIN",
        "COPY items FROM STDIN",
        Refused("COPY ... FROM STDIN"),
        "The rows would travel outside the statement, so not through the log. Use batched INSERT ... VALUES; the PostgreSQL port does that for a client's COPY FROM STDIN (the rows arrive as INSERTs of literals).",
    ),
    case(
        "copy-file",
        "COPY to or from a file",
        "COPY items TO '/tmp/items.csv'",
        Refused("COPY with a file"),
        "Each replica's own disk.",
    ),
    case(
        "copy-program",
        "COPY ... PROGRAM",
        "COPY items FROM PROGRAM 'cat /tmp/items.csv'",
        Refused("COPY ... PROGRAM"),
        "Each replica would run the program.",
    ),
    case(
        "large-objects",
        "lo_import() and other large-object functions",
        "SELECT lo_import('/etc/hosts')",
        Refused("lo_import()"),
        "Large objects are identified by OIDs each server assigns itself. Use bytea.",
    ),
    case(
        "read-file",
        "pg_read_file() in a write",
        "INSERT INTO events (note) VALUES (pg_read_file('/etc/hostname'))",
        Refused("pg_read_file()"),
        "Each replica's own files.",
    ),
    case(
        "foreign-server",
        "CREATE SERVER, foreign tables",
        "CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw",
        Refused("foreign data"),
        "Foreign data lives outside the replicated databases.",
    ),
    // Maintenance and administration.
    case(
        "vacuum",
        "VACUUM",
        "VACUUM items",
        Unchanged(Maintenance),
        "Changes no logical data, and running it again changes nothing: sent on its own, every replica runs it outside a transaction (PostgreSQL refuses VACUUM in one) and records the outcome after; a crash in between runs it again. Inside a transaction PostgreSQL refuses it (25001), on every replica alike.",
    ),
    case(
        "vacuum-analyze",
        "VACUUM ANALYZE, VACUUM (options)",
        "VACUUM ANALYZE items",
        Unchanged(Maintenance),
        "PostgreSQL's grammar, recognised from the tokens (sqlparser does not parse it); pgbench -i runs it.",
    ),
    case(
        "vacuum-other",
        "VACUUM with anything but options and tables",
        "VACUUM items; DELETE FROM items",
        Refused("this form of VACUUM"),
        "Only PostgreSQL's VACUUM shape, alone in its statement, is exempt from the expression checks.",
    ),
    case(
        "analyze",
        "ANALYZE",
        "ANALYZE items",
        Unchanged(Maintenance),
        "Changes only planner statistics (sampled differently per replica, as autovacuum's are anyway); plans then differ, which only matters for row order, which the ordering rules above already handle. Runs outside a transaction like VACUUM, or inside the client's.",
    ),
    case(
        "create-index-concurrently",
        "CREATE INDEX CONCURRENTLY",
        "CREATE INDEX CONCURRENTLY items_name ON items (name)",
        Refused("CONCURRENTLY"),
        "Cannot run inside the executor's transaction. Use CREATE INDEX.",
    ),
    case(
        "create-index",
        "CREATE INDEX",
        "CREATE INDEX items_name ON items (name)",
        Unchanged(Ddl),
        "Transactional DDL.",
    ),
    case(
        "create-database",
        "CREATE DATABASE, DROP DATABASE",
        "CREATE DATABASE other",
        Refused("CREATE DATABASE"),
        "Cannot run in a transaction; databases are managed per replica.",
    ),
    case(
        "alter-system",
        "ALTER SYSTEM",
        "ALTER SYSTEM SET work_mem = '64MB'",
        Refused("ALTER SYSTEM"),
        "One server's configuration file.",
    ),
    case(
        "checkpoint",
        "CHECKPOINT, CLUSTER, REINDEX",
        "CHECKPOINT",
        Refused("CHECKPOINT"),
        "Physical maintenance of one server.",
    ),
    case(
        "terminate-backend",
        "pg_terminate_backend() and other administration functions",
        "SELECT pg_terminate_backend(12345)",
        Refused("pg_terminate_backend()"),
        "Administers one server.",
    ),
    case(
        "pg-sleep",
        "pg_sleep()",
        "SELECT pg_sleep(1)",
        Refused("pg_sleep()"),
        "Deterministic, but stalls the replicated log for every client.",
    ),
    case(
        "alter-role-set",
        "ALTER ROLE ... SET",
        "ALTER ROLE app SET search_path = app",
        Refused("ALTER ROLE ... SET"),
        "Reaches sessions opened after it, and replicas open sessions at different times.",
    ),
    // Code.
    case(
        "do-block",
        "DO blocks",
        "DO $$ BEGIN PERFORM 1; END $$",
        Refused("DO block"),
        "Anonymous code Barista does not check; create a checked function instead.",
    ),
    case(
        "sql-function",
        "CREATE FUNCTION ... LANGUAGE sql",
        "CREATE FUNCTION item_label(i items) RETURNS text LANGUAGE sql AS $$ SELECT concat(i.name, ' #', i.id) $$",
        Unchanged(Ddl),
        "The body is parsed and checked now, with no read-only exemptions, since calls may come from writes.",
    ),
    case(
        "sql-function-random",
        "volatile LANGUAGE sql body",
        "CREATE FUNCTION pick() RETURNS float8 LANGUAGE sql AS $$ SELECT random() $$",
        Refused("random()"),
        "Refused at definition, so every call site calls a checked body.",
    ),
    case(
        "plpgsql-random",
        "volatile plpgsql body",
        "CREATE FUNCTION jitter() RETURNS float8 LANGUAGE plpgsql AS $$ BEGIN RETURN random(); END $$",
        Refused("random()"),
        "plpgsql bodies are checked token by token for refused functions and statements.",
    ),
    case(
        "plpgsql-dynamic-sql",
        "EXECUTE (dynamic SQL) in plpgsql",
        "CREATE FUNCTION purge(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DELETE FROM %I', t); END $$",
        Refused("dynamic SQL"),
        "SQL built at run time cannot be checked.",
    ),
    case(
        "other-language",
        "functions in other languages",
        "CREATE FUNCTION py() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$",
        Refused("function py in LANGUAGE plpython3u"),
        "Barista reads SQL and plpgsql only.",
    ),
    case(
        "view-random",
        "random(), LIMIT without ORDER BY ... in a view",
        "CREATE VIEW sample_items AS SELECT id FROM items ORDER BY random() LIMIT 5",
        Refused("random()"),
        "Views, like function bodies, are checked where they are defined: a write that reads the view later cannot see what is inside it.",
    ),
    case(
        "user-function-call",
        "calls to user functions",
        "SELECT item_label(items) FROM items",
        Unchanged(Write),
        "Allowed: bodies were checked when created. A call might write, so the statement counts as a write. Functions created outside Barista are not checked (see Open problems).",
    ),
    case(
        "create-trigger",
        "CREATE TRIGGER",
        "CREATE TRIGGER events_touch BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION touch()",
        Unchanged(Ddl),
        "The function it runs was checked when created.",
    ),
    case(
        "create-extension",
        "CREATE EXTENSION",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        Unchanged(Ddl),
        "Allowed; its replica-dependent functions (gen_random_bytes, uuid_generate_v4, ...) are refused by name wherever they are called.",
    ),
    // Transactions and statement shape.
    case(
        "begin-commit",
        "BEGIN, COMMIT, ROLLBACK",
        "BEGIN",
        Refused("transaction control"),
        "The client API has begin(), commit() and rollback(), which go through the log as their own entries.",
    ),
    case(
        "savepoint",
        "SAVEPOINT, RELEASE",
        "SAVEPOINT before_update",
        Unchanged(Transaction),
        "Inside a transaction, deterministic.",
    ),
    case(
        "rollback-to-savepoint",
        "ROLLBACK TO SAVEPOINT",
        "ROLLBACK TO SAVEPOINT before_update",
        Unchanged(Transaction),
        "Inside a transaction, deterministic.",
    ),
    case(
        "two-phase-commit",
        "PREPARE TRANSACTION, COMMIT PREPARED",
        "PREPARE TRANSACTION 'tx1'",
        Refused("two-phase commit"),
        "Barista commits through its log.",
    ),
    case(
        "multiple-statements",
        "several statements in one string",
        "SELECT 1; SELECT 2",
        Refused("several statements"),
        "One execute call is one statement with one result. Send a batch for several.",
    ),
    case(
        "trailing-semicolon",
        "one statement with a trailing semicolon",
        "SELECT name FROM items WHERE id = 1;",
        Unchanged(ReadOnly),
        "One statement.",
    ),
    case(
        "empty",
        "an empty string or only comments",
        "-- nothing",
        Refused("empty statement"),
        "Nothing to replicate.",
    ),
    case(
        "unparseable",
        "statements sqlparser cannot parse",
        "ALTER SEQUENCE ticket_seq RESTART",
        Refused("could not parse"),
        "Valid PostgreSQL that sqlparser 0.64 does not parse is refused: what Barista cannot read it cannot check.",
    ),
    case(
        "explain",
        "EXPLAIN",
        "EXPLAIN SELECT * FROM items",
        Unchanged(ReadOnly),
        "Plans may differ between replicas; only the serving replica's reaches the client.",
    ),
    case(
        "explain-analyze",
        "EXPLAIN ANALYZE of a write",
        "EXPLAIN ANALYZE DELETE FROM events WHERE id = 1",
        Unchanged(Write),
        "Executes the statement, so it is checked and classified as the statement itself.",
    ),
    case(
        "data-modifying-cte",
        "WITH ... (DELETE ... RETURNING) SELECT",
        "WITH gone AS (DELETE FROM events WHERE id = 1 RETURNING id) SELECT count(*) FROM gone",
        Unchanged(Write),
        "A SELECT that writes is a write.",
    ),
    case(
        "truncate",
        "TRUNCATE",
        "TRUNCATE events RESTART IDENTITY",
        Unchanged(Write),
        "Deterministic, sequences included.",
    ),
    case(
        "merge",
        "MERGE",
        "MERGE INTO items t USING events s ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.kind",
        Unchanged(Write),
        "Deterministic when each target row matches at most one source row (PostgreSQL raises an error otherwise).",
    ),
    case("show", "SHOW", "SHOW search_path", Unchanged(ReadOnly), "Settings are equal on every replica."),
];

/// The policy table of `docs/determinism.md`, generated from [`CASES`].
pub fn policy_table_markdown() -> String {
    let mut table = String::from("| Construct | Example | Barista | Why | Case |\n| --- | --- | --- | --- | --- |\n");
    for case in CASES {
        let action = match case.expect {
            Expect::Unchanged(kind) => format!("allow ({})", kind_name(kind)),
            Expect::Rewritten(kind, sql) => format!("rewrite ({}) to `{}`", kind_name(kind), cell(sql)),
            Expect::Refused(_) => "refuse".to_string(),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "| {} | `{}` | {} | {} | `{}` |",
            cell(case.construct),
            cell(case.sql),
            action,
            cell(case.why),
            case.id
        );
    }
    table
}

fn kind_name(kind: StatementKind) -> &'static str {
    match kind {
        StatementKind::ReadOnly => "read-only",
        StatementKind::Write => "write",
        StatementKind::Ddl => "DDL",
        StatementKind::Transaction => "transaction",
        StatementKind::Maintenance => "maintenance",
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
