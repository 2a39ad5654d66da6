// barista_client.cpp: see barista_client.h.
#include "barista_client.h"

#include <chrono>
#include <random>
#include <thread>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include "gen/barista_constants.h"

namespace barista {
namespace client {

using apache::thrift::TException;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TBufferedTransport;
using apache::thrift::transport::TSocket;

namespace {

std::string withSqlstate(const std::string& message, const std::string& sqlstate) {
  return sqlstate.empty() ? message : message + " (SQLSTATE " + sqlstate + ")";
}

// The error for a DBException that is the answer (not a reason to try another replica).
Error fromException(const barista::DBException& ex) {
  return Error(ex.errorCode, ex.sqlstate, ex.message);
}

// True if the exception means "this replica cannot serve now; another may".
bool tryElsewhere(const barista::DBException& ex) {
  const auto& k = barista::g_barista_constants;
  return ex.errorCode == k.ERR_NOT_READY || ex.errorCode == k.ERR_OVERLOADED;
}

Rows fromThrift(const barista::ResultSet& rs) {
  Rows out;
  out.columns = rs.field_names;
  out.types = rs.field_types;
  out.rowsAffected = rs.rows_affected;
  for (const barista::Tuple& t : rs.tuples) {
    std::vector<std::optional<std::string>> row;
    for (size_t i = 0; i < t.cells.size(); i++) {
      bool isNull = i < t.nulls.size() && t.nulls[i];
      row.push_back(isNull ? std::nullopt : std::optional<std::string>(t.cells[i]));
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

// A random nonzero positive id: chosen by the client, so that an open_connection retried at
// another replica opens this same session once.
int64_t randomConnectionId() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  std::uniform_int_distribution<int64_t> dist(1, INT64_MAX);
  return dist(gen);
}

}  // namespace

Error::Error(int32_t errorCode, std::string sqlstate, const std::string& message)
    : std::runtime_error(withSqlstate(message, sqlstate)), errorCode_(errorCode), sqlstate_(std::move(sqlstate)), message_(message) {}

// One TCP connection to one replica: the transport the server speaks (buffered, binary protocol).
struct Client::Link {
  std::shared_ptr<TSocket> socket;
  std::shared_ptr<TBufferedTransport> transport;
  barista::BaristaClient rpc;

  Link(const std::string& addr, const Options& o)
      : socket(makeSocket(addr)),
        transport(std::make_shared<TBufferedTransport>(socket)),
        rpc(std::make_shared<TBinaryProtocol>(transport)) {
    socket->setConnTimeout(o.connectTimeoutMs);
    socket->setRecvTimeout(o.ioTimeoutMs);
    socket->setSendTimeout(o.ioTimeoutMs);
    socket->setNoDelay(true);
    transport->open();
  }
  ~Link() {
    try {
      transport->close();
    } catch (...) {
    }
  }

  static std::shared_ptr<TSocket> makeSocket(const std::string& addr) {
    size_t colon = addr.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("replica address without a port: " + addr);
    return std::make_shared<TSocket>(addr.substr(0, colon), std::stoi(addr.substr(colon + 1)));
  }
};

Client::Client(std::vector<std::string> replicas, Options options)
    : replicas_(std::move(replicas)), options_(options) {
  if (replicas_.empty()) throw UnavailableError("no replica addresses given");
  int64_t id = randomConnectionId();
  barista::ConnectionParams params;
  params.__set_connection_id(id);
  // open_connection is request 0 of the session; the id makes its retries open the same one.
  con_ = withFailover([&](barista::BaristaClient& rpc) {
    barista::Connection con;
    rpc.open_connection(con, params);
    return con;
  });
  con_.__set_connection_id(id);
  con_.__isset.request_seq = false;
}

Client::~Client() {
  if (closed_) return;
  try {
    close();
  } catch (...) {
    // A destructor must not throw; the replicas end an abandoned session themselves.
  }
}

template <typename Call>
auto Client::request(Call call) -> decltype(call(std::declval<barista::BaristaClient&>(), barista::Connection())) {
  if (closed_) throw Error(0, "", "the connection is closed");
  barista::Connection con = con_;
  con.__set_request_seq(nextSeq_);
  // Used up whatever happens: a replica may have run it even if no answer came back, so a new
  // request must never reuse the number.
  nextSeq_++;
  return withFailover([&](barista::BaristaClient& rpc) { return call(rpc, con); });
}

template <typename Call>
auto Client::withFailover(Call call) -> decltype(call(std::declval<barista::BaristaClient&>())) {
  const size_t n = replicas_.size();
  std::vector<std::string> reasons(n, "not tried");
  int backoff = options_.backoffMs;
  const size_t attempts = static_cast<size_t>(std::max(options_.rounds, 1)) * n;
  for (size_t attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0 && attempt % n == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff = std::min(backoff * 2, 2000);
    }
    size_t i = current_;
    try {
      if (!link_) link_ = std::make_unique<Link>(replicas_[i], options_);
      return call(link_->rpc);
    } catch (const barista::DBException& ex) {
      // An answer: the connection is fine, keep it either way.
      if (!tryElsewhere(ex)) throw fromException(ex);
      reasons[i] = ex.message;
    } catch (const TException& ex) {
      // Transport, protocol or application error: this connection's state is unknown. Drop it
      // and go on to the next replica with the same request.
      link_.reset();
      reasons[i] = ex.what();
    }
    current_ = (i + 1) % n;
  }
  std::string message = "no replica answered:";
  for (size_t i = 0; i < n; i++) message += " " + replicas_[i] + ": " + reasons[i] + ";";
  message.pop_back();
  throw UnavailableError(message);
}

Rows Client::execute(const std::string& sql, const std::vector<Param>& params) {
  std::vector<BatchResult> results = batch({Statement{sql, params}}, false);
  if (results.empty()) throw Error(barista::g_barista_constants.ERR_REJECTED, "", "the replica returned no result");
  if (!results[0].ok()) throw *results[0].error;
  return std::move(*results[0].rows);
}

std::vector<BatchResult> Client::batch(const std::vector<Statement>& statements, bool atomic) {
  std::vector<barista::Statement> wire;
  for (const Statement& s : statements) {
    barista::Statement w;
    w.__set_query(s.sql);
    std::vector<barista::Value> params;
    for (const Param& p : s.params) params.push_back(p.wire());
    w.__set_params(params);
    wire.push_back(std::move(w));
  }
  std::vector<barista::ResultSet> sets = request([&](barista::BaristaClient& rpc, const barista::Connection& con) {
    std::vector<barista::ResultSet> out;
    rpc.execute_sql_batch(out, con, wire, atomic);
    return out;
  });
  std::vector<BatchResult> results;
  for (const barista::ResultSet& rs : sets) {
    BatchResult r;
    if (!rs.status && rs.__isset.error) {
      r.error = fromException(rs.error);
    } else {
      r.rows = fromThrift(rs);
    }
    results.push_back(std::move(r));
  }
  return results;
}

void Client::begin() {
  request([](barista::BaristaClient& rpc, const barista::Connection& con) { rpc.begin_txn(con); });
}

void Client::commit() {
  request([](barista::BaristaClient& rpc, const barista::Connection& con) { rpc.commit_txn(con); });
}

void Client::rollback() {
  request([](barista::BaristaClient& rpc, const barista::Connection& con) { rpc.rollback_txn(con); });
}

void Client::close() {
  struct Done {
    Client* c;
    ~Done() {
      c->closed_ = true;
      c->link_.reset();
    }
  } done{this};
  request([](barista::BaristaClient& rpc, const barista::Connection& con) { rpc.close_connection(con); });
}

}  // namespace client
}  // namespace barista
