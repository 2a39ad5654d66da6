//! From parser locations to byte offsets in the client's text, and splicing.
//!
//! Rewrites are made in the client's original text, not by printing the AST again: everything
//! Barista does not rewrite reaches PostgreSQL byte for byte as the client wrote it (comments,
//! spacing, quoting, the spelling of every literal), so PostgreSQL's behaviour is the client's
//! intent with only the time values fixed.
//!
//! sqlparser 0.64 gives every token an exact span (line and column, columns counted in
//! characters), but the spans of larger AST nodes are not reliable: a function call's span stops
//! before its closing parenthesis. So the AST only says *where a construct starts* (the span of
//! its first identifier, which is a token's span) and the token stream says *where it ends*
//! (matching parentheses). A location that does not land on the expected token is an internal
//! error and refuses the statement; it never guesses.

use super::refusal::Refusal;
use super::time::{TimeForm, TimeHead, TxnTimestamp, render_time};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

/// The text's tokens with the byte range of each.
pub(crate) struct Tokens {
    tokens: Vec<TokenWithSpan>,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

/// Walks the text once, in step with the tokenizer's (line, column) counting.
struct Cursor<'a> {
    text: &'a str,
    byte: usize,
    line: u64,
    column: u64,
}

impl Cursor<'_> {
    /// Advance to `location` and return its byte offset; `None` if it lies behind the cursor or
    /// beyond the text. Columns count characters and a new line starts after each '\n', exactly
    /// as the tokenizer counts.
    fn advance_to(&mut self, location: Location) -> Option<usize> {
        while (self.line, self.column) < (location.line, location.column) {
            let c = self.text.get(self.byte..)?.chars().next()?;
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        ((self.line, self.column) == (location.line, location.column)).then_some(self.byte)
    }
}

impl Tokens {
    /// Byte ranges for `tokens` of `text`, computed in one pass (a statement with thousands of
    /// rewrites stays linear). `None` if the spans do not fit the text.
    pub fn new(text: &str, tokens: Vec<TokenWithSpan>) -> Option<Self> {
        let mut cursor = Cursor { text, byte: 0, line: 1, column: 1 };
        let mut starts = Vec::with_capacity(tokens.len());
        let mut ends = Vec::with_capacity(tokens.len());
        for token in &tokens {
            starts.push(cursor.advance_to(token.span.start)?);
            ends.push(cursor.advance_to(token.span.end)?);
        }
        Some(Self { tokens, starts, ends })
    }

    /// The tokens, for the parser.
    pub fn spans(&self) -> &[TokenWithSpan] {
        &self.tokens
    }

    /// The index of the token starting at `location`.
    pub fn at(&self, location: Location) -> Option<usize> {
        let key = (location.line, location.column);
        self.tokens.binary_search_by(|t| (t.span.start.line, t.span.start.column).cmp(&key)).ok()
    }

    /// The next token at or after `index` that is not whitespace or a comment.
    pub fn significant(&self, index: usize) -> Option<usize> {
        (index..self.tokens.len())
            .find(|&i| self.tokens.get(i).is_some_and(|t| !matches!(t.token, Token::Whitespace(_))))
    }

    /// Token `index`.
    pub fn token(&self, index: usize) -> Option<&Token> {
        self.tokens.get(index).map(|t| &t.token)
    }

    /// The byte offset where token `index` starts.
    pub fn start(&self, index: usize) -> Option<usize> {
        self.starts.get(index).copied()
    }

    /// The byte offset just past token `index`.
    pub fn end(&self, index: usize) -> Option<usize> {
        self.ends.get(index).copied()
    }

    /// The index of the parenthesis closing the one at `open`.
    pub fn closing_paren(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for i in open..self.tokens.len() {
            match self.token(i)? {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The token indices of a function call whose name starts at `location`: from the first
    /// name token to the last token of the call (`name_parts` dotted names, then the argument
    /// list if `parens`).
    pub fn call_extent(&self, location: Location, name_parts: usize, parens: bool) -> Option<(usize, usize)> {
        let first = self.at(location)?;
        if !matches!(self.token(first)?, Token::Word(_)) {
            return None;
        }
        let mut last = first;
        for _ in 1..name_parts {
            let dot = self.significant(last + 1)?;
            if *self.token(dot)? != Token::Period {
                return None;
            }
            last = self.significant(dot + 1)?;
            if !matches!(self.token(last)?, Token::Word(_)) {
                return None;
            }
        }
        if parens {
            let open = self.significant(last + 1)?;
            if *self.token(open)? != Token::LParen {
                return None;
            }
            last = self.closing_paren(open)?;
        }
        Some((first, last))
    }

    /// The end (byte offset) of a select-list item that has no alias, given the last token of
    /// the time function inside it and `closing` parentheses of the item still to come (from
    /// `CAST(` and bare parentheses around the function).
    ///
    /// The item ends before the first of: a comma or closing parenthesis at its own depth once
    /// its own parentheses are closed, `;`, the end, or a keyword that ends a select list.
    pub fn item_end(&self, after: usize, mut closing: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut last = after;
        let mut i = after + 1;
        while let Some(next) = self.significant(i) {
            let token = self.token(next)?;
            match token {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RBracket => depth = depth.checked_sub(1)?,
                Token::RParen if depth > 0 => depth -= 1,
                Token::RParen if closing > 0 => closing -= 1,
                Token::RParen | Token::Comma | Token::SemiColon if depth == 0 => break,
                Token::Word(word) if depth == 0 && closing == 0 && ends_select_item(word.keyword) => break,
                _ => {}
            }
            last = next;
            i = next + 1;
        }
        if closing > 0 {
            return None;
        }
        self.end(last)
    }
}

/// Keywords after which a select-list item cannot continue.
fn ends_select_item(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::FROM
            | Keyword::INTO
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::WINDOW
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::FETCH
            | Keyword::FOR
            | Keyword::UNION
            | Keyword::INTERSECT
            | Keyword::EXCEPT
            | Keyword::RETURNING
            | Keyword::ON
    )
}

/// What goes into a byte range of the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Replacement {
    /// A time function, rendered from the transaction timestamp.
    Time { head: TimeHead, form: TimeForm, precision: Option<String> },
    /// Fixed text (a column alias that keeps the output column's name).
    Text(String),
}

/// Replace `start..end` of the text (an empty range inserts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    pub replacement: Replacement,
}

impl Edit {
    /// The same edit in a text that begins `by` bytes later (a function body inside a statement).
    pub fn shifted(self, by: usize) -> Self {
        Self { start: self.start + by, end: self.end + by, ..self }
    }
}

/// `text` with `edits` applied. Edits must not overlap; they may come in any order.
pub(crate) fn splice(text: &str, mut edits: Vec<Edit>, timestamp: TxnTimestamp) -> Result<String, Refusal> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len() + 64 * edits.len());
    let mut copied = 0;
    for edit in edits {
        let kept = text.get(copied..edit.start).ok_or_else(|| Refusal::internal("place a rewrite"))?;
        if edit.end < edit.start || text.get(edit.start..edit.end).is_none() {
            return Err(Refusal::internal("place a rewrite"));
        }
        out.push_str(kept);
        match edit.replacement {
            Replacement::Time { head, form, precision } => {
                out.push_str(&render_time(head, form, precision.as_deref(), timestamp));
            }
            Replacement::Text(fixed) => out.push_str(&fixed),
        }
        copied = edit.end;
    }
    out.push_str(text.get(copied..).ok_or_else(|| Refusal::internal("place a rewrite"))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    #[test]
    fn token_spans_map_back_to_their_text() {
        let text = "SELECT 'ü' ||\n  \"Now\" ( /* c */ ) -- x\n, $t$a$t$";
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize_with_location().expect("tokenizes");
        let count = tokens.len();
        let view = Tokens::new(text, tokens).expect("spans fit the text");
        let rebuilt: String = (0..count)
            .map(|i| {
                let (s, e) = (view.start(i).expect("start"), view.end(i).expect("end"));
                text.get(s..e).expect("in text").to_string()
            })
            .collect();
        assert_eq!(rebuilt, text);
    }

    #[test]
    fn splice_applies_sorted_non_overlapping_edits() {
        let ts = TxnTimestamp::from_unix_micros(0).expect("in range");
        let edits = vec![
            Edit { start: 7, end: 7, replacement: Replacement::Text(" AS x".into()) },
            Edit { start: 0, end: 1, replacement: Replacement::Text("Z".into()) },
        ];
        assert_eq!(splice("abcdefg", edits, ts).expect("splices"), "Zbcdefg AS x");
        let bad = vec![Edit { start: 5, end: 2, replacement: Replacement::Text(String::new()) }];
        assert!(splice("abcdefg", bad, ts).is_err());
        let outside = vec![Edit { start: 9, end: 9, replacement: Replacement::Text(String::new()) }];
        assert!(splice("abc", outside, ts).is_err());
    }
}
