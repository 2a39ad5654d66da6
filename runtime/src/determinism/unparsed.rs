//! Statements sqlparser cannot parse.
//!
//! sqlparser does not know all of PostgreSQL's grammar, so a statement it rejects may still be
//! valid PostgreSQL. Barista refuses it anyway: a statement it cannot read is a statement it cannot
//! check, and letting unchecked SQL into the log is how statement replication diverges. The error
//! says so plainly, and for statements Barista would refuse even if it could parse them (`DO`,
//! `VACUUM` in a function body, two-phase commit, ...) it names the construct and gives the usual
//! advice, found from the statement's leading keywords. (A client's own `VACUUM` and `ANALYZE`
//! never get here: `maintenance` reads them from the tokens.)

use super::refusal::Refusal;
use super::statement;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// The refusal for a statement sqlparser rejected with `parser_error`.
pub(crate) fn refusal(tokens: &[TokenWithSpan], parser_error: &str) -> Refusal {
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .take(3)
        .map(|t| match &t.token {
            Token::Word(word) => word.value.to_uppercase(),
            other => other.to_string(),
        })
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match (word(0), word(1)) {
        ("DO", _) => Refusal::new(
            "DO block",
            "Barista cannot check an anonymous code block. Send its statements one by one (or as \
             a batch), or create a LANGUAGE sql or plpgsql function (checked when it is created) \
             and call it",
        ),
        ("PREPARE", "TRANSACTION") | ("COMMIT", "PREPARED") | ("ROLLBACK", "PREPARED") => {
            Refusal::new("two-phase commit", "Barista commits through its own log; use the client's commit()")
        }
        ("VACUUM", _) => statement::vacuum_refusal(),
        ("CLUSTER", _) | ("REINDEX", _) | ("CHECKPOINT", _) => Refusal::new(
            word(0),
            "it is physical maintenance of one server and changes no data; run it on each \
             replica directly",
        ),
        ("ALTER", "SYSTEM") => Refusal::new(
            "ALTER SYSTEM",
            "it changes one server's configuration file; configure every replica identically",
        ),
        ("ALTER", "DATABASE") => {
            Refusal::new("ALTER DATABASE", "databases are created and configured on each replica, outside the log")
        }
        _ => Refusal::unparsable(format!(
            "Barista checks every statement before replicating it and its SQL parser did not \
                 understand this one ({parser_error}). It may be valid PostgreSQL that the parser \
                 does not support yet; rephrase it, or ask for support to be added"
        )),
    }
}
