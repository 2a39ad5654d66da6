package baristadb

import (
	"database/sql"
	"fmt"

	"barista/clients/go/gen/barista"
)

// Rows is one statement's result.
type Rows struct {
	// Columns are the column names, Types their PostgreSQL type names (int4, text, ...).
	Columns []string
	Types   []string
	// Rows holds one slice of cells per row, each in PostgreSQL's text form (bytea: the raw
	// bytes); Valid is false for SQL NULL.
	Rows [][]sql.NullString
	// RowsAffected counts the rows inserted, updated or deleted (or returned, for a query).
	RowsAffected int64
}

func rowsFromThrift(rs *barista.ResultSet) *Rows {
	out := &Rows{Columns: rs.FieldNames, Types: rs.FieldTypes, RowsAffected: rs.GetRowsAffected()}
	for _, t := range rs.Tuples {
		row := make([]sql.NullString, len(t.Cells))
		for i, cell := range t.Cells {
			null := i < len(t.Nulls) && t.Nulls[i]
			row[i] = sql.NullString{String: string(cell), Valid: !null}
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

// Statement is one statement of a batch: SQL with parameters $1.. in Args.
type Statement struct {
	SQL  string
	Args []any
}

// Result is one statement's outcome in a non-atomic batch: Rows, or Err (an *Error).
type Result struct {
	Rows *Rows
	Err  error
}

// value converts a Go parameter. nil is SQL NULL; integers, floats, bools, strings and []byte
// travel typed, as do sql.Null* values.
func value(arg any) (*barista.Value, error) {
	v := barista.NewValue()
	switch a := arg.(type) {
	case nil:
	case bool:
		v.BoolValue = &a
	case int:
		i := int64(a)
		v.IntValue = &i
	case int32:
		i := int64(a)
		v.IntValue = &i
	case int64:
		v.IntValue = &a
	case float64:
		v.DoubleValue = &a
	case string:
		v.TextValue = &a
	case []byte:
		if a == nil {
			a = []byte{}
		}
		v.BinaryValue = a
	case sql.NullString:
		if a.Valid {
			v.TextValue = &a.String
		}
	case sql.NullInt64:
		if a.Valid {
			v.IntValue = &a.Int64
		}
	case sql.NullFloat64:
		if a.Valid {
			v.DoubleValue = &a.Float64
		}
	case sql.NullBool:
		if a.Valid {
			v.BoolValue = &a.Bool
		}
	default:
		return nil, fmt.Errorf("barista: unsupported parameter type %T", arg)
	}
	return v, nil
}

func statements(stmts []Statement) ([]*barista.Statement, error) {
	wire := make([]*barista.Statement, 0, len(stmts))
	for _, s := range stmts {
		params := make([]*barista.Value, 0, len(s.Args))
		for _, arg := range s.Args {
			v, err := value(arg)
			if err != nil {
				return nil, err
			}
			params = append(params, v)
		}
		wire = append(wire, &barista.Statement{Query: s.SQL, Params: params})
	}
	return wire, nil
}
