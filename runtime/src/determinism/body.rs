//! Function bodies: checked once, when the function is created.
//!
//! Barista cannot know a function's volatility where it is called (it has no catalog), so it
//! checks the function where it is defined instead. Every user function reaches PostgreSQL
//! through Barista, so every call site calls a checked body, and calls to user functions are
//! allowed (and counted as writes, since a body may write).
//!
//! - `LANGUAGE sql` bodies are parsed and checked like statements, with every read-only
//!   exemption removed (the function may be called from a write). Time functions become reads of
//!   the pinned transaction timestamp, because the body runs in later transactions.
//! - `LANGUAGE plpgsql` bodies are not SQL sqlparser can parse; they are checked token by token:
//!   calls to refused and replica-dependent functions, dynamic SQL (`EXECUTE`), session `SET`,
//!   temporary objects, `LISTEN`/`NOTIFY`, `COPY`, `SKIP LOCKED` and `NOWAIT` are refused, and time
//!   functions are rewritten. The statement-shape checks (`LIMIT` without `ORDER BY`, ...) are not
//!   made inside plpgsql: a documented gap.
//! - Other languages (C, plpython, ...) are refused: Barista cannot read them.

use super::functions::{Callee, FunctionClass, TimeSyntax, classify, fold};
use super::refusal::Refusal;
use super::text::{Edit, Replacement, Tokens};
use super::time::TimeHead;
use sqlparser::ast::{CreateFunction, CreateFunctionBody, Expr, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Bodies inside bodies (a `CREATE FUNCTION` in a SQL function) are not checked further.
const MAX_BODY_DEPTH: usize = 1;

/// Check the body of `function`, written at `tokens` of `text`; return edits in `text`'s offsets.
pub(crate) fn check(
    function: &CreateFunction,
    text: &str,
    tokens: &Tokens,
    depth: usize,
) -> Result<Vec<Edit>, Refusal> {
    let name = function.name.to_string();
    let language = function.language.as_ref().map(fold).unwrap_or_else(|| "sql".to_string());
    if !matches!(language.as_str(), "sql" | "plpgsql") {
        return Err(unreadable(&format!("function {name} in LANGUAGE {language}")));
    }
    check_body(function, &language, text, tokens, depth).map_err(|refusal| refusal.in_function_body(&name))
}

fn check_body(
    function: &CreateFunction,
    language: &str,
    text: &str,
    tokens: &Tokens,
    depth: usize,
) -> Result<Vec<Edit>, Refusal> {
    let body = match &function.function_body {
        Some(CreateFunctionBody::AsBeforeOptions { body, link_symbol: None }) => body,
        Some(CreateFunctionBody::AsAfterOptions(body)) => body,
        Some(CreateFunctionBody::AsBeforeOptions { link_symbol: Some(_), .. }) => {
            return Err(unreadable("an object file"));
        }
        // `RETURN expr` and `BEGIN ATOMIC ... END` bodies are parsed SQL: the walk visits them.
        Some(_) | None => return Ok(Vec::new()),
    };
    if depth >= MAX_BODY_DEPTH {
        return Err(Refusal::new(
            "a function created inside a function body",
            "create the inner function with its own statement",
        ));
    }
    let Expr::Value(value) = body else {
        return Err(unreadable("this body"));
    };
    let (content, dollar) = match &value.value {
        Value::DollarQuotedString(d) => (d.value.as_str(), true),
        Value::SingleQuotedString(s) => (s.as_str(), false),
        _ => return Err(unreadable("this body")),
    };
    let edits =
        if language == "plpgsql" { plpgsql(content)? } else { super::analyze_function_body(content, depth + 1)? };
    if edits.is_empty() {
        return Ok(edits);
    }
    if !dollar {
        return Err(Refusal::new(
            "a time function in a single-quoted function body",
            "Barista rewrites time functions inside dollar-quoted bodies only; write the body as \
             $$ ... $$",
        ));
    }
    let offset = content_offset(value.span.start, content, text, tokens)
        .ok_or_else(|| Refusal::internal("locate a function body"))?;
    Ok(edits.into_iter().map(|e| e.shifted(offset)).collect())
}

/// The byte offset in `text` of the content of the dollar-quoted string token at `location`.
fn content_offset(
    location: sqlparser::tokenizer::Location,
    content: &str,
    text: &str,
    tokens: &Tokens,
) -> Option<usize> {
    let index = tokens.at(location)?;
    let Token::DollarQuotedString(quoted) = tokens.token(index)? else { return None };
    let start = tokens.start(index)?;
    let open = format!("${}$", quoted.tag.as_deref().unwrap_or(""));
    let offset = start + open.len();
    let written = text.get(start..offset + content.len())?;
    (written.starts_with(&open) && written.get(open.len()..)? == content).then_some(offset)
}

fn unreadable(what: &str) -> Refusal {
    Refusal::new(
        what,
        "Barista checks function bodies when they are created and can read LANGUAGE sql and \
         plpgsql only; write the function in one of those",
    )
}

/// Keywords refused anywhere in a plpgsql body, with the reason.
fn refused_keyword(keyword: Keyword) -> Option<(&'static str, &'static str)> {
    let session = "it is session state, which a replica loses when it restarts and re-applies the log";
    Some(match keyword {
        Keyword::EXECUTE => {
            ("dynamic SQL (EXECUTE)", "Barista cannot check SQL built at run time; write the statements out")
        }
        Keyword::LISTEN | Keyword::UNLISTEN => ("LISTEN", session),
        Keyword::NOTIFY => ("NOTIFY", "every replica would notify its own listeners; write to an outbox table"),
        Keyword::COPY => ("COPY", "the rows or files would be each replica's own; use INSERT and SELECT"),
        Keyword::PREPARE | Keyword::DEALLOCATE => ("PREPARE", session),
        Keyword::DISCARD | Keyword::RESET => ("DISCARD/RESET", session),
        Keyword::TEMP | Keyword::TEMPORARY => ("a temporary object", session),
        Keyword::TABLESAMPLE => ("TABLESAMPLE", "the sample depends on each replica's physical storage"),
        Keyword::NOWAIT => ("NOWAIT", "whether a lock is free at that instant differs between replicas"),
        Keyword::VACUUM => ("VACUUM", "it cannot run inside a transaction"),
        _ => return None,
    })
}

/// A token-level check of a plpgsql body; returns edits in the body's own offsets.
fn plpgsql(body: &str) -> Result<Vec<Edit>, Refusal> {
    let raw = Tokenizer::new(&PostgreSqlDialect {}, body)
        .tokenize_with_location()
        .map_err(|e| Refusal::new("a plpgsql body Barista could not read", format!("its tokenizer failed: {e}")))?;
    let tokens = Tokens::new(body, raw).ok_or_else(|| Refusal::internal("read a plpgsql body"))?;
    let significant: Vec<usize> = (0..tokens.spans().len())
        .filter(|&i| tokens.token(i).is_some_and(|t| !matches!(t, Token::Whitespace(_))))
        .collect();
    let at = |pos: Option<usize>| pos.and_then(|p| significant.get(p)).and_then(|&i| tokens.token(i));
    let mut edits = Vec::new();
    let mut skip_until = 0;
    for (pos, &index) in significant.iter().enumerate() {
        if index < skip_until {
            continue;
        }
        let Some(Token::Word(word)) = tokens.token(index) else { continue };
        let previous = at(pos.checked_sub(1));
        let next = at(Some(pos + 1));
        if word.quote_style.is_none() {
            if let Some((construct, why)) = refused_keyword(word.keyword) {
                return Err(Refusal::new(construct, why));
            }
            let next_word = |k: Keyword| matches!(next, Some(Token::Word(w)) if w.keyword == k);
            if word.keyword == Keyword::SKIP && next_word(Keyword::LOCKED) {
                return Err(Refusal::new("SKIP LOCKED", "each replica would skip different rows"));
            }
            let statement_start = match previous {
                None | Some(Token::SemiColon) => true,
                Some(Token::Word(w)) => {
                    matches!(w.keyword, Keyword::BEGIN | Keyword::THEN | Keyword::ELSE)
                        || w.value.eq_ignore_ascii_case("loop")
                }
                _ => false,
            };
            if word.keyword == Keyword::SET && statement_start && !next_word(Keyword::LOCAL) {
                return Err(Refusal::new(
                    "session-level SET",
                    "a setting that outlives the transaction is session state, which a replica \
                     loses when it restarts; use SET LOCAL, or a SET clause on the function",
                ));
            }
        }
        let name = if word.quote_style.is_some() { word.value.clone() } else { word.value.to_lowercase() };
        if ["ctid", "xmin", "xmax", "cmin", "cmax"].contains(&name.as_str()) {
            return Err(Refusal::new(
                format!("the system column {name}"),
                "it differs between replicas; identify rows by their primary key",
            ));
        }
        // A name after a dot is a field or a qualified name; only pg_catalog qualifies built-ins.
        let (first, schema) = match previous {
            Some(Token::Period) => {
                let qualifier = pos.checked_sub(2).and_then(|p| significant.get(p).copied());
                match qualifier.and_then(|q| tokens.token(q)) {
                    Some(Token::Word(q)) if q.value.eq_ignore_ascii_case("pg_catalog") => {
                        (qualifier.unwrap_or(index), Some("pg_catalog".to_string()))
                    }
                    _ => continue,
                }
            }
            _ => (index, None),
        };
        let open = match next {
            Some(Token::LParen) => significant.get(pos + 1).copied(),
            _ => None,
        };
        let close = match open {
            // Unbalanced parentheses are the client's syntax error, not an internal one (found by
            // the `sql` fuzz target: fuzz/corpus/sql/regression-plpgsql-unclosed-paren).
            Some(open) => Some(tokens.closing_paren(open).ok_or_else(|| {
                Refusal::unparsable("a parenthesis in its plpgsql body is never closed; check the body's syntax")
            })?),
            None => None,
        };
        let arg_tokens: Vec<&Token> = match (open, close) {
            (Some(open), Some(close)) => (open + 1..close)
                .filter_map(|i| tokens.token(i))
                .filter(|t| !matches!(t, Token::Whitespace(_)))
                .collect(),
            _ => Vec::new(),
        };
        let arg_count = open.map(|_| argument_count(&arg_tokens));
        let callee = Callee { schema, name, quoted: word.quote_style.is_some() };
        match classify(&callee, arg_count) {
            FunctionClass::Time(form, syntax) => {
                let precision = match (syntax, arg_tokens.as_slice()) {
                    (TimeSyntax::Keyword, [Token::Number(digits, false)]) => Some(digits.clone()),
                    (TimeSyntax::Keyword, []) if open.is_none() => None,
                    (TimeSyntax::Call, []) if open.is_some() => None,
                    _ => continue, // not a call of the time function (a variable, or a mistake PostgreSQL reports)
                };
                let last = close.unwrap_or(index);
                let (Some(start), Some(end)) = (tokens.start(first), tokens.end(last)) else {
                    return Err(Refusal::internal("locate a time function"));
                };
                edits.push(Edit {
                    start,
                    end,
                    replacement: Replacement::Time { head: TimeHead::Pinned, form, precision },
                });
                skip_until = last + 1;
            }
            FunctionClass::VariesByReplica(family) | FunctionClass::Refused(family) if open.is_some() => {
                return Err(Refusal::new(callee.display(), format!("{}; {}", family.why, family.advice)));
            }
            FunctionClass::SetConfig if open.is_some() => {
                return Err(Refusal::new(
                    "set_config()",
                    "Barista cannot check its arguments inside plpgsql; use SET LOCAL",
                ));
            }
            _ => {}
        }
    }
    Ok(edits)
}

/// The number of top-level arguments in the tokens between a call's parentheses.
fn argument_count(tokens: &[&Token]) -> usize {
    if tokens.is_empty() {
        return 0;
    }
    let mut depth = 0usize;
    let mut commas = 0;
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => commas += 1,
            _ => {}
        }
    }
    commas + 1
}
