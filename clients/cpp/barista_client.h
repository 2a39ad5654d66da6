// barista_client.h: a C++ client for Barista (clients/barista.thrift), over the generated code in
// gen/.
//
// A barista::client::Client is one replicated connection. It takes the list of replica addresses
// ("host:port"), talks to one replica at a time, and when that replica is down or answers that it
// cannot serve now (ERR_NOT_READY, ERR_OVERLOADED) it moves to the next one and retries the
// request in flight with the SAME request sequence number: the replicas run each
// (connection, request_seq) at most once and answer a repeat with the first run's outcome, so
// failing over never runs a statement twice.
//
// Errors are barista::client::Error (a std::runtime_error) with the server's errorCode and the
// PostgreSQL SQLSTATE.
//
//     barista::client::Client db({"10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.3:9090"});
//     db.execute("INSERT INTO t VALUES ($1, $2)", {1, barista::client::Param::null()});
//     barista::client::Rows rows = db.execute("SELECT k, v FROM t");
//     db.close();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gen/Barista.h"

namespace barista {
namespace client {

// A failed call. errorCode() is the server's DBException.errorCode (ERR_SQL, ERR_REFUSED,
// ERR_REJECTED, ERR_BAD_REQUEST; see barista.thrift), or 0 for an error of the client itself (no
// replica answered, connection closed).
class Error : public std::runtime_error {
 public:
  Error(int32_t errorCode, std::string sqlstate, const std::string& message);
  int32_t errorCode() const { return errorCode_; }
  // The PostgreSQL SQLSTATE ("23505" for a unique violation), empty when there is none.
  const std::string& sqlstate() const { return sqlstate_; }
  // The server's message alone (what() adds the SQLSTATE to it).
  const std::string& message() const { return message_; }

 private:
  int32_t errorCode_;
  std::string sqlstate_;
  std::string message_;
};

// No replica answered within the attempts allowed; what() lists each replica's last error. The
// request may have run once (never twice): repeating it on a new connection is safe only for an
// idempotent statement.
class UnavailableError : public Error {
 public:
  explicit UnavailableError(const std::string& message) : Error(0, "", message) {}
};

// A statement parameter ($1, $2, ...): an integer, a double, a bool, text, bytes or NULL.
class Param {
 public:
  Param(int v) : Param(static_cast<int64_t>(v)) {}
  Param(int64_t v) { wire_.__set_int_value(v); }
  Param(double v) { wire_.__set_double_value(v); }
  Param(bool v) { wire_.__set_bool_value(v); }
  Param(const char* v) { wire_.__set_text_value(v); }
  Param(std::string v) { wire_.__set_text_value(std::move(v)); }
  static Param null() { return Param(); }
  static Param bytes(std::string raw) {
    Param p;
    p.wire_.__set_binary_value(std::move(raw));
    return p;
  }
  const barista::Value& wire() const { return wire_; }

 private:
  Param() = default;  // no field set: SQL NULL
  barista::Value wire_;
};

// A statement's result.
struct Rows {
  std::vector<std::string> columns;
  // Column types as PostgreSQL names them (int4, text, ...).
  std::vector<std::string> types;
  // Each cell in PostgreSQL's text form (bytea: the raw bytes); std::nullopt for NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Rows inserted, updated or deleted (or returned, for a query).
  int64_t rowsAffected = 0;
};

// One statement of a batch.
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

// One statement's outcome in a non-atomic batch: rows, or the error it failed with.
struct BatchResult {
  std::optional<Rows> rows;
  std::optional<Error> error;
  bool ok() const { return rows.has_value(); }
};

struct Options {
  int connectTimeoutMs = 2000;
  // Longest wait for one answer; keep it above the servers' request_timeout_ms, or a slow answer
  // is taken for a dead replica (safe, but wasteful).
  int ioTimeoutMs = 30000;
  // Passes over the whole replica list before a request gives up.
  int rounds = 5;
  // Pause after a pass in which no replica answered; doubles each pass, up to 2 s.
  int backoffMs = 100;
};

class Client {
 public:
  // Opens a session on the first replica of `replicas` that answers.
  explicit Client(std::vector<std::string> replicas, Options options = Options());
  // Closes the session if close() was not called (errors are ignored then).
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one statement (autocommit, or in the open transaction) with parameters $1...
  Rows execute(const std::string& sql, const std::vector<Param>& params = {});
  // Runs statements as one request. atomic: in one transaction, all or nothing (the failing
  // statement's error is thrown). Otherwise each on its own, one result each.
  std::vector<BatchResult> batch(const std::vector<Statement>& statements, bool atomic);
  void begin();
  void commit();
  void rollback();
  // Ends the session on every replica (an open transaction rolls back).
  void close();

  // The replica in use ("host:port").
  const std::string& replica() const { return replicas_[current_]; }
  int64_t connectionId() const { return con_.connection_id; }

 private:
  struct Link;
  template <typename Call>
  auto request(Call call) -> decltype(call(std::declval<barista::BaristaClient&>(), barista::Connection()));
  template <typename Call>
  auto withFailover(Call call) -> decltype(call(std::declval<barista::BaristaClient&>()));
  void connectCurrent();

  std::vector<std::string> replicas_;
  Options options_;
  size_t current_ = 0;
  std::unique_ptr<Link> link_;
  barista::Connection con_;
  int64_t nextSeq_ = 1;
  bool closed_ = false;
};

// A transaction as a scope: begins on construction, rolls back on destruction unless commit() was
// called, so an exception thrown inside leaves nothing behind.
//
//     { barista::client::Transaction txn(db); db.execute(...); db.execute(...); txn.commit(); }
class Transaction {
 public:
  explicit Transaction(Client& db) : db_(db) { db_.begin(); }
  ~Transaction() {
    if (done_) return;
    try {
      db_.rollback();
    } catch (...) {
      // A destructor must not throw; a transaction the replicas cannot roll back now ends with
      // its session.
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    done_ = true;
    db_.commit();
  }
  void rollback() {
    done_ = true;
    db_.rollback();
  }

 private:
  Client& db_;
  bool done_ = false;
};

}  // namespace client
}  // namespace barista
