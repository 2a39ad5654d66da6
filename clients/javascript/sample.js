#!/usr/bin/env node
'use strict';
/**
 * Barista sample client: a tour of the API against a running cluster.
 *
 *   node sample.js 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092
 *
 * Connects to the first replica that answers, creates a table, inserts rows with parameters, runs
 * a transaction that commits and one that rolls back, sends a batch, reads the rows back (one with
 * a NULL), shows a constraint violation's SQLSTATE, and closes the connection. Each step prints
 * one line; the last is "done".
 */

const { connect, SqlError } = require('./barista-client');

async function main(replicas) {
  const db = await connect(replicas);
  try {
    console.log(`connected to ${db.replica} (connection ${db.connectionId})`);

    await db.execute('DROP TABLE IF EXISTS fruit');
    await db.execute('CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, color text)');
    console.log('created table fruit');

    // Parameters $1.. travel typed; null is SQL NULL.
    let inserted = 0;
    for (const row of [[1, 'apple', 'red'], [2, 'banana', null]]) {
      const { rowsAffected } = await db.execute('INSERT INTO fruit (id, name, color) VALUES ($1, $2, $3)', row);
      inserted += rowsAffected;
    }
    console.log(`inserted ${inserted} rows`);

    await db.transaction(async () => {
      await db.execute('INSERT INTO fruit VALUES ($1, $2, $3)', [3, 'cherry', 'dark red']);
      await db.execute('UPDATE fruit SET color = $1 WHERE id = $2', ['green', 1]);
    });
    console.log('committed a transaction: cherry added, apple now green');

    await db.begin();
    await db.execute('INSERT INTO fruit VALUES ($1, $2, $3)', [4, 'durian', 'yellow']);
    await db.execute('DELETE FROM fruit WHERE id = $1', [2]);
    await db.rollback();
    console.log('rolled back a transaction: no durian, banana kept');

    // One request, one replicated log entry; atomic: all or nothing.
    const results = await db.batch(
      [
        ['INSERT INTO fruit VALUES ($1, $2, $3)', [5, 'elderberry', 'purple']],
        ['INSERT INTO fruit VALUES ($1, $2, $3)', [6, 'fig', null]],
        ['UPDATE fruit SET color = upper(color) WHERE id = $1', [3]],
      ],
      { atomic: true },
    );
    const changed = results.reduce((sum, r) => sum + r.rowsAffected, 0);
    console.log(`batch of ${results.length} statements: ${changed} rows changed`);

    const { rows } = await db.execute('SELECT id, name, color FROM fruit ORDER BY id');
    for (const [id, name, color] of rows) {
      console.log(`row ${id} ${name} ${color === null ? 'NULL' : color}`);
    }

    try {
      await db.execute('INSERT INTO fruit VALUES ($1, $2, $3)', [1, 'apricot', 'orange']);
      console.log('constraint violation: none (unexpected)');
    } catch (err) {
      if (!(err instanceof SqlError)) throw err;
      // PostgreSQL's message may go on with a DETAIL line; its first line says enough here.
      const firstLine = err.message.split('\n')[0];
      console.log(`constraint violation: SQLSTATE ${err.sqlstate} (error code ${err.errorCode}): ${firstLine}`);
    }
  } finally {
    await db.close();
  }
  console.log('closed');
  console.log('done');
}

if (process.argv.length !== 3) {
  console.error('usage: node sample.js HOST:PORT[,HOST:PORT...]');
  process.exit(2);
}
main(process.argv[2].split(',')).catch((err) => {
  console.error(`error: ${err}`);
  process.exitCode = 1;
});
