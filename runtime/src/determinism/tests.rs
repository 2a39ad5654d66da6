//! Tests of the whole checker: every documented case, the documentation itself, and properties
//! (idempotence, byte-for-byte round trips, no panics) over generated statements.

use super::*;
use proptest::prelude::*;

fn at(unix_us: i64) -> TxnTimestamp {
    TxnTimestamp::from_unix_micros(unix_us).expect("in range")
}

fn case_timestamp() -> TxnTimestamp {
    at(CASE_TIMESTAMP_US)
}

/// Every row of the policy table behaves as documented.
#[test]
fn every_case_behaves_as_documented() {
    let mut failures = Vec::new();
    for case in CASES {
        let got = check(case.sql, case_timestamp());
        let ok = match (case.expect, &got) {
            (Expect::Unchanged(kind), Ok(checked)) => checked.kind == kind && checked.verdict == Verdict::Deterministic,
            (Expect::Rewritten(kind, sql), Ok(checked)) => {
                checked.kind == kind && checked.verdict == Verdict::Rewritten { sql: sql.to_string() }
            }
            (Expect::Refused(construct), Err(refusal)) => refusal.construct.contains(construct),
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: {}\n    expected {:?}\n    got      {:?}", case.id, case.sql, case.expect, got));
        }
    }
    assert!(failures.is_empty(), "{} case(s) differ from the policy table:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn case_ids_are_unique_and_there_are_enough_constructs() {
    let mut ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "duplicate case id");
    assert!(CASES.len() >= 25, "issue 7 asks for at least 25 constructs");
}

#[test]
fn fixture_statements_are_accepted_unchanged() {
    for sql in FIXTURE {
        let checked = check(sql, case_timestamp()).unwrap_or_else(|r| panic!("{sql}: {r}"));
        assert_eq!(checked.verdict, Verdict::Deterministic, "{sql}");
        assert_eq!(checked.kind, StatementKind::Ddl, "{sql}");
    }
}

/// What psql 15 sends for `\d t` (abridged to the queries that call catalog functions): reads,
/// accepted unchanged, so that psql works through Barista's PostgreSQL port.
#[test]
fn psql_describe_queries_are_accepted() {
    let queries = [
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), \
         (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d \
         WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull \
         FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16385' AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
        "SELECT c2.relname, i.indisprimary, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), \
         pg_catalog.pg_get_constraintdef(con.oid, true) FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, \
         pg_catalog.pg_index i LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND \
         conindid = i.indexrelid) WHERE c.oid = '16385' AND c.oid = i.indrelid AND i.indexrelid = c2.oid \
         ORDER BY i.indisprimary DESC, c2.relname",
        "SELECT pubname, NULL, NULL FROM pg_catalog.pg_publication p \
         JOIN pg_catalog.pg_publication_namespace pn ON p.oid = pn.pnpubid \
         JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.pnnspid \
         WHERE pc.oid = '16385' AND pg_catalog.pg_relation_is_publishable('16385') \
         UNION SELECT pubname, pg_get_expr(pr.prqual, c.oid), (CASE WHEN pr.prattrs IS NOT NULL THEN \
         (SELECT string_agg(attname, ', ') FROM pg_catalog.generate_series(0, \
         pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s, pg_catalog.pg_attribute \
         WHERE attrelid = pr.prrelid AND attnum = prattrs[s]) ELSE NULL END) \
         FROM pg_catalog.pg_publication p JOIN pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid \
         JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid WHERE pr.prrelid = '16385' \
         UNION SELECT pubname, NULL, NULL FROM pg_catalog.pg_publication p \
         WHERE p.puballtables AND pg_catalog.pg_relation_is_publishable('16385') ORDER BY 1",
    ];
    for sql in queries {
        let checked = check(sql, case_timestamp()).unwrap_or_else(|r| panic!("{sql}: {r}"));
        assert_eq!(checked.verdict, Verdict::Deterministic, "{sql}");
        assert_eq!(checked.kind, StatementKind::ReadOnly, "{sql}");
    }
}

/// `docs/determinism.md` contains exactly the table generated from [`CASES`]. Run with
/// `BARISTA_UPDATE_DOCS=1` to regenerate it after changing the cases.
#[test]
fn docs_table_matches_the_cases() {
    const BEGIN: &str = "<!-- BEGIN GENERATED POLICY TABLE: edit runtime/src/determinism/cases.rs, then run BARISTA_UPDATE_DOCS=1 cargo test -p barista-runtime determinism -->\n";
    const END: &str = "<!-- END GENERATED POLICY TABLE -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/determinism.md");
    let doc = std::fs::read_to_string(&path).expect("docs/determinism.md exists");
    let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = doc.find(END).expect("end marker");
    let table = policy_table_markdown();
    if std::env::var_os("BARISTA_UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(&path, updated).expect("docs/determinism.md is writable");
        return;
    }
    assert!(
        doc[start..end] == table,
        "docs/determinism.md is stale: run BARISTA_UPDATE_DOCS=1 cargo test -p barista-runtime determinism"
    );
}

/// Rewriting a rewrite changes nothing, for every accepted case and any timestamp.
#[test]
fn rewriting_the_cases_is_idempotent() {
    for case in CASES {
        let Ok(first) = check(case.sql, case_timestamp()) else { continue };
        let sql = first.sql(case.sql);
        let second = check(sql, at(0)).unwrap_or_else(|r| panic!("{}: rewrite refused: {r}", case.id));
        assert_eq!(second.verdict, Verdict::Deterministic, "{}", case.id);
        assert_eq!(second.kind, first.kind, "{}", case.id);
    }
}

#[test]
fn accepted_statements_reach_postgresql_byte_for_byte() {
    let sql = "SELECT  id ,\n\t\"Name\" /* keep */ FROM items WHERE name = E'a\\'b' -- end";
    let checked = check(sql, case_timestamp()).expect("accepted");
    assert_eq!(checked.verdict, Verdict::Deterministic);
    assert!(std::ptr::eq(checked.sql(sql), sql));
}

#[test]
fn rewrites_keep_everything_else_byte_for_byte() {
    let sql = "UPDATE items\n   SET created_at = NOW ( /* c */ ) , name = 'now()' -- now()\n WHERE id = 1";
    let checked = check(sql, case_timestamp()).expect("accepted");
    assert_eq!(
        checked.sql(sql),
        "UPDATE items\n   SET created_at = '2026-11-25 14:50:00.123456+00'::timestamptz , name = 'now()' -- now()\n WHERE id = 1"
    );
}

#[test]
fn rewrites_work_after_multibyte_text() {
    let sql = "INSERT INTO events (note, at) VALUES ('☕ été', now())";
    let checked = check(sql, case_timestamp()).expect("accepted");
    assert_eq!(
        checked.sql(sql),
        "INSERT INTO events (note, at) VALUES ('☕ été', '2026-11-25 14:50:00.123456+00'::timestamptz)"
    );
}

#[test]
fn many_time_functions_in_one_bulk_insert() {
    let rows: Vec<String> = (0..2_000).map(|i| format!("({i}, now())")).collect();
    let sql = format!("INSERT INTO events (id, at) VALUES {}", rows.join(", "));
    let checked = check(&sql, case_timestamp()).expect("bulk insert accepted");
    let out = checked.sql(&sql);
    assert_eq!(out.matches("'2026-11-25 14:50:00.123456+00'::timestamptz").count(), 2_000);
    assert!(!out.contains("now()"));
}

#[test]
fn deep_expression_chains_are_refused_not_crashed() {
    // Runs on the test harness's 2 MiB thread: a parse of this would overflow it when dropped.
    let sql = format!("SELECT 1{}", "+1".repeat(100_000));
    let refusal = check(&sql, case_timestamp()).expect_err("refused");
    assert!(refusal.construct.contains("too long"), "{refusal}");
    let ors = (0..5_000).map(|i| format!("id = {i}")).collect::<Vec<_>>().join(" OR ");
    assert!(check(&format!("SELECT 1 FROM items WHERE {ors}"), case_timestamp()).is_err());
    let list = (0..50_000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let long_list = format!("SELECT 1 FROM items WHERE id IN ({list})");
    assert!(check(&long_list, case_timestamp()).is_ok(), "long lists are fine");
}

#[test]
fn deeply_nested_parentheses_are_refused() {
    let sql = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(check(&sql, case_timestamp()).is_err());
}

#[test]
fn reads_with_user_functions_are_writes_so_random_is_refused_there() {
    let refusal = check("SELECT random(), audit_touch()", case_timestamp()).expect_err("refused");
    assert!(refusal.construct.contains("random()"), "{refusal}");
}

#[test]
fn statement_error_text_names_construct_and_advice() {
    let refusal = check("INSERT INTO items VALUES (1, 'a', random())", case_timestamp()).expect_err("refused");
    let text = refusal.to_string();
    assert!(text.starts_with("Barista refuses random() in a statement that writes: "), "{text}");
    assert!(text.contains("client"), "{text}");
}

#[test]
fn pinned_setting_cannot_be_set_through_set_config() {
    let refusal =
        check("SELECT set_config('barista.txn_timestamp', 'x', true)", case_timestamp()).expect_err("refused");
    assert!(refusal.construct.contains("barista.txn_timestamp"), "{refusal}");
}

#[test]
fn nested_rule_actions_are_checked() {
    let refusal = check("CREATE RULE r AS ON INSERT TO items DO ALSO NOTIFY item_changes", case_timestamp())
        .expect_err("refused");
    assert!(refusal.construct.contains("NOTIFY"), "{refusal}");
}

#[test]
fn single_quoted_bodies_are_checked_but_not_rewritten() {
    let ok = "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'";
    assert_eq!(check(ok, case_timestamp()).expect("accepted").verdict, Verdict::Deterministic);
    let random = "CREATE FUNCTION r() RETURNS float8 LANGUAGE sql AS 'SELECT random()'";
    assert!(check(random, case_timestamp()).is_err());
    let time = "CREATE FUNCTION t() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'";
    let refusal = check(time, case_timestamp()).expect_err("refused");
    assert!(refusal.construct.contains("single-quoted"), "{refusal}");
}

#[test]
fn tagged_dollar_quotes_are_rewritten_inside() {
    let sql = "CREATE FUNCTION t() RETURNS timestamptz LANGUAGE sql AS $body$ SELECT now() $body$";
    assert_eq!(
        check(sql, case_timestamp()).expect("accepted").sql(sql),
        "CREATE FUNCTION t() RETURNS timestamptz LANGUAGE sql AS $body$ SELECT current_setting('barista.txn_timestamp')::timestamptz AS \"now\" $body$"
    );
}

#[test]
fn plpgsql_keyword_time_forms_and_session_set_are_handled() {
    let sql = "CREATE FUNCTION f() RETURNS date LANGUAGE plpgsql AS $$ BEGIN RETURN CURRENT_DATE; END $$";
    assert_eq!(
        check(sql, case_timestamp()).expect("accepted").sql(sql),
        "CREATE FUNCTION f() RETURNS date LANGUAGE plpgsql AS $$ BEGIN RETURN current_setting('barista.txn_timestamp')::timestamptz::date; END $$"
    );
    let set = "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET search_path = x; END $$";
    assert!(check(set, case_timestamp()).expect_err("refused").construct.contains("SET"));
    let update = "CREATE FUNCTION h() RETURNS void LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET price = 1; SET LOCAL search_path = x; END $$";
    assert!(check(update, case_timestamp()).is_ok());
}

#[test]
fn named_windows_count_as_ordered_when_their_definition_is() {
    let ordered = "UPDATE items SET price = s.n FROM (SELECT id, row_number() OVER w AS n FROM items \
                   WINDOW w AS (ORDER BY id)) s WHERE items.id = s.id";
    assert_eq!(check(ordered, case_timestamp()).expect("accepted").kind, StatementKind::Write);
    let unordered = "UPDATE items SET price = s.n FROM (SELECT id, row_number() OVER w AS n FROM items \
                     WINDOW w AS (PARTITION BY name)) s WHERE items.id = s.id";
    assert!(check(unordered, case_timestamp()).is_err());
}

#[test]
fn timestamps_render_into_the_rewrite() {
    let sql = "SELECT now() AS t";
    let checked = check(sql, at(0)).expect("accepted");
    assert_eq!(checked.sql(sql), "SELECT '1970-01-01 00:00:00.000000+00'::timestamptz AS t");
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// A fragment of a generated statement: its text, and what the rewrite must turn it into
/// (`None`: unchanged).
#[derive(Clone, Debug)]
struct Piece {
    text: String,
    rewritten: Option<String>,
}

fn literal(ts: TxnTimestamp) -> String {
    format!("'{}'::timestamptz", ts.to_postgres_text())
}

/// Values usable in a WHERE comparison or with an alias: time functions in many spellings and
/// harmless look-alikes (strings, comments, identifiers).
fn value_piece(ts: TxnTimestamp) -> impl Strategy<Value = Piece> {
    let lit = literal(ts);
    let time: Vec<(&'static str, String)> = vec![
        ("now()", lit.clone()),
        ("NOW()", lit.clone()),
        ("now ( )", lit.clone()),
        ("now(/* x */)", lit.clone()),
        ("pg_catalog.now()", lit.clone()),
        ("PG_CATALOG . NOW ()", lit.clone()),
        ("\"now\"()", lit.clone()),
        ("transaction_timestamp()", lit.clone()),
        ("CURRENT_TIMESTAMP", lit.clone()),
        ("current_timestamp(2)", format!("{lit}(2)")),
        ("Current_Date", format!("{lit}::date")),
        ("CURRENT_TIME (6)", format!("{lit}::timetz(6)")),
        ("LOCALTIMESTAMP", format!("{lit}::timestamp")),
        ("localtime(0)", format!("{lit}::time(0)")),
    ];
    let plain = vec![
        "'now()'",
        "'CURRENT_DATE'",
        "created_at",
        "\"now\"",
        "price",
        "1",
        "$1",
        "E'now\\'s'",
        "$$now()$$",
        "interval '1 day'",
        "'2026-01-01'::date",
        "lower(name)",
        "coalesce(created_at, created_at)",
    ];
    prop_oneof![
        proptest::sample::select(time)
            .prop_map(|(text, rewritten)| Piece { text: text.into(), rewritten: Some(rewritten) }),
        proptest::sample::select(plain).prop_map(|text| Piece { text: text.into(), rewritten: None }),
    ]
}

fn spacing() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![" ", "  ", "\n", "\t", " /* now() */ ", " -- now()\n", "\r\n "])
        .prop_map(String::from)
}

/// `SELECT v0 AS c0, ... FROM items WHERE created_at < w0 AND ...`, with the expected rewrite.
fn generated_statement() -> impl Strategy<Value = (TxnTimestamp, String, String)> {
    (TxnTimestamp::MIN_UNIX_US..=TxnTimestamp::MAX_UNIX_US)
        .prop_flat_map(|us| {
            let ts = at(us);
            (
                Just(ts),
                proptest::collection::vec((value_piece(ts), spacing()), 1..6),
                proptest::collection::vec((value_piece(ts), spacing()), 0..4),
            )
        })
        .prop_map(|(ts, items, conditions)| {
            let mut original = String::from("SELECT ");
            let mut expected = String::from("SELECT ");
            for (i, (piece, space)) in items.iter().enumerate() {
                let sep = if i == 0 { String::new() } else { format!(",{space}") };
                original.push_str(&format!("{sep}{} AS c{i}", piece.text));
                expected.push_str(&format!("{sep}{} AS c{i}", piece.rewritten.as_deref().unwrap_or(&piece.text)));
            }
            original.push_str(" FROM items WHERE true");
            expected.push_str(" FROM items WHERE true");
            for (piece, space) in &conditions {
                original.push_str(&format!("{space}AND{space}created_at IS DISTINCT FROM {}", piece.text));
                expected.push_str(&format!(
                    "{space}AND{space}created_at IS DISTINCT FROM {}",
                    piece.rewritten.as_deref().unwrap_or(&piece.text)
                ));
            }
            (ts, original, expected)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The rewrite is exactly the original with each time function replaced; rewriting it
    /// again changes nothing; a statement with nothing to rewrite comes back byte for byte.
    #[test]
    fn rewrite_is_exact_and_idempotent((ts, original, expected) in generated_statement()) {
        let checked = check(&original, ts).map_err(|r| TestCaseError::fail(format!("{original}: {r}")))?;
        prop_assert_eq!(checked.kind, StatementKind::ReadOnly);
        prop_assert_eq!(checked.sql(&original), expected.as_str());
        if original == expected {
            prop_assert_eq!(&checked.verdict, &Verdict::Deterministic);
        }
        let again = check(checked.sql(&original), at(0)).map_err(|r| TestCaseError::fail(format!("{expected}: {r}")))?;
        prop_assert_eq!(again.verdict, Verdict::Deterministic);
    }

    /// Any string at all: a verdict or a refusal, never a panic.
    #[test]
    fn never_panics_on_arbitrary_text(sql in any::<String>()) {
        let _ = check(&sql, at(0));
    }

    /// SQL-shaped noise reaches deeper into the parser and the walk than arbitrary text does.
    #[test]
    fn never_panics_on_sql_shaped_noise(words in proptest::collection::vec(proptest::sample::select(vec![
        "SELECT", "INSERT", "INTO", "UPDATE", "SET", "DELETE", "FROM", "WHERE", "VALUES", "CREATE",
        "TABLE", "FUNCTION", "LANGUAGE", "plpgsql", "sql", "AS", "$$", "$t$", "now()", "now", "(",
        ")", ",", ";", "::", "date", "CURRENT_TIME", "(3)", "'x'", "\"q\"", "1", "LIMIT", "ORDER",
        "BY", "random()", "--", "/*", "*/", "\n", "RETURNING", "CAST", "WITH", "LOCAL", "TEMP",
        "nextval('s')", "OVER", "pg_catalog", ".", "EXECUTE", "BEGIN", "END", "DEFAULT", "é",
    ]), 0..40)) {
        let sql = words.join(" ");
        let _ = check(&sql, at(0));
        let glued: String = words.concat();
        let _ = check(&glued, at(0));
    }

    /// Cutting a case's example anywhere (on a character boundary) never panics.
    #[test]
    fn never_panics_on_truncated_cases(index in 0..CASES.len(), cut in any::<proptest::sample::Index>()) {
        let sql = CASES[index].sql;
        let boundaries: Vec<usize> = sql.char_indices().map(|(i, _)| i).chain([sql.len()]).collect();
        let end = boundaries[cut.index(boundaries.len())];
        let _ = check(&sql[..end], at(0));
        let _ = check(&sql[end..], at(0));
    }
}
