#!/usr/bin/env python3
"""Barista sample client: a tour of the API against a running cluster.

    /usr/bin/python3 sample.py 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092

Connects to the first replica that answers, creates a table, inserts rows with parameters, runs a
transaction that commits and one that rolls back, sends a batch, reads the rows back (one with a
NULL), shows a constraint violation's SQLSTATE, and closes the connection. Each step prints one
line; the last is "done".
"""

import sys

from barista_client import BaristaError, SqlError, connect


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sample.py HOST:PORT[,HOST:PORT...]")
    replicas = sys.argv[1].split(",")

    with connect(replicas) as db:
        print("connected to %s (connection %d)" % (db.replica, db.connection_id))

        db.execute("DROP TABLE IF EXISTS fruit")
        db.execute("CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, color text)")
        print("created table fruit")

        # Parameters $1.. travel typed; None is SQL NULL.
        inserted = 0
        for row in [(1, "apple", "red"), (2, "banana", None)]:
            inserted += db.execute("INSERT INTO fruit (id, name, color) VALUES ($1, $2, $3)", row).rows_affected
        print("inserted %d rows" % inserted)

        with db.transaction():
            db.execute("INSERT INTO fruit VALUES ($1, $2, $3)", [3, "cherry", "dark red"])
            db.execute("UPDATE fruit SET color = $1 WHERE id = $2", ["green", 1])
        print("committed a transaction: cherry added, apple now green")

        db.begin()
        db.execute("INSERT INTO fruit VALUES ($1, $2, $3)", [4, "durian", "yellow"])
        db.execute("DELETE FROM fruit WHERE id = $1", [2])
        db.rollback()
        print("rolled back a transaction: no durian, banana kept")

        # One request, one replicated log entry; atomic: all or nothing.
        results = db.batch(
            [
                ("INSERT INTO fruit VALUES ($1, $2, $3)", [5, "elderberry", "purple"]),
                ("INSERT INTO fruit VALUES ($1, $2, $3)", [6, "fig", None]),
                ("UPDATE fruit SET color = upper(color) WHERE id = $1", [3]),
            ],
            atomic=True,
        )
        print("batch of %d statements: %d rows changed" % (len(results), sum(r.rows_affected for r in results)))

        rows = db.execute("SELECT id, name, color FROM fruit ORDER BY id")
        for id_, name, color in rows:
            print("row %s %s %s" % (id_, name, "NULL" if color is None else color))

        try:
            db.execute("INSERT INTO fruit VALUES ($1, $2, $3)", [1, "apricot", "orange"])
            print("constraint violation: none (unexpected)")
        except SqlError as e:
            # PostgreSQL's message may go on with a DETAIL line; its first line says enough here.
            first_line = e.message.splitlines()[0]
            print("constraint violation: SQLSTATE %s (error code %d): %s" % (e.sqlstate, e.error_code, first_line))

    # Leaving the with block closed the connection.
    print("closed")
    print("done")


if __name__ == "__main__":
    try:
        main()
    except BaristaError as e:
        sys.exit("error: %s" % e)
