/**
 * barista.thrift: the client API of a Barista replica.
 *
 * Keeps the original Barista service's method names, argument ids and shapes, so clients written
 * for it still work; everything added since is optional and has a new field id, and the new
 * calls are new methods. Regenerate the Rust code with scripts/gen-thrift.sh.
 *
 * Transport: plain TCP socket, buffered transport, binary protocol (as the original clients).
 *
 * Exactly-once retries: every call that changes state carries Connection.request_seq, a number
 * that grows with each new call of that connection. A call whose answer was lost (timeout, dead
 * replica) is retried, at this or another replica, with the same Connection and the same
 * request_seq: it runs at most once, and the retry gets the first run's answer. open_connection
 * is request 0 of its connection; give ConnectionParams.connection_id to make it retryable too.
 */

namespace cpp barista
namespace go barista
namespace java barista
namespace py barista
namespace rs barista

/* Constants */

// API version, as get_version returns it.
const double VERSION = 0.2

// DBException.errorCode values.
// A statement failed in PostgreSQL, the same way on every replica; sqlstate is its SQLSTATE.
const i32 ERR_SQL = 1
// This replica cannot serve now (its ZooKeeper or PostgreSQL is unreachable, no decision came in
// time, it is shutting down). Retry the same call, with the same request_seq, at another replica.
const i32 ERR_NOT_READY = 2
// This replica has too much work queued or no free worker: back off, or try another replica.
const i32 ERR_OVERLOADED = 3
// Barista will not replicate this statement (it could make the replicas differ, e.g. random());
// nothing ran anywhere. sqlstate is 0A000 (or 42601 if it does not parse). Change the statement.
const i32 ERR_REFUSED = 4
// The call does not fit the connection's state: unknown or closed connection, a request_seq
// older than the connection's last one, COMMIT without BEGIN, ...
const i32 ERR_REJECTED = 5
// The call itself is malformed or over a limit (statement too long, batch too long); sqlstate
// 54000 for limits.
const i32 ERR_BAD_REQUEST = 6

/* Connections */

// connection parameters
struct ConnectionParams {
  1: optional string client_id,
  2: optional string seq_id,
  3: optional string user,
  4: optional string password,
  5: optional string database,
  // Added: the replicated connection's id, chosen by the client (random, nonzero) so that an
  // open_connection retried at another replica opens the same connection once. The replica
  // picks one when it is absent.
  6: optional i64 connection_id,
}

// connection info: passed in every call
struct Connection {
  // The connection id in hex (as a string, for clients of the original API).
  1: optional string client_id,
  // Clients of the original API may put the request number here, in decimal; request_seq wins.
  2: optional string seq_id,
  3: optional string user,
  4: optional string database,
  // Added: the replicated connection's id.
  5: optional i64 connection_id,
  // Added: this call's request number (see the top of this file). When neither it nor seq_id is
  // set, the replica numbers the calls itself, which is safe only while the client stays with
  // that replica.
  6: optional i64 request_seq,
}

/* Errors */

// Declared before ResultSet, which holds one: the C++ generator emits types in this order and
// needs each complete before a field uses it by value.

exception DBException {
  1: optional i32 errorCode,
  2: optional string message,
  3: optional string details,
  // Added: the PostgreSQL SQLSTATE (five characters) when there is one.
  4: optional string sqlstate,
}

/* Results */

// A row: one cell per column, each value in PostgreSQL's text form (bytea: the raw bytes).
struct Tuple {
  1: optional list<binary> cells,
  // Added: nulls[i] is true when cells[i] is SQL NULL (its cell is then empty).
  2: optional list<bool> nulls,
}

// The result of one statement.
struct ResultSet {
  1: required bool status,
  2: optional Connection con,
  3: optional i32 row_count,
  4: optional list<Tuple> tuples,
  5: optional list<string> field_names,
  // Added: each column's PostgreSQL type name (int4, text, ...).
  6: optional list<string> field_types,
  // Added: rows inserted, updated or deleted (or returned, for a query).
  7: optional i64 rows_affected,
  // Added, in batch results only: the statement's error (status is then false).
  8: optional DBException error,
}

/* Batches */

// A parameter value. Exactly one field set; none set means SQL NULL.
struct Value {
  1: optional bool bool_value,
  2: optional i64 int_value,
  3: optional double double_value,
  4: optional string text_value,
  5: optional binary binary_value,
}

// One statement of a batch.
struct Statement {
  1: required string query,
  2: optional list<Value> params,
}

/* The service */

service Barista {
  double get_version()

  Connection open_connection(1: ConnectionParams con_params) throws (1: DBException ex)

  // query_params: positional parameters $1.. in text form (no NULLs; use execute_sql_batch).
  ResultSet execute_sql(1: Connection con, 2: string query, 3: list<binary> query_params)
      throws (1: DBException ex)

  // The same as execute_sql; inside begin_txn .. commit_txn both run in the transaction.
  ResultSet execute_sql_txn(1: Connection con, 2: string query, 3: list<binary> query_params)
      throws (1: DBException ex)

  void begin_txn(1: Connection con) throws (1: DBException ex)

  void commit_txn(1: Connection con) throws (1: DBException ex)

  void rollback_txn(1: Connection con) throws (1: DBException ex)

  void close_connection(1: Connection con) throws (1: DBException ex)

  // Added: several statements as one request (one log entry). atomic: in one transaction, all or
  // nothing; the failing statement's error is thrown and nothing is kept. Not atomic: each
  // statement on its own (autocommit, or in the open transaction); one result per statement, a
  // failed one with status false and its error.
  list<ResultSet> execute_sql_batch(1: Connection con, 2: list<Statement> statements, 3: bool atomic)
      throws (1: DBException ex)
}
