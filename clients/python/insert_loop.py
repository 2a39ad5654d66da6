#!/usr/bin/env python3
"""Inserts keys 1..N one request at a time, printing each acknowledged key: the failover demo.

    /usr/bin/python3 insert_loop.py 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092 200

Stop the replica it names in its "using" line while it runs: the insert in flight is retried at
the next replica under the same request number, so the loop finishes and every key is in the
table exactly once (the table has no unique key, so a request run twice would show as a
duplicate row). Output, one line each, flushed at once so a watcher can act on it:

    using 127.0.0.1:9090          the replica in use, before the first insert and after a change
    ack 17                        key 17 is committed
    done 200                      every key acknowledged
"""

import sys

from barista_client import BaristaError, connect


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: insert_loop.py HOST:PORT[,HOST:PORT...] N")
    replicas, n = sys.argv[1].split(","), int(sys.argv[2])
    with connect(replicas) as db:
        db.execute("CREATE TABLE IF NOT EXISTS acked (k int NOT NULL, note text)")
        used = db.replica
        print("using %s" % used, flush=True)
        for k in range(1, n + 1):
            db.execute("INSERT INTO acked (k, note) VALUES ($1, $2)", [k, "python"])
            if db.replica != used:
                used = db.replica
                print("using %s" % used, flush=True)
            print("ack %d" % k, flush=True)
    print("done %d" % n, flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaristaError as e:
        sys.exit("error: %s" % e)
