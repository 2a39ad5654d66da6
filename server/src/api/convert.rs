//! Between the Thrift types and the runtime's: parameters in, results and errors out.
//!
//! Cells keep the original API's form (each value as bytes, in PostgreSQL's text output; bytea as
//! its raw bytes); `Tuple.nulls` marks NULL cells, so a NULL differs from an empty string, and
//! `ResultSet.field_types` gives each column's type name.

use barista_runtime::command::Statement;
use barista_runtime::determinism::Refusal;
use barista_runtime::postgres::float_text;
use barista_runtime::service::ServiceError;
use barista_runtime::sql::{self, SqlError, SqlValue};

use super::generated as g;

/// SQLSTATE `program_limit_exceeded`: a statement or batch over a configured limit.
pub const LIMIT_EXCEEDED: &str = "54000";

/// A `DBException` with `code`, `message` and maybe a SQLSTATE.
pub fn exception(code: i32, message: impl Into<String>, sqlstate: Option<&str>) -> g::DBException {
    g::DBException {
        error_code: Some(code),
        message: Some(message.into()),
        details: None,
        sqlstate: sqlstate.map(str::to_owned),
    }
}

/// A statement's error, the same on every replica.
pub fn sql_exception(error: &SqlError) -> g::DBException {
    g::DBException {
        error_code: Some(g::ERR_SQL),
        message: Some(error.message.clone()),
        details: Some(error.to_string()),
        sqlstate: Some(error.sqlstate.clone()),
    }
}

/// Why the service produced no outcome.
pub fn service_exception(error: &ServiceError) -> g::DBException {
    match error {
        ServiceError::NotReady(why) => exception(g::ERR_NOT_READY, error.to_string(), None).with_details(why),
        ServiceError::Overloaded(why) => exception(g::ERR_OVERLOADED, error.to_string(), None).with_details(why),
        ServiceError::Refused(refusal) => refused(refusal),
        ServiceError::TooLarge(why) => exception(g::ERR_BAD_REQUEST, why.clone(), Some(LIMIT_EXCEEDED)),
    }
}

fn refused(refusal: &Refusal) -> g::DBException {
    exception(g::ERR_REFUSED, refusal.to_string(), Some(refusal.sqlstate)).with_details(&refusal.advice)
}

trait WithDetails {
    fn with_details(self, details: &str) -> Self;
}

impl WithDetails for g::DBException {
    fn with_details(mut self, details: &str) -> Self {
        self.details = Some(details.to_owned());
        self
    }
}

/// An original-API parameter: text form as bytes. Valid UTF-8 is text (read by the server's input
/// function for the parameter's type, so `"42"` fits an integer column); anything else is bytea.
pub fn text_param(bytes: Vec<u8>) -> SqlValue {
    match String::from_utf8(bytes) {
        Ok(text) => SqlValue::Text(text),
        Err(e) => SqlValue::Bytes(e.into_bytes()),
    }
}

/// A typed parameter; no field set is NULL, more than one is an error.
pub fn value_param(value: g::Value, index: usize) -> Result<SqlValue, g::DBException> {
    let g::Value { bool_value, int_value, double_value, text_value, binary_value } = value;
    let set = [bool_value.is_some(), int_value.is_some(), double_value.is_some(), text_value.is_some()]
        .into_iter()
        .chain([binary_value.is_some()])
        .filter(|s| *s)
        .count();
    if set > 1 {
        return Err(exception(
            g::ERR_BAD_REQUEST,
            format!("parameter ${}: a Value sets {set} fields; set one (or none for NULL)", index + 1),
            None,
        ));
    }
    Ok(if let Some(b) = bool_value {
        SqlValue::Bool(b)
    } else if let Some(i) = int_value {
        SqlValue::Int(i)
    } else if let Some(f) = double_value {
        SqlValue::Float(f.0)
    } else if let Some(t) = text_value {
        SqlValue::Text(t)
    } else if let Some(b) = binary_value {
        SqlValue::Bytes(b)
    } else {
        SqlValue::Null
    })
}

/// A batch statement.
pub fn statement(s: g::Statement) -> Result<Statement, g::DBException> {
    let params = s.params.unwrap_or_default().into_iter().enumerate().map(|(i, v)| value_param(v, i));
    Ok(Statement { sql: s.query, params: params.collect::<Result<_, _>>()? })
}

/// A cell: the value's text form (PostgreSQL's `t`/`f` for booleans, its float output for
/// floats), bytea's raw bytes; and whether it is NULL.
fn cell(value: SqlValue) -> (Vec<u8>, bool) {
    match value {
        SqlValue::Null => (Vec::new(), true),
        SqlValue::Bool(b) => (if b { b"t".to_vec() } else { b"f".to_vec() }, false),
        SqlValue::Int(i) => (i.to_string().into_bytes(), false),
        SqlValue::Float(f) => (float_text(f).into_bytes(), false),
        SqlValue::Text(t) => (t.into_bytes(), false),
        SqlValue::Bytes(b) => (b, false),
    }
}

/// A statement's result for the client; `con` is echoed as the original API did.
pub fn result_set(rs: sql::ResultSet, con: Option<g::Connection>) -> g::ResultSet {
    let (field_names, field_types) = rs.columns.into_iter().map(|c| (c.name, c.type_name)).unzip();
    let tuples = rs
        .rows
        .into_iter()
        .map(|row| {
            let (cells, nulls) = row.into_iter().map(cell).unzip();
            g::Tuple { cells: Some(cells), nulls: Some(nulls) }
        })
        .collect();
    g::ResultSet {
        status: true,
        con,
        row_count: Some(i32::try_from(rs.rows_affected).unwrap_or(i32::MAX)),
        tuples: Some(tuples),
        field_names: Some(field_names),
        field_types: Some(field_types),
        rows_affected: Some(i64::try_from(rs.rows_affected).unwrap_or(i64::MAX)),
        error: None,
    }
}

/// A failed statement of a non-atomic batch.
pub fn failed_result(error: &SqlError, con: Option<g::Connection>) -> g::ResultSet {
    g::ResultSet {
        status: false,
        con,
        row_count: None,
        tuples: None,
        field_names: None,
        field_types: None,
        rows_affected: None,
        error: Some(sql_exception(error)),
    }
}

#[cfg(test)]
mod tests {
    use barista_runtime::sql::Column;
    use thrift::OrderedFloat;

    use super::*;

    #[test]
    fn null_and_empty_text_differ() {
        let rs = sql::ResultSet {
            columns: vec![Column { name: "v".into(), type_name: "text".into() }],
            rows: vec![vec![SqlValue::Null], vec![SqlValue::Text(String::new())]],
            rows_affected: 2,
        };
        let out = result_set(rs, None);
        let tuples = out.tuples.expect("rows");
        assert_eq!(tuples[0].cells, tuples[1].cells, "both cells are empty");
        assert_eq!(tuples[0].nulls, Some(vec![true]));
        assert_eq!(tuples[1].nulls, Some(vec![false]));
        assert_eq!(out.field_types, Some(vec!["text".to_string()]));
    }

    #[test]
    fn values_text_forms() {
        assert_eq!(cell(SqlValue::Bool(true)), (b"t".to_vec(), false));
        assert_eq!(cell(SqlValue::Float(0.1)), (b"0.1".to_vec(), false));
        assert_eq!(cell(SqlValue::Int(-7)), (b"-7".to_vec(), false));
        assert_eq!(text_param(b"42".to_vec()), SqlValue::Text("42".into()));
        assert_eq!(text_param(vec![0xff, 0]), SqlValue::Bytes(vec![0xff, 0]));
    }

    #[test]
    fn typed_params_take_one_field_or_none() {
        let v = |f: fn(&mut g::Value)| {
            // Not `Value::default()`: the generated default sets every field.
            let mut value = g::Value::new(None, None, None, None, None);
            f(&mut value);
            value
        };
        assert_eq!(value_param(v(|_| {}), 0).expect("null"), SqlValue::Null);
        assert_eq!(value_param(v(|x| x.int_value = Some(3)), 0).expect("int"), SqlValue::Int(3));
        assert_eq!(
            value_param(v(|x| x.double_value = Some(OrderedFloat(2.5))), 0).expect("float"),
            SqlValue::Float(2.5)
        );
        let two = v(|x| {
            x.int_value = Some(1);
            x.text_value = Some("1".into());
        });
        let err = value_param(two, 1).expect_err("two fields");
        assert_eq!(err.error_code, Some(g::ERR_BAD_REQUEST));
        assert!(err.message.expect("message").starts_with("parameter $2"));
    }
}
