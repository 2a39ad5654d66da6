// Command sample tours the Barista API against a running cluster:
//
//	go build -o sample ./cmd/sample
//	./sample 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092
//
// It connects to the first replica that answers, creates a table, inserts rows with parameters,
// runs a transaction that commits and one that rolls back, sends a batch, reads the rows back
// (one with a NULL), shows a constraint violation's SQLSTATE, and closes the connection. Each
// step prints one line; the last is "done".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"barista/clients/go/baristadb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sample HOST:PORT[,HOST:PORT...]")
		os.Exit(2)
	}
	if err := run(context.Background(), strings.Split(os.Args[1], ",")); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, replicas []string) error {
	db, err := baristadb.Connect(ctx, replicas, baristadb.Config{})
	if err != nil {
		return err
	}
	// Closes the session if a step fails; after the explicit Close below it does nothing.
	defer db.Close()
	fmt.Printf("connected to %s (connection %d)\n", db.Replica(), db.ConnectionID())

	if _, err := db.Exec(ctx, "DROP TABLE IF EXISTS fruit"); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, color text)"); err != nil {
		return err
	}
	fmt.Println("created table fruit")

	// Parameters $1.. travel typed; nil is SQL NULL.
	inserted := int64(0)
	for _, row := range [][]any{{1, "apple", "red"}, {2, "banana", nil}} {
		rows, err := db.Exec(ctx, "INSERT INTO fruit (id, name, color) VALUES ($1, $2, $3)", row...)
		if err != nil {
			return err
		}
		inserted += rows.RowsAffected
	}
	fmt.Printf("inserted %d rows\n", inserted)

	err = db.InTx(ctx, func() error {
		if _, err := db.Exec(ctx, "INSERT INTO fruit VALUES ($1, $2, $3)", 3, "cherry", "dark red"); err != nil {
			return err
		}
		_, err := db.Exec(ctx, "UPDATE fruit SET color = $1 WHERE id = $2", "green", 1)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Println("committed a transaction: cherry added, apple now green")

	if err := db.Begin(ctx); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "INSERT INTO fruit VALUES ($1, $2, $3)", 4, "durian", "yellow"); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "DELETE FROM fruit WHERE id = $1", 2); err != nil {
		return err
	}
	if err := db.Rollback(ctx); err != nil {
		return err
	}
	fmt.Println("rolled back a transaction: no durian, banana kept")

	// One request, one replicated log entry; atomic: all or nothing.
	results, err := db.Batch(ctx, []baristadb.Statement{
		{SQL: "INSERT INTO fruit VALUES ($1, $2, $3)", Args: []any{5, "elderberry", "purple"}},
		{SQL: "INSERT INTO fruit VALUES ($1, $2, $3)", Args: []any{6, "fig", nil}},
		{SQL: "UPDATE fruit SET color = upper(color) WHERE id = $1", Args: []any{3}},
	}, true)
	if err != nil {
		return err
	}
	changed := int64(0)
	for _, r := range results {
		changed += r.Rows.RowsAffected
	}
	fmt.Printf("batch of %d statements: %d rows changed\n", len(results), changed)

	rows, err := db.Exec(ctx, "SELECT id, name, color FROM fruit ORDER BY id")
	if err != nil {
		return err
	}
	for _, row := range rows.Rows {
		color := "NULL"
		if row[2].Valid {
			color = row[2].String
		}
		fmt.Printf("row %s %s %s\n", row[0].String, row[1].String, color)
	}

	_, err = db.Exec(ctx, "INSERT INTO fruit VALUES ($1, $2, $3)", 1, "apricot", "orange")
	var dbErr *baristadb.Error
	switch {
	case errors.As(err, &dbErr) && dbErr.Code == baristadb.CodeSQL:
		// PostgreSQL's message may go on with a DETAIL line; its first line says enough here.
		firstLine, _, _ := strings.Cut(dbErr.Message, "\n")
		fmt.Printf("constraint violation: SQLSTATE %s (error code %d): %s\n", dbErr.SQLState, dbErr.Code, firstLine)
	case err != nil:
		return err
	default:
		fmt.Println("constraint violation: none (unexpected)")
	}

	if err := db.Close(); err != nil {
		return err
	}
	fmt.Println("closed")
	fmt.Println("done")
	return nil
}
