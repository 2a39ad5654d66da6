//! What the PostgreSQL front end needs to know about SQL text before it reaches the service:
//! where one statement of a simple-query string ends, whether a statement is transaction control
//! (which becomes Barista's own `Begin`/`Commit`/`Rollback` commands), and the command tag a
//! PostgreSQL server would send when it completes (`INSERT 0 3`, `CREATE TABLE`, ...).
//!
//! The runtime's results carry the row count but not the tag (`tokio-postgres`, which runs the
//! statements on every replica, does not report the tag text), so the tag is derived here from
//! the statement's leading keywords, as PostgreSQL's own `CreateCommandTag` derives it from the
//! parse tree. Only the lexical structure matters for that, so this is a small lexer (quotes,
//! comments, dollar quotes, parentheses), not a parser: it never fails, and text it cannot make
//! sense of is passed on whole, for the determinism policy to judge.

/// One lexical item at nesting depth 0 that the rules below look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A keyword or unquoted identifier.
    Word(&'a str),
    /// `;` outside parentheses.
    Semicolon,
    /// Anything else (literals, operators, quoted identifiers, parenthesised text).
    Other,
}

/// Lexes `sql`, calling `visit(token, byte_offset)` for every token outside parentheses. Words
/// and semicolons inside parentheses are reported as [`Token::Other`] (a `(SELECT ...)` subquery
/// is not the statement's verb).
fn lex<'a>(sql: &'a str, mut visit: impl FnMut(Token<'a>, usize)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find_from(bytes, i, b"\n").map_or(bytes.len(), |e| e + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // Block comments nest in PostgreSQL.
                let mut nesting = 1;
                i += 2;
                while i < bytes.len() && nesting > 0 {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        nesting += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        nesting -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' => {
                // E'...' strings allow backslash escapes; the E was lexed as a word just before.
                let escapes = start > 0 && matches!(bytes[start - 1], b'e' | b'E') && word_ends_at(bytes, start);
                i = quoted_end(bytes, i, b'\'', escapes);
            }
            b'"' => i = quoted_end(bytes, i, b'"', false),
            b'$' => match dollar_tag(bytes, i) {
                Some(tag_len) => {
                    let tag = &bytes[i..i + tag_len];
                    i = find_from(bytes, i + tag_len, tag).map_or(bytes.len(), |e| e + tag_len);
                }
                None => i += 1,
            },
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b';' => {
                i += 1;
                visit(if depth == 0 { Token::Semicolon } else { Token::Other }, start);
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'$') || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // Words end on character boundaries: they stop at an ASCII byte.
                let word = sql.get(start..i).unwrap_or_default();
                visit(if depth == 0 { Token::Word(word) } else { Token::Other }, start);
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        visit(Token::Other, start);
    }
}

/// Whether the byte before `at` ends a one-letter word (`E'..'`, not `name'..'`).
fn word_ends_at(bytes: &[u8], at: usize) -> bool {
    at < 2 || !(bytes[at - 2].is_ascii_alphanumeric() || matches!(bytes[at - 2], b'_' | b'$'))
}

/// The offset of the first `needle` at or after `from`.
fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The end (one past the closing quote) of the quoted text opening at `open`; a doubled quote is
/// part of the text, and so is a backslash-escaped one in an `E''` string.
fn quoted_end(bytes: &[u8], open: usize, quote: u8, escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The length of the dollar-quote tag (`$$`, `$body$`) opening at `at`, if one does.
fn dollar_tag(bytes: &[u8], at: usize) -> Option<usize> {
    // `$1` is a parameter, and `a$b` an identifier (handled by the word rule).
    let mut i = at + 1;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphabetic()
            || bytes[i] == b'_'
            || bytes[i] >= 0x80
            || (i > at + 1 && bytes[i].is_ascii_digit()))
    {
        i += 1;
    }
    (bytes.get(i) == Some(&b'$')).then_some(i + 1 - at)
}

/// Splits a simple-query string into its statements (without the `;`), dropping empty ones
/// (only white space and comments). Semicolons inside quotes, comments, dollar quotes and
/// parentheses do not split.
pub fn split(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_words = false;
    let mut push = |from: usize, to: usize, has_words: bool| {
        let text = sql[from..to].trim();
        if has_words || !is_blank(text) {
            statements.push(text);
        }
    };
    lex(sql, |token, at| match token {
        Token::Semicolon => {
            push(start, at, has_words);
            start = at + 1;
            has_words = false;
        }
        Token::Word(_) | Token::Other => has_words = true,
    });
    push(start, sql.len(), has_words);
    statements
}

/// True if `sql` holds no statement: only white space and comments.
pub fn is_blank(sql: &str) -> bool {
    let mut blank = true;
    lex(sql, |_, _| blank = false);
    blank
}

/// The first `n` words of the statement at depth 0, upper-cased, stopping at the first token that
/// is not a word.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut done = false;
    lex(sql, |token, _| {
        if done || words.len() >= n {
            return;
        }
        match token {
            Token::Word(w) => words.push(w.to_ascii_uppercase()),
            _ => done = true,
        }
    });
    words
}

/// Every word at depth 0, upper-cased (for the verb after a `WITH` list and `CREATE TABLE AS`).
fn top_words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    lex(sql, |token, _| {
        if let Token::Word(w) = token {
            words.push(w.to_ascii_uppercase());
        }
    });
    words
}

/// A statement as the front end handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `BEGIN` / `START TRANSACTION`, with the transaction modes that followed, if any
    /// (`ISOLATION LEVEL SERIALIZABLE`, `READ ONLY`); they become a `SET TRANSACTION`.
    Begin {
        /// The modes' text, empty for a plain `BEGIN`.
        modes: String,
    },
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT` (not `ROLLBACK TO SAVEPOINT`, which is a statement).
    Rollback,
    /// `DEALLOCATE [PREPARE] name | ALL`: forgets statements prepared through the protocol (they
    /// live in the front end, not in PostgreSQL; drivers such as psycopg deallocate after a
    /// rollback). `None` is `ALL`.
    Deallocate(Option<String>),
    /// `COPY ... FROM STDIN`: the front end reads the rows and sends them as INSERTs (see
    /// `copy`).
    CopyIn,
    /// Any other statement, sent to the replicas as it is.
    Sql(Tag),
}

/// How a statement's completion is reported (PostgreSQL's command tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The tag's words: `INSERT 0`, `UPDATE`, `CREATE TABLE`.
    pub command: String,
    /// Whether the row count follows the words (`UPDATE 3`; not `CREATE TABLE`).
    pub counted: bool,
}

impl Tag {
    fn plain(command: impl Into<String>) -> Tag {
        Tag { command: command.into(), counted: false }
    }

    fn counted(command: impl Into<String>) -> Tag {
        Tag { command: command.into(), counted: true }
    }

    /// The tag as sent, for `rows` rows.
    pub fn text(&self, rows: u64) -> String {
        if self.counted { format!("{} {rows}", self.command) } else { self.command.clone() }
    }
}

/// Words that may come between `CREATE`/`DROP`/`ALTER` and the kind of object.
const OBJECT_MODIFIERS: [&str; 12] = [
    "OR",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "GLOBAL",
    "LOCAL",
    "UNIQUE",
    "TRUSTED",
    "PROCEDURAL",
    "RECURSIVE",
    "CONSTRAINT",
];

/// Kinds of object named by two words.
const TWO_WORD_OBJECTS: [(&str, &str); 10] = [
    ("MATERIALIZED", "VIEW"),
    ("FOREIGN", "TABLE"),
    ("EVENT", "TRIGGER"),
    ("ACCESS", "METHOD"),
    ("USER", "MAPPING"),
    ("OPERATOR", "CLASS"),
    ("OPERATOR", "FAMILY"),
    ("DEFAULT", "PRIVILEGES"),
    ("TEXT", "SEARCH"),
    ("FOREIGN", "DATA"),
];

/// Classifies one statement (as [`split`] returns them).
pub fn classify(sql: &str) -> Action {
    let words = leading_words(sql, 8);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "BEGIN" => Action::Begin { modes: modes_after(sql, &["BEGIN", "WORK", "TRANSACTION"]) },
        "START" if word(1) == "TRANSACTION" => Action::Begin { modes: modes_after(sql, &["START", "TRANSACTION"]) },
        "COMMIT" | "END" if !words.iter().any(|w| w == "AND" || w == "PREPARED") => Action::Commit,
        "ROLLBACK" | "ABORT" if !words.iter().any(|w| w == "TO" || w == "AND" || w == "PREPARED") => Action::Rollback,
        "DEALLOCATE" => Action::Deallocate(deallocated(sql)),
        "COPY" if top_words(sql).windows(2).any(|w| w[0] == "FROM" && w[1] == "STDIN") => Action::CopyIn,
        _ => Action::Sql(tag(sql, &words)),
    }
}

/// The statement name of a `DEALLOCATE` (folded to lower case unless quoted); `None` for `ALL`.
fn deallocated(sql: &str) -> Option<String> {
    let rest = modes_after(sql, &["DEALLOCATE", "PREPARE"]);
    let rest = rest.trim_end_matches(';').trim();
    match rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(quoted) => Some(quoted.replace("\"\"", "\"")),
        None if rest.eq_ignore_ascii_case("ALL") => None,
        None => Some(rest.to_lowercase()),
    }
}

/// The text after the leading `keywords` (each optional, in order): a BEGIN's transaction modes.
fn modes_after(sql: &str, keywords: &[&str]) -> String {
    let mut rest = 0;
    let mut next = 0;
    let mut done = false;
    lex(sql, |token, at| {
        if done {
            return;
        }
        match token {
            Token::Word(w) => {
                if let Some(k) = keywords[next..].iter().position(|k| w.eq_ignore_ascii_case(k)) {
                    next += k + 1;
                    rest = at + w.len();
                    return;
                }
                done = true;
            }
            _ => done = true,
        }
    });
    sql[rest..].trim().to_owned()
}

fn tag(sql: &str, words: &[String]) -> Tag {
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match word(0) {
        "SELECT" | "VALUES" | "TABLE" => Tag::counted("SELECT"),
        "WITH" => dml_tag(after_with(sql).as_deref().unwrap_or("SELECT")),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY" => dml_tag(word(0)),
        "CREATE" if is_create_as(sql) => Tag::counted("SELECT"),
        "CREATE" | "DROP" | "ALTER" => {
            let mut rest = words[1..].iter().map(String::as_str).skip_while(|w| OBJECT_MODIFIERS.contains(w));
            let object = match (rest.next(), rest.next()) {
                (Some(a), Some(b)) if TWO_WORD_OBJECTS.contains(&(a, b)) => format!("{a} {b}"),
                (Some("USER"), _) if word(0) != "ALTER" || word(1) == "USER" => "ROLE".to_owned(),
                (Some(a), _) => a.to_owned(),
                (None, _) => String::new(),
            };
            Tag::plain(format!("{} {object}", word(0)).trim_end().to_owned())
        }
        "TRUNCATE" => Tag::plain("TRUNCATE TABLE"),
        "LOCK" => Tag::plain("LOCK TABLE"),
        "DECLARE" => Tag::plain("DECLARE CURSOR"),
        "CLOSE" => Tag::plain("CLOSE CURSOR"),
        "ROLLBACK" | "ABORT" => Tag::plain("ROLLBACK"),
        "DISCARD" => Tag::plain(format!("DISCARD {}", word(1))),
        "" => Tag::plain(""),
        other => Tag::plain(other),
    }
}

fn dml_tag(verb: &str) -> Tag {
    match verb {
        "INSERT" => Tag::counted("INSERT 0"),
        verb => Tag::counted(verb),
    }
}

/// The verb of the statement that a `WITH` list precedes.
fn after_with(sql: &str) -> Option<String> {
    top_words(sql)
        .into_iter()
        .skip(1)
        .find(|w| matches!(w.as_str(), "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "VALUES" | "TABLE"))
        .map(|w| if w == "VALUES" || w == "TABLE" { "SELECT".to_owned() } else { w })
}

/// `CREATE [..] TABLE name AS query` and `CREATE MATERIALIZED VIEW`, which PostgreSQL reports as
/// `SELECT n`.
fn is_create_as(sql: &str) -> bool {
    let words = top_words(sql);
    let Some(table) = words.iter().position(|w| w == "TABLE" || w == "VIEW") else { return false };
    let materialized = table > 0 && words[table - 1] == "MATERIALIZED";
    let object_kinds_before =
        words[1..table].iter().all(|w| OBJECT_MODIFIERS.contains(&w.as_str()) || w == "MATERIALIZED");
    object_kinds_before && (materialized || (words[table] == "TABLE" && words[table..].iter().any(|w| w == "AS")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_comments_and_bodies() {
        assert_eq!(split("select 1; select 2;"), vec!["select 1", "select 2"]);
        assert_eq!(split("select ';'; select \"a;b\" from t"), vec!["select ';'", "select \"a;b\" from t"]);
        assert_eq!(split("select E'\\';' ; select 2"), vec!["select E'\\';'", "select 2"]);
        assert_eq!(
            split("-- a; comment\nselect 1 /* ; /* nested; */ ; */"),
            vec!["-- a; comment\nselect 1 /* ; /* nested; */ ; */"]
        );
        let body = "create function f() returns int as $body$ begin; return 1; end $body$ language plpgsql";
        assert_eq!(split(&format!("{body}; select f()")), vec![body, "select f()"]);
        assert_eq!(split("select $1; select 2"), vec!["select $1", "select 2"]);
        assert!(split(" ; ;\n-- nothing\n").is_empty());
        assert!(is_blank("/* x */ -- y"));
        assert!(!is_blank("/* x */ select"));
        // Unterminated quotes swallow the rest, for PostgreSQL to report.
        assert_eq!(split("select 'a; select 2"), vec!["select 'a; select 2"]);
    }

    #[test]
    fn transaction_control_is_recognised() {
        assert_eq!(classify("begin"), Action::Begin { modes: String::new() });
        assert_eq!(classify("BEGIN TRANSACTION"), Action::Begin { modes: String::new() });
        assert_eq!(
            classify("begin isolation level serializable"),
            Action::Begin { modes: "isolation level serializable".into() }
        );
        assert_eq!(classify("START TRANSACTION READ ONLY"), Action::Begin { modes: "READ ONLY".into() });
        assert_eq!(classify("commit"), Action::Commit);
        assert_eq!(classify("END"), Action::Commit);
        assert_eq!(classify("abort"), Action::Rollback);
        assert_eq!(classify("ROLLBACK WORK"), Action::Rollback);
        assert_eq!(classify("rollback to savepoint a"), Action::Sql(Tag::plain("ROLLBACK")));
        assert_eq!(classify("COMMIT AND CHAIN"), Action::Sql(Tag::plain("COMMIT")));
        assert_eq!(classify("savepoint a"), Action::Sql(Tag::plain("SAVEPOINT")));
        assert_eq!(classify("DEALLOCATE ALL"), Action::Deallocate(None));
        assert_eq!(classify("deallocate prepare S_1"), Action::Deallocate(Some("s_1".into())));
        assert_eq!(classify("DEALLOCATE \"_pg3_0\""), Action::Deallocate(Some("_pg3_0".into())));
        assert_eq!(classify("copy pgbench_accounts from stdin with (freeze on)"), Action::CopyIn);
        assert_eq!(classify("COPY t (a, b) FROM STDIN"), Action::CopyIn);
        assert_eq!(classify("COPY (SELECT 1 FROM stdin) TO STDOUT"), Action::Sql(Tag::counted("COPY")));
    }

    #[test]
    fn tags_match_postgresql() {
        let text = |sql: &str, rows| match classify(sql) {
            Action::Sql(tag) => tag.text(rows),
            other => panic!("{other:?}"),
        };
        assert_eq!(text("insert into t values (1)", 1), "INSERT 0 1");
        assert_eq!(text("update t set a = 1", 3), "UPDATE 3");
        assert_eq!(text("delete from t", 0), "DELETE 0");
        assert_eq!(text("select * from t", 2), "SELECT 2");
        assert_eq!(text("values (1), (2)", 2), "SELECT 2");
        assert_eq!(text("with x as (select 1) insert into t select * from x", 1), "INSERT 0 1");
        assert_eq!(text("with x as (delete from t returning *) select * from x", 4), "SELECT 4");
        assert_eq!(text("create table t (a int)", 0), "CREATE TABLE");
        assert_eq!(text("CREATE UNIQUE INDEX i ON t (a)", 0), "CREATE INDEX");
        assert_eq!(text("create or replace view v as select 1", 0), "CREATE VIEW");
        assert_eq!(text("create table t2 as select * from t", 5), "SELECT 5");
        assert_eq!(text("create materialized view m as select 1", 1), "SELECT 1");
        assert_eq!(text("drop table if exists t", 0), "DROP TABLE");
        assert_eq!(text("alter table t add primary key (a)", 0), "ALTER TABLE");
        assert_eq!(text("create user u", 0), "CREATE ROLE");
        assert_eq!(text("truncate t", 0), "TRUNCATE TABLE");
        assert_eq!(text("/* hi */ set local x = 1", 0), "SET");
        assert_eq!(text("show server_version", 1), "SHOW");
    }
}
