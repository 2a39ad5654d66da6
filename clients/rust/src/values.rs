//! Parameters and results in plain Rust types.

use crate::generated as g;

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// Any floating-point type.
    Float(f64),
    /// Text, or any type in its text form (`numeric`, `timestamptz`, ...).
    Text(String),
    /// bytea.
    Bytes(Vec<u8>),
}

impl Value {
    /// The wire form: one field set, none for NULL.
    pub(crate) fn to_thrift(&self) -> g::Value {
        let mut v = g::Value::new(None, None, None, None, None);
        match self {
            Value::Null => {}
            Value::Bool(b) => v.bool_value = Some(*b),
            Value::Int(i) => v.int_value = Some(*i),
            Value::Float(f) => v.double_value = Some(thrift::OrderedFloat(*f)),
            Value::Text(t) => v.text_value = Some(t.clone()),
            Value::Bytes(b) => v.binary_value = Some(b.clone()),
        }
        v
    }
}

/// A statement's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Column type names as PostgreSQL reports them (`int4`, `text`, ...).
    pub types: Vec<String>,
    /// Rows; each cell in PostgreSQL's text form (bytea: its bytes), `None` for NULL.
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
    /// Rows inserted, updated or deleted (or returned, for a query).
    pub rows_affected: u64,
}

impl Rows {
    /// The cell at `row`, `column` as text (`None`: NULL, or out of range).
    pub fn text(&self, row: usize, column: usize) -> Option<String> {
        let cell = self.rows.get(row)?.get(column)?.as_ref()?;
        Some(String::from_utf8_lossy(cell).into_owned())
    }

    pub(crate) fn from_thrift(rs: g::ResultSet) -> Rows {
        let rows = rs
            .tuples
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let nulls = t.nulls.unwrap_or_default();
                t.cells
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, cell)| (!nulls.get(i).copied().unwrap_or(false)).then_some(cell))
                    .collect()
            })
            .collect();
        Rows {
            columns: rs.field_names.unwrap_or_default(),
            types: rs.field_types.unwrap_or_default(),
            rows,
            rows_affected: rs.rows_affected.map_or(0, |n| n.max(0) as u64),
        }
    }
}
