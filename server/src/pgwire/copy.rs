//! `COPY table FROM STDIN` through the front end, as ordinary `INSERT`s in the log.
//!
//! The rows of a COPY travel outside its statement (CopyData messages), so the statement alone
//! cannot be replicated. Here the front end reads the rows itself and turns them into
//! `INSERT INTO table (columns) VALUES (...), (...)` statements of at most [`Loader`]'s byte limit
//! (under `max_statement_bytes`, so each fits one request and one log slot), with every value a
//! quoted literal. A quoted literal has no type of its own: PostgreSQL reads it with the input
//! function of the column it is inserted into, exactly as COPY reads a field, so the stored values
//! are the ones COPY would store; and being text in the statement, each value passes the
//! determinism policy like any other INSERT's (a field `now` for a timestamp column is refused,
//! where COPY would read each replica's own clock). The log, the executor and the SQLite stand-in
//! see nothing new.
//!
//! How the caller makes the whole COPY atomic (see `handler`): inside a client transaction the
//! INSERTs are statements of it; outside one, a COPY that fits one INSERT is that one autocommit
//! statement, and a bigger one runs in a transaction the front end opens for it and commits at
//! CopyDone. A CopyFail, an error, or a client that vanishes rolls that transaction back.
//!
//! What is supported: the text format (delimiter, `NULL` string, `HEADER`, every backslash escape)
//! and CSV (delimiter, `NULL`, `HEADER`, `QUOTE`, `ESCAPE`), in the option-list and the pre-9.0
//! syntax. `FREEZE` is an optimisation and is dropped. Refused with SQLSTATE 0A000: binary
//! format, `FORCE_NULL`/`FORCE_NOT_NULL`, `WHERE`, encodings other than UTF-8.

use barista_runtime::postgres::string_literal;
use barista_runtime::sql::SqlError;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

/// SQLSTATE `feature_not_supported`.
const NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `syntax_error`.
const SYNTAX: &str = "42601";
/// SQLSTATE `bad_copy_file_format`.
const BAD_FORMAT: &str = "22P04";
/// SQLSTATE `character_not_in_repertoire`: invalid UTF-8, or a NUL byte.
const BAD_BYTES: &str = "22021";
/// SQLSTATE `program_limit_exceeded`.
const TOO_LONG: &str = "54000";

/// A COPY's columns when its statement lists none: every column but generated ones, in order,
/// as PostgreSQL's COPY takes them. `$1` is the table as written.
pub const COLUMNS_SQL: &str = "SELECT attname::text FROM pg_catalog.pg_attribute \
    WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum";

/// A statement that fails on every replica, to abort the client's transaction after a COPY in it
/// failed for a reason no statement saw (bad rows, CopyFail), as PostgreSQL aborts it then.
pub const ABORT_SQL: &str = "SELECT CAST('the COPY failed, so its transaction is aborted' AS integer)";

fn error(sqlstate: &str, message: impl Into<String>) -> SqlError {
    SqlError { sqlstate: sqlstate.into(), message: message.into() }
}

/// How the rows are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// PostgreSQL's text format: fields split at `delimiter`, backslash escapes.
    Text,
    /// CSV: fields split at `delimiter`, `quote`d fields, `escape` inside quotes.
    Csv {
        /// The quote character.
        quote: u8,
        /// The character that escapes a quote inside a quoted field.
        escape: u8,
    },
}

/// A `COPY ... FROM STDIN` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyIn {
    /// The table as SQL text (`pgbench_accounts`, `"Odd"."Name"`), for the INSERTs.
    pub table: String,
    /// The columns as SQL identifiers, if the statement lists them.
    pub columns: Option<Vec<String>>,
    /// The data format.
    pub format: Format,
    /// The field delimiter.
    pub delimiter: u8,
    /// The text of a NULL field (compared before any unescaping, as PostgreSQL does).
    pub null: Vec<u8>,
    /// Whether the first line is a header, to skip.
    pub header: bool,
}

/// A name token as SQL text: an unquoted word as written (PostgreSQL folds it the same way
/// again), a quoted one re-quoted.
fn name_text(word: &Word) -> String {
    match word.quote_style {
        Some(_) => format!("\"{}\"", word.value.replace('"', "\"\"")),
        None => word.value.clone(),
    }
}

/// The tokens of a statement, without white space and comments.
struct Tokens {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokens {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// The next token if it is the keyword `word` (unquoted, any case).
    fn keyword(&mut self, word: &str) -> bool {
        let is = matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        if is {
            self.at += 1;
        }
        is
    }

    fn name(&mut self) -> Result<Word, SqlError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(syntax("a name", other.as_ref())),
        }
    }

    /// A string option value: `'x'` or `E'x'`.
    fn string(&mut self) -> Result<String, SqlError> {
        match self.next() {
            Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s)) => Ok(s),
            other => Err(syntax("a quoted string", other.as_ref())),
        }
    }
}

fn syntax(expected: &str, found: Option<&Token>) -> SqlError {
    let found = found.map_or_else(|| "the end of the statement".to_owned(), |t| format!("\"{t}\""));
    error(SYNTAX, format!("syntax error in COPY: expected {expected}, found {found}"))
}

fn unsupported(what: &str) -> SqlError {
    error(
        NOT_SUPPORTED,
        format!(
            "{what} is not supported by Barista's COPY FROM STDIN (text and CSV formats only, \
             loaded as INSERT statements)"
        ),
    )
}

/// One single-byte character of an option (`DELIMITER`, `QUOTE`, `ESCAPE`).
fn one_byte(option: &str, value: &str) -> Result<u8, SqlError> {
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(error("22023", format!("COPY {option} must be a single one-byte character"))),
    }
}

/// What the options say, before the defaults that depend on the format.
#[derive(Default)]
struct Options {
    format: Option<String>,
    delimiter: Option<u8>,
    null: Option<String>,
    header: bool,
    quote: Option<u8>,
    escape: Option<u8>,
}

/// Reads a `COPY table [(columns)] FROM STDIN [options]` statement.
pub fn parse(sql: &str) -> Result<CopyIn, SqlError> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| error(SYNTAX, format!("syntax error in COPY: {e}")))?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut t = Tokens { tokens, at: 0 };
    if !t.keyword("COPY") {
        return Err(syntax("COPY", t.peek()));
    }
    if t.peek() == Some(&Token::LParen) {
        return Err(unsupported("COPY (query)"));
    }
    let mut table = name_text(&t.name()?);
    while t.peek() == Some(&Token::Period) {
        t.at += 1;
        table = format!("{table}.{}", name_text(&t.name()?));
    }
    let mut columns = None;
    if t.peek() == Some(&Token::LParen) {
        t.at += 1;
        let mut list = Vec::new();
        loop {
            list.push(name_text(&t.name()?));
            match t.next() {
                Some(Token::Comma) => {}
                Some(Token::RParen) => break,
                other => return Err(syntax("\",\" or \")\"", other.as_ref())),
            }
        }
        columns = Some(list);
    }
    if !t.keyword("FROM") {
        return Err(unsupported("COPY ... TO"));
    }
    if !t.keyword("STDIN") {
        return Err(unsupported("COPY from a file or a program"));
    }
    let mut options = Options::default();
    let with = t.keyword("WITH");
    if t.peek() == Some(&Token::LParen) {
        t.at += 1;
        option_list(&mut t, &mut options)?;
    } else if with || t.peek().is_some_and(|tok| *tok != Token::SemiColon) {
        legacy_options(&mut t, &mut options)?;
    }
    if t.keyword("WHERE") {
        return Err(unsupported("COPY ... WHERE"));
    }
    if t.peek() == Some(&Token::SemiColon) {
        t.at += 1;
    }
    if let Some(extra) = t.peek() {
        return Err(syntax("the end of the statement", Some(extra)));
    }
    let format = match options.format.as_deref().unwrap_or("text") {
        "text" => {
            if options.quote.is_some() || options.escape.is_some() {
                return Err(error(NOT_SUPPORTED, "COPY QUOTE and ESCAPE are available only in CSV mode"));
            }
            Format::Text
        }
        "csv" => {
            let quote = options.quote.unwrap_or(b'"');
            Format::Csv { quote, escape: options.escape.unwrap_or(quote) }
        }
        "binary" => return Err(unsupported("COPY's binary format")),
        other => return Err(error("22023", format!("COPY format \"{other}\" not recognized"))),
    };
    let csv = matches!(format, Format::Csv { .. });
    let delimiter = options.delimiter.unwrap_or(if csv { b',' } else { b'\t' });
    let null = options.null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
    if matches!(delimiter, b'\n' | b'\r') || (!csv && delimiter == b'\\') {
        return Err(error("22023", "COPY delimiter cannot be newline, carriage return or backslash"));
    }
    Ok(CopyIn { table, columns, format, delimiter, null: null.into_bytes(), header: options.header })
}

/// `name [value] [, ...] )`, the opening parenthesis read.
fn option_list(t: &mut Tokens, options: &mut Options) -> Result<(), SqlError> {
    loop {
        let name = t.name()?.value.to_ascii_lowercase();
        // The value, if any: a word, a number, a string; FORCE_* take a column list or `*`.
        let value = match t.peek() {
            Some(Token::Comma | Token::RParen) => None,
            Some(Token::SingleQuotedString(_) | Token::EscapedStringLiteral(_)) => Some(t.string()?),
            Some(Token::Word(_)) => Some(t.name()?.value.to_ascii_lowercase()),
            Some(Token::Number(n, _)) => {
                let n = n.clone();
                t.at += 1;
                Some(n)
            }
            Some(Token::LParen | Token::Mul) => {
                return Err(unsupported(&format!("COPY option {}", name.to_uppercase())));
            }
            other => return Err(syntax("an option value", other)),
        };
        let boolean = || match value.as_deref() {
            None | Some("true" | "on" | "1") => Ok(true),
            Some("false" | "off" | "0") => Ok(false),
            Some(v) => Err(error("22023", format!("{name} requires a Boolean value, not \"{v}\""))),
        };
        let string = || value.clone().ok_or_else(|| error("22023", format!("{name} requires a parameter")));
        match name.as_str() {
            "format" => options.format = Some(string()?.to_ascii_lowercase()),
            // An optimisation only: the rows arrive as INSERTs.
            "freeze" => {
                boolean()?;
            }
            "delimiter" => options.delimiter = Some(one_byte("delimiter", &string()?)?),
            "null" => options.null = Some(string()?),
            "header" => options.header = value.as_deref() == Some("match") || boolean()?,
            "quote" => options.quote = Some(one_byte("quote", &string()?)?),
            "escape" => options.escape = Some(one_byte("escape", &string()?)?),
            "encoding" => {
                let encoding = string()?.to_ascii_uppercase().replace('-', "");
                if encoding != "UTF8" {
                    return Err(unsupported(&format!("COPY ENCODING '{encoding}'")));
                }
            }
            "force_null" | "force_not_null" | "force_quote" | "default" => {
                return Err(unsupported(&format!("COPY option {}", name.to_uppercase())));
            }
            _ => return Err(error(SYNTAX, format!("option \"{name}\" not recognized"))),
        }
        match t.next() {
            Some(Token::Comma) => {}
            Some(Token::RParen) => return Ok(()),
            other => return Err(syntax("\",\" or \")\"", other.as_ref())),
        }
    }
}

/// PostgreSQL's pre-9.0 options: `[ BINARY ] [ DELIMITER [AS] 'c' ] [ NULL [AS] 'n' ] [ CSV
/// [ HEADER ] [ QUOTE [AS] 'q' ] [ ESCAPE [AS] 'e' ] ]`, in any order.
fn legacy_options(t: &mut Tokens, options: &mut Options) -> Result<(), SqlError> {
    loop {
        if t.keyword("BINARY") {
            options.format = Some("binary".into());
        } else if t.keyword("CSV") {
            options.format = Some("csv".into());
        } else if t.keyword("HEADER") {
            options.header = true;
        } else if t.keyword("DELIMITER") {
            t.keyword("AS");
            options.delimiter = Some(one_byte("delimiter", &t.string()?)?);
        } else if t.keyword("NULL") {
            t.keyword("AS");
            options.null = Some(t.string()?);
        } else if t.keyword("QUOTE") {
            t.keyword("AS");
            options.quote = Some(one_byte("quote", &t.string()?)?);
        } else if t.keyword("ESCAPE") {
            t.keyword("AS");
            options.escape = Some(one_byte("escape", &t.string()?)?);
        } else if t.keyword("FORCE") {
            return Err(unsupported("COPY option FORCE NOT NULL"));
        } else {
            return Ok(());
        }
    }
}

/// Turns the data of one COPY into INSERT statements of at most `limit` bytes each.
pub struct Loader {
    copy: CopyIn,
    /// Column names, for error messages.
    names: Vec<String>,
    /// `INSERT INTO table (columns) VALUES `.
    head: String,
    limit: usize,
    /// Data received and not yet consumed as rows (at most one partial row; it is scanned again
    /// with each message, which costs little for rows of ordinary size).
    buf: Vec<u8>,
    /// The end-of-data marker `\.` was read: the rest is ignored.
    ended: bool,
    /// Lines read so far, for error messages.
    line: u64,
    /// The INSERT being filled.
    chunk: String,
    /// Rows in all the INSERTs so far.
    rows: u64,
}

impl Loader {
    /// A loader for `copy` into `columns` (as SQL identifiers), making INSERTs of at most `limit`
    /// bytes.
    pub fn new(copy: CopyIn, columns: Vec<String>, limit: usize) -> Loader {
        let head = format!("INSERT INTO {} ({}) VALUES ", copy.table, columns.join(", "));
        Loader {
            copy,
            names: columns,
            head,
            limit,
            buf: Vec::new(),
            ended: false,
            line: 0,
            chunk: String::new(),
            rows: 0,
        }
    }

    /// The number of columns, for CopyInResponse.
    pub fn columns(&self) -> usize {
        self.names.len()
    }

    /// Rows read so far (the `COPY n` of the command tag, once all are in).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Takes `data`; returns the INSERTs that are full.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<String>, SqlError> {
        if self.ended {
            return Ok(Vec::new());
        }
        self.buf.extend_from_slice(data);
        let mut full = Vec::new();
        let mut start = 0;
        while let Some(end) = self.row_end(start) {
            // The row without its line end (`\n`, or `\r\n`).
            let mut row = &self.buf[start..end];
            if let [rest @ .., b'\r'] = row {
                row = rest;
            }
            let row = row.to_vec();
            start = end + 1;
            if let Some(insert) = self.row(&row)? {
                full.push(insert);
            }
            if self.ended {
                break;
            }
        }
        self.buf.drain(..start);
        Ok(full)
    }

    /// The end of the data: the last INSERTs, if rows remain.
    pub fn finish(&mut self) -> Result<Vec<String>, SqlError> {
        let mut full = Vec::new();
        if !self.ended && !self.buf.is_empty() {
            // A last line without its line end.
            let mut row = std::mem::take(&mut self.buf);
            if let [.., b'\r'] = row.as_slice() {
                row.pop();
            }
            full.extend(self.row(&row)?);
        }
        full.extend(self.take_chunk());
        Ok(full)
    }

    fn take_chunk(&mut self) -> Option<String> {
        (!self.chunk.is_empty()).then(|| std::mem::take(&mut self.chunk))
    }

    /// The offset of the newline that ends the row starting at `start`, if it is in `buf`.
    /// Text: a backslash escapes the next byte (a backslash-newline is a newline of the data).
    /// CSV: newlines inside quotes are data.
    fn row_end(&self, start: usize) -> Option<usize> {
        let bytes = &self.buf;
        let mut i = start;
        let mut quoted = false;
        while i < bytes.len() {
            let b = bytes[i];
            match self.copy.format {
                Format::Text if b == b'\\' => i += 1,
                Format::Csv { quote, escape } if quoted && b == escape && bytes.get(i + 1) == Some(&quote) => i += 1,
                Format::Csv { quote, .. } if b == quote => quoted = !quoted,
                _ if b == b'\n' && !quoted => return Some(i),
                _ => {}
            }
            i += 1;
        }
        None
    }

    fn bad(&self, what: &str) -> SqlError {
        error(BAD_FORMAT, format!("{what} (COPY {}, line {})", self.copy.table, self.line))
    }

    /// Reads one row; returns the INSERT it filled up, if it did.
    fn row(&mut self, row: &[u8]) -> Result<Option<String>, SqlError> {
        self.line += 1;
        if row == b"\\." {
            self.ended = true;
            return Ok(None);
        }
        if self.copy.header && self.line == 1 {
            return Ok(None);
        }
        let fields = match self.copy.format {
            Format::Text => text_fields(row, self.copy.delimiter, &self.copy.null),
            Format::Csv { quote, escape } => csv_fields(row, self.copy.delimiter, quote, escape, &self.copy.null),
        };
        let fields = fields.map_err(|what| self.bad(what))?;
        if fields.len() < self.names.len() {
            let missing = self.names.get(fields.len()).cloned().unwrap_or_default();
            return Err(self.bad(&format!("missing data for column {missing}")));
        }
        if fields.len() > self.names.len() {
            return Err(self.bad("extra data after last expected column"));
        }
        let mut values = String::from("(");
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                values.push_str(", ");
            }
            match field {
                None => values.push_str("NULL"),
                Some(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| {
                        error(
                            BAD_BYTES,
                            format!(
                                "invalid byte sequence for encoding \"UTF8\" (COPY {}, line {})",
                                self.copy.table, self.line
                            ),
                        )
                    })?;
                    if text.contains('\0') {
                        return Err(error(
                            BAD_BYTES,
                            format!(
                                "invalid byte sequence for encoding \"UTF8\": 0x00 (COPY {}, line {})",
                                self.copy.table, self.line
                            ),
                        ));
                    }
                    values.push_str(&string_literal(&text));
                }
            }
        }
        values.push(')');
        if self.head.len() + values.len() > self.limit {
            return Err(error(
                TOO_LONG,
                format!(
                    "row {} of the COPY into {} is {} bytes as an INSERT; the limit (max_statement_bytes) is {}",
                    self.line,
                    self.copy.table,
                    self.head.len() + values.len(),
                    self.limit
                ),
            ));
        }
        let mut full = None;
        if !self.chunk.is_empty() && self.chunk.len() + 2 + values.len() > self.limit {
            full = self.take_chunk();
        }
        if self.chunk.is_empty() {
            self.chunk.push_str(&self.head);
        } else {
            self.chunk.push_str(", ");
        }
        self.chunk.push_str(&values);
        self.rows += 1;
        Ok(full)
    }
}

/// The fields of a text-format row (`None`: NULL), unescaped.
fn text_fields(row: &[u8], delimiter: u8, null: &[u8]) -> Result<Vec<Option<Vec<u8>>>, &'static str> {
    let mut raw_fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < row.len() {
        if row[i] == b'\\' {
            i += 2;
            continue;
        }
        if row[i] == delimiter {
            raw_fields.push(&row[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    raw_fields.push(&row[start.min(row.len())..]);
    Ok(raw_fields.into_iter().map(|raw| (raw != null).then(|| unescape(raw))).collect())
}

/// PostgreSQL's text-format escapes: `\b \f \n \r \t \v`, octal `\ooo`, hex `\xhh`, and any other
/// character after a backslash stands for itself.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&c) = raw.get(i) else {
            // A backslash at the very end stands for itself, as in PostgreSQL.
            out.push(b'\\');
            break;
        };
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    out
}

/// The fields of a CSV row (`None`: NULL, i.e. an unquoted field equal to the NULL string).
fn csv_fields(
    row: &[u8],
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: &[u8],
) -> Result<Vec<Option<Vec<u8>>>, &'static str> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut value = Vec::new();
        let mut was_quoted = false;
        let mut quoted = false;
        while i < row.len() {
            let b = row[i];
            if quoted {
                if b == escape && row.get(i + 1) == Some(&quote) {
                    value.push(quote);
                    i += 2;
                    continue;
                }
                if b == quote {
                    quoted = false;
                } else {
                    value.push(b);
                }
            } else if b == quote {
                quoted = true;
                was_quoted = true;
            } else if b == delimiter {
                break;
            } else {
                value.push(b);
            }
            i += 1;
        }
        if quoted {
            return Err("unterminated CSV quoted field");
        }
        fields.push(if !was_quoted && value == null { None } else { Some(value) });
        if i >= row.len() {
            return Ok(fields);
        }
        i += 1; // the delimiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(sql: &str) -> CopyIn {
        parse(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    fn sqlstate(sql: &str) -> String {
        match parse(sql) {
            Ok(c) => panic!("{sql} parsed: {c:?}"),
            Err(e) => e.sqlstate,
        }
    }

    #[test]
    fn statements_are_read_as_postgresql_does() {
        let pgbench = copy("copy pgbench_accounts from stdin with (freeze on)");
        assert_eq!(pgbench.table, "pgbench_accounts");
        assert_eq!(pgbench.columns, None);
        assert_eq!((pgbench.format, pgbench.delimiter, pgbench.null.as_slice()), (Format::Text, b'\t', &b"\\N"[..]));
        let named =
            copy("COPY \"Odd \"\"T\"\"\".t (a, \"B\") FROM STDIN (FORMAT csv, HEADER, NULL 'x', DELIMITER ';');");
        assert_eq!(named.table, "\"Odd \"\"T\"\"\".t");
        assert_eq!(named.columns, Some(vec!["a".into(), "\"B\"".into()]));
        assert_eq!(named.format, Format::Csv { quote: b'"', escape: b'"' });
        assert_eq!((named.delimiter, named.null.as_slice(), named.header), (b';', &b"x"[..], true));
        let legacy = copy("copy t from stdin with csv header quote as '''' delimiter '|'");
        assert_eq!(legacy.format, Format::Csv { quote: b'\'', escape: b'\'' });
        assert_eq!((legacy.delimiter, legacy.header), (b'|', true));
        assert_eq!(copy("copy t from stdin delimiter E'\\t' null ''").null, b"");
        for unsupported in [
            "COPY t FROM STDIN (FORMAT binary)",
            "COPY t FROM STDIN BINARY",
            "COPY t FROM STDIN (FORCE_NULL (a))",
            "COPY t FROM STDIN WHERE a > 1",
            "COPY t FROM STDIN (ENCODING 'LATIN1')",
            "COPY t TO STDOUT",
            "COPY t FROM '/tmp/x'",
        ] {
            assert_eq!(sqlstate(unsupported), "0A000", "{unsupported}");
        }
        assert_eq!(sqlstate("COPY t FROM STDIN (BOGUS 1)"), "42601");
        assert_eq!(sqlstate("COPY t FROM STDIN; SELECT 1"), "42601");
    }

    fn load(sql: &str, columns: &[&str], data: &[&[u8]], limit: usize) -> Result<(Vec<String>, u64), SqlError> {
        let mut loader = Loader::new(copy(sql), columns.iter().map(|c| (*c).to_owned()).collect(), limit);
        let mut inserts = Vec::new();
        for chunk in data {
            inserts.extend(loader.feed(chunk)?);
        }
        inserts.extend(loader.finish()?);
        Ok((inserts, loader.rows()))
    }

    #[test]
    fn text_rows_become_inserts_of_literals() {
        // Row boundaries anywhere in the messages, NULLs, every escape, a quote, a last line
        // without its newline.
        let data: &[&[u8]] = &[b"1\tone\n2\t\\N\n3\ta\\tb\\nc\\\\d\\\\N\\x41\\101\\.", b"'q'\r\n4\t", b"", b"\\N\n5\t"];
        let (inserts, rows) = load("COPY t FROM STDIN", &["id", "v"], data, 1000).expect("loads");
        assert_eq!(rows, 5);
        assert_eq!(
            inserts,
            [
                "INSERT INTO t (id, v) VALUES ('1', 'one'), ('2', NULL), ('3', E'a\tb\nc\\\\d\\\\NAA.''q'''), ('4', NULL), ('5', '')"
            ]
        );
        // `\.` ends the data; what follows is ignored.
        let (inserts, rows) = load("COPY t FROM STDIN", &["id"], &[b"1\n\\.\n2\n"], 1000).expect("loads");
        assert_eq!((inserts.len(), rows), (1, 1));
        // A backslash-newline is a newline of the data.
        let (inserts, _) = load("COPY t FROM STDIN", &["v"], &[b"a\\\nb\n"], 1000).expect("loads");
        assert_eq!(inserts, ["INSERT INTO t (v) VALUES ('a\nb')"]);
    }

    #[test]
    fn inserts_stay_under_the_limit() {
        let data: Vec<u8> = (0..100).flat_map(|i| format!("{i}\tsome text\n").into_bytes()).collect();
        let limit = 200;
        let (inserts, rows) = load("COPY t FROM STDIN", &["id", "v"], &[&data], limit).expect("loads");
        assert_eq!(rows, 100);
        assert!(inserts.len() > 10, "{}", inserts.len());
        assert!(inserts.iter().all(|i| i.len() <= limit && i.starts_with("INSERT INTO t (id, v) VALUES (")));
        let total: usize = inserts.iter().map(|i| i.matches("'some text'").count()).sum();
        assert_eq!(total, 100);
        let huge = format!("1\t{}\n", "x".repeat(300));
        assert_eq!(
            load("COPY t FROM STDIN", &["id", "v"], &[huge.as_bytes()], limit).map(|_| ()).expect_err("fails").sqlstate,
            "54000"
        );
    }

    #[test]
    fn bad_rows_are_postgresql_errors() {
        let state = |data: &[u8]| {
            load("COPY t FROM STDIN", &["a", "b"], &[data], 1000).map(|_| ()).expect_err("fails").sqlstate
        };
        assert_eq!(state(b"1\n"), "22P04", "missing data");
        assert_eq!(state(b"1\t2\t3\n"), "22P04", "extra data");
        assert_eq!(state(b"1\t\xff\n"), "22021", "not UTF-8");
        assert_eq!(state(b"1\ta\\000b\n"), "22021", "NUL");
    }

    #[test]
    fn csv_rows_are_read_with_quotes_and_headers() {
        let data: &[&[u8]] = &[b"id,v\n1,\"a,\"\"b\"\"\n", b"c\"\n2,\n3,\"\"\n"];
        let (inserts, rows) =
            load("COPY t FROM STDIN (FORMAT csv, HEADER true)", &["id", "v"], data, 1000).expect("loads");
        assert_eq!(rows, 3);
        assert_eq!(inserts, ["INSERT INTO t (id, v) VALUES ('1', 'a,\"b\"\nc'), ('2', NULL), ('3', '')"]);
        let open = load("COPY t FROM STDIN (FORMAT csv)", &["id", "v"], &[b"1,\"abc\n"], 1000);
        assert_eq!(open.map(|_| ()).expect_err("fails").sqlstate, "22P04");
    }

    #[test]
    fn the_statements_the_front_end_adds_pass_the_policy() {
        use barista_runtime::determinism::{StatementKind, TxnTimestamp, check};
        let ts = TxnTimestamp::from_unix_micros(1_700_000_000_000_000).expect("in range");
        for sql in [COLUMNS_SQL, ABORT_SQL] {
            let checked = check(sql, ts).unwrap_or_else(|r| panic!("{sql}: {r}"));
            assert_eq!(checked.kind, StatementKind::ReadOnly, "{sql}");
        }
        let (inserts, _) =
            load("COPY t FROM STDIN", &["\"a\"", "\"b\""], &[b"1\tx\\y\n2\t\\N\n"], 1000).expect("loads");
        for insert in &inserts {
            let checked = check(insert, ts).unwrap_or_else(|r| panic!("{insert}: {r}"));
            assert_eq!(checked.kind, StatementKind::Write);
        }
    }
}
