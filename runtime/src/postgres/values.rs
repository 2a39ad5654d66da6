//! [`SqlValue`]s to PostgreSQL parameters, and PostgreSQL values (binary or text) to
//! [`SqlValue`]s.
//!
//! Parameters are converted to the type the server inferred for them (known from the prepared
//! statement), the way an untyped literal would be: an exact match goes in binary (`Int` to
//! `int8`, `Float` to `float8`, `Bool` to `bool`, `Bytes` to `bytea`); anything else goes in
//! PostgreSQL's text format and the server's input function for the inferred type reads it, so
//! `Int` fits an `int4` or `numeric` column, `Text` fits `timestamptz` or `uuid`, and a value out
//! of range gets the server's own error (22003). The one refusal: `Bytes` for a type that is not
//! `bytea` (42804), as other drivers do, rather than reading raw bytes as that type's text.
//!
//! Results: `int2`/`int4`/`int8` become `Int`, `float4`/`float8` `Float`, `bool` `Bool`, `bytea`
//! `Bytes`, and every other type `Text` in PostgreSQL's own text output. Types whose binary form
//! is their text form, or converts to it exactly (`text`, `varchar`, `bpchar`, `name`, `json`,
//! `jsonb`, `uuid`, `numeric`, enums), are read from the binary results; the others are fetched
//! as text by the session (see `super` for how).

use std::borrow::Cow;
use std::error::Error;
use std::fmt::Write as _;

use bytes::BytesMut;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::sql::{BackendFault, SqlError, SqlValue};

/// PostgreSQL's error for text containing a NUL character (it cannot store one).
pub(crate) fn nul_error() -> SqlError {
    SqlError { sqlstate: "22021".into(), message: "invalid byte sequence for encoding \"UTF8\": 0x00".into() }
}

/// A domain's base type (recursively); any other type itself. A domain's values have its base
/// type's representation.
fn base(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base(inner),
        _ => ty,
    }
}

/// One bound parameter: its encoding, and its bytes (`None`: NULL).
#[derive(Debug)]
pub(crate) struct Param<'a> {
    format: Format,
    bytes: Option<Cow<'a, [u8]>>,
}

impl Param<'_> {
    fn binary(bytes: impl Into<Vec<u8>>) -> Param<'static> {
        Param { format: Format::Binary, bytes: Some(Cow::Owned(bytes.into())) }
    }

    fn text(text: String) -> Param<'static> {
        Param { format: Format::Text, bytes: Some(Cow::Owned(text.into_bytes())) }
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.bytes {
            None => Ok(IsNull::Yes),
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    /// Any type: the conversion to it was decided in [`bind`].
    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        self.format
    }

    to_sql_checked!();
}

/// Converts `values` to the statement's parameter `types` (same length). A value that cannot be
/// used as its type is the statement's error, as it is on every replica.
pub(crate) fn bind<'a>(values: &'a [SqlValue], types: &[Type]) -> Result<Vec<Param<'a>>, SqlError> {
    values.iter().zip(types).map(|(value, ty)| bind_one(value, ty)).collect()
}

fn bind_one<'a>(value: &'a SqlValue, ty: &Type) -> Result<Param<'a>, SqlError> {
    let target = base(ty);
    Ok(match value {
        SqlValue::Null => Param { format: Format::Binary, bytes: None },
        SqlValue::Int(i) if *target == Type::INT8 => Param::binary(i.to_be_bytes()),
        SqlValue::Int(i) => Param::text(i.to_string()),
        SqlValue::Float(f) if *target == Type::FLOAT8 => Param::binary(f.to_bits().to_be_bytes()),
        SqlValue::Float(f) => Param::text(float_text(*f)),
        SqlValue::Bool(b) if *target == Type::BOOL => Param::binary([u8::from(*b)]),
        SqlValue::Bool(b) => Param::text(if *b { "true" } else { "false" }.into()),
        // The text format of the text types is their binary format too.
        SqlValue::Text(s) => Param { format: Format::Text, bytes: Some(Cow::Borrowed(s.as_bytes())) },
        SqlValue::Bytes(b) if *target == Type::BYTEA => {
            Param { format: Format::Binary, bytes: Some(Cow::Borrowed(b.as_slice())) }
        }
        SqlValue::Bytes(_) => {
            return Err(SqlError {
                sqlstate: "42804".into(),
                message: format!("a bytes parameter cannot be used as type {}", ty.name()),
            });
        }
    })
}

/// A parameter as an SQL literal of unknown type, which PostgreSQL reads with the input function
/// of the type it is used as, exactly as it reads a text-format parameter (see
/// [`string_literal`]). `None` if the value cannot be a
/// literal (text containing NUL, which PostgreSQL cannot store either).
pub(crate) fn literal(value: &SqlValue) -> Option<String> {
    let text = match value {
        SqlValue::Null => return Some("NULL".into()),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Float(f) => float_text(*f),
        SqlValue::Bool(b) => if *b { "true" } else { "false" }.into(),
        SqlValue::Text(s) if s.contains('\0') => return None,
        SqlValue::Text(s) => s.clone(),
        SqlValue::Bytes(b) => {
            let mut hex = String::with_capacity(2 + 2 * b.len());
            hex.push_str("\\x");
            for byte in b {
                // Writing to a String cannot fail.
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        }
    };
    Some(string_literal(&text))
}

/// `name` as an SQL identifier: always quoted, so that a name that is a keyword or has capitals
/// means itself.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal of unknown type, read the same whatever
/// `standard_conforming_strings` is: `'...'`, or an `E'...'` string when it holds a backslash.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str(if text.contains('\\') { "E'" } else { "'" });
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A float as PostgreSQL's `float8out` writes it (shortest text that reads back exactly;
/// exponent form below 1e-4 and from 1e15). Any exact text would do as input; this one also makes
/// a float stored into a text column read as PostgreSQL would have written it.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..15).contains(&exponent) {
        return format!("{sign}{mantissa}e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.unsigned_abs());
    }
    let mut out = String::from(sign);
    if exponent < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exponent as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// A result value in binary format, as the client library hands it over: any type, NULL or not.
pub(crate) struct Raw<'a>(pub(crate) Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// What a result column of this type becomes, and how it is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Decode {
    Int,
    Float4,
    Float8,
    Bool,
    Bytes,
    /// Text whose binary form is the text itself.
    Text,
    Jsonb,
    Uuid,
    Numeric,
    /// Only the text format gives PostgreSQL's text output.
    TextFormatOnly,
}

fn decode_kind(ty: &Type) -> Decode {
    let ty = base(ty);
    if matches!(ty.kind(), Kind::Enum(_)) {
        return Decode::Text;
    }
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => Decode::Int,
        Type::FLOAT4 => Decode::Float4,
        Type::FLOAT8 => Decode::Float8,
        Type::BOOL => Decode::Bool,
        Type::BYTEA => Decode::Bytes,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => Decode::Text,
        Type::JSONB => Decode::Jsonb,
        Type::UUID => Decode::Uuid,
        Type::NUMERIC => Decode::Numeric,
        _ => Decode::TextFormatOnly,
    }
}

/// Whether values of this type can be read from the binary results.
pub(crate) fn binary_readable(ty: &Type) -> bool {
    decode_kind(ty) != Decode::TextFormatOnly
}

fn undecodable(ty: &Type, why: impl std::fmt::Display) -> BackendFault {
    BackendFault(format!("PostgreSQL sent a {} value this backend cannot read: {why}", ty.name()))
}

/// A binary-format result value. Only for types that [`binary_readable`] accepts.
pub(crate) fn from_binary(ty: &Type, raw: Option<&[u8]>) -> Result<SqlValue, BackendFault> {
    let Some(raw) = raw else { return Ok(SqlValue::Null) };
    let fail = |e: Box<dyn Error + Sync + Send>| undecodable(ty, e);
    Ok(match (decode_kind(ty), base(ty)) {
        (Decode::Int, t) if *t == Type::INT2 => SqlValue::Int(i16::from_sql(t, raw).map_err(fail)?.into()),
        (Decode::Int, t) if *t == Type::INT4 => SqlValue::Int(i32::from_sql(t, raw).map_err(fail)?.into()),
        (Decode::Int, t) => SqlValue::Int(i64::from_sql(t, raw).map_err(fail)?),
        (Decode::Float4, t) => SqlValue::Float(f32::from_sql(t, raw).map_err(fail)?.into()),
        (Decode::Float8, t) => SqlValue::Float(f64::from_sql(t, raw).map_err(fail)?),
        (Decode::Bool, t) => SqlValue::Bool(bool::from_sql(t, raw).map_err(fail)?),
        (Decode::Bytes, _) => SqlValue::Bytes(raw.to_vec()),
        (Decode::Text, _) => SqlValue::Text(utf8(ty, raw)?),
        (Decode::Jsonb, _) => match raw.split_first() {
            Some((1, text)) => SqlValue::Text(utf8(ty, text)?),
            _ => return Err(undecodable(ty, "unknown jsonb version")),
        },
        (Decode::Uuid, _) => SqlValue::Text(uuid_text(raw).ok_or_else(|| undecodable(ty, "not 16 bytes"))?),
        (Decode::Numeric, _) => SqlValue::Text(numeric_text(raw).ok_or_else(|| undecodable(ty, "malformed"))?),
        (Decode::TextFormatOnly, _) => return Err(undecodable(ty, "not readable in binary format")),
    })
}

fn utf8(ty: &Type, raw: &[u8]) -> Result<String, BackendFault> {
    std::str::from_utf8(raw).map(str::to_owned).map_err(|e| undecodable(ty, e))
}

/// A text-format result value, as PostgreSQL's output function wrote it (with the session's
/// pinned output settings: `extra_float_digits = 1` makes float text exact, `bytea_output = hex`).
pub(crate) fn from_text(ty: &Type, text: Option<&str>) -> Result<SqlValue, BackendFault> {
    let Some(text) = text else { return Ok(SqlValue::Null) };
    let fail = |why: &str| undecodable(ty, format!("{why}: {text:?}"));
    Ok(match decode_kind(ty) {
        Decode::Int => SqlValue::Int(text.parse().map_err(|_| fail("not an integer"))?),
        // A float4 reads back exactly as float4; widening it then gives what the binary path gives.
        Decode::Float4 => SqlValue::Float(parse_float::<f32>(text).ok_or_else(|| fail("not a float4"))?.into()),
        Decode::Float8 => SqlValue::Float(parse_float::<f64>(text).ok_or_else(|| fail("not a float8"))?),
        Decode::Bool => match text {
            "t" => SqlValue::Bool(true),
            "f" => SqlValue::Bool(false),
            _ => return Err(fail("not a boolean")),
        },
        Decode::Bytes => SqlValue::Bytes(hex_bytes(text).ok_or_else(|| fail("not hex bytea output"))?),
        Decode::Text | Decode::Jsonb | Decode::Uuid | Decode::Numeric | Decode::TextFormatOnly => {
            SqlValue::Text(text.to_owned())
        }
    })
}

fn parse_float<F: std::str::FromStr + FloatSpecials>(text: &str) -> Option<F> {
    match text {
        "NaN" => Some(F::NAN),
        "Infinity" => Some(F::INFINITY),
        "-Infinity" => Some(F::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

trait FloatSpecials {
    const NAN: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
}

impl FloatSpecials for f32 {
    const NAN: f32 = f32::NAN;
    const INFINITY: f32 = f32::INFINITY;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
}

impl FloatSpecials for f64 {
    const NAN: f64 = f64::NAN;
    const INFINITY: f64 = f64::INFINITY;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
}

/// `bytea` in hex output format: `\x` and two hex digits a byte.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// `uuid_out`: lower-case hex in groups of 8-4-4-4-12.
fn uuid_text(raw: &[u8]) -> Option<String> {
    if raw.len() != 16 {
        return None;
    }
    let mut out = String::with_capacity(36);
    for (i, byte) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    Some(out)
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// `numeric` from its binary form (`numeric_send`: digit count, weight, sign, display scale, then
/// base-10000 digits) to the text `numeric_out` writes, following PostgreSQL's `get_str_from_var`
/// step by step: integer part without leading zeros (at least one digit), then exactly `dscale`
/// fractional digits.
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(2 * i..2 * i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    if raw.len() != 8 + 2 * ndigits {
        return None;
    }
    match sign {
        NUMERIC_NAN => return Some("NaN".into()),
        NUMERIC_PINF => return Some("Infinity".into()),
        NUMERIC_NINF => return Some("-Infinity".into()),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    if digits.iter().any(|d| *d > 9999) {
        return None;
    }
    let digit = |d: i64| usize::try_from(d).ok().and_then(|d| digits.get(d)).copied().unwrap_or(0);
    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    let mut d: i64;
    if weight < 0 {
        out.push('0');
        d = weight + 1;
    } else {
        d = 0;
        while d <= weight {
            let group = digit(d);
            if d == 0 {
                // Leading zeros of the first group are not written.
                let _ = write!(out, "{group}");
            } else {
                let _ = write!(out, "{group:04}");
            }
            d += 1;
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::with_capacity(dscale + 4);
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(d));
            d += 1;
        }
        fraction.truncate(dscale);
        out.push_str(&fraction);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale].into_iter().chain(digits.iter().copied()) {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numeric_text_follows_numeric_out() {
        let cases: [(Vec<u8>, &str); 11] = [
            (numeric(0, NUMERIC_POS, 0, &[]), "0"),
            (numeric(0, NUMERIC_POS, 2, &[]), "0.00"),
            (numeric(0, NUMERIC_POS, 0, &[12]), "12"),
            (numeric(1, NUMERIC_NEG, 2, &[1, 2345, 6700]), "-12345.67"),
            (numeric(-1, NUMERIC_POS, 4, &[5]), "0.0005"),
            (numeric(-2, NUMERIC_POS, 8, &[12]), "0.00000012"),
            (numeric(2, NUMERIC_POS, 0, &[1]), "100000000"),
            (numeric(0, NUMERIC_POS, 1, &[3, 1400]), "3.1"),
            (numeric(0, NUMERIC_NAN, 0, &[]), "NaN"),
            (numeric(0, NUMERIC_PINF, 0, &[]), "Infinity"),
            (numeric(0, NUMERIC_NINF, 0, &[]), "-Infinity"),
        ];
        for (raw, text) in cases {
            assert_eq!(numeric_text(&raw).as_deref(), Some(text));
        }
        assert_eq!(numeric_text(&[0, 1]), None, "truncated");
        assert_eq!(numeric_text(&numeric(0, NUMERIC_POS, 0, &[10000])), None, "digit out of range");
    }

    #[test]
    fn float_text_is_float8out() {
        let cases = [
            (1.5, "1.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e300, "1e+300"),
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.25e-7, "-1.25e-07"),
            (100.0, "100"),
            (0.1, "0.1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, text) in cases {
            assert_eq!(float_text(value), text, "{value:e}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("aid"), "\"aid\"");
        assert_eq!(quote_ident("Name"), "\"Name\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn literals_are_escaped_strings() {
        assert_eq!(literal(&SqlValue::Text("it's a \\ 'x'".into())).as_deref(), Some("E'it''s a \\\\ ''x'''"));
        assert_eq!(literal(&SqlValue::Bytes(vec![0, 1, 255])).as_deref(), Some("E'\\\\x0001ff'"));
        assert_eq!(literal(&SqlValue::Null).as_deref(), Some("NULL"));
        assert_eq!(literal(&SqlValue::Int(-3)).as_deref(), Some("'-3'"));
        assert_eq!(literal(&SqlValue::Text("a\0b".into())), None);
    }

    #[test]
    fn text_results_read_back() {
        assert_eq!(from_text(&Type::INT4, Some("-7")), Ok(SqlValue::Int(-7)));
        assert_eq!(from_text(&Type::FLOAT4, Some("1.1")), Ok(SqlValue::Float(f64::from(1.1f32))));
        assert_eq!(from_text(&Type::FLOAT8, Some("-Infinity")), Ok(SqlValue::Float(f64::NEG_INFINITY)));
        assert_eq!(from_text(&Type::BOOL, Some("t")), Ok(SqlValue::Bool(true)));
        assert_eq!(from_text(&Type::BYTEA, Some("\\x00ff")), Ok(SqlValue::Bytes(vec![0, 255])));
        assert_eq!(from_text(&Type::TIMESTAMPTZ, None), Ok(SqlValue::Null));
        assert!(from_text(&Type::INT8, Some("x")).is_err());
    }

    #[test]
    fn uuid_is_grouped_lower_hex() {
        let raw: Vec<u8> = (0..16).map(|i| i * 17).collect();
        assert_eq!(uuid_text(&raw).as_deref(), Some("00112233-4455-6677-8899-aabbccddeeff"));
    }
}
