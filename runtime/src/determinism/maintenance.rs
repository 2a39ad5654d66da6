//! `VACUUM` and `ANALYZE`: physical maintenance of one server that changes no logical data.
//!
//! They are deterministic in what matters to Barista (the rows, the sequences, the schema are
//! the same before and after, on every replica), and running one again changes nothing a client
//! can observe. So a replica may run them outside a transaction and record the outcome after: if
//! it crashes in between, the replay runs them again, harmlessly. That is what
//! [`StatementKind::Maintenance`] tells the executor (PostgreSQL refuses `VACUUM` inside a
//! transaction block, and the executor wraps every other autocommit statement in one).
//!
//! sqlparser does not know PostgreSQL's `VACUUM` grammar (it parses Redshift's: `VACUUM ANALYZE t`
//! fails), and its `ANALYZE` is Hive's, so both are recognised here from the tokens, against
//! PostgreSQL's grammar:
//!
//! ```text
//! VACUUM  [ ( option [, ...] ) ] [ FULL ] [ FREEZE ] [ VERBOSE ] [ ANALYZE ] [ table_and_columns [, ...] ]
//! ANALYZE [ ( option [, ...] ) ] [ VERBOSE ] [ table_and_columns [, ...] ]
//! table_and_columns: name [ . name ... ] [ ( column [, ...] ) ]
//! ```
//!
//! Only that shape is accepted, and only as a statement of its own: nothing else can travel
//! inside it (no expressions, no second statement), so nothing here needs the expression walk.
//! Which options are given does not matter to determinism (none changes logical data); an option
//! or keyword order PostgreSQL does not accept is its syntax error, the same on every replica.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::StatementKind;
use super::refusal::Refusal;

/// The words that may follow `VACUUM` before its tables (PostgreSQL's pre-9.0 option syntax).
const VACUUM_WORDS: [&str; 5] = ["FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE"];

/// `Some` if `tokens` is a `VACUUM` or `ANALYZE` statement: `Ok` with its kind when it has
/// PostgreSQL's shape, a refusal when it starts like one and then holds something else.
pub(crate) fn check(tokens: &[TokenWithSpan]) -> Option<Result<StatementKind, Refusal>> {
    let tokens: Vec<&Token> = tokens.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let verb = match tokens.first() {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => return None,
    };
    let extra_words: &[&str] = match verb.as_str() {
        "VACUUM" => &VACUUM_WORDS,
        "ANALYZE" | "ANALYSE" => &["VERBOSE"],
        _ => return None,
    };
    let shaped = Shape { tokens: &tokens[1..], at: 0 }.statement(extra_words);
    Some(shaped.map(|()| StatementKind::Maintenance).map_err(|what| {
        Refusal::new(
            format!("this form of {verb} ({what})"),
            format!(
                "Barista replicates {verb} in PostgreSQL's form: {verb} [ ( options ) ] {}[ table \
                 [ ( columns ) ] [, ...] ], alone in its statement",
                if verb == "VACUUM" { "[ FULL ] [ FREEZE ] [ VERBOSE ] [ ANALYZE ] " } else { "[ VERBOSE ] " }
            ),
        )
    }))
}

/// A cursor over the tokens after the verb.
struct Shape<'a> {
    tokens: &'a [&'a Token],
    at: usize,
}

impl Shape<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at).copied();
        self.at += 1;
        token
    }

    fn statement(mut self, extra_words: &[&str]) -> Result<(), &'static str> {
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            self.options()?;
        }
        while let Some(Token::Word(w)) = self.peek() {
            if w.quote_style.is_some() || !extra_words.iter().any(|e| w.value.eq_ignore_ascii_case(e)) {
                break;
            }
            self.at += 1;
        }
        if self.peek().is_some_and(|t| *t != Token::SemiColon) {
            self.table()?;
            while self.peek() == Some(&Token::Comma) {
                self.at += 1;
                self.table()?;
            }
        }
        if self.peek() == Some(&Token::SemiColon) {
            self.at += 1;
        }
        match self.peek() {
            None => Ok(()),
            Some(_) => Err("text after its table list"),
        }
    }

    /// `option [ value ] [, ...] )`, the opening parenthesis consumed.
    fn options(&mut self) -> Result<(), &'static str> {
        loop {
            match self.next() {
                Some(Token::RParen) => return Ok(()),
                Some(Token::Word(_) | Token::Number(..) | Token::SingleQuotedString(_) | Token::Comma) => {}
                _ => return Err("an option that is not a word, a number or a string"),
            }
        }
    }

    /// `name [ . name ... ] [ ( column [, ...] ) ]`.
    fn table(&mut self) -> Result<(), &'static str> {
        self.name()?;
        while self.peek() == Some(&Token::Period) {
            self.at += 1;
            self.name()?;
        }
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            loop {
                self.name()?;
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::RParen) => break,
                    _ => return Err("a column list that is not names"),
                }
            }
        }
        Ok(())
    }

    fn name(&mut self) -> Result<(), &'static str> {
        match self.next() {
            Some(Token::Word(_)) => Ok(()),
            _ => Err("something other than a table name"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn checked(sql: &str) -> Option<Result<StatementKind, Refusal>> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location().expect("tokenizes");
        check(&tokens)
    }

    #[test]
    fn postgresql_forms_are_maintenance() {
        for sql in [
            "VACUUM",
            "vacuum;",
            "VACUUM ANALYZE pgbench_branches",
            "vacuum analyze pgbench_accounts",
            "VACUUM pgbench_history",
            "VACUUM FULL FREEZE VERBOSE ANALYZE public.items (name, price), events",
            "VACUUM (VERBOSE, ANALYZE, PARALLEL 2, INDEX_CLEANUP off, BUFFER_USAGE_LIMIT '256MB') items",
            "VACUUM \"Odd Table\" /* comment */ ;",
            "ANALYZE",
            "ANALYZE items",
            "analyse verbose items (name), events",
            "ANALYZE (SKIP_LOCKED) items",
        ] {
            assert_eq!(checked(sql), Some(Ok(StatementKind::Maintenance)), "{sql}");
        }
    }

    #[test]
    fn anything_else_inside_is_refused() {
        for sql in [
            "VACUUM items; DELETE FROM items",
            "VACUUM items WHERE id = 1",
            "VACUUM (VERBOSE (1)) items",
            "ANALYZE items (name + 1)",
            "VACUUM items,",
            "ANALYZE FULL items extra",
        ] {
            assert!(matches!(checked(sql), Some(Err(_))), "{sql}: {:?}", checked(sql));
        }
    }

    #[test]
    fn other_statements_are_not_its_business() {
        for sql in ["SELECT 1", "\"vacuum\"", "INSERT INTO vacuum VALUES (1)", ""] {
            assert_eq!(checked(sql), None, "{sql}");
        }
    }
}
