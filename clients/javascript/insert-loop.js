#!/usr/bin/env node
'use strict';
/**
 * Inserts keys 1..N one request at a time, printing each acknowledged key: the failover demo.
 *
 *   node insert-loop.js 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092 200
 *
 * Stop the replica it names in its "using" line while it runs: the insert in flight is retried at
 * the next replica under the same request number, so the loop finishes and every key is in the
 * table exactly once (the table has no unique key, so a request run twice would show as a
 * duplicate row). Output, one line each:
 *
 *   using 127.0.0.1:9090     the replica in use, before the first insert and after a change
 *   ack 17                   key 17 is committed
 *   done 200                 every key acknowledged
 */

const { connect } = require('./barista-client');

async function main(replicas, n) {
  const db = await connect(replicas);
  try {
    await db.execute('CREATE TABLE IF NOT EXISTS acked (k int NOT NULL, note text)');
    let used = db.replica;
    console.log(`using ${used}`);
    for (let k = 1; k <= n; k++) {
      await db.execute('INSERT INTO acked (k, note) VALUES ($1, $2)', [k, 'javascript']);
      if (db.replica !== used) {
        used = db.replica;
        console.log(`using ${used}`);
      }
      console.log(`ack ${k}`);
    }
  } finally {
    await db.close();
  }
  console.log(`done ${n}`);
}

if (process.argv.length !== 4) {
  console.error('usage: node insert-loop.js HOST:PORT[,HOST:PORT...] N');
  process.exit(2);
}
main(process.argv[2].split(','), Number(process.argv[3])).catch((err) => {
  console.error(`error: ${err}`);
  process.exitCode = 1;
});
