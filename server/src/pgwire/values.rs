//! Between the PostgreSQL protocol's values and the runtime's [`SqlValue`]s.
//!
//! - Parameters: text-format parameters become `Text`, which every replica's PostgreSQL reads
//!   with the input function of the type it infers, exactly as it would read the client's own
//!   text parameter. Binary-format parameters are decoded by the type the client was told (or
//!   told the server) at Parse: integers, floats, booleans and bytea to their own kinds, the
//!   other supported types to their text form.
//! - Results: the runtime hands over each value as `Int`, `Float`, `Bool`, `Bytes` or, for every
//!   other type, PostgreSQL's own text output. Text format writes that text (so a client reads
//!   what PostgreSQL would have sent); binary format encodes it as the column's type.
//!
//! Types are the builtin ones known to `postgres-types` (looked up by name for the simple
//! protocol, whose results carry type names); any other type (an enum, a domain of unknown
//! base) is described as `text`, which is how its values arrive.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use barista_runtime::calendar::{civil_from_days, days_from_civil};
use barista_runtime::postgres::float_text;
use barista_runtime::sql::{SqlError, SqlValue};
use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use tokio_postgres::types::Kind;

/// SQLSTATE `feature_not_supported`.
const NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `invalid_binary_representation`.
const BAD_BINARY: &str = "22P03";
/// SQLSTATE `invalid_text_representation`.
const BAD_TEXT: &str = "22P02";
/// SQLSTATE `character_not_in_repertoire`.
const BAD_UTF8: &str = "22021";

fn error(sqlstate: &str, message: impl Into<String>) -> SqlError {
    SqlError { sqlstate: sqlstate.into(), message: message.into() }
}

/// Builtin types by name (`int4`, `_text`, ...).
fn builtin_types() -> &'static HashMap<String, Type> {
    static TYPES: OnceLock<HashMap<String, Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        // Builtin OIDs are below 16384 (FirstNormalObjectId); postgres-types knows those it names.
        (0..16_384).filter_map(Type::from_oid).map(|ty| (ty.name().to_owned(), ty)).collect()
    })
}

/// The type a result column of type `name` is described as: the builtin type of that name, or
/// `text` (how the runtime returns values of every other type).
pub fn type_named(name: &str) -> Type {
    builtin_types().get(name).cloned().unwrap_or(Type::TEXT)
}

/// A domain's base type (recursively); any other type itself.
fn base(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base(inner),
        _ => ty,
    }
}

/// The type a client is told a described column has: builtin types as they are; enums, domains
/// and other types the runtime returns as text, as `text` (a binary-format client then reads
/// the text it would get in text format).
pub fn describe_as(ty: &Type) -> Type {
    let ty = base(ty);
    if Type::from_oid(ty.oid()).is_some() { ty.clone() } else { Type::TEXT }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// One bound parameter. `raw` is `None` for NULL; `binary` says its format; `ty` is its type as
/// declared at Parse or described (UNKNOWN when neither says).
pub fn param(raw: Option<&[u8]>, binary: bool, ty: &Type, index: usize) -> Result<SqlValue, SqlError> {
    let Some(raw) = raw else { return Ok(SqlValue::Null) };
    if !binary {
        return text(raw).map(|t| SqlValue::Text(t.to_owned())).map_err(|e| at_param(e, index));
    }
    binary_param(raw, base(ty)).map_err(|e| at_param(e, index))
}

fn at_param(e: SqlError, index: usize) -> SqlError {
    SqlError { message: format!("parameter ${}: {}", index + 1, e.message), ..e }
}

fn text(raw: &[u8]) -> Result<&str, SqlError> {
    std::str::from_utf8(raw).map_err(|_| error(BAD_UTF8, "invalid byte sequence for encoding \"UTF8\""))
}

fn fixed<const N: usize>(raw: &[u8], ty: &Type) -> Result<[u8; N], SqlError> {
    raw.try_into().map_err(|_| {
        error(BAD_BINARY, format!("a binary {} value must be {N} bytes, this one has {}", ty.name(), raw.len()))
    })
}

fn binary_param(raw: &[u8], ty: &Type) -> Result<SqlValue, SqlError> {
    Ok(match *ty {
        Type::BOOL => SqlValue::Bool(fixed::<1>(raw, ty)?[0] != 0),
        Type::INT2 => SqlValue::Int(i16::from_be_bytes(fixed(raw, ty)?).into()),
        Type::INT4 => SqlValue::Int(i32::from_be_bytes(fixed(raw, ty)?).into()),
        Type::INT8 => SqlValue::Int(i64::from_be_bytes(fixed(raw, ty)?)),
        Type::OID => SqlValue::Int(u32::from_be_bytes(fixed(raw, ty)?).into()),
        Type::FLOAT4 => SqlValue::Float(f32::from_be_bytes(fixed(raw, ty)?).into()),
        Type::FLOAT8 => SqlValue::Float(f64::from_be_bytes(fixed(raw, ty)?)),
        Type::BYTEA => SqlValue::Bytes(raw.to_vec()),
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => SqlValue::Text(text(json)?.to_owned()),
            _ => return Err(error(BAD_BINARY, "unsupported jsonb version")),
        },
        Type::UUID => SqlValue::Text(uuid_text(&fixed::<16>(raw, ty)?)),
        Type::NUMERIC => SqlValue::Text(numeric_text(raw)?),
        Type::DATE => SqlValue::Text(date_text(i32::from_be_bytes(fixed(raw, ty)?))),
        Type::TIMESTAMP => SqlValue::Text(timestamp_text(i64::from_be_bytes(fixed(raw, ty)?), "")),
        Type::TIMESTAMPTZ => SqlValue::Text(timestamp_text(i64::from_be_bytes(fixed(raw, ty)?), "+00")),
        Type::TIME => SqlValue::Text(time_text(i64::from_be_bytes(fixed(raw, ty)?))),
        _ if is_textual(ty) => SqlValue::Text(text(raw)?.to_owned()),
        _ => {
            return Err(error(
                NOT_SUPPORTED,
                format!(
                    "binary format for type {} is not supported by Barista; send this parameter as text",
                    ty.name()
                ),
            ));
        }
    })
}

/// Types whose binary form is their text.
fn is_textual(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON | Type::XML)
        || matches!(ty.kind(), Kind::Enum(_))
}

// ---------------------------------------------------------------------------------------------
// Results

/// Appends one field of a `DataRow`: its length (-1 for NULL) and its bytes, in `binary` or
/// text format, as type `ty`.
pub fn put_field(out: &mut BytesMut, value: &SqlValue, ty: &Type, binary: bool) -> Result<(), SqlError> {
    let length_at = out.len();
    out.put_i32(-1);
    if *value == SqlValue::Null {
        return Ok(());
    }
    if binary {
        put_binary(out, value, base(ty))?;
    } else {
        put_text(out, value);
    }
    let length = i32::try_from(out.len() - length_at - 4).map_err(|_| error("54000", "value too large"))?;
    out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// A value in PostgreSQL's text output (what the runtime's text values already are).
fn put_text(out: &mut BytesMut, value: &SqlValue) {
    match value {
        SqlValue::Null => {}
        SqlValue::Bool(b) => out.put_slice(if *b { b"t" } else { b"f" }),
        SqlValue::Int(i) => out.put_slice(i.to_string().as_bytes()),
        SqlValue::Float(f) => out.put_slice(float_text(*f).as_bytes()),
        SqlValue::Text(t) => out.put_slice(t.as_bytes()),
        SqlValue::Bytes(b) => {
            let mut hex = String::with_capacity(2 + 2 * b.len());
            hex.push_str("\\x");
            for byte in b {
                let _ = write!(hex, "{byte:02x}");
            }
            out.put_slice(hex.as_bytes());
        }
    }
}

/// The value's text form, for conversions from text.
fn as_text(value: &SqlValue) -> String {
    let mut out = BytesMut::new();
    put_text(&mut out, value);
    String::from_utf8_lossy(&out).into_owned()
}

fn unreadable(value: &SqlValue, ty: &Type) -> SqlError {
    error(BAD_TEXT, format!("Barista cannot send {:?} as a binary {} value", as_text(value), ty.name()))
}

fn integer(value: &SqlValue, ty: &Type) -> Result<i64, SqlError> {
    match value {
        SqlValue::Int(i) => Ok(*i),
        SqlValue::Bool(b) => Ok(i64::from(*b)),
        other => as_text(other).trim().parse().map_err(|_| unreadable(other, ty)),
    }
}

fn float(value: &SqlValue, ty: &Type) -> Result<f64, SqlError> {
    match value {
        SqlValue::Float(f) => Ok(*f),
        SqlValue::Int(i) => Ok(*i as f64),
        other => as_text(other).trim().parse().map_err(|_| unreadable(other, ty)),
    }
}

fn put_binary(out: &mut BytesMut, value: &SqlValue, ty: &Type) -> Result<(), SqlError> {
    let range = |v: i64| error("22003", format!("{v} is out of range for type {}", ty.name()));
    match *ty {
        Type::BOOL => {
            let b = match value {
                SqlValue::Bool(b) => *b,
                other => match as_text(other).as_str() {
                    "t" | "true" => true,
                    "f" | "false" => false,
                    _ => return Err(unreadable(other, ty)),
                },
            };
            out.put_u8(u8::from(b));
        }
        Type::INT2 => {
            let v = integer(value, ty)?;
            out.put_i16(i16::try_from(v).map_err(|_| range(v))?);
        }
        Type::INT4 => {
            let v = integer(value, ty)?;
            out.put_i32(i32::try_from(v).map_err(|_| range(v))?);
        }
        Type::OID => {
            let v = integer(value, ty)?;
            out.put_u32(u32::try_from(v).map_err(|_| range(v))?);
        }
        Type::INT8 => out.put_i64(integer(value, ty)?),
        Type::FLOAT4 => out.put_f32(float(value, ty)? as f32),
        Type::FLOAT8 => out.put_f64(float(value, ty)?),
        Type::BYTEA => match value {
            SqlValue::Bytes(b) => out.put_slice(b),
            other => out.put_slice(&hex_bytes(&as_text(other)).ok_or_else(|| unreadable(other, ty))?),
        },
        Type::JSONB => {
            out.put_u8(1);
            put_text(out, value);
        }
        Type::UUID => out.put_slice(&parse_uuid(&as_text(value)).ok_or_else(|| unreadable(value, ty))?),
        Type::NUMERIC => numeric_binary(out, &as_text(value)).ok_or_else(|| unreadable(value, ty))?,
        Type::DATE => out.put_i32(parse_date(&as_text(value)).ok_or_else(|| unreadable(value, ty))?),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            out.put_i64(parse_timestamp(&as_text(value)).ok_or_else(|| unreadable(value, ty))?)
        }
        Type::TIME => out.put_i64(parse_time(&as_text(value)).ok_or_else(|| unreadable(value, ty))?),
        _ if is_textual(ty) => put_text(out, value),
        _ => {
            return Err(error(
                NOT_SUPPORTED,
                format!(
                    "binary format for type {} is not supported by Barista; request this column in text format",
                    ty.name()
                ),
            ));
        }
    }
    Ok(())
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let bytes = hex_bytes(&format!("\\x{digits}"))?;
    bytes.try_into().ok()
}

fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

// ---------------------------------------------------------------------------------------------
// numeric: base-10000 digits, a weight (the power of 10000 of the first digit), a sign and the
// display scale (digits after the point).

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// Writes numeric text (`-12.50`, `NaN`, `Infinity`) in the binary format.
fn numeric_binary(out: &mut BytesMut, text: &str) -> Option<()> {
    let text = text.trim();
    let special = match text {
        "NaN" => Some(NUMERIC_NAN),
        "Infinity" => Some(NUMERIC_PINF),
        "-Infinity" => Some(NUMERIC_NINF),
        _ => None,
    };
    if let Some(sign) = special {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_u16(0);
        return Some(());
    }
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (NUMERIC_NEG, rest),
        None => (NUMERIC_POS, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dscale = u16::try_from(frac.len()).ok()?;
    // Integer digits padded on the left and fraction digits on the right to whole groups of 4.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let padded: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> =
        padded.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).ok()?.parse().ok()).collect::<Option<_>>()?;
    let mut weight = i16::try_from((int.len() + int_pad) / 4).ok()? - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(i16::try_from(groups.len()).ok()?);
    out.put_i16(weight);
    out.put_u16(if groups.is_empty() { NUMERIC_POS } else { sign });
    out.put_u16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Some(())
}

/// The text of a binary numeric.
fn numeric_text(raw: &[u8]) -> Result<String, SqlError> {
    let bad = || error(BAD_BINARY, "invalid binary numeric");
    let word = |i: usize| raw.get(2 * i..2 * i + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(bad);
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(bad()),
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    if digits.iter().any(|d| *d >= 10_000) {
        return Err(bad());
    }
    let digit = |power: i64| -> u16 {
        // The digit for 10000^power: digits[0] is 10000^weight.
        let index = weight - power;
        usize::try_from(index).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(weight));
        for power in (0..weight).rev() {
            let _ = write!(out, "{:04}", digit(power));
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut power = -1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(power));
            power -= 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Dates and times: days and microseconds since 2000-01-01 (PostgreSQL's epoch), ISO text.

/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const USECS_PER_DAY: i64 = 86_400_000_000;

fn date_text(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

fn time_text(micros: i64) -> String {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        out.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    out
}

fn timestamp_text(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let days = micros.div_euclid(USECS_PER_DAY);
            let time = micros.rem_euclid(USECS_PER_DAY);
            let date = date_text(i32::try_from(days).unwrap_or(i32::MAX));
            format!("{date} {}{zone}", time_text(time))
        }
    }
}

/// `YYYY-MM-DD` (ISO, as the replicas' pinned DateStyle writes it) to days since 2000-01-01.
fn parse_date(text: &str) -> Option<i32> {
    match text.trim() {
        "infinity" => return Some(i32::MAX),
        "-infinity" => return Some(i32::MIN),
        _ => {}
    }
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d) - PG_EPOCH_DAYS).ok()
}

/// `HH:MM:SS[.ffffff]` to microseconds since midnight.
fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next()?;
    let (s, frac) = seconds.split_once('.').unwrap_or((seconds, ""));
    let s: i64 = s.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().ok()? };
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]` to microseconds since 2000-01-01 00:00 (UTC for a
/// time zone offset).
fn parse_timestamp(text: &str) -> Option<i64> {
    match text.trim() {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (date, rest) = text.trim().split_once(' ')?;
    let (time, offset_secs) = match rest.find(['+', '-']) {
        Some(at) => {
            let (time, zone) = rest.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let mut parts = zone[1..].split(':');
            let h: i64 = parts.next()?.parse().ok()?;
            let m: i64 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
            let s: i64 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
            (time, sign * (h * 3600 + m * 60 + s))
        }
        None => (rest, 0),
    };
    let days = i64::from(parse_date(date)?);
    Some(days * USECS_PER_DAY + parse_time(time)? - offset_secs * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(value: SqlValue, ty: &Type) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_field(&mut out, &value, ty, true).unwrap_or_else(|e| panic!("{e}"));
        out[4..].to_vec()
    }

    #[test]
    fn names_find_builtin_types() {
        assert_eq!(type_named("int4"), Type::INT4);
        assert_eq!(type_named("_text"), Type::TEXT_ARRAY);
        assert_eq!(type_named("timestamptz"), Type::TIMESTAMPTZ);
        assert_eq!(type_named("my_enum"), Type::TEXT);
    }

    #[test]
    fn null_text_and_binary_fields() {
        let mut out = BytesMut::new();
        put_field(&mut out, &SqlValue::Null, &Type::INT4, true).expect("null");
        put_field(&mut out, &SqlValue::Text(String::new()), &Type::TEXT, false).expect("empty");
        put_field(&mut out, &SqlValue::Bytes(vec![0xde, 0xad]), &Type::BYTEA, false).expect("bytea");
        assert_eq!(&out[..], b"\xff\xff\xff\xff\0\0\0\0\0\0\0\x06\\xdead");
        assert_eq!(binary(SqlValue::Int(7), &Type::INT2), vec![0, 7]);
        assert_eq!(binary(SqlValue::Text("7".into()), &Type::INT8), 7i64.to_be_bytes());
        assert!(put_field(&mut out, &SqlValue::Int(1 << 40), &Type::INT4, true).is_err());
        assert_eq!(binary(SqlValue::Text("{\"a\":1}".into()), &Type::JSONB), b"\x01{\"a\":1}");
    }

    #[test]
    fn numeric_round_trips() {
        for text in ["0", "1", "-12.50", "10000", "123456789.000123", "0.0001", "-0.5", "NaN", "Infinity", "99999999"] {
            let mut out = BytesMut::new();
            numeric_binary(&mut out, text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(numeric_text(&out).expect("decodes"), text);
        }
        let mut out = BytesMut::new();
        numeric_binary(&mut out, "12.5").expect("encodes");
        // ndigits 2, weight 0, positive, dscale 1, digits 12 and 5000.
        assert_eq!(&out[..], &[0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]);
        assert!(numeric_binary(&mut out, "1e5").is_none());
    }

    #[test]
    fn dates_and_times_round_trip() {
        assert_eq!(parse_date("2000-01-01"), Some(0));
        assert_eq!(parse_date("1999-12-31"), Some(-1));
        assert_eq!(date_text(parse_date("2024-02-29").expect("leap day")), "2024-02-29");
        let ts = parse_timestamp("2024-05-06 07:08:09.25+00").expect("timestamptz");
        assert_eq!(timestamp_text(ts, "+00"), "2024-05-06 07:08:09.25+00");
        assert_eq!(parse_timestamp("2024-05-06 09:08:09.25+02"), Some(ts));
        assert_eq!(parse_timestamp("2000-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(time_text(parse_time("23:59:58.000001").expect("time")), "23:59:58.000001");
    }

    #[test]
    fn binary_parameters_decode_by_type() {
        let p = |raw: &[u8], ty: &Type| param(Some(raw), true, ty, 0);
        assert_eq!(p(&5i32.to_be_bytes(), &Type::INT4), Ok(SqlValue::Int(5)));
        assert_eq!(p(&2.5f64.to_be_bytes(), &Type::FLOAT8), Ok(SqlValue::Float(2.5)));
        assert_eq!(p(b"hi", &Type::VARCHAR), Ok(SqlValue::Text("hi".into())));
        assert_eq!(p(&[1], &Type::BOOL), Ok(SqlValue::Bool(true)));
        assert_eq!(param(None, true, &Type::INT4, 0), Ok(SqlValue::Null));
        assert_eq!(param(Some(b"42"), false, &Type::INT4, 0), Ok(SqlValue::Text("42".into())));
        let err = p(&[0, 1], &Type::INT4).expect_err("short");
        assert!(err.message.starts_with("parameter $1: "), "{err}");
        assert_eq!(p(&[1; 16], &Type::UUID), Ok(SqlValue::Text("01010101-0101-0101-0101-010101010101".into())));
        assert_eq!(p(&[0; 8], &Type::POINT).expect_err("unsupported").sqlstate, "0A000");
    }
}
